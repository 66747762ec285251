"""The ``process`` executor: jobs run in child processes, apart from the worker.

The worker keeps the server connection, answers offers and places jobs; job processes run
the user's request handler and agents. A job process that crashes (``os._exit``, a
segfault), stops answering pings (a blocked event loop) or goes over ``memory_limit_mb``
costs only its own jobs: they are reported to the server as failed, with what happened
(``job process 1234 exited with signal SIGSEGV``), and the process is replaced.

Placement:

* sharded (``jobs_per_process=None``, the default): ``num_processes`` long-lived
  processes (default: one per CPU this worker may use); each offer goes to the process
  with the fewest jobs.
* ``jobs_per_process=N``: a process runs at most ``N`` jobs in its life and exits once
  they ended; ``1`` gives every job a fresh process of its own. ``num_idle_processes``
  processes are kept started ahead of offers.

Job processes are forked from a zygote (:mod:`._zygote`) that the executor forks when it
starts, before the worker has any thread or ``livekit.rtc`` runtime: the request handler
and agent run as written, even as closures under ``if __name__ == "__main__"``. Their log
records are logged by the worker (same handlers and format, with ``job_id`` and ``pid``).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import pickle
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..exceptions import JobError, WorkerError
from . import _child, _zygote
from .ipc import AsyncChannel

logger = logging.getLogger("livekit.agents")

JobEnded = Callable[[str, str], None]
"""``on_ended(job_id, reason)``; ``reason`` as a job's end reason (``"failed: ..."`` ...)."""


