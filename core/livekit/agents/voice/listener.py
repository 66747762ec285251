"""The user's side of a voice pipeline: which participant the agent listens to, their
microphone read into one VAD stream and one STT stream, and what those streams say."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from livekit import rtc

from ..stt import STT, SpeechEvent, SpeechEventType, SpeechStream, StreamAdapter
from ..vad import VAD, VADEvent, VADStream

logger = logging.getLogger("livekit.agents")


class Listener:
    """Follows one participant's microphone. The participant is the one named, else the
    first non-agent participant; when it leaves, the next one who joins is followed.

    ``on_vad(event)``, ``on_stt(event)``, ``on_stt_error(exc)`` and ``on_link(identity or
    None, track_sid)`` are called on the event loop.
    """

    def __init__(
        self,
        room: rtc.Room,
        *,
        vad: VAD,
        stt: STT,
        sample_rate: int,
        frame_ms: int = 10,
        participant: str | None,
        on_vad: Callable[[VADEvent], None],
        on_stt: Callable[[SpeechEvent], None],
        on_stt_error: Callable[[BaseException], None],
        on_link: Callable[[str | None, str | None], None],
    ) -> None:
        self._room = room
        self._vad = vad
        self._stt = stt
        self._adapter = stt if isinstance(stt, StreamAdapter) else None
        if self._adapter is None and not stt.capabilities.streaming:
            self._adapter = StreamAdapter(stt=stt, vad=vad)
        self._rate = sample_rate
        self._frame_ms = frame_ms
        self._wanted = participant
        self._on_vad, self._on_stt, self._on_stt_error, self._on_link = on_vad, on_stt, on_stt_error, on_link
        self.identity: str | None = None
        self.track_sid: str | None = None
        self._track: rtc.Track | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._read_task: asyncio.Task[None] | None = None
        self._vad_stream: VADStream | None = None
        self._stt_stream: SpeechStream | None = None
        self._stt_task: asyncio.Task[None] | None = None
        self._vad_task: asyncio.Task[None] | None = None
        self._closed = False
        self._handlers: list[tuple[Any, Callable[..., Any]]] = []

    # --- linking -----------------------------------------------------------------------

    def start(self) -> None:
        events: tuple[tuple[Any, Callable[..., Any]], ...] = (
            ("participant_connected", self._on_participant_connected),
            ("participant_disconnected", self._on_participant_disconnected),
            ("track_published", self._on_track_published),
            ("track_subscribed", self._on_track_subscribed),
            ("track_unsubscribed", self._on_track_unsubscribed),
        )
        for name, fn in events:  # names typed Any: rtc's on() takes a Literal of event names
            self._room.on(name, fn)
            self._handlers.append((name, fn))
        self._open_streams()
        self._relink()

    def _eligible(self, p: rtc.RemoteParticipant) -> bool:
        if self._wanted is not None:
            return p.identity == self._wanted
        return p.kind != rtc.ParticipantKind.PARTICIPANT_KIND_AGENT

    def _relink(self) -> None:
        if self.identity is not None or self._closed:
            return
        for p in self._room.remote_participants.values():
            if self._eligible(p):
                self._link(p)
                return

    def _link(self, p: rtc.RemoteParticipant) -> None:
        self.identity = p.identity
        logger.info("voice agent listens to %s", p.identity, extra={"participant": p.identity})
        self._on_link(p.identity, None)
        for pub in p.track_publications.values():
            self._consider(pub, p)

    def _unlink(self) -> None:
        identity, self.identity = self.identity, None
        self._stop_reading()
        if identity is not None:
            logger.info("voice agent: %s left", identity, extra={"participant": identity})
            self._on_link(None, None)

    def _consider(self, pub: rtc.RemoteTrackPublication, p: rtc.RemoteParticipant) -> None:
        if p.identity != self.identity or pub.kind != rtc.TrackKind.KIND_AUDIO:
            return
        if pub.source not in (rtc.TrackSource.SOURCE_MICROPHONE, rtc.TrackSource.SOURCE_UNKNOWN):
            return
        if pub.track is not None:
            self._start_reading(pub.track, pub.sid)
        elif not pub.subscribed:
            pub.set_subscribed(True)

    def _on_participant_connected(self, p: rtc.RemoteParticipant) -> None:
        self._relink()

    def _on_participant_disconnected(self, p: rtc.RemoteParticipant) -> None:
        if p.identity == self.identity:
            self._unlink()
            self._relink()

    def _on_track_published(self, pub: rtc.RemoteTrackPublication, p: rtc.RemoteParticipant) -> None:
        if self.identity is None:
            self._relink()
        else:
            self._consider(pub, p)

    def _on_track_subscribed(self, track: rtc.Track, pub: rtc.RemoteTrackPublication, p: rtc.RemoteParticipant) -> None:
        self._consider(pub, p)

    def _on_track_unsubscribed(self, track: rtc.Track, pub: rtc.RemoteTrackPublication, p: rtc.RemoteParticipant) -> None:
        if track is self._track:
            self._stop_reading()

    # --- audio -------------------------------------------------------------------------

    def _start_reading(self, track: rtc.Track, sid: str) -> None:
        if self._track is track:
            return
        self._stop_reading()
        self._track, self.track_sid = track, sid
        self._on_link(self.identity, sid)
        self._read_task = self._spawn(self._read(track), "voice-read-mic")

    def _stop_reading(self) -> None:
        if self._read_task is not None:
            self._read_task.cancel()
        self._read_task, self._track, self.track_sid = None, None, None

    async def _read(self, track: rtc.Track) -> None:
        stream = rtc.AudioStream(track, sample_rate=self._rate, num_channels=1, frame_size_ms=self._frame_ms)
        try:
            async for ev in stream:
                self._push(ev.frame)
        finally:
            await stream.aclose()

    def _push(self, frame: rtc.AudioFrame) -> None:
        if self._vad_stream is not None:
            self._vad_stream.push_frame(frame)
        if self._stt_stream is not None:
            self._stt_stream.push_frame(frame)

    # --- streams -----------------------------------------------------------------------

    def _open_streams(self) -> None:
        if self._adapter is not None:
            # the adapter's VAD stream is the only one: its events drive the turns too
            self._stt_stream = self._adapter.stream(on_vad_event=self._on_vad)
        else:
            self._stt_stream = self._stt.stream()
            self._vad_stream = self._vad.stream()
            self._vad_task = self._spawn(self._consume_vad(self._vad_stream), "voice-vad")
        self._stt_task = self._spawn(self._consume_stt(self._stt_stream), "voice-stt")

    async def _consume_vad(self, stream: VADStream) -> None:
        async for ev in stream:
            self._on_vad(ev)

    async def _consume_stt(self, stream: SpeechStream) -> None:
        try:
            async for ev in stream:
                self._on_stt(ev)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # the stream is dead: report, then listen on a fresh one
            self._on_stt_error(exc)
            await stream.aclose()
            if self._closed:
                return
            if self._vad_stream is not None:  # a streaming STT: only it is replaced
                self._stt_stream = self._stt.stream()
            else:
                self._stt_stream = self._adapter.stream(on_vad_event=self._on_vad)  # type: ignore[union-attr]
            self._stt_task = self._spawn(self._consume_stt(self._stt_stream), "voice-stt")

    def _spawn(self, coro: Any, name: str) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            logger.error("voice agent: %s failed: %s", task.get_name(), exc, exc_info=exc)

    async def aclose(self) -> None:
        self._closed = True
        for name, fn in self._handlers:
            self._room.off(name, fn)
        self._handlers.clear()
        self._stop_reading()
        streams = [s for s in (self._vad_stream, self._stt_stream) if s is not None]
        for task in list(self._tasks):
            task.cancel()
        for s in streams:
            with contextlib.suppress(Exception):
                await s.aclose()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._vad_stream = self._stt_stream = None


__all__ = ["Listener", "SpeechEventType"]
