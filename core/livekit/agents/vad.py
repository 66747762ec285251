"""Voice activity detection: audio frames in, start/end-of-speech events out."""

from __future__ import annotations

import asyncio
import contextlib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from enum import Enum

from livekit import rtc

from .exceptions import StreamClosedError
from .utils.streams import AsyncStream


class VADEventType(str, Enum):
    START_OF_SPEECH = "start_of_speech"
    INFERENCE_DONE = "inference_done"
    END_OF_SPEECH = "end_of_speech"

    # the framework's early names (seed README), kept as aliases
    START_SPEAKING = "start_of_speech"
    SPEAKING = "inference_done"
    END_SPEAKING = "end_of_speech"


@dataclass(slots=True)
class VADEvent:
    """One VAD observation.

    ``samples_index`` counts input samples (at the stream's input rate) up to the event;
    ``timestamp`` is the same position in seconds. ``frames`` holds the speech (with its
    prefix padding) on END_OF_SPEECH, and the speech so far on START_OF_SPEECH.
    """

    type: VADEventType
    samples_index: int
    timestamp: float
    speech_duration: float = 0.0
    silence_duration: float = 0.0
    frames: list[rtc.AudioFrame] = field(default_factory=list)
    probability: float = 0.0
    inference_duration: float = 0.0
    speaking: bool = False

    @property
    def duration(self) -> float:
        """The speech's duration (early name)."""
        return self.speech_duration

    @property
    def speech(self) -> list[rtc.AudioFrame]:
        """The speech's frames (early name)."""
        return self.frames


@dataclass(frozen=True)
class VADCapabilities:
    update_interval: float
    """Seconds between INFERENCE_DONE events."""
    sample_rates: tuple[int, ...] = (8000, 16000, 24000, 48000)
    """Input sample rates accepted (others are an error)."""
    sample_rate: int | None = None
    """The rate the detector works at: mono input at this rate is used as it is, with no
    resampling or downmixing (``None``: no preference)."""

    @property
    def frame_size_ms(self) -> int:
        """Milliseconds of audio per inference: the input frame size that wakes the
        detector once per inference (at least 10)."""
        return max(10, round(self.update_interval * 1000))


class VAD(ABC):
    """A voice activity detector; :meth:`stream` creates one detector per audio track."""

    def __init__(self, *, capabilities: VADCapabilities) -> None:
        self.capabilities = capabilities

    @abstractmethod
    def stream(self) -> VADStream:
        """A new stream with its own state."""

    def audio_stream(self, track: rtc.Track, *, capacity: int = 0) -> rtc.AudioStream:
        """The track's audio as this detector works on it: mono, at its
        :attr:`~VADCapabilities.sample_rate`, in frames of one inference
        (:attr:`~VADCapabilities.frame_size_ms`). The rtc runtime resamples and cuts the
        frames; the detector gets one frame (one Python wake-up) per inference instead of
        one per 10 ms, and does no resampling of its own."""
        caps = self.capabilities
        return rtc.AudioStream(
            track,
            sample_rate=caps.sample_rate or 48000,
            num_channels=1,
            frame_size_ms=caps.frame_size_ms,
            capacity=capacity,
        )

    def stream_track(self, track: rtc.Track) -> VADStream:
        """A new stream fed with ``track``'s audio (through :meth:`audio_stream`) until the
        track ends (then its input ends) or the stream is closed::

            async with detector.stream_track(track) as stream:
                async for event in stream:
                    ...
        """
        stream = self.stream()
        stream._feeder = asyncio.get_running_loop().create_task(_feed(self.audio_stream(track), stream))
        return stream

    async def aclose(self) -> None:
        """Release shared resources."""

    async def __aenter__(self) -> VAD:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class VADStream(AsyncStream[rtc.AudioFrame, VADEvent]):
    """Push audio frames, iterate :class:`VADEvent`."""

    _feeder: asyncio.Task[None] | None = None  # VAD.stream_track's task pushing the track's audio

    def push_frame(self, frame: rtc.AudioFrame) -> None:
        self._push(frame)

    async def aclose(self) -> None:
        feeder, self._feeder = self._feeder, None
        if feeder is not None:
            feeder.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await feeder
        await super().aclose()


async def _feed(audio: rtc.AudioStream, stream: VADStream) -> None:
    """Push ``audio`` into ``stream`` until the track ends (then end its input)."""
    push = stream.push_frame
    try:
        async for event in audio:
            push(event.frame)
        stream.end_input()
    except StreamClosedError:  # the stream was closed (not through aclose): nothing to feed
        pass
    finally:
        await audio.aclose()
