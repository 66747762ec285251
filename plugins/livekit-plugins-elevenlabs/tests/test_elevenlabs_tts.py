"""livekit-plugins-elevenlabs against the loopback fake of the ElevenLabs API."""

from __future__ import annotations

import asyncio
import logging

import pytest

from livekit.agents.exceptions import (
    APIAuthenticationError,
    APIConnectionError,
    APIResponseError,
    APIStatusError,
    APITimeoutError,
    MissingCredentialsError,
)
from livekit.agents.testing import conformance
from livekit.agents.utils.audio import duration, rms
from livekit.agents.utils.retry import RetryOptions
from livekit.plugins.elevenlabs import TTS, ElevenLabsAudio, VoiceSettings
from livekit.plugins.elevenlabs.testing import FakeElevenLabs

FAST_RETRY = RetryOptions(max_attempts=3, base_delay=0.01, max_delay=2.0)


@pytest.fixture
async def fake():
    async with FakeElevenLabs() as f:
        yield f


@pytest.fixture
async def make_tts(fake):
    made: list[TTS] = []

    def make(**kw):
        kw.setdefault("api_key", fake.api_key)
        kw.setdefault("base_url", fake.url)
        kw.setdefault("retry", FAST_RETRY)
        t = TTS(**kw)
        made.append(t)
        return t

    yield make
    for t in made:
        await t.aclose()


# --- plugin host and conformance ------------------------------------------------------------


def test_discoverable_and_light():
    record = conformance.check_discoverable("elevenlabs")
    assert record.providers.get("tts") == ["elevenlabs"]
    conformance.check_api_compatible("elevenlabs")
    conformance.check_light_registration("elevenlabs")


async def test_conformance_against_fake(make_tts):
    await conformance.check_tts(make_tts())


async def test_plugins_check_runs_offline(plugin_host):
    results = await conformance.check_plugin("elevenlabs", plugin_host)
    assert [r.outcome for r in results] == ["passed"] * len(results), results
    assert any(r.check == "tts 'elevenlabs' contract" for r in results)


# --- credentials --------------------------------------------------------------------------


def test_key_from_environment(monkeypatch):
    monkeypatch.delenv("ELEVENLABS_API_KEY", raising=False)
    monkeypatch.delenv("ELEVEN_API_KEY", raising=False)
    with pytest.raises(MissingCredentialsError) as err:
        TTS()
    assert "ELEVENLABS_API_KEY" in str(err.value) and "ELEVEN_API_KEY" in str(err.value)
    monkeypatch.setenv("ELEVEN_API_KEY", "historic-key")
    assert TTS()._opts.api_key == "historic-key"
    monkeypatch.setenv("ELEVENLABS_API_KEY", "sdk-key")
    assert TTS()._opts.api_key == "sdk-key"
    assert TTS(api_key="arg-key")._opts.api_key == "arg-key"
    assert "sdk-key" not in repr(TTS())


def test_rejects_rate_without_pcm_format():
    with pytest.raises(ValueError, match="pcm_"):
        TTS(api_key="k", sample_rate=12345)


# --- HTTP streaming ---------------------------------------------------------------------------


async def test_http_request_follows_the_api(fake, make_tts):
    tts = make_tts(
        voice_id="21m00Tcm4TlvDq8ikWAM",
        model="eleven_flash_v2_5",
        sample_rate=16000,
        voice_settings=VoiceSettings(stability=0.3, similarity_boost=0.9, speed=1.1),
        base_url=fake.url + "/v1/",
    )
    frames = [a async for a in tts.synthesize("Good morning, how are you?")]
    (req,) = fake.recorded("http")
    assert req.path == "/v1/text-to-speech/21m00Tcm4TlvDq8ikWAM/stream"
    assert req.params == {"output_format": "pcm_16000"}
    assert req.auth == "header"
    assert req.body == {
        "text": "Good morning, how are you?",
        "model_id": "eleven_flash_v2_5",
        "voice_settings": {"stability": 0.3, "similarity_boost": 0.9, "speed": 1.1},
    }
    assert all(a.frame.sample_rate == 16000 and a.frame.num_channels == 1 for a in frames)
    assert [a.is_final for a in frames].count(True) == 1 and frames[-1].is_final
    assert 0.8 < duration([a.frame for a in frames]) < 4.0
    assert max(rms(a.frame) for a in frames) > 500


