"""OpenAI speech-to-text and text-to-speech for livekit-agents.

``STT`` transcribes buffered speech with the audio transcription endpoint (Whisper);
stream it through ``livekit.agents.stt.StreamAdapter(stt=STT(), vad=...)``. ``TTS`` speaks
with the speech endpoint and yields 24 kHz frames as the audio arrives.

``WhisperAPITranscriber`` is the framework's early name of :class:`STT` (kept as an alias).
Names load lazily: importing this package does not import the ``openai`` SDK.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .version import __version__

_LAZY: dict[str, tuple[str, str]] = {
    "STT": (".stt", "STT"),
    "WhisperAPITranscriber": (".stt", "STT"),
    "TTS": (".tts", "TTS"),
    "ChunkedStream": (".tts", "ChunkedStream"),
}

__all__ = ["__version__", "STT", "TTS", "WhisperAPITranscriber", "ChunkedStream"]


def __getattr__(name: str) -> Any:
    try:
        module_name, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'livekit.plugins.openai' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module_name, __name__), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:
    from .stt import STT
    from .stt import STT as WhisperAPITranscriber
    from .tts import TTS, ChunkedStream
