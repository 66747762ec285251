"""Function tools: the LLM calls one, its result changes the answer; a failing tool's
error goes back to the LLM and the job goes on."""

from __future__ import annotations

import json

from livekit.agents import llm
from livekit.plugins.openai.testing import FakeOpenAI, Reply, ToolCall

QUESTION = "What is the weather in Paris today?"
FOLLOW_UP = "And how about tomorrow?"


async def test_tool_result_changes_the_answer(voice_agent, speech):
    seen: list[str] = []

    @llm.function_tool
    async def get_weather(city: str) -> str:
        """The weather in a city.

        Args:
            city: the city's name.
        """
        seen.append(city)
        return "rainy and cold"

    question = speech(QUESTION, sample_rate=48000)
    async with FakeOpenAI() as fake:
        fake.expect(question)
        fake.chat.script(Reply(tool_calls=[ToolCall("get_weather", {"city": "Paris"})]))  # then its default reply
        run = await voice_agent(fake, tools=(get_weather,))
        await run.mic.say(question)
        stopped = await run.wait_event("agent_stopped_speaking")
        assert seen == ["Paris"]
        # the fake's answer to a tool result quotes it: the tool changed the answer
        assert stopped.text == "Here is what I found: rainy and cold. Is there anything else?"
        call = (await run.wait_event("tool_called"))
        assert (call.name, json.loads(call.arguments), call.result, call.error) == (
            "get_weather", {"city": "Paris"}, "rainy and cold", None)
        roles = [m.role for m in run.agent.chat_ctx.messages]
        assert roles == ["system", "user", "assistant", "tool", "assistant"]
        assert run.agent.chat_ctx.messages[2].tool_calls[0].name == "get_weather"
        assert (await run.wait_event("metrics")).tool_calls == 1


async def test_failing_tool_goes_back_to_the_llm_and_the_job_goes_on(voice_agent, speech):
    @llm.function_tool
    async def get_weather(city: str) -> str:
        """The weather in a city."""
        raise ConnectionError("weather service unreachable")

    question, follow_up = speech(QUESTION, sample_rate=48000), speech(FOLLOW_UP, sample_rate=48000)
    async with FakeOpenAI() as fake:
        fake.expect(question)
        fake.expect(follow_up)
        fake.chat.script(Reply(tool_calls=[ToolCall("get_weather", {"city": "Paris"})]))  # then its default reply
        run = await voice_agent(fake, tools=(get_weather,))
        await run.mic.say(question)
        stopped = await run.wait_event("agent_stopped_speaking")
        assert "weather service unreachable" in stopped.text
        call = await run.wait_event("tool_called")
        assert "weather service unreachable" in call.error and call.result.startswith("error")
        # the tool message the LLM got carries the error
        tool_msgs = [m for m in fake.chat.requests[1].messages if m["role"] == "tool"]
        assert len(tool_msgs) == 1 and "unreachable" in tool_msgs[0]["content"]
        # the job is alive and takes the next turn
        await run.mic.say(follow_up)
        await run.wait_event("agent_stopped_speaking", 2)
        assert run.contexts[0].shutdown_reason is None
        assert [m.content for m in run.agent.chat_ctx.messages if m.role == "user"] == [QUESTION, FOLLOW_UP]


async def test_invalid_tool_arguments_are_reported_to_the_llm(voice_agent, speech):
    @llm.function_tool
    async def get_weather(city: str) -> str:
        """The weather in a city."""
        return "sunny"

    question = speech(QUESTION, sample_rate=48000)
    async with FakeOpenAI() as fake:
        fake.expect(question)
        fake.chat.script(Reply(tool_calls=[ToolCall("get_weather", '{"town": 3}')]))
        run = await voice_agent(fake, tools=(get_weather,))
        await run.mic.say(question)
        stopped = await run.wait_event("agent_stopped_speaking")
        call = await run.wait_event("tool_called")
        assert call.error and "city" in call.error
        assert stopped.text.startswith("Here is what I found: error")
