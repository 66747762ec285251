"""Named provider factories, by capability, with the plugin each came from."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from .exceptions import ProviderNotFoundError

Capability = Literal["stt", "tts", "vad", "llm", "sentence_tokenizer", "word_tokenizer"]
CAPABILITIES: tuple[Capability, ...] = (
    "stt",
    "tts",
    "vad",
    "llm",
    "sentence_tokenizer",
    "word_tokenizer",
)


@dataclass(frozen=True)
class Provider:
    """One registered implementation of a capability."""

    capability: Capability
    name: str
    factory: Callable[..., Any]
    plugin: str
    distribution: str | None = None
    version: str | None = None
    description: str = ""

    def create(self, **options: Any) -> Any:
        """Create an instance with the given options."""
        return self.factory(**options)


class Registry:
    """All providers registered by loaded plugins."""

    def __init__(self) -> None:
        self._providers: dict[tuple[Capability, str], Provider] = {}

    def add(self, provider: Provider) -> None:
        key = (provider.capability, provider.name)
        other = self._providers.get(key)
        if other is not None and other.plugin != provider.plugin:
            raise ValueError(
                f"{provider.capability} provider {provider.name!r} is already registered by "
                f"plugin {other.plugin!r}"
            )
        self._providers[key] = provider

    def remove_plugin(self, plugin: str) -> None:
        for key in [k for k, p in self._providers.items() if p.plugin == plugin]:
            del self._providers[key]

    def providers(self, capability: Capability | None = None) -> list[Provider]:
        found = [p for p in self._providers.values() if capability in (None, p.capability)]
        return sorted(found, key=lambda p: (p.capability, p.name))

    def get(self, capability: Capability, name: str) -> Provider:
        try:
            return self._providers[(capability, name)]
        except KeyError:
            names = [p.name for p in self.providers(capability)]
            have = ", ".join(names) if names else "none"
            raise ProviderNotFoundError(
                f"no {capability} provider named {name!r} is installed (installed: {have}). "
                f"Install the plugin that provides it (pip install ./plugins/livekit-plugins-"
                f"<name>) and check `agents plugins list`."
            ) from None
