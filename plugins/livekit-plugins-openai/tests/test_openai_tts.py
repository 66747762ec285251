"""OpenAI TTS against the loopback fake: PCM streamed into frames as it arrives, errors mapped."""

from __future__ import annotations

import asyncio
import logging

import pytest

from livekit.agents.exceptions import (
    APIAuthenticationError,
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
)
from livekit.agents.testing import conformance
from livekit.agents.utils.retry import RetryOptions
from livekit.plugins.openai import TTS
from livekit.plugins.openai.testing import Fault, speak

FAST = RetryOptions(max_attempts=3, base_delay=0.05, max_delay=1.0, timeout=10.0)
TEXT = "Hello from the speech endpoint, streamed as it arrives."


def make(fake, **kw):
    kw.setdefault("retry", FAST)
    return TTS(api_key=kw.pop("api_key", fake.api_key), base_url=fake.base_url, **kw)


async def test_conformance(fake):
    async with make(fake) as tts:
        assert (tts.sample_rate, tts.num_channels) == (24000, 1)
        await conformance.check_tts(tts)


async def test_frames_carry_every_sample_the_service_sent(fake):
    async with make(fake, voice="nova", speed=1.5) as tts:
        audio = [a async for a in tts.synthesize(TEXT)]
    req = fake.requests[0]
    assert req.auth_scheme == "Bearer" and req.auth_ok
    assert req.fields == {"model": "tts-1", "voice": "nova", "input": TEXT, "speed": 1.5, "response_format": "pcm"}
    expected = speak(TEXT, 1.5)
    assert b"".join(bytes(a.frame.data) for a in audio) == expected
    assert all(a.frame.sample_rate == 24000 and a.frame.num_channels == 1 for a in audio)
    assert all(a.frame.samples_per_channel == 960 for a in audio[:-1])  # 40 ms frames
    assert [a.is_final for a in audio].count(True) == 1 and audio[-1].is_final
    assert all(a.text == TEXT for a in audio)


async def test_first_frame_arrives_before_the_body_ends(fake):
    fake.hold = asyncio.Event()  # the fake pauses after its first chunk until released
    async with make(fake) as tts:
        stream = tts.synthesize(TEXT)
        first = await asyncio.wait_for(stream.__anext__(), 10)
        assert fake.bodies_finished == 0
        assert first.frame.samples_per_channel == 960
        fake.hold.set()
        rest = [a async for a in stream]
        await stream.aclose()
    assert fake.bodies_finished == 1
    assert rest[-1].is_final


async def test_wrong_key_is_an_authentication_error_without_the_key(fake, caplog):
    caplog.set_level(logging.DEBUG)
    wrong = "sk-another-wrong-key-abcdef123456"
    async with make(fake, api_key=wrong) as tts:
        with pytest.raises(APIAuthenticationError) as info:
            await tts.synthesize(TEXT).collect()
    assert "OPENAI_API_KEY" in str(info.value)
    assert "sk-another" not in str(info.value)
    assert wrong not in caplog.text
    assert len(fake.requests) == 1


async def test_forbidden_is_an_authentication_error(fake):
    fake.script(Fault.http(403))
    async with make(fake) as tts:
        with pytest.raises(APIAuthenticationError, match="403.*OPENAI_API_KEY"):
            await tts.synthesize(TEXT).collect()


async def test_rate_limit_then_success(fake, caplog):
    caplog.set_level(logging.WARNING)
    fake.script(Fault.http(429, retry_after=0.2), Fault.http(502))
    async with make(fake) as tts:
        frame = await tts.synthesize(TEXT).collect()
    assert bytes(frame.data) == speak(TEXT)
    assert len(fake.requests) == 3
    assert "retrying in 0.2 s" in caplog.text


async def test_server_errors_give_up_after_the_limit(fake):
    fake.script(*[Fault.http(500)] * 3)
    async with make(fake) as tts:
        with pytest.raises(APIStatusError, match="gave up after 3 attempts") as info:
            await tts.synthesize(TEXT).collect()
    assert info.value.status_code == 500


async def test_bad_voice_is_reported(fake):
    async with make(fake, voice="darth") as tts:
        with pytest.raises(APIStatusError, match="darth") as info:
            await tts.synthesize(TEXT).collect()
    assert info.value.status_code == 400
    assert len(fake.requests) == 1


async def test_body_cut_mid_stream_fails_that_stream_after_its_frames(fake):
    fake.script(Fault.truncate(after_bytes=48000))  # 1 s of the audio, then the socket drops
    async with make(fake) as tts:
        got = []
        with pytest.raises(APIConnectionError, match="incomplete"):
            async for a in tts.synthesize(TEXT):
                got.append(a)
        assert 22 <= len(got) <= 25  # the second's 40 ms frames came before the error
        # the TTS is still usable
        assert bytes((await tts.synthesize(TEXT).collect()).data) == speak(TEXT)


async def test_stalled_body_times_out_other_streams_continue(fake):
    fake.script(Fault.stall(after_bytes=4800, seconds=30))
    async with make(fake, timeout=1.0) as slow, make(fake) as ok:
        stalled = asyncio.create_task(slow.synthesize(TEXT).collect())
        while not fake.requests:
            await asyncio.sleep(0.01)
        frame = await ok.synthesize("Another sentence.").collect()
        with pytest.raises(APITimeoutError):
            await stalled
    assert bytes(frame.data) == speak("Another sentence.")


async def test_empty_text_is_rejected_by_the_service(fake):
    async with make(fake) as tts:
        with pytest.raises(APIStatusError, match="input"):
            await tts.synthesize("   ").collect()


def test_speed_out_of_range(fake):
    with pytest.raises(ValueError, match="speed"):
        make(fake, speed=5.0)
