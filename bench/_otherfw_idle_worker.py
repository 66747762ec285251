"""An idle agent for the other framework (livekit-agents 1.8.9), run with its own
interpreter by bench_job_memory.py: joins each room, subscribes to nothing, stays.

    <otherfw python> bench/_otherfw_idle_worker.py start   (LIVEKIT_URL/KEY/SECRET, BENCH_HTTP_PORT)
"""

import asyncio
import os

from livekit.agents import AutoSubscribe, JobContext, WorkerOptions, cli


async def entrypoint(ctx: JobContext) -> None:
    await ctx.connect(auto_subscribe=AutoSubscribe.SUBSCRIBE_NONE)
    await asyncio.Event().wait()


if __name__ == "__main__":
    cli.run_app(WorkerOptions(entrypoint_fnc=entrypoint, load_fnc=lambda: 0.0, load_threshold=0.99,
                              port=int(os.environ.get("BENCH_HTTP_PORT", "0"))))
