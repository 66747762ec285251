"""livekit-plugins-acme: an example third-party plugin for livekit-agents.

Provides a regex sentence tokenizer and word tokenizer (provider name ``acme``) and a tone
TTS that "speaks" each word as a short tone (provider name ``acme``). The classes load on
first use (PEP 562), so ``import livekit.plugins.acme`` stays cheap::

    from livekit.plugins.acme import SentenceTokenizer, WordTokenizer, TTS
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .version import __version__

_LAZY = {
    "SentenceTokenizer": (".tokenizer", "SentenceTokenizer"),
    "WordTokenizer": (".tokenizer", "WordTokenizer"),
    "TTS": (".tts", "ToneTTS"),
    "ToneTTS": (".tts", "ToneTTS"),
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    try:
        module_name, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'livekit.plugins.acme' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module_name, __name__), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:
    from .tokenizer import SentenceTokenizer as SentenceTokenizer
    from .tokenizer import WordTokenizer as WordTokenizer
    from .tts import ToneTTS as ToneTTS

    TTS = ToneTTS
