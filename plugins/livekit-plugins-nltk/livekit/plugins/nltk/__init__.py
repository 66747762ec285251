"""NLTK tokenizers for livekit-agents: Punkt sentences and words, batch and streaming.

English works offline out of the box (trained Punkt parameters ship inside the plugin).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from livekit.agents.utils.lazy import lazy_exports

from .version import __version__

_EXPORTS = {
    "SentenceTokenizer": ".tokenizer",
    "WordTokenizer": ".tokenizer",
    "PunktDataMissingError": ".punkt",
    "load_parameters": ".punkt",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = ["__version__", *_EXPORTS]

if TYPE_CHECKING:
    from .punkt import PunktDataMissingError as PunktDataMissingError
    from .punkt import load_parameters as load_parameters
    from .tokenizer import SentenceTokenizer as SentenceTokenizer
    from .tokenizer import WordTokenizer as WordTokenizer
