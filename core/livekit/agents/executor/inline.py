"""The ``inline`` executor: request handlers and jobs as asyncio tasks in the worker's process.

The cheapest executor (no process, no IPC; an idle job costs a couple of MB) and the one
``connect`` and the tests use. Nothing separates the jobs: an agent that blocks the event
loop stalls every job and the worker's connection, and one that leaks memory leaks it in
the worker. See docs/deployment.md for when to choose it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
from typing import TYPE_CHECKING, Any

from ..exceptions import JobError
from ..job import JobContext, run_job
from ..job_end import JobEnd, JobEndKind
from ..job_request import AcceptArguments, JobRequest, OfferAnswer, answer_request
from .base import Assignment, ExecutorEvents, JobExecutor, JobInfo

if TYPE_CHECKING:
    from livekit.protocol import agent as agent_pb

    from ..options import WorkerOptions

logger = logging.getLogger("livekit.agents")

LEAVE_TIMEOUT = 20.0
"""Seconds ``aclose()`` waits for ended jobs to leave their rooms."""


@dataclasses.dataclass
class _Accepted:
    request: JobRequest
    args: AcceptArguments
    started: asyncio.Future[None]


class _Responder:
    """Carries a request's answer to the executor, in the same process."""

    def __init__(self, executor: InlineExecutor) -> None:
        self._executor = executor

    async def accept(self, request: JobRequest, args: AcceptArguments) -> None:
        await self._executor._hold(request, args)

    async def reject(self, request: JobRequest) -> None:
        return None


class InlineExecutor(JobExecutor):
    """Runs every request handler and job as asyncio tasks on the worker's event loop."""

    name = "inline"

    def __init__(self) -> None:
        self._events: ExecutorEvents | None = None
        self._options: WorkerOptions | None = None
        self._accepted: dict[str, _Accepted] = {}
        self._handlers: set[asyncio.Task[Any]] = set()
        self._jobs: dict[str, tuple[JobContext, JobInfo, asyncio.Task[Any]]] = {}

    async def start(self, events: ExecutorEvents, options: WorkerOptions) -> None:
        if options.request_handler is None:
            raise TypeError("the worker has no request_handler")
        self._events = events
        self._options = options

    async def request(self, job: agent_pb.Job) -> OfferAnswer:
        assert self._options is not None and self._options.request_handler is not None
        request = JobRequest(job, _Responder(self), request_timeout=self._options.request_timeout)
        answer, task = await answer_request(self._options.request_handler, request, self._options.request_timeout)
        if not task.done():
            self._handlers.add(task)
            task.add_done_callback(self._handlers.discard)
        return answer

    async def launch(self, job_id: str, assignment: Assignment) -> None:
        accepted = self._accepted.pop(job_id, None)
        if accepted is None:
            raise JobError(f"job {job_id} was not accepted by the request handler; cannot launch it")
        from livekit import rtc

        ctx = JobContext(job=assignment.job, room=rtc.Room(), url=assignment.url, token=assignment.token,
                         accept_args=accepted.args, on_running=self._running)
        info = JobInfo(job=assignment.job, agent_identity=accepted.args.identity, started_at=ctx.started_at,
                       pid=os.getpid())
        task = asyncio.create_task(self._run(ctx), name=f"job-{job_id}")
        self._jobs[job_id] = (ctx, info, task)
        if not accepted.started.done():
            accepted.started.set_result(None)

    async def abandon(self, job_id: str, why: str) -> None:
        accepted = self._accepted.pop(job_id, None)
        if accepted is not None and not accepted.started.done():
            accepted.started.set_exception(JobError(why))

    def end_job(self, job_id: str, end: JobEnd) -> bool:
        entry = self._jobs.get(job_id)
        if entry is None:
            return False
        entry[0].shutdown(end)
        return True

    def jobs(self) -> list[JobInfo]:
        return [dataclasses.replace(info, status=ctx.status) for ctx, info, _ in self._jobs.values()]

    def context(self, job_id: str) -> JobContext | None:
        entry = self._jobs.get(job_id)
        return entry[0] if entry else None

    async def aclose(self) -> None:
        for task in list(self._handlers):
            task.cancel()
        for job_id in list(self._accepted):
            await self.abandon(job_id, f"job {job_id} was accepted while the worker was shutting down; not started")
        await asyncio.gather(*self._handlers, return_exceptions=True)
        tasks = [task for _, _, task in self._jobs.values()]
        for job_id in list(self._jobs):
            self.end_job(job_id, JobEnd(JobEndKind.SHUTDOWN))
        if tasks:
            # a room connection must never be abandoned half-way: let them leave
            await asyncio.wait(tasks, timeout=LEAVE_TIMEOUT)

    # --- jobs --------------------------------------------------------------------------

    def _hold(self, request: JobRequest, args: AcceptArguments) -> asyncio.Future[None]:
        """Keep an accepted request until :meth:`launch` or :meth:`abandon` resolves it."""
        started: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._accepted[request.id] = _Accepted(request, args, started)
        return started

    def _info(self, ctx: JobContext) -> JobInfo:
        entry = self._jobs.get(ctx.id)
        base = entry[1] if entry else JobInfo(job=ctx.job, agent_identity=ctx._args.identity)
        return dataclasses.replace(base, status=ctx.status)

    def _running(self, ctx: JobContext) -> None:
        if self._events is not None:
            self._events.job_running(self._info(ctx), ctx)

    async def _run(self, ctx: JobContext) -> None:
        try:
            end = await run_job(ctx)
        except Exception as exc:  # a bug in the job runner must not take the worker down
            logger.exception("job %s crashed: %s", ctx.id, exc, extra={"job_id": ctx.id})
            end = JobEnd.failure(f"{type(exc).__name__}: {exc}")
        ctx.status = "failed" if end.failed else "success"
        info = self._info(ctx)
        self._jobs.pop(ctx.id, None)
        if self._events is not None:
            self._events.job_ended(info, end, ctx)


__all__ = ["InlineExecutor"]
