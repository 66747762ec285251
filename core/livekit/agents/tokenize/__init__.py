"""Text tokenizers: sentences and words, batch and streaming."""

from .token_stream import BufferedTokenStream
from .tokenizer import (
    SentenceStream,
    SentenceTokenizer,
    TokenData,
    TokenStream,
    WordStream,
    WordTokenizer,
)

__all__ = [
    "SentenceTokenizer",
    "WordTokenizer",
    "TokenStream",
    "SentenceStream",
    "WordStream",
    "TokenData",
    "BufferedTokenStream",
]
