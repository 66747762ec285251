"""OpenAI behaviours a silent bug would break: the transcription request carries the very
samples it was given, Retry-After as an HTTP-date; and the fake refusing what OpenAI's
reference refuses (per-model response_format and voices)."""

from __future__ import annotations

import logging
import re

import numpy as np
import openai as openai_sdk
import pytest
from livekit import rtc

from livekit.agents.exceptions import APIStatusError
from livekit.agents.testing.loopback import http_date
from livekit.agents.testing.speech import SOUNDS_LIKE_THRESHOLD
from livekit.agents.utils.audio import merge_frames, wav_bytes
from livekit.agents.utils.retry import RetryOptions
from livekit.plugins.openai import STT, TTS
from livekit.plugins.openai.testing import Fault

FAST = RetryOptions(max_attempts=3, base_delay=0.05, max_delay=1.0, timeout=10.0)
TWO = ["Hello there, how are you?", "I am fine, thank you."]


def make_stt(fake, **kw):
    kw.setdefault("retry", FAST)
    return STT(api_key=fake.api_key, base_url=fake.base_url, **kw)


def corrupt(frames, how):
    frame = merge_frames(frames)
    a = np.frombuffer(bytes(frame.data), dtype=np.int16)
    if how == "byteswapped":
        b = a.byteswap()
    elif how == "zeroed":
        b = np.zeros_like(a)
    elif how == "noise":  # noise where the speech was: same lengths, nothing said
        b = np.where(a != 0, (np.random.default_rng(0).standard_normal(len(a)) * 4000), 0).astype(np.int16)
    else:
        raise ValueError(how)
    return [rtc.AudioFrame(b.tobytes(), frame.sample_rate, 1, len(b))]


@pytest.mark.parametrize("rate", [16000, 48000])
async def test_recognize_sends_the_audio_samples_it_was_given(fake, speech, rate):
    sample = speech(TWO, sample_rate=rate)
    fake.expect(sample)
    async with make_stt(fake) as stt:
        event = await stt.recognize(sample.frames())
    assert event.text == " ".join(TWO)
    # the fake compared what it got with the utterances it expects: the same sound
    assert len(fake.similarities) == 2 and min(fake.similarities) > 0.95


@pytest.mark.parametrize("how", ["byteswapped", "zeroed", "noise"])
async def test_the_fake_hears_nothing_in_corrupt_audio(fake, speech, how):
    sample = speech(TWO)
    fake.expect(sample)
    async with make_stt(fake) as stt:
        event = await stt.recognize(corrupt(sample.frames(), how))
    assert event.text == ""
    assert all(s < SOUNDS_LIKE_THRESHOLD for s in fake.similarities)


def played_again(sample, at: float, seconds: float):
    """The sample's audio with ``seconds`` of it before ``at`` (a fraction of it) played
    twice: what a receiver's jitter buffer does while a late packet is awaited."""
    a, rate = np.frombuffer(sample.pcm, dtype=np.int16), sample.sample_rate
    i, n = int(len(a) * at), int(rate * seconds)
    b = np.concatenate([a[:i], a[i - n : i], a[i:]])
    return [rtc.AudioFrame(b.tobytes(), rate, 1, len(b))]


async def test_speech_a_jitter_buffer_lengthened_is_heard_as_itself(fake, speech):
    """A loaded run's agent sent "And how about tomorrow?" (1.38 s of speech) as 1.64 s;
    the fake must hear it, not the other expected utterance closer to that length."""
    follow_up = speech("And how about tomorrow?")
    fake.expect(follow_up)
    fake.expect(speech("Please book a table for two."))  # 1.70 s: closer to 1.64 than 1.38 is
    async with make_stt(fake) as stt:
        event = await stt.recognize(played_again(follow_up, 0.6, 0.26))
    assert event.text == "And how about tomorrow?"


async def test_retry_after_as_an_http_date_is_honoured(fake, speech, caplog):
    caplog.set_level(logging.WARNING)
    sample = speech(TWO)
    fake.expect(sample)
    fake.script(Fault.http(429, retry_after=http_date(2)))
    # backoff alone would wait 2.5-5 s; the date says at most 2 s
    async with make_stt(fake, retry=RetryOptions(max_attempts=3, base_delay=5.0, max_delay=5.0, timeout=10.0)) as stt:
        assert (await stt.recognize(sample.frames())).text == " ".join(TWO)
    waits = [float(w) for w in re.findall(r"retrying in ([0-9.]+) s", caplog.text)]
    assert len(waits) == 1 and waits[0] <= 2.05, caplog.text


@pytest.mark.parametrize("model", ["gpt-4o-transcribe", "gpt-4o-mini-transcribe"])
async def test_gpt4o_transcribe_models_take_json_only(fake, speech, model):
    sample = speech(TWO)
    fake.expect(sample)
    sdk = openai_sdk.AsyncOpenAI(api_key=fake.api_key, base_url=fake.base_url, max_retries=0)
    wav = wav_bytes(merge_frames(sample.frames()))
    for fmt in ("text", "verbose_json", "srt"):
        with pytest.raises(openai_sdk.BadRequestError, match="response_format"):
            await sdk.audio.transcriptions.create(file=("a.wav", wav, "audio/wav"), model=model, response_format=fmt)
    ok = await sdk.audio.transcriptions.create(file=("a.wav", wav, "audio/wav"), model=model, response_format="json")
    assert ok.text == " ".join(TWO)
    await sdk.close()
    # and the plugin, which asks for json, works with these models
    async with make_stt(fake, model=model) as stt:
        assert (await stt.recognize(sample.frames())).text == " ".join(TWO)


@pytest.mark.parametrize("voice", ["ballad", "verse"])
async def test_tts1_voices_are_the_documented_ones(fake, voice):
    async with TTS(api_key=fake.api_key, base_url=fake.base_url, model="tts-1", voice=voice, retry=FAST) as tts:
        with pytest.raises(APIStatusError, match=f"{voice}.*not available for model 'tts-1'") as info:
            await tts.synthesize("Hello there.").collect()
    assert info.value.status_code == 400
    async with TTS(api_key=fake.api_key, base_url=fake.base_url, model="gpt-4o-mini-tts", voice=voice, retry=FAST) as tts:
        assert await tts.synthesize("Hello there.").collect()


async def test_instructions_need_gpt4o_mini_tts(fake):
    async with TTS(api_key=fake.api_key, base_url=fake.base_url, model="tts-1", instructions="Cheerful.", retry=FAST) as tts:
        with pytest.raises(APIStatusError, match="instructions"):
            await tts.synthesize("Hello there.").collect()
    async with TTS(api_key=fake.api_key, base_url=fake.base_url, model="gpt-4o-mini-tts", instructions="Cheerful.", retry=FAST) as tts:
        assert await tts.synthesize("Hello there.").collect()
