"""OpenAI STT against the loopback fake: real speech in, the fake's transcript out, errors mapped."""

from __future__ import annotations

import asyncio
import importlib.util
import logging

import pytest

from livekit.agents.exceptions import (
    APIAuthenticationError,
    APIResponseError,
    APIStatusError,
    APITimeoutError,
)
from livekit.agents.stt import SpeechEventType, StreamAdapter
from livekit.agents.testing import conformance
from livekit.agents.utils.retry import RetryOptions
from livekit.plugins.openai import STT
from livekit.plugins.openai.testing import Fault

FAST = RetryOptions(max_attempts=3, base_delay=0.05, max_delay=1.0, timeout=10.0)
TEXT = "The quick brown fox jumps over the lazy dog."


def make(fake, **kw):
    kw.setdefault("retry", FAST)
    return STT(api_key=kw.pop("api_key", fake.api_key), base_url=fake.base_url, **kw)


async def test_recognize_sends_a_wav_and_returns_what_was_heard(fake, speech):
    sample = speech(TEXT)
    fake.expect(sample)
    async with make(fake) as stt:
        event = await stt.recognize(sample.frames())
    assert event.type == SpeechEventType.FINAL_TRANSCRIPT
    assert event.text == TEXT
    [req] = fake.requests
    assert req.auth_ok and req.auth_scheme == "Bearer"
    assert req.fields["model"] == "whisper-1"
    assert req.fields["language"] == "en"
    assert req.fields["response_format"] == "json"
    assert (req.wav_rate, req.wav_channels) == (16000, 1)
    assert req.wav_seconds == pytest.approx(sample.duration, abs=0.011)


async def test_options_reach_the_service(fake, speech):
    sample = speech(TEXT, sample_rate=48000)
    fake.expect(sample)
    async with make(fake, model="gpt-4o-transcribe", prompt="Foxes and dogs.") as stt:
        event = await stt.recognize(sample.frames(), language="fr")
    assert event.text == TEXT
    fields = fake.requests[0].fields
    assert (fields["model"], fields["language"], fields["prompt"]) == ("gpt-4o-transcribe", "fr", "Foxes and dogs.")
    assert fake.requests[0].wav_rate == 48000


async def test_conformance(fake, speech):
    sample = speech(TEXT)
    fake.expect(sample)
    async with make(fake) as stt:
        await conformance.check_stt(stt, sample)
    assert not stt.capabilities.streaming


async def test_streaming_through_the_stream_adapter_with_a_vad(fake, speech):
    if importlib.util.find_spec("livekit.plugins.silero") is None:
        pytest.skip("livekit-plugins-silero is not installed: the stream adapter needs a real VAD")
    from livekit.plugins import silero

    sample = speech(["Hello there, how are you?", "I am fine, thank you."])
    fake.expect(sample)
    async with make(fake) as stt:
        adapter = StreamAdapter(stt=stt, vad=silero.VAD())
        stream = adapter.stream()
        for f in sample.frames():
            stream.push_frame(f)
        stream.end_input()
        events = [e async for e in stream]
        await stream.aclose()
    finals = [e.text for e in events if e.type == SpeechEventType.FINAL_TRANSCRIPT]
    assert finals == sample.utterances
    types = [e.type for e in events]
    assert types.count(SpeechEventType.START_OF_SPEECH) == 2
    assert types.count(SpeechEventType.END_OF_SPEECH) == 2
    assert len(fake.requests) == 2  # one upload per utterance


async def test_wrong_key_is_an_authentication_error_without_the_key(fake, speech, caplog):
    caplog.set_level(logging.DEBUG)
    sample = speech(TEXT)
    wrong = "sk-wrong-key-1234567890abcdef"
    async with make(fake, api_key=wrong) as stt:
        with pytest.raises(APIAuthenticationError) as info:
            await stt.recognize(sample.frames())
    msg = str(info.value)
    assert "OPENAI_API_KEY" in msg and "401" in msg
    assert wrong not in msg and "sk-wrong" not in msg
    assert wrong not in caplog.text and fake.api_key not in caplog.text
    assert len(fake.requests) == 1  # not retried


async def test_rate_limit_waits_what_retry_after_says(fake, speech, caplog):
    caplog.set_level(logging.WARNING)
    sample = speech(TEXT)
    fake.expect(sample)
    fake.script(Fault.http(429, retry_after=0.3))
    async with make(fake, retry=RetryOptions(max_attempts=3, base_delay=5.0, timeout=10.0)) as stt:
        event = await stt.recognize(sample.frames())
    assert event.text == TEXT
    assert len(fake.requests) == 2
    assert "retrying in 0.3 s" in caplog.text


async def test_server_errors_give_up_after_the_limit(fake, speech):
    sample = speech(TEXT)
    fake.script(Fault.http(503), Fault.http(500), Fault.http(503))
    async with make(fake) as stt:
        with pytest.raises(APIStatusError) as info:
            await stt.recognize(sample.frames())
    assert info.value.status_code == 503
    assert "gave up after 3 attempts" in str(info.value)
    assert len(fake.requests) == 3


async def test_bad_parameter_is_reported_not_retried(fake, speech):
    sample = speech(TEXT)
    async with make(fake, language="english") as stt:
        with pytest.raises(APIStatusError) as info:
            await stt.recognize(sample.frames())
    assert info.value.status_code == 400 and not info.value.retryable
    assert "ISO-639-1" in str(info.value)
    assert len(fake.requests) == 1


async def test_too_short_audio_is_rejected_like_the_service(fake, speech):
    sample = speech(TEXT)
    async with make(fake) as stt:
        with pytest.raises(APIStatusError, match="too short"):
            await stt.recognize(sample.frames()[:5])


async def test_malformed_answer(fake, speech):
    sample = speech(TEXT)
    fake.script(Fault.malformed())
    async with make(fake) as stt:
        with pytest.raises(APIResponseError):
            await stt.recognize(sample.frames())


async def test_truncated_answer_is_retried(fake, speech):
    sample = speech(TEXT)
    fake.expect(sample)
    fake.script(Fault.truncate(after_bytes=5))
    async with make(fake) as stt:
        event = await stt.recognize(sample.frames())
    assert event.text == TEXT
    assert len(fake.requests) == 2


async def test_a_stalled_request_times_out_and_others_continue(fake, speech):
    sample = speech(TEXT)
    fake.expect(sample)
    fake.script(Fault.stall(seconds=30))
    async with make(fake, retry=RetryOptions(max_attempts=1, timeout=1.0)) as stalled, make(fake) as healthy:
        first = asyncio.create_task(stalled.recognize(sample.frames()))
        while not fake.requests:
            await asyncio.sleep(0.01)
        event = await healthy.recognize(sample.frames())
        with pytest.raises(APITimeoutError, match="did not answer within 1.0 s"):
            await first
    assert event.text == TEXT
