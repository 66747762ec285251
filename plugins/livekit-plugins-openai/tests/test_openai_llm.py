"""openai.LLM against the loopback fake of Chat Completions (SSE), faults included."""

from __future__ import annotations

import asyncio
import logging
from typing import Literal

import pytest

from livekit.agents import create_llm, llm
from livekit.agents.exceptions import MissingCredentialsError
from livekit.agents.utils.retry import RetryOptions
from livekit.plugins import openai
from livekit.plugins.openai.testing import ChatFault, Reply, ToolCall

FAST = RetryOptions(max_attempts=2, base_delay=0.01, timeout=5.0)


@llm.function_tool
async def get_weather(city: str, unit: Literal["c", "f"] = "c") -> str:
    """The current weather in a city.

    Args:
        city: the city's name.
    """
    return f"sunny, 21 degrees {unit} in {city}"


def user_ctx(text: str = "What's the weather in Paris and Rome?") -> llm.ChatContext:
    ctx = llm.ChatContext()
    ctx.add_message(role="system", content="You are a voice assistant.")
    ctx.add_message(role="user", content=text)
    return ctx


def model(fake, **kw) -> openai.LLM:
    return create_llm("openai", api_key=fake.api_key, base_url=fake.base_url, retry=FAST, **kw)


async def test_text_streams_in_several_deltas_with_usage_and_ttft(fake):
    m = model(fake)
    async with m.chat(user_ctx("Hello there")) as stream:
        deltas = [c.delta async for c in stream if c.delta]
    assert len(deltas) > 3
    assert "".join(deltas) == stream.text and stream.text.startswith("You said: Hello there.")
    assert stream.finish_reason == "stop"
    assert stream.usage is not None and stream.usage.completion_tokens == len(deltas)
    assert stream.ttft is not None and 0 < stream.ttft <= stream.duration
    sent = fake.chat.requests[-1].body
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}
    await m.aclose()


@pytest.mark.parametrize("interleave", [False, True])
async def test_parallel_tool_calls_round_trip(fake, interleave):
    m = model(fake)
    fake.chat.script(
        Reply(tool_calls=[ToolCall("get_weather", {"city": "Paris"}), ToolCall("get_weather", {"city": "Rome", "unit": "f"})], interleave=interleave),
        Reply(text="Paris is sunny and so is Rome."),
    )
    ctx = user_ctx()
    stream = m.chat(ctx, tools=[get_weather], tool_choice="auto", parallel_tool_calls=True)
    answer = await stream.collect()
    assert stream.finish_reason == "tool_calls"
    assert [(c.name, c.arguments) for c in answer.tool_calls] == [
        ("get_weather", '{"city": "Paris"}'),
        ("get_weather", '{"city": "Rome", "unit": "f"}'),
    ]
    assert len({c.id for c in answer.tool_calls}) == 2
    ctx.append(answer)
    for call in answer.tool_calls:
        ctx.add_tool_result(call, await get_weather.execute(call.arguments))
    final = await m.chat(ctx, tools=[get_weather]).collect()
    assert final.content == "Paris is sunny and so is Rome."
    tools_sent = fake.chat.requests[0].body["tools"]
    assert tools_sent == [{"type": "function", "function": {"name": "get_weather", "description": "The current weather in a city.", "parameters": get_weather.parameters}}]
    second = fake.chat.requests[1].body["messages"]
    assert [m_["role"] for m_ in second] == ["system", "user", "assistant", "tool", "tool"]
    assert second[3] == {"role": "tool", "tool_call_id": answer.tool_calls[0].id, "content": "sunny, 21 degrees c in Paris"}
    await m.aclose()


