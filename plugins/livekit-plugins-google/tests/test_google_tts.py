"""livekit-plugins-google Text-to-Speech against the loopback gRPC fake."""

from __future__ import annotations

import logging

import grpc
import pytest

from livekit.agents.exceptions import APIAuthenticationError, APIResponseError, APIStatusError
from livekit.agents.testing import conformance
from livekit.agents.utils.audio import duration, merge_frames, rms
from livekit.agents.utils.retry import RetryOptions
from livekit.plugins.google import TTS, GoogleCredentialsError
from livekit.plugins.google.testing import FakeGoogleCloud

FAST_RETRY = RetryOptions(max_attempts=3, base_delay=0.01, max_delay=2.0, timeout=10.0)
TEXT = "Hello from the fake Google voice. Nice to meet you."


@pytest.fixture
async def fake():
    async with FakeGoogleCloud() as f:
        yield f


@pytest.fixture
async def make_tts(fake):
    made: list[TTS] = []

    def make(**kw):
        t = TTS(**{**fake.options(), "retry": FAST_RETRY, **kw})
        made.append(t)
        return t

    yield make
    for t in made:
        await t.aclose()


async def test_conformance_against_fake(make_tts):
    await conformance.check_tts(make_tts())


async def test_request_and_linear16_without_wav_header(fake, make_tts):
    tts = make_tts(language="en-GB", voice_name="en-GB-Standard-A", gender="female", speaking_rate=1.25,
                   pitch=-2.0, sample_rate=16000)
    audio = [a async for a in tts.synthesize(TEXT)]
    (call,) = fake.recorded("SynthesizeSpeech")
    assert call.authorized is True
    cfg = call.config
    assert cfg["input"] == {"text": TEXT}
    assert cfg["voice"]["language_code"] == "en-GB" and cfg["voice"]["name"] == "en-GB-Standard-A"
    assert cfg["voice"]["ssml_gender"] == "FEMALE"
    ac = cfg["audio_config"]
    assert ac["audio_encoding"] == "LINEAR16" and ac["sample_rate_hertz"] == 16000
    assert ac["speaking_rate"] == 1.25 and ac["pitch"] == -2.0
    frame = merge_frames([a.frame for a in audio])
    assert all(a.frame.sample_rate == 16000 and a.frame.num_channels == 1 for a in audio)
    # the 44-byte WAV header was stripped: exactly the fake's samples, not RIFF bytes as audio
    assert frame.samples_per_channel == round(call.audio_seconds * 16000)
    assert not bytes(frame.data).startswith(b"RIFF")
    assert audio[-1].is_final and sum(a.is_final for a in audio) == 1
    assert max(rms(a.frame) for a in audio) > 500


async def test_speaking_rate_reaches_the_voice(make_tts):
    slow = await make_tts(speaking_rate=1.0).synthesize(TEXT).collect()
    fast = await make_tts(speaking_rate=2.0).synthesize(TEXT).collect()
    assert duration(fast) < 0.8 * duration(slow)


async def test_ssml_is_sent_as_ssml(fake, make_tts):
    await make_tts().synthesize("<speak>Hello <break time='200ms'/> there.</speak>").collect()
    assert "ssml" in fake.recorded("SynthesizeSpeech")[0].config["input"]


async def test_unknown_voice_is_a_clear_error(fake, make_tts):
    with pytest.raises(APIStatusError, match="does not exist") as err:
        await make_tts(voice_name="en-US-Nope-Z").synthesize("Hi.").collect()
    assert err.value.status_code == 400 and len(fake.recorded("SynthesizeSpeech")) == 1


async def test_quota_retry_info_is_honoured(fake, make_tts, caplog):
    fake.fail("status", method="SynthesizeSpeech", code=grpc.StatusCode.RESOURCE_EXHAUSTED, retry_after=0.2)
    caplog.set_level(logging.WARNING, logger="livekit.agents")
    frame = await make_tts().synthesize("Hi there.").collect()
    assert frame.samples_per_channel > 0
    assert "retrying in 0.2 s" in caplog.text


async def test_unauthenticated(fake, caplog):
    import google.oauth2.credentials

    caplog.set_level(logging.DEBUG)
    tts = TTS(endpoint=fake.address, insecure=True, credentials=google.oauth2.credentials.Credentials(token="leaky-tok"))
    try:
        with pytest.raises(APIAuthenticationError) as err:
            await tts.synthesize("Hi.").collect()
    finally:
        await tts.aclose()
    assert "leaky-tok" not in str(err.value) and "leaky-tok" not in caplog.text
    assert len(fake.recorded("SynthesizeSpeech")) == 1


async def test_malformed_wav_is_a_response_error(fake, make_tts):
    fake.fail("malformed", method="SynthesizeSpeech")
    with pytest.raises(APIResponseError, match="WAV"):
        await make_tts().synthesize("Hi.").collect()


async def test_list_voices(make_tts):
    voices = await make_tts().list_voices("en-US")
    assert {v.name for v in voices} >= {"en-US-Standard-C", "en-US-Neural2-F"}
    assert all("en-US" in v.language_codes for v in voices)


def test_missing_credentials(monkeypatch, tmp_path):
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))
    monkeypatch.setenv("NO_GCE_CHECK", "True")
    with pytest.raises(GoogleCredentialsError, match="GOOGLE_APPLICATION_CREDENTIALS"):
        TTS()
    with pytest.raises(ValueError, match="endpoint"):
        TTS(insecure=True)
