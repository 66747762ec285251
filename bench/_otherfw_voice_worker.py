"""The other framework's voice agent (livekit-agents 1.8.9 AgentSession), run with its own
interpreter by bench_voice.py against the same loopback OpenAI fake (OPENAI_BASE_URL).

    <otherfw python> bench/_otherfw_voice_worker.py start
    env: LIVEKIT_URL/KEY/SECRET, OPENAI_BASE_URL, OPENAI_API_KEY, BENCH_HTTP_PORT,
         BENCH_TURN_DETECTION ("default" or "vad"), BENCH_MIN_SILENCE (seconds or "default"),
         BENCH_PREEMPTIVE_TTS ("1": its preemptive generation runs the TTS too; its default
         preemptive generation, on, runs only the LLM early)
"""

import os

from livekit.agents import Agent, AgentSession, JobContext, WorkerOptions, cli
from livekit.plugins import openai, silero


async def entrypoint(ctx: JobContext) -> None:
    await ctx.connect()
    silence = os.environ.get("BENCH_MIN_SILENCE", "default")
    vad = silero.VAD.load() if silence == "default" else silero.VAD.load(min_silence_duration=float(silence))
    turn_handling = {}  # its TurnHandlingOptions (the documented way; the old kwargs are deprecated)
    if os.environ.get("BENCH_TURN_DETECTION", "default") == "vad":
        turn_handling["turn_detection"] = "vad"
    if os.environ.get("BENCH_PREEMPTIVE_TTS") == "1":
        turn_handling["preemptive_generation"] = {"enabled": True, "preemptive_tts": True}
    kwargs = {"turn_handling": turn_handling} if turn_handling else {}
    session = AgentSession(
        vad=vad,
        stt=openai.STT(model="whisper-1", language="en"),
        llm=openai.LLM(model="gpt-4o-mini"),
        tts=openai.TTS(model="tts-1", voice="alloy", response_format="pcm"),
        **kwargs,
    )
    await session.start(agent=Agent(instructions="You are a helpful voice assistant."), room=ctx.room)


if __name__ == "__main__":
    cli.run_app(WorkerOptions(entrypoint_fnc=entrypoint, load_fnc=lambda: 0.0, load_threshold=0.99,
                              port=int(os.environ.get("BENCH_HTTP_PORT", "0"))))
