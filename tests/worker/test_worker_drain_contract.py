"""What drain() promises an operator, against the real server: it waits ``drain_timeout``
(or the ``timeout`` given) for the running jobs, then cuts them and says how many; it
logs what it waits for; plugins hear ``worker_draining`` with the worker already draining.
(The mutation run of the worker's drain code found these unchecked.)"""

from __future__ import annotations

import asyncio
import logging

from livekit import agents


def _cut_lines(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "livekit.agents" and "ending" in r.getMessage()
            and r.levelno == logging.WARNING]


def _drain_lines(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "livekit.agents" and r.getMessage().startswith("draining: ")]


async def _running_job(worker, lk, helpers) -> str:
    room = helpers.unique_room("drain")
    await lk.create_room(room, empty_timeout=60)
    await helpers.wait_until(lambda: any(j.status == "running" for j in worker.jobs.values()),
                             timeout=30, what="the job running in its room")
    return room


async def _stay(req: agents.JobRequest) -> None:
    await req.accept(lambda ctx: None, auto_disconnect=agents.AutoDisconnect.NEVER)


async def test_drain_waits_drain_timeout_then_cuts_the_running_job(livekit_server, lk, worker_opts, helpers,
                                                                    plugin_host, caplog):
    seen: list[tuple[bool, int]] = []
    ended: list[str] = []

    class Recorder:
        PLUGIN_API = (1, 0)

        @agents.hookimpl
        def worker_draining(self, worker):
            seen.append((worker.draining, worker.job_count))

        @agents.hookimpl
        def job_ended(self, job_context, reason):
            ended.append(reason)

    plugin_host.register_plugin("drain-recorder", Recorder())
    caplog.set_level(logging.INFO, "livekit.agents")
    worker = agents.Worker(_stay, **worker_opts(drain_timeout=0.5))
    async with worker:
        room = await _running_job(worker, lk, helpers)
        cut = await asyncio.wait_for(worker.drain(), 60)  # no timeout given: drain_timeout applies
        assert cut == 1
        assert worker.draining
    [line] = _drain_lines(caplog)
    assert line.getMessage() == "draining: 1 job(s) running; new jobs are declined; waiting up to 0.5s for them to end"
    assert line.job_count == 1
    assert seen == [(True, 1)]
    # the cut job ends for the drain timeout, and the operator is told which timeout cut it
    assert ended == ["drain_timeout"]
    [cut_line] = _cut_lines(caplog)
    assert cut_line.getMessage().startswith("drain timeout (0.5s) reached: ending 1 job(s) still running: ")
    assert cut_line.reason == "drain_timeout"
    await lk.delete_room(room)


async def test_a_timeout_given_to_drain_overrides_drain_timeout(livekit_server, lk, worker_opts, helpers, caplog):
    caplog.set_level(logging.INFO, "livekit.agents")
    worker = agents.Worker(_stay, **worker_opts(drain_timeout=600))
    async with worker:
        room = await _running_job(worker, lk, helpers)
        cut = await asyncio.wait_for(worker.drain(timeout=0.3), 60)
        assert cut == 1
    [line] = _drain_lines(caplog)
    assert line.getMessage().endswith("waiting up to 0.3s for them to end")
    await lk.delete_room(room)
