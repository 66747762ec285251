"""A tone synthesizer: each word becomes a short tone, sentences end with a pause.

It needs no service and no model, so it is handy in demos and tests; it also shows how a
TTS plugin produces frames, marks the last frame of a segment and streams text in.
"""

from __future__ import annotations

import re

import numpy as np
from livekit import rtc

from livekit.agents import tts
from livekit.agents.utils.audio import AudioByteStream
from livekit.agents.utils.streams import Flush

from .log import logger

_TOKEN = re.compile(r"\w+(?:['\u2019]\w+)*|[.!?;:,]")


class ToneTTS(tts.TTS):
    """Text to tones: one tone per word, its pitch taken from the word's letters and its
    length from the word's length; a short gap between words and a longer one after
    ``.``, ``!``, ``?`` (and ``,``).

    Args:
        sample_rate: output rate in Hz (8000 to 48000).
        volume: peak amplitude, 0.0 to 1.0.
        frame_ms: duration of each output frame.
    """

    def __init__(self, *, sample_rate: int = 24000, volume: float = 0.3, frame_ms: int = 20) -> None:
        if not 8000 <= sample_rate <= 48000:
            raise ValueError(f"sample_rate must be between 8000 and 48000 Hz, got {sample_rate}")
        if not 0.0 < volume <= 1.0:
            raise ValueError(f"volume must be in (0, 1], got {volume}")
        super().__init__(
            capabilities=tts.TTSCapabilities(streaming=True, sample_rate=sample_rate, num_channels=1)
        )
        self.volume = volume
        self.frame_ms = frame_ms

    def synthesize(self, text: str) -> tts.ChunkedStream:
        return _ToneChunkedStream(self, text)

    def stream(self) -> tts.SynthesizeStream:
        return _ToneSynthesizeStream(self)

    # --- rendering -----------------------------------------------------------------------

    def render(self, text: str) -> bytes:
        """The PCM16 mono audio of ``text``."""
        rate = self.sample_rate
        parts: list[np.ndarray] = []
        for token in _TOKEN.findall(text):
            if token in ".!?":
                parts.append(np.zeros(int(0.25 * rate), dtype=np.float64))
            elif token in ";:,":
                parts.append(np.zeros(int(0.12 * rate), dtype=np.float64))
            else:
                parts.append(self._tone(token))
                parts.append(np.zeros(int(0.05 * rate), dtype=np.float64))
        if not parts:
            return b""
        audio = np.concatenate(parts) * (self.volume * 32767)
        return audio.astype(np.int16).tobytes()

    def _tone(self, word: str) -> np.ndarray:
        rate = self.sample_rate
        seconds = min(0.6, max(0.12, 0.06 + 0.045 * len(word)))
        step = sum(ord(c) for c in word.lower()) % 12  # a semitone of the octave above A3
        freq = 220.0 * 2 ** (step / 12)
        t = np.arange(int(seconds * rate)) / rate
        tone = np.sin(2 * np.pi * freq * t)
        fade = min(len(t) // 2, int(0.005 * rate))
        if fade:
            ramp = np.linspace(0.0, 1.0, fade)
            tone[:fade] *= ramp
            tone[-fade:] *= ramp[::-1]
        return tone

    def _frames(self) -> AudioByteStream:
        return AudioByteStream(self.sample_rate, 1, self.sample_rate * self.frame_ms // 1000)


class _ToneChunkedStream(tts.ChunkedStream):
    def __init__(self, tts_: ToneTTS, text: str) -> None:
        super().__init__(text)
        self._tts = tts_

    async def _run(self) -> None:
        bs = self._tts._frames()
        frames = bs.write(self._tts.render(self.text)) + bs.flush()
        logger.debug("synthesized %d frames for %d characters", len(frames), len(self.text))
        for i, frame in enumerate(frames):
            self._emit(tts.SynthesizedAudio(frame, self.text, is_final=i == len(frames) - 1))


class _ToneSynthesizeStream(tts.SynthesizeStream):
    """Speaks each word as soon as the whitespace after it arrives; ``flush()`` speaks the
    rest and marks the segment's last frame final."""

    def __init__(self, tts_: ToneTTS) -> None:
        super().__init__()
        self._tts = tts_

    async def _run(self) -> None:
        segment = 0
        text = ""  # text not spoken yet
        spoken = ""  # text of the current segment
        bs = self._tts._frames()
        held: rtc.AudioFrame | None = None  # one frame kept back, to mark the last one final

        def out(frames: list[rtc.AudioFrame]) -> None:
            nonlocal held
            for frame in frames:
                if held is not None:
                    self._emit(tts.SynthesizedAudio(held, spoken, False, segment))
                held = frame

        def end_segment() -> None:
            nonlocal held, text, spoken, segment, bs
            out(bs.write(self._tts.render(text)) + bs.flush())
            if held is not None:
                self._emit(tts.SynthesizedAudio(held, spoken + text, True, segment))
                segment += 1
            held, text, spoken, bs = None, "", "", self._tts._frames()

        async for item in self._input():
            if isinstance(item, Flush):
                end_segment()
                continue
            text += item
            cut = max(text.rfind(" "), text.rfind("\n"))
            if cut >= 0:
                ready, text = text[:cut], text[cut:]
                spoken += ready
                out(bs.write(self._tts.render(ready)))
        end_segment()
