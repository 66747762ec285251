"""A job process: runs the user's request handler and agents for the jobs the worker
places on it, and reports back over its socket (see :mod:`.ipc`).

Messages, worker -> job process:

* ``offer {job}``: run the request handler on this offer (``job`` is the serialized
  ``livekit.protocol.agent.Job``).
* ``expired {job_id}``: the handler took longer than ``request_timeout``; the job was
  rejected (a late accept/reject raises JobError, as in the worker).
* ``assigned {job_id, job, url, token}`` / ``assign_failed {job_id, error}``: the server's
  answer to an accept; ``accept()`` returns or raises.
* ``shutdown_job {job_id, reason}``: end that job (termination, drain timeout, close).
* ``ping {seq}``: answered with ``pong`` by the event loop (a blocked loop does not answer).
* ``exit {reason}``: end every job, then exit.

Job process -> worker: ``hello {pid}``, ``answer {job_id, accepted, identity, name,
metadata, attributes, why}``, ``running {job_id}``, ``ended {job_id, reason}``,
``pong {seq, rss_mb}``, ``log {record}``.
"""

from __future__ import annotations

import asyncio
import faulthandler
import logging
import os
import signal
import socket
import sys
import tempfile
from typing import TYPE_CHECKING, Any

from .. import watchdog as watchdog_mod
from ..exceptions import JobError
from .ipc import ChannelClosed, ChildChannel

if TYPE_CHECKING:
    from ..job import AcceptArguments, JobContext, JobRequest

logger = logging.getLogger("livekit.agents")

_SKIP = {"args", "msg", "exc_info", "exc_text", "stack_info", "message", "asctime"}


def crash_log_path(pid: int) -> str:
    """Where a job process's faulthandler writes the Python stack of a fatal crash."""
    return os.path.join(tempfile.gettempdir(), f"livekit-agents-job-{pid}.crash")


class ForwardingHandler(logging.Handler):
    """Sends every log record of this process to the worker, which logs it there."""

    def __init__(self, channel: ChildChannel) -> None:
        super().__init__(logging.NOTSET)
        self._channel = channel

    def emit(self, record: logging.LogRecord) -> None:
        try:
            data: dict[str, Any] = {}
            for key, value in vars(record).items():
                if key in _SKIP:
                    continue
                data[key] = value if isinstance(value, (str, int, float, bool, type(None))) else repr(value)
            data["msg"] = record.getMessage()
            data["args"] = None
            if record.exc_info:
                data["exc_text"] = logging.Formatter().formatException(record.exc_info)
            elif record.exc_text:
                data["exc_text"] = record.exc_text
            if record.stack_info:
                data["stack_info"] = record.stack_info
            if data.get("job_id") is None:
                job_id = watchdog_mod.current_job_id.get()
                if job_id is not None:
                    data["job_id"] = job_id
            data["pid"] = os.getpid()
            self._channel.send("log", {"record": data})
        except ChannelClosed:
            pass
        except Exception:
            self.handleError(record)


class _Offer:
    """The worker-side answer state of one offer, in this process."""

    def __init__(self, request: JobRequest) -> None:
        self.request = request
        self.handler: asyncio.Task[Any] | None = None
        self.assignment: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.answered = False


