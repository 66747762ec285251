"""Text-to-speech: synthesize text to audio frames, or stream text in and audio out."""

from .stream_adapter import StreamAdapter, StreamAdapterWrapper
from .tts import TTS, ChunkedStream, SynthesizedAudio, SynthesizeStream, TTSCapabilities

__all__ = [
    "TTS",
    "TTSCapabilities",
    "SynthesizedAudio",
    "ChunkedStream",
    "SynthesizeStream",
    "StreamAdapter",
    "StreamAdapterWrapper",
]
