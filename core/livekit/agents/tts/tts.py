from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from livekit import rtc

from ..utils.streams import AsyncStream


@dataclass
class SynthesizedAudio:
    """A frame of synthesized speech. ``is_final`` marks the last frame of a segment
    (a ``synthesize()`` call, or the text up to a ``flush()`` of a stream)."""

    frame: rtc.AudioFrame
    text: str = ""
    is_final: bool = False
    segment_id: int = 0

    @property
    def data(self) -> rtc.AudioFrame:
        """The frame (early name)."""
        return self.frame


@dataclass(frozen=True)
class TTSCapabilities:
    streaming: bool
    """``stream()`` is implemented natively (else wrap with :class:`StreamAdapter`)."""
    sample_rate: int
    num_channels: int = 1


class TTS(ABC):
    """A text-to-speech provider. Audio comes out at ``capabilities.sample_rate``."""

    def __init__(self, *, capabilities: TTSCapabilities) -> None:
        self.capabilities = capabilities

    @property
    def sample_rate(self) -> int:
        return self.capabilities.sample_rate

    @property
    def num_channels(self) -> int:
        return self.capabilities.num_channels

    @abstractmethod
    def synthesize(self, text: str) -> ChunkedStream:
        """Speak ``text``; iterate the result for frames as they are produced."""

    def stream(self) -> SynthesizeStream:
        """Stream text in, audio out. Raises unless ``capabilities.streaming``."""
        raise NotImplementedError(
            f"{type(self).__name__} does not stream; wrap it: "
            f"livekit.agents.tts.StreamAdapter(tts=..., sentence_tokenizer=...)"
        )

    async def aclose(self) -> None:
        """Release connections and sessions."""

    async def __aenter__(self) -> TTS:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class ChunkedStream(AsyncStream[None, SynthesizedAudio]):
    """The audio of one ``synthesize()`` call, frame by frame as it arrives."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text
        self.end_input()

    async def collect(self) -> rtc.AudioFrame:
        """Wait for all the audio and return it as one frame."""
        from ..utils.audio import merge_frames

        frames = [a.frame async for a in self]
        return merge_frames(frames)


class SynthesizeStream(AsyncStream[str, SynthesizedAudio]):
    """Push text (tokens, as an LLM produces them), iterate audio. ``flush()`` speaks
    what was pushed so far without waiting for more text."""

    def push_text(self, text: str) -> None:
        if not isinstance(text, str):
            raise TypeError(f"push_text() takes str, got {type(text).__name__}")
        self._push(text)
