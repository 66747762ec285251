"""Job dispatch latency on one LiveKit node and on a two-node cluster, beside a bare
livekit.rtc client in the same run.

Rows, over N rooms each (p50/p95/min/max):

* bare join: a plain ``livekit.rtc`` client joins a room where another client waits;
  "seen" is when the waiting client gets ``participant_connected`` for it. livekit-server
  v1.13.5 announces a newcomer that publishes nothing only in a batch every 3 s, so this is
  2.8-3.0 s in a fresh room (see :mod:`livekit.agents.presence`).
* room created -> agent joined: ``CreateRoom`` (t0) until the job's agent function runs.
* room created -> another participant sees the agent: a client joins a new room (which
  creates it, t0); the time until that client gets ``participant_connected`` for the agent.
  Measured with the agent's announcement (what the framework does) and without it
  (``--no-announce`` shape, the "before": the agent waits for the server's 3 s batch).

The cluster rows run a worker registered on node A while the rooms and the client are on
node B (the job crosses nodes).

    python bench/bench_dispatch.py [--rooms 10]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import statistics
import time
import uuid
from typing import Any


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * p
    lo, hi = math.floor(k), math.ceil(k)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def row(label: str, values: list[float]) -> str:
    return (f"{label:<58} p50 {statistics.median(values) * 1000:7.1f} ms   p95 {pct(values, 0.95) * 1000:7.1f} ms"
            f"   min {min(values) * 1000:6.1f} ms   max {max(values) * 1000:7.1f} ms")


async def bare_join(node: Any) -> float:
    from livekit import rtc

    name = f"bare-{uuid.uuid4().hex[:8]}"
    first, second = rtc.Room(), rtc.Room()
    seen = asyncio.Event()
    first.on("participant_connected", lambda p: seen.set())
    await first.connect(node.url, node.token("first", name))
    t0 = time.perf_counter()
    await second.connect(node.url, node.token("second", name))
    await asyncio.wait_for(seen.wait(), 30)
    took = time.perf_counter() - t0
    await second.disconnect()
    await first.disconnect()
    return took


async def agent_seen(node: Any) -> float:
    """A client creates a room by joining it; until it sees the agent of the room's job."""
    from livekit import rtc

    name = f"seen-{uuid.uuid4().hex[:8]}"
    room = rtc.Room()
    seen = asyncio.Event()
    room.on("participant_connected",
            lambda p: seen.set() if p.kind == rtc.ParticipantKind.PARTICIPANT_KIND_AGENT else None)
    t0 = time.perf_counter()
    await room.connect(node.url, node.token("user", name))
    if not any(p.kind == rtc.ParticipantKind.PARTICIPANT_KIND_AGENT for p in room.remote_participants.values()):
        await asyncio.wait_for(seen.wait(), 30)
    took = time.perf_counter() - t0
    await room.disconnect()
    return took


async def measure(worker_node: Any, room_node: Any, rooms: int) -> dict[str, list[float]]:
    from livekit import agents, api

    import livekit.agents.presence as presence

    joined: dict[str, float] = {}
    waiters: dict[str, asyncio.Event] = {}

    async def agent_fn(ctx: agents.JobContext) -> None:
        joined[ctx.room.name] = time.perf_counter()
        if ctx.room.name in waiters:
            waiters[ctx.room.name].set()

    async def handler(req: agents.JobRequest) -> None:
        if req.room.name.startswith("bare-"):
            await req.reject()
            return
        await req.accept(agent_fn, auto_subscribe=agents.AutoSubscribe.SUBSCRIBE_NONE)

    results: dict[str, list[float]] = {"bare": [], "dispatch": [], "seen": [], "seen_before": []}
    real_announce = presence.announce

    async def no_announce(room: Any, job_id: str) -> bool:
        return False

    worker = agents.Worker(handler, url=worker_node.url, api_key=worker_node.api_key,
                           api_secret=worker_node.api_secret, http_port=None, load_threshold=math.inf)
    lkapi = room_node.api()
    async with worker:
        for i in range(rooms + 1):  # the first round is a warm-up
            name = f"bench-{uuid.uuid4().hex[:8]}"
            waiters[name] = asyncio.Event()
            t0 = time.perf_counter()
            await lkapi.room.create_room(api.CreateRoomRequest(name=name, empty_timeout=5))
            await asyncio.wait_for(waiters[name].wait(), 30)
            dispatch = joined[name] - t0
            await lkapi.room.delete_room(api.DeleteRoomRequest(room=name))
            bare = await bare_join(room_node)
            seen = await agent_seen(room_node)
            presence.announce = no_announce
            try:
                before = await agent_seen(room_node)
            finally:
                presence.announce = real_announce
            if i:
                for key, value in (("dispatch", dispatch), ("bare", bare), ("seen", seen), ("seen_before", before)):
                    results[key].append(value)
    await lkapi.aclose()
    return results


def report(title: str, r: dict[str, list[float]]) -> None:
    print(title)
    print(row("bare livekit.rtc client joins; the other client sees it", r["bare"]))
    print(row("room created -> agent joined (job's agent function runs)", r["dispatch"]))
    print(row("room created -> another participant sees the agent", r["seen"]))
    print(row("  the same without the agent's announcement (before)", r["seen_before"]))
    print(f"  ratio seen / bare join: p50 {statistics.median(r['seen']) / statistics.median(r['bare']):.2f}x; "
          f"before / after: p50 {statistics.median(r['seen_before']) / statistics.median(r['seen']):.1f}x")


async def run(rooms: int) -> None:
    from livekit.agents.testing.cluster import LiveKitCluster
    from livekit.agents.testing.server import LiveKitServer

    with LiveKitServer() as srv:
        single = await measure(srv, srv, rooms)
    with LiveKitCluster(nodes=2) as cluster:
        a, b = cluster.nodes
        clustered = await measure(a, b, rooms)
    print(f"dispatch and visibility over {rooms} rooms each (LiveKit v1.13.5 on loopback, same run)")
    report("single node:", single)
    report("two-node cluster (worker on node A, rooms and client on node B):", clustered)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rooms", type=int, default=10)
    args = ap.parse_args()
    asyncio.run(run(max(3, args.rooms)))


if __name__ == "__main__":
    main()
