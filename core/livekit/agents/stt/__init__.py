"""Speech-to-text: recognize a buffer, or stream frames in and transcripts out."""

from .stream_adapter import StreamAdapter, StreamAdapterWrapper
from .stt import (
    STT,
    SpeechData,
    SpeechEvent,
    SpeechEventType,
    SpeechStream,
    STTCapabilities,
)

__all__ = [
    "STT",
    "STTCapabilities",
    "SpeechData",
    "SpeechEvent",
    "SpeechEventType",
    "SpeechStream",
    "StreamAdapter",
    "StreamAdapterWrapper",
]
