"""The executor interface: where the user's request handler and agents run.

The :class:`~livekit.agents.Worker` keeps the connection to the LiveKit server and speaks
the protocol (offers, availability answers, assignments, job status, load). An executor
runs the user's code: the request handler for each offer, and the agent of each job the
server assigned. The worker talks to it only through :class:`JobExecutor`, and hears
back through :class:`ExecutorEvents`.

One offer goes like this::

    worker                                   executor (the handler and agent may be in a child)
    ------                                   --------
    offer arrives, plugins asked
    answer = await executor.request(job) --> the user's handler gets a JobRequest
                                             handler calls accept(agent_fn, identity=...)
                                        <--  request() returns OfferAnswer(accept=AcceptInfo)
                                             (the handler's accept() keeps waiting)
    availability(True, identity...) -> server
    server: assignment (url, token)
    await executor.launch(job_id, asg)  -->  the job starts: JobContext joins the room with
                                             asg.url / asg.token and runs agent_fn;
                                             the handler's accept() returns
                                        <--  events.job_running(info)
                                        <--  events.job_ended(info, JobEnd)
    update_job(status) -> server

If the handler rejects (or raises, returns without answering, or overruns
``request_timeout``), ``request()`` returns ``OfferAnswer(accept=None, reason=...)`` and
the worker declines the job. If the server never assigns an accepted job, or the worker
started draining meanwhile, the worker calls ``abandon(job_id, why)``: the handler's
``accept()`` raises :class:`~livekit.agents.exceptions.JobError` with ``why``.

Only plain data crosses this interface: ``livekit.protocol.agent.Job`` messages (which
do not pickle: send ``job.SerializeToString()`` and rebuild with :func:`job_from_bytes`),
:class:`~livekit.agents.job_request.OfferAnswer` / ``AcceptInfo``, :class:`Assignment`,
:class:`JobInfo` and :class:`~livekit.agents.job_end.JobEnd`, which all pickle. The agent
function, the subscribe and auto-disconnect callbacks and the handler itself never cross
it, so a process executor can run the seed's handler and agent, closures defined under
``if __name__ == "__main__":`` that cannot be pickled, in a child forked from the worker
(which has them already): the parent sends the offer to the child, the child's handler
answers with accept arguments or a rejection, the parent answers the server, forwards
the assignment (url, token) to the child, and receives the job's status and end back.

Building blocks for an executor, wherever it runs the user's code:
:class:`~livekit.agents.job_request.JobRequest` with a
:class:`~livekit.agents.job_request.Responder` of its own (``accept`` hands the accept
on and waits for the launch or the abandon), run by
:func:`~livekit.agents.job_request.answer_request` (the ``request_timeout`` rules and
their logs); then a :class:`~livekit.agents.JobContext` run by
:func:`~livekit.agents.job.run_job`, which returns the job's
:class:`~livekit.agents.job_end.JobEnd`. :mod:`livekit.agents.executor.inline` is the
smallest complete example.
"""

from __future__ import annotations

import abc
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from ..job import JobType

if TYPE_CHECKING:
    from livekit.protocol import agent as agent_pb

    from ..job import JobContext
    from ..job_end import JobEnd
    from ..job_request import OfferAnswer
    from ..options import WorkerOptions


@dataclass(frozen=True)
class Assignment:
    """The server's assignment of an accepted job: the job and how to join its room."""

    job: agent_pb.Job
    url: str
    """The room's URL (the worker's server URL when the assignment carries none)."""
    token: str
    """The agent's access token for the room. Never log it."""
    fallback_urls: tuple[str, ...] = ()
    """The worker's other LiveKit URLs (the nodes of its cluster), where the job rejoins its
    room when the node of ``url`` is lost (:mod:`livekit.agents.rejoin`)."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (_assignment, (self.job.SerializeToString(), self.url, self.token, self.fallback_urls))

    def __repr__(self) -> str:
        return f"Assignment(job={self.job.id!r}, url={self.url!r}, token='***')"


@dataclass(frozen=True)
class JobInfo:
    """A snapshot of one running job (what ``Worker.info()`` and the health endpoint show)."""

    job: agent_pb.Job
    agent_identity: str
    status: str = "pending"
    """``pending`` (joining), ``running`` (in the room, agent started), ``success`` or ``failed``."""
    started_at: float = field(default_factory=time.time)
    pid: int | None = None
    """The process that runs the job."""

    @property
    def id(self) -> str:
        return self.job.id

    @property
    def room_name(self) -> str:
        return self.job.room.name

    @property
    def type(self) -> JobType:
        return JobType(self.job.type)

    @property
    def participant(self) -> str | None:
        """The publisher's identity for ``JT_PUBLISHER`` jobs."""
        if int(self.job.type) == JobType.JT_ROOM or not self.job.HasField("participant"):
            return None
        return self.job.participant.identity or None

    def __reduce__(self) -> tuple[Any, ...]:
        return (_job_info, (self.job.SerializeToString(), self.agent_identity, self.status, self.started_at,
                            self.pid))

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "room": self.room_name,
            "type": self.type.name,
            "participant": self.participant,
            "identity": self.agent_identity,
            "status": self.status,
            "started_at": self.started_at,
            "pid": self.pid,
        }


