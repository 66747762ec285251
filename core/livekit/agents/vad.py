"""Voice activity detection: audio frames in, start/end-of-speech events out."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from enum import Enum

from livekit import rtc

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


class VAD(ABC):
    """A voice activity detector; :meth:`stream` creates one detector per audio track."""

    def __init__(self, *, capabilities: VADCapabilities) -> None:
        self.capabilities = capabilities

    @abstractmethod
    def stream(self) -> VADStream:
        """A new stream with its own state."""

    async def aclose(self) -> None:
        """Release shared resources."""

    async def __aenter__(self) -> VAD:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class VADStream(AsyncStream[rtc.AudioFrame, VADEvent]):
    """Push audio frames, iterate :class:`VADEvent`."""

    def push_frame(self, frame: rtc.AudioFrame) -> None:
        self._push(frame)
