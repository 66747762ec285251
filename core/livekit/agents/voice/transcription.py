"""Transcriptions as LiveKit clients read them: text streams on the ``lk.transcription``
topic, one stream per segment, sent on behalf of the participant who spoke and naming the
track the speech was on."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

from livekit import rtc

logger = logging.getLogger("livekit.agents")

TOPIC = "lk.transcription"
ATTR_TRACK_ID = "lk.transcribed_track_id"
ATTR_SEGMENT_ID = "lk.segment_id"
ATTR_FINAL = "lk.transcription_final"


def new_segment_id() -> str:
    return f"SG_{uuid.uuid4().hex[:12]}"


class TranscriptionPublisher:
    """Sends the user's final transcripts and the agent's spoken text to the room."""

    def __init__(self, room: rtc.Room) -> None:
        self._room = room

    async def user_final(self, identity: str, track_sid: str | None, text: str) -> None:
        """One final segment of the user's speech (a single text stream)."""
        attrs = {ATTR_FINAL: "true", ATTR_SEGMENT_ID: new_segment_id()}
        if track_sid:
            attrs[ATTR_TRACK_ID] = track_sid
        try:
            writer = await self._room.local_participant.stream_text(
                topic=TOPIC, attributes=attrs, sender_identity=identity
            )
            await writer.write(text)
            await writer.aclose()
        except Exception as exc:  # the room may be going away; a transcript is not worth a turn
            logger.warning("could not publish the user's transcription: %s", exc)

    def agent_segment(self, track_sid: str | None) -> AgentSegment:
        return AgentSegment(self._room, track_sid)


class AgentSegment:
    """The agent's text of one reply, written as it is played and closed as final."""

    def __init__(self, room: rtc.Room, track_sid: str | None) -> None:
        self._room = room
        self._track_sid = track_sid
        self.segment_id = new_segment_id()
        self._writer: rtc.TextStreamWriter | None = None
        self._failed = False
        self._lock = asyncio.Lock()
        self._pending: set[asyncio.Task[Any]] = set()
        self.text = ""

    def push(self, text: str) -> None:
        """Write ``text`` in the background (in order with the other pushes)."""
        self.text += text
        task = asyncio.ensure_future(self.write(text, _counted=True))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    def _attrs(self, final: bool) -> dict[str, str]:
        attrs = {ATTR_FINAL: "true" if final else "false", ATTR_SEGMENT_ID: self.segment_id}
        if self._track_sid:
            attrs[ATTR_TRACK_ID] = self._track_sid
        return attrs

    async def write(self, text: str, *, _counted: bool = False) -> None:
        if not _counted:
            self.text += text
        async with self._lock:
            if self._failed or not text:
                return
            try:
                if self._writer is None:
                    self._writer = await self._room.local_participant.stream_text(
                        topic=TOPIC, attributes=self._attrs(final=False)
                    )
                await self._writer.write(text)
            except Exception as exc:
                self._failed = True
                logger.warning("could not publish the agent's transcription: %s", exc)

    async def close(self) -> None:
        """End the segment (``lk.transcription_final`` = ``true`` on the closing trailer)."""
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
        async with self._lock:
            writer, self._writer = self._writer, None
            if writer is None or self._failed:
                return
            try:
                await writer.aclose(attributes=self._attrs(final=True))
            except Exception as exc:
                logger.warning("could not close the agent's transcription: %s", exc)
