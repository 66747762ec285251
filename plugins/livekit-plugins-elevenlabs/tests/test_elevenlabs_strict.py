"""ElevenLabs behaviours a silent bug would break: Retry-After as an HTTP-date, and text
chunks that end in a space as the stream-input reference requires."""

from __future__ import annotations

import logging
import re

import pytest

from livekit.agents.testing.loopback import http_date
from livekit.agents.utils.retry import RetryOptions
from livekit.plugins.elevenlabs import TTS
from livekit.plugins.elevenlabs.testing import FakeElevenLabs

SLOW_BACKOFF = RetryOptions(max_attempts=3, base_delay=5.0, max_delay=5.0)
"""Backoff alone would wait 2.5-5 s; an HTTP-date 2 s ahead says at most 2 s."""


@pytest.fixture
async def fake():
    async with FakeElevenLabs() as f:
        yield f


def waits(text: str) -> list[float]:
    return [float(w) for w in re.findall(r"retrying in ([0-9.]+) s", text)]


@pytest.mark.parametrize("endpoint", ["http", "ws"])
async def test_retry_after_as_an_http_date_is_honoured(fake, caplog, endpoint):
    caplog.set_level(logging.WARNING, logger="livekit.agents")
    fake.fail("status", endpoint=endpoint, status=429, retry_after=http_date(2))
    async with TTS(api_key=fake.api_key, base_url=fake.url, retry=SLOW_BACKOFF) as tts:
        if endpoint == "http":
            frame = await tts.synthesize("Hello there.").collect()
            assert frame.samples_per_channel > 0
        else:
            stream = tts.stream()
            stream.push_text("Hello there.")
            stream.end_input()
            audio = [a async for a in stream]
            await stream.aclose()
            assert audio and audio[-1].is_final
    assert len(fake.recorded(endpoint)) == 2
    got = waits(caplog.text)
    assert len(got) == 1 and got[0] <= 2.05, caplog.text


async def test_every_text_chunk_ends_in_a_space_and_no_word_is_cut(fake):
    async with TTS(api_key=fake.api_key, base_url=fake.url) as tts:
        stream = tts.stream()
        # pieces as an LLM streams them: words cut across pushes, no trailing space at the end
        for piece in ["Hel", "lo the", "re, how", " are you", "?\nFine", " thanks."]:
            stream.push_text(piece)
        stream.end_input()
        audio = [a async for a in stream]
        await stream.aclose()
    assert audio[-1].is_final
    (req,) = fake.recorded("ws")
    texts = [m["text"] for m in req.messages]
    assert texts[0] == " " and texts[-1] == ""
    assert all(t.endswith(" ") for t in texts[1:-1]), texts
    words = " ".join(texts).split()
    assert words == "Hello there, how are you? Fine thanks.".split()


async def test_the_fake_refuses_a_chunk_without_its_space(fake):
    import aiohttp

    async with aiohttp.ClientSession() as http:
        ws_url = fake.url.replace("http://", "ws://") + "/v1/text-to-speech/EXAVITQu4vr4xnSDxMaL/stream-input"
        async with http.ws_connect(ws_url, params={"model_id": "eleven_flash_v2_5", "output_format": "pcm_16000"}, headers={"xi-api-key": fake.api_key}) as ws:
            await ws.send_json({"text": " "})
            await ws.send_json({"text": "Hello"})
            msgs = [m async for m in ws]
    assert ws.close_code == 1003
    assert any("end with a single space" in str(m.data) for m in msgs), msgs
