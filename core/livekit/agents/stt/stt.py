from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from enum import Enum

from livekit import rtc

from ..utils.audio import AudioBuffer
from ..utils.streams import AsyncStream


class SpeechEventType(str, Enum):
    START_OF_SPEECH = "start_of_speech"
    INTERIM_TRANSCRIPT = "interim_transcript"
    FINAL_TRANSCRIPT = "final_transcript"
    END_OF_SPEECH = "end_of_speech"


@dataclass
class SpeechData:
    """One transcription hypothesis. Times are seconds from the start of the stream."""

    text: str
    language: str = ""
    start_time: float = 0.0
    end_time: float = 0.0
    confidence: float = 0.0


@dataclass
class SpeechEvent:
    type: SpeechEventType
    alternatives: list[SpeechData] = field(default_factory=list)
    request_id: str = ""

    @property
    def is_final(self) -> bool:
        return self.type == SpeechEventType.FINAL_TRANSCRIPT

    @property
    def text(self) -> str:
        """The best alternative's text, or ``""``."""
        return self.alternatives[0].text if self.alternatives else ""


@dataclass(frozen=True)
class STTCapabilities:
    streaming: bool
    """``stream()`` is implemented natively (else wrap with :class:`StreamAdapter`)."""
    interim_results: bool
    """Streams emit INTERIM_TRANSCRIPT events before the final one."""
    sample_rates: tuple[int, ...] | None = None
    """Input rates sent as they are; ``None`` means any (the plugin resamples)."""
    languages: tuple[str, ...] | None = None
    """Languages accepted; ``None`` means whatever the provider supports."""


class STT(ABC):
    """A speech-to-text provider."""

    def __init__(self, *, capabilities: STTCapabilities) -> None:
        self.capabilities = capabilities

    @abstractmethod
    async def recognize(self, buffer: AudioBuffer, *, language: str | None = None) -> SpeechEvent:
        """Transcribe a whole buffer; returns a FINAL_TRANSCRIPT event."""

    def stream(self, *, language: str | None = None) -> SpeechStream:
        """Stream frames in, transcripts out. Raises unless ``capabilities.streaming``."""
        raise NotImplementedError(
            f"{type(self).__name__} does not stream; wrap it: "
            f"livekit.agents.stt.StreamAdapter(stt=..., vad=...)"
        )

    async def aclose(self) -> None:
        """Release connections and sessions."""

    async def __aenter__(self) -> STT:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class SpeechStream(AsyncStream[rtc.AudioFrame, SpeechEvent]):
    """Push audio frames, iterate :class:`SpeechEvent`. ``flush()`` asks for the final
    transcript of what was pushed so far."""

    def push_frame(self, frame: rtc.AudioFrame) -> None:
        self._push(frame)
