"""A provider fault ends that turn with a logged error; the agent listens on and the next
turn works."""

from __future__ import annotations

import logging

import pytest

from livekit.agents.utils.retry import RetryOptions
from livekit.plugins.openai.testing import ChatFault, FakeOpenAI, Fault

FIRST = "What is the weather in Paris today?"
SECOND = "And how about tomorrow?"
ANSWER = "It will be sunny."
RETRY = RetryOptions(max_attempts=1, timeout=1.5)


def errors(caplog, component: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.ERROR and getattr(r, "component", None) == component]


async def two_turns(run, first, second):
    await run.mic.say(first)
    err = await run.wait_event("error")
    await run.mic.say(second)
    stopped = await run.wait_event("agent_stopped_speaking")
    return err, stopped


@pytest.mark.parametrize("fault", [Fault.http(401), Fault.http(503), Fault.stall()], ids=["401", "503", "stall"])
async def test_stt_fault(voice_agent, speech, caplog, fault):
    first, second = speech(FIRST, sample_rate=48000), speech(SECOND, sample_rate=48000)
    async with FakeOpenAI() as fake:
        fake.expect(first)
        fake.expect(second)
        fake.script(fault)
        fake.chat.script(ANSWER)
        run = await voice_agent(fake, retry=RETRY)
        err, stopped = await two_turns(run, first, second)
        assert err.component == "stt"
        assert stopped.text == ANSWER
        assert errors(caplog, "stt")
        assert [m.content for m in run.agent.chat_ctx.messages if m.role == "user"] == [SECOND]
        assert run.contexts[0].shutdown_reason is None


@pytest.mark.parametrize("fault", [Fault.http(401), Fault.http(500), Fault.stall()], ids=["401", "500", "stall"])
async def test_tts_fault(voice_agent, speech, caplog, fault):
    first, second = speech(FIRST, sample_rate=48000), speech(SECOND, sample_rate=48000)
    async with FakeOpenAI() as fake, FakeOpenAI(api_key=fake.api_key) as tts_fake:
        fake.expect(first)
        fake.expect(second)
        tts_fake.script(fault)
        fake.chat.script(ANSWER, ANSWER)
        run = await voice_agent(fake, retry=RETRY, tts_fake=tts_fake)
        err, stopped = await two_turns(run, first, second)
        assert err.component == "tts" and err.turn == 1
        assert stopped.turn == 2 and stopped.text == ANSWER
        assert errors(caplog, "tts")
        assert run.contexts[0].shutdown_reason is None


@pytest.mark.parametrize("fault", [ChatFault.http(401), ChatFault.http(500), ChatFault.stall()],
                         ids=["401", "500", "stall"])
async def test_llm_fault(voice_agent, speech, caplog, fault):
    first, second = speech(FIRST, sample_rate=48000), speech(SECOND, sample_rate=48000)
    async with FakeOpenAI() as fake:
        fake.expect(first)
        fake.expect(second)
        fake.chat.script(fault, ANSWER)
        run = await voice_agent(fake, retry=RETRY)
        err, stopped = await two_turns(run, first, second)
        assert err.component == "llm" and err.turn == 1
        assert stopped.turn == 2 and stopped.text == ANSWER
        assert errors(caplog, "llm")
        assert run.contexts[0].shutdown_reason is None
