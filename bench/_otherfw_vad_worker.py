"""The other framework's (livekit-agents 1.8.9) side of bench_capacity.py: each job runs its
silero plugin's VAD on the room's audio track and appends the time (``time.monotonic()``)
of every START_OF_SPEECH to ``$BENCH_DIR/<room>.starts``. Run with its own interpreter.
"""

import asyncio
import math
import os
import time
from pathlib import Path

from livekit import rtc

from livekit.agents import AutoSubscribe, JobContext, JobProcess, WorkerOptions, cli, vad
from livekit.plugins import silero

OUT = Path(os.environ.get("BENCH_DIR", "."))


def prewarm(proc: JobProcess) -> None:
    proc.userdata["vad"] = silero.VAD.load()


async def entrypoint(ctx: JobContext) -> None:
    detector = ctx.proc.userdata["vad"]
    starts = open(OUT / f"{ctx.room.name}.starts", "a", buffering=1)

    async def run(track: rtc.Track) -> None:
        stream = detector.stream()

        async def feed() -> None:
            async for ev in rtc.AudioStream(track, sample_rate=16000, num_channels=1):
                stream.push_frame(ev.frame)

        feeder = asyncio.create_task(feed())
        async for event in stream:
            if event.type == vad.VADEventType.START_OF_SPEECH:
                starts.write(f"{time.monotonic():.6f}\n")
        feeder.cancel()

    tasks = []
    ctx.room.on("track_subscribed", lambda track, *_: tasks.append(asyncio.create_task(run(track)))
                if track.kind == rtc.TrackKind.KIND_AUDIO else None)
    await ctx.connect(auto_subscribe=AutoSubscribe.AUDIO_ONLY)
    await asyncio.Event().wait()


if __name__ == "__main__":
    # never gated by load, like ours (--load-threshold=inf): with a finite threshold 1.8.9
    # counts each accepted-but-not-started job as threshold/num_idle_processes of load and
    # goes FULL after two simultaneous offers, so rooms created together got no agent
    cli.run_app(WorkerOptions(entrypoint_fnc=entrypoint, prewarm_fnc=prewarm, load_fnc=lambda: 0.0,
                              load_threshold=math.inf, port=int(os.environ.get("BENCH_HTTP_PORT", "0"))))
