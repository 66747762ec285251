"""Deepgram speech-to-text for livekit-agents: live streaming over Deepgram's websocket
(interim and final results, speech events, reconnects without losing audio) and
pre-recorded recognition over HTTP.

Names load lazily: importing this package imports neither aiohttp nor ``livekit.rtc``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .version import __version__

_LAZY: dict[str, tuple[str, str]] = {
    "STT": (".stt", "STT"),
    "SpeechStream": (".stt", "SpeechStream"),
}

__all__ = ["__version__", "STT", "SpeechStream"]


def __getattr__(name: str) -> Any:
    try:
        module_name, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'livekit.plugins.deepgram' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module_name, __name__), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:
    from .stt import STT, SpeechStream
