"""OpenAI speech-to-text, text-to-speech and chat completions (LLM) for livekit-agents.

``STT`` transcribes buffered speech with the audio transcription endpoint (Whisper);
stream it through ``livekit.agents.stt.StreamAdapter(stt=STT(), vad=...)``. ``TTS`` speaks
with the speech endpoint and yields 24 kHz frames as the audio arrives. ``LLM`` streams
Chat Completions (any OpenAI-compatible server through ``base_url``), with function tools.

``WhisperAPITranscriber`` is the framework's early name of :class:`STT` (kept as an alias).
Names load lazily: importing this package does not import the ``openai`` SDK.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from livekit.agents.utils.lazy import lazy_exports

from .version import __version__

_EXPORTS = {
    "STT": ".stt",
    "WhisperAPITranscriber": ".stt:STT",
    "TTS": ".tts",
    "ChunkedStream": ".tts",
    "LLM": ".llm",
    "LLMStream": ".llm",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = ["__version__", *_EXPORTS]

if TYPE_CHECKING:
    from .llm import LLM, LLMStream
    from .stt import STT
    from .stt import STT as WhisperAPITranscriber
    from .tts import TTS, ChunkedStream
