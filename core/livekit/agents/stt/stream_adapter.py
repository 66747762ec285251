from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from ..utils.streams import Flush
from ..vad import VAD, VADEvent, VADEventType
from .stt import STT, SpeechEvent, SpeechEventType, SpeechStream, STTCapabilities


class StreamAdapter(STT):
    """Makes a non-streaming STT stream: a VAD cuts the audio into utterances and each
    utterance is recognized when it ends."""

    def __init__(self, *, stt: STT, vad: VAD) -> None:
        super().__init__(capabilities=STTCapabilities(streaming=True, interim_results=False))
        self.wrapped = stt
        self.vad = vad

    async def recognize(self, buffer: Any, *, language: str | None = None) -> Any:
        return await self.wrapped.recognize(buffer, language=language)

    def stream(
        self, *, language: str | None = None, on_vad_event: Callable[[VADEvent], None] | None = None
    ) -> SpeechStream:
        """A stream of utterances. ``on_vad_event`` is called with every event of the inner
        VAD stream (a voice pipeline reads speech starts, ends and durations from it, so one
        VAD stream serves both turn detection and utterance cutting)."""
        return StreamAdapterWrapper(self.wrapped, self.vad, language, on_vad_event)


class StreamAdapterWrapper(SpeechStream):
    def __init__(
        self,
        stt: STT,
        vad: VAD,
        language: str | None,
        on_vad_event: Callable[[VADEvent], None] | None = None,
    ) -> None:
        super().__init__()
        self._stt, self._vad, self._language = stt, vad, language
        self._on_vad_event = on_vad_event

    async def _run(self) -> None:
        vad_stream = self._vad.stream()

        async def forward() -> None:
            async for item in self._input():
                if isinstance(item, Flush):
                    vad_stream.flush()
                else:
                    vad_stream.push_frame(item)
            vad_stream.end_input()

        forwarding = asyncio.create_task(forward())
        try:
            async for ev in vad_stream:
                if self._on_vad_event is not None:
                    self._on_vad_event(ev)
                if ev.type == VADEventType.START_OF_SPEECH:
                    self._emit(SpeechEvent(SpeechEventType.START_OF_SPEECH))
                elif ev.type == VADEventType.END_OF_SPEECH:
                    if ev.frames:
                        result = await self._stt.recognize(ev.frames, language=self._language)
                        if result.text:
                            self._emit(result)
                    self._emit(SpeechEvent(SpeechEventType.END_OF_SPEECH))
            await forwarding
        finally:
            forwarding.cancel()
            await vad_stream.aclose()
