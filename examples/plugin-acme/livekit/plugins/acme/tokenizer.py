"""Regex sentence and word tokenizers (batch and streaming)."""

from __future__ import annotations

import re

from livekit.agents import tokenize
from livekit.agents.utils.streams import Flush

ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof sr jr st vs etc e.g i.e a.m p.m no fig approx dept inc ltd co".split()
)
"""Words that end with a period without ending the sentence (lower case, no final dot)."""

# end punctuation, optional closing quotes/brackets, whitespace, then what starts a sentence
_BOUNDARY = re.compile(r"([.!?\u2026]+[\"'\u201d\u2019)\]]*)(\s+)(?=[\"'\u201c\u2018(\[]?[A-Z0-9])")
_WORD = re.compile(r"\w+(?:['\u2019]\w+)*")
_WORD_OR_PUNCT = re.compile(r"\w+(?:['\u2019]\w+)*|[^\w\s]")


class SentenceTokenizer(tokenize.SentenceTokenizer):
    """Splits after ``.``, ``!``, ``?`` or ``…`` when the next sentence starts with a
    capital letter or a digit, except after an abbreviation (``Dr.``) or an initial
    (``J. Smith``)."""

    def __init__(self, *, abbreviations: frozenset[str] | set[str] = ABBREVIATIONS) -> None:
        self.abbreviations = frozenset(a.lower().rstrip(".") for a in abbreviations)

    def tokenize(self, text: str, *, language: str | None = None) -> list[str]:
        sentences: list[str] = []
        start = 0
        for m in _BOUNDARY.finditer(text):
            if m.group(1) == "." and self._is_abbreviation(text[start : m.start()]):
                continue
            sentence = text[start : m.end(1)].strip()
            if sentence:
                sentences.append(sentence)
            start = m.end()
        rest = text[start:].strip()
        if rest:
            sentences.append(rest)
        return sentences

    def _is_abbreviation(self, before: str) -> bool:
        words = before.split()
        if not words:
            return False
        last = words[-1].lstrip("\"'(\u201c[")
        return last.lower() in self.abbreviations or (len(last) == 1 and last.isupper())

    def stream(self, *, language: str | None = None) -> tokenize.TokenStream:
        return tokenize.BufferedTokenStream(self.tokenize)


class WordTokenizer(tokenize.WordTokenizer):
    """Words are runs of letters and digits; contractions (``don't``) stay whole.
    With ``ignore_punctuation=False`` each punctuation mark is a token of its own."""

    def __init__(self, *, ignore_punctuation: bool = True) -> None:
        self.ignore_punctuation = ignore_punctuation

    def tokenize(self, text: str, *, language: str | None = None) -> list[str]:
        pattern = _WORD if self.ignore_punctuation else _WORD_OR_PUNCT
        return pattern.findall(text)

    def stream(self, *, language: str | None = None) -> tokenize.TokenStream:
        return _WordStream(self)


class _WordStream(tokenize.TokenStream):
    """Words never span whitespace: everything before the last whitespace is final."""

    def __init__(self, tokenizer: WordTokenizer) -> None:
        super().__init__()
        self._tokenizer = tokenizer

    async def _run(self) -> None:
        buf = ""
        segment = 0
        async for item in self._input():
            if isinstance(item, Flush):
                words = self._tokenizer.tokenize(buf)
                for word in words:
                    self._emit(tokenize.TokenData(word, segment))
                buf = ""
                if words:
                    segment += 1
                continue
            buf += item
            cut = max(buf.rfind(" "), buf.rfind("\n"), buf.rfind("\t"))
            if cut >= 0:
                for word in self._tokenizer.tokenize(buf[:cut]):
                    self._emit(tokenize.TokenData(word, segment))
                buf = buf[cut:]
        for word in self._tokenizer.tokenize(buf):
            self._emit(tokenize.TokenData(word, segment))
