"""Preemptive generation: the answer is prepared while the user is silent, played when
the turn ends, and dropped when the user goes on speaking."""

from __future__ import annotations

from livekit.agents.voice import VoiceOptions
from livekit.plugins.openai.testing import FakeOpenAI

QUESTION = "What is the weather in Paris today?"
ANSWER = "It is sunny in Paris today."
FIRST_PART = "Tell me about Paris."
SECOND_PART = "And what about the museums there?"
STALE = "Paris is the capital of France."
FRESH = "The Louvre is the largest museum in Paris."


def transcriptions(fake: FakeOpenAI) -> int:
    return sum(1 for r in fake.requests if r.path.endswith("/audio/transcriptions"))


async def test_the_prepared_answer_is_played_when_the_turn_ends(voice_agent, speech):
    question = speech(QUESTION, sample_rate=48000)
    async with FakeOpenAI() as fake:
        fake.expect(question)
        fake.chat.script(ANSWER)
        run = await voice_agent(fake)
        await run.mic.say(question)
        stopped = await run.wait_event("agent_stopped_speaking")
        metrics = await run.wait_event("metrics")
        assert stopped.text == ANSWER
        # prepared before the VAD ended the turn, from the one transcription of the question
        assert metrics.preemptive
        assert metrics.llm_request is not None and metrics.vad_end is not None
        assert metrics.llm_request < metrics.vad_end
        assert transcriptions(fake) == 1 and len(fake.chat.requests) == 1
        msgs = [(m.role, m.content) for m in run.agent.chat_ctx.messages][1:]
        assert msgs == [("user", QUESTION), ("assistant", ANSWER)]


async def test_a_user_who_goes_on_speaking_never_gets_the_stale_answer(voice_agent, speech, helpers):
    from livekit.plugins import silero

    # a pause of 0.7 s inside the turn: past preemptive_after (0.25 s), short of the 1.0 s window
    turn = speech([FIRST_PART, SECOND_PART], sample_rate=48000, silence=0.7)
    vad = silero.VAD(min_silence_duration=1.0)
    async with FakeOpenAI() as fake:
        fake.expect(turn)
        fake.chat.script(STALE, FRESH, FRESH, FRESH)
        run = await voice_agent(fake, vad=vad, options=VoiceOptions(preemptive_after=0.25))
        await run.mic.say(turn)
        said_at = run.mic.speech_started_at
        stopped = await run.wait_event("agent_stopped_speaking")

        # the answer to the first part was prepared during the pause (else this test shows nothing)
        first = [(m["role"], m["content"]) for m in fake.chat.requests[0].messages][1:]
        assert first == [("user", FIRST_PART)], f"no answer was prepared during the pause: {first}"
        # ... and dropped: the user heard, read and keeps in the history only the answer to the turn
        assert stopped.text == FRESH
        assert len(run.named("agent_started_speaking")) == 1
        turn_end = said_at + turn.segments[-1][1]
        assert all(t >= turn_end for t in run.heard.loud_since(0.0)), "agent audio while the user spoke"
        await helpers.wait_until(lambda: len(run.heard.transcripts) >= 2, 15, "two transcriptions")
        agent_id = run.agent._room.local_participant.identity
        assert [t["text"] for t in run.heard.transcripts if t["from"] == agent_id] == [FRESH]
        whole = f"{FIRST_PART} {SECOND_PART}"
        msgs = [(m.role, m.content) for m in run.agent.chat_ctx.messages][1:]
        assert msgs == [("user", whole), ("assistant", FRESH)]
        answered = [(m["role"], m["content"]) for m in fake.chat.requests[-1].messages][1:]
        assert answered == [("user", whole)]
        await vad.aclose()


async def test_a_prepared_answer_runs_no_tool_before_the_turn_ends(voice_agent, speech):
    from livekit.agents import llm
    from livekit.plugins import silero
    from livekit.plugins.openai.testing import Reply, ToolCall

    booked: list[str] = []

    @llm.function_tool
    async def book_table(city: str) -> str:
        """Books a table (a side effect the user must have asked for).

        Args:
            city: where.
        """
        booked.append(city)
        return "booked"

    turn = speech([FIRST_PART, SECOND_PART], sample_rate=48000, silence=0.7)
    vad = silero.VAD(min_silence_duration=1.0)
    async with FakeOpenAI() as fake:
        fake.expect(turn)
        # the answer prepared during the pause calls the tool; the user goes on speaking
        fake.chat.script(Reply(tool_calls=[ToolCall("book_table", {"city": "Paris"})]), FRESH, FRESH, FRESH)
        run = await voice_agent(fake, vad=vad, tools=(book_table,), options=VoiceOptions(preemptive_after=0.25))
        await run.mic.say(turn)
        stopped = await run.wait_event("agent_stopped_speaking")
        first = [(m["role"], m["content"]) for m in fake.chat.requests[0].messages][1:]
        assert first == [("user", FIRST_PART)], f"no answer was prepared during the pause: {first}"
        assert stopped.text == FRESH
        assert booked == [] and run.named("tool_called") == []
        roles = [m.role for m in run.agent.chat_ctx.messages]
        assert roles == ["system", "user", "assistant"]
        await vad.aclose()
