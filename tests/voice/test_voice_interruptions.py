"""The user cuts in: the agent's audio stops, the chat history keeps what was heard."""

from __future__ import annotations

from livekit.plugins.openai.testing import FakeOpenAI

QUESTION = "Tell me about Paris."
LONG_ANSWER = (
    "Paris is lovely in the spring. The river runs through the old town and past the islands. "
    "There are many museums and gardens to visit on a sunny day. "
    "You can walk for hours and never see the same street twice."
)
NOISE = "uh"  # 0.27 s of speech: well below the 0.5 s minimum
CUT_IN = "Wait, stop, I have another question for you."
SECOND_ANSWER = "Of course, go ahead."


async def test_user_speech_interrupts_and_history_keeps_the_played_part(voice_agent, speech):
    question, noise, cut_in = (speech(t, sample_rate=48000) for t in (QUESTION, NOISE, CUT_IN))
    async with FakeOpenAI() as fake:
        for s in (question, noise, cut_in):
            fake.expect(s)
        fake.chat.script(LONG_ANSWER, SECOND_ANSWER)
        run = await voice_agent(fake)
        await run.mic.say(question)
        await run.wait_event("agent_started_speaking")

        # a short noise while the agent speaks: no interruption, and not a turn
        stopped_before = len(run.named("user_stopped_speaking"))
        await run.mic.say(noise)
        await run.wait_event("user_stopped_speaking", stopped_before + 1)
        assert run.named("interrupted") == []
        assert run.agent.agent_speaking

        # sustained speech: the agent stops
        await run.mic.say(cut_in, wait=False)
        interruption = await run.wait_event("interrupted")
        interrupted_at = run.at("interrupted")[0]
        assert interruption.user_speech_duration >= 0.5
        stopped = await run.wait_event("agent_stopped_speaking")
        assert stopped.interrupted

        # the participant's received audio stops within 100 ms of the interruption
        await run.wait_event("agent_started_speaking", 2)  # (the answer to the cut-in)
        second_start = run.at("agent_started_speaking")[1]
        tail = [t for t in run.heard.loud_since(interrupted_at) if t < second_start]
        assert not tail or tail[-1] - interrupted_at <= 0.1, f"agent audio went on {tail[-1] - interrupted_at:.3f} s"

        # the history holds only the part of the answer that was played, then the new turn
        await run.wait_event("agent_stopped_speaking", 2)
        msgs = [(m.role, m.content) for m in run.agent.chat_ctx.messages][1:]
        assert [r for r, _ in msgs] == ["user", "assistant", "user", "assistant"]
        assert msgs[0][1] == QUESTION and msgs[2][1] == CUT_IN and msgs[3][1] == SECOND_ANSWER
        played = msgs[1][1]
        assert played and played == interruption.played_text
        assert LONG_ANSWER.startswith(played) and len(played) < len(LONG_ANSWER)
        # the noise was never sent to the LLM; the second request carried the truncated reply
        assert len(fake.chat.requests) == 2
        sent = [(m["role"], m["content"]) for m in fake.chat.requests[1].messages][1:]
        assert sent == [("user", QUESTION), ("assistant", played), ("user", CUT_IN)]
