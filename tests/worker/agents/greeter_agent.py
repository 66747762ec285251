"""A small agent for the worker lifecycle tests.

It greets the room with a data message naming its job, logs when its shutdown callback
runs (with the reason), and otherwise stays until the room ends.
"""

import logging

from livekit import agents

logger = logging.getLogger("greeter")


async def greeter(ctx: agents.JobContext) -> None:
    def on_shutdown() -> None:
        logger.info("shutdown callback ran: %s", ctx.shutdown_reason)

    ctx.add_shutdown_callback(on_shutdown)
    await ctx.agent.publish_data(f"hello from {ctx.agent.identity}".encode(), topic="greeting")


async def handler(request: agents.JobRequest) -> None:
    await request.accept(greeter, name="Greeter", auto_subscribe=agents.AutoSubscribe.SUBSCRIBE_NONE,
                         auto_disconnect=agents.AutoDisconnect.ROOM_EMPTY)


if __name__ == "__main__":
    agents.run_app(agents.Worker(request_handler=handler, worker_type=agents.JobType.JT_ROOM))
