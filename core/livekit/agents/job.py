"""Jobs: the offer a worker receives (:class:`JobRequest`) and the running agent's context
(:class:`JobContext`).

A job is one room (``JT_ROOM``) or one publisher in a room (``JT_PUBLISHER``). The worker
hands each offer to the user's request handler, which either accepts it with an agent
function or rejects it (the server then offers it to another worker). An accepted job
joins the room with the token the server issued, subscribes to the tracks its
:class:`AutoSubscribe` predicate selects, runs the agent function, and ends when the room
goes away, when its :class:`AutoDisconnect` predicate says so, or when
:meth:`JobContext.shutdown` is called. Jobs run as asyncio tasks in the worker process.
"""

from __future__ import annotations

import asyncio
import enum
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .exceptions import JobError

if TYPE_CHECKING:
    from livekit import rtc
    from livekit.protocol import agent as agent_pb
    from livekit.protocol import models as models_pb

    from .worker import Worker

logger = logging.getLogger("livekit.agents")


class JobType(enum.IntEnum):
    """What a worker is dispatched for (values match ``livekit.protocol.agent.JobType``)."""

    JT_ROOM = 0
    """One job per room, offered when the room is created."""
    JT_PUBLISHER = 1
    """One job per participant, offered when it first publishes a track."""
    JT_PARTICIPANT = 2
    """One job per participant, offered when it joins."""


SubscribeCallback = Callable[["rtc.RemoteTrackPublication", "rtc.RemoteParticipant"], bool]
DisconnectCallback = Callable[["JobContext"], bool]
AgentFunction = Callable[["JobContext"], Awaitable[None] | None]


def _is_kind(publication: Any, kind_name: str) -> bool:
    from livekit import rtc

    return publication.kind == getattr(rtc.TrackKind, kind_name)


class AutoSubscribe:
    """Predicates on ``(publication, participant)`` that choose the tracks a job subscribes to."""

    @staticmethod
    def SUBSCRIBE_ALL(publication: rtc.RemoteTrackPublication, participant: rtc.RemoteParticipant) -> bool:
        return True

    @staticmethod
    def SUBSCRIBE_NONE(publication: rtc.RemoteTrackPublication, participant: rtc.RemoteParticipant) -> bool:
        return False

    @staticmethod
    def AUDIO_ONLY(publication: rtc.RemoteTrackPublication, participant: rtc.RemoteParticipant) -> bool:
        return _is_kind(publication, "KIND_AUDIO")

    @staticmethod
    def VIDEO_ONLY(publication: rtc.RemoteTrackPublication, participant: rtc.RemoteParticipant) -> bool:
        return _is_kind(publication, "KIND_VIDEO")


def _humans(ctx: JobContext) -> list[rtc.RemoteParticipant]:
    from livekit import rtc

    agent_kind = rtc.ParticipantKind.PARTICIPANT_KIND_AGENT
    return [p for p in ctx.room.remote_participants.values() if p.kind != agent_kind]


class AutoDisconnect:
    """Predicates on a :class:`JobContext`, checked whenever a participant leaves (and once
    when a ``JT_PUBLISHER`` job starts); when one returns ``True`` the job ends and the
    agent leaves the room. A room nobody joins is closed by the server after its
    ``empty_timeout``, which ends the job too."""

    @staticmethod
    def ROOM_EMPTY(ctx: JobContext) -> bool:
        """No participant other than agents is left in the room."""
        return not _humans(ctx)

    @staticmethod
    def PUBLISHER_LEFT(ctx: JobContext) -> bool:
        """The publisher a ``JT_PUBLISHER`` job was created for has left (never for ``JT_ROOM``)."""
        identity = ctx.publisher_identity
        return bool(identity) and identity not in ctx.room.remote_participants

    @staticmethod
    def NEVER(ctx: JobContext) -> bool:
        """Stay until the room closes or the agent calls ``ctx.shutdown()``."""
        return False

    @staticmethod
    def DEFAULT(ctx: JobContext) -> bool:
        """``ROOM_EMPTY`` or ``PUBLISHER_LEFT``."""
        return AutoDisconnect.ROOM_EMPTY(ctx) or AutoDisconnect.PUBLISHER_LEFT(ctx)


