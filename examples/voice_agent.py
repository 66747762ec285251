"""A voice agent: it listens to the first participant of each room, answers with an LLM
and speaks the answer; interrupt it by talking over it.

Providers come from the environment (default ``openai`` for all three; silero finds the
speech), so it runs against OpenAI or any OpenAI-compatible server (``OPENAI_BASE_URL``):

    AGENT_STT=openai AGENT_LLM=openai AGENT_TTS=openai OPENAI_API_KEY=sk-... \
        python examples/voice_agent.py start --url ws://localhost:7880 --api-key ... --api-secret=...

With no account, against the local simulation (see docs/voice.md):

    python -m livekit.plugins.openai.testing --port 8089 &
    OPENAI_BASE_URL=http://127.0.0.1:8089/v1 OPENAI_API_KEY=sk-fake-0123456789abcdef \
        python examples/voice_agent.py start ...
"""

import datetime
import logging
import os

from livekit import agents

from livekit.agents import llm
from livekit.agents.voice import VoicePipelineAgent

INSTRUCTIONS = (
    "You are a friendly voice assistant in a LiveKit room. Answer in one to three short "
    "sentences of plain text: no lists, no markdown. Use the tools when they help."
)


@llm.function_tool
async def current_time(timezone_offset_hours: float = 0.0) -> str:
    """The current date and time.

    Args:
        timezone_offset_hours: offset from UTC in hours, e.g. 1 for Paris in winter.
    """
    tz = datetime.timezone(datetime.timedelta(hours=timezone_offset_hours))
    return datetime.datetime.now(tz).strftime("%A %d %B %Y, %H:%M")


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    providers = {name: os.environ.get(f"AGENT_{name.upper()}", "openai") for name in ("stt", "llm", "tts")}
    vad = agents.create_vad("silero")  # one model per worker process; every room gets its own stream

    async def job_request_handler(job_request: agents.JobRequest):
        async def voice_agent(ctx: agents.JobContext):
            agent = VoicePipelineAgent(
                vad=vad,
                stt=providers["stt"],
                llm=providers["llm"],
                tts=providers["tts"],
                instructions=INSTRUCTIONS,
                tools=[current_time],
            )
            agent.on("user_transcript", lambda ev: logging.info("user said: %s", ev.text))
            agent.on("interrupted", lambda ev: logging.info("interrupted; the user heard: %r", ev.played_text))
            await agent.start(ctx)  # listens until the job ends, then closes cleanly

        await job_request.accept(
            voice_agent,
            identity=f"voice-agent-{job_request.id}",
            name="Voice agent",
            subscribe_cb=agents.AutoSubscribe.AUDIO_ONLY,
            auto_disconnect_cb=agents.AutoDisconnect.DEFAULT,
        )

    worker = agents.Worker(request_handler=job_request_handler, worker_type=agents.JobType.JT_ROOM)
    agents.run_app(worker)