def job_from_bytes(data: bytes) -> agent_pb.Job:
    """A ``livekit.protocol.agent.Job`` from ``job.SerializeToString()`` (protobuf messages
    do not pickle: send their bytes)."""
    from livekit.protocol import agent as agent_pb

    return agent_pb.Job.FromString(data)


def _assignment(job: bytes, url: str, token: str, fallback_urls: tuple[str, ...] = ()) -> Assignment:
    return Assignment(job_from_bytes(job), url, token, fallback_urls)


def _job_info(job: bytes, identity: str, status: str, started_at: float, pid: int | None) -> JobInfo:
    return JobInfo(job_from_bytes(job), identity, status, started_at, pid)


class ExecutorEvents(Protocol):
    """What an executor tells the worker (implemented by :class:`~livekit.agents.Worker`).

    Both are called on the worker's event loop. ``context`` is the job's live
    :class:`~livekit.agents.JobContext` when the job runs in the worker's own process
    (``inline``), else ``None``.
    """

    def job_running(self, info: JobInfo, context: JobContext | None) -> None:
        """The job joined its room and its agent function is about to run (reported to
        the server as ``JS_RUNNING``)."""

    def job_ended(self, info: JobInfo, end: JobEnd, context: JobContext | None) -> None:
        """The job ended and has left its room (or its process is gone); called once per
        launched job, after the job has been removed from :meth:`JobExecutor.jobs`."""

    # Optional (an executor looks it up with getattr): ``executor_failed(why: str)``, the
    # executor cannot start jobs any more; the Worker drains and exits non-zero.


class JobExecutor(abc.ABC):
    """Runs request handlers and jobs for a worker. See the module docstring for the
    sequence; every method is called on the worker's event loop.

    Lifecycle: ``prepare()`` (optional, before the event loop), ``await start(...)``,
    then any number of ``request`` / ``launch`` / ``abandon`` / ``end_job``, then
    ``await aclose()`` once.
    """

    name: ClassVar[str] = ""
    """The ``--job-executor`` value that selects this executor."""

    def prepare(self, options: WorkerOptions) -> None:  # noqa: B027 - optional hook
        """Called once in the main thread before the worker's event loop starts when the
        worker runs through ``run_app`` (the CLI), and at the start of ``Worker.run()``
        otherwise (then inside the running loop). A process executor can fork here,
        before any thread or the rtc runtime exists. Default: nothing."""

    @abc.abstractmethod
    async def start(self, events: ExecutorEvents, options: WorkerOptions) -> None:
        """Get ready to take offers. ``options.request_handler`` is the user's handler,
        ``options.request_timeout`` its deadline; ``events`` receives job status."""

    @abc.abstractmethod
    async def request(self, job: agent_pb.Job) -> OfferAnswer:
        """Run the request handler on a :class:`~livekit.agents.JobRequest` for ``job`` and
        return its answer as soon as there is one: accepted (with the
        :class:`~livekit.agents.job_request.AcceptInfo` the server needs), rejected, or
        declined because the handler raised, returned without answering or did not
        answer within ``request_timeout`` (``reason`` says which; the executor logs it).
        Never raises for the handler's faults.

        After an accept the handler's ``accept()`` call is still waiting: the executor
        keeps the accepted request until :meth:`launch` or :meth:`abandon` for its id."""

    @abc.abstractmethod
    async def launch(self, job_id: str, assignment: Assignment) -> None:
        """Start the accepted job ``job_id``: join ``assignment.url`` with
        ``assignment.token`` and run the agent function the handler passed to
        ``accept()``, whose call then returns. When this returns the job is listed by
        :meth:`jobs`; its progress arrives through :class:`ExecutorEvents`. If the job
        cannot be started (its process died meanwhile) the executor reports it through
        ``job_ended`` with a failure."""

    @abc.abstractmethod
    async def abandon(self, job_id: str, why: str) -> None:
        """The accepted job ``job_id`` will not run (not assigned in time, the worker is
        draining or closing): the handler's ``accept()`` raises ``JobError(why)``."""

    @abc.abstractmethod
    def end_job(self, job_id: str, end: JobEnd) -> bool:
        """Ask a running job to end with ``end`` (the server terminated it, the drain
        timeout ran out, the worker is closing): its shutdown callbacks run and it leaves
        its room; ``job_ended`` follows. Returns whether such a job was running."""

    @abc.abstractmethod
    def jobs(self) -> list[JobInfo]:
        """Snapshots of the launched jobs that have not ended yet."""

    def context(self, job_id: str) -> JobContext | None:
        """The job's live context when it runs in this process, else ``None``."""
        return None

    @abc.abstractmethod
    async def aclose(self) -> None:
        """Stop: cancel handlers still deciding, abandon accepted offers, end the running
        jobs with ``JobEnd(SHUTDOWN)`` (each reported through ``job_ended``), wait for
        them to leave their rooms, and release processes and other resources."""


__all__ = ["Assignment", "ExecutorEvents", "JobExecutor", "JobInfo", "job_from_bytes"]
