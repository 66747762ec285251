"""The worker: its registration with a LiveKit server, the offers it answers, its load.

The worker is split by object:

* :class:`~livekit.agents.connection.WorkerConnection`: the socket, registration, outbox,
  readiness ping and reconnects; the worker uses it through callbacks and ``send``;
* :class:`~livekit.agents.job_request.JobRequest`: one offer and its answer state;
* an executor (:mod:`livekit.agents.executor`): where the request handler and the agents
  run, ``inline`` (asyncio tasks here) or ``process`` (child processes);
* :class:`~livekit.agents.job_end.JobEnd`: how each job ended.

The worker itself decides whether it can take an offer (draining, ``max_jobs``, load,
plugins), speaks the protocol (availability, assignment, job status, load reports), and
runs the drain.

Lifecycle:

* ``await worker.run()`` runs until the worker is drained or closed; it raises
  :class:`~livekit.agents.exceptions.WorkerError` (or ``AuthenticationError``) when the
  server refuses the credentials, the URL is wrong, or the server stays unreachable for
  the whole retry budget.
* ``await worker.drain(timeout)`` (SIGTERM): report ``WS_FULL``, decline every new
  offer, wait for each running job to end on its own; after ``timeout`` end the rest.
* ``await worker.aclose()`` (second SIGTERM): end the running jobs now (they leave their
  rooms and report their status) and stop.

A lost connection is re-opened with exponential backoff and jitter, trying every URL of
the worker in order (:mod:`livekit.agents.failover`); running jobs keep their own room
connections (:mod:`livekit.agents.rejoin`). The worker sends ``migrate_job`` for them,
which livekit-server v1.13.5 ignores.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import logging
import math
import os
from typing import Any

from .exceptions import JobError, WorkerError
from .executor import resolve_executor
from .executor.base import Assignment, JobExecutor, JobInfo
from .hook_views import JobView, WorkerView
from .job import JobContext, JobType
from .job_end import JobEnd, JobEndKind
from .job_request import AcceptInfo, JobOffer, RequestHandler
from .options import LoadFunction, WorkerOptions, WorkerPermissions
from .orphans import is_recovery
from .protocol import room_url
from .version import __version__

logger = logging.getLogger("livekit.agents")

SERVER_TARGET_LOAD = 0.7
"""The LiveKit server's default ``agents.target_load``: it offers no job to a worker whose
reported load is at or above it."""

CUT_TIMEOUT = 15.0
"""Seconds the worker waits for the jobs it ended to leave their rooms."""


class Worker:
    """A worker process's connection to LiveKit and its running jobs.

    ``Worker(request_handler=handler, worker_type=JobType.JT_ROOM, **options)``; the
    options are the fields of :class:`WorkerOptions` (checked: an impossible value raises
    :class:`~livekit.agents.exceptions.InvalidOptionError`). Start it with
    :func:`livekit.agents.run_app` (CLI, signals, logs), or ``await worker.run()``, or
    ``async with worker:`` (returns once registered).
    """

    def __init__(
        self,
        request_handler: RequestHandler | None = None,
        worker_type: JobType | int = JobType.JT_ROOM,
        *,
        options: WorkerOptions | None = None,
        **kwargs: Any,
    ) -> None:
        changes = dict(kwargs)
        if request_handler is not None:
            changes["request_handler"] = request_handler
        if options is None or worker_type != JobType.JT_ROOM:
            changes["worker_type"] = worker_type
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(WorkerOptions)})
        if unknown:
            raise TypeError(f"Worker() got an unexpected option {unknown[0]!r}; see WorkerOptions")
        opts = dataclasses.replace(options or WorkerOptions(), **changes)
        if opts.request_handler is None:
            raise TypeError("Worker() needs a request_handler: async def handler(job_request): ...")
        self.options = opts

        self.connection_failed = False
        self.jobs_cut = 0
        self.health_port: int | None = None

        self._executor: JobExecutor | None = None
        self._prepared = False
        self._conn: Any = None
        self._offer_tasks: set[asyncio.Task[Any]] = set()
        self._reserved: set[str] = set()
        self._pending_assignments: dict[str, asyncio.Future[Any]] = {}
        self._draining = False
        self._drain_task: asyncio.Task[int] | None = None
        self._closing = False
        self._closed: asyncio.Event | None = None
        self._started: asyncio.Event | None = None
        self._jobs_changed: asyncio.Event | None = None
        self._first_registration: asyncio.Event | None = None
        self._fatal: BaseException | None = None
        self._load = 0.0
        self._measured_load = 0.0
        self._status_sent: int | None = None
        self._cpu: Any = None
        self._run_task: asyncio.Task[None] | None = None
        self._url = ""
        self._metrics: Any = None
        self._orphans: Any = None
        self._background: set[asyncio.Task[Any]] = set()
        self._api_credentials = ("", "")

    def configure(self, **changes: Any) -> WorkerOptions:
        """Replace options before the worker runs (one checked copy; the CLI applies its
        flags this way). Returns the new options."""
        if self._started is not None:
            raise WorkerError("a running worker's options cannot be changed")
        self.options = dataclasses.replace(self.options, **changes)
        self._executor = None
        self._prepared = False
        return self.options

    # --- state -------------------------------------------------------------------------

    @property
    def id(self) -> str | None:
        """The worker id the server gave at registration."""
        return self._conn.worker_id if self._conn is not None else None

    @property
    def server_info(self) -> Any:
        return self._conn.server_info if self._conn is not None else None

    @property
    def executor(self) -> JobExecutor:
        """The job executor (chosen by the ``job_executor`` option)."""
        if self._executor is None:
            self._executor = resolve_executor(self.options.job_executor)
        return self._executor

    @property
    def metrics(self) -> Any:
        """The worker's :class:`~livekit.agents.metrics.WorkerMetrics` (``GET /metrics``)."""
        if self._metrics is None:
            from .load import process_tree_rss
            from .metrics import WorkerMetrics

            self._metrics = WorkerMetrics(
                running=lambda: len(self._job_infos()), load=lambda: self._load,
                memory=lambda: process_tree_rss(os.getpid()), registered=lambda: self.registered,
                draining=lambda: self._draining)
        return self._metrics

    @property
    def draining(self) -> bool:
        return self._draining

    @property
    def jobs(self) -> dict[str, JobContext | JobInfo]:
        """The running jobs by id: the live :class:`JobContext` of a job in this process
        (``inline``), a :class:`~livekit.agents.executor.base.JobInfo` snapshot otherwise."""
        if self._executor is None:
            return {}
        return {info.id: self._executor.context(info.id) or info for info in self._executor.jobs()}

    def _job_infos(self) -> list[JobInfo]:
        return self._executor.jobs() if self._executor is not None else []

    @property
    def load(self) -> float:
        return self._load

    @property
    def registered(self) -> bool:
        return self._conn is not None and self._conn.ready

    def _busy(self) -> int:
        return len(self._job_infos()) + len(self._reserved)

    def _full_reason(self) -> str | None:
        if self._draining:
            return "the worker is draining"
        max_jobs = self.options.max_jobs
        busy = self._busy()
        if max_jobs is not None and busy >= max_jobs:
            return f"max_jobs reached ({busy}/{max_jobs})"
        if self._measured_load >= self.options.load_threshold:
            return f"load {self._measured_load:.2f} >= load_threshold {self.options.load_threshold:g}"
        return None

    def info(self) -> dict[str, Any]:
        """The worker's state, as served on ``GET /worker``."""
        from .load import process_tree_rss

        infos = self._job_infos()
        rss = process_tree_rss(os.getpid())
        return {
            "worker_id": self.id,
            "agent_name": self.options.agent_name,
            "worker_type": JobType(self.options.worker_type).name,
            "version": __version__,
            "registered": self.registered,
            "connection_failed": self.connection_failed,
            "status": "full" if self._full_reason() else "available",
            "draining": self._draining,
            "load": round(self._load, 4),
            "load_threshold": self.options.load_threshold,
            "max_jobs": self.options.max_jobs,
            "job_executor": self.executor.name or type(self.executor).__name__,
            "memory_rss_bytes": rss,
            "memory_rss_mb": round(rss / 2**20, 1) if rss is not None else None,
            "job_count": len(infos),
            "jobs": [info.as_dict() for info in infos],
            "processes": self.executor.processes() if hasattr(self.executor, "processes") else [],
        }

    # --- lifecycle ---------------------------------------------------------------------

    def _resolve_credentials(self) -> tuple[str, str, str]:
        """URL(s) (comma-separated when several), key and secret, or a WorkerError naming
        what is missing."""
        o = self.options
        url = (o.url if isinstance(o.url, str) or o.url is None else ",".join(o.url)) or os.environ.get("LIVEKIT_URL")
        key = o.api_key or os.environ.get("LIVEKIT_API_KEY")
        secret = o.api_secret or os.environ.get("LIVEKIT_API_SECRET")
        missing = [
            f"{what} (--{flag} or {env})"
            for what, flag, env, value in (
                ("the LiveKit URL", "url", "LIVEKIT_URL", url),
                ("the API key", "api-key", "LIVEKIT_API_KEY", key),
                ("the API secret", "api-secret", "LIVEKIT_API_SECRET", secret),
            )
            if not value
        ]
        if missing or not (url and key and secret):
            raise WorkerError("missing " + ", ".join(missing) + ": pass the flag or set the environment variable")
        return url, key, secret

    def prepare(self) -> None:
        """Resolve the executor and let it prepare (a process executor may fork here).
        ``run_app`` calls this before the event loop starts; ``run()`` calls it if needed."""
        if not self._prepared:
            self.executor.prepare(self.options)
            self._prepared = True

    async def run(self) -> None:
        """Connect, serve jobs, and return once drained or closed. Raises WorkerError on
        a fatal connection problem."""
        from .connection import WorkerConnection
        from .failover import parse_urls
        from .logging_setup import add_secret
        from .protocol import agent_url

        url, key, secret = self._resolve_credentials()
        urls = parse_urls(url)
        for each in urls:
            agent_url(each)  # a malformed URL is a clear error before anything starts
        url = urls[0]
        add_secret(secret)
        self._api_credentials = (key, secret)
        self._url = url
        self._closed = asyncio.Event()
        self._started = asyncio.Event()
        self._jobs_changed = asyncio.Event()
        self._first_registration = asyncio.Event()
        self.prepare()
        if self.options.load_fn is None:
            from .load import WorkerCPULoad

            self._cpu = WorkerCPULoad()
            logger.debug("load: CPU used by this worker's %s", self._cpu.source)

        health = None
        conn: asyncio.Task[None] | None = None
        reporter: asyncio.Task[None] | None = None
        try:
            await self.executor.start(self, self.options)
            if self.options.http_port is not None:
                health = await self._start_health()
            self._conn = WorkerConnection(
                url, key, secret, registration=self._registration, on_registered=self._on_registered,
                on_message=self._on_message, on_lost=self._on_lost, max_retry=self.options.max_retry,
                retry_base=self.options.retry_base, retry_max_delay=self.options.retry_max_delay, urls=urls,
            )
            self._started.set()
            conn = asyncio.create_task(self._run_connection(), name="livekit-agent-ws")
            reporter = asyncio.create_task(self._report_load(), name="livekit-agent-load")
            if self.options.recover_orphans and self.options.worker_type == JobType.JT_ROOM:
                from .orphans import OrphanRecovery

                self._orphans = OrphanRecovery(self, key, secret)
                self._background.add(asyncio.create_task(self._orphans.run(), name="livekit-agent-orphans"))
            await self._closed.wait()
        finally:
            self._closing = True
            for task in list(self._offer_tasks):
                task.cancel()
            await asyncio.gather(*self._offer_tasks, return_exceptions=True)
            if reporter is not None:
                reporter.cancel()
            for task in self._background:
                task.cancel()
            await asyncio.gather(*self._background, return_exceptions=True)
            # jobs still running were ended by drain/aclose, or the worker failed: they
            # leave their rooms and report their end before the connection closes
            await self.executor.aclose()
            if self._conn is not None:
                await self._conn.flush()
                await self._conn.aclose()
            if conn is not None:
                conn.cancel()
            await asyncio.gather(*(t for t in (conn, reporter) if t is not None), return_exceptions=True)
            if health is not None:
                await health.aclose()
        if self._fatal is not None:
            raise self._fatal

    async def _start_health(self) -> Any:
        from .health import HealthServer

        assert self.options.http_port is not None  # run() starts health only with a port
        health = HealthServer(self, self.options.http_host, self.options.http_port,
                              public_details=self.options.http_public_details)
        try:
            self.health_port = await health.start()
        except OSError as exc:
            raise WorkerError(
                f"cannot serve the health endpoint on {self.options.http_host}:{self.options.http_port}: "
                f"{exc.strerror or exc}. Choose another --http-port (0 picks a free one)."
            ) from None
        logger.info("health endpoint on http://%s:%s/ (/healthz, /readyz, /metrics; worker info at /worker%s)",
                    self.options.http_host, self.health_port,
                    "" if self.options.http_public_details else " for loopback clients")
        return health

    async def _run_connection(self) -> None:
        try:
            await self._conn.run()
        except WorkerError as exc:
            await self._give_up(exc)

    async def __aenter__(self) -> Worker:
        self._run_task = asyncio.create_task(self.run())
        while self._started is None or not self._started.is_set() or self._conn is None:
            if self._run_task.done():
                self._run_task.result()
            await asyncio.sleep(0.01)
        waiter = asyncio.create_task(self._conn.wait_ready())
        await asyncio.wait({waiter, self._run_task}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        if self._run_task.done():
            self._run_task.result()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
        if self._run_task is not None:
            await asyncio.gather(self._run_task, return_exceptions=True)

    def _close(self) -> None:
        self._closing = True
        if self._closed is not None:
            self._closed.set()

    async def drain(self, timeout: float | None = None) -> int:
        """Stop taking jobs and wait for the running ones to end (at most ``timeout``
        seconds, default ``drain_timeout``), then stop. Returns how many jobs were cut."""
        if self._drain_task is None:
            self._drain_task = asyncio.create_task(self._drain(self.options.drain_timeout if timeout is None else timeout))
        return await asyncio.shield(self._drain_task)

    async def _drain(self, timeout: float) -> int:
        self._draining = True
        running = len(self._job_infos())
        logger.info("draining: %d job(s) running; new jobs are declined; waiting up to %gs for them to end",
                    running, timeout, extra={"job_count": running})
        self._send_status(force=True)
        self._call_hook("worker_draining", worker=self)
        cut = 0
        try:
            await asyncio.wait_for(self._wait_idle(), timeout=timeout)
        except asyncio.TimeoutError:
            cut = await self._cut_jobs(JobEnd(JobEndKind.DRAIN_TIMEOUT, f"drain timeout ({timeout:g}s) reached"))
        if self._conn is not None:
            await self._conn.flush()
        self._close()
        return cut

    async def aclose(self, reason: str | JobEnd = "shutdown") -> int:
        """End every running job now (they leave their rooms and report their status) and
        stop. Returns how many jobs were cut."""
        self._draining = True
        end = JobEnd.parse(reason)
        if not end.detail:
            end = JobEnd(end.kind, "the worker is shutting down")
        cut = await self._cut_jobs(end) if self._job_infos() else 0
        if self._conn is not None:
            await self._conn.flush()
        self._close()
        return cut

    async def _wait_idle(self) -> None:
        assert self._jobs_changed is not None
        while self._job_infos() or self._reserved or self._pending_assignments:
            self._jobs_changed.clear()
            await self._jobs_changed.wait()

    async def _cut_jobs(self, end: JobEnd) -> int:
        running = self._job_infos()
        if not running:
            return 0
        self.jobs_cut += len(running)
        logger.warning("%s: ending %d job(s) still running: %s", end.detail or end.reason, len(running),
                       ", ".join(f"{i.id} (room {i.room_name})" for i in running),
                       extra={"jobs_cut": len(running), "reason": end.reason})
        for info in running:
            self.executor.end_job(info.id, end)
        try:
            await asyncio.wait_for(self._wait_idle(), timeout=CUT_TIMEOUT)
        except asyncio.TimeoutError:
            logger.error("%d job(s) did not leave their rooms within %gs", len(self._job_infos()), CUT_TIMEOUT)
        return len(running)

    async def _give_up(self, exc: BaseException) -> None:
        self.connection_failed = True
        self._fatal = exc
        if self._job_infos():
            await self._cut_jobs(JobEnd(JobEndKind.CONNECTION_LOST, "cannot reach the LiveKit server"))
        self._close()

    # --- connection callbacks ----------------------------------------------------------

    def _registration(self) -> Any:
        from livekit.protocol import agent as agent_pb

        o = self.options
        return agent_pb.RegisterWorkerRequest(
            type=agent_pb.JobType.Name(int(o.worker_type)),
            agent_name=o.agent_name,
            version=__version__,
            namespace=o.namespace,
            allowed_permissions=o.permissions.to_proto(),
        )

    def _on_registered(self, reconnect: bool) -> None:
        from livekit.protocol import agent as agent_pb

        o = self.options
        reset = getattr(self.options.load_fn or self._cpu, "reset", None)
        if callable(reset) and not reconnect:
            reset()  # the worker's start-up is not load
        if self._first_registration is not None:
            self._first_registration.set()
        self._url = self._conn.url
        if reconnect:
            self.metrics.reconnected()
        logger.info(
            "registered worker %s (%s%s) with LiveKit %s at %s",
            self.id, JobType(o.worker_type).name, f", agent_name {o.agent_name!r}" if o.agent_name else "",
            self.server_info.version, self._url, extra={"worker_id": self.id},
        )
        running = [info.id for info in self._job_infos()]
        if reconnect and running:
            logger.info("re-attaching %d running job(s) to the new registration", len(running))
            self._conn.send(agent_pb.WorkerMessage(migrate_job=agent_pb.MigrateJobRequest(job_ids=running)))
        self._status_sent = None
        self._send_status(force=True)
        self._call_hook("worker_registered", worker=self, worker_id=self.id, server_info=self.server_info)

    def _on_lost(self) -> None:
        for fut in self._pending_assignments.values():
            if not fut.done():
                fut.set_exception(JobError("the connection to the LiveKit server was lost before the job was assigned"))
        logger.warning("lost the connection to the LiveKit server; reconnecting (%d job(s) keep running)",
                       len(self._job_infos()))

    def _on_message(self, msg: Any) -> None:
        which = msg.WhichOneof("message")
        if which == "availability":
            task = asyncio.create_task(self._on_offer(msg.availability.job))
            self._offer_tasks.add(task)
            task.add_done_callback(self._offer_tasks.discard)
        elif which == "assignment":
            fut = self._pending_assignments.get(msg.assignment.job.id)
            if fut is not None and not fut.done():
                fut.set_result(msg.assignment)
            else:
                logger.warning("assignment for unknown job %s ignored", msg.assignment.job.id)
        elif which == "termination":
            job_id = msg.termination.job_id
            if self.executor.end_job(job_id, JobEnd(JobEndKind.TERMINATED, "the server terminated the job")):
                logger.info("server terminated job %s", job_id, extra={"job_id": job_id})

    # --- load and status ---------------------------------------------------------------

    async def _measure_load(self) -> float:
        try:
            fn = self.options.load_fn or self._cpu
            value = fn() if fn is not None else 0.0
            if inspect.isawaitable(value):
                value = await value
            measured = float(value)
        except Exception as exc:
            logger.warning("load_fn raised %s: %s; keeping the previous load", type(exc).__name__, exc)
            measured = self._measured_load
        for plugin_load in self._call_hook("worker_load", worker=self):
            try:
                measured = max(measured, float(plugin_load))
            except (TypeError, ValueError):
                pass
        return measured if math.isfinite(measured) else 1.0

    async def _report_load(self) -> None:
        # the load is measured from the first registration on: the start-up is not load
        assert self._first_registration is not None
        await self._first_registration.wait()
        while True:
            await asyncio.sleep(self.options.update_interval)
            self._measured_load = max(0.0, await self._measure_load())
            logger.debug("worker load %.2f (%d job(s))", self._measured_load, len(self._job_infos()))
            self._send_status(force=True)

    def _send_status(self, *, force: bool = False) -> None:
        """Send ``update_worker`` when the status changed (or always with ``force``)."""
        from livekit.protocol import agent as agent_pb

        full = self._full_reason() is not None
        status = agent_pb.WS_FULL if full else agent_pb.WS_AVAILABLE
        load = self._measured_load
        if self.options.max_jobs:
            load = max(load, self._busy() / self.options.max_jobs)
        self._load = min(1.0, load)
        if not full:
            # The LiveKit server dispatches only to workers whose load is below its
            # ``agents.target_load`` (0.7 by default) and weights them by 1 - load. While
            # this worker says it is available, its own threshold decides: report at most
            # just under the server's default target.
            load = min(load, SERVER_TARGET_LOAD - 0.01)
        if not force and status == self._status_sent:
            return
        if status != self._status_sent and self._status_sent is not None:
            logger.info("worker status: %s%s", "full" if full else "available",
                        f" ({self._full_reason()})" if full else "")
        self._status_sent = status
        if self._conn is None or not self._conn.connected:
            return
        self._conn.send(agent_pb.WorkerMessage(update_worker=agent_pb.UpdateWorkerStatus(
            status=status, load=min(1.0, load), job_count=len(self._job_infos()), draining=self._draining,
        )))

    # --- offers ------------------------------------------------------------------------

    def _send_availability(self, job_id: str, available: bool, accept: AcceptInfo | None = None) -> None:
        from livekit.protocol import agent as agent_pb

        resp = agent_pb.AvailabilityResponse(job_id=job_id, available=available)
        if accept is not None:
            resp.participant_identity = accept.identity
            resp.participant_name = accept.name
            resp.participant_metadata = accept.metadata
            resp.participant_attributes.update(accept.attributes)
        self._conn.send(agent_pb.WorkerMessage(availability=resp))

    async def _on_offer(self, job: Any) -> None:
        extra = {"job_id": job.id, "room": job.room.name}
        reason = self._full_reason()
        if reason is not None:
            self.metrics.offer_declined(reason.split()[0] if not self._draining else "draining")
            self._send_availability(job.id, False)
            logger.info("declined job %s in room %s: %s", job.id, job.room.name, reason, extra=extra)
            return
        self._reserved.add(job.id)
        self._send_status()
        try:
            if is_recovery(job):
                lost = await self._recovery_claim_lost(job)
                if lost is not None:
                    self.metrics.offer_declined("recovery_claim")
                    self._send_availability(job.id, False)
                    logger.info("declined job %s in room %s: %s", job.id, job.room.name, lost, extra=extra)
                    return
            if any(r is False for r in self._call_hook("job_offered", job_request=JobOffer(job))):
                self.metrics.offer_declined("plugin")
                self._send_availability(job.id, False)
                logger.info("declined job %s in room %s: a plugin declined it", job.id, job.room.name, extra=extra)
                return
            try:
                answer = await self.executor.request(job)
            except Exception as exc:  # the executor itself failed (not the handler): decline
                logger.exception("declined job %s in room %s: the %s executor failed: %s", job.id, job.room.name,
                                 self.executor.name, exc, extra=extra)
                self.metrics.offer_declined("executor")
                self._send_availability(job.id, False)
                return
            if answer.accept is None:
                self.metrics.offer_declined("handler")
                self._send_availability(job.id, False)
                return
            await self._take(job, answer.accept)
        finally:
            self._reserved.discard(job.id)
            self._send_status()
            self._notify_jobs_changed()

    async def _recovery_claim_lost(self, job: Any) -> str | None:
        """Why a job of an orphan-recovery dispatch must be declined (``None``: take it);
        see :func:`livekit.agents.orphans.admit`."""
        from livekit import api

        from .orphans import admit, http_url

        key, secret = self._api_credentials
        lk = api.LiveKitAPI(http_url(self._conn.url), key, secret)
        try:
            return await admit(lk, job)
        except Exception as exc:  # not knowing is no claim: decline, the room is served later
            return f"could not check its recovery claim ({type(exc).__name__}: {exc})"
        finally:
            await lk.aclose()

    async def _take(self, job: Any, accept: AcceptInfo) -> None:
        """The handler accepted ``job``: answer the server, wait for the assignment, launch."""
        extra = {"job_id": job.id, "room": job.room.name}
        if self._draining or self._closing:
            self._send_availability(job.id, False)
            why = f"job {job.id} cannot be accepted: the worker is draining"
            logger.info("declined job %s in room %s: the worker is draining", job.id, job.room.name, extra=extra)
            self.metrics.offer_declined("draining")
            await self.executor.abandon(job.id, why)
            return
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending_assignments[job.id] = fut
        self._send_availability(job.id, True, accept)
        try:
            assignment = await asyncio.wait_for(fut, timeout=self.options.assignment_timeout)
        except asyncio.TimeoutError:
            self.metrics.offer_declined("not_assigned")
            await self.executor.abandon(job.id, f"the server did not assign job {job.id} within "
                                                f"{self.options.assignment_timeout:g}s after it was accepted")
            return
        except JobError as exc:
            self.metrics.offer_declined("not_assigned")
            await self.executor.abandon(job.id, str(exc))
            return
        finally:
            self._pending_assignments.pop(job.id, None)
        if self._closing:
            await self.executor.abandon(job.id, f"job {job.id} was assigned while the worker was shutting down; "
                                                "not started")
            return
        assigned = assignment.job if assignment.HasField("job") else job
        room = assignment.url or room_url(self._url)
        fallback = tuple(room_url(u) for u in self._conn.servers.others(self._url))
        try:
            await self.executor.launch(job.id, Assignment(job=assigned, url=room, token=assignment.token,
                                                          fallback_urls=fallback))
        except Exception as exc:
            logger.exception("job %s in room %s could not be started: %s", job.id, job.room.name, exc, extra=extra)
            self.job_ended(JobInfo(job=assigned, agent_identity=accept.identity),
                           JobEnd.failure(f"could not be started: {type(exc).__name__}: {exc}"), None)
            return
        logger.info("accepted job %s in room %s (%s) as %s", job.id, job.room.name, JobType(job.type).name,
                    accept.identity, extra=extra)

    # --- executor events ---------------------------------------------------------------

    def executor_failed(self, why: str) -> None:
        """Executor event: the executor cannot start jobs any more (the process executor
        lost its zygote and the zygote's spare). The worker drains (the running jobs
        finish, within ``drain_timeout``) and stops with an error, so that ``run_app``
        exits non-zero and a supervisor restarts it."""
        if self._fatal is None:
            self._fatal = WorkerError(f"the {self.executor.name} executor failed: {why}")
        if self._drain_task is None and not self._closing:
            self._drain_task = asyncio.create_task(self._drain(self.options.drain_timeout))

    def job_running(self, info: JobInfo, context: JobContext | None) -> None:
        """Executor event: the job joined its room (see :class:`~livekit.agents.executor.base.ExecutorEvents`)."""
        from livekit.protocol import agent as agent_pb

        self.metrics.job_started()
        self._conn.send(agent_pb.WorkerMessage(update_job=agent_pb.UpdateJobStatus(
            job_id=info.id, status=agent_pb.JS_RUNNING)))
        self._call_hook("job_started", job_context=JobView.of(info))

    def job_ended(self, info: JobInfo, end: JobEnd, context: JobContext | None) -> None:
        """Executor event: the job ended and left its room."""
        from livekit.protocol import agent as agent_pb

        if end.failed:
            status = agent_pb.JS_FAILED
            error = end.detail if end.kind is JobEndKind.FAILED else \
                f"ended by the worker before the job finished ({end.reason})"
        else:
            status, error = agent_pb.JS_SUCCESS, ""
        self._conn.send(agent_pb.WorkerMessage(update_job=agent_pb.UpdateJobStatus(
            job_id=info.id, status=status, error=error)))
        self.metrics.job_ended(end)
        logger.info("job %s in room %s ended: %s", info.id, info.room_name, end.describe(),
                    extra={"job_id": info.id, "room": info.room_name, "reason": end.reason})
        self._call_hook("job_ended", job_context=JobView.of(info), reason=end.reason)
        self._send_status()
        self._notify_jobs_changed()

    def _notify_jobs_changed(self) -> None:
        if self._jobs_changed is not None:
            self._jobs_changed.set()

    def _call_hook(self, name: str, **kwargs: Any) -> list[Any]:
        """Call a worker hook through pluggy; plugins get a snapshot of the worker. A raising
        plugin is logged and skipped by the host, or raises here in strict mode."""
        from .plugin_host import get_plugin_host

        if kwargs.get("worker") is self:
            kwargs["worker"] = WorkerView.of(self)
        return get_plugin_host().call(name, **kwargs)


__all__ = ["LoadFunction", "RequestHandler", "Worker", "WorkerOptions", "WorkerPermissions"]
