"""Why a job ended: a :class:`JobEnd` value (a kind and a detail), never a string to parse.

Every job ends exactly once with one :class:`JobEnd`. Its :attr:`JobEnd.kind` says what
ended it; :attr:`JobEnd.detail` is a human-readable explanation for the logs (the error
of a failed job, how long the drain waited, ...). :attr:`JobEnd.failed` says how the job
is reported to the LiveKit server (``JS_FAILED`` or ``JS_SUCCESS``), and
:attr:`JobEnd.reason` is the short text shown as ``JobContext.shutdown_reason`` and passed
to the ``job_ended`` plugin hook.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class JobEndKind(str, enum.Enum):
    """What ended a job."""

    SUCCESS = "success"
    """The agent ended it (``ctx.shutdown()``, ``ctx.disconnect()``)."""
    AUTO_DISCONNECT = "auto_disconnect"
    """Its ``auto_disconnect`` predicate said so (the room emptied, the publisher left)."""
    ROOM_DISCONNECTED = "room_disconnected"
    """The room closed or the agent was removed from it."""
    TERMINATED = "terminated"
    """The LiveKit server ended the job (``termination`` message)."""
    FAILED = "failed"
    """The agent raised, could not join its room, or its process died; ``detail`` says how."""
    DRAIN_TIMEOUT = "drain_timeout"
    """The worker was draining and its drain timeout ran out before the job ended."""
    SHUTDOWN = "shutdown"
    """The worker was closed (a second SIGTERM, ``Worker.aclose()``)."""
    CONNECTION_LOST = "connection_lost"
    """The worker gave up reaching the LiveKit server and stopped."""
    ROOM_LOST = "room_lost"
    """The job's room connection was lost with the LiveKit node it went through, and the
    job could not rejoin the same room through another node (the node hosting the room
    is gone, or no other node answered); ``detail`` says which."""


_FAILURES = frozenset({JobEndKind.FAILED, JobEndKind.DRAIN_TIMEOUT, JobEndKind.SHUTDOWN,
                       JobEndKind.CONNECTION_LOST, JobEndKind.ROOM_LOST})


@dataclass(frozen=True)
class JobEnd:
    """How one job ended (immutable; picklable, so it can cross a process boundary)."""

    kind: JobEndKind
    detail: str = ""

    @property
    def failed(self) -> bool:
        """``True`` when the job is reported to the server as failed: it raised or crashed,
        or the worker ended it before it finished."""
        return self.kind in _FAILURES

    @property
    def reason(self) -> str:
        """Short text: the kind's value, ``"failed: <detail>"`` for a failure."""
        if self.kind is JobEndKind.FAILED:
            return f"failed: {self.detail}" if self.detail else "failed"
        return str(self.kind.value)

    def describe(self) -> str:
        """The reason with its detail, for logs."""
        if self.kind is JobEndKind.FAILED or not self.detail:
            return self.reason
        return f"{self.reason} ({self.detail})"

    @classmethod
    def failure(cls, detail: str) -> JobEnd:
        return cls(JobEndKind.FAILED, detail)

    @classmethod
    def parse(cls, reason: str | JobEnd) -> JobEnd:
        """A :class:`JobEnd` from what a user passed to ``ctx.shutdown(reason)``: a kind's
        value, ``"failed: <detail>"``, or any other text (an ordinary end, kind
        ``SUCCESS``, with the text as its detail)."""
        if isinstance(reason, JobEnd):
            return reason
        text = str(reason)
        if text == "failed" or text.startswith("failed:"):
            return cls.failure(text.partition(":")[2].strip())
        try:
            return cls(JobEndKind(text))
        except ValueError:
            return cls(JobEndKind.SUCCESS, text)

    def __str__(self) -> str:
        return self.reason


__all__ = ["JobEnd", "JobEndKind"]
