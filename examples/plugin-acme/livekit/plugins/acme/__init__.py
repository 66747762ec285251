"""livekit-plugins-acme: an example third-party plugin for livekit-agents.

Provides a regex sentence tokenizer and word tokenizer (provider name ``acme``) and a tone
TTS that "speaks" each word as a short tone (provider name ``acme``). The classes load on
first use (PEP 562), so ``import livekit.plugins.acme`` stays cheap::

    from livekit.plugins.acme import SentenceTokenizer, WordTokenizer, TTS
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from livekit.agents.utils.lazy import lazy_exports

from .version import __version__

_EXPORTS = {
    "SentenceTokenizer": ".tokenizer",
    "WordTokenizer": ".tokenizer",
    "TTS": ".tts:ToneTTS",
    "ToneTTS": ".tts",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = ["__version__", *_EXPORTS]

if TYPE_CHECKING:
    from .tokenizer import SentenceTokenizer as SentenceTokenizer
    from .tokenizer import WordTokenizer as WordTokenizer
    from .tts import ToneTTS as ToneTTS

    TTS = ToneTTS
