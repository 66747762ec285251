"""No room left without its agent: a ``JT_ROOM`` worker with capacity finds rooms that have
no agent and gets them one through explicit dispatch.

livekit-server offers a ``JT_ROOM`` job once, when the room is created. A room created
while every worker was full (``max_jobs``, load), or whose agent was lost with a node,
never gets another offer. So a ``JT_ROOM`` worker that is registered and available looks,
every :data:`SCAN_INTERVAL` seconds, for rooms (``RoomService.ListRooms`` with its own key)
older than :data:`GRACE` seconds that have no agent participant (kind ``AGENT``), and asks
the server to dispatch an agent to each (``AgentDispatchService.CreateDispatch`` with the
worker's ``agent_name`` and the metadata :data:`MARKER`; in livekit-server v1.13.5 this
also reaches automatically dispatched workers, ``agent_name=""``). The server then offers
the job to a worker of the cluster as usual. Which rooms count:

* a room with participants and no agent (its agent was lost, or it was never offered);
* an **empty** room only if it was never served: none of its dispatches (the room's own
  and any recovery dispatch) ever had a job, and the server will not close it before the
  agent gets there (its ``empty_timeout`` has not run out). An agent that joins an empty
  room stays: ``AutoDisconnect.ROOM_EMPTY`` is checked when a participant leaves, not at
  the join; the server closes the room after its ``empty_timeout`` (agents do not keep a
  room open), which ends the job. A room whose agent left once it emptied is not served
  again while it stays empty, so an empty room never loops dispatch -> leave -> dispatch.

Never two agents for one room. The recovery dispatch is a claim that the job itself checks
before the request handler sees it (:func:`admit`, called by every worker for a job whose
metadata is :data:`MARKER`): the job is declined, and its dispatch deleted, when the room
has an agent or has any other recovery dispatch of the same agent name. Two workers that
dispatch to the same room at the same instant therefore may both lose (both jobs see both
dispatches; the room is served on a later scan) but never both win: a job is accepted only
while its dispatch is the room's only recovery dispatch, and a dispatch whose job was
accepted is never deleted while its agent may still be joining (the scanner removes a
recovery dispatch only :data:`CLAIM_TTL` seconds after it first saw it, and only when the
room has no agent; in an empty room whose recovery job ran, it stays as the record that
the room was served).

Opt out with ``recover_orphans=False`` (``--no-recover-orphans``), e.g. when another
component re-dispatches rooms; such a worker still checks recovery jobs offered to it.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

if TYPE_CHECKING:
    from .worker import Worker

logger = logging.getLogger("livekit.agents")

SCAN_INTERVAL = 5.0
GRACE = 5.0
"""Seconds a room may be without an agent before it counts as orphaned (normal dispatch
takes well under a second)."""
CLAIM_TTL = 30.0
"""Seconds a recovery dispatch counts as a claim in progress; after that, in a room that
still has no agent, it is stale and the scanner deletes it."""
_SAME_CALL_MS = 250.0
JITTER = 1.0
"""Up to this many seconds of random delay before a dispatch, spreading workers that scan
at the same time."""
MARKER = "livekit-agents:recover"
"""The metadata of a recovery dispatch (the offered job's ``job.metadata``)."""


def http_url(url: str) -> str:
    parts = urlsplit(url)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/"), "", ""))


def is_recovery(job: Any) -> bool:
    """Whether an offered job comes from a recovery dispatch (see :func:`admit`)."""
    return bool(job.metadata == MARKER and job.dispatch_id)


def _is_agent(participant: Any) -> bool:
    from livekit.protocol import models

    return bool(participant.kind == models.ParticipantInfo.AGENT)


async def admit(lk: Any, job: Any) -> str | None:
    """The claim check of a recovery job: ``None`` when the job may be accepted, else why
    not (then its dispatch is deleted, so no other worker takes it either).

    ``lk`` is a ``livekit.api.LiveKitAPI``. Called before the request handler runs; an
    API error propagates (the caller declines: not knowing is not a claim)."""
    from livekit import api

    room = job.room.name
    people = (await lk.room.list_participants(api.ListParticipantsRequest(room=room))).participants
    dispatches = await lk.agent_dispatch.list_dispatch(room)
    mine = next((d for d in dispatches if d.id == job.dispatch_id), None)
    if mine is None:
        return "its recovery dispatch was withdrawn"
    why = None
    if not people and await _created_by(lk, room, mine):
        # the room was deleted between the scan and the dispatch, and CreateDispatch made
        # it anew: nobody wants it; remove it again
        await lk.room.delete_room(api.DeleteRoomRequest(room=room))
        return "the room was deleted before its recovery dispatch reached it"
    if any(_is_agent(p) for p in people):
        why = "the room has an agent already"
    elif any(d.id != job.dispatch_id and d.metadata == MARKER and d.agent_name == job.agent_name
             for d in dispatches):
        why = "another worker dispatched an agent to the room at the same time (it is served on a later scan)"
    if why is not None:
        try:
            await lk.agent_dispatch.delete_dispatch(job.dispatch_id, room)
        except api.TwirpError as exc:
            if exc.code != "not_found":
                raise
    return why


async def _created_by(lk: Any, room: str, dispatch: Any) -> bool:
    """Whether ``CreateDispatch`` created ``room`` with ``dispatch`` (the room had been
    deleted after the scan saw it): then the two were made in the same server call, well
    under :data:`_SAME_CALL_MS` apart; a room found by a scan existed before."""
    from livekit import api

    rooms = (await lk.room.list_rooms(api.ListRoomsRequest(names=[room]))).rooms
    if not rooms:
        return True
    created_ms = rooms[0].creation_time_ms or rooms[0].creation_time * 1000
    return bool(created_ms >= dispatch.state.created_at / 1e6 - _SAME_CALL_MS)


class OrphanRecovery:
    """The scan loop of one worker (started by the worker for ``JT_ROOM``).

    ``before_dispatch`` (a coroutine function of the room name, default none) is awaited
    right before a dispatch is created; tests use it to line two workers up."""

    def __init__(self, worker: Worker, api_key: str, api_secret: str, *, interval: float = SCAN_INTERVAL,
                 grace: float = GRACE, jitter: float = JITTER, claim_ttl: float = CLAIM_TTL,
                 before_dispatch: Callable[[str], Awaitable[Any]] | None = None) -> None:
        self._worker = worker
        self._key = api_key
        self._secret = api_secret
        self._interval = interval
        self._grace = grace
        self._jitter = jitter
        self._claim_ttl = claim_ttl
        self.before_dispatch = before_dispatch
        self.dispatched: list[str] = []
        self._seen: dict[str, float] = {}

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._interval * random.uniform(0.8, 1.2))
            w = self._worker
            if not w.registered or w._full_reason() is not None or w._conn is None:
                continue
            try:
                await self.scan(http_url(w._conn.url))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.debug("orphaned-room scan failed: %s: %s", type(exc).__name__, exc)

    async def scan(self, url: str) -> list[str]:
        """One pass over the rooms of the server at ``url``; returns the rooms it dispatched
        an agent to."""
        from livekit import api

        done: list[str] = []
        lk = api.LiveKitAPI(url, self._key, self._secret)
        try:
            rooms = (await lk.room.list_rooms(api.ListRoomsRequest())).rooms
            for room in rooms:
                if self._worker._full_reason() is not None:
                    break
                if self._age(room) < self._grace or not await self._orphaned(lk, room):
                    continue
                if await self._claim(lk, room):
                    done.append(room.name)
        finally:
            await lk.aclose()
        return done

    @staticmethod
    def _age(room: Any) -> float:
        created = (room.creation_time_ms / 1000.0) if room.creation_time_ms else float(room.creation_time)
        return time.time() - created

    async def _orphaned(self, lk: Any, room: Any) -> bool:
        """No agent, and no recovery in progress; an empty room only if never served and
        still open long enough for an agent to get there. Deletes stale recovery dispatches."""
        from livekit import api

        people = (await lk.room.list_participants(api.ListParticipantsRequest(room=room.name))).participants
        if any(_is_agent(p) for p in people):
            return False
        name = self._worker.options.agent_name
        dispatches = [d for d in await lk.agent_dispatch.list_dispatch(room.name) if d.agent_name == name]
        if not people:
            if any(d.state.jobs for d in dispatches):
                return False  # an agent was sent to it already: not again while it stays empty
            if room.empty_timeout and self._age(room) + self._grace >= room.empty_timeout:
                return False  # the server closes it before an agent would get there
        now = time.monotonic()
        in_progress = False
        for d in dispatches:
            if d.metadata != MARKER:
                continue
            first_seen = self._seen.setdefault(d.id, now)
            if now - first_seen < self._claim_ttl:
                in_progress = True
            else:  # stale: its job never joined, or its agent left; it would block new claims
                # (an empty room whose recovery job ran returned above: its dispatch, the record
                # that it was served, stays)
                try:
                    await lk.agent_dispatch.delete_dispatch(d.id, room.name)
                except api.TwirpError as exc:
                    if exc.code != "not_found":
                        raise
                self._seen.pop(d.id, None)
        return not in_progress

    async def _claim(self, lk: Any, room: Any) -> bool:
        from livekit import api

        if self._jitter:
            await asyncio.sleep(random.uniform(0.0, self._jitter))  # spread workers that scan at once
            if not await self._orphaned(lk, room):
                return False
        if self.before_dispatch is not None:
            await self.before_dispatch(room.name)
        if not (await lk.room.list_rooms(api.ListRoomsRequest(names=[room.name]))).rooms:
            return False  # deleted since the scan: a dispatch would create it anew
        mine = await lk.agent_dispatch.create_dispatch(api.CreateAgentDispatchRequest(
            room=room.name, agent_name=self._worker.options.agent_name, metadata=MARKER))
        self._seen[mine.id] = time.monotonic()
        self.dispatched.append(room.name)
        logger.info("room %s had no agent; dispatched one to it", room.name, extra={"room": room.name})
        return True


__all__ = ["CLAIM_TTL", "GRACE", "JITTER", "MARKER", "OrphanRecovery", "SCAN_INTERVAL", "admit", "is_recovery"]
