"""The health endpoint: liveness and readiness apart, valid JSON, details only for loopback
unless opted in, Prometheus metrics, and a clear error when the port is taken."""

from __future__ import annotations

import asyncio
import json
import socket
import urllib.error
import urllib.request
from typing import Any

import pytest
from livekit import agents

from livekit.agents.exceptions import WorkerError


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as res:
            return res.status, res.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


async def fetch(port: int, path: str, host: str = "127.0.0.1") -> tuple[int, str]:
    return await asyncio.to_thread(get, f"http://{host}:{port}{path}")


def strict_json(text: str) -> Any:
    def refuse(name: str) -> Any:
        raise ValueError(f"not JSON: {name}")

    return json.loads(text, parse_constant=refuse)


def non_loopback_address() -> str | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # no packet is sent: picks the outgoing interface
            addr = s.getsockname()[0]
        except OSError:
            return None
    return None if addr.startswith("127.") else addr


async def test_readiness_fails_while_draining_liveness_stays(livekit_server, lk, worker_opts, helpers):
    async def handler(req: agents.JobRequest) -> None:
        await req.accept(lambda ctx: None, auto_disconnect=agents.AutoDisconnect.NEVER)

    worker = agents.Worker(handler, **worker_opts())
    async with worker:
        port = worker.health_port
        assert await fetch(port, "/readyz") == (200, "ready")
        room = helpers.unique_room("ready")
        await lk.create_room(room)
        await helpers.wait_until(lambda: worker.jobs, 20, "a running job")
        drain = asyncio.create_task(worker.drain(timeout=60))
        await helpers.wait_until(lambda: worker.draining, 10, "draining")
        status, body = await fetch(port, "/readyz")
        assert status == 503 and "draining" in body
        assert await fetch(port, "/healthz") == (200, "OK")
        assert await fetch(port, "/") == (200, "OK")
        await lk.delete_room(room)
        assert await drain == 0


async def test_worker_json_is_valid_with_an_infinite_threshold(livekit_server, worker_opts):
    async def handler(req: agents.JobRequest) -> None:
        await req.reject()

    worker = agents.Worker(handler, **worker_opts())  # load_threshold=inf
    async with worker:
        status, body = await fetch(worker.health_port, "/worker")
        assert status == 200
        info = strict_json(body)
        assert info["load_threshold"] is None and info["registered"] is True


async def test_worker_details_only_for_loopback_unless_opted_in(livekit_server, worker_opts):
    addr = non_loopback_address()
    if addr is None:
        pytest.skip("this machine has no non-loopback IPv4 address to test from")

    async def handler(req: agents.JobRequest) -> None:
        await req.reject()

    private = agents.Worker(handler, **worker_opts(http_host="0.0.0.0"))
    public = agents.Worker(handler, **worker_opts(http_host="0.0.0.0", http_public_details=True))
    async with private, public:
        status, body = await fetch(private.health_port, "/worker", host=addr)
        assert status == 403 and "--http-public-details" in body
        assert (await fetch(private.health_port, "/worker"))[0] == 200  # loopback
        assert (await fetch(private.health_port, "/readyz", host=addr))[0] == 200  # probes stay public
        assert (await fetch(private.health_port, "/metrics", host=addr))[0] == 200
        status, body = await fetch(public.health_port, "/worker", host=addr)
        assert status == 200 and strict_json(body)["worker_id"] == public.id


async def test_port_taken_is_a_clear_error(livekit_server, worker_opts):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        async def handler(req: agents.JobRequest) -> None:
            await req.reject()

        worker = agents.Worker(handler, **worker_opts(http_host="127.0.0.1", http_port=port))
        with pytest.raises(WorkerError) as err:
            await asyncio.wait_for(worker.run(), 30)
        message = str(err.value)
        assert f"port {port}" in message and "already in use" in message and "--http-port" in message


async def test_metrics_count_jobs_and_declined_offers(livekit_server, lk, clients, worker_opts, helpers):
    async def handler(req: agents.JobRequest) -> None:
        if req.room.name.startswith("m2"):
            await req.reject()
        else:
            await req.accept(lambda ctx: None)

    worker = agents.Worker(handler, **worker_opts())
    async with worker:
        first, second = helpers.unique_room("m1"), helpers.unique_room("m2")
        user = await clients.join(first, "user")
        await helpers.wait_until(lambda: worker.jobs, 20, "the first job")
        await lk.create_room(second)  # rejected by the handler
        async def declined() -> bool:
            text = (await fetch(worker.health_port, "/metrics"))[1]
            return 'livekit_agents_offers_declined_total{reason="handler"} 1.0' in text

        await helpers.wait_until(declined, 20, "a declined offer counted")
        await user.leave()  # ROOM_EMPTY: auto_disconnect
        await helpers.wait_until(lambda: not worker.jobs, 20, "the job to end")
        status, text = await fetch(worker.health_port, "/metrics")
        assert status == 200
        assert "livekit_agents_jobs_started_total 1.0" in text
        assert 'livekit_agents_jobs_ended_total{reason="auto_disconnect"} 1.0' in text
        assert "livekit_agents_jobs_running 0.0" in text
        assert "livekit_agents_registered 1.0" in text
        assert "livekit_agents_memory_rss_bytes" in text
        await lk.delete_room(second)
