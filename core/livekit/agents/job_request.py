"""An offered job and its answer: :class:`JobRequest`, and how a request handler is run.

A :class:`JobRequest` owns its answer. It starts ``PENDING``; the request handler moves it
to ``ACCEPTED`` (:meth:`JobRequest.accept`) or ``REJECTED`` (:meth:`JobRequest.reject`);
the framework moves it to ``REJECTED`` when the handler returned or raised without
answering, or to ``EXPIRED`` when ``request_timeout`` ran out (:meth:`JobRequest.expire`).
Whoever runs the handler (an executor, in the worker's process or in a child) reads the
state; nothing else writes it.

The request does not talk to the server itself: a :class:`Responder` (supplied by the
executor) carries the answer on. Its ``accept`` returns once the server assigned the job
and the job was started, or raises :class:`~livekit.agents.exceptions.JobError`.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from .exceptions import JobError
from .job import AutoDisconnect, AutoSubscribe, DisconnectCallback, JobType, SubscribeCallback

if TYPE_CHECKING:
    from livekit.protocol import agent as agent_pb
    from livekit.protocol import models as models_pb

    from .job import AgentFunction

logger = logging.getLogger("livekit.agents")

RequestHandler = Callable[["JobRequest"], Awaitable[None]]


@dataclass(frozen=True)
class JobOffer:
    """A read-only view of an offered job (what plugins see in ``job_offered``)."""

    job: agent_pb.Job

    @property
    def id(self) -> str:
        return self.job.id

    @property
    def room(self) -> models_pb.Room:
        return self.job.room

    @property
    def publisher(self) -> models_pb.ParticipantInfo | None:
        return self.job.participant if self.job.HasField("participant") else None


@dataclass(frozen=True)
class AcceptInfo:
    """The part of an accept the LiveKit server sees (plain data: it crosses processes)."""

    identity: str
    name: str = ""
    metadata: str = ""
    attributes: dict[str, str] = field(default_factory=dict)


@dataclass
class AcceptArguments:
    """What :meth:`JobRequest.accept` was called with (stays where the handler ran)."""

    agent_fn: AgentFunction
    identity: str
    name: str = ""
    metadata: str = ""
    attributes: dict[str, str] = field(default_factory=dict)
    subscribe_cb: SubscribeCallback = AutoSubscribe.SUBSCRIBE_ALL
    auto_disconnect_cb: DisconnectCallback = AutoDisconnect.DEFAULT

    def info(self) -> AcceptInfo:
        return AcceptInfo(self.identity, self.name, self.metadata, dict(self.attributes))


class AnswerState(enum.Enum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    EXPIRED = "expired"


@dataclass(frozen=True)
class OfferAnswer:
    """The request handler's answer to one offer: ``accept`` is set when it accepted;
    otherwise ``reason`` says why the job is declined."""

    accept: AcceptInfo | None
    reason: str = ""

    @property
    def accepted(self) -> bool:
        return self.accept is not None


class Responder(Protocol):
    """Carries a request's answer on (implemented by the executor that runs the handler)."""

    async def accept(self, request: JobRequest, args: AcceptArguments) -> None:
        """Return once the job was assigned and started; raise JobError otherwise."""

    async def reject(self, request: JobRequest) -> None: ...


