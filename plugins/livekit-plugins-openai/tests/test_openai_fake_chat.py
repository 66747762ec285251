"""The fake's chat endpoint rejects what the real API rejects (so tests cannot pass on a
request that OpenAI would refuse)."""

from __future__ import annotations

import aiohttp
import pytest

CALL = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
TOOL = {"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}


def body(**over):
    b = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    b.update(over)
    return b


@pytest.mark.parametrize(
    ("request_body", "status", "message"),
    [
        (body(model="gpt-9"), 404, "does not exist"),
        (body(temprature=1), 400, "Unrecognized request argument supplied: temprature"),
        (body(messages=[]), 400, "empty array"),
        (body(messages=[{"role": "robot", "content": "x"}]), 400, "Invalid value: 'robot'"),
        (body(messages=[{"role": "user", "content": "x", "tool_call_id": "c"}]), 400, "Additional properties are not allowed"),
        (body(messages=[{"role": "tool", "content": "x"}]), 400, "tool_call_id"),
        (body(messages=[{"role": "user", "content": "x"}, {"role": "tool", "content": "r", "tool_call_id": "call_9"}]), 400, "must be a response to a preceeding message"),
        (body(messages=[{"role": "assistant", "content": None, "tool_calls": [CALL]}, {"role": "user", "content": "x"}]), 400, "did not have response messages: call_1"),
        (body(tools=[{"type": "function", "function": {"name": "bad name"}}]), 400, "does not match pattern"),
        (body(tools=[{"type": "function", "function": {"name": "f", "parameters": {"type": "array"}}}]), 400, "type: \"object\""),
        (body(tool_choice="auto"), 400, "only allowed when 'tools' are specified"),
        (body(tools=[TOOL], tool_choice={"type": "function", "function": {"name": "g"}}), 400, "no function named 'g'"),
        (body(stream=False, stream_options={"include_usage": True}), 400, "only allowed when 'stream' is enabled"),
    ],
)
async def test_schema_violations_are_rejected(fake, request_body, status, message):
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{fake.base_url}/chat/completions", json=request_body, headers={"Authorization": f"Bearer {fake.api_key}"}) as resp:
            assert resp.status == status
            assert message in (await resp.json())["error"]["message"]


async def test_auth_header_is_required(fake):
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{fake.base_url}/chat/completions", json=body()) as resp:
            assert resp.status == 401 and "didn't provide an API key" in (await resp.json())["error"]["message"]
        async with http.post(f"{fake.base_url}/chat/completions", json=body(), headers={"Authorization": fake.api_key}) as resp:
            assert resp.status == 401


async def test_a_valid_tool_round_trip_is_accepted_and_streamed_as_sse(fake):
    messages = [
        {"role": "user", "content": "x"},
        {"role": "assistant", "content": None, "tool_calls": [CALL]},
        {"role": "tool", "content": "r", "tool_call_id": "call_1"},
    ]
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{fake.base_url}/chat/completions", json=body(messages=messages, tools=[TOOL]), headers={"Authorization": f"Bearer {fake.api_key}"}) as resp:
            assert resp.status == 200 and resp.content_type == "text/event-stream"
            text = (await resp.read()).decode()
    events = [e for e in text.split("\n\n") if e]
    assert all(e.startswith("data: ") for e in events)
    assert events[-1] == "data: [DONE]" and len(events) > 4
