"""The agent's voice: an audio track of its own, fed frame by frame, that knows how much
of each sentence the listener has heard."""

from __future__ import annotations

import logging
import time

from livekit import rtc

from ..utils.audio import Resampler, to_array

logger = logging.getLogger("livekit.agents")


SILENCE_PEAK = 128
"""Samples at most this loud (-48 dBFS in 16-bit PCM) are silence."""


def is_silent(frame: rtc.AudioFrame) -> bool:
    """No sample of ``frame`` is louder than :data:`SILENCE_PEAK`."""
    samples = to_array(frame)
    return not samples.size or (int(samples.max()) <= SILENCE_PEAK and int(samples.min()) >= -SILENCE_PEAK)


class AudioOutput:
    """A published ``rtc.AudioSource`` at ``sample_rate`` (frames of other rates are
    resampled). :meth:`clear` drops the queued audio at once (an interruption)."""

    TRACK_NAME = "agent-voice"

    def __init__(self, room: rtc.Room, sample_rate: int, num_channels: int = 1) -> None:
        self._room = room
        self.sample_rate = sample_rate
        self.num_channels = num_channels
        self.source = rtc.AudioSource(sample_rate, num_channels)
        self.track = rtc.LocalAudioTrack.create_audio_track(self.TRACK_NAME, self.source)
        self.publication: rtc.LocalTrackPublication | None = None
        self._resamplers: dict[int, Resampler] = {}
        self.pushed_samples = 0
        """Samples captured since the last :meth:`reset`."""

    async def publish(self) -> None:
        opts = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
        self.publication = await self._room.local_participant.publish_track(self.track, opts)

    @property
    def track_sid(self) -> str | None:
        return self.publication.sid if self.publication is not None else None

    def reset(self) -> None:
        """Start counting for a new reply."""
        self.pushed_samples = 0

    def _convert(self, frame: rtc.AudioFrame) -> list[rtc.AudioFrame]:
        if frame.sample_rate == self.sample_rate:
            return [frame]
        rs = self._resamplers.get(frame.sample_rate)
        if rs is None:
            rs = self._resamplers[frame.sample_rate] = Resampler(frame.sample_rate, self.sample_rate, self.num_channels)
        return rs.push(frame)

    async def capture(self, frame: rtc.AudioFrame) -> int:
        """Queue ``frame`` (waits while the source's queue is full); returns the samples queued."""
        n = 0
        for f in self._convert(frame):
            await self.source.capture_frame(f)
            n += f.samples_per_channel
        self.pushed_samples += n
        return n

    @property
    def played_samples(self) -> int:
        """Samples of this reply that have left the queue (played to the room)."""
        queued = int(self.source.queued_duration * self.sample_rate)
        return max(0, self.pushed_samples - queued)

    def clear(self) -> int:
        """Drop everything queued; returns the samples played until now."""
        played = self.played_samples
        self.source.clear_queue()
        self.pushed_samples = played
        return played

    async def wait_for_playout(self) -> None:
        await self.source.wait_for_playout()

    async def aclose(self) -> None:
        self.source.clear_queue()
        try:
            if self.publication is not None and self._room.isconnected():
                await self._room.local_participant.unpublish_track(self.publication.sid)
        except Exception as exc:
            logger.debug("unpublishing the agent's track failed: %s", exc)
        self.publication = None
        await self.source.aclose()


class PlayedText:
    """Maps played samples to text: the sentences played whole, plus the share of the
    words of the sentence being played that its audio so far covers."""

    def __init__(self) -> None:
        self.sentences: list[tuple[str, int]] = []  # text, samples queued for it
        self.started_at: float | None = None

    def add_sentence(self, text: str) -> None:
        self.sentences.append((text, 0))

    def add_samples(self, index: int, n: int) -> None:
        """``n`` samples of sentence ``index`` were queued."""
        if self.started_at is None:
            self.started_at = time.monotonic()
        text, samples = self.sentences[index]
        self.sentences[index] = (text, samples + n)

    @property
    def full_text(self) -> str:
        return " ".join(t.strip() for t, _ in self.sentences if t.strip())

    def played(self, played_samples: int) -> str:
        out: list[str] = []
        left = played_samples
        for text, samples in self.sentences:
            if samples <= 0:
                break
            if left >= samples:
                out.append(text.strip())
                left -= samples
                continue
            words = text.split()
            k = int(len(words) * left / samples)
            if k:
                out.append(" ".join(words[:k]))
            break
        return " ".join(w for w in out if w)
