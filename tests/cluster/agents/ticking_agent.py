"""An agent for the cluster tests run as a worker process (``start``, so the process
executor by default): it sends ``tick <job id> <n>`` data every 100 ms through whatever
connection its room has, and otherwise keeps the default auto-disconnect (it leaves
when the room has nobody but agents)."""

import asyncio

from livekit import agents


async def ticker(ctx: agents.JobContext) -> None:
    async def tick() -> None:
        n = 0
        while True:
            n += 1
            try:
                await ctx.agent.publish_data(f"tick {ctx.id} {n}".encode(), topic="tick")
            except Exception:
                pass  # no connection right now (being restored)
            await asyncio.sleep(0.1)

    ctx.create_task(tick())


async def handler(request: agents.JobRequest) -> None:
    await request.accept(ticker, auto_subscribe=agents.AutoSubscribe.SUBSCRIBE_NONE)


if __name__ == "__main__":
    agents.run_app(agents.Worker(request_handler=handler, worker_type=agents.JobType.JT_ROOM))