async def test_http_frames_arrive_before_the_body_ends(fake, make_tts):
    fake.hold = asyncio.Event()
    stream = make_tts().synthesize("This sentence is long enough to be sent in several chunks.")
    first = await asyncio.wait_for(stream.__anext__(), 10)
    (req,) = fake.recorded("http")
    assert first.frame.samples_per_channel > 0
    assert not req.completed and req.sent_chunks == 1  # the fake is holding the rest back
    fake.hold.set()
    rest = [a async for a in stream]
    assert req.completed and rest[-1].is_final


async def test_http_401_is_not_retried_and_hides_the_key(fake, make_tts, caplog):
    caplog.set_level(logging.DEBUG)
    tts = make_tts(api_key="wrong-secret-key-123")
    with pytest.raises(APIAuthenticationError) as err:
        await tts.synthesize("Hello.").collect()
    assert err.value.status_code == 401
    assert "ELEVENLABS_API_KEY" in str(err.value) and "Invalid API key" in str(err.value)
    assert len(fake.recorded("http")) == 1
    assert "wrong-secret-key-123" not in str(err.value)
    assert "wrong-secret-key-123" not in caplog.text


async def test_http_429_honours_retry_after(fake, make_tts, caplog):
    fake.fail("status", endpoint="http", status=429, retry_after=0.3)
    caplog.set_level(logging.WARNING, logger="livekit.agents")
    frame = await make_tts().synthesize("Hello there.").collect()
    assert frame.samples_per_channel > 0
    assert len(fake.recorded("http")) == 2
    assert "retrying in 0.3 s" in caplog.text


async def test_http_5xx_gives_up_after_the_attempts(fake, make_tts):
    fake.fail("status", endpoint="http", status=503, times=3)
    with pytest.raises(APIStatusError) as err:
        await make_tts().synthesize("Hello there.").collect()
    assert err.value.status_code == 503 and "gave up after 3 attempts" in str(err.value)
    assert len(fake.recorded("http")) == 3


async def test_http_stall_times_out_without_repeating_audio(fake, make_tts):
    fake.fail("stall", endpoint="http")
    tts = make_tts(read_timeout=0.5)
    got = []
    with pytest.raises(APITimeoutError):
        async for a in tts.synthesize("Hello there, this is a stall."):
            got.append(a)
    assert got, "the first chunk's frames were emitted before the stall"
    assert len(fake.recorded("http")) == 1  # audio went out: no retry


async def test_http_truncated_body(fake, make_tts):
    fake.fail("truncate", endpoint="http")
    with pytest.raises(APIConnectionError, match="cut off"):
        await make_tts().synthesize("This answer will be cut off in the middle.").collect()
    assert len(fake.recorded("http")) == 1


async def test_http_malformed_answer(fake, make_tts):
    fake.fail("malformed", endpoint="http")
    with pytest.raises(APIResponseError, match="instead of audio"):
        await make_tts().synthesize("Hello.").collect()


async def test_failure_stays_on_its_stream(fake, make_tts):
    tts = make_tts()
    fake.fail("status", endpoint="http", status=400, message="bad request")
    results = await asyncio.gather(
        tts.synthesize("First.").collect(), tts.synthesize("Second one.").collect(), return_exceptions=True
    )
    failed = [r for r in results if isinstance(r, Exception)]
    assert len(failed) == 1 and isinstance(failed[0], APIStatusError) and failed[0].status_code == 400
    assert any(not isinstance(r, Exception) and r.samples_per_channel > 0 for r in results)


# --- stream-input websocket -------------------------------------------------------------------


async def test_websocket_messages_follow_the_protocol(fake, make_tts):
    tts = make_tts(
        sample_rate=22050,
        voice_settings={"stability": 0.4, "similarity_boost": 0.8},
        chunk_length_schedule=[80, 120],
        model="eleven_flash_v2_5",
    )
    stream = tts.stream()
    for piece in ["Hello ", "there. ", "How are ", "you?"]:
        stream.push_text(piece)
    stream.end_input()
    audio = [a async for a in stream]
    (req,) = fake.recorded("ws")
    assert req.path == f"/v1/text-to-speech/{tts.voice_id}/stream-input"
    assert req.params == {"model_id": "eleven_flash_v2_5", "output_format": "pcm_22050"}
    assert req.auth == "header"
    assert req.messages == [
        {
            "text": " ",
            "voice_settings": {"stability": 0.4, "similarity_boost": 0.8},
            "generation_config": {"chunk_length_schedule": [80, 120]},
        },
        {"text": "Hello "},
        {"text": "there. ", "flush": True},
        {"text": "How are "},
        {"text": "you? ", "flush": True},  # every chunk ends in a space
        {"text": ""},
    ]
    assert all(a.frame.sample_rate == 22050 for a in audio)
    assert audio[-1].is_final and sum(a.is_final for a in audio) == 1
    aligned = [a for a in audio if isinstance(a, ElevenLabsAudio) and a.alignment]
    spoken = "".join(a.alignment.text for a in aligned)
    assert spoken == "Hello there. How are you? "  # the alignment covers the text as sent
    assert all(a.normalized_alignment is not None for a in aligned)
    assert len(aligned[0].alignment.chars) == len(aligned[0].alignment.char_start_times_ms)


