"""A job process: the worker's offers and jobs, run by an inline executor of its own.

The job process is the :class:`~livekit.agents.executor.base.JobExecutor` interface
carried over a socket (:mod:`.ipc`): the worker's process executor sends the calls, and
an :class:`~livekit.agents.executor.inline.InlineExecutor` here runs them (the request
handler, the agents, the event-loop watchdog) exactly as the inline executor does in a
worker.

Worker -> job process: ``offer {job}`` (serialized ``livekit.protocol.agent.Job``),
``launch {job_id, assignment}``, ``abandon {job_id, why}``, ``end_job {job_id, end}``,
``ping {seq}`` (answered by the event loop: a blocked loop does not answer), ``exit``
(end every job, then exit).

Job process -> worker: ``hello {pid}``, ``answer {job_id, answer}`` (an ``OfferAnswer``),
``running {info}``, ``ended {info, end}`` (``JobInfo``, ``JobEnd``), ``pong {seq}``,
``log {record}`` (every log record of this process, logged again by the worker).
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
from .base import Assignment, JobInfo
from .inline import InlineExecutor
from .ipc import ChannelClosed, ChildChannel

if TYPE_CHECKING:
    from ..job import JobContext
    from ..job_end import JobEnd

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


def info_to_wire(info: JobInfo) -> dict[str, Any]:
    """A JobInfo as plain data (protobuf messages of livekit.protocol do not pickle)."""
    return {"job": info.job.SerializeToString(), "agent_identity": info.agent_identity, "status": info.status,
            "started_at": info.started_at, "pid": info.pid}


def info_from_wire(data: dict[str, Any]) -> JobInfo:
    from livekit.protocol import agent as agent_pb

    return JobInfo(job=agent_pb.Job.FromString(data["job"]), agent_identity=data["agent_identity"],
                   status=data["status"], started_at=data["started_at"], pid=data["pid"])


def assignment_to_wire(assignment: Assignment) -> dict[str, Any]:
    return {"job": assignment.job.SerializeToString(), "url": assignment.url, "token": assignment.token,
            "fallback_urls": list(assignment.fallback_urls)}


def assignment_from_wire(data: dict[str, Any]) -> Assignment:
    from livekit.protocol import agent as agent_pb

    return Assignment(job=agent_pb.Job.FromString(data["job"]), url=data["url"], token=data["token"],
                      fallback_urls=tuple(data.get("fallback_urls", ())))


class _Events:
    """The child's inline executor reports job status here; it goes to the worker."""

    def __init__(self, channel: ChildChannel) -> None:
        self._channel = channel

    def job_running(self, info: JobInfo, context: JobContext | None) -> None:
        _send(self._channel, "running", {"info": info_to_wire(info)})

    def job_ended(self, info: JobInfo, end: JobEnd, context: JobContext | None) -> None:
        _send(self._channel, "ended", {"info": info_to_wire(info), "end": end})


def _send(channel: ChildChannel, kind: str, data: dict[str, Any]) -> None:
    try:
        channel.send(kind, data)
    except ChannelClosed:
        pass


class JobProcess:
    """The runtime of one job process: an inline executor driven by the worker's messages."""

    def __init__(self, channel: ChildChannel, options: Any, config: dict[str, Any]) -> None:
        self.options = options
        self.config = config
        self._channel = channel
        self._tasks: set[asyncio.Task[Any]] = set()
        self._exiting: str | None = None

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, executor: InlineExecutor, job_bytes: bytes) -> None:
        from livekit.protocol import agent as agent_pb

        job = agent_pb.Job.FromString(job_bytes)
        answer = await executor.request(job)
        _send(self._channel, "answer", {"job_id": job.id, "answer": answer})

    async def _launch(self, executor: InlineExecutor, job_id: str, assignment: Assignment) -> None:
        try:
            await executor.launch(job_id, assignment)
        except JobError as exc:
            from ..job_end import JobEnd

            info = JobInfo(job=assignment.job, agent_identity="", status="failed", pid=os.getpid())
            _send(self._channel, "ended", {"info": info_to_wire(info), "end": JobEnd.failure(str(exc))})

    def _on_message(self, executor: InlineExecutor, kind: str, data: dict[str, Any]) -> None:
        if kind == "ping":
            _send(self._channel, "pong", {"seq": data.get("seq")})
        elif kind == "offer":
            self._spawn(self._answer(executor, data["job"]))
        elif kind == "launch":
            self._spawn(self._launch(executor, data["job_id"], assignment_from_wire(data["assignment"])))
        elif kind == "abandon":
            self._spawn(executor.abandon(data["job_id"], data["why"]))
        elif kind == "end_job":
            executor.end_job(data["job_id"], data["end"])
        elif kind == "exit":
            self._exiting = data.get("reason") or "shutdown"

    async def run(self) -> int:
        executor = InlineExecutor()
        await executor.start(_Events(self._channel), self.options)
        _send(self._channel, "hello", {"pid": os.getpid()})
        try:
            while self._exiting is None:
                msg = await self._channel.recv()
                if msg is None:
                    self._exiting = "worker_gone"
                    if executor.jobs():
                        logger.warning("job process %d: the worker went away; ending %d job(s)", os.getpid(),
                                       len(executor.jobs()))
                    break
                self._on_message(executor, *msg)
        finally:
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await executor.aclose()
        return 0


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
