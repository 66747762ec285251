"""The zygote: a process forked at worker start, before any thread or the ``livekit.rtc``
runtime exists, that forks the job processes.

Why: the user's request handler and agent are usually closures defined under
``if __name__ == "__main__"``; they cannot be pickled to a fresh interpreter. A process
forked from the worker has them in memory, as written. Forking the worker itself later is
unsafe (its aiohttp and FFI threads would be missing in the child, with their locks
held), so the zygote is forked once, early, stays single-threaded, and forks each job
process on request. Job processes share the zygote's pages copy-on-write (Python, the
imported modules, the FFI library), which is most of their memory.

A zygote can die (the OOM killer, a stray ``kill -9``). The worker cannot fork a new one
itself (by then it has threads and perhaps the rtc runtime), so it keeps a *spare*: a
zygote forked by the current zygote, as single-threaded and as clean as it is, that
waits. When the current zygote is gone the spare takes over and forks the next spare.

Control protocol (``SOCK_SEQPACKET``, one pickled ``(kind, data)`` per packet):

* worker -> zygote: ``("spawn", {"proc_id": n, **config})`` with the job process's socket
  as an attached file descriptor; ``("spare", {})`` with the new zygote's control socket
  attached; ``("promote", {})`` (a spare is the zygote now); ``("exit", {})``.
* zygote -> worker: ``("hello", {"pid"})`` once it serves (a spare too);
  ``("spawned", {"proc_id", "pid"})``; ``("exited", {"pid", "status"})`` (``status``
  as from ``os.waitpid``) for every process it forked that ends.

The zygote exits when the worker closes its end (or dies); job processes notice the
worker's death on their own sockets and end their jobs.
"""

from __future__ import annotations

import asyncio
import errno
import gc
import os
import pickle
import select
import signal
import socket
from collections.abc import Callable
from typing import Any

ChildEntry = Callable[[socket.socket, dict[str, Any]], int]

_PACKET = 1 << 16


def set_process_name(name: str) -> None:
    """Name this process in ``ps``/``top`` (Linux ``comm``, 15 characters)."""
    try:
        with open("/proc/self/comm", "w") as f:
            f.write(name[:15])
    except OSError:
        pass


def forget_parent_loop() -> None:
    """Drop the asyncio state a forked process inherits from its parent's running loop."""
    asyncio.events._set_running_loop(None)
    policy = asyncio.get_event_loop_policy()
    try:
        policy.set_event_loop(None)
    except Exception:
        pass
    try:
        signal.set_wakeup_fd(-1)
    except ValueError:
        pass


def fork_zygote(entry: ChildEntry) -> tuple[int, socket.socket]:
    """Fork the zygote; returns its pid and the worker's end of its control socket."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    pid = os.fork()
    if pid == 0:  # the zygote
        code = 0
        try:
            ours.close()
            forget_parent_loop()
            code = _serve(theirs, entry)
        except BaseException:  # never return into the worker's code in a forked copy
            code = 70
        finally:
            os._exit(code)
    theirs.close()
    return pid, ours


def _send(sock: socket.socket, kind: str, data: dict[str, Any]) -> None:
    try:
        sock.send(pickle.dumps((kind, data)))
    except OSError:
        pass


def _serve(control: socket.socket, entry: ChildEntry, *, spare: bool = False) -> int:
    set_process_name("lk-zygote-spare" if spare else "lk-zygote")
    for sig in (signal.SIGINT, signal.SIGTERM):
        # the worker drains on these; a signal sent to the whole process group (Ctrl-C,
        # systemd's KillMode=control-group) must not end the zygote or the jobs under it
        signal.signal(sig, signal.SIG_IGN)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.set_wakeup_fd(wake_w)
    control.setblocking(True)
    # what the zygote holds now is shared with every job process; keep the collector
    # from touching (and so copying) those objects in each of them
    if not spare:  # a spare is a copy of a zygote that did this already
        _preload()
        gc.collect()
        gc.freeze()
    _send(control, "hello", {"pid": os.getpid()})
    while True:
        try:
            ready, _, _ = select.select([control.fileno(), wake_r], [], [])
        except InterruptedError:
            ready = [wake_r]
        if wake_r in ready:
            try:
                while os.read(wake_r, 512):
                    pass
            except BlockingIOError:
                pass
            _reap(control)
        if control.fileno() not in ready:
            continue
        try:
            data, fds, _flags, _addr = socket.recv_fds(control, _PACKET, 4)
        except InterruptedError:
            continue
        except OSError:
            data, fds = b"", []
        if not data:
            return 0  # the worker is gone
        kind, msg = pickle.loads(data)
        if kind == "promote":  # a spare that now is the zygote
            set_process_name("lk-zygote")
            continue
        if kind == "exit":
            for fd in fds:
                os.close(fd)
            return 0
        if kind not in ("spawn", "spare") or not fds:
            for fd in fds:
                os.close(fd)
            continue
        if kind == "spare":
            _fork_spare(control, wake_r, wake_w, fds, entry)
            continue
        pid = os.fork()
        if pid == 0:  # a job process
            code = 1
            try:
                _leave_zygote(control, wake_r, wake_w)
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                sock = socket.socket(fileno=fds[0])
                code = entry(sock, msg)
            except BaseException:
                import traceback

                traceback.print_exc()
                code = 70
            finally:
                os._exit(code)
        for fd in fds:
            os.close(fd)
        _send(control, "spawned", {"proc_id": msg.get("proc_id"), "pid": pid})


def _fork_spare(control: socket.socket, wake_r: int, wake_w: int, fds: list[int], entry: ChildEntry) -> None:
    """Fork a spare zygote serving the control socket in ``fds[0]``."""
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            _leave_zygote(control, wake_r, wake_w)
            for fd in fds[1:]:
                os.close(fd)
            code = _serve(socket.socket(fileno=fds[0]), entry, spare=True)
        except BaseException:
            code = 70
        finally:
            os._exit(code)
    for fd in fds:
        os.close(fd)


def _leave_zygote(control: socket.socket, wake_r: int, wake_w: int) -> None:
    """In a process forked by the zygote: let go of its control socket and signal pipe."""
    control.close()
    os.close(wake_r)
    os.close(wake_w)
    signal.set_wakeup_fd(-1)


PRELOAD = (
    "livekit.rtc", "livekit.protocol.agent", "livekit.protocol.models", "livekit.agents.job",
    "livekit.agents.watchdog", "livekit.agents.executor._child", "faulthandler", "ctypes",
)
"""Modules every job process uses, imported once in the zygote so that job processes share them."""


def _preload() -> None:
    import importlib

    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except Exception:  # a job process imports (and reports) it again if it matters
            pass


def _reap(control: socket.socket) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        except OSError as exc:
            if exc.errno == errno.EINTR:
                continue
            return
        if pid == 0:
            return
        _send(control, "exited", {"pid": pid, "status": status})


def describe_status(pid: int, status: int | None) -> str:
    """``"job process 1234 exited with signal SIGSEGV"`` and the like."""
    if status is None:
        return f"job process {pid} exited (exit status unknown)"
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = f"signal {sig}"
        return f"job process {pid} exited with signal {name}"
    return f"job process {pid} exited with code {os.WEXITSTATUS(status)}"
