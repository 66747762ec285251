"""Hook implementations of livekit-plugins-nltk (imports nothing heavy)."""

from __future__ import annotations

from typing import Any

from livekit.agents import hookimpl

PLUGIN_API = (1, 0)


@hookimpl
def register_tokenizers(register: Any) -> None:
    def sentences(**options: Any) -> Any:
        from .tokenizer import SentenceTokenizer

        return SentenceTokenizer(**options)

    def words(**options: Any) -> Any:
        from .tokenizer import WordTokenizer

        return WordTokenizer(**options)

    register("nltk", sentences, kind="sentence", description="NLTK Punkt sentences (trained English bundled)")
    register("nltk", words, kind="word", description="NLTK regexp words")
