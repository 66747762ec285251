"""A speaking agent: it publishes an audio track and speaks the text of every data message
sent to it on the topic "say".

The text-to-speech provider is chosen by name from the installed plugins:

    AGENT_TTS=openai OPENAI_API_KEY=... python examples/speaker.py start
    AGENT_TTS=elevenlabs ELEVENLABS_API_KEY=... python examples/speaker.py start

AGENT_TTS_OPTIONS takes JSON options for the provider, e.g. '{"voice": "alloy"}'. After
each message it sends {"said": text, "seconds": ...} back on the topic "said".
"""

from __future__ import annotations

import asyncio
import json
import os

from livekit import agents, rtc


def make_tts() -> agents.tts.TTS:
    name = os.environ.get("AGENT_TTS", "openai")
    options = json.loads(os.environ.get("AGENT_TTS_OPTIONS", "{}"))
    return agents.create_tts(name, **options)


async def speaker(ctx: agents.JobContext) -> None:
    tts = make_tts()
    ctx.add_shutdown_callback(tts.aclose)
    source = rtc.AudioSource(tts.sample_rate, tts.num_channels)
    track = rtc.LocalAudioTrack.create_audio_track("agent-voice", source)
    await ctx.room.local_participant.publish_track(
        track, rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
    )
    queue: asyncio.Queue[str] = asyncio.Queue()

    def on_data(packet: rtc.DataPacket) -> None:
        if packet.topic == "say":
            queue.put_nowait(packet.data.decode())

    ctx.room.on("data_received", on_data)
    while True:
        text = await queue.get()
        seconds = 0.0
        async with tts.synthesize(text) as audio:
            async for chunk in audio:
                await source.capture_frame(chunk.frame)
                seconds += chunk.frame.samples_per_channel / chunk.frame.sample_rate
        await ctx.room.local_participant.publish_data(
            json.dumps({"said": text, "seconds": round(seconds, 2)}), reliable=True, topic="said"
        )


async def request_handler(job_request: agents.JobRequest) -> None:
    await job_request.accept(speaker, identity=f"speaker-{job_request.id}", name="Speaker")


if __name__ == "__main__":
    agents.run_app(agents.Worker(request_handler=request_handler, worker_type=agents.JobType.JT_ROOM))
