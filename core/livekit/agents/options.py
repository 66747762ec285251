"""Every setting of a worker: :class:`WorkerOptions`, checked when it is built.

An impossible value (``max_jobs=0``, ``load_threshold=nan``, a negative timeout, an
unknown executor name) raises :class:`~livekit.agents.exceptions.InvalidOptionError`
naming the option, its command-line flag, and what is allowed, so a Python user and a CLI
user get the same message.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .exceptions import InvalidOptionError
from .job import JobType

if TYPE_CHECKING:
    from .executor.base import JobExecutor
    from .job_request import RequestHandler

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


@dataclass(frozen=True)
class WorkerOptions:
    """Every setting of a :class:`~livekit.agents.Worker` (its keyword arguments).

    Immutable and checked at construction; ``dataclasses.replace(options, **changes)``
    (or ``Worker.configure(**changes)``) makes a changed, checked copy."""

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
    job_executor: str | type[JobExecutor] | JobExecutor = "inline"
    """Where handlers and agents run: ``"inline"`` (asyncio tasks in the worker's process),
    ``"process"`` (child processes), or a :class:`~livekit.agents.executor.base.JobExecutor`."""
    max_jobs: int | None = None
    """Most jobs run at once (offers being answered count too); ``None``: no limit."""
    load_fn: LoadFunction | None = None
    """Returns the worker's load in 0..1 (sync or async); default: the CPU this worker's
    process tree uses over the CPU available to it (:mod:`livekit.agents.load`)."""
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

    def __post_init__(self) -> None:
        object.__setattr__(self, "worker_type", _worker_type(self.worker_type))
        _check_int("max_jobs", self.max_jobs, minimum=1, none_ok=True,
                   allowed="a positive number of jobs, or None (no limit; omit --max-jobs)")
        if not isinstance(self.load_threshold, (int, float)) or math.isnan(self.load_threshold) or not (
            0 < self.load_threshold <= 1 or self.load_threshold == math.inf
        ):
            raise InvalidOptionError(
                f"load_threshold (--load-threshold) must be a load above 0 and at most 1, or inf to never "
                f"report full; got {self.load_threshold!r}"
            )
        _check_seconds("drain_timeout", self.drain_timeout, zero_ok=True)
        _check_seconds("request_timeout", self.request_timeout)
        _check_seconds("assignment_timeout", self.assignment_timeout)
        _check_seconds("retry_base", self.retry_base, zero_ok=True)
        _check_seconds("retry_max_delay", self.retry_max_delay, zero_ok=True)
        _check_seconds("update_interval", self.update_interval)
        _check_int("max_retry", self.max_retry, minimum=0, allowed="0 or more connection attempts")
        if self.http_port is not None:
            _check_int("http_port", self.http_port, minimum=0, maximum=65535,
                       allowed="a TCP port 1-65535, 0 for any free port, or None for no endpoint")
        if self.load_fn is not None and not callable(self.load_fn):
            raise InvalidOptionError(f"load_fn must be a function returning the load (0..1), got {self.load_fn!r}")
        if self.request_handler is not None and not callable(self.request_handler):
            raise InvalidOptionError(
                f"request_handler must be an async function taking a JobRequest, got {self.request_handler!r}"
            )
        _check_executor(self.job_executor)


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _worker_type(value: Any) -> JobType:
    try:
        return JobType(value)
    except ValueError:
        raise InvalidOptionError(
            f"worker_type must be one of {', '.join(t.name for t in JobType)}, got {value!r}"
        ) from None


def _check_int(name: str, value: Any, *, minimum: int, maximum: int | None = None, none_ok: bool = False,
               allowed: str) -> None:
    if value is None and none_ok:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum or (
        maximum is not None and value > maximum
    ):
        raise InvalidOptionError(f"{name} ({_flag(name)}) must be {allowed}; got {value!r}")


def _check_seconds(name: str, value: Any, *, zero_ok: bool = False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value) and (
        value >= 0 if zero_ok else value > 0
    )
    if not ok:
        bound = "0 or more" if zero_ok else "more than 0"
        raise InvalidOptionError(f"{name} ({_flag(name)}) must be {bound} seconds; got {value!r}")


def _check_executor(value: Any) -> None:
    from .executor import EXECUTORS

    if isinstance(value, str):
        if value not in EXECUTORS:
            raise InvalidOptionError(
                f"job_executor (--job-executor) must be one of {', '.join(EXECUTORS)}, got {value!r}"
            )
        return
    from .executor.base import JobExecutor

    if isinstance(value, JobExecutor) or (isinstance(value, type) and issubclass(value, JobExecutor)):
        return
    raise InvalidOptionError(f"job_executor must be an executor name or a JobExecutor, got {value!r}")


__all__ = ["LoadFunction", "WorkerOptions", "WorkerPermissions"]
