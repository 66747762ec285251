from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from ..utils.streams import AsyncStream


@dataclass
class TokenData:
    """A sentence or word. ``segment_id`` counts ``flush()`` calls on the stream."""

    token: str
    segment_id: int = 0

    @property
    def text(self) -> str:
        return self.token


class TokenStream(AsyncStream[str, TokenData]):
    """Push text in pieces, iterate tokens as soon as each is complete. ``flush()`` ends
    a segment: what is buffered comes out without waiting for more text."""

    def push_text(self, text: str) -> None:
        if not isinstance(text, str):
            raise TypeError(f"push_text() takes str, got {type(text).__name__}")
        self._push(text)


SentenceStream = TokenStream
WordStream = TokenStream


class SentenceTokenizer(ABC):
    """Splits text into sentences."""

    @abstractmethod
    def tokenize(self, text: str, *, language: str | None = None) -> list[str]:
        """The sentences of ``text``."""

    @abstractmethod
    def stream(self, *, language: str | None = None) -> TokenStream:
        """A stream that yields sentences as text is pushed."""


class WordTokenizer(ABC):
    """Splits text into words."""

    @abstractmethod
    def tokenize(self, text: str, *, language: str | None = None) -> list[str]:
        """The words of ``text``."""

    @abstractmethod
    def stream(self, *, language: str | None = None) -> TokenStream:
        """A stream that yields words as text is pushed."""
