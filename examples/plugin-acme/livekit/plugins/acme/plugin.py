"""The entry-point module: hook implementations and the plugin API version.

The host imports this module to list the plugin, so it imports nothing heavy: each factory
imports its implementation (and, for a real provider, the SDK) only when it is called.
"""

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

    register(
        "acme",
        sentences,
        kind="sentence",
        description="Regex sentence splitter that knows common abbreviations",
    )
    register("acme", words, kind="word", description="Regex word splitter that keeps contractions whole")


@hookimpl
def register_tts(register: Any) -> None:
    def create(**options: Any) -> Any:
        from .tts import ToneTTS

        return ToneTTS(**options)

    register("acme", create, description="Tone synthesizer: one short tone per word (for tests and demos)")
