"""``python my_agent.py connect --room NAME``: run one job in a room now.

No dispatch and no worker registration: a synthetic job for the room is handed to the
script's request handler (a real :class:`~livekit.agents.JobRequest`); when the handler
accepts, a token is made for the identity it chose (with the worker's permissions and
the agent grant) and the job joins the room directly, through the ``inline`` executor.
The command ends when the job ends (the room empties, the agent calls
``ctx.shutdown()``) or on SIGINT/SIGTERM, which ends the job cleanly.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import uuid
from typing import TYPE_CHECKING, Any

from ..exceptions import WorkerError
from ..executor.base import Assignment, JobInfo
from ..executor.inline import InlineExecutor
from ..job_end import JobEnd, JobEndKind

if TYPE_CHECKING:
    from ..job import JobContext
    from ..options import WorkerOptions

logger = logging.getLogger("livekit.agents")


def synthetic_job(room: str, worker_type: int, participant_identity: str | None) -> Any:
    """A ``livekit.protocol.agent.Job`` for ``room`` (id ``AJ_connect_...``)."""
    from livekit.protocol import agent as agent_pb
    from livekit.protocol import models

    job = agent_pb.Job(id=f"AJ_connect_{uuid.uuid4().hex[:12]}", type=agent_pb.JobType.Name(int(worker_type)), room=models.Room(name=room))
    if participant_identity:
        job.participant.CopyFrom(models.ParticipantInfo(identity=participant_identity))
    return job


def agent_token(options: WorkerOptions, api_key: str, api_secret: str, room: str, identity: str, name: str = "",
                metadata: str = "", attributes: dict[str, str] | None = None) -> str:
    """The token the server would have put in the assignment: join ``room`` as an agent."""
    from livekit import api

    perms = options.permissions
    token = (api.AccessToken(api_key, api_secret).with_identity(identity).with_kind("agent")
             .with_grants(api.VideoGrants(room_join=True, room=room, agent=True, can_publish=perms.can_publish,
                                          can_subscribe=perms.can_subscribe,
                                          can_publish_data=perms.can_publish_data,
                                          can_update_own_metadata=perms.can_update_metadata,
                                          can_publish_sources=perms.can_publish_sources or None,
                                          hidden=perms.hidden)))
    if name:
        token = token.with_name(name)
    if metadata:
        token = token.with_metadata(metadata)
    if attributes:
        token = token.with_attributes(attributes)
    return token.to_jwt()


class _Ended:
    """Executor events for one job: remembers how it ended."""

    def __init__(self) -> None:
        self.end: asyncio.Future[JobEnd] = asyncio.get_running_loop().create_future()

    def job_running(self, info: JobInfo, context: JobContext | None) -> None:
        logger.info("job %s running in room %s as %s", info.id, info.room_name, info.agent_identity,
                    extra={"job_id": info.id, "room": info.room_name})

    def job_ended(self, info: JobInfo, end: JobEnd, context: JobContext | None) -> None:
        logger.info("job %s in room %s ended: %s", info.id, info.room_name, end.describe(),
                    extra={"job_id": info.id, "room": info.room_name, "reason": end.reason})
        if not self.end.done():
            self.end.set_result(end)


async def connect_job(options: WorkerOptions, room: str, participant_identity: str | None = None) -> int:
    """Run one job in ``room`` with the options' request handler; returns the exit status
    (0: the job ran and did not fail, or was stopped by a signal; 1 otherwise)."""
    from ..failover import parse_urls
    from ..logging_setup import add_secret
    from ..protocol import room_url

    urls = parse_urls(options.url or os.environ.get("LIVEKIT_URL", ""))
    if not urls:
        raise WorkerError("connect needs a LiveKit URL: --url or LIVEKIT_URL")
    url = urls[0]
    key = options.api_key or os.environ.get("LIVEKIT_API_KEY", "")
    secret = options.api_secret or os.environ.get("LIVEKIT_API_SECRET", "")
    add_secret(secret)
    executor = InlineExecutor()
    events = _Ended()
    await executor.start(events, options)
    job = synthetic_job(room, int(options.worker_type), participant_identity)
    loop = asyncio.get_running_loop()
    stopped: list[str] = []

    def on_signal(sig: signal.Signals) -> None:
        stopped.append(sig.name)
        logger.info("received %s: ending the job", sig.name)
        if not executor.end_job(job.id, JobEnd(JobEndKind.SHUTDOWN, f"stopped by {sig.name}")) \
                and not events.end.done():
            events.end.set_result(JobEnd(JobEndKind.SHUTDOWN, f"stopped by {sig.name}"))

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        logger.info("connect: offering job %s in room %s to the request handler", job.id, room,
                    extra={"job_id": job.id, "room": room})
        answer = await executor.request(job)
        if answer.accept is None:
            logger.error("connect: the request handler did not take the job: %s", answer.reason)
            return 1
        accept = answer.accept
        token = agent_token(options, key, secret, room, accept.identity, accept.name, accept.metadata,
                            accept.attributes)
        await executor.launch(job.id, Assignment(job=job, url=room_url(url), token=token))
        end = await events.end
    finally:
        await executor.aclose()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    if stopped and end.kind is JobEndKind.SHUTDOWN:
        return 0
    return 1 if end.failed else 0


__all__ = ["agent_token", "connect_job", "synthetic_job"]