async def test_named_tool_choice_is_sent_as_a_function(fake):
    m = model(fake)
    await m.chat(user_ctx(), tools=[get_weather], tool_choice="get_weather").collect()
    assert fake.chat.requests[-1].body["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}


async def test_aclose_mid_stream_closes_the_http_stream(fake):
    m = model(fake)
    fake.chat.hold = asyncio.Event()  # the fake pauses after the first token
    stream = m.chat(user_ctx())
    async for chunk in stream:
        if chunk.delta:
            break
    await stream.aclose()
    await asyncio.wait_for(fake.chat.client_gone.wait(), 30)
    assert fake.chat.requests[-1].client_gone and not fake.chat.requests[-1].finished
    assert [c async for c in stream] == []
    fake.chat.hold.set()
    assert (await m.chat(user_ctx("again")).collect()).content.startswith("You said: again.")


@pytest.mark.parametrize(
    ("fault", "error", "message"),
    [
        (ChatFault.http(401), llm.LLMAuthenticationError, r"refused the API key \(HTTP 401\)"),
        (ChatFault.http(500), llm.LLMServerError, "HTTP 500"),
        (ChatFault.malformed(after_chunks=2), llm.LLMResponseError, "malformed server-sent event"),
        (ChatFault.truncate(after_chunks=2), llm.LLMTruncatedError, "connection closed mid-stream"),
        (ChatFault.end_early(after_chunks=2), llm.LLMTruncatedError, "ended before the completion finished"),
        (ChatFault.error_event(after_chunks=2), llm.LLMError, "error mid-stream"),
    ],
)
async def test_each_fault_is_a_clear_error_on_that_call_only(fake, fault, error, message):
    m = model(fake)
    fake.chat.script(fault, fault)  # a retried fault fails again
    with pytest.raises(error, match=message):
        await m.chat(user_ctx()).collect()
    fake.chat._script.clear()
    assert (await m.chat(user_ctx("next")).collect()).content.startswith("You said: next.")


async def test_429_waits_what_retry_after_says_then_succeeds(fake, caplog):
    m = model(fake)
    fake.chat.script(ChatFault.http(429, retry_after=0.05))
    with caplog.at_level(logging.WARNING, logger="livekit.agents"):
        assert (await m.chat(user_ctx("hi")).collect()).content.startswith("You said: hi.")
    assert "retrying in 0.1 s" in caplog.text or "retrying in 0.0 s" in caplog.text
    fake.chat.script(*[ChatFault.http(429, retry_after=0.05)] * 2)
    with pytest.raises(llm.LLMRateLimitError) as info:
        await m.chat(user_ctx()).collect()
    assert info.value.retry_after == 0.05 and info.value.status_code == 429


async def test_a_stall_times_out(fake):
    m = model(fake, stall_timeout=0.3)
    fake.chat.script(ChatFault.stall(after_chunks=2, seconds=30))
    with pytest.raises(llm.LLMTimeoutError, match="no chunk for 0.3 s, the stream stalled"):
        await m.chat(user_ctx()).collect()


async def test_the_key_is_never_logged_or_shown(fake, caplog):
    key = "sk-proj-wrongwrongwrong0123456789"
    m = openai.LLM(api_key=key, base_url=fake.base_url, retry=FAST)
    with caplog.at_level(logging.DEBUG), pytest.raises(llm.LLMAuthenticationError) as info:
        await m.chat(user_ctx()).collect()
    assert "OPENAI_API_KEY" in str(info.value)
    assert key not in str(info.value) and key[-10:] not in str(info.value) and key not in caplog.text


def test_missing_key_names_the_variable(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(MissingCredentialsError, match="OPENAI_API_KEY"):
        openai.LLM()


async def test_base_url_and_key_come_from_the_environment(fake, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", fake.api_key)
    monkeypatch.setenv("OPENAI_BASE_URL", fake.base_url)
    m = openai.LLM()
    assert (await m.chat(user_ctx("env")).collect()).content.startswith("You said: env.")


def test_unknown_option_is_refused():
    with pytest.raises(TypeError, match="unknown OpenAI chat option"):
        openai.LLM(api_key="sk-x", temprature=0.2)