@dataclass
class AcceptArguments:
    """What :meth:`JobRequest.accept` was called with."""

    agent_fn: AgentFunction
    identity: str
    name: str = ""
    metadata: str = ""
    attributes: dict[str, str] = field(default_factory=dict)
    subscribe_cb: SubscribeCallback = AutoSubscribe.SUBSCRIBE_ALL
    auto_disconnect_cb: DisconnectCallback = AutoDisconnect.DEFAULT


class JobRequest:
    """A job the LiveKit server offers this worker. Call :meth:`accept` or :meth:`reject`
    once, within the worker's ``request_timeout``."""

    def __init__(self, worker: Worker, job: agent_pb.Job) -> None:
        self._worker = worker
        self._job = job
        self._answer: str | None = None  # "accepted" | "rejected"
        self._expired = False

    @property
    def id(self) -> str:
        return self._job.id

    @property
    def job(self) -> agent_pb.Job:
        """The ``livekit.protocol.agent.Job`` offered."""
        return self._job

    @property
    def room(self) -> models_pb.Room:
        """The room (a ``livekit.protocol.models.Room``)."""
        return self._job.room

    @property
    def publisher(self) -> models_pb.ParticipantInfo | None:
        """The publisher of a ``JT_PUBLISHER`` job (``ParticipantInfo``), else ``None``."""
        return self._job.participant if self._job.HasField("participant") else None

    @property
    def answered(self) -> bool:
        return self._answer is not None

    def _claim(self, answer: str) -> None:
        if self._expired:
            raise JobError(
                f"job {self.id} can no longer be answered: the request handler took longer than "
                f"request_timeout ({self._worker.options.request_timeout:g}s) and the job was rejected"
            )
        if self._answer is not None:
            raise JobError(f"job {self.id} was already {self._answer}")
        self._answer = answer

    async def accept(
        self,
        agent_fn: AgentFunction,
        *,
        identity: str | None = None,
        name: str = "",
        metadata: str = "",
        attributes: dict[str, str] | None = None,
        subscribe_cb: SubscribeCallback | None = None,
        auto_disconnect_cb: DisconnectCallback | None = None,
        auto_subscribe: SubscribeCallback | None = None,
        auto_disconnect: DisconnectCallback | None = None,
    ) -> None:
        """Accept the job: the agent joins the room as ``identity`` (default
        ``agent-<job id>``, unique per job) and ``agent_fn(ctx)`` runs.

        ``subscribe_cb`` (alias ``auto_subscribe``) picks the tracks to subscribe to;
        ``auto_disconnect_cb`` (alias ``auto_disconnect``) decides when to leave.
        Returns once the server assigned the job; joining the room continues in the
        background. Raises :class:`~livekit.agents.exceptions.JobError` if the job was
        already answered or the server did not assign it.
        """
        if not callable(agent_fn):
            raise TypeError(f"agent_fn must be a function taking a JobContext, not {type(agent_fn).__name__}")
        if subscribe_cb is not None and auto_subscribe is not None:
            raise TypeError("pass subscribe_cb or auto_subscribe, not both")
        if auto_disconnect_cb is not None and auto_disconnect is not None:
            raise TypeError("pass auto_disconnect_cb or auto_disconnect, not both")
        self._claim("accepted")
        args = AcceptArguments(
            agent_fn=agent_fn,
            identity=identity or f"agent-{self.id}",
            name=name,
            metadata=metadata,
            attributes=dict(attributes or {}),
            subscribe_cb=subscribe_cb or auto_subscribe or AutoSubscribe.SUBSCRIBE_ALL,
            auto_disconnect_cb=auto_disconnect_cb or auto_disconnect or AutoDisconnect.DEFAULT,
        )
        await self._worker._accept(self, args)

    async def reject(self) -> None:
        """Decline the job; the server offers it to another worker."""
        self._claim("rejected")
        await self._worker._reject(self, "rejected by the request handler")

    def __repr__(self) -> str:
        return f"JobRequest(id={self.id!r}, room={self.room.name!r}, type={JobType(self._job.type).name})"


