"""The ``process`` executor: jobs run in child processes, apart from the worker.

The worker keeps the server connection, answers offers and places jobs; job processes run
the user's request handler and agents (each through an inline executor of its own, see
:mod:`._child`). A job process that crashes (``os._exit``, a segfault), stops answering
pings (a blocked event loop) or goes over ``memory_limit_mb`` costs only its own jobs:
they are reported to the server as failed, with what happened (``job process 1234 exited
with signal SIGSEGV``), and the process is replaced.

Placement:

* sharded (``jobs_per_process=None``, the default): ``num_processes`` long-lived
  processes (default: one per CPU this worker may use); each offer goes to the process
  with the fewest jobs.
* ``jobs_per_process=N``: a process runs at most ``N`` jobs in its life and exits once
  they ended; ``1`` gives every job a fresh process of its own. ``num_idle_processes``
  processes are kept started ahead of offers.

Job processes are forked from a zygote (:mod:`._zygote`) that :meth:`ProcessExecutor.prepare`
forks before the worker has any thread or ``livekit.rtc`` runtime: the request handler and
agent run as written, even as closures under ``if __name__ == "__main__"``. The zygote
keeps a spare copy of itself; if the zygote dies, the spare takes over (and forks the next
spare), so new jobs keep starting. Only if both are gone at once does the executor stop
taking jobs: the worker is then told (``ExecutorEvents.executor_failed`` when it has it)
so that it drains and exits non-zero for its supervisor to restart it. Their log
records are logged by the worker (same handlers and format, with ``job_id`` and ``pid``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import os
import pickle
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..exceptions import WorkerError
from ..job_end import JobEnd
from ..job_request import OfferAnswer
from . import _child, _zygote
from .base import Assignment, ExecutorEvents, JobExecutor, JobInfo
from .ipc import AsyncChannel

if TYPE_CHECKING:
    from livekit.protocol import agent as agent_pb

    from ..options import WorkerOptions

logger = logging.getLogger("livekit.agents")

START_TIMEOUT = 10.0
"""Seconds a new job process has to report ready."""
SHUTDOWN_TIMEOUT = 25.0
"""Seconds ``aclose()`` waits for job processes to end their jobs and exit."""
ANSWER_MARGIN = 2.0
"""Seconds beyond ``request_timeout`` the worker waits for a job process's answer (the
process enforces ``request_timeout`` itself; this covers a process that is stuck)."""


def default_num_processes() -> int:
    """One job process per CPU this worker may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


@dataclass
class _Proc:
    proc_id: int
    channel: AsyncChannel | None = None
    pid: int | None = None
    state: str = "starting"  # starting -> ready -> retiring -> dead
    zygote_pid: int | None = None  # the zygote that forked it (which reports its exit status)
    jobs: set[str] = field(default_factory=set)
    offers: dict[str, asyncio.Future[OfferAnswer]] = field(default_factory=dict)
    served: int = 0
    last_pong: float = field(default_factory=time.monotonic)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    gone: asyncio.Event = field(default_factory=asyncio.Event)
    kill_reason: str | None = None
    rss_mb: float = 0.0
    pss_mb: float = 0.0
    memory_warned: bool = False

    @property
    def busy(self) -> int:
        return len(self.jobs) + len(self.offers)


