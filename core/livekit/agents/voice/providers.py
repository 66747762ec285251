"""Provider names to instances, through the plugin registry."""

from __future__ import annotations

import re
from typing import Any

from ..tokenize import BufferedTokenStream, SentenceTokenizer, TokenStream

_BASES = {
    "vad": ("..vad", "VAD"),
    "stt": ("..stt", "STT"),
    "tts": ("..tts", "TTS"),
    "llm": ("..llm", "LLM"),
    "sentence_tokenizer": ("..tokenize", "SentenceTokenizer"),
}


def resolve(capability: str, value: Any, owned: list[Any]) -> Any:
    """``value`` if it is an instance, else the provider of that name (kept in ``owned``
    so the caller closes it). A missing sentence tokenizer is ``nltk``'s if installed,
    else :class:`BasicSentenceTokenizer`."""
    import importlib

    module, name = _BASES[capability]
    base = getattr(importlib.import_module(module, __package__), name)
    if value is None and capability == "sentence_tokenizer":
        from ..exceptions import ProviderNotFoundError
        from ..plugin_host import create

        try:
            return create("sentence_tokenizer", "nltk")
        except ProviderNotFoundError:
            return BasicSentenceTokenizer()
    if isinstance(value, base):
        return value
    if isinstance(value, str):
        from ..plugin_host import create

        instance = create(capability, value)  # type: ignore[arg-type]
        if hasattr(instance, "aclose"):
            owned.append(instance)
        return instance
    raise TypeError(
        f"{capability} must be a {base.__module__}.{base.__name__} or a provider name "
        f"(see `agents plugins list`), got {type(value).__name__}"
    )


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


class BasicSentenceTokenizer(SentenceTokenizer):
    """Splits after ``.``, ``!`` and ``?`` followed by a space (no abbreviation list):
    the fallback when no tokenizer plugin is installed."""

    def tokenize(self, text: str, *, language: str | None = None) -> list[str]:
        return [s for s in (p.strip() for p in _SENTENCE_END.split(text)) if s]

    def stream(self, *, language: str | None = None) -> TokenStream:
        return BufferedTokenStream(self.tokenize, min_token_len=10)
