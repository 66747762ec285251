"""Orphan recovery on a two-node cluster: rooms created while every worker is full (with
participants, or empty) get an agent once a slot frees or another worker registers
(explicit dispatch); two workers that recover one room at the same instant bring it one
agent; no room ever has two (sampled from the room service and from a participant)."""

from __future__ import annotations

import asyncio

from livekit import agents, api
from livekit.protocol import models

from livekit.agents.orphans import MARKER, OrphanRecovery, http_url

from .conftest import AgentWatch, cluster_worker_kwargs, declined


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



async def test_two_workers_recovering_one_room_at_the_same_instant_never_bring_two_agents(
    livekit_cluster, node_clients, node_api, helpers
):
    a, b = livekit_cluster.nodes

    async def handler(req: agents.JobRequest) -> None:
        await req.accept(lambda ctx: None)

    room = helpers.unique_room("race")
    user = await node_clients.join_via(b, room, "user")  # no worker yet: the room is never offered
    # both workers have capacity; their own scan loops are off: the test runs their scans
    w1 = agents.Worker(handler, **cluster_worker_kwargs(livekit_cluster, a.url, recover_orphans=False))
    w2 = agents.Worker(handler, **cluster_worker_kwargs(livekit_cluster, b.url, recover_orphans=False))
    lk = node_api(b)
    async with w1, w2:
        lined_up = asyncio.Barrier(2)
        scanners = [OrphanRecovery(w, livekit_cluster.api_key, livekit_cluster.api_secret, grace=0.0, jitter=0.0,
                                   before_dispatch=lambda _room: lined_up.wait()) for w in (w1, w2)]
        with AgentWatch(lk, [room], {room: user}) as watch:
            # both find the orphan and dispatch to it at the same instant
            first = await asyncio.gather(scanners[0].scan(http_url(a.url)), scanners[1].scan(http_url(b.url)))
            assert first == [[room], [room]]

            async def settled() -> bool:  # every offer answered, no recovery dispatch but the winner's
                if watch.most[room] > 1:
                    return True  # the bug this test is for: fail on the assertion below
                if any(w._offer_tasks or w._pending_assignments for w in (w1, w2)):
                    return False
                marked = [d for d in await lk.agent_dispatch.list_dispatch(room) if d.metadata == MARKER]
                return len(marked) == (1 if watch.now[room] else 0)

            await helpers.wait_until(settled, 30, "both recovery jobs answered", interval=0.2)
            assert watch.most[room] <= 1, f"two agents in room {room}: {watch.most}"
            # at most one of the two jobs could be taken; when both lost, a later scan serves the room
            assert declined(w1, "recovery_claim") + declined(w2, "recovery_claim") >= 1
            for s in scanners:
                s.before_dispatch = None

            async def served() -> bool:
                if watch.now[room] == 1:
                    return True
                if await settled():
                    await scanners[0].scan(http_url(a.url))
                return False

            await helpers.wait_until(served, 60, "the room to get its agent", interval=0.5)
            await helpers.wait_until(lambda: sum(len(w.jobs) for w in (w1, w2)) == 1, 20, "one job running")
            samples = watch.samples
            await helpers.wait_until(lambda: watch.samples >= samples + 20, 30, "more samples of the room")
        assert watch.most[room] == 1, watch.most  # never two agents, seen by the server or the user
        assert watch.now[room] == 1


async def test_rooms_created_empty_while_full_get_one_agent_each_once_slots_free(
    livekit_cluster, node_clients, node_api, helpers
):
    a, b = livekit_cluster.nodes

    async def handler(req: agents.JobRequest) -> None:
        await req.accept(lambda ctx: None)  # the default auto-disconnect (ROOM_EMPTY)

    worker = agents.Worker(handler, **cluster_worker_kwargs(livekit_cluster, a.url, max_jobs=2))
    lk = node_api(b)
    async with worker:
        busy = [helpers.unique_room("busy") for _ in range(2)]
        users = [await node_clients.join_via(a, room, f"user-{i}") for i, room in enumerate(busy)]
        await helpers.wait_until(lambda: len(worker.jobs) == 2, 30, "the worker at max_jobs")
        empty = [helpers.unique_room("empty") for _ in range(2)]
        for room in empty:  # created empty (RoomService) while the only worker is full
            await lk.room.create_room(api.CreateRoomRequest(name=room, empty_timeout=300, departure_timeout=60))
        # a full worker is not even offered them (it reports WS_FULL): nothing serves them now
        assert [len((await lk.room.list_participants(api.ListParticipantsRequest(room=r))).participants)
                for r in empty] == [0, 0]
        with AgentWatch(lk, empty) as watch:
            for user in users:  # two slots free: their jobs leave with them
                await user.leave()
            await helpers.wait_until(
                lambda: sorted(ctx.job.room.name for ctx in worker.jobs.values()) == sorted(empty), 60,
                "an agent in each empty room")
            await helpers.wait_until(lambda: all(watch.now[r] == 1 for r in empty), 20, "the agents seen")

            # no loop: the agents stay in their empty rooms, and a room whose agent left once it
            # emptied again is not served again while it stays empty
            other = agents.Worker(handler, **cluster_worker_kwargs(livekit_cluster, b.url, recover_orphans=False))
            async with other:
                # claim_ttl 0: the recovery dispatches count as stale at once (as they do 30 s on)
                scanner = OrphanRecovery(other, livekit_cluster.api_key, livekit_cluster.api_secret, grace=0.0,
                                         jitter=0.0, claim_ttl=0.0)
                assert await scanner.scan(http_url(b.url)) == []
                visitor = await node_clients.join_via(b, empty[0], "visitor")
                job = next(ctx for ctx in worker.jobs.values() if ctx.job.room.name == empty[0])
                await helpers.wait_until(lambda: "visitor" in job.room.remote_participants, 20,
                                         "the agent to see the visitor")  # (on the server's 3 s batch)
                await visitor.leave()  # the room is empty again: its agent leaves (ROOM_EMPTY)
                await helpers.wait_until(lambda: [ctx.job.room.name for ctx in worker.jobs.values()] == [empty[1]],
                                         30, "the agent of the visited room to leave")
                await helpers.wait_until(lambda: watch.now[empty[0]] == 0, 20, "the room without its agent")
                assert await scanner.scan(http_url(b.url)) == []
                assert not other.jobs
        assert watch.most == dict.fromkeys(empty, 1), watch.most  # never two