class JobContext:
    """A running job: the connected room, the job, and its lifecycle.

    The job ends when the room is closed or left, when the ``auto_disconnect`` predicate
    says so, when the agent function raises (the job fails), or on :meth:`shutdown`.
    Returning from the agent function does not end the job: event handlers it registered
    keep working until then.
    """

    def __init__(
        self,
        *,
        worker: Worker | None,
        job: agent_pb.Job,
        room: rtc.Room,
        url: str,
        token: str,
        accept_args: AcceptArguments,
    ) -> None:
        self._worker = worker
        self._job = job
        self._room = room
        self._url = url
        self._token = token
        self._args = accept_args
        self._tasks: set[asyncio.Task[Any]] = set()
        self._shutdown_callbacks: list[Callable[[], Any]] = []
        self._shutdown_reason: str | None = None
        self._shutdown_event = asyncio.Event()
        self._done = asyncio.Event()
        self._error: str | None = None
        self.started_at = time.time()
        self.status = "pending"  # pending -> running -> success | failed

    # --- public API --------------------------------------------------------------------

    @property
    def id(self) -> str:
        return self._job.id

    @property
    def job(self) -> agent_pb.Job:
        return self._job

    @property
    def room(self) -> rtc.Room:
        """The connected ``livekit.rtc.Room``."""
        return self._room

    @property
    def agent(self) -> rtc.LocalParticipant:
        """The agent's own participant in the room."""
        return self._room.local_participant

    @property
    def publisher_identity(self) -> str | None:
        if self._job.type == JobType.JT_ROOM or not self._job.HasField("participant"):
            return None
        return self._job.participant.identity or None

    @property
    def participant(self) -> rtc.RemoteParticipant | None:
        """The publisher a ``JT_PUBLISHER`` job serves (``None`` for ``JT_ROOM`` or once it left)."""
        identity = self.publisher_identity
        return self._room.remote_participants.get(identity) if identity else None

    @property
    def shutdown_reason(self) -> str | None:
        """Why the job is ending (``None`` while it runs)."""
        return self._shutdown_reason

    def create_task(self, coro: Coroutine[Any, Any, Any], *, name: str | None = None) -> asyncio.Task[Any]:
        """Run ``coro`` for this job; it is cancelled when the job ends. An exception it
        raises fails the job."""
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def add_shutdown_callback(self, callback: Callable[[], Any]) -> None:
        """Call ``callback()`` (a function or coroutine function) when the job ends, before
        the agent leaves the room; ``ctx.shutdown_reason`` says why."""
        self._shutdown_callbacks.append(callback)

    def shutdown(self, reason: str = "success") -> None:
        """End the job: run the shutdown callbacks, leave the room, report the status."""
        if self._shutdown_reason is None:
            self._shutdown_reason = reason
        self._shutdown_event.set()

    async def disconnect(self) -> None:
        """End the job (as :meth:`shutdown`) and wait until the room is left."""
        self.shutdown("success")
        current = asyncio.current_task()
        if current is not None and current in self._tasks:
            return  # our own task is about to be cancelled by the shutdown
        await self._done.wait()

    async def wait_for_end(self) -> None:
        """Wait until the job has ended and left the room."""
        await self._done.wait()

    # --- running -----------------------------------------------------------------------

    def _fail(self, error: str) -> None:
        if self._error is None and self._shutdown_reason is None:
            self._error = error
            self.shutdown(f"failed: {error}")

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            logger.error(
                "agent of job %s raised %s: %s", self.id, type(exc).__name__, exc,
                exc_info=exc, extra={"job_id": self.id, "room": self._job.room.name},
            )
            self._fail(f"{type(exc).__name__}: {exc}")

    def _apply_subscribe(self, publication: rtc.RemoteTrackPublication, participant: rtc.RemoteParticipant) -> None:
        try:
            wanted = bool(self._args.subscribe_cb(publication, participant))
        except Exception as exc:
            logger.exception("subscribe callback of job %s raised: %s", self.id, exc, extra={"job_id": self.id})
            return
        if wanted and not publication.subscribed:
            publication.set_subscribed(True)

    def _check_auto_disconnect(self, *_: Any) -> None:
        if self._shutdown_reason is not None:
            return
        try:
            leave = bool(self._args.auto_disconnect_cb(self))
        except Exception as exc:
            logger.exception("auto_disconnect callback of job %s raised: %s", self.id, exc, extra={"job_id": self.id})
            return
        if leave:
            logger.info("job %s: auto disconnect, leaving room %s", self.id, self._job.room.name,
                        extra={"job_id": self.id, "room": self._job.room.name})
            self.shutdown("auto_disconnect")

    async def _run(self) -> str:
        """Join, run the agent, wait for the end, clean up. Returns the end reason."""
        from livekit import rtc

        room = self._room
        extra = {"job_id": self.id, "room": self._job.room.name}
        try:
            connecting = asyncio.ensure_future(
                room.connect(self._url, self._token, rtc.RoomOptions(auto_subscribe=False)))
            try:
                # never abandon a connect half-way (the FFI needs the answer): if this task
                # is cancelled, finish connecting, then leave in the cleanup below
                await asyncio.shield(connecting)
            except asyncio.CancelledError:
                await asyncio.gather(connecting, return_exceptions=True)
                raise
            except Exception as exc:
                self._error = f"could not join room {self._job.room.name!r}: {exc}"
                self._shutdown_reason = f"failed: {self._error}"
                logger.error("job %s %s", self.id, self._error, extra=extra)
                return self._shutdown_reason

            room.on("track_published", lambda pub, p: self._apply_subscribe(pub, p))
            room.on("participant_disconnected", self._check_auto_disconnect)
            room.on("disconnected", lambda *_: self.shutdown("room_disconnected"))
            for participant in list(room.remote_participants.values()):
                for publication in list(participant.track_publications.values()):
                    self._apply_subscribe(publication, participant)

            self.status = "running"
            if self._worker is not None:
                self._worker._job_running(self)
            logger.info("job %s joined room %s as %s", self.id, self._job.room.name, self._args.identity, extra=extra)

            if not room.isconnected():
                self.shutdown("room_disconnected")
            else:
                try:
                    result = self._args.agent_fn(self)
                    if inspect.isawaitable(result):
                        self.create_task(_await(result), name=f"agent-{self.id}")
                except Exception as exc:
                    logger.error("agent of job %s raised %s: %s", self.id, type(exc).__name__, exc,
                                 exc_info=True, extra=extra)
                    self._fail(f"{type(exc).__name__}: {exc}")
                if self.publisher_identity:
                    # the publisher may have left before the agent joined (no event then);
                    # an empty room needs no check: the server closes it after its timeout
                    self._check_auto_disconnect()

            await self._shutdown_event.wait()
            return self._shutdown_reason or "success"
        finally:
            await self._cleanup()

    async def _cleanup(self) -> None:
        for cb in list(self._shutdown_callbacks):
            try:
                result = cb()
                if inspect.isawaitable(result):
                    await asyncio.wait_for(_await(result), timeout=10.0)
            except Exception as exc:
                logger.exception("shutdown callback of job %s raised: %s", self.id, exc, extra={"job_id": self.id})
        tasks = [t for t in self._tasks if not t.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5.0)
        try:
            if self._room.isconnected():
                await asyncio.wait_for(self._room.disconnect(), timeout=5.0)
        except Exception as exc:
            logger.warning("job %s: leaving the room failed: %s", self.id, exc, extra={"job_id": self.id})
        self._done.set()


async def _await(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


__all__ = [
    "JobType",
    "JobRequest",
    "JobContext",
    "AutoSubscribe",
    "AutoDisconnect",
    "AcceptArguments",
]
