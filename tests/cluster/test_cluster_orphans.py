"""Rooms created while every worker is full get an agent once a slot frees or another worker
registers (explicit dispatch), and no room is ever served twice."""

from __future__ import annotations

import asyncio

from livekit import agents, api
from livekit.protocol import models

from .conftest import cluster_worker_kwargs


async def test_rooms_created_while_full_get_one_agent_later(livekit_cluster, node_clients, node_api, helpers):
    a, b = livekit_cluster.nodes

    async def handler(req: agents.JobRequest) -> None:
        await req.accept(lambda ctx: None)

    w1 = agents.Worker(handler, **cluster_worker_kwargs(livekit_cluster, a.url, max_jobs=1))
    lk = node_api(b)
    most: dict[str, int] = {}

    async def agents_in(room: str) -> int:
        res = await lk.room.list_participants(api.ListParticipantsRequest(room=room))
        return sum(1 for p in res.participants if p.kind == models.ParticipantInfo.AGENT)

    async def watch(rooms: list[str]) -> None:
        while True:
            for room in rooms:
                try:
                    most[room] = max(most.get(room, 0), await agents_in(room))
                except Exception:
                    pass
            await asyncio.sleep(0.2)

    async with w1:
        r1 = helpers.unique_room("busy")
        user1 = await node_clients.join_via(a, r1, "user-1")
        await helpers.wait_until(lambda: w1.jobs, 20, "the first job")
        orphans = [helpers.unique_room("orphan") for _ in range(2)]
        for room in orphans:  # created while the only worker is full: never offered
            await node_clients.join_via(b, room, f"user-{room}")
        watcher = asyncio.create_task(watch(orphans))
        try:
            assert [await agents_in(room) for room in orphans] == [0, 0]
            w2 = agents.Worker(handler, **cluster_worker_kwargs(livekit_cluster, b.url, max_jobs=1))
            async with w2:  # another worker registers: it recovers one room
                await helpers.wait_until(lambda: w2.jobs, 40, "the new worker to take an orphaned room")
                await user1.leave()  # a slot frees on the first worker: it recovers the other
                await helpers.wait_until(
                    lambda: sorted(ctx.job.room.name for w in (w1, w2) for ctx in w.jobs.values()) == sorted(orphans),
                    60, "both orphaned rooms served")
                for room in orphans:
                    await helpers.wait_until(lambda room=room: most.get(room) == 1, 10, f"the agent in {room}")
        finally:
            watcher.cancel()
        assert all(most[room] == 1 for room in orphans), most  # never two agents in a room

