"""The worker: one authenticated websocket to a LiveKit server, and the jobs it runs.

The worker registers at ``<url>/agent`` (``livekit.protocol.agent`` messages), is offered
jobs (``availability``), asks the plugins (``job_offered``) and then the user's request
handler whether to take each one, and runs the accepted ones as asyncio tasks in this
process (:class:`~livekit.agents.job.JobContext`). It reports its load and job count, and
each job's status, to the server.

Lifecycle:

* ``await worker.run()`` runs until the worker is drained or closed; it raises
  :class:`~livekit.agents.exceptions.WorkerError` (or ``AuthenticationError``) when the
  server refuses the credentials, the URL is wrong, or the server stays unreachable for
  the whole retry budget.
* ``await worker.drain(timeout)`` (SIGTERM): report ``WS_FULL``, decline every new
  offer, wait for each running job to end on its own; after ``timeout`` end the rest.
* ``await worker.aclose()`` (second SIGTERM): end the running jobs now (they leave their
  rooms and report their status) and stop.

A lost connection is re-opened with exponential backoff and jitter; running jobs keep
running and are re-attached to the new registration (``migrate_job``).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
import os
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from .exceptions import AuthenticationError, JobError, WorkerError
from .job import AcceptArguments, JobContext, JobRequest, JobType
from .protocol import REGISTER_TIMEOUT, RetryableConnectionError, open_socket, room_url
from .version import __version__

logger = logging.getLogger("livekit.agents")

SERVER_TARGET_LOAD = 0.7
"""The LiveKit server's default ``agents.target_load``: it offers no job to a worker whose
reported load is at or above it."""

RequestHandler = Callable[[JobRequest], Awaitable[None]]
LoadFunction = Callable[[], "float | Awaitable[float]"]


@dataclass
class WorkerPermissions:
    """What the agents of this worker may do in their rooms (sent at registration; the
    server puts them in the token of each job)."""

    can_publish: bool = True
    can_subscribe: bool = True
    can_publish_data: bool = True
    can_update_metadata: bool = True
    can_publish_sources: list[str] = field(default_factory=list)
    """Track sources the agent may publish (``"microphone"``, ``"camera"``, ...); empty = any."""
    hidden: bool = False

    def to_proto(self) -> Any:
        from livekit.protocol import models

        sources = [getattr(models.TrackSource, s.upper()) for s in self.can_publish_sources]
        return models.ParticipantPermission(
            can_publish=self.can_publish,
            can_subscribe=self.can_subscribe,
            can_publish_data=self.can_publish_data,
            can_update_metadata=self.can_update_metadata,
            can_publish_sources=sources,
            hidden=self.hidden,
            agent=True,
        )


@dataclass
class WorkerOptions:
    """Every setting of a :class:`Worker` (its keyword arguments)."""

    request_handler: RequestHandler | None = None
    """Called with each :class:`JobRequest`; must accept or reject within ``request_timeout``."""
    worker_type: JobType = JobType.JT_ROOM
    url: str | None = None
    """LiveKit server URL; default ``$LIVEKIT_URL``."""
    api_key: str | None = None
    """Default ``$LIVEKIT_API_KEY``."""
    api_secret: str | None = None
    """Default ``$LIVEKIT_API_SECRET``."""
    agent_name: str = ""
    """Empty: dispatched automatically for every room/publisher. A name: explicit dispatch only."""
    permissions: WorkerPermissions = field(default_factory=WorkerPermissions)
    max_jobs: int | None = None
    """Most jobs run at once (offers being answered count too); ``None``: no limit."""
    load_fn: LoadFunction | None = None
    """Returns the worker's load in 0..1 (sync or async); default: machine CPU utilisation."""
    load_threshold: float = 0.7
    """At or above this load the worker reports WS_FULL and declines offers (``math.inf``:
    never). 0.7 is also the LiveKit server's default ``agents.target_load``."""
    drain_timeout: float = 1800.0
    """Seconds a draining worker waits for its jobs before ending them."""
    http_host: str = "0.0.0.0"
    http_port: int | None = 8081
    """Health endpoint port (0: any free port; ``None``: no endpoint)."""
    request_timeout: float = 7.5
    """Seconds the request handler has to accept or reject (the server waits 10 s)."""
    assignment_timeout: float = 10.0
    max_retry: int = 16
    """Connection attempts in a row before the worker gives up."""
    retry_base: float = 0.5
    retry_max_delay: float = 10.0
    update_interval: float = 2.5
    """Seconds between load reports."""
    namespace: str = ""
    job_executor: str = "inline"
    """Where jobs run: ``"inline"`` (asyncio tasks in the worker process) or ``"process"``
    (child processes; see :mod:`livekit.agents.executor.process`)."""
    num_processes: int | None = None
    """``process``, sharded: how many job processes (default: one per CPU available)."""
    jobs_per_process: int | None = None
    """``process``: jobs a process runs in its life (``1``: a fresh process per job);
    ``None``: sharded over ``num_processes`` long-lived processes."""
    num_idle_processes: int = 1
    """``process`` with ``jobs_per_process``: processes kept started ahead of offers."""
    ping_interval: float = 2.5
    """``process``: seconds between pings to each job process."""
    ping_timeout: float = 30.0
    """``process``: a job process that answers no ping for this long is killed and its jobs fail."""
    memory_warn_mb: float | None = 500.0
    """``process``: log a warning when a job process's memory (PSS) goes above this."""
    memory_limit_mb: float | None = None
    """``process``: kill a job process whose memory (PSS) goes above this; its jobs fail."""
    blocked_loop_threshold: float | None = 0.5
    """Log the job (and its stack) that blocks an event loop longer than this (``None``: off)."""


