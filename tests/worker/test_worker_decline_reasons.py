"""Why the worker declined an offer, as an operator sees it: the ``reason`` label of
``livekit_agents_offers_declined_total`` on ``/metrics``, the status the server is sent,
and the answer to the offer itself. Offers reach a worker that reports WS_FULL through the
websocket proxy of ``test_worker_drain_declines`` (the real server would not send them).

(The mutation run of the worker's offer and drain code found these unchecked: every
reason label but ``"handler"``, the load threshold's boundary, the status sent when an
already full worker starts draining, and a failing executor.)
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import urllib.request
from pathlib import Path
from typing import Any

from livekit import agents

from livekit.agents.executor.inline import InlineExecutor

# the proxy lives beside this file (the suite imports test modules by path: --import-mode=importlib)
_spec = importlib.util.spec_from_file_location("_drain_declines", Path(__file__).with_name("test_worker_drain_declines.py"))
assert _spec is not None and _spec.loader is not None
_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_module)
AgentProxy = _module.AgentProxy


def _declined(worker: agents.Worker) -> dict[str, float]:
    """``offers_declined_total`` by reason, read from the worker's ``/metrics``."""
    with urllib.request.urlopen(f"http://127.0.0.1:{worker.health_port}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    prefix = 'livekit_agents_offers_declined_total{reason="'
    counts: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith(prefix):
            label, value = line[len(prefix):].split('"} ')
            counts[label] = float(value)
    return counts


async def declined(worker: agents.Worker) -> dict[str, float]:
    return await asyncio.to_thread(_declined, worker)


def _statuses(proxy: AgentProxy, since: int = 0) -> list[Any]:
    return [m.update_worker for m in proxy.from_worker[since:] if m.WhichOneof("message") == "update_worker"]


def _offer(proxy: AgentProxy, job_id: str, room: str) -> Any:
    """An offer of ``room`` to inject (the real server would not offer it now)."""
    from livekit.protocol import agent as agent_pb

    job = agent_pb.Job(id=job_id, type=agent_pb.JT_ROOM)
    job.room.name = room
    job.room.sid = "RM_" + job_id
    proxy.injected.add(job_id)
    return agent_pb.ServerMessage(availability=agent_pb.AvailabilityRequest(job=job))


async def _stay(req: agents.JobRequest) -> None:
    await req.accept(lambda ctx: None, auto_disconnect=agents.AutoDisconnect.NEVER)


def _decline_lines(caplog, job_id: str) -> list[tuple[str, str, str]]:
    """The "declined job ..." INFO lines for ``job_id``: message and the ``job_id``/``room`` fields."""
    return [(r.getMessage(), getattr(r, "job_id", None), getattr(r, "room", None)) for r in caplog.records
            if r.name == "livekit.agents" and r.levelno == logging.INFO and r.getMessage().startswith(f"declined job {job_id} ")]


async def test_a_full_worker_declines_with_max_jobs_then_draining_and_tells_the_server_it_drains(
        livekit_server, lk, worker_opts, helpers, caplog):
    from livekit.protocol import agent as agent_pb

    caplog.set_level(logging.INFO, "livekit.agents")

    handled: list[str] = []

    async def handler(req: agents.JobRequest) -> None:
        handled.append(req.room.name)
        await _stay(req)

    busy = helpers.unique_room("full")
    async with AgentProxy(livekit_server.url) as proxy:
        # no periodic load reports: only the worker's own status changes reach the server
        worker = agents.Worker(handler, **worker_opts(url=proxy.url, max_jobs=1, update_interval=3600))
        async with worker:
            await lk.create_room(busy, empty_timeout=60)
            await helpers.wait_until(lambda: any(j.status == "running" for j in worker.jobs.values()),
                                     timeout=30, what="the job running in its room")
            await helpers.wait_until(lambda: any(s.status == agent_pb.WS_FULL for s in _statuses(proxy)),
                                     timeout=30, what="the worker reporting WS_FULL at max_jobs")

            over = helpers.unique_room("over")
            await proxy.inject(_offer(proxy, "AJ_over_max_jobs", over))
            answers = await helpers.wait_until(lambda: proxy.answers("AJ_over_max_jobs"), timeout=30,
                                               what="the answer to an offer over max_jobs")
            assert [a.available for a in answers] == [False]
            assert await declined(worker) == {"max_jobs": 1.0}
            assert _decline_lines(caplog, "AJ_over_max_jobs") == [
                (f"declined job AJ_over_max_jobs in room {over}: max_jobs reached (1/1)", "AJ_over_max_jobs", over)]

            # already WS_FULL: the drain still tells the server at once (not at the next
            # load report, an hour away here)
            sent = len(proxy.from_worker)
            drained = asyncio.create_task(worker.drain(timeout=60))
            [status] = await helpers.wait_until(lambda: [s for s in _statuses(proxy, sent) if s.draining], timeout=30,
                                                what="the status update saying the worker drains")
            assert status.status == agent_pb.WS_FULL and status.job_count == 1

            late = helpers.unique_room("drain")
            await proxy.inject(_offer(proxy, "AJ_while_draining", late))
            answers = await helpers.wait_until(lambda: proxy.answers("AJ_while_draining"), timeout=30,
                                               what="the answer to an offer while draining")
            assert [a.available for a in answers] == [False]
            assert _decline_lines(caplog, "AJ_while_draining") == [
                (f"declined job AJ_while_draining in room {late}: the worker is draining", "AJ_while_draining", late)]
            assert await declined(worker) == {"max_jobs": 1.0, "draining": 1.0}
            assert handled == [busy]
            await lk.delete_room(busy)
            assert await asyncio.wait_for(drained, 30) == 0


async def test_a_load_at_the_threshold_is_full(livekit_server, worker_opts, helpers):
    """``load_threshold``: "at or above this load the worker reports WS_FULL and declines
    offers" (WorkerOptions, docs/deployment.md)."""
    from livekit.protocol import agent as agent_pb

    handled: list[str] = []

    async def handler(req: agents.JobRequest) -> None:
        handled.append(req.room.name)
        await req.reject()

    async with AgentProxy(livekit_server.url) as proxy:
        worker = agents.Worker(handler, **worker_opts(url=proxy.url, load_fn=lambda: 0.5, load_threshold=0.5,
                                                      update_interval=0.2))
        async with worker:
            [full] = (await helpers.wait_until(
                lambda: [s for s in _statuses(proxy) if s.status == agent_pb.WS_FULL], timeout=30,
                what="the worker reporting WS_FULL at load == load_threshold"))[:1]
            assert full.load == 0.5
            await proxy.inject(_offer(proxy, "AJ_at_threshold", helpers.unique_room("load")))
            answers = await helpers.wait_until(lambda: proxy.answers("AJ_at_threshold"), timeout=30,
                                               what="the answer to an offer at the load threshold")
            assert [a.available for a in answers] == [False]
            assert await declined(worker) == {"load": 1.0}
            assert handled == []
            assert worker.info()["status"] == "full"


class FailsOnce(InlineExecutor):
    """An executor whose first ``request`` fails (as a process executor does when it cannot
    reach a job process), then works."""

    name = "fails-once"

    def __init__(self) -> None:
        super().__init__()
        self.failed = False

    async def request(self, job: Any) -> Any:
        if not self.failed:
            self.failed = True
            raise ConnectionError("no job process answered")
        return await super().request(job)


async def test_an_executor_failure_declines_the_offer_and_the_worker_goes_on(livekit_server, lk, worker_opts,
                                                                              helpers, caplog):
    caplog.set_level(logging.INFO, "livekit.agents")
    handled: list[str] = []

    async def handler(req: agents.JobRequest) -> None:
        handled.append(req.room.name)
        await req.accept(lambda ctx: None)

    executor = FailsOnce()
    first, second = helpers.unique_room("execfail"), helpers.unique_room("after")
    async with AgentProxy(livekit_server.url) as proxy:
        worker = agents.Worker(handler, **worker_opts(url=proxy.url, job_executor=executor))
        async with worker:
            await lk.create_room(first, empty_timeout=30)
            offer = (await helpers.wait_until(lambda: proxy.offers, timeout=30, what="the first offer"))[0]
            answers = await helpers.wait_until(lambda: proxy.answers(offer.id), timeout=30,
                                               what="the answer to the offer the executor failed on")
            assert [a.available for a in answers] == [False]
            assert executor.failed and handled == []
            [line] = [r for r in caplog.records if r.levelno == logging.ERROR and r.name == "livekit.agents"]
            assert line.getMessage() == (f"declined job {offer.id} in room {first}: the fails-once executor "
                                         "failed: no job process answered")
            assert (line.job_id, line.room) == (offer.id, first)  # the fields a log search filters on
            assert line.exc_info is not None and isinstance(line.exc_info[1], ConnectionError)
            # the next offer is handled as usual
            await lk.create_room(second, empty_timeout=30)
            await helpers.wait_until(lambda: lk.agents_in(second), timeout=30, what="the agent in the next room")
            assert second in handled
            await lk.delete_room(second)
            await lk.delete_room(first)


async def test_an_offer_declined_for_an_executor_failure_is_counted(livekit_server, lk, worker_opts, helpers):
    executor = FailsOnce()
    room = helpers.unique_room("execcount")
    async with AgentProxy(livekit_server.url) as proxy:
        worker = agents.Worker(_stay, **worker_opts(url=proxy.url, job_executor=executor))
        async with worker:
            await lk.create_room(room, empty_timeout=30)
            offer = (await helpers.wait_until(lambda: proxy.offers, timeout=30, what="the first offer"))[0]
            await helpers.wait_until(lambda: proxy.answers(offer.id), timeout=30, what="the answer to the offer")
            assert await declined(worker) == {"executor": 1.0}
    await lk.delete_room(room)


async def test_a_drained_worker_tells_the_server_how_its_cut_job_ended_before_it_disconnects(
        livekit_server, lk, worker_opts, helpers):
    from livekit.protocol import agent as agent_pb

    room = helpers.unique_room("cut")
    async with AgentProxy(livekit_server.url) as proxy:
        worker = agents.Worker(_stay, **worker_opts(url=proxy.url))
        async with worker:
            await lk.create_room(room, empty_timeout=60)
            await helpers.wait_until(lambda: any(j.status == "running" for j in worker.jobs.values()),
                                     timeout=30, what="the job running in its room")
            [job_id] = list(worker.jobs)
            assert await asyncio.wait_for(worker.drain(timeout=0.3), 60) == 1
        # the worker has closed its socket: what it sent before is all the server gets
        ends = [m.update_job for m in proxy.from_worker
                if m.WhichOneof("message") == "update_job" and m.update_job.job_id == job_id
                and m.update_job.status != agent_pb.JS_RUNNING]
        assert [(e.status, e.error) for e in ends] == [
            (agent_pb.JS_FAILED, "ended by the worker before the job finished (drain_timeout)")]
    await lk.delete_room(room)
