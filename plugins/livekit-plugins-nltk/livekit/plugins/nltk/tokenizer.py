"""Punkt sentence tokenizer and a regexp word tokenizer, batch and streaming."""

from __future__ import annotations

import re
from collections.abc import Iterator

from livekit.agents import tokenize
from livekit.agents.utils.streams import Flush
from nltk.tokenize import RegexpTokenizer
from nltk.tokenize.punkt import PunktSentenceTokenizer

from .punkt import language_name, load_parameters

_LAST_SPACE = re.compile(r"\s(?=\S*$)")
_SENT_END = re.compile(r"[.!?…]")
_HAS_WORD = re.compile(r"\w")
_NEVER_FINAL = re.compile(r"(?:^|[\s(\[\"'])(?:e\.g|i\.e|mr|mrs|ms|dr|prof|vs|cf|viz)\.$", re.IGNORECASE)
"""Abbreviations that never end a sentence, even before a capitalised word ("e.g. I")."""


def _spans(punkt: PunktSentenceTokenizer, text: str) -> list[tuple[int, int]]:
    """Punkt's sentence spans, with a sentence that ends in a title or "e.g."/"i.e." joined
    with the next one."""
    spans: list[tuple[int, int]] = []
    join = False
    for a, b in punkt.span_tokenize(text):
        while a < b and text[a].isspace():  # Punkt's first span starts at 0, spaces included
            a += 1
        if join:
            spans[-1] = (spans[-1][0], b)
        else:
            spans.append((a, b))
        join = _NEVER_FINAL.search(text, max(a, b - 8), b) is not None
    return spans


class SentenceTokenizer(tokenize.SentenceTokenizer):
    """Sentences by NLTK's Punkt with trained parameters (English bundled; other languages
    from installed Punkt data, see :func:`livekit.plugins.nltk.load_parameters`).

    Args:
        language: Punkt language name or ISO code (``"english"``, ``"en"``, ``"de"``, ...).
        min_sentence_len: sentences shorter than this many characters are joined with the
            next one (the same in batch and streaming), useful to give a TTS longer pieces.
    """

    def __init__(self, *, language: str = "english", min_sentence_len: int = 0) -> None:
        if min_sentence_len < 0:
            raise ValueError(f"min_sentence_len must be >= 0, got {min_sentence_len}")
        self._language = language_name(language)
        self._min_len = min_sentence_len
        self._punkt(self._language)  # a missing language fails here, not mid-stream

    @staticmethod
    def _punkt(language: str) -> PunktSentenceTokenizer:
        return _punkt_tokenizer(language)

    def tokenize(self, text: str, *, language: str | None = None) -> list[str]:
        punkt = self._punkt(language_name(language) if language else self._language)
        return list(_merge(text, iter(_spans(punkt, text)), self._min_len, final=True)[0])

    def stream(self, *, language: str | None = None) -> tokenize.TokenStream:
        punkt = self._punkt(language_name(language) if language else self._language)
        return SentenceStream(punkt, self._min_len)


_PUNKT: dict[str, PunktSentenceTokenizer] = {}


def _punkt_tokenizer(language: str) -> PunktSentenceTokenizer:
    tok = _PUNKT.get(language)
    if tok is None:
        tok = _PUNKT[language] = PunktSentenceTokenizer(load_parameters(language))
    return tok


def _merge(
    text: str, spans: Iterator[tuple[int, int]], min_len: int, *, final: bool, held: str = ""
) -> tuple[list[str], str, int]:
    """Sentences from ``spans`` of ``text``, each at least ``min_len`` characters (short ones
    are joined with what follows, keeping the text between them). Returns the sentences, the
    short text still held back (unless ``final``) and where in ``text`` the held text ends."""
    out: list[str] = []
    end = 0
    for a, b in spans:
        held = held + text[end:b] if held else text[a:b]
        end = b
        if len(held) >= min_len:
            out.append(held)
            held = ""
    if final and held:
        out.append(held)
        held = ""
    return out, held, end


def _word_after(buf: str, pos: int, cut: int) -> bool:
    """A whole whitespace-delimited word follows the token that holds ``buf[pos]``."""
    rest = buf[pos + 1 : cut]
    gap = re.search(r"\s+\S", rest)
    return gap is not None


