"""Deepgram speech-to-text for livekit-agents: live streaming over Deepgram's websocket
(interim and final results, speech events, reconnects without losing audio) and
pre-recorded recognition over HTTP.

Names load lazily: importing this package imports neither aiohttp nor ``livekit.rtc``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from livekit.agents.utils.lazy import lazy_exports

from .version import __version__

_EXPORTS = {
    "STT": ".stt",
    "SpeechStream": ".stt",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = ["__version__", *_EXPORTS]

if TYPE_CHECKING:
    from .stt import STT, SpeechStream
