"""No room left without its agent: a ``JT_ROOM`` worker with capacity finds rooms that have
no agent and gets them one through explicit dispatch.

livekit-server offers a ``JT_ROOM`` job once, when the room is created. A room created
while every worker was full (``max_jobs``, load), or whose agent was lost with a node,
never gets another offer. So a ``JT_ROOM`` worker that is registered and available looks,
every :data:`SCAN_INTERVAL` seconds, for rooms (``RoomService.ListRooms`` with its own key)
that are older than :data:`GRACE` seconds, have at least one participant and no agent
participant (kind ``AGENT``), and asks the server to dispatch an agent to each
(``AgentDispatchService.CreateDispatch`` with the worker's ``agent_name``, which in
livekit-server v1.13.5 also reaches automatically dispatched workers, ``agent_name=""``).
The server then offers the job to a worker of the cluster as usual.

Never two agents for one room: the dispatch itself is the claim. A worker creates a
dispatch only when the room has no dispatch of this kind (metadata :data:`MARKER`) from
the last :data:`CLAIM_TTL` seconds; after creating its own it lists them again, and if
another worker created one at the same time, the dispatch with the smaller id stays and
the other is deleted at once (before jitter of up to a second spreads the workers apart).

Opt out with ``recover_orphans=False`` (``--no-recover-orphans``), e.g. when another
component re-dispatches rooms.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
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
MARKER = "livekit-agents:recover"


def http_url(url: str) -> str:
    parts = urlsplit(url)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/"), "", ""))


class OrphanRecovery:
    """The scan loop of one worker (started by the worker for ``JT_ROOM``)."""

    def __init__(self, worker: Worker, api_key: str, api_secret: str, *, interval: float = SCAN_INTERVAL,
                 grace: float = GRACE) -> None:
        self._worker = worker
        self._key = api_key
        self._secret = api_secret
        self._interval = interval
        self._grace = grace
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

    async def scan(self, url: str) -> None:
        from livekit import api

        lk = api.LiveKitAPI(url, self._key, self._secret)
        try:
            rooms = (await lk.room.list_rooms(api.ListRoomsRequest())).rooms
            now = time.time()
            for room in rooms:
                if self._worker._full_reason() is not None:
                    return
                created = (room.creation_time_ms / 1000.0) if room.creation_time_ms else float(room.creation_time)
                if now - created < self._grace or not await self._orphaned(lk, room.name):
                    continue
                await self._claim(lk, room.name)
        finally:
            await lk.aclose()

    async def _orphaned(self, lk: Any, room: str) -> bool:
        from livekit import api
        from livekit.protocol import models

        people = (await lk.room.list_participants(api.ListParticipantsRequest(room=room))).participants
        if not people or any(p.kind == models.ParticipantInfo.AGENT for p in people):
            return False
        return not await self._recent_claims(lk, room)

    async def _recent_claims(self, lk: Any, room: str) -> list[Any]:
        dispatches = await lk.agent_dispatch.list_dispatch(room)
        now = time.monotonic()
        recent = []
        for d in dispatches:
            if d.metadata != MARKER or d.agent_name != self._worker.options.agent_name:
                continue
            first_seen = self._seen.setdefault(d.id, now)  # v1.13.5 leaves state.created_at unset
            if now - first_seen < CLAIM_TTL:
                recent.append(d)
        return recent

    async def _claim(self, lk: Any, room: str) -> None:
        from livekit import api

        await asyncio.sleep(random.uniform(0.0, 1.0))  # spread workers that scan at once
        if not await self._orphaned(lk, room):
            return
        mine = await lk.agent_dispatch.create_dispatch(api.CreateAgentDispatchRequest(
            room=room, agent_name=self._worker.options.agent_name, metadata=MARKER))
        claims = sorted(d.id for d in await self._recent_claims(lk, room))
        if claims and claims[0] != mine.id:
            await lk.agent_dispatch.delete_dispatch(mine.id, room)
            return
        self.dispatched.append(room)
        logger.info("room %s had no agent; dispatched one to it", room, extra={"room": room})


__all__ = ["CLAIM_TTL", "GRACE", "MARKER", "OrphanRecovery", "SCAN_INTERVAL"]