class Worker:
    """A worker process's connection to LiveKit and its running jobs.

    ``Worker(request_handler=handler, worker_type=JobType.JT_ROOM, **options)``; the
    options are the fields of :class:`WorkerOptions`. Start it with
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
        opts = options or WorkerOptions()
        if request_handler is not None:
            opts.request_handler = request_handler
        if options is None or worker_type != JobType.JT_ROOM:
            opts.worker_type = JobType(worker_type)
        for key, value in kwargs.items():
            if not hasattr(opts, key):
                raise TypeError(f"Worker() got an unexpected option {key!r}; see WorkerOptions")
            setattr(opts, key, value)
        if opts.request_handler is None:
            raise TypeError("Worker() needs a request_handler: async def handler(job_request): ...")
        self.options = opts

        self.id: str | None = None
        self.server_info: Any = None
        self.connection_failed = False
        self.jobs_cut = 0
        self.health_port: int | None = None

        self._jobs: dict[str, JobContext] = {}
        self._job_tasks: set[asyncio.Task[Any]] = set()
        self._offer_tasks: set[asyncio.Task[Any]] = set()
        self._reserved: set[str] = set()
        self._pending_assignments: dict[str, asyncio.Future[Any]] = {}
        self._outbox: list[Any] = []
        self._outbox_event: asyncio.Event | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._draining = False
        self._drain_task: asyncio.Task[int] | None = None
        self._closing = False
        self._closed: asyncio.Event | None = None
        self._registered: asyncio.Event | None = None
        self._jobs_changed: asyncio.Event | None = None
        self._fatal: BaseException | None = None
        self._load = 0.0
        self._measured_load = 0.0
        self._status_sent: int | None = None
        self._cpu: Any = None
        self._run_task: asyncio.Task[None] | None = None
        self._url = ""
        self._executor: Any = None
        self._watchdog: Any = None

    # --- state -------------------------------------------------------------------------

    @property
    def draining(self) -> bool:
        return self._draining

    @property
    def jobs(self) -> dict[str, JobContext]:
        """The running jobs by id."""
        return dict(self._jobs)

    @property
    def load(self) -> float:
        return self._load

    @property
    def registered(self) -> bool:
        return self._registered is not None and self._registered.is_set()

    def _full_reason(self) -> str | None:
        if self._draining:
            return "the worker is draining"
        max_jobs = self.options.max_jobs
        busy = len(self._jobs) + len(self._reserved)
        if max_jobs is not None and busy >= max_jobs:
            return f"max_jobs reached ({busy}/{max_jobs})"
        if self._measured_load >= self.options.load_threshold:
            return f"load {self._measured_load:.2f} >= load_threshold {self.options.load_threshold:g}"
        return None

    def info(self) -> dict[str, Any]:
        """The worker's state, as served on ``GET /worker``."""
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
            "job_count": len(self._jobs),
            "jobs": [
                {
                    "id": ctx.id,
                    "room": ctx.job.room.name,
                    "type": JobType(ctx.job.type).name,
                    "participant": ctx.publisher_identity,
                    "status": ctx.status,
                    "started_at": ctx.started_at,
                }
                for ctx in self._jobs.values()
            ],
            "job_executor": self.options.job_executor,
            "processes": self._executor.processes() if self._executor is not None else [],
        }

    # --- lifecycle ---------------------------------------------------------------------

    def _resolve_credentials(self) -> tuple[str, str, str]:
        o = self.options
        url = o.url or os.environ.get("LIVEKIT_URL")
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
        if missing:
            raise WorkerError("missing " + ", ".join(missing) + ": pass the flag or set the environment variable")
        return url, key, secret  # type: ignore[return-value]

    async def run(self) -> None:
        """Connect, serve jobs, and return once drained or closed. Raises WorkerError on
        a fatal connection problem."""
        from .logging_setup import add_secret

        url, key, secret = self._resolve_credentials()
        add_secret(secret)
        self._url = url
        self._closed = asyncio.Event()
        self._registered = asyncio.Event()
        self._jobs_changed = asyncio.Event()
        self._outbox_event = asyncio.Event()
        if self.options.job_executor == "process":
            from .executor.process import ProcessExecutor

            self._executor = ProcessExecutor(self.options, on_running=self._remote_running,
                                             on_ended=self._remote_ended)
            self._executor.start()  # forks the zygote: before any thread
            await self._executor.astart()
        elif self.options.blocked_loop_threshold:
            from .watchdog import LoopWatchdog

            self._watchdog = LoopWatchdog(asyncio.get_running_loop(), threshold=self.options.blocked_loop_threshold)
            self._watchdog.start()
        if self.options.load_fn is None:
            from .load import CPULoad

            self._cpu = CPULoad()

        health = None
        if self.options.http_port is not None:
            from .health import HealthServer

            health = HealthServer(self, self.options.http_host, self.options.http_port)
            try:
                self.health_port = await health.start()
            except OSError as exc:
                raise WorkerError(
                    f"cannot serve the health endpoint on {self.options.http_host}:{self.options.http_port}: "
                    f"{exc.strerror or exc}. Choose another --http-port (0 picks a free one)."
                ) from None
            logger.info("health endpoint on http://%s:%s/ (worker info at /worker)",
                        self.options.http_host, self.health_port)

        session = aiohttp.ClientSession()
        conn = asyncio.create_task(self._connection_loop(session, url, key, secret), name="livekit-agent-ws")
        try:
            await self._closed.wait()
        finally:
            self._closing = True
            for task in list(self._offer_tasks):
                task.cancel()
            await asyncio.gather(*self._offer_tasks, return_exceptions=True)
            if self._job_tasks:
                # jobs still here were ended by drain/aclose; let them leave their rooms
                # (a room connection must never be abandoned half-way)
                for ctx in list(self._jobs.values()):
                    ctx.shutdown("shutdown")
                await asyncio.wait(list(self._job_tasks), timeout=20.0)
            if self._executor is not None:
                for ctx in list(self._jobs.values()):
                    ctx.shutdown("shutdown")
                await self._executor.aclose()
                await self._flush_outbox()
            conn.cancel()
            await asyncio.gather(conn, return_exceptions=True)
            if self._ws is not None and not self._ws.closed:
                await self._ws.close()
            await session.close()
            if health is not None:
                await health.aclose()
            if self._watchdog is not None:
                self._watchdog.stop()
        if self._fatal is not None:
            raise self._fatal

    async def __aenter__(self) -> Worker:
        self._run_task = asyncio.create_task(self.run())
        while self._registered is None:
            if self._run_task.done():
                self._run_task.result()
            await asyncio.sleep(0.01)
        waiter = asyncio.create_task(self._registered.wait())
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
        logger.info("draining: %d job(s) running; new jobs are declined; waiting up to %gs for them to end",
                    len(self._jobs), timeout, extra={"job_count": len(self._jobs)})
        self._send_status(force=True)
        self._call_hook("worker_draining", worker=self)
        cut = 0
        try:
            await asyncio.wait_for(self._wait_idle(), timeout=timeout)
        except asyncio.TimeoutError:
            cut = await self._cut_jobs("drain_timeout", f"drain timeout ({timeout:g}s) reached")
        await self._flush_outbox()
        self._close()
        return cut

    async def aclose(self, reason: str = "shutdown") -> int:
        """End every running job now (they leave their rooms and report their status) and
        stop. Returns how many jobs were cut."""
        self._draining = True
        cut = await self._cut_jobs(reason, "the worker is shutting down") if self._jobs else 0
        await self._flush_outbox()
        self._close()
        return cut

    async def _wait_idle(self) -> None:
        assert self._jobs_changed is not None
        while self._jobs or self._reserved or self._pending_assignments:
            self._jobs_changed.clear()
            await self._jobs_changed.wait()

    async def _cut_jobs(self, reason: str, why: str) -> int:
        running = list(self._jobs.values())
        if not running:
            return 0
        self.jobs_cut += len(running)
        logger.warning("%s: ending %d job(s) still running: %s", why, len(running),
                       ", ".join(f"{c.id} (room {c.job.room.name})" for c in running),
                       extra={"jobs_cut": len(running), "reason": reason})
        for ctx in running:
            ctx.shutdown(reason)
        try:
            await asyncio.wait_for(self._wait_idle(), timeout=15.0)
        except asyncio.TimeoutError:
            logger.error("%d job(s) did not leave their rooms within 15s", len(self._jobs))
        return len(running)

    async def _flush_outbox(self, timeout: float = 2.0) -> None:
        deadline = time.monotonic() + timeout
        while self._outbox and self._ws is not None and not self._ws.closed and time.monotonic() < deadline:
            await asyncio.sleep(0.02)

    # --- connection --------------------------------------------------------------------

    async def _connection_loop(self, session: aiohttp.ClientSession, url: str, key: str, secret: str) -> None:
        attempt = 0
        while not self._closing:
            try:
                ws = await open_socket(session, url, key, secret)
                try:
                    await self._register(ws)
                except BaseException:
                    await ws.close()
                    raise
            except (AuthenticationError, WorkerError) as exc:
                if not isinstance(exc, RetryableConnectionError):
                    await self._give_up(exc)
                    return
                attempt += 1
                if attempt > self.options.max_retry:
                    await self._give_up(WorkerError(
                        f"gave up after {attempt} attempts to reach the LiveKit server at {url}: {exc}. "
                        "Check that the server is running and --url (LIVEKIT_URL) points at it."
                    ))
                    return
                delay = min(self.options.retry_max_delay, self.options.retry_base * 2 ** (attempt - 1))
                delay *= random.uniform(0.5, 1.0)
                logger.warning("%s; retrying in %.1fs (attempt %d of %d)", exc, delay, attempt, self.options.max_retry)
                await asyncio.sleep(delay)
                continue

            attempt = 0
            await self._serve(ws)
            if self._closing:
                return
            self._registered.clear()  # type: ignore[union-attr]
            logger.warning("lost the connection to the LiveKit server; reconnecting (%d job(s) keep running)",
                           len(self._jobs))

    async def _give_up(self, exc: BaseException) -> None:
        self.connection_failed = True
        self._fatal = exc
        if self._jobs:
            await self._cut_jobs("shutdown", "cannot reach the LiveKit server")
        self._close()

    async def _register(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        from livekit.protocol import agent as agent_pb

        o = self.options
        req = agent_pb.RegisterWorkerRequest(
            type=int(o.worker_type),
            agent_name=o.agent_name,
            version=__version__,
            namespace=o.namespace,
            allowed_permissions=o.permissions.to_proto(),
        )
        await ws.send_bytes(agent_pb.WorkerMessage(register=req).SerializeToString())
        try:
            msg = await asyncio.wait_for(ws.receive(), timeout=REGISTER_TIMEOUT)
        except asyncio.TimeoutError:
            raise RetryableConnectionError(f"the server did not answer registration within {REGISTER_TIMEOUT:g}s") from None
        if msg.type != aiohttp.WSMsgType.BINARY:
            raise RetryableConnectionError(f"the server closed the connection during registration ({msg.type.name})")
        server_msg = agent_pb.ServerMessage.FromString(msg.data)
        if server_msg.WhichOneof("message") != "register":
            raise RetryableConnectionError("the server's first message was not a registration answer")
        reconnect = self.id is not None
        self.id = server_msg.register.worker_id
        self.server_info = server_msg.register.server_info
        self._ws = ws
        logger.info(
            "registered worker %s (%s%s) with LiveKit %s at %s",
            self.id, JobType(o.worker_type).name, f", agent_name {o.agent_name!r}" if o.agent_name else "",
            self.server_info.version, self._url, extra={"worker_id": self.id},
        )
        # what was queued for the old connection: keep only job status updates
        self._outbox = [m for m in self._outbox if m.WhichOneof("message") == "update_job"]
        if reconnect and self._jobs:
            logger.info("re-attaching %d running job(s) to the new registration", len(self._jobs))
            self._enqueue(agent_pb.WorkerMessage(migrate_job=agent_pb.MigrateJobRequest(job_ids=list(self._jobs))))
        self._status_sent = None
        self._call_hook("worker_registered", worker=self, worker_id=self.id, server_info=self.server_info)
        # The server answers ``register`` before it adds the worker to its dispatch table;
        # its answer to a ping comes after. Ready (``registered``) means the pong arrived.
        self._enqueue(agent_pb.WorkerMessage(ping=agent_pb.WorkerPing(timestamp=int(time.time() * 1000))))

    async def _serve(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        from livekit.protocol import agent as agent_pb

        writer = asyncio.create_task(self._writer(ws))
        reporter = asyncio.create_task(self._report_load())
        try:
            async for msg in ws:
                if msg.type != aiohttp.WSMsgType.BINARY:
                    if msg.type in (aiohttp.WSMsgType.ERROR, aiohttp.WSMsgType.CLOSE):
                        break
                    continue
                try:
                    server_msg = agent_pb.ServerMessage.FromString(msg.data)
                except Exception:
                    logger.warning("ignored a malformed message from the server")
                    continue
                self._dispatch(server_msg)
                if writer.done():
                    break
        except (aiohttp.ClientError, ConnectionError) as exc:
            logger.debug("agent websocket error: %s", exc)
        finally:
            writer.cancel()
            reporter.cancel()
            await asyncio.gather(writer, reporter, return_exceptions=True)
            self._ws = None
            if not ws.closed:
                await ws.close()
            for fut in self._pending_assignments.values():
                if not fut.done():
                    fut.set_exception(JobError("the connection to the LiveKit server was lost before the job was assigned"))

    def _dispatch(self, msg: Any) -> None:
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
            ctx = self._jobs.get(msg.termination.job_id)
            if ctx is not None and ctx.shutdown_reason is None:
                logger.info("server terminated job %s", ctx.id, extra={"job_id": ctx.id})
                ctx.shutdown("terminated")
        elif which == "pong":
            self._registered.set()  # type: ignore[union-attr]
        elif which == "go_away":
            logger.info("server asked the worker to go away; reconnecting")
            if self._ws is not None:
                asyncio.create_task(self._ws.close())

    def _enqueue(self, msg: Any) -> None:
        self._outbox.append(msg)
        if self._outbox_event is not None:
            self._outbox_event.set()

    async def _writer(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        assert self._outbox_event is not None
        while True:
            while self._outbox:
                msg = self._outbox[0]
                await ws.send_bytes(msg.SerializeToString())
                self._outbox.pop(0)
            self._outbox_event.clear()
            await self._outbox_event.wait()

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
        while True:
            self._measured_load = max(0.0, await self._measure_load())
            self._send_status(force=True)
            await asyncio.sleep(self.options.update_interval)

    def _send_status(self, *, force: bool = False) -> None:
        """Send ``update_worker`` when the status changed (or always with ``force``)."""
        from livekit.protocol import agent as agent_pb

        full = self._full_reason() is not None
        status = agent_pb.WS_FULL if full else agent_pb.WS_AVAILABLE
        busy = len(self._jobs) + len(self._reserved)
        load = self._measured_load
        if self.options.max_jobs:
            load = max(load, busy / self.options.max_jobs)
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
        if self._ws is None:
            return
        self._enqueue(agent_pb.WorkerMessage(update_worker=agent_pb.UpdateWorkerStatus(
            status=status, load=min(1.0, load), job_count=len(self._jobs), draining=self._draining,
        )))

    # --- offers ------------------------------------------------------------------------

    def _send_availability(self, job_id: str, available: bool, args: AcceptArguments | None = None) -> None:
        from livekit.protocol import agent as agent_pb

        resp = agent_pb.AvailabilityResponse(job_id=job_id, available=available)
        if args is not None:
            resp.participant_identity = args.identity
            resp.participant_name = args.name
            resp.participant_metadata = args.metadata
            resp.participant_attributes.update(args.attributes)
        self._enqueue(agent_pb.WorkerMessage(availability=resp))

    async def _on_offer(self, job: Any) -> None:
        request = JobRequest(self, job)
        extra = {"job_id": job.id, "room": job.room.name}
        reason = self._full_reason()
        if reason is not None:
            request._answer = "rejected"
            self._send_availability(job.id, False)
            logger.info("declined job %s in room %s: %s", job.id, job.room.name, reason, extra=extra)
            return
        self._reserved.add(job.id)
        self._send_status()
        try:
            if any(r is False for r in self._call_hook("job_offered", job_request=request)):
                request._answer = "rejected"
                self._send_availability(job.id, False)
                logger.info("declined job %s in room %s: a plugin declined it", job.id, job.room.name, extra=extra)
                return
            if self._executor is not None:
                await self._offer_to_process(request)
            else:
                await self._run_request_handler(request)
        finally:
            if job.id not in self._jobs:
                self._reserved.discard(job.id)
                self._send_status()
            self._notify_jobs_changed()

    async def _run_request_handler(self, request: JobRequest) -> None:
        extra = {"job_id": request.id, "room": request.room.name}
        answered = asyncio.Event()
        request._answered_event = answered  # type: ignore[attr-defined]
        handler = asyncio.create_task(self._call_handler(request))
        waiter = asyncio.create_task(answered.wait())
        done, _ = await asyncio.wait({handler, waiter}, timeout=self.options.request_timeout,
                                     return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        if request.answered:
            if request._answer == "accepted":
                # keep the slot reserved until the server assigned the job
                await asyncio.wait({handler})
                if not handler.cancelled() and handler.exception() is not None:
                    exc = handler.exception()
                    logger.error("request handler of job %s raised after accepting: %s: %s",
                                 request.id, type(exc).__name__, exc, exc_info=exc, extra=extra)
            return
        if handler in done:
            exc = handler.exception() if not handler.cancelled() else None
            why = (f"the request handler raised {type(exc).__name__}: {exc}" if exc
                   else "the request handler returned without accepting or rejecting it")
            if exc:
                logger.error("rejected job %s in room %s: %s", request.id, request.room.name, why,
                             exc_info=exc, extra=extra)
            else:
                logger.warning("rejected job %s in room %s: %s", request.id, request.room.name, why, extra=extra)
        else:
            request._expired = True
            handler.cancel()
            logger.warning("rejected job %s in room %s: the request handler neither accepted nor rejected it "
                           "within request_timeout (%gs)", request.id, request.room.name,
                           self.options.request_timeout, extra=extra)
        request._answer = "rejected"
        self._send_availability(request.id, False)

    async def _call_handler(self, request: JobRequest) -> None:
        assert self.options.request_handler is not None
        await self.options.request_handler(request)

    async def _reject(self, request: JobRequest, why: str) -> None:
        self._send_availability(request.id, False)
        getattr(request, "_answered_event", asyncio.Event()).set()
        logger.info("job %s in room %s %s", request.id, request.room.name, why,
                    extra={"job_id": request.id, "room": request.room.name})

    async def _accept(self, request: JobRequest, args: AcceptArguments) -> None:
        from livekit import rtc

        extra = {"job_id": request.id, "room": request.room.name}
        if self._draining:
            request._answer = "rejected"
            self._send_availability(request.id, False)
            getattr(request, "_answered_event", asyncio.Event()).set()
            raise JobError(f"job {request.id} cannot be accepted: the worker is draining")
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending_assignments[request.id] = fut
        self._send_availability(request.id, True, args)
        getattr(request, "_answered_event", asyncio.Event()).set()
        try:
            assignment = await asyncio.wait_for(fut, timeout=self.options.assignment_timeout)
        except asyncio.TimeoutError:
            raise JobError(f"the server did not assign job {request.id} within "
                           f"{self.options.assignment_timeout:g}s after it was accepted") from None
        finally:
            self._pending_assignments.pop(request.id, None)
        if self._closing:
            request._answer = "rejected"
            raise JobError(f"job {request.id} was assigned while the worker was shutting down; not started")
        url = assignment.url or room_url(self._url)
        job = assignment.job if assignment.HasField("job") else request.job
        ctx = JobContext(worker=self, job=job, room=rtc.Room(), url=url, token=assignment.token, accept_args=args)
        self._jobs[job.id] = ctx
        self._reserved.discard(job.id)
        logger.info("accepted job %s in room %s (%s) as %s", job.id, job.room.name, JobType(job.type).name,
                    args.identity, extra=extra)
        from .watchdog import job_scope

        with job_scope(job.id):
            task = asyncio.create_task(self._run_job(ctx), name=f"job-{job.id}")
        self._job_tasks.add(task)
        task.add_done_callback(self._job_tasks.discard)

    async def _offer_to_process(self, request: JobRequest) -> None:
        """process executor: the request handler runs in a job process; this answers the server."""
        from livekit.protocol import agent as agent_pb

        from .executor.process import RemoteJob

        extra = {"job_id": request.id, "room": request.room.name}
        answer = await self._executor.offer(request.job, self.options.request_timeout)
        if not answer.accepted:
            request._answer = "rejected"
            self._send_availability(request.id, False)
            logger.info("job %s in room %s %s", request.id, request.room.name,
                        answer.why or "rejected by the request handler", extra=extra)
            return
        if self._draining:
            request._answer = "rejected"
            self._send_availability(request.id, False)
            self._executor.assign_failed(request.id, f"job {request.id} cannot be accepted: the worker is draining")
            return
        request._answer = "accepted"
        args = AcceptArguments(agent_fn=lambda ctx: None, identity=answer.identity, name=answer.name,
                               metadata=answer.metadata, attributes=answer.attributes)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending_assignments[request.id] = fut
        self._send_availability(request.id, True, args)
        try:
            assignment = await asyncio.wait_for(fut, timeout=self.options.assignment_timeout)
        except (asyncio.TimeoutError, JobError) as exc:
            why = (f"the server did not assign job {request.id} within {self.options.assignment_timeout:g}s "
                   "after it was accepted") if isinstance(exc, asyncio.TimeoutError) else str(exc)
            self._executor.assign_failed(request.id, why)
            logger.error("job %s not started: %s", request.id, why, extra=extra)
            return
        finally:
            self._pending_assignments.pop(request.id, None)
        if self._closing:
            self._executor.assign_failed(request.id, "the worker is shutting down")
            return
        job = assignment.job if assignment.HasField("job") else request.job
        remote = RemoteJob(self._executor, job, answer.identity)
        self._jobs[job.id] = remote  # type: ignore[assignment]
        self._reserved.discard(job.id)
        logger.info("accepted job %s in room %s (%s) as %s", job.id, job.room.name, JobType(job.type).name,
                    answer.identity, extra=extra)
        self._executor.assign(job.id, url=assignment.url or room_url(self._url), token=assignment.token, job=job)
        del agent_pb

    def _remote_running(self, job_id: str) -> None:
        remote = self._jobs.get(job_id)
        if remote is not None:
            remote.status = "running"
            self._job_running(remote)  # type: ignore[arg-type]

    def _remote_ended(self, job_id: str, reason: str) -> None:
        from livekit.protocol import agent as agent_pb

        ctx = self._jobs.get(job_id)
        if ctx is None:
            return
        if reason.startswith("failed"):
            status, error = agent_pb.JS_FAILED, reason.removeprefix("failed: ")
        elif reason in ("shutdown", "drain_timeout"):
            status, error = agent_pb.JS_FAILED, f"ended by the worker before the job finished ({reason})"
        else:
            status, error = agent_pb.JS_SUCCESS, ""
        ctx.status = "failed" if status == agent_pb.JS_FAILED else "success"
        self._enqueue(agent_pb.WorkerMessage(update_job=agent_pb.UpdateJobStatus(
            job_id=job_id, status=status, error=error)))
        self._jobs.pop(job_id, None)
        logger.info("job %s in room %s ended: %s", job_id, ctx.job.room.name, reason,
                    extra={"job_id": job_id, "room": ctx.job.room.name, "reason": reason})
        self._call_hook("job_ended", job_context=ctx, reason=reason)
        self._send_status()
        self._notify_jobs_changed()

    # --- jobs --------------------------------------------------------------------------

    def _job_running(self, ctx: JobContext) -> None:
        from livekit.protocol import agent as agent_pb

        self._enqueue(agent_pb.WorkerMessage(update_job=agent_pb.UpdateJobStatus(
            job_id=ctx.id, status=agent_pb.JS_RUNNING)))
        self._call_hook("job_started", job_context=ctx)

    async def _run_job(self, ctx: JobContext) -> None:
        from livekit.protocol import agent as agent_pb

        try:
            reason = await ctx._run()
        except Exception as exc:  # a bug in the job runner must not take the worker down
            logger.exception("job %s crashed: %s", ctx.id, exc, extra={"job_id": ctx.id})
            reason = f"failed: {type(exc).__name__}: {exc}"
        if reason.startswith("failed"):
            status, error = agent_pb.JS_FAILED, reason.removeprefix("failed: ")
        elif reason in ("shutdown", "drain_timeout"):
            status, error = agent_pb.JS_FAILED, f"ended by the worker before the job finished ({reason})"
        else:
            status, error = agent_pb.JS_SUCCESS, ""
        ctx.status = "failed" if status == agent_pb.JS_FAILED else "success"
        self._enqueue(agent_pb.WorkerMessage(update_job=agent_pb.UpdateJobStatus(
            job_id=ctx.id, status=status, error=error)))
        self._jobs.pop(ctx.id, None)
        logger.info("job %s in room %s ended: %s", ctx.id, ctx.job.room.name, reason,
                    extra={"job_id": ctx.id, "room": ctx.job.room.name, "reason": reason})
        self._call_hook("job_ended", job_context=ctx, reason=reason)
        self._send_status()
        self._notify_jobs_changed()

    def _notify_jobs_changed(self) -> None:
        if self._jobs_changed is not None:
            self._jobs_changed.set()

    def _call_hook(self, name: str, **kwargs: Any) -> list[Any]:
        try:
            from .plugin_host import get_plugin_host

            return get_plugin_host().call(name, **kwargs)
        except Exception as exc:
            logger.warning("plugin hook %s failed: %s", name, exc)
            return []


__all__ = ["Worker", "WorkerOptions", "WorkerPermissions"]
