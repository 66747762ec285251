"""Losing a node of a two-node cluster (kill -9), with live jobs; the node coming back; a
Redis restart. Real livekit-server nodes and Redis, real rtc participants."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from livekit import agents, api

from .conftest import cluster_worker_kwargs


def ticking_agent(ended: dict[str, str]):  # type: ignore[no-untyped-def]
    """An agent that sends ``tick`` data every 100 ms through whatever connection its room has."""

    async def agent_fn(ctx: agents.JobContext) -> None:
        ctx.add_shutdown_callback(lambda: ended.__setitem__(ctx.job.room.name, str(ctx.shutdown_reason)))

        async def tick() -> None:
            n = 0
            while True:
                n += 1
                try:
                    await ctx.agent.publish_data(f"tick {n}".encode(), topic="tick")
                except Exception:
                    pass  # no connection right now
                await asyncio.sleep(0.1)

        ctx.create_task(tick())

    return agent_fn


def ticks(client: Any) -> int:
    return sum(1 for _, data in client.data if data.startswith(b"tick"))


async def test_kill_node_a_worker_fails_over_and_jobs_on_b_keep_their_agent(
    livekit_cluster, node_clients, node_api, helpers
):
    a, b = livekit_cluster.nodes
    ended: dict[str, str] = {}
    agent_fn = ticking_agent(ended)

    async def handler(req: agents.JobRequest) -> None:
        await req.accept(agent_fn)

    worker = agents.Worker(handler, **cluster_worker_kwargs(livekit_cluster, [a.url, b.url]))
    async with worker:
        assert worker._conn.url == a.url  # the first URL is preferred
        room_b, room_a = helpers.unique_room("on-b"), helpers.unique_room("on-a")
        await node_api(b).room.create_room(api.CreateRoomRequest(name=room_b, empty_timeout=30))
        await node_api(a).room.create_room(api.CreateRoomRequest(name=room_a, empty_timeout=30))
        assert livekit_cluster.host_of(room_b) is b and livekit_cluster.host_of(room_a) is a
        user_b = await node_clients.join(b, room_b, "user-b")
        await node_clients.join(a, room_a, "user-a")
        await helpers.wait_until(lambda: len(worker.jobs) == 2, 20, "both jobs running")
        await helpers.wait_until(lambda: ticks(user_b) >= 5, 20, "the agent's data in room B")
        job_b = next(ctx.id for ctx in worker.jobs.values() if ctx.job.room.name == room_b)

        a.kill()
        killed = time.monotonic()
        await helpers.wait_until(lambda: worker.registered and worker._conn.url == b.url, 10,
                                 "the worker registered on node B within 10 s of the kill")
        registered_after = time.monotonic() - killed

        # the job whose room is on B keeps its agent: data keeps coming after the loss
        await helpers.wait_until(lambda: room_a in ended, 40, "the job of A's room to end")
        before = ticks(user_b)
        await helpers.wait_until(lambda: ticks(user_b) >= before + 10, 30, "the agent's data after the loss")
        assert room_b not in ended, ended
        assert job_b in worker.jobs  # the same job, not a new one
        # the job whose room died with node A says so, and is not a success
        assert ended[room_a].startswith("room_lost"), ended

        # new rooms get agents through node B
        room_new = helpers.unique_room("after")
        await node_api(b).room.create_room(api.CreateRoomRequest(name=room_new, empty_timeout=30))
        await helpers.wait_until(
            lambda: room_new in [ctx.job.room.name for ctx in worker.jobs.values()], 20, "a job for a new room")
        print(f"re-registered on B {registered_after:.2f} s after the kill")
