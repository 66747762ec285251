"""The event-loop watchdog: names the job that blocks an event loop, with its stack.

A job that blocks its loop (``time.sleep``, a CPU-bound call, a synchronous HTTP request)
freezes every other job on that loop: their audio stops, their pings go unanswered. The
watchdog notices within ``threshold`` seconds and logs a warning with the job id and the
stack of the code that blocks, then an info line with the total once the loop runs again.

How: a callback on the loop records a heartbeat every ``threshold / 5`` seconds; a daemon
thread checks the heartbeat's age. When it is older than the threshold, the thread reads
the loop thread's stack (``sys._current_frames()``) and the task the loop is running, and
maps that task to its job: every task created while a job's context is current (see
:func:`job_scope`) is remembered as that job's, including the tasks ``livekit.rtc``
creates for the job's room, whose event callbacks run inside them.

Used by both executors: inline (the worker's own loop) and process (each job process's
loop)::

    watchdog = LoopWatchdog(asyncio.get_running_loop(), threshold=0.5)
    watchdog.start()
    with job_scope(job_id):
        task = asyncio.create_task(run_job())   # this task and its children belong to job_id
    ...
    watchdog.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import sys
import threading
import time
import traceback
import weakref
from collections.abc import Iterator
from types import FrameType
from typing import Any, cast

logger = logging.getLogger("livekit.agents")

DEFAULT_THRESHOLD = 0.5

current_job_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("livekit_agents_job_id", default=None)
"""The id of the job whose code is running (``None`` outside jobs)."""


@contextlib.contextmanager
def job_scope(job_id: str) -> Iterator[None]:
    """Within this block, tasks created (and log records) belong to ``job_id``."""
    token = current_job_id.set(job_id)
    try:
        yield
    finally:
        current_job_id.reset(token)


class LoopWatchdog:
    """Log a warning when ``loop`` is blocked for more than ``threshold`` seconds."""

    def __init__(self, loop: asyncio.AbstractEventLoop, *, threshold: float = DEFAULT_THRESHOLD,
                 name: str = "event loop") -> None:
        if not threshold > 0:
            raise ValueError(f"blocked_loop_threshold must be a positive number of seconds, not {threshold!r}")
        self.threshold = threshold
        self.name = name
        self.blocked_count = 0
        self._loop = loop
        self._interval = max(0.01, threshold / 5)
        self._beat = time.monotonic()
        self._handle: asyncio.TimerHandle | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._loop_thread_id: int | None = None
        self._task_jobs: weakref.WeakKeyDictionary[asyncio.Task[Any], str] = weakref.WeakKeyDictionary()
        self._previous_factory: Any = None

    # --- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        """Start watching; call from the loop's thread (inside the running loop)."""
        if self._thread is not None:
            return
        self._loop_thread_id = threading.get_ident()
        self._previous_factory = self._loop.get_task_factory()
        self._loop.set_task_factory(self._task_factory)
        self._beat = time.monotonic()
        self._handle = self._loop.call_later(self._interval, self._heartbeat)
        self._thread = threading.Thread(target=self._watch, name="livekit-agents-watchdog", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        if self._loop.get_task_factory() == self._task_factory:
            self._loop.set_task_factory(self._previous_factory)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2.0)
        self._thread = None

    # --- the loop's side -------------------------------------------------------------------

    def _heartbeat(self) -> None:
        self._beat = time.monotonic()
        if not self._stop.is_set():
            self._handle = self._loop.call_later(self._interval, self._heartbeat)

    def _task_factory(self, loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
        if self._previous_factory is not None:
            task = cast("asyncio.Task[Any]", self._previous_factory(loop, coro, **kwargs))
        else:
            task = asyncio.Task(coro, loop=loop, **kwargs)
        job_id = current_job_id.get()
        if job_id is not None:
            self._task_jobs[task] = job_id
        return task

    def job_of(self, task: asyncio.Task[Any] | None) -> str | None:
        """The job a task belongs to (``None``: the worker's own or unknown)."""
        if task is None:
            return None
        return self._task_jobs.get(task)

    # --- the watching thread -------------------------------------------------------------

    def _watch(self) -> None:
        reported_beat: float | None = None
        blocked_job: str | None = None
        while not self._stop.wait(self._interval):
            beat = self._beat
            lag = time.monotonic() - beat
            if reported_beat is not None and beat != reported_beat:
                total = beat - reported_beat
                logger.info("the %s runs again after being blocked for %.2fs%s", self.name, total,
                            f" by job {blocked_job}" if blocked_job else "",
                            extra={"job_id": blocked_job, "blocked_s": round(total, 3)})
                reported_beat, blocked_job = None, None
            if reported_beat is None and lag > self.threshold:
                reported_beat = beat
                self.blocked_count += 1
                blocked_job, stack = self._blocking_job_and_stack()
                who = f"job {blocked_job}" if blocked_job else "code outside any job"
                logger.warning(
                    "%s blocked the %s for more than %.2fs (blocked_loop_threshold %gs); every job on this "
                    "loop is frozen meanwhile. Blocking stack (most recent call last):\n%s",
                    who, self.name, lag, self.threshold, stack,
                    extra={"job_id": blocked_job, "blocked_s": round(lag, 3)},
                )

    def _blocking_job_and_stack(self) -> tuple[str | None, str]:
        frame = sys._current_frames().get(self._loop_thread_id or -1)
        task = _running_task(self._loop)
        job_id = self.job_of(task)
        if job_id is None and frame is not None:
            job_id = _job_in_frames(frame)
        stack = "".join(traceback.format_stack(frame)) if frame is not None else "(stack unavailable)\n"
        return job_id, stack.rstrip("\n")


def _running_task(loop: asyncio.AbstractEventLoop) -> asyncio.Task[Any] | None:
    """The task ``loop`` is running right now, read from another thread."""
    current = getattr(asyncio.tasks, "_current_tasks", None)
    if isinstance(current, dict):
        return current.get(loop)
    try:
        return asyncio.current_task(loop)
    except RuntimeError:
        return None


def _job_in_frames(frame: FrameType | None) -> str | None:
    """Fallback for plain callbacks: a JobContext among the locals of the blocking stack."""
    from .job import JobContext

    while frame is not None:
        for value in list(frame.f_locals.values()):
            if isinstance(value, JobContext):
                return value.id
        frame = frame.f_back
    return None


__all__ = ["LoopWatchdog", "job_scope", "current_job_id", "DEFAULT_THRESHOLD"]