async def test_first_sentence_is_spoken_before_more_text_comes(fake, make_tts):
    stream = make_tts().stream()
    stream.push_text("Hello there. ")  # far below the 120-character schedule
    first = await asyncio.wait_for(stream.__anext__(), 10)
    assert first.frame.samples_per_channel > 0
    stream.push_text("And this is the second sentence.")
    stream.end_input()
    rest = [a async for a in stream]
    assert rest[-1].is_final
    (req,) = fake.recorded("ws")
    assert req.messages[1] == {"text": "Hello there. ", "flush": True}


async def test_websocket_segments_per_flush(fake, make_tts):
    stream = make_tts().stream()
    stream.push_text("First segment here")
    stream.flush()
    stream.push_text("Second segment here")
    stream.end_input()
    audio = [a async for a in stream]
    assert sorted({a.segment_id for a in audio}) == [0, 1]
    finals = [a for a in audio if a.is_final]
    assert [a.segment_id for a in finals] == [0, 1]
    assert audio.index(finals[0]) < min(i for i, a in enumerate(audio) if a.segment_id == 1)
    assert len(fake.recorded("ws")) == 2


async def test_websocket_401(fake, make_tts, caplog):
    caplog.set_level(logging.DEBUG)
    stream = make_tts(api_key="bad-ws-secret").stream()
    stream.push_text("Hello.")
    stream.end_input()
    with pytest.raises(APIAuthenticationError, match="ELEVENLABS_API_KEY"):
        async for _ in stream:
            pass
    assert len(fake.recorded("ws")) == 1
    assert "bad-ws-secret" not in caplog.text


async def test_websocket_429_then_drop_are_retried(fake, make_tts, caplog):
    fake.fail("status", endpoint="ws", status=429, retry_after=0.2)
    fake.fail("drop", endpoint="ws")
    caplog.set_level(logging.WARNING, logger="livekit.agents")
    stream = make_tts().stream()
    stream.push_text("Hello there, ")
    stream.push_text("nice day.")
    stream.end_input()
    audio = [a async for a in stream]
    assert audio[-1].is_final
    reqs = fake.recorded("ws")
    assert len(reqs) == 3 and reqs[-1].completed
    # the retried connection replays the whole segment's text
    assert [m["text"] for m in reqs[-1].messages] == [" ", "Hello there, ", "nice ", "day. ", ""]
    assert "retrying in 0.2 s" in caplog.text


async def test_websocket_truncated_after_audio_is_an_error(fake, make_tts):
    fake.fail("truncate", endpoint="ws")
    stream = make_tts().stream()
    stream.push_text("This will be cut.")
    stream.end_input()
    got = []
    with pytest.raises(APIConnectionError, match="before the final audio"):
        async for a in stream:
            got.append(a)
    assert len(fake.recorded("ws")) == 1  # audio was already out: not retried


async def test_websocket_stall_times_out(fake, make_tts):
    fake.fail("stall", endpoint="ws", times=3)
    stream = make_tts(read_timeout=0.3).stream()
    stream.push_text("Nobody answers.")
    stream.end_input()
    with pytest.raises(APITimeoutError, match="no audio"):
        async for _ in stream:
            pass


async def test_websocket_malformed_message(fake, make_tts):
    fake.fail("malformed", endpoint="ws")
    stream = make_tts().stream()
    stream.push_text("Hello.")
    stream.end_input()
    with pytest.raises(APIResponseError, match="malformed"):
        async for _ in stream:
            pass


# --- voices ------------------------------------------------------------------------------------


async def test_list_voices(fake, make_tts):
    voices = await make_tts().list_voices()
    assert [v.name for v in voices] == ["Sarah", "Rachel"]
    assert voices[0].voice_id == "EXAVITQu4vr4xnSDxMaL"
    fake.fail("malformed", endpoint="voices")
    with pytest.raises(APIResponseError):
        await make_tts().list_voices()
