"""Google Cloud Speech-to-Text and Text-to-Speech for livekit-agents.

``from livekit.plugins.google import STT, TTS`` - names load on first use, so importing the
package does not import grpc or the Google clients.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .version import __version__

_LAZY = {
    "STT": ".stt",
    "SpeechStream": ".stt",
    "TTS": ".tts",
    "ChunkedStream": ".tts",
    "GoogleCredentialsError": "._common",
}

__all__ = [
    "__version__",
    "STT",
    "SpeechStream",
    "TTS",
    "ChunkedStream",
    "GoogleCredentialsError",
]


def __getattr__(name: str) -> Any:
    try:
        module = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'livekit.plugins.google' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:
    from ._common import GoogleCredentialsError
    from .stt import STT, SpeechStream
    from .tts import TTS, ChunkedStream
