"""The silence a TTS service opens a reply with is dropped, not played (up to
``VoiceOptions.trim_leading_silence``): the openai fake's speech starts with 50 ms of it,
as many services' audio does. The reply runs against the fakes with a recording stand-in
for the agent's track."""

from __future__ import annotations

import time

import pytest
from livekit import rtc

from livekit.agents import llm
from livekit.agents.voice import BasicSentenceTokenizer
from livekit.agents.voice.events import TurnMetrics
from livekit.agents.voice.options import VoiceOptions
from livekit.agents.voice.playout import is_silent
from livekit.agents.voice.reply import Reply
from livekit.plugins import openai
from livekit.plugins.openai.testing import FakeOpenAI
from livekit.plugins.openai.testing import Reply as Answer

ANSWER = "It is sunny in Paris. Take a hat."


class RecordingOutput:
    """What a Reply needs of the agent's track (AudioOutput), keeping every frame it is given."""

    def __init__(self) -> None:
        self.frames: list[rtc.AudioFrame] = []

    async def capture(self, frame: rtc.AudioFrame) -> int:
        self.frames.append(frame)
        return frame.samples_per_channel

    def clear(self) -> int:
        return sum(f.samples_per_channel for f in self.frames)

    async def wait_for_playout(self) -> None:
        pass


async def speak(trim: float) -> tuple[Reply, list[rtc.AudioFrame]]:
    async with FakeOpenAI() as fake:
        fake.chat.script(Answer(text=ANSWER))
        keys = dict(api_key=fake.api_key, base_url=fake.base_url)
        chat = llm.ChatContext()
        chat.add_message(role="user", content="How is the weather in Paris?")
        out = RecordingOutput()
        reply = Reply(
            turn=1, llm=openai.LLM(**keys), tts=openai.TTS(**keys), tokenizer=BasicSentenceTokenizer(),
            chat_ctx=chat, tools=[], output=out, segment=None,  # type: ignore[arg-type]
            metrics=TurnMetrics(turn=1), speech_end=time.monotonic(),
            options=VoiceOptions(trim_leading_silence=trim), emit=lambda *_: None,
        )
        await reply.wait()
        assert reply.error is None
        return reply, out.frames


def leading_silent(frames: list[rtc.AudioFrame]) -> int:
    n = 0
    for f in frames:
        if not is_silent(f):
            break
        n += f.samples_per_channel
    return n


async def test_the_leading_silence_of_a_reply_is_not_played():
    _, kept = await speak(trim=0.0)
    lead = leading_silent(kept)
    assert lead > 0, "the fake's speech is expected to open with silence"

    reply, trimmed = await speak(trim=VoiceOptions().trim_leading_silence)
    assert not is_silent(trimmed[0]), "the reply's first frame on the track is silence"
    # only the leading silence went: the rest, its pauses between sentences included, is all there
    assert sum(f.samples_per_channel for f in trimmed) == sum(f.samples_per_channel for f in kept) - lead
    assert any(is_silent(f) for f in trimmed), "a pause inside the reply was dropped"
    assert reply.played_text == ANSWER


async def test_at_most_trim_leading_silence_seconds_are_dropped(monkeypatch):
    from livekit.plugins.openai import testing

    speak_as_is = testing.speak  # a service that opens with 0.25 s of silence instead of 0.05 s
    monkeypatch.setattr(testing, "speak", lambda text, speed: bytes(int(0.2 * testing.PCM_RATE) * 2) + speak_as_is(text, speed))
    _, kept = await speak(trim=0.0)
    lead = leading_silent(kept)
    frame = kept[0].samples_per_channel
    assert lead >= 6 * frame
    _, trimmed = await speak(trim=0.1)  # 0.1 s: three 40 ms frames go, no more
    assert leading_silent(trimmed) == lead - 3 * frame


def test_trim_leading_silence_must_not_be_negative():
    with pytest.raises(ValueError, match="trim_leading_silence"):
        VoiceOptions(trim_leading_silence=-1)
