"""Jobs: the running agent's context (:class:`JobContext`) and the predicates that shape it.

A job is one room (``JT_ROOM``) or one publisher in a room (``JT_PUBLISHER``). The worker
hands each offer to the user's request handler, which either accepts it with an agent
function or rejects it (the server then offers it to another worker). An accepted job
joins the room with the token the server issued, subscribes to the tracks its
:class:`AutoSubscribe` predicate selects, runs the agent function, and ends when the room
goes away, when its :class:`AutoDisconnect` predicate says so, or when
:meth:`JobContext.shutdown` is called; it ends once, with a
:class:`~livekit.agents.job_end.JobEnd`. Where the job runs (the worker's process or a
child) is the executor's choice (:mod:`livekit.agents.executor`).

The offer itself is :class:`~livekit.agents.job_request.JobRequest` (also importable
from here, as before).
"""

from __future__ import annotations

import asyncio
import enum
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any

from .job_end import JobEnd, JobEndKind
from .utils.lazy import lazy_exports

if TYPE_CHECKING:
    from livekit import rtc
    from livekit.protocol import agent as agent_pb

    from .job_request import AcceptArguments, JobRequest  # noqa: F401

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

    return bool(publication.kind == getattr(rtc.TrackKind, kind_name))


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
        job: agent_pb.Job,
        room: rtc.Room,
        url: str,
        token: str,
        accept_args: AcceptArguments,
        on_running: Callable[[JobContext], None] | None = None,
        fallback_urls: tuple[str, ...] = (),
    ) -> None:
        from .rejoin import RoomKeeper

        self._on_running = on_running
        self._keeper = RoomKeeper(self, tuple(fallback_urls))
        self._job = job
        self._room = room
        self._url = url
        self._token = token
        self._args = accept_args
        self._tasks: set[asyncio.Task[Any]] = set()
        self._shutdown_callbacks: list[Callable[[], Any]] = []
        self._end: JobEnd | None = None
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
        if int(self._job.type) == JobType.JT_ROOM or not self._job.HasField("participant"):
            return None
        return self._job.participant.identity or None

    @property
    def participant(self) -> rtc.RemoteParticipant | None:
        """The publisher a ``JT_PUBLISHER`` job serves (``None`` for ``JT_ROOM`` or once it left)."""
        identity = self.publisher_identity
        return self._room.remote_participants.get(identity) if identity else None

    @property
    def shutdown_reason(self) -> str | None:
        """Why the job is ending (``None`` while it runs): ``"success"``,
        ``"auto_disconnect"``, ``"room_disconnected"``, ``"terminated"``,
        ``"failed: <error>"``, ``"drain_timeout"``, ``"shutdown"`` or ``"connection_lost"``
        (:attr:`end` has the full value)."""
        return self._end.reason if self._end is not None else None

    @property
    def end(self) -> JobEnd | None:
        """How the job is ending, as a :class:`~livekit.agents.job_end.JobEnd` (``None`` while it runs)."""
        return self._end

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

    def shutdown(self, reason: str | JobEnd = "success") -> None:
        """End the job: run the shutdown callbacks, leave the room, report the status.

        ``reason`` is a :class:`~livekit.agents.job_end.JobEnd` or its text (see
        :meth:`JobEnd.parse <livekit.agents.job_end.JobEnd.parse>`); the first call wins."""
        if self._end is None:
            self._end = JobEnd.parse(reason)
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
        if self._error is None and self._end is None:
            self._error = error
            self.shutdown(JobEnd.failure(error))

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

    def _resubscribe(self) -> None:
        for participant in list(self._room.remote_participants.values()):
            for publication in list(participant.track_publications.values()):
                self._apply_subscribe(publication, participant)

    def _check_auto_disconnect(self, *_: Any) -> None:
        if self._end is not None or not self._keeper.steady:
            return  # a connection being restored lists no participants: not an empty room
        try:
            leave = bool(self._args.auto_disconnect_cb(self))
        except Exception as exc:
            logger.exception("auto_disconnect callback of job %s raised: %s", self.id, exc, extra={"job_id": self.id})
            return
        if leave:
            logger.info("job %s: auto disconnect, leaving room %s", self.id, self._job.room.name,
                        extra={"job_id": self.id, "room": self._job.room.name})
            self.shutdown(JobEnd(JobEndKind.AUTO_DISCONNECT))

    async def _run(self) -> JobEnd:
        """Join, run the agent, wait for the end, clean up. Returns how the job ended."""
        from livekit import rtc

        room = self._room
        extra = {"job_id": self.id, "room": self._job.room.name}
        try:
            for attempt in range(1, JOIN_ATTEMPTS + 1):
                connecting = asyncio.ensure_future(
                    room.connect(self._url, self._token, rtc.RoomOptions(auto_subscribe=False)))
                try:
                    # never abandon a connect half-way (the FFI needs the answer): if this task
                    # is cancelled, finish connecting, then leave in the cleanup below
                    await asyncio.shield(connecting)
                    break
                except asyncio.CancelledError:
                    await asyncio.gather(connecting, return_exceptions=True)
                    raise
                except Exception as exc:
                    if isinstance(exc, rtc.ConnectError) and attempt < JOIN_ATTEMPTS:
                        # a transient failure (e.g. the peer connection timed out on a
                        # busy host): the room is still there, try again
                        logger.warning("job %s could not join room %s (attempt %d of %d): %s; retrying",
                                       self.id, self._job.room.name, attempt, JOIN_ATTEMPTS, exc, extra=extra)
                        await asyncio.sleep(0.5 * attempt)
                        continue
                    self._error = f"could not join room {self._job.room.name!r}: {exc}"
                    self._end = JobEnd.failure(self._error)
                    logger.error("job %s %s", self.id, self._error, extra=extra)
                    return self._end

            room.on("track_published", lambda pub, p: self._apply_subscribe(pub, p))
            room.on("participant_disconnected", self._check_auto_disconnect)
            self._keeper.attach()  # a lost node: rejoin through another, or end as room_lost
            self._resubscribe()
            from .presence import announce

            # seen by the others now, not on the server's 3 s batch; in the background, so
            # that subscribing and the agent function do not wait for it
            self._announcing = asyncio.ensure_future(announce(room, self.id))

            self.status = "running"
            if self._on_running is not None:
                self._on_running(self)
            logger.info("job %s joined room %s as %s", self.id, self._job.room.name, self._args.identity, extra=extra)

            if not room.isconnected():
                self.shutdown(JobEnd(JobEndKind.ROOM_DISCONNECTED))
            else:
                try:
                    result = self._args.agent_fn(self)
                    if inspect.isawaitable(result):
                        # a coroutine becomes the task itself: cancelled before it starts
                        # (the job ended at once), it is closed, not left "never awaited"
                        coro = result if asyncio.iscoroutine(result) else _await(result)
                        self.create_task(coro, name=f"agent-{self.id}")
                except Exception as exc:
                    logger.error("agent of job %s raised %s: %s", self.id, type(exc).__name__, exc,
                                 exc_info=True, extra=extra)
                    self._fail(f"{type(exc).__name__}: {exc}")
                if self.publisher_identity:
                    # the publisher may have left before the agent joined (no event then);
                    # an empty room needs no check: the server closes it after its timeout
                    self._check_auto_disconnect()

            await self._shutdown_event.wait()
            return self._end or JobEnd(JobEndKind.SUCCESS)
        finally:
            await self._cleanup()

    async def _cleanup(self) -> None:
        await self._keeper.aclose()
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


JOIN_ATTEMPTS = 3
"""Times a job tries to join its room when the connection fails (``rtc.ConnectError``)."""


async def run_job(ctx: JobContext) -> JobEnd:
    """Run an assigned job to its end, wherever an executor runs it: join the room, run the
    agent function, wait for the end, run the shutdown callbacks, leave. Returns how it
    ended (never raises for the agent's faults)."""
    return await ctx._run()


async def _await(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


# names that moved to modules of their own, importable from here as before (lazily: those
# modules import this one)
__getattr__, _dir = lazy_exports(__name__, {
    "JobRequest": "livekit.agents.job_request",
    "AcceptArguments": "livekit.agents.job_request",
    "AcceptInfo": "livekit.agents.job_request",
    "JobOffer": "livekit.agents.job_request",
})

__all__ = [
    "JobType",
    "JobRequest",
    "JobContext",
    "JobEnd",
    "JobEndKind",
    "AutoSubscribe",
    "AutoDisconnect",
    "AcceptArguments",
    "run_job",
]
