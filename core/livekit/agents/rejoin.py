"""Keep a job in its room when the LiveKit node its room connection goes through is lost.

In a cluster, an agent's room connection goes through its worker's node, which relays to
the node hosting the room. When that node dies, ``livekit.rtc`` first tries to resume
and reconnect on the same URL (which cannot work), and meanwhile empties the room's
participant list. A job therefore:

* never takes a connection that is not ``CONNECTED`` (reconnecting, rejoining) for an
  empty room: its ``auto_disconnect`` predicate is not asked then;
* when ``livekit.rtc`` has not reconnected within :data:`REJOIN_GRACE` seconds, or the
  room connection ended for a connection reason (signal closed, timeout, join or media
  failure; not a room deleted or the agent removed), rejoins **the same room** through
  the worker's other URLs (its ``fallback_urls``), with the job's token. The ``Room``
  object stays the same: the agent's event handlers keep working, ``ctx.agent`` is the
  new local participant, and the room emits ``"reconnected"`` once rejoined. Tracks the
  agent published must be published again in a ``"reconnected"`` handler (a fresh
  connection publishes nothing); data and text streams work at once;
* if the room is gone (its node died too: rejoining finds a new, empty room of the same
  name, with another sid) or no other node answers, the job ends with
  :attr:`JobEndKind.ROOM_LOST <livekit.agents.job_end.JobEndKind.ROOM_LOST>`, reported as
  failed, with a detail saying which. How such a room gets an agent again: docs/deployment.md.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from .job_end import JobEnd, JobEndKind

if TYPE_CHECKING:
    from .job import JobContext

logger = logging.getLogger("livekit.agents")

REJOIN_GRACE = 2.0
"""Seconds ``livekit.rtc`` gets to reconnect on its own before the job rejoins elsewhere."""

CONNECT_TIMEOUT = 10.0
"""Seconds one rejoin attempt may take."""


def _ordinary_reasons() -> set[int]:
    from livekit import rtc

    r = rtc.DisconnectReason
    return {r.CLIENT_INITIATED, r.DUPLICATE_IDENTITY, r.PARTICIPANT_REMOVED, r.ROOM_DELETED, r.ROOM_CLOSED}


def is_connection_loss(reason: Any) -> bool:
    """Whether a room ``disconnected`` reason is a lost connection (not an ordinary end)."""
    return reason not in _ordinary_reasons()


def _reason_name(reason: Any) -> str:
    from livekit import rtc

    try:
        return rtc.DisconnectReason.Name(reason)
    except (ValueError, TypeError):
        return str(reason)


def _room_sid(room: Any) -> str:
    info = getattr(room, "_info", None)  # the sid of the current connection (``Room.sid`` keeps the first)
    return getattr(info, "sid", "") or ""


class RoomKeeper:
    """Watches one job's room connection and rejoins it through another node if needed."""

    def __init__(self, ctx: JobContext, fallback_urls: tuple[str, ...]) -> None:
        self._ctx = ctx
        self._fallback = fallback_urls
        self._reconnecting = False
        self._task: asyncio.Task[None] | None = None
        self.sid = ""
        self.rejoins = 0
        self._sid_task: asyncio.Task[None] | None = None

    async def _first_sid(self) -> None:
        try:
            self.sid = await asyncio.wait_for(self._ctx.room.sid, timeout=30.0)
        except Exception:
            pass

    async def _current_sid(self, timeout: float = 5.0) -> str:
        """The sid of the room as connected now (it may arrive just after the connect)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not _room_sid(self._ctx.room) and loop.time() < deadline:
            await asyncio.sleep(0.02)
        return _room_sid(self._ctx.room)

    @property
    def steady(self) -> bool:
        """Connected, and neither reconnecting nor rejoining (a participant list to trust)."""
        from livekit import rtc

        room = self._ctx.room
        return (not self._reconnecting and self._task is None
                and room.connection_state == rtc.ConnectionState.CONN_CONNECTED)

    def attach(self) -> None:
        room = self._ctx.room
        self.sid = _room_sid(room)
        if not self.sid:
            self._sid_task = asyncio.ensure_future(self._first_sid())
        room.on("reconnecting", self._on_reconnecting)
        room.on("reconnected", self._on_reconnected)
        room.on("disconnected", self._on_disconnected)

    def _on_reconnecting(self, *_: Any) -> None:
        self._reconnecting = True
        if self._fallback and self._task is None:
            self._task = asyncio.ensure_future(self._rejoin(grace=REJOIN_GRACE))

    def _on_reconnected(self, *_: Any) -> None:
        self._reconnecting = False

    def _on_disconnected(self, reason: Any = None) -> None:
        ctx = self._ctx
        logger.debug("job %s: room disconnected (%s)", ctx.id, _reason_name(reason), extra={"job_id": ctx.id})
        if self._task is not None or ctx.shutdown_reason is not None:
            return  # our own disconnect while rejoining, or the job is ending anyway
        if reason is not None and is_connection_loss(reason):
            if self._fallback:
                self._task = asyncio.ensure_future(self._rejoin(grace=0.0))
                return
            ctx.shutdown(JobEnd(JobEndKind.ROOM_LOST, f"the connection to room {ctx.job.room.name!r} was lost "
                                                      "and the worker knows no other LiveKit URL to rejoin it"))
            return
        ctx.shutdown(JobEnd(JobEndKind.ROOM_DISCONNECTED))

    async def _rejoin(self, *, grace: float) -> None:
        from livekit import rtc

        from .presence import announce

        ctx = self._ctx
        room = ctx.room
        name = ctx.job.room.name
        extra = {"job_id": ctx.id, "room": name}
        try:
            if grace:
                deadline = asyncio.get_running_loop().time() + grace
                while self._reconnecting and asyncio.get_running_loop().time() < deadline:
                    await asyncio.sleep(0.05)
                if room.connection_state == rtc.ConnectionState.CONN_CONNECTED and not self._reconnecting:
                    return  # livekit.rtc reconnected by itself
            if ctx.shutdown_reason is not None:
                return
            lost_url = ctx._url
            logger.warning("job %s: the room connection through %s was lost; rejoining room %s through %s",
                           ctx.id, lost_url, name, ", ".join(self._fallback), extra=extra)
            try:
                await asyncio.wait_for(room.disconnect(), timeout=5.0)
            except Exception:
                pass
            errors: list[str] = []
            for url in self._fallback:
                if ctx.shutdown_reason is not None:
                    return
                try:
                    room._remote_participants.clear()  # a fresh connection lists them again
                    await asyncio.wait_for(room.connect(url, ctx._token, rtc.RoomOptions(auto_subscribe=False)),
                                           timeout=CONNECT_TIMEOUT)
                except Exception as exc:
                    errors.append(f"{url}: {type(exc).__name__}: {exc}")
                    continue
                sid = await self._current_sid()
                if self.sid and sid != self.sid:
                    await asyncio.wait_for(room.disconnect(), timeout=5.0)
                    ctx.shutdown(JobEnd(JobEndKind.ROOM_LOST, f"room {name!r} is gone: the LiveKit node hosting it "
                                                              f"was lost (rejoining through {url} found a new, "
                                                              "empty room of that name)"))
                    return
                agent_kind = rtc.ParticipantKind.PARTICIPANT_KIND_AGENT
                if not any(p.kind != agent_kind for p in room.remote_participants.values()):
                    # in a cluster the node rejoined through re-creates a lost room from Redis,
                    # same name and sid, but its participants went with the node that hosted it
                    await asyncio.wait_for(room.disconnect(), timeout=5.0)
                    ctx.shutdown(JobEnd(JobEndKind.ROOM_LOST, f"room {name!r} was lost with its participants "
                                                              f"(rejoining through {url} found nobody but "
                                                              "agents: the node hosting the room went away)"))
                    return
                self.sid = sid or self.sid
                ctx._url = url
                self.rejoins += 1
                self._reconnecting = False
                await announce(room, ctx.id)
                ctx._resubscribe()
                logger.info("job %s: rejoined room %s through %s", ctx.id, name, url, extra=extra)
                room.emit("reconnected")
                return
            ctx.shutdown(JobEnd(JobEndKind.ROOM_LOST, f"lost the connection to room {name!r} through {lost_url} "
                                                      f"and could not rejoin it: {'; '.join(errors)}"))
        finally:
            self._task = None

    async def aclose(self) -> None:
        if self._sid_task is not None:
            self._sid_task.cancel()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


__all__ = ["CONNECT_TIMEOUT", "REJOIN_GRACE", "RoomKeeper", "is_connection_loss"]
