"""A participant speaks; the voice agent answers in the room."""

from __future__ import annotations

import asyncio

from livekit.agents.voice import ATTR_FINAL, ATTR_SEGMENT_ID, ATTR_TRACK_ID
from livekit.plugins.openai.testing import FakeOpenAI

QUESTION = "What is the weather in Paris today?"
ANSWER = "It is sunny in Paris today. Enjoy your walk by the river."


async def test_agent_answers_with_audio_and_transcriptions(voice_agent, speech, helpers):
    question = speech(QUESTION, sample_rate=48000)
    async with FakeOpenAI() as fake:
        fake.expect(question)
        fake.chat.script(ANSWER)
        run = await voice_agent(fake)
        await run.mic.say(question)
        stopped = await run.wait_event("agent_stopped_speaking")
        assert stopped.text == ANSWER and not stopped.interrupted

        # the participant heard the answer on the agent's track: about its length in audio
        assert run.heard.audio_seconds() > 1.0
        # and read both sides' transcriptions
        await helpers.wait_until(lambda: len(run.heard.transcripts) >= 2, 15, "two transcriptions")
        by_sender = {t["from"]: t for t in run.heard.transcripts}
        user, agent = by_sender["alice"], by_sender[run.agent._room.local_participant.identity]
        assert user["text"] == QUESTION
        assert user["attributes"][ATTR_FINAL] == "true"
        assert user["attributes"][ATTR_TRACK_ID] == run.agent._listener.track_sid
        assert agent["text"] == ANSWER
        assert agent["attributes"][ATTR_TRACK_ID] == run.heard.track_sids[0]
        assert agent["attributes"][ATTR_SEGMENT_ID] != user["attributes"][ATTR_SEGMENT_ID]
        sent = fake.chat.requests[0].messages
        assert [(m["role"], m["content"]) for m in sent][1:] == [("user", QUESTION)]
        roles = [(m.role, m.content) for m in run.agent.chat_ctx.messages]
        assert roles[1:] == [("user", QUESTION), ("assistant", ANSWER)]
        metrics = await run.wait_event("metrics")
        assert metrics.first_frame is not None and metrics.first_frame >= metrics.llm_request


def voice_tasks() -> list[str]:
    return sorted(t.get_name() for t in asyncio.all_tasks() if t.get_name().startswith("voice-") and not t.done())


async def test_agent_follows_the_next_participant_and_ends_cleanly(voice_agent, speech, clients, helpers, mic_class):
    question = speech(QUESTION, sample_rate=48000)
    async with FakeOpenAI() as fake:
        fake.expect(question)
        fake.chat.script(ANSWER)
        run = await voice_agent(fake)
        agent, ctx = run.agent, run.contexts[0]
        assert agent.participant == "alice"
        bob = await clients.join(ctx.room.name, "bob")
        mic = mic_class(bob.room)
        await mic.publish()
        try:
            await helpers.wait_until(lambda: "bob" in ctx.room.remote_participants, 15, "bob in the agent's room")
            await run.room.disconnect()  # alice leaves; bob stays
            await helpers.wait_until(lambda: agent.participant == "bob" and agent._listener.track_sid, 30,
                                     "the agent listening to bob")
            await mic.say(question)
            await run.wait_event("agent_stopped_speaking")
            transcript = run.named("user_transcript")[0]
            assert (transcript.participant, transcript.text) == ("bob", QUESTION)
            assert voice_tasks()  # the pipeline is running

            # the job ends: nothing of the pipeline is left behind
            ctx.shutdown()
            await ctx.wait_for_end()
            assert voice_tasks() == []
            assert agent._output.publication is None
            assert agent._listener._vad_stream is None and agent._listener._stt_stream is None
        finally:
            await mic.aclose()
