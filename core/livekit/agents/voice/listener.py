"""The user's side of a voice pipeline: which participant the agent listens to, their
microphone read into one VAD stream and one STT stream, and what those streams say."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from livekit import rtc

from ..stt import STT, SpeechEvent, SpeechEventType, SpeechStream, StreamAdapter
from ..vad import VAD, VADEvent, VADEventType, VADStream

logger = logging.getLogger("livekit.agents")

REQUEST = "voice-stt-request"
RECENT_SECONDS = 3
"""Audio kept between utterances, so an early STT request has the speech from its start
(the VAD's START_OF_SPEECH event carries its padded beginning up to the event)."""


class Listener:
    """Follows one participant's microphone. The participant is the one named, else the
    first non-agent participant; when it leaves, the next one who joins is followed.

    The microphone goes into one VAD stream. A streaming STT gets the audio too; a
    non-streaming one (or a :class:`~livekit.agents.stt.StreamAdapter`, whose VAD is then
    the one used) is asked for each utterance the VAD cuts, when it ends.

    ``on_vad(event)``, ``on_stt(event)``, ``on_stt_error(exc)`` and ``on_link(identity or
    None, track_sid)`` are called on the event loop. With ``preemptive_after`` (seconds),
    a non-streaming STT is asked as soon as the user has been silent that long, before the
    VAD ends the utterance, and ``on_preemptive(text, speech_end)`` gets the transcript;
    ``on_preemptive(None, 0.0)`` says it is stale (the user spoke again). If the utterance
    then ends with no more speech, that transcript is its final one (no second request).
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
        on_preemptive: Callable[[str | None, float], None] | None = None,
        preemptive_after: float | None = None,
        max_preemptive: int = 3,
    ) -> None:
        self._room = room
        self._recognizer: STT | None  # non-streaming: asked per utterance
        if isinstance(stt, StreamAdapter):
            self._recognizer, self._vad = stt.wrapped, stt.vad
        else:
            self._recognizer = None if stt.capabilities.streaming else stt
            self._vad = vad
        self._stt = stt
        self._rate = sample_rate
        self._frame_ms = frame_ms
        self._wanted = participant
        self._on_vad, self._on_stt, self._on_stt_error, self._on_link = on_vad, on_stt, on_stt_error, on_link
        self._on_preemptive = on_preemptive
        self._preemptive_after = preemptive_after if on_preemptive is not None else None
        self._max_preemptive = max_preemptive
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
        # the utterance being spoken (non-streaming STT): its audio, for an early request
        self._recent: deque[tuple[int, rtc.AudioFrame]] = deque()  # (first sample index, frame)
        self._pushed = 0  # samples pushed to the VAD
        self._utterance: list[rtc.AudioFrame] | None = None
        self._preempt: asyncio.Task[SpeechEvent] | None = None
        self._preempts = 0
        self._last_result: asyncio.Task[None] | None = None

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
        elif self._preemptive_after is not None:
            # keep the audio an early STT request needs (references, no copies)
            if self._utterance is not None:
                self._utterance.append(frame)
            else:
                recent = self._recent
                recent.append((self._pushed, frame))
                while recent and recent[0][0] < self._pushed - RECENT_SECONDS * self._rate:
                    recent.popleft()
        self._pushed += frame.samples_per_channel

    # --- streams -----------------------------------------------------------------------

    def _open_streams(self) -> None:
        self._vad_stream = self._vad.stream()
        self._vad_task = self._spawn(self._consume_vad(self._vad_stream), "voice-vad")
        if self._recognizer is None:
            self._stt_stream = self._stt.stream()
            self._stt_task = self._spawn(self._consume_stt(self._stt_stream), "voice-stt")

    async def _consume_vad(self, stream: VADStream) -> None:
        async for ev in stream:
            self._on_vad(ev)
            if self._recognizer is not None:
                self._cut(ev)

    # --- a non-streaming STT: one request per utterance (early when the user is silent) --

    def _cut(self, ev: VADEvent) -> None:
        if ev.type == VADEventType.START_OF_SPEECH:
            self._drop_preempt()
            self._preempts = 0
            if self._preemptive_after is not None:
                # the VAD's padded speech so far, then what was pushed after it
                self._utterance = list(ev.frames) + _after(self._recent, ev.samples_index)
                self._recent.clear()
        elif ev.type == VADEventType.INFERENCE_DONE:
            if not ev.speaking or self._preemptive_after is None or self._utterance is None:
                return
            if self._preempt is not None:
                if ev.silence_duration == 0.0:  # the user speaks again: that answer is stale
                    self._drop_preempt()
                    assert self._on_preemptive is not None
                    self._on_preemptive(None, 0.0)
            elif ev.silence_duration >= self._preemptive_after and self._preempts < self._max_preemptive:
                self._preempts += 1
                speech_end = time.monotonic() - ev.silence_duration
                self._preempt = self._spawn(self._early(list(self._utterance), speech_end), REQUEST)
        elif ev.type == VADEventType.END_OF_SPEECH:
            early, self._preempt = self._preempt, None
            self._utterance = None
            if early is None and not ev.frames:
                self._on_stt(SpeechEvent(SpeechEventType.END_OF_SPEECH))
                return
            job = early if early is not None else self._spawn(self._recognize(ev.frames), REQUEST)
            again = ev.frames if early is not None else None
            self._last_result = self._spawn(self._deliver(job, self._last_result, again), "voice-stt-result")

    async def _recognize(self, frames: list[rtc.AudioFrame]) -> SpeechEvent:
        assert self._recognizer is not None
        return await self._recognizer.recognize(frames)

    async def _early(self, frames: list[rtc.AudioFrame], speech_end: float) -> SpeechEvent:
        result = await self._recognize(frames)
        if self._on_preemptive is not None and self._preempt is asyncio.current_task():
            self._on_preemptive(result.text, speech_end)
        return result

    def _drop_preempt(self) -> None:
        if self._preempt is not None:
            self._preempt.cancel()
            self._preempt = None

    async def _deliver(
        self, job: asyncio.Task[SpeechEvent], before: asyncio.Task[None] | None, again: list[rtc.AudioFrame] | None
    ) -> None:
        """The utterance's transcript (or the STT's error), after the one before it. An
        early request that heard nothing is asked ``again`` with the whole utterance (the
        STT may hear speech the VAD took for silence)."""
        if before is not None:
            await asyncio.gather(before, return_exceptions=True)
        try:
            result = await job
            if again and not result.text:
                logger.debug("voice agent: the early transcript was empty; asking the STT with the whole utterance")
                result = await self._recognize(again)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._on_stt_error(exc)
            return
        if result.text:
            self._on_stt(result)
        self._on_stt(SpeechEvent(SpeechEventType.END_OF_SPEECH))

    # --- a streaming STT ---------------------------------------------------------------

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
            self._stt_stream = self._stt.stream()
            self._stt_task = self._spawn(self._consume_stt(self._stt_stream), "voice-stt")

    def _spawn(self, coro: Any, name: str) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.get_name() == REQUEST:
            return  # an STT request: its outcome goes through _deliver (or it was dropped)
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


def _after(recent: deque[tuple[int, rtc.AudioFrame]], index: int) -> list[rtc.AudioFrame]:
    """The audio of ``recent`` from sample ``index`` on (a frame across it is cut)."""
    out: list[rtc.AudioFrame] = []
    for first, frame in recent:
        n = frame.samples_per_channel
        if first + n <= index:
            continue
        if first < index:
            ch = frame.num_channels
            data = frame.data[(index - first) * ch :]
            frame = rtc.AudioFrame(data.tobytes(), frame.sample_rate, ch, len(data) // ch)
        out.append(frame)
    return out


__all__ = ["Listener", "SpeechEventType"]