class SentenceStream(tokenize.TokenStream):
    """Yields each sentence once the word after it is complete (Punkt needs that word to
    tell a sentence end from an abbreviation). The sentences equal :meth:`SentenceTokenizer.tokenize`
    over the whole text."""

    def __init__(self, punkt: PunktSentenceTokenizer, min_len: int) -> None:
        super().__init__()
        self._punkt = punkt
        self._min_len = min_len

    async def _run(self) -> None:
        punkt, min_len = self._punkt, self._min_len
        buf = ""
        held = ""  # complete sentences shorter than min_len, waiting for the next one
        checked = 0  # buf[:checked] holds no complete sentence but its last
        segment = 0
        async for item in self._input():
            if isinstance(item, Flush):
                sentences, held, _ = _merge(buf, iter(_spans(punkt, buf)), min_len, final=True, held=held)
                buf, checked = "", 0
                for s in sentences:
                    self._emit(tokenize.TokenData(s, segment))
                if sentences:
                    segment += 1
                continue
            m = _LAST_SPACE.search(item)  # only a new space can complete a word
            buf += item
            if m is None:
                continue
            cut = len(buf) - len(item) + m.start()
            if cut <= checked:
                continue
            if not _SENT_END.search(buf, checked, cut):
                checked = cut
                continue
            spans = _spans(punkt, buf[:cut])
            # a boundary is settled once a whole word follows it ("Really?!" may still be
            # "Really?" + "!" while nothing follows the "!")
            if len(spans) > 1 and _HAS_WORD.search(buf, spans[-1][0], spans[-1][1]):
                sentences, held, end = _merge(buf, iter(spans[:-1]), min_len, final=False, held=held)
                for s in sentences:
                    self._emit(tokenize.TokenData(s, segment))
                buf = buf[end:]
                checked = 0
            else:
                # Punkt decides at a period from the word after it: once that word is
                # complete the decision is final, otherwise look again from the period on
                last = max(buf.rfind(c, 0, cut) for c in ".!?…")
                checked = cut if _word_after(buf, last, cut) else last
        sentences, _, _ = _merge(buf, iter(_spans(punkt, buf)), min_len, final=True, held=held)
        for s in sentences:
            self._emit(tokenize.TokenData(s, segment))


_WORD = r"\w+(?:[-'’.]\w+)*"


class WordTokenizer(tokenize.WordTokenizer):
    """Words by an NLTK :class:`~nltk.tokenize.RegexpTokenizer`: letters and digits with inner
    hyphens, apostrophes and periods (``don't``, ``well-known``, ``U.S``).

    Args:
        ignore_punctuation: drop punctuation (default); otherwise each run of punctuation is a token.
    """

    def __init__(self, *, ignore_punctuation: bool = True, language: str = "english") -> None:
        pattern = _WORD if ignore_punctuation else rf"{_WORD}|[^\w\s]+"
        self._regexp = RegexpTokenizer(pattern)
        self.language = language

    def tokenize(self, text: str, *, language: str | None = None) -> list[str]:
        return self._regexp.tokenize(text)

    def stream(self, *, language: str | None = None) -> tokenize.TokenStream:
        return WordStream(self._regexp)


class WordStream(tokenize.TokenStream):
    """Yields each word once the whitespace after it arrives; equals batch tokenization."""

    def __init__(self, regexp: RegexpTokenizer) -> None:
        super().__init__()
        self._regexp = regexp

    async def _run(self) -> None:
        buf = ""
        segment = 0
        async for item in self._input():
            if isinstance(item, Flush):
                words = self._regexp.tokenize(buf)
                buf = ""
                for w in words:
                    self._emit(tokenize.TokenData(w, segment))
                if words:
                    segment += 1
                continue
            m = _LAST_SPACE.search(item)
            buf += item
            if m is None:
                continue
            cut = len(buf) - len(item) + m.start()
            for w in self._regexp.tokenize(buf[:cut]):
                self._emit(tokenize.TokenData(w, segment))
            buf = buf[cut:]
        for w in self._regexp.tokenize(buf):
            self._emit(tokenize.TokenData(w, segment))
