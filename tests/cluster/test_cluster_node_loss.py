"""Losing a node of a two-node cluster (kill -9), with live jobs; the node coming back; a
Redis restart. Real livekit-server nodes and Redis, real rtc participants."""

from __future__ import annotations

import asyncio
import json
import re
import time
import urllib.request
from pathlib import Path
from typing import Any

from livekit import agents, api

from .conftest import cluster_worker_kwargs

TICKER = Path(__file__).parent / "agents" / "ticking_agent.py"


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
        user_b = await node_clients.join_via(b, room_b, "user-b")
        await node_clients.join_via(a, room_a, "user-a")
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


async def test_node_a_restart_serves_again_and_registrations_stay_consistent(
    livekit_cluster, node_clients, node_api, helpers
):
    a, b = livekit_cluster.nodes
    got: list[str] = []

    async def handler(req: agents.JobRequest) -> None:
        got.append(req.room.name)
        await req.accept(lambda ctx: None, auto_disconnect=agents.AutoDisconnect.NEVER)

    worker = agents.Worker(handler, **cluster_worker_kwargs(livekit_cluster, [a.url, b.url]))
    async with worker:
        a.kill()
        await helpers.wait_until(lambda: worker.registered and worker._conn.url == b.url, 10, "failover to B")
        first_id = worker.id
        a.start()  # same ports
        room = helpers.unique_room("via-a")

        async def created() -> bool:  # the restarted node answers once its routing is up again
            try:
                await node_api(a).room.create_room(api.CreateRoomRequest(name=room, empty_timeout=30))
            except Exception:  # twirp ServerError 503 "no response from servers"
                return False
            return True

        await helpers.wait_until(created, 30, "node A to create rooms again", interval=0.5)
        assert livekit_cluster.host_of(room) is a  # node A hosts rooms again
        await helpers.wait_until(lambda: room in got, 20, "a job for a room on the restarted node")
        # one registration, on B, the whole time: no duplicate worker, no job offered twice
        assert worker._conn.url == b.url and worker.id == first_id and got.count(room) == 1


async def test_redis_restart_keeps_running_jobs_and_dispatch(livekit_cluster, node_clients, node_api, helpers):
    a, b = livekit_cluster.nodes
    ended: dict[str, str] = {}
    agent_fn = ticking_agent(ended)

    async def handler(req: agents.JobRequest) -> None:
        await req.accept(agent_fn)

    worker = agents.Worker(handler, **cluster_worker_kwargs(livekit_cluster, [a.url, b.url]))
    async with worker:
        room = helpers.unique_room("redis")
        await node_api(b).room.create_room(api.CreateRoomRequest(name=room, empty_timeout=30))
        user = await node_clients.join_via(b, room, "user")
        await helpers.wait_until(lambda: ticks(user) >= 5, 20, "the agent's data")
        livekit_cluster.redis.restart()  # comes back empty (no persistence)
        before = ticks(user)
        await helpers.wait_until(lambda: ticks(user) >= before + 10, 20, "the agent's data after the restart")
        assert room not in ended and worker.registered
        after = helpers.unique_room("after-redis")

        async def created() -> bool:  # the nodes list themselves in the new Redis on their next stats update
            try:
                await node_api(b).room.create_room(api.CreateRoomRequest(name=after, empty_timeout=30))
            except Exception:  # "could not find any available nodes" until then
                return False
            return True

        await helpers.wait_until(created, 30, "node B to create rooms again", interval=0.5)
        await helpers.wait_until(
            lambda: after in [ctx.job.room.name for ctx in worker.jobs.values()], 30, "a job for a new room")


def log_entries(worker: Any) -> list[dict[str, Any]]:
    """The JSON log lines of a worker process."""
    return [json.loads(line) for line in worker.output().splitlines() if line.startswith("{")]


def ended_record(worker: Any, room: str) -> dict[str, Any] | None:
    """The worker's "job ... ended" record for the job of ``room`` (what it reported)."""
    return next((e for e in log_entries(worker) if e.get("room") == room and " ended: " in e["message"]), None)


def registrations(worker: Any) -> list[str]:
    return [e["message"] for e in log_entries(worker) if e["message"].startswith("registered worker")]


def health(worker: Any, path: str) -> str:
    """``GET path`` on the worker's health endpoint."""
    port = re.search(r"health endpoint on http://[^:]+:(\d+)/", worker.output())
    assert port, "the worker did not log its health endpoint"
    with urllib.request.urlopen(f"http://127.0.0.1:{port.group(1)}{path}", timeout=5) as r:
        return r.read().decode()


def tick_jobs(client: Any) -> list[str]:
    """The job id of each ``tick <job id> <n>`` the client received, in order."""
    return [data.split()[1].decode() for _, data in client.data if data.startswith(b"tick ")]


async def test_kill_node_a_under_the_process_executor_keeps_the_job_on_b(
    livekit_cluster, node_clients, node_api, agent_process, helpers
):
    """``start``'s default executor (``process``): the jobs run in job processes, which
    rejoin through the other node with the fallback URLs their assignment carries."""
    a, b = livekit_cluster.nodes
    worker = agent_process(TICKER, None, env=livekit_cluster.env())  # LIVEKIT_URL=A,B
    await worker.wait_output("registered worker", timeout=60)
    assert registrations(worker)[0].endswith(f"at {a.url}"), registrations(worker)
    assert json.loads(health(worker, "/worker"))["job_executor"] == "process"
    room_b, room_a = helpers.unique_room("on-b"), helpers.unique_room("on-a")
    await node_api(b).room.create_room(api.CreateRoomRequest(name=room_b, empty_timeout=60))
    await node_api(a).room.create_room(api.CreateRoomRequest(name=room_a, empty_timeout=60))
    assert livekit_cluster.host_of(room_b) is b and livekit_cluster.host_of(room_a) is a
    user_b = await node_clients.join_via(b, room_b, "user-b")
    user_a = await node_clients.join_via(a, room_a, "user-a")
    await helpers.wait_until(lambda: len(tick_jobs(user_b)) >= 5 and len(tick_jobs(user_a)) >= 5, 40,
                             "the agents' data in both rooms")
    job_b = tick_jobs(user_b)[0]

    a.kill()
    await worker.wait_output("registered worker", timeout=10, count=2)  # within 10 s of the kill
    assert registrations(worker)[1].endswith(f"at {b.url}"), registrations(worker)

    # the job whose room died with node A ends room_lost, reported failed
    await helpers.wait_until(lambda: ended_record(worker, room_a), 40, "the job of A's room to end")
    assert "ended: room_lost" in ended_record(worker, room_a)["message"], ended_record(worker, room_a)
    assert 'livekit_agents_jobs_failed_total{reason="room_lost"} 1.0' in health(worker, "/metrics")

    # the job whose room is on B keeps its agent: the same job's data keeps coming
    before = len(tick_jobs(user_b))
    await helpers.wait_until(lambda: len(tick_jobs(user_b)) >= before + 20, 40, "the agent's data after the loss")
    assert set(tick_jobs(user_b)) == {job_b}  # the same job all along, not a new one
    assert ended_record(worker, room_b) is None

    # new rooms get agents, through node B
    room_new = helpers.unique_room("after")
    await node_api(b).room.create_room(api.CreateRoomRequest(name=room_new, empty_timeout=60))
    user_new = await node_clients.join_via(b, room_new, "user-new")
    await helpers.wait_until(lambda: len(tick_jobs(user_new)) >= 5, 40, "an agent in a new room")
    assert worker.proc.poll() is None
