"""Job dispatch latency: room created -> agent joined, beside a bare livekit.rtc client
joining the same server in the same run.

For each of N rooms: ``CreateRoom`` is called (t0) and the time is taken when the agent
function of the job runs (the agent is connected to the room). The baseline is a plain
``livekit.rtc.Room().connect()`` to a fresh room on the same server. Both run in this
process, against a LiveKit server on loopback started for the run.

    python bench/bench_dispatch.py [--rooms 20]

The server's share ("room created -> offer received") includes psrpc's worker selection,
which waits 200 ms after the first node answers (``DefaultAffinityShortCircuit`` in
livekit/psrpc, used by livekit-server v1.13.5); the worker's share is answering the offer,
receiving the assignment and joining the room.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import statistics
import time
import uuid


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * p
    lo, hi = math.floor(k), math.ceil(k)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


async def run(rooms: int) -> None:
    from livekit import agents, api, rtc

    from livekit.agents.testing.server import LiveKitServer

    with LiveKitServer() as srv:
        lkapi = srv.api()
        joined: dict[str, float] = {}
        offered: dict[str, float] = {}
        waiters: dict[str, asyncio.Event] = {}

        async def agent_fn(ctx: agents.JobContext) -> None:
            joined[ctx.room.name] = time.perf_counter()
            waiters[ctx.room.name].set()

        async def handler(req: agents.JobRequest) -> None:
            if req.room.name not in waiters:  # the baseline's rooms
                await req.reject()
                return
            offered[req.room.name] = time.perf_counter()
            await req.accept(agent_fn, auto_disconnect=agents.AutoDisconnect.NEVER,
                             auto_subscribe=agents.AutoSubscribe.SUBSCRIBE_NONE)

        worker = agents.Worker(handler, url=srv.url, api_key=srv.api_key, api_secret=srv.api_secret,
                               http_port=None, load_threshold=math.inf)
        dispatch: list[float] = []
        to_offer: list[float] = []
        offer_to_join: list[float] = []
        bare: list[float] = []
        async with worker:
            for i in range(rooms + 1):  # the first of each is a warm-up
                name = f"bench-{uuid.uuid4().hex[:8]}"
                waiters[name] = asyncio.Event()
                t0 = time.perf_counter()
                await lkapi.room.create_room(api.CreateRoomRequest(name=name, empty_timeout=30))
                await asyncio.wait_for(waiters[name].wait(), 30)
                if i:
                    dispatch.append(joined[name] - t0)
                    to_offer.append(offered[name] - t0)
                    offer_to_join.append(joined[name] - offered[name])
                await lkapi.room.delete_room(api.DeleteRoomRequest(room=name))

                base_room = f"bare-{uuid.uuid4().hex[:8]}"
                room = rtc.Room()
                t0 = time.perf_counter()
                await room.connect(srv.url, srv.token("bare-client", base_room))
                if i:
                    bare.append(time.perf_counter() - t0)
                await room.disconnect()
                await lkapi.room.delete_room(api.DeleteRoomRequest(room=base_room))
            await asyncio.sleep(0.5)
        await lkapi.aclose()

    def row(label: str, values: list[float]) -> str:
        return (f"{label:<44} p50 {statistics.median(values) * 1000:7.1f} ms   p95 {pct(values, 0.95) * 1000:7.1f} ms"
                f"   min {min(values) * 1000:6.1f} ms   max {max(values) * 1000:7.1f} ms")

    print(f"job dispatch over {rooms} rooms (LiveKit server on loopback, same run)")
    print(row("bare livekit.rtc client joins a room", bare))
    print(row("room created -> agent joined (worker)", dispatch))
    print(row("  of which: room created -> offer received", to_offer))
    print(row("  of which: offer received -> agent joined", offer_to_join))
    print(f"ratio (dispatch / bare join): p50 {statistics.median(dispatch) / statistics.median(bare):.2f}x   "
          f"p95 {pct(dispatch, 0.95) / pct(bare, 0.95):.2f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rooms", type=int, default=20)
    args = ap.parse_args()
    asyncio.run(run(max(20, args.rooms)))


if __name__ == "__main__":
    main()
