"""ElevenLabs text-to-speech for livekit-agents.

``from livekit.plugins.elevenlabs import TTS`` - names load on first use, so importing the
package stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from livekit.agents.utils.lazy import lazy_exports

from .version import __version__

_EXPORTS = {
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
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = ["__version__", *_EXPORTS]

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
