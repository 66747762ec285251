"""The stream adapters turn non-streaming providers into streaming ones."""

import re

import numpy as np
from livekit import rtc

from livekit.agents import stt, tts, vad
from livekit.agents.tokenize import BufferedTokenStream, SentenceTokenizer
from livekit.agents.utils import audio
from livekit.agents.utils.streams import Flush


class EnergyVAD(vad.VAD):
    """Speech is any 10 ms frame louder than a threshold (enough for synthetic audio)."""

    def __init__(self) -> None:
        super().__init__(capabilities=vad.VADCapabilities(update_interval=0.01))

    def stream(self) -> vad.VADStream:
        return EnergyVADStream()


class EnergyVADStream(vad.VADStream):
    async def _run(self) -> None:
        speech: list[rtc.AudioFrame] = []
        pos = 0
        async for f in self._input():
            if isinstance(f, Flush):
                continue
            pos += f.samples_per_channel
            loud = audio.rms(f) > 1000
            if loud and not speech:
                self._emit(vad.VADEvent(vad.VADEventType.START_OF_SPEECH, pos, pos / f.sample_rate))
            if loud:
                speech.append(f)
            elif speech:
                self._emit(vad.VADEvent(vad.VADEventType.END_OF_SPEECH, pos, pos / f.sample_rate, frames=speech))
                speech = []


class DurationSTT(stt.STT):
    """'Transcribes' a buffer as its length in tenths of a second."""

    def __init__(self) -> None:
        super().__init__(capabilities=stt.STTCapabilities(streaming=False, interim_results=False))
        self.calls = 0

    async def recognize(self, buffer, *, language=None):
        self.calls += 1
        text = f"{round(audio.duration(buffer) * 10)} tenths"
        return stt.SpeechEvent(stt.SpeechEventType.FINAL_TRANSCRIPT, [stt.SpeechData(text, language or "")])


def burst(seconds: float, loud: bool) -> list[rtc.AudioFrame]:
    n = int(seconds * 16000)
    data = (np.sin(np.arange(n) * 0.2) * (12000 if loud else 0)).astype(np.int16)
    return audio.frames_from_pcm(data.tobytes(), 16000)


async def test_stt_adapter_recognizes_each_utterance_when_it_ends():
    recognizer = DurationSTT()
    adapter = stt.StreamAdapter(stt=recognizer, vad=EnergyVAD())
    assert adapter.capabilities.streaming
    stream = adapter.stream(language="en")
    for frames in (burst(0.2, False), burst(0.5, True), burst(0.3, False), burst(0.8, True), burst(0.2, False)):
        for f in frames:
            stream.push_frame(f)
    stream.end_input()
    events = [(e.type, e.text) async for e in stream]
    S, F, E = stt.SpeechEventType.START_OF_SPEECH, stt.SpeechEventType.FINAL_TRANSCRIPT, stt.SpeechEventType.END_OF_SPEECH
    assert events == [(S, ""), (F, "5 tenths"), (E, ""), (S, ""), (F, "8 tenths"), (E, "")]
    assert recognizer.calls == 2


async def test_non_streaming_stt_says_how_to_stream():
    try:
        DurationSTT().stream()
    except NotImplementedError as exc:
        assert "StreamAdapter" in str(exc)
    else:
        raise AssertionError("stream() should refuse")


class ToneTTS(tts.TTS):
    """One 10 ms tone frame per character of text."""

    def __init__(self) -> None:
        super().__init__(capabilities=tts.TTSCapabilities(streaming=False, sample_rate=16000))
        self.texts: list[str] = []

    def synthesize(self, text: str) -> tts.ChunkedStream:
        self.texts.append(text)
        return ToneStream(text)


class ToneStream(tts.ChunkedStream):
    async def _run(self) -> None:
        frames = burst(0.01 * len(self.text), True)
        for i, f in enumerate(frames):
            self._emit(tts.SynthesizedAudio(f, self.text, is_final=i == len(frames) - 1))


class RegexSentences(SentenceTokenizer):
    def tokenize(self, text, *, language=None):
        return [s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s]

    def stream(self, *, language=None):
        return BufferedTokenStream(self.tokenize)


async def test_tts_adapter_speaks_each_sentence_once_complete():
    speaker = ToneTTS()
    adapter = tts.StreamAdapter(tts=speaker, sentence_tokenizer=RegexSentences())
    stream = adapter.stream()
    for token in ["Hello", " there.", " How are", " you?", " Fine"]:
        stream.push_text(token)
    stream.end_input()
    out = [a async for a in stream]
    assert speaker.texts == ["Hello there.", "How are you?", "Fine"]
    per_sentence = {}
    for a in out:
        per_sentence.setdefault(a.text, []).append(a)
    assert {t: len(v) for t, v in per_sentence.items()} == {"Hello there.": 12, "How are you?": 12, "Fine": 4}
    assert [a.is_final for a in per_sentence["Fine"]] == [False, False, False, True]
    assert all(a.frame.sample_rate == 16000 for a in out)
