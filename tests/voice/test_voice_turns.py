"""A participant speaks; the voice agent answers in the room."""

from __future__ import annotations

from livekit.agents.voice import ATTR_FINAL, ATTR_SEGMENT_ID, ATTR_TRACK_ID
from livekit.plugins.openai.testing import FakeOpenAI

QUESTION = "What is the weather in Paris today?"
ANSWER = "It is sunny in Paris today. Enjoy your walk by the river."


async def test_agent_answers_with_audio_and_transcriptions(voice_agent, speech, helpers, scripted_llm):
    question = speech(QUESTION, sample_rate=48000)
    async with FakeOpenAI() as fake:
        fake.expect(question)
        model = scripted_llm(lambda ctx: ANSWER if ctx.messages[-1].content == QUESTION else "I did not get that.")
        run = await voice_agent(fake, lambda: model)
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
        roles = [(m.role, m.content) for m in run.agent.chat_ctx.messages]
        assert roles[1:] == [("user", QUESTION), ("assistant", ANSWER)]
        metrics = await run.wait_event("metrics")
        assert metrics.first_frame is not None and metrics.first_frame >= metrics.llm_request
