"""Google Cloud Speech-to-Text and Text-to-Speech for livekit-agents.

``from livekit.plugins.google import STT, TTS`` - names load on first use, so importing the
package does not import grpc or the Google clients.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from livekit.agents.utils.lazy import lazy_exports

from .version import __version__

_EXPORTS = {
    "STT": ".stt",
    "SpeechStream": ".stt",
    "TTS": ".tts",
    "ChunkedStream": ".tts",
    "GoogleCredentialsError": "._common",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = ["__version__", *_EXPORTS]

if TYPE_CHECKING:
    from ._common import GoogleCredentialsError
    from .stt import STT, SpeechStream
    from .tts import TTS, ChunkedStream
