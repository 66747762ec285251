"""ElevenLabs text-to-speech for livekit-agents.

``from livekit.plugins.elevenlabs import TTS`` - names load on first use, so importing the
package stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .version import __version__

_LAZY = {
    "TTS": ".tts",
    "ChunkedStream": ".tts",
    "SynthesizeStream": ".tts",
    "VoiceSettings": ".tts",
    "Voice": ".tts",
    "Alignment": ".tts",
    "ElevenLabsAudio": ".tts",
    "DEFAULT_VOICE_ID": ".tts",
    "DEFAULT_MODEL": ".tts",
}

__all__ = [
    "__version__",
    "TTS",
    "ChunkedStream",
    "SynthesizeStream",
    "VoiceSettings",
    "Voice",
    "Alignment",
    "ElevenLabsAudio",
    "DEFAULT_VOICE_ID",
    "DEFAULT_MODEL",
]


def __getattr__(name: str) -> Any:
    try:
        module = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'livekit.plugins.elevenlabs' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:
    from .tts import (
        DEFAULT_MODEL,
        DEFAULT_VOICE_ID,
        TTS,
        Alignment,
        ChunkedStream,
        ElevenLabsAudio,
        SynthesizeStream,
        Voice,
        VoiceSettings,
    )
