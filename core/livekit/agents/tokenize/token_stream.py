from __future__ import annotations

from collections.abc import Callable

from ..utils.streams import Flush
from .tokenizer import TokenData, TokenStream


class BufferedTokenStream(TokenStream):
    """Streaming on top of a batch tokenizer.

    The pushed text is buffered; whenever the buffer holds more than one token, every token
    but the last is complete and comes out (the last may still grow). ``flush()`` and
    ``end_input()`` release the rest. Tokens shorter than ``min_token_len`` characters are
    joined with the next one; with ``min_token_len=0`` the stream's tokens equal
    ``tokenize_fn`` over the whole text.
    """

    def __init__(
        self,
        tokenize_fn: Callable[[str], list[str]],
        *,
        min_token_len: int = 0,
        separator: str = " ",
    ) -> None:
        super().__init__()
        self._tokenize = tokenize_fn
        self._min_len = min_token_len
        self._sep = separator

    async def _run(self) -> None:
        buf = ""
        segment = 0
        pending = ""  # complete tokens held back because they are shorter than min_len
        for_output: list[str] = []

        def release(tokens: list[str], final: bool) -> None:
            nonlocal pending
            for tok in tokens:
                pending = f"{pending}{self._sep}{tok}" if pending else tok
                if len(pending) >= self._min_len:
                    for_output.append(pending)
                    pending = ""
            if final and pending:
                for_output.append(pending)
                pending = ""

        async for item in self._input():
            if isinstance(item, Flush):
                release(self._tokenize(buf) if buf.strip() else [], final=True)
                buf = ""
            else:
                buf += item
                tokens = self._tokenize(buf)
                if len(tokens) > 1:
                    # keep the unfinished last token, with the text that follows it
                    start = self._last_token_start(buf, tokens[-1])
                    release(tokens[:-1], final=False)
                    buf = buf[start:]
            for tok in for_output:
                self._emit(TokenData(tok, segment))
            if isinstance(item, Flush) and for_output:
                segment += 1
            for_output.clear()
        release(self._tokenize(buf) if buf.strip() else [], final=True)
        for tok in for_output:
            self._emit(TokenData(tok, segment))

    @staticmethod
    def _last_token_start(buf: str, last: str) -> int:
        pos = buf.rfind(last)
        if pos >= 0:
            return pos
        # the tokenizer normalised the token; find its first word instead
        head = last.split()[0] if last.split() else last
        pos = buf.rfind(head)
        return pos if pos >= 0 else len(buf) - len(last)
