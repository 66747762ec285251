"""Job executors: where request handlers and agents run (see :mod:`.base` for the contract).

* ``inline`` (:class:`~livekit.agents.executor.inline.InlineExecutor`): asyncio tasks in
  the worker's process.
* ``process`` (``livekit.agents.executor.process.ProcessExecutor``): jobs in child processes.

:func:`resolve_executor` turns the ``job_executor`` worker option (a name, a class or an
instance) into an executor.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ..exceptions import InvalidOptionError, WorkerError

if TYPE_CHECKING:
    from .base import JobExecutor

EXECUTORS = {
    "inline": "livekit.agents.executor.inline:InlineExecutor",
    "process": "livekit.agents.executor.process:ProcessExecutor",
}
"""``--job-executor`` names and the classes they select (imported on first use)."""


def resolve_executor(value: str | type[JobExecutor] | JobExecutor | None) -> JobExecutor:
    """An executor from a name in :data:`EXECUTORS`, a :class:`JobExecutor` subclass, or an
    instance; ``None``: ``inline``."""
    from .base import JobExecutor

    if value is None:
        value = "inline"

    if isinstance(value, JobExecutor):
        return value
    if isinstance(value, type) and issubclass(value, JobExecutor):
        return value()
    if not isinstance(value, str) or value not in EXECUTORS:
        raise InvalidOptionError(
            f"job_executor (--job-executor) must be one of {', '.join(EXECUTORS)} or a JobExecutor, got {value!r}"
        )
    module_name, _, attr = EXECUTORS[value].partition(":")
    try:
        module = importlib.import_module(module_name)
        cls: Any = getattr(module, attr)
    except (ImportError, AttributeError) as exc:
        if getattr(exc, "name", None) not in (module_name, attr, None):
            raise  # the executor's own module failed to import something: show that
        raise WorkerError(
            f"the {value!r} job executor is not available in this installation ({module_name}.{attr} "
            f"cannot be imported). Use --job-executor inline (job_executor='inline')."
        ) from None
    executor: JobExecutor = cls()
    return executor


__all__ = ["EXECUTORS", "resolve_executor"]
