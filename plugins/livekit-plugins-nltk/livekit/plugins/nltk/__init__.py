"""NLTK tokenizers for livekit-agents: Punkt sentences and words, batch and streaming.

English works offline out of the box (trained Punkt parameters ship inside the plugin).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .version import __version__

_LAZY = {
    "SentenceTokenizer": (".tokenizer", "SentenceTokenizer"),
    "WordTokenizer": (".tokenizer", "WordTokenizer"),
    "PunktDataMissingError": (".punkt", "PunktDataMissingError"),
    "load_parameters": (".punkt", "load_parameters"),
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    try:
        module_name, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module_name, __name__), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:
    from .punkt import PunktDataMissingError as PunktDataMissingError
    from .punkt import load_parameters as load_parameters
    from .tokenizer import SentenceTokenizer as SentenceTokenizer
    from .tokenizer import WordTokenizer as WordTokenizer
