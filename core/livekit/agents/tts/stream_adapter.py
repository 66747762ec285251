from __future__ import annotations

import asyncio

from ..tokenize import SentenceTokenizer
from ..utils.streams import Flush
from .tts import TTS, ChunkedStream, SynthesizedAudio, SynthesizeStream, TTSCapabilities


class StreamAdapter(TTS):
    """Makes a non-streaming TTS stream: a sentence tokenizer cuts the pushed text into
    sentences and each is synthesized as soon as it is complete."""

    def __init__(self, *, tts: TTS, sentence_tokenizer: SentenceTokenizer) -> None:
        super().__init__(
            capabilities=TTSCapabilities(
                streaming=True, sample_rate=tts.sample_rate, num_channels=tts.num_channels
            )
        )
        self.wrapped = tts
        self.sentence_tokenizer = sentence_tokenizer

    def synthesize(self, text: str) -> ChunkedStream:
        return self.wrapped.synthesize(text)

    def stream(self) -> SynthesizeStream:
        return StreamAdapterWrapper(self.wrapped, self.sentence_tokenizer)


class StreamAdapterWrapper(SynthesizeStream):
    def __init__(self, tts: TTS, tokenizer: SentenceTokenizer) -> None:
        super().__init__()
        self._tts, self._tokenizer = tts, tokenizer

    async def _run(self) -> None:
        sentences = self._tokenizer.stream()

        async def forward() -> None:
            async for item in self._input():
                if isinstance(item, Flush):
                    sentences.flush()
                else:
                    sentences.push_text(item)
            sentences.end_input()

        forwarding = asyncio.create_task(forward())
        try:
            async for token in sentences:
                last: SynthesizedAudio | None = None
                async with self._tts.synthesize(token.token) as chunks:
                    async for audio in chunks:
                        if last is not None:
                            self._emit(last)
                        last = SynthesizedAudio(audio.frame, token.token, False, token.segment_id)
                if last is not None:
                    last.is_final = True
                    self._emit(last)
            await forwarding
        finally:
            forwarding.cancel()
            await sentences.aclose()