def default_num_processes() -> int:
    """One job process per CPU this worker may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


@dataclass
class ProcessOptions:
    """The process executor's settings (the matching ``WorkerOptions`` fields)."""

    num_processes: int | None = None
    jobs_per_process: int | None = None
    num_idle_processes: int = 1
    ping_interval: float = 2.5
    ping_timeout: float = 30.0
    memory_warn_mb: float | None = 500.0
    memory_limit_mb: float | None = None
    blocked_loop_threshold: float = 0.5
    process_start_timeout: float = 10.0
    shutdown_timeout: float = 25.0

    @classmethod
    def from_options(cls, options: Any) -> ProcessOptions:
        names = cls.__dataclass_fields__
        return cls(**{n: getattr(options, n) for n in names if getattr(options, n, None) is not None})

    def validate(self) -> None:
        def bad(name: str, value: Any, what: str) -> WorkerError:
            return WorkerError(f"{name}={value!r} is not valid: {what}")

        for name in ("num_processes", "jobs_per_process"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise bad(name, value, "use a whole number of at least 1, or None for the default")
        if not isinstance(self.num_idle_processes, int) or self.num_idle_processes < 0:
            raise bad("num_idle_processes", self.num_idle_processes, "use a whole number of at least 0")
        for name in ("ping_interval", "ping_timeout", "process_start_timeout", "shutdown_timeout",
                     "blocked_loop_threshold"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0 < value < float("inf"):
                raise bad(name, value, "use a positive, finite number of seconds")
        if self.ping_timeout <= self.ping_interval:
            raise bad("ping_timeout", self.ping_timeout, f"it must be longer than ping_interval ({self.ping_interval:g}s)")
        for name in ("memory_warn_mb", "memory_limit_mb"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, (int, float)) or not 0 < value < float("inf")):
                raise bad(name, value, "use a positive number of megabytes, or None for no threshold")


@dataclass
class Answer:
    """A job process's answer to an offer."""

    accepted: bool
    identity: str = ""
    name: str = ""
    metadata: str = ""
    attributes: dict[str, str] = field(default_factory=dict)
    why: str = ""


@dataclass
class _Proc:
    proc_id: int
    channel: AsyncChannel | None = None
    pid: int | None = None
    state: str = "starting"  # starting -> ready -> retiring -> dead
    jobs: set[str] = field(default_factory=set)
    offers: dict[str, asyncio.Future[Answer]] = field(default_factory=dict)
    served: int = 0
    started_at: float = field(default_factory=time.monotonic)
    last_pong: float = field(default_factory=time.monotonic)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    gone: asyncio.Event = field(default_factory=asyncio.Event)
    kill_reason: str | None = None
    rss_mb: float = 0.0
    pss_mb: float = 0.0
    memory_warned: bool = False
    reader: asyncio.Task[None] | None = None

    @property
    def busy(self) -> int:
        return len(self.jobs) + len(self.offers)


class ProcessExecutor:
    """Runs jobs in child processes. ``start()`` before any thread; then ``await astart()``."""

    kind = "process"

    def __init__(self, options: Any, *, on_running: Callable[[str], None], on_ended: JobEnded) -> None:
        self.options = options
        self.settings = ProcessOptions.from_options(options)
        self.settings.validate()
        self._on_running = on_running
        self._on_ended = on_ended
        self._procs: dict[int, _Proc] = {}
        self._job_proc: dict[str, _Proc] = {}
        self._next_id = 0
        self._zygote_pid: int | None = None
        self._zygote: socket.socket | None = None
        self._exit_status: dict[int, int] = {}
        self._exit_waiters: dict[int, asyncio.Future[int]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closing = False
        self._broken: str | None = None
        self._spawn_lock: asyncio.Lock | None = None

    # --- lifecycle -----------------------------------------------------------------------

    @property
    def num_processes(self) -> int:
        return self.settings.num_processes or default_num_processes()

    def start(self) -> None:
        """Fork the zygote. Must run before this process starts threads or uses livekit.rtc."""
        ffi = sys.modules.get("livekit.rtc._ffi_client")
        if ffi is not None and getattr(ffi.FfiClient, "_instance", None) is not None:
            raise WorkerError(
                "the process executor must start before livekit.rtc is used in the worker process (its "
                "runtime threads cannot be forked). Connect rooms only inside jobs, or use job_executor='inline'."
            )
        if threading.active_count() > 1:
            logger.warning("the process executor forks its job processes from a process with %d threads "
                           "(%s); start the worker before starting threads",
                           threading.active_count(), ", ".join(t.name for t in threading.enumerate()))
        entry = functools.partial(_child.job_process_main, self.options)
        self._zygote_pid, self._zygote = _zygote.fork_zygote(entry)
        logger.debug("job process zygote started (pid %d)", self._zygote_pid)

    async def astart(self) -> None:
        """Start the job processes and the monitor (inside the worker's event loop)."""
        if self._zygote is None:
            self.start()
        self._spawn_lock = asyncio.Lock()
        assert self._zygote is not None
        self._zygote.setblocking(False)
        self._background(self._read_zygote())
        self._background(self._monitor())
        want = self.num_processes if self.settings.jobs_per_process is None else self.settings.num_idle_processes
        procs = [self._spawn() for _ in range(want)]
        await asyncio.gather(*(self._wait_ready(p) for p in procs), return_exceptions=True)
        mode = ("sharded" if self.settings.jobs_per_process is None
                else f"at most {self.settings.jobs_per_process} job(s) per process")
        logger.info("process executor: %d job process(es) started (%s)", len(procs), mode)

    async def aclose(self) -> None:
        """End every job process (their jobs end with reason ``shutdown``) and the zygote."""
        self._closing = True
        procs = [p for p in self._procs.values() if p.state != "dead"]
        for proc in procs:
            self._retire(proc, "shutdown")
        if procs:
            _, pending = await asyncio.wait([asyncio.ensure_future(p.gone.wait()) for p in procs],
                                            timeout=self.settings.shutdown_timeout)
            for task in pending:
                task.cancel()
            for proc in procs:
                if not proc.gone.is_set():
                    self._kill(proc, f"job process {proc.pid} did not exit within "
                                     f"{self.settings.shutdown_timeout:g}s of shutdown; killed")
            await asyncio.wait([asyncio.ensure_future(p.gone.wait()) for p in procs], timeout=5.0)
        if self._zygote is not None:
            try:
                self._zygote.send(pickle.dumps(("exit", {})))
            except OSError:
                pass
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._zygote_pid is not None:
            await asyncio.to_thread(_reap_zygote, self._zygote_pid)
            self._zygote_pid = None
        if self._zygote is not None:
            self._zygote.close()
            self._zygote = None

    # --- state -------------------------------------------------------------------------

    def processes(self) -> list[dict[str, Any]]:
        """The job processes, as ``/worker`` shows them."""
        now = time.monotonic()
        return [
            {"pid": p.pid, "state": p.state, "jobs": sorted(p.jobs), "offers": len(p.offers), "served": p.served,
             "rss_mb": round(p.rss_mb, 1), "pss_mb": round(p.pss_mb, 1),
             "since_pong_s": round(now - p.last_pong, 2)}
            for p in self._procs.values() if p.state != "dead"
        ]

    def pids(self) -> list[int]:
        return [p.pid for p in self._procs.values() if p.pid and p.state != "dead"]

    # --- offers and jobs -------------------------------------------------------------------

    async def offer(self, job: Any, timeout: float) -> Answer:
        """Run the request handler on ``job`` in a job process; at most ``timeout`` seconds."""
        if self._broken:
            return Answer(False, why=self._broken)
        deadline = time.monotonic() + timeout
        fut: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        proc = await self._place(job.id, fut, deadline)
        if proc is None:
            return Answer(False, why=f"no job process was ready within {timeout:g}s")
        self._job_proc[job.id] = proc
        assert proc.channel is not None
        proc.channel.send("offer", {"job": job.SerializeToString()})
        try:
            answer = await asyncio.wait_for(asyncio.shield(fut), max(0.0, deadline - time.monotonic()))
        except asyncio.TimeoutError:
            proc.channel.send("expired", {"job_id": job.id})
            answer = Answer(False, why=f"the request handler neither accepted nor rejected it within "
                                       f"request_timeout ({timeout:g}s)")
        except JobError as exc:
            answer = Answer(False, why=str(exc))
        finally:
            proc.offers.pop(job.id, None)
        if answer.accepted and proc.state != "dead":
            proc.jobs.add(job.id)
            proc.served += 1
        else:
            self._job_proc.pop(job.id, None)
            self._after_job(proc)
        return answer

    def assign(self, job_id: str, *, url: str, token: str, job: Any = None) -> None:
        """Hand the server's assignment to the job's process, which joins the room."""
        proc = self._job_proc.get(job_id)
        if proc is not None and proc.channel is not None:
            proc.channel.send("assigned", {"job_id": job_id, "url": url, "token": token,
                                           "job": job.SerializeToString() if job is not None else b""})

    def assign_failed(self, job_id: str, error: str) -> None:
        """The accepted job will not run (not assigned, worker draining)."""
        proc = self._job_proc.pop(job_id, None)
        if proc is not None:
            proc.jobs.discard(job_id)
            if proc.channel is not None:
                proc.channel.send("assign_failed", {"job_id": job_id, "error": error})
            self._after_job(proc)

    def shutdown_job(self, job_id: str, reason: str) -> None:
        proc = self._job_proc.get(job_id)
        if proc is not None and proc.channel is not None:
            proc.channel.send("shutdown_job", {"job_id": job_id, "reason": reason})

    # --- placement -----------------------------------------------------------------------

    async def _place(self, job_id: str, fut: asyncio.Future[Answer], deadline: float) -> _Proc | None:
        """A ready process for this offer, reserved for it (``proc.offers``) at once, so that
        simultaneous offers are spread by the same rule."""
        while time.monotonic() < deadline and not self._closing:
            proc = self._choose() or self._spawn()
            proc.offers[job_id] = fut
            await self._wait_ready(proc, deadline)
            if proc.state == "ready":
                return proc
            proc.offers.pop(job_id, None)
            if not proc.gone.is_set():
                return None  # not ready in time
        return None

    def _choose(self) -> _Proc | None:
        live = [p for p in self._procs.values() if p.state in ("starting", "ready")]
        limit = self.settings.jobs_per_process
        if limit is not None:
            live = [p for p in live if p.served + p.busy < limit]
        elif len(live) < self.num_processes:
            return None
        if not live:
            return None
        return min(live, key=lambda p: (p.busy, p.state != "ready", p.proc_id))

    async def _wait_ready(self, proc: _Proc, deadline: float | None = None) -> bool:
        timeout = self.settings.process_start_timeout if deadline is None else max(0.0, deadline - time.monotonic())
        ready = asyncio.ensure_future(proc.ready.wait())
        gone = asyncio.ensure_future(proc.gone.wait())
        await asyncio.wait({ready, gone}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        ready.cancel()
        gone.cancel()
        return proc.ready.is_set() or proc.gone.is_set()

    def _replenish(self) -> None:
        if self._closing or self._broken:
            return
        live = [p for p in self._procs.values() if p.state in ("starting", "ready")]
        if self.settings.jobs_per_process is None:
            missing = self.num_processes - len(live)
        else:
            limit = self.settings.jobs_per_process
            idle = [p for p in live if p.busy == 0 and p.served < limit]
            missing = self.settings.num_idle_processes - len(idle)
        for _ in range(max(0, missing)):
            self._spawn()

    def _after_job(self, proc: _Proc) -> None:
        limit = self.settings.jobs_per_process
        if limit is not None and proc.served >= limit and proc.busy == 0 and proc.state == "ready":
            self._retire(proc, "served its jobs")
        self._replenish()

    # --- processes -----------------------------------------------------------------------

    def _spawn(self) -> _Proc:
        self._next_id += 1
        proc = _Proc(self._next_id)
        self._procs[proc.proc_id] = proc
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        config = {"proc_id": proc.proc_id, "log_level": logging.getLogger().level}
        try:
            assert self._zygote is not None
            socket.send_fds(self._zygote, [pickle.dumps(("spawn", config))], [theirs.fileno()])
        except (OSError, AssertionError) as exc:
            ours.close()
            self._zygote_lost(f"cannot reach the job process zygote: {exc}")
            proc.state = "dead"
            proc.gone.set()
            return proc
        finally:
            theirs.close()
        proc.reader = self._background(self._serve(proc, ours))
        return proc

    async def _serve(self, proc: _Proc, sock: socket.socket) -> None:
        proc.channel = await AsyncChannel.open(sock)
        try:
            while True:
                msg = await proc.channel.recv()
                if msg is None:
                    break
                self._on_message(proc, *msg)
        finally:
            await proc.channel.aclose()
            await self._gone(proc)

    def _on_message(self, proc: _Proc, kind: str, data: dict[str, Any]) -> None:
        if kind == "log":
            _log_forwarded(data["record"])
        elif kind == "pong":
            proc.last_pong = time.monotonic()
        elif kind == "answer":
            fut = proc.offers.get(data["job_id"])
            if fut is not None and not fut.done():
                fut.set_result(Answer(
                    accepted=bool(data["accepted"]), identity=data.get("identity", ""), name=data.get("name", ""),
                    metadata=data.get("metadata", ""), attributes=dict(data.get("attributes") or {}),
                    why=data.get("why", ""),
                ))
        elif kind == "running":
            self._on_running(data["job_id"])
        elif kind == "ended":
            job_id = data["job_id"]
            proc.jobs.discard(job_id)
            self._job_proc.pop(job_id, None)
            self._on_ended(job_id, data["reason"])
            self._after_job(proc)
        elif kind == "hello":
            proc.pid = data["pid"]
            proc.state = "ready" if proc.state == "starting" else proc.state
            proc.last_pong = time.monotonic()
            proc.ready.set()
            logger.debug("job process %d ready", proc.pid, extra={"pid": proc.pid})

    def _retire(self, proc: _Proc, reason: str) -> None:
        if proc.state in ("retiring", "dead"):
            return
        proc.state = "retiring"
        if proc.channel is not None:
            proc.channel.send("exit", {"reason": "shutdown" if reason == "shutdown" else reason})

    def _kill(self, proc: _Proc, reason: str) -> None:
        if proc.kill_reason is None:
            proc.kill_reason = reason
        if proc.pid is not None:
            try:
                os.kill(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    async def _gone(self, proc: _Proc) -> None:
        """The job process's socket closed: it exited (or was killed). Fail its jobs, replace it."""
        previous = proc.state
        proc.state = "dead"
        status = None
        if proc.pid is not None:
            status = await self._wait_exit_status(proc.pid, timeout=5.0)
        what = proc.kill_reason or _zygote.describe_status(proc.pid or 0, status)
        clean = previous == "retiring" and status == 0 and proc.kill_reason is None
        crash = _read_crash_log(proc.pid)
        jobs = sorted(proc.jobs)
        if not clean or jobs:
            logger.error("%s; %d job(s) lost: %s%s", what, len(jobs), ", ".join(jobs) or "none",
                         f"\n{crash}" if crash else "", extra={"pid": proc.pid, "jobs": ",".join(jobs)})
        for job_id in jobs:
            self._job_proc.pop(job_id, None)
            self._on_ended(job_id, f"failed: {what}")
        proc.jobs.clear()
        for fut in list(proc.offers.values()):
            if not fut.done():
                fut.set_exception(JobError(f"{what} while its request handler ran"))
        proc.gone.set()
        self._procs.pop(proc.proc_id, None)
        self._replenish()

    async def _wait_exit_status(self, pid: int, timeout: float) -> int | None:
        if pid in self._exit_status:
            return self._exit_status.pop(pid)
        fut = asyncio.get_running_loop().create_future()
        self._exit_waiters[pid] = fut
        try:
            return await asyncio.wait_for(fut, timeout)
        except asyncio.TimeoutError:
            return None
        finally:
            self._exit_waiters.pop(pid, None)
            self._exit_status.pop(pid, None)

    async def _read_zygote(self) -> None:
        loop = asyncio.get_running_loop()
        assert self._zygote is not None
        while True:
            try:
                data = await loop.sock_recv(self._zygote, 1 << 16)
            except OSError:
                data = b""
            if not data:
                if not self._closing:
                    self._zygote_lost("the job process zygote exited")
                return
            kind, msg = pickle.loads(data)
            if kind == "exited":
                pid, status = msg["pid"], msg["status"]
                waiter = self._exit_waiters.get(pid)
                if waiter is not None and not waiter.done():
                    waiter.set_result(status)
                else:
                    self._exit_status[pid] = status

    def _zygote_lost(self, why: str) -> None:
        if self._broken is None:
            self._broken = f"{why}; no new job can start (restart the worker)"
            logger.error("process executor: %s", self._broken)

    # --- health: pings and memory ----------------------------------------------------------

    async def _monitor(self) -> None:
        s = self.settings
        seq = 0
        while True:
            await asyncio.sleep(s.ping_interval)
            seq += 1
            now = time.monotonic()
            for proc in list(self._procs.values()):
                if proc.state not in ("ready", "retiring") or proc.pid is None or proc.kill_reason:
                    continue
                silent = now - proc.last_pong
                if silent > s.ping_timeout:
                    self._kill(proc, f"job process {proc.pid} did not answer pings for {silent:.1f}s "
                                     f"(ping_timeout {s.ping_timeout:g}s; its event loop is blocked); killed")
                    continue
                assert proc.channel is not None
                proc.channel.send("ping", {"seq": seq})
                self._check_memory(proc)

    def _check_memory(self, proc: _Proc) -> None:
        assert proc.pid is not None
        rss, pss = process_memory_mb(proc.pid)
        proc.rss_mb, proc.pss_mb = rss, pss
        s = self.settings
        jobs = ", ".join(sorted(proc.jobs)) or "none"
        if s.memory_limit_mb is not None and pss > s.memory_limit_mb:
            self._kill(proc, f"job process {proc.pid} used {pss:.0f} MB (PSS), above memory_limit_mb "
                             f"({s.memory_limit_mb:g} MB); killed")
        elif s.memory_warn_mb is not None:
            if pss > s.memory_warn_mb and not proc.memory_warned:
                proc.memory_warned = True
                logger.warning("job process %d uses %.0f MB (PSS), above memory_warn_mb (%g MB); its jobs: %s",
                               proc.pid, pss, s.memory_warn_mb, jobs, extra={"pid": proc.pid, "pss_mb": round(pss, 1)})
            elif pss < 0.9 * s.memory_warn_mb:
                proc.memory_warned = False

    def _background(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task


def process_memory_mb(pid: int) -> tuple[float, float]:
    """``(RSS, PSS)`` of a process in MB (PSS from ``/proc/PID/smaps_rollup``; RSS if unavailable)."""
    rss = pss = 0.0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Rss:"):
                    rss = int(line.split()[1]) / 1024
                elif line.startswith("Pss:"):
                    pss = int(line.split()[1]) / 1024
    except OSError:
        try:
            with open(f"/proc/{pid}/statm") as f:
                rss = pss = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
        except (OSError, ValueError, IndexError):
            pass
    return rss, pss or rss


def _log_forwarded(data: dict[str, Any]) -> None:
    record = logging.makeLogRecord(data)
    target = logging.getLogger(record.name)
    if target.isEnabledFor(record.levelno):
        target.handle(record)


def _read_crash_log(pid: int | None) -> str:
    if pid is None:
        return ""
    path = _child.crash_log_path(pid)
    try:
        with open(path) as f:
            text = f.read().strip()
        os.unlink(path)
    except OSError:
        return ""
    return text[-6000:]


def _reap_zygote(pid: int, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return
        if done:
            return
        time.sleep(0.02)
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass





class RemoteJob:
    """The worker's view of a job that runs in a job process (what ``/worker`` and the
    drain logic read; :meth:`shutdown` asks the job's process to end it)."""

    def __init__(self, executor: ProcessExecutor, job: Any, identity: str) -> None:
        self._executor = executor
        self._job = job
        self.identity = identity
        self.status = "pending"
        self.started_at = time.time()
        self.shutdown_reason: str | None = None

    @property
    def id(self) -> str:
        return self._job.id

    @property
    def job(self) -> Any:
        return self._job

    @property
    def publisher_identity(self) -> str | None:
        if self._job.type == 0 or not self._job.HasField("participant"):
            return None
        return self._job.participant.identity or None

    @property
    def pid(self) -> int | None:
        proc = self._executor._job_proc.get(self.id)
        return proc.pid if proc is not None else None

    def shutdown(self, reason: str = "success") -> None:
        if self.shutdown_reason is None:
            self.shutdown_reason = reason
        self._executor.shutdown_job(self.id, reason)
__all__ = ["ProcessExecutor", "ProcessOptions", "RemoteJob", "Answer", "default_num_processes", "process_memory_mb"]