class ProcessExecutor(JobExecutor):
    """Runs request handlers and jobs in job processes forked from a zygote."""

    name = "process"

    def __init__(self) -> None:
        self._options: WorkerOptions | None = None
        self._events: ExecutorEvents | None = None
        self._procs: dict[int, _Proc] = {}
        self._job_proc: dict[str, _Proc] = {}
        self._infos: dict[str, JobInfo] = {}
        self._identities: dict[str, str] = {}
        self._next_id = 0
        self._zygote_pid: int | None = None
        self._zygote: socket.socket | None = None
        self._spare: socket.socket | None = None  # the spare zygote's control socket
        self._spare_pid: int | None = None  # once the spare said hello
        self._dead_zygotes: set[int] = set()
        self._exit_status: dict[int, int] = {}
        self._exit_waiters: dict[int, asyncio.Future[int]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closing = False
        self._broken: str | None = None

    # --- lifecycle -----------------------------------------------------------------------

    @property
    def num_processes(self) -> int:
        assert self._options is not None
        return self._options.num_processes or default_num_processes()

    def prepare(self, options: WorkerOptions) -> None:
        """Fork the zygote, before this process starts threads or uses livekit.rtc."""
        if self._zygote is not None:
            return
        self._options = options
        ffi = sys.modules.get("livekit.rtc._ffi_client")
        if ffi is not None and getattr(ffi.FfiClient, "_instance", None) is not None:
            raise WorkerError(
                "the process executor must start before livekit.rtc is used in the worker's process (the rtc "
                "runtime's threads cannot be forked). Connect rooms only inside jobs, or use --job-executor inline."
            )
        if threading.active_count() > 1:
            logger.warning("the process executor forks its job processes from a process with %d threads (%s); "
                           "start the worker before starting threads", threading.active_count(),
                           ", ".join(t.name for t in threading.enumerate()))
        entry = functools.partial(_child.job_process_main, options)
        self._zygote_pid, self._zygote = _zygote.fork_zygote(entry)
        self._zygote.setblocking(False)
        logger.debug("job process zygote started (pid %d)", self._zygote_pid)

    async def start(self, events: ExecutorEvents, options: WorkerOptions) -> None:
        if options.request_handler is None:
            raise TypeError("the worker has no request_handler")
        self._events = events
        self.prepare(options)
        self._options = options
        assert self._zygote is not None
        self._background(self._read_zygote(self._zygote))
        self._request_spare()
        self._background(self._monitor())
        if options.jobs_per_process is None:
            want, mode = self.num_processes, "sharded"
        else:
            want, mode = options.num_idle_processes, f"at most {options.jobs_per_process} job(s) per process"
        procs = [self._spawn() for _ in range(want)]
        await asyncio.gather(*(self._wait_ready(p, time.monotonic() + START_TIMEOUT) for p in procs))
        logger.info("process executor: %d job process(es) started (%s)",
                    sum(p.state == "ready" for p in procs), mode)

    async def aclose(self) -> None:
        self._closing = True
        procs = [p for p in self._procs.values() if p.state != "dead"]
        for proc in procs:
            self._retire(proc, "shutdown")
        if procs:
            await _wait_all([p.gone for p in procs], SHUTDOWN_TIMEOUT)
            for proc in procs:
                if not proc.gone.is_set():
                    self._kill(proc, f"job process {proc.pid} did not exit within {SHUTDOWN_TIMEOUT:g}s "
                                     "of shutdown; killed")
            await _wait_all([p.gone for p in procs], 5.0)
        for control in (self._zygote, self._spare):
            if control is not None:
                try:
                    control.send(pickle.dumps(("exit", {})))
                except OSError:
                    pass
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._zygote_pid is not None:
            await asyncio.to_thread(_reap_zygote, self._zygote_pid)
            self._zygote_pid = None
        for control in (self._zygote, self._spare):
            if control is not None:
                control.close()
        self._zygote = self._spare = None

    @property
    def zygote_pid(self) -> int | None:
        """The pid of the zygote job processes are forked from now."""
        return self._zygote_pid

    @property
    def spare_zygote_pid(self) -> int | None:
        """The pid of the spare zygote, once it runs."""
        return self._spare_pid

    # --- state -------------------------------------------------------------------------

    def jobs(self) -> list[JobInfo]:
        return list(self._infos.values())

    def processes(self) -> list[dict[str, Any]]:
        """The job processes, as ``/worker`` shows them."""
        now = time.monotonic()
        return [
            {"pid": p.pid, "state": p.state, "jobs": sorted(p.jobs), "offers": len(p.offers), "served": p.served,
             "rss_mb": round(p.rss_mb, 1), "pss_mb": round(p.pss_mb, 1),
             "since_pong_s": round(now - p.last_pong, 2)}
            for p in self._procs.values() if p.state != "dead"
        ]

    # --- offers and jobs -------------------------------------------------------------------

    async def request(self, job: agent_pb.Job) -> OfferAnswer:
        assert self._options is not None
        if self._broken:
            return OfferAnswer(None, self._broken)
        timeout = self._options.request_timeout
        deadline = time.monotonic() + timeout
        fut: asyncio.Future[OfferAnswer] = asyncio.get_running_loop().create_future()
        proc = await self._place(job.id, fut, deadline)
        if proc is None:
            return OfferAnswer(None, f"no job process was ready within request_timeout ({timeout:g}s)")
        self._job_proc[job.id] = proc
        assert proc.channel is not None
        proc.channel.send("offer", {"job": job.SerializeToString()})
        try:
            answer = await asyncio.wait_for(asyncio.shield(fut), timeout + ANSWER_MARGIN)
        except asyncio.TimeoutError:
            answer = OfferAnswer(None, f"job process {proc.pid} did not answer within request_timeout "
                                       f"({timeout:g}s)")
            proc.channel.send("abandon", {"job_id": job.id, "why": answer.reason})
        except _ProcessGone as exc:
            answer = OfferAnswer(None, str(exc))
        finally:
            proc.offers.pop(job.id, None)
        if answer.accepted and proc.state != "dead":
            assert answer.accept is not None
            proc.jobs.add(job.id)
            proc.served += 1
            self._identities[job.id] = answer.accept.identity
        else:
            if answer.accepted:
                answer = OfferAnswer(None, f"job process {proc.pid} exited after accepting the job")
            self._job_proc.pop(job.id, None)
            self._after_job(proc)
        return answer

    async def launch(self, job_id: str, assignment: Assignment) -> None:
        proc = self._job_proc.get(job_id)
        identity = self._identities.pop(job_id, "")
        info = JobInfo(job=assignment.job, agent_identity=identity, pid=proc.pid if proc else None)
        if proc is None or proc.state == "dead" or proc.channel is None:
            self._end(info, JobEnd.failure(f"job {job_id} cannot start: its job process is gone"))
            return
        self._infos[job_id] = info
        proc.channel.send("launch", {"job_id": job_id, "assignment": _child.assignment_to_wire(assignment)})

    async def abandon(self, job_id: str, why: str) -> None:
        self._identities.pop(job_id, None)
        proc = self._job_proc.pop(job_id, None)
        if proc is not None:
            proc.jobs.discard(job_id)
            if proc.channel is not None:
                proc.channel.send("abandon", {"job_id": job_id, "why": why})
            self._after_job(proc)

    def end_job(self, job_id: str, end: JobEnd) -> bool:
        proc = self._job_proc.get(job_id)
        if job_id not in self._infos or proc is None or proc.channel is None:
            return False
        proc.channel.send("end_job", {"job_id": job_id, "end": end})
        return True

    def _end(self, info: JobInfo, end: JobEnd) -> None:
        self._infos.pop(info.id, None)
        if self._events is not None:
            self._events.job_ended(dataclasses.replace(info, status="failed" if end.failed else "success"), end,
                                   None)

    # --- placement -----------------------------------------------------------------------

    async def _place(self, job_id: str, fut: asyncio.Future[OfferAnswer], deadline: float) -> _Proc | None:
        """A ready process for this offer, reserved for it (``proc.offers``) at once, so that
        simultaneous offers are spread by the same rule."""
        while time.monotonic() < deadline and not self._closing and not self._broken:
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
        assert self._options is not None
        live = [p for p in self._procs.values() if p.state in ("starting", "ready")]
        limit = self._options.jobs_per_process
        if limit is not None:
            live = [p for p in live if p.served + p.busy < limit]
        elif len(live) < self.num_processes:
            return None
        if not live:
            return None
        return min(live, key=lambda p: (p.busy, p.state != "ready", p.proc_id))

    async def _wait_ready(self, proc: _Proc, deadline: float) -> None:
        await _wait_any([proc.ready, proc.gone], max(0.0, deadline - time.monotonic()))

    def _replenish(self) -> None:
        if self._closing or self._broken or self._options is None:
            return
        live = [p for p in self._procs.values() if p.state in ("starting", "ready")]
        limit = self._options.jobs_per_process
        if limit is None:
            missing = self.num_processes - len(live)
        else:
            idle = [p for p in live if p.busy == 0 and p.served < limit]
            missing = self._options.num_idle_processes - len(idle)
        for _ in range(max(0, missing)):
            self._spawn()

    def _after_job(self, proc: _Proc) -> None:
        assert self._options is not None
        limit = self._options.jobs_per_process
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
            for _attempt in range(2):  # the second through the spare, if the zygote just died
                if self._zygote is None:
                    raise OSError("the zygote is not running")
                try:
                    socket.send_fds(self._zygote, [pickle.dumps(("spawn", config))], [theirs.fileno()])
                    break
                except OSError as exc:
                    self._zygote_died(self._zygote, f"cannot reach the job process zygote: {exc}")
            else:
                raise OSError("no zygote is running")
        except OSError as exc:
            ours.close()
            self._zygote_lost(str(exc))
            proc.state = "dead"
            proc.gone.set()
            self._procs.pop(proc.proc_id, None)
            return proc
        finally:
            theirs.close()
        proc.zygote_pid = self._zygote_pid
        self._background(self._serve(proc, ours))
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
                fut.set_result(data["answer"])
        elif kind == "running":
            info = _child.info_from_wire(data["info"])
            if info.id in self._infos:
                self._infos[info.id] = info
                if self._events is not None:
                    self._events.job_running(info, None)
        elif kind == "ended":
            info = _child.info_from_wire(data["info"])
            proc.jobs.discard(info.id)
            self._job_proc.pop(info.id, None)
            if self._infos.pop(info.id, None) is not None and self._events is not None:
                self._events.job_ended(info, data["end"], None)
            self._after_job(proc)
        elif kind == "hello":
            proc.pid = data["pid"]
            if proc.state == "starting":
                proc.state = "ready"
            proc.last_pong = time.monotonic()
            proc.ready.set()
            logger.debug("job process %d ready", proc.pid, extra={"pid": proc.pid})

    def _retire(self, proc: _Proc, reason: str) -> None:
        if proc.state in ("retiring", "dead"):
            return
        proc.state = "retiring"
        if proc.channel is not None:
            proc.channel.send("exit", {"reason": reason})

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
        if proc.pid is None or proc.zygote_pid in self._dead_zygotes:
            status = None  # its zygote (which would report the status) is gone
        else:
            status = await self._wait_exit_status(proc.pid, timeout=5.0)
        what = proc.kill_reason or _zygote.describe_status(proc.pid or 0, status)
        clean = previous == "retiring" and status == 0 and proc.kill_reason is None
        crash = _read_crash_log(proc.pid)
        jobs = sorted(proc.jobs)
        if not clean or jobs:
            logger.error("%s; %d job(s) lost%s%s", what, len(jobs), f": {', '.join(jobs)}" if jobs else "",
                         f"\n{crash}" if crash else "", extra={"pid": proc.pid, "jobs": ",".join(jobs)})
        for job_id in jobs:
            self._job_proc.pop(job_id, None)
            info = self._infos.get(job_id)
            if info is not None:
                self._end(info, JobEnd.failure(what))
        proc.jobs.clear()
        for fut in list(proc.offers.values()):
            if not fut.done():
                fut.set_exception(_ProcessGone(f"{what} while its request handler ran"))
        proc.gone.set()
        self._procs.pop(proc.proc_id, None)
        self._replenish()

    async def _wait_exit_status(self, pid: int, timeout: float) -> int | None:
        if pid in self._exit_status:
            return self._exit_status.pop(pid)
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._exit_waiters[pid] = fut
        try:
            return await asyncio.wait_for(fut, timeout)
        except asyncio.TimeoutError:
            return None
        finally:
            self._exit_waiters.pop(pid, None)
            self._exit_status.pop(pid, None)

    async def _read_zygote(self, control: socket.socket) -> None:
        """Read one zygote's (or the spare's) control socket until it closes."""
        loop = asyncio.get_running_loop()
        while True:
            try:
                data = await loop.sock_recv(control, 1 << 16)
            except OSError:
                data = b""
            if not data:
                if not self._closing:
                    self._zygote_died(control, "the job process zygote exited")
                control.close()
                return
            kind, msg = pickle.loads(data)
            if kind == "hello":
                if control is self._spare:
                    self._spare_pid = msg["pid"]
                    logger.debug("spare job process zygote started (pid %d)", self._spare_pid)
                elif control is self._zygote and self._zygote_pid is None:  # promoted before its hello
                    self._zygote_pid = msg["pid"]
            elif kind == "exited":
                pid, status = msg["pid"], msg["status"]
                waiter = self._exit_waiters.get(pid)
                if waiter is not None and not waiter.done():
                    waiter.set_result(status)
                else:
                    self._exit_status[pid] = status

    def _request_spare(self) -> None:
        """Ask the zygote for a spare copy of itself (which takes over if the zygote dies)."""
        if self._zygote is None or self._spare is not None or self._closing:
            return
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            socket.send_fds(self._zygote, [pickle.dumps(("spare", {}))], [theirs.fileno()])
        except OSError:
            ours.close()
            return  # the zygote is gone: _read_zygote handles it
        finally:
            theirs.close()
        ours.setblocking(False)
        self._spare, self._spare_pid = ours, None
        self._background(self._read_zygote(ours))

    def _zygote_died(self, control: socket.socket, why: str) -> None:
        """A zygote's control socket closed (or cannot be written): the spare takes over
        if it was the zygote; a new spare is asked for either way."""
        if control is self._spare:
            self._spare, self._spare_pid = None, None
            if not self._closing:
                logger.warning("process executor: the spare job process zygote exited; forking another")
                self._request_spare()
            return
        if control is not self._zygote or self._closing:
            return
        dead = self._zygote_pid
        if dead is not None:
            self._dead_zygotes.add(dead)
            self._background(asyncio.to_thread(_reap_zygote, dead))
        spare, spare_pid = self._spare, self._spare_pid
        self._zygote, self._zygote_pid, self._spare, self._spare_pid = None, None, None, None
        if spare is None:
            self._zygote_lost(f"{why} (pid {dead}) and there is no spare zygote")
            return
        self._zygote, self._zygote_pid = spare, spare_pid
        try:
            spare.send(pickle.dumps(("promote", {})))
        except OSError:
            pass
        logger.warning("process executor: %s (pid %s); its spare (pid %s) forks the job processes now. "
                       "Running jobs are not affected", why, dead, spare_pid)
        self._request_spare()

    def _zygote_lost(self, why: str) -> None:
        if self._broken is None:
            self._broken = f"{why}; no new job can start (the worker drains and exits to be restarted)"
            logger.error("process executor: %s", self._broken)
            failed = getattr(self._events, "executor_failed", None)
            if failed is not None:
                failed(self._broken)

    # --- health: pings and memory ----------------------------------------------------------

    async def _monitor(self) -> None:
        assert self._options is not None
        o = self._options
        seq = 0
        while True:
            await asyncio.sleep(o.ping_interval)
            seq += 1
            now = time.monotonic()
            for proc in list(self._procs.values()):
                if proc.state not in ("ready", "retiring") or proc.pid is None or proc.kill_reason:
                    continue
                silent = now - proc.last_pong
                if silent > o.ping_timeout:
                    self._kill(proc, f"job process {proc.pid} did not answer pings for {silent:.1f}s "
                                     f"(ping_timeout {o.ping_timeout:g}s; its event loop is blocked); killed")
                    continue
                assert proc.channel is not None
                proc.channel.send("ping", {"seq": seq})
                self._check_memory(proc)

    def _check_memory(self, proc: _Proc) -> None:
        assert proc.pid is not None and self._options is not None
        rss, pss = process_memory_mb(proc.pid)
        proc.rss_mb, proc.pss_mb = rss, pss
        warn, limit = self._options.memory_warn_mb, self._options.memory_limit_mb
        jobs = ", ".join(sorted(proc.jobs)) or "none"
        if limit is not None and pss > limit:
            logger.error("job process %d uses %.0f MB (PSS), above memory_limit_mb (%g MB): killing it; its jobs: %s",
                         proc.pid, pss, limit, jobs, extra={"pid": proc.pid, "pss_mb": round(pss, 1)})
            self._kill(proc, f"job process {proc.pid} used {pss:.0f} MB (PSS), above memory_limit_mb "
                             f"({limit:g} MB); killed")
        elif warn is not None:
            if pss > warn and not proc.memory_warned:
                proc.memory_warned = True
                logger.warning("job process %d uses %.0f MB (PSS), above memory_warn_mb (%g MB); its jobs: %s",
                               proc.pid, pss, warn, jobs, extra={"pid": proc.pid, "pss_mb": round(pss, 1)})
            elif pss < 0.9 * warn:
                proc.memory_warned = False

    def _background(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task


class _ProcessGone(Exception):
    pass


async def _wait_any(events: list[asyncio.Event], timeout: float) -> None:
    waiters = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()


async def _wait_all(events: list[asyncio.Event], timeout: float) -> None:
    waiters = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, timeout=timeout)
    finally:
        for w in waiters:
            w.cancel()


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





__all__ = ["ProcessExecutor", "default_num_processes", "process_memory_mb"]
