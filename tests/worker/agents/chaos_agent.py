"""An agent whose behaviour depends on its room's name, for the process executor tests.

* ``good-*``: receives the audio of the room's publisher and appends the arrival time of
  every frame (``time.monotonic()``, comparable across processes) to
  ``$CHAOS_DIR/<room>.frames``.
* ``block-*``: blocks its event loop for 10 s (``time.sleep``) once it joined.
* ``exit-*``: calls ``os._exit(1)`` once it joined.
* ``segv-*``: dereferences a null pointer through ctypes once it joined.
* ``leak-*``: holds on to 400 MB once it joined.

The request handler and the agent are closures under ``if __name__ == "__main__"`` on
purpose: the process executor must run them as written.
"""

import asyncio
import ctypes
import logging
import os
import time
from pathlib import Path

from livekit import agents, rtc

if __name__ == "__main__":
    logger = logging.getLogger("chaos")
    out_dir = Path(os.environ["CHAOS_DIR"])

    hoard: list[bytearray] = []

    def block_the_loop() -> None:
        time.sleep(10)

    async def chaos_agent(ctx: agents.JobContext) -> None:
        room = ctx.job.room.name
        kind = room.split("-", 1)[0]
        logger.info("chaos agent %s in room %s (pid %d)", kind, room, os.getpid())
        if kind == "block":
            await asyncio.sleep(0.2)
            block_the_loop()
        elif kind == "exit":
            await asyncio.sleep(0.2)
            os._exit(1)
        elif kind == "segv":
            await asyncio.sleep(0.2)
            ctypes.string_at(0)
        elif kind == "leak":
            hoard.append(bytearray(400 * 2**20))
            for i in range(0, len(hoard[-1]), 4096):
                hoard[-1][i] = 1
        elif kind == "good":
            frames = open(out_dir / f"{room}.frames", "a", buffering=1)

            async def receive(track: rtc.Track) -> None:
                async for _event in rtc.AudioStream(track, sample_rate=48000, num_channels=1):
                    frames.write(f"{time.monotonic():.6f}\n")

            def on_track(track: rtc.Track, *_: object) -> None:
                if track.kind == rtc.TrackKind.KIND_AUDIO:
                    ctx.create_task(receive(track))

            ctx.room.on("track_subscribed", on_track)
            ctx.add_shutdown_callback(frames.close)

    async def handler(request: agents.JobRequest) -> None:
        await request.accept(chaos_agent, auto_subscribe=agents.AutoSubscribe.AUDIO_ONLY,
                             auto_disconnect=agents.AutoDisconnect.NEVER)

    agents.run_app(agents.Worker(request_handler=handler, worker_type=agents.JobType.JT_ROOM,
                                 ping_interval=0.5, ping_timeout=3.0))