class JobRequest:
    """A job the LiveKit server offers this worker. Call :meth:`accept` or :meth:`reject`
    once, within the worker's ``request_timeout``."""

    def __init__(self, job: agent_pb.Job, responder: Responder, *, request_timeout: float) -> None:
        self._job = job
        self._responder = responder
        self._request_timeout = request_timeout
        self._state = AnswerState.PENDING
        self._why = ""
        self._args: AcceptArguments | None = None
        self._answered = asyncio.Event()

    # --- the offer ---------------------------------------------------------------------

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

    # --- the answer --------------------------------------------------------------------

    @property
    def state(self) -> AnswerState:
        return self._state

    @property
    def answered(self) -> bool:
        return self._state is not AnswerState.PENDING

    @property
    def accept_arguments(self) -> AcceptArguments | None:
        """What :meth:`accept` was called with (``None`` until then)."""
        return self._args

    def answer(self) -> OfferAnswer:
        """The answer so far, as sent on (``PENDING`` reads as not accepted)."""
        if self._state is AnswerState.ACCEPTED and self._args is not None:
            return OfferAnswer(self._args.info())
        return OfferAnswer(None, self._why or "the request handler has not answered")

    async def wait_answered(self) -> None:
        await self._answered.wait()

    def _settle(self, state: AnswerState, why: str = "") -> None:
        self._state = state
        self._why = why
        self._answered.set()

    def _claim(self, state: AnswerState, why: str = "") -> None:
        if self._state is AnswerState.EXPIRED:
            raise JobError(
                f"job {self.id} can no longer be answered: the request handler took longer than "
                f"request_timeout ({self._request_timeout:g}s) and the job was rejected"
            )
        if self._state is not AnswerState.PENDING:
            raise JobError(f"job {self.id} was already {self._state.value}")
        self._settle(state, why)

    def expire(self) -> bool:
        """``request_timeout`` ran out: an unanswered request becomes ``EXPIRED`` (later
        answers raise). Returns whether it was still unanswered."""
        if self._state is not AnswerState.PENDING:
            return False
        self._settle(AnswerState.EXPIRED, f"the request handler neither accepted nor rejected it within "
                                          f"request_timeout ({self._request_timeout:g}s)")
        return True

    def decline(self, why: str) -> bool:
        """The framework declines an unanswered request (the handler returned or raised
        without answering). Returns whether it was still unanswered."""
        if self._state is not AnswerState.PENDING:
            return False
        self._settle(AnswerState.REJECTED, why)
        return True

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
        args = AcceptArguments(
            agent_fn=agent_fn,
            identity=identity or f"agent-{self.id}",
            name=name,
            metadata=metadata,
            attributes=dict(attributes or {}),
            subscribe_cb=subscribe_cb or auto_subscribe or AutoSubscribe.SUBSCRIBE_ALL,
            auto_disconnect_cb=auto_disconnect_cb or auto_disconnect or AutoDisconnect.DEFAULT,
        )
        self._args = args
        self._claim(AnswerState.ACCEPTED)
        await self._responder.accept(self, args)

    async def reject(self) -> None:
        """Decline the job; the server offers it to another worker."""
        self._claim(AnswerState.REJECTED, "rejected by the request handler")
        await self._responder.reject(self)

    def __repr__(self) -> str:
        return (f"JobRequest(id={self.id!r}, room={self.room.name!r}, type={JobType(self._job.type).name}, "
                f"state={self._state.value})")


async def answer_request(
    handler: RequestHandler, request: JobRequest, timeout: float
) -> tuple[OfferAnswer, asyncio.Task[Any]]:
    """Run ``handler(request)`` until it answers, returns, raises, or ``timeout`` runs out.

    Returns the answer and the handler's task. After an accept the task keeps running
    (``accept()`` waits for the assignment; the handler may go on afterwards); an
    exception it raises then is logged. An expired handler is cancelled. Rejections are
    logged here, where the handler ran.
    """
    extra = {"job_id": request.id, "room": request.room.name}
    task = asyncio.create_task(_call(handler, request), name=f"request-handler-{request.id}")
    waiter = asyncio.create_task(request.wait_answered())
    try:
        done, _ = await asyncio.wait({task, waiter}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        task.cancel()  # the worker is closing: the handler goes with it
        raise
    finally:
        waiter.cancel()
    if task in done and not request.answered:
        exc = task.exception() if not task.cancelled() else None
        if exc is not None:
            why = f"the request handler raised {type(exc).__name__}: {exc}"
            request.decline(why)
            logger.error("rejected job %s in room %s: %s", request.id, request.room.name, why,
                         exc_info=exc, extra=extra)
        else:
            why = "the request handler returned without accepting or rejecting it"
            request.decline(why)
            logger.warning("rejected job %s in room %s: %s", request.id, request.room.name, why, extra=extra)
    elif request.expire():
        task.cancel()
        logger.warning("rejected job %s in room %s: %s", request.id, request.room.name, request.answer().reason,
                       extra=extra)
    elif request.state is AnswerState.REJECTED:
        logger.info("job %s in room %s rejected by the request handler", request.id, request.room.name,
                    extra=extra)
    task.add_done_callback(lambda t: _log_late_failure(t, request))
    return request.answer(), task


async def _call(handler: RequestHandler, request: JobRequest) -> None:
    await handler(request)


def _log_late_failure(task: asyncio.Task[Any], request: JobRequest) -> None:
    if task.cancelled() or request.state is not AnswerState.ACCEPTED:
        return
    exc = task.exception()
    if exc is not None:
        logger.error("request handler of job %s raised after accepting: %s: %s", request.id,
                     type(exc).__name__, exc, exc_info=exc, extra={"job_id": request.id})


__all__ = [
    "AcceptArguments",
    "AcceptInfo",
    "AnswerState",
    "JobOffer",
    "JobRequest",
    "OfferAnswer",
    "RequestHandler",
    "Responder",
    "answer_request",
]