class JobProcess:
    """The runtime of one job process (its event loop's side)."""

    def __init__(self, channel: ChildChannel, options: Any, config: dict[str, Any]) -> None:
        self.options = options
        self.config = config
        self._channel = channel
        self._offers: dict[str, _Offer] = {}
        self._jobs: dict[str, JobContext] = {}
        self._job_tasks: set[asyncio.Task[Any]] = set()
        self._exiting: str | None = None

    # --- what JobRequest and JobContext call (the worker's role, in this process) ----------

    async def _reject(self, request: JobRequest, why: str) -> None:
        offer = self._offers.get(request.id)
        if offer is not None and not offer.answered:
            offer.answered = True
            self._send("answer", {"job_id": request.id, "accepted": False, "why": why})

    async def _accept(self, request: JobRequest, args: AcceptArguments) -> None:
        from livekit import rtc
        from livekit.protocol import agent as agent_pb

        from ..job import JobContext

        offer = self._offers[request.id]
        offer.answered = True
        self._send("answer", {
            "job_id": request.id, "accepted": True, "identity": args.identity, "name": args.name,
            "metadata": args.metadata, "attributes": dict(args.attributes),
        })
        try:
            assignment = await offer.assignment
        finally:
            self._offers.pop(request.id, None)
        job = agent_pb.Job.FromString(assignment["job"]) if assignment.get("job") else request.job
        ctx = JobContext(worker=self, job=job, room=rtc.Room(), url=assignment["url"],
                         token=assignment["token"], accept_args=args)
        self._jobs[job.id] = ctx
        with watchdog_mod.job_scope(job.id):
            task = asyncio.create_task(self._run_job(ctx), name=f"job-{job.id}")
        self._job_tasks.add(task)
        task.add_done_callback(self._job_tasks.discard)

    def _job_running(self, ctx: JobContext) -> None:
        self._send("running", {"job_id": ctx.id})

    # --- running ------------------------------------------------------------------------

    def _send(self, kind: str, data: dict[str, Any]) -> None:
        try:
            self._channel.send(kind, data)
        except ChannelClosed:
            pass

    async def _run_job(self, ctx: JobContext) -> None:
        try:
            reason = await ctx._run()
        except Exception as exc:
            logger.exception("job %s crashed: %s", ctx.id, exc, extra={"job_id": ctx.id})
            reason = f"failed: {type(exc).__name__}: {exc}"
        self._jobs.pop(ctx.id, None)
        self._send("ended", {"job_id": ctx.id, "reason": reason})

    async def _run_offer(self, job_bytes: bytes) -> None:
        from livekit.protocol import agent as agent_pb

        from ..job import JobRequest

        job = agent_pb.Job.FromString(job_bytes)
        request = JobRequest(self, job)  # type: ignore[arg-type]
        offer = _Offer(request)
        self._offers[job.id] = offer
        why = ""
        try:
            with watchdog_mod.job_scope(job.id):
                offer.handler = asyncio.current_task()
                await self.options.request_handler(request)
        except asyncio.CancelledError:
            why = "cancelled"
        except Exception as exc:
            why = f"the request handler raised {type(exc).__name__}: {exc}"
            logger.error("request handler of job %s raised: %s: %s", job.id, type(exc).__name__, exc,
                         exc_info=True, extra={"job_id": job.id, "room": job.room.name})
        if not offer.answered:
            offer.answered = True
            self._send("answer", {"job_id": job.id, "accepted": False,
                                  "why": why or "the request handler returned without accepting or rejecting it"})
        if not request.answered or getattr(request, "_answer", None) != "accepted":
            self._offers.pop(job.id, None)

    def _on_message(self, kind: str, data: dict[str, Any]) -> None:
        if kind == "ping":
            self._send("pong", {"seq": data.get("seq"), "rss_mb": _rss_mb()})
        elif kind == "offer":
            asyncio.create_task(self._run_offer(data["job"]))
        elif kind == "expired":
            offer = self._offers.pop(data["job_id"], None)
            if offer is not None:
                offer.request._expired = True
                offer.answered = True
                if offer.handler is not None and not offer.handler.done():
                    offer.handler.cancel()
                if not offer.assignment.done():
                    offer.assignment.set_exception(JobError(data.get("error") or "the job offer expired"))
        elif kind == "assigned":
            offer = self._offers.get(data["job_id"])
            if offer is not None and not offer.assignment.done():
                offer.assignment.set_result(data)
        elif kind == "assign_failed":
            offer = self._offers.pop(data["job_id"], None)
            if offer is not None:
                if offer.request._answer == "accepted":
                    offer.request._answer = "rejected"
                if not offer.assignment.done():
                    offer.assignment.set_exception(JobError(data["error"]))
        elif kind == "shutdown_job":
            ctx = self._jobs.get(data["job_id"])
            if ctx is not None:
                ctx.shutdown(data.get("reason") or "shutdown")
        elif kind == "exit":
            self._exiting = data.get("reason") or "shutdown"

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        watchdog = LoopWatchdogFor(loop, self.options)
        self._send("hello", {"pid": os.getpid()})
        try:
            while self._exiting is None:
                msg = await self._channel.recv()
                if msg is None:
                    self._exiting = "worker_gone"
                    logger.warning("job process %d: the worker went away; ending %d job(s)", os.getpid(),
                                   len(self._jobs))
                    break
                self._on_message(*msg)
            for offer in list(self._offers.values()):
                if offer.handler is not None:
                    offer.handler.cancel()
                if not offer.assignment.done():
                    offer.assignment.set_exception(JobError("the job process is exiting"))
            for ctx in list(self._jobs.values()):
                ctx.shutdown(self._exiting)
            if self._job_tasks:
                await asyncio.wait(list(self._job_tasks), timeout=20.0)
        finally:
            if watchdog is not None:
                watchdog.stop()
        return 0


def LoopWatchdogFor(loop: asyncio.AbstractEventLoop, options: Any) -> watchdog_mod.LoopWatchdog | None:
    threshold = getattr(options, "blocked_loop_threshold", watchdog_mod.DEFAULT_THRESHOLD)
    if not threshold:
        return None
    dog = watchdog_mod.LoopWatchdog(loop, threshold=threshold, name=f"event loop of job process {os.getpid()}")
    dog.start()
    return dog


def _rss_mb() -> float:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return 0.0


def _limit_malloc_arenas(arenas: int) -> None:
    """Fewer glibc malloc arenas for the FFI runtime's threads: each arena keeps memory of
    its own, which in a process that serves one or a few rooms is mostly waste."""
    if not arenas or not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        libc.mallopt(-8, int(arenas))  # M_ARENA_MAX
    except (OSError, AttributeError):
        pass


def job_process_main(options: Any, sock: socket.socket, config: dict[str, Any]) -> int:
    """The body of a job process (called in the forked child; returns its exit code)."""
    from ._zygote import set_process_name

    set_process_name("lk-job")
    _limit_malloc_arenas(config.get("malloc_arenas", 2))
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)  # the worker decides; see _zygote
    channel = ChildChannel(sock)
    crash_file = open(crash_log_path(os.getpid()), "w")
    faulthandler.enable(file=crash_file, all_threads=True)
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(ForwardingHandler(channel))
    if config.get("log_level") is not None:
        root.setLevel(config["log_level"])
    code = 0
    try:
        code = asyncio.run(JobProcess(channel, options, config).run())
    finally:
        faulthandler.disable()
        crash_file.close()
        try:
            os.unlink(crash_log_path(os.getpid()))
        except OSError:
            pass
        channel.close()
    return code
