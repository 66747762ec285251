"""The capabilities a plugin can provide, each described once.

This table drives registration (which hook, which ``register`` callback), listing, typed
creation (:func:`livekit.agents.plugin_host.create` checks the factory's result against the
base class), the conformance dispatch (``agents plugins check``) and the table in
docs/plugins.md. A new capability is one entry here, a base class and a check.

Base classes and checks are named as ``"module:attribute"`` and imported only when used,
so that loading plugins and listing them stays cheap.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Literal

CapabilityName = Literal["stt", "tts", "vad", "llm", "sentence_tokenizer", "word_tokenizer"]


@dataclass(frozen=True)
class Capability:
    """One capability: ``name`` (as listed, e.g. ``"sentence_tokenizer"``), the ``hook``
    that registers it, the ``kind`` its register callback takes (``None`` for hooks
    without kinds), the ``base`` class its factories return, its conformance ``check``
    (an async function taking the implementation), and a one-line ``summary``."""

    name: CapabilityName
    hook: str
    base: str
    check: str
    summary: str
    contract: str
    kind: str | None = None
    since: tuple[int, int] = (1, 0)

    def base_class(self) -> type:
        """The base class its factories must return (imported now)."""
        base: type = _resolve(self.base)
        return base

    def check_function(self) -> Any:
        """The conformance check, ``async def check(impl) -> None`` (imported now)."""
        return _resolve(self.check)

    @property
    def base_name(self) -> str:
        module, _, attr = self.base.partition(":")
        return f"{module}.{attr}"


def _resolve(ref: str) -> Any:
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)


_CONFORMANCE = "livekit.agents.testing.conformance"

CAPABILITIES: tuple[Capability, ...] = (
    Capability(
        "stt", "register_stt", "livekit.agents.stt:STT", f"{_CONFORMANCE}:check_stt",
        "speech-to-text",
        "`recognize(frames)` returns a final transcript; streams give interim results (if declared) before finals and end after `end_input()`",
    ),
    Capability(
        "tts", "register_tts", "livekit.agents.tts:TTS", f"{_CONFORMANCE}:check_tts",
        "text-to-speech",
        "frames at the declared rate and channel count, non-silent, plausible length; the last frame of each segment `is_final`, from `synthesize()` and from streams",
    ),
    Capability(
        "vad", "register_vad", "livekit.agents.vad:VAD", f"{_CONFORMANCE}:check_vad",
        "voice activity detection",
        "one START_OF_SPEECH and one END_OF_SPEECH per utterance, near the true boundaries, the end event carrying the speech",
    ),
    Capability(
        "llm", "register_llm", "livekit.agents.llm:LLM", f"{_CONFORMANCE}:check_llm",
        "large language model (chat, tools)",
        "`chat()` streams text in more than one delta, calls a tool and answers its result, stops at once on `aclose()`",
        since=(1, 1),
    ),
    Capability(
        "sentence_tokenizer", "register_tokenizers", "livekit.agents.tokenize:SentenceTokenizer",
        f"{_CONFORMANCE}:check_sentence_tokenizer", "sentence tokenizer",
        "batch keeps every word; streaming the text in small pieces gives the same sentences",
        kind="sentence",
    ),
    Capability(
        "word_tokenizer", "register_tokenizers", "livekit.agents.tokenize:WordTokenizer",
        f"{_CONFORMANCE}:check_word_tokenizer", "word tokenizer",
        "the text's words in order; streaming gives the same words",
        kind="word",
    ),
)
BY_NAME: dict[str, Capability] = {c.name: c for c in CAPABILITIES}
NAMES: tuple[CapabilityName, ...] = tuple(c.name for c in CAPABILITIES)
HOOKS: tuple[str, ...] = tuple(dict.fromkeys(c.hook for c in CAPABILITIES))


def get(name: str) -> Capability:
    """The capability called ``name``; ``ValueError`` naming the known ones otherwise."""
    try:
        return BY_NAME[name]
    except KeyError:
        raise ValueError(f"unknown capability {name!r}; one of {', '.join(NAMES)}") from None


def for_hook(hook: str) -> list[Capability]:
    """The capabilities registered through ``hook`` (several when it takes a ``kind``)."""
    return [c for c in CAPABILITIES if c.hook == hook]


def markdown_table() -> str:
    """The capability table of docs/plugins.md (a test keeps the docs equal to it)."""
    rows = ["| capability | hook | base class | contract in short |", "|---|---|---|---|"]
    for c in CAPABILITIES:
        hook = f"`{c.hook}`" + (f' (`kind="{c.kind}"`)' if c.kind else "")
        rows.append(f"| `{c.name}` | {hook} | `{c.base_name}` | {c.contract} |")
    return "\n".join(rows)
