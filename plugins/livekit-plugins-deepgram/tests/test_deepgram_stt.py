"""Deepgram STT against the loopback fake: live websocket and pre-recorded, errors and reconnects."""

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
)
from livekit.agents.stt import SpeechEventType as T
from livekit.agents.testing import conformance
from livekit.agents.utils.retry import RetryOptions
from livekit.plugins.deepgram import STT
from livekit.plugins.deepgram.testing import FakeDeepgram, Fault

FAST = RetryOptions(max_attempts=3, base_delay=0.05, max_delay=1.0, timeout=5.0)
TWO = ["Hello there, how are you?", "I am fine, thank you."]


def make(fake, **kw):
    kw.setdefault("retry", FAST)
    return STT(api_key=kw.pop("api_key", fake.api_key), base_url=fake.base_url, **kw)


async def run_stream(stt, frames, **kw):
    stream = stt.stream(**kw)
    try:
        for f in frames:
            stream.push_frame(f)
        stream.end_input()
        return [e async for e in stream]
    finally:
        await stream.aclose()


def finals(events):
    return [e for e in events if e.type == T.FINAL_TRANSCRIPT]


async def test_stream_maps_results_to_events(fake, speech):
    sample = speech(TWO)
    fake.expect(sample)
    async with make(fake) as stt:
        events = await run_stream(stt, sample.frames())
    assert [e.text for e in finals(events)] == TWO
    # per utterance: start, interims growing, final, end
    kinds = [e.type for e in events]
    assert kinds.count(T.START_OF_SPEECH) == 2 and kinds.count(T.END_OF_SPEECH) == 2
    first = kinds.index(T.FINAL_TRANSCRIPT)
    assert kinds[0] == T.START_OF_SPEECH and T.INTERIM_TRANSCRIPT in kinds[:first]
    assert kinds[first + 1] == T.END_OF_SPEECH
    interims = [e.text for e in events[:first] if e.type == T.INTERIM_TRANSCRIPT]
    assert all(TWO[0].startswith(t) for t in interims)
    for ev, (t0, t1) in zip(finals(events), sample.segments, strict=True):
        assert ev.alternatives[0].start_time == pytest.approx(t0, abs=0.05)
        assert ev.alternatives[0].end_time == pytest.approx(t1, abs=0.05)
        assert ev.alternatives[0].confidence > 0.5
    [session] = fake.live
    assert session.auth_ok and session.auth_scheme == "Token"
    p = session.params
    assert (p["model"], p["language"], p["encoding"], p["sample_rate"], p["channels"]) == ("nova-3", "en-US", "linear16", "16000", "1")
    assert (p["interim_results"], p["punctuate"], p["smart_format"], p["vad_events"]) == ("true",) * 4
    assert (p["endpointing"], p["utterance_end_ms"]) == ("25", "1000")
    assert bytes(session.audio) == sample.pcm  # every sample, once, in order
    assert session.controls == ["CloseStream"]


async def test_utterance_end_marks_end_of_speech_without_endpointing(fake, speech):
    sample = speech(TWO, silence=1.5)
    fake.expect(sample)
    async with make(fake, endpointing_ms=None) as stt:
        events = await run_stream(stt, sample.frames())
    # the fake's finals then carry no speech_final... only UtteranceEnd (after 1 s of silence) ends speech
    sent = [m["type"] for m in fake.live[0].sent]
    assert "UtteranceEnd" in sent
    kinds = [e.type for e in events]
    assert kinds.count(T.END_OF_SPEECH) == 2
    assert [e.text for e in finals(events)] == TWO


async def test_input_at_48k_is_resampled_to_the_declared_rate(fake, speech):
    sample = speech(TWO, sample_rate=48000)
    fake.expect(sample)
    async with make(fake) as stt:
        events = await run_stream(stt, sample.frames())
    assert [e.text for e in finals(events)] == TWO
    assert fake.live[0].params["sample_rate"] == "16000"
    assert fake.live[0].seconds == pytest.approx(sample.duration, abs=0.02)


async def test_conformance(fake, speech):
    sample = speech("The quick brown fox jumps over the lazy dog.")
    fake.expect(sample)
    async with make(fake) as stt:
        await conformance.check_stt(stt, sample)


async def test_flush_asks_for_the_final_now(fake, speech):
    sample = speech(TWO)
    fake.expect(sample)
    frames = sample.frames()
    cut = int((sample.segments[0][1] + 0.2) * 100)  # 0.2 s after the first utterance: before any endpoint
    async with make(fake) as stt:
        stream = stt.stream()
        for f in frames[:cut]:
            stream.push_frame(f)
        stream.flush()
        got = []
        async for ev in stream:
            got.append(ev)
            if ev.type == T.FINAL_TRANSCRIPT:
                break
        assert got[-1].text == TWO[0]
        assert fake.live[0].controls == ["Finalize"]
        for f in frames[cut:]:
            stream.push_frame(f)
        stream.end_input()
        rest = [e async for e in stream]
        await stream.aclose()
    assert [e.text for e in finals(rest)] == TWO[1:]
    assert fake.live[0].controls == ["Finalize", "CloseStream"]


async def test_keepalive_holds_an_idle_stream_open(speech):
    sample = speech(TWO)
    async with FakeDeepgram(idle_timeout=0.6) as fake:
        fake.expect(sample)
        async with make(fake, keepalive_interval=0.2) as stt:
            stream = stt.stream()
            frames = sample.frames()
            stream.push_frame(frames[0])
            await asyncio.sleep(1.5)  # idle for longer than the fake's idle timeout
            for f in frames[1:]:
                stream.push_frame(f)
            stream.end_input()
            events = [e async for e in stream]
            await stream.aclose()
        assert len(fake.live) == 1  # never closed for idleness, never reconnected
        assert fake.live[0].controls.count("KeepAlive") >= 3
        assert [e.text for e in finals(events)] == TWO


async def test_dropped_stream_reconnects_without_loss_or_duplicates(fake, speech, caplog):
    caplog.set_level(logging.WARNING)
    sample = speech(TWO)
    fake.expect(sample)
    fake.script(Fault.close(after_seconds=3.6))  # after the first final, inside the second utterance
    async with make(fake) as stt:
        events = await run_stream(stt, sample.frames())
    assert [e.text for e in finals(events)] == TWO
    for ev, (t0, t1) in zip(finals(events), sample.segments, strict=True):  # the new session's times are shifted
        assert ev.alternatives[0].start_time == pytest.approx(t0, abs=0.05)
        assert ev.alternatives[0].end_time == pytest.approx(t1, abs=0.05)
    first, second = fake.live
    assert first.closed_code == 1011
    # the new session got exactly the audio the first final did not cover
    covered = [m for m in first.sent if m["type"] == "Results" and m["is_final"]][-1]
    covered_bytes = round((covered["start"] + covered["duration"]) * 16000) * 2
    assert 0 < covered_bytes < len(first.audio)
    assert bytes(first.audio[:covered_bytes]) + bytes(second.audio) == sample.pcm
    assert "reconnecting" in caplog.text
    kinds = [e.type for e in events]
    assert kinds.count(T.START_OF_SPEECH) == 2 and kinds.count(T.END_OF_SPEECH) == 2


async def test_a_stream_that_keeps_dropping_fails_clearly(fake, speech):
    sample = speech(TWO)
    fake.script(*[Fault.close(after_seconds=0.3)] * 3)
    async with make(fake, retry=RetryOptions(max_attempts=2, base_delay=0.05, timeout=5.0)) as stt:
        with pytest.raises(APIConnectionError, match="closed the connection mid-stream.*gave up"):
            await run_stream(stt, sample.frames())
    assert len(fake.live) == 2


async def test_policy_close_is_not_retried(fake, speech):
    sample = speech(TWO)
    fake.script(Fault.close(after_seconds=0.3, code=1008))
    async with make(fake) as stt:
        with pytest.raises(APIStatusError, match="rejected the stream"):
            await run_stream(stt, sample.frames())
    assert len(fake.live) == 1


async def test_wrong_key_is_an_authentication_error_without_the_key(fake, speech, caplog):
    caplog.set_level(logging.DEBUG)
    sample = speech(TWO)
    wrong = "dg-wrong-key-9876543210"
    async with make(fake, api_key=wrong) as stt:
        with pytest.raises(APIAuthenticationError) as live:
            await run_stream(stt, sample.frames())
        with pytest.raises(APIAuthenticationError) as batch:
            await stt.recognize(sample.frames())
    for info in (live, batch):
        assert "DEEPGRAM_API_KEY" in str(info.value) and "401" in str(info.value)
        assert wrong not in str(info.value)
    assert wrong not in caplog.text
    assert [s.status for s in fake.sessions] == [401, 401]  # not retried


async def test_rate_limit_at_handshake_waits_retry_after(fake, speech, caplog):
    caplog.set_level(logging.WARNING)
    sample = speech(TWO)
    fake.expect(sample)
    fake.script(Fault.http(429, retry_after=0.3))
    async with make(fake, retry=RetryOptions(max_attempts=3, base_delay=5.0, timeout=5.0)) as stt:
        events = await run_stream(stt, sample.frames())
    assert [e.text for e in finals(events)] == TWO
    assert [s.status for s in fake.sessions] == [429, 101]
    assert "retrying in 0.3 s" in caplog.text


async def test_server_errors_give_up_after_the_limit(fake, speech):
    sample = speech(TWO)
    fake.script(*[Fault.http(503)] * 3)
    async with make(fake) as stt:
        with pytest.raises(APIStatusError, match="gave up after 3 attempts") as info:
            await run_stream(stt, sample.frames())
    assert info.value.status_code == 503


async def test_bad_parameters_are_rejected_like_the_service(fake, speech):
    sample = speech(TWO)
    async with make(fake, utterance_end_ms=500) as stt:
        with pytest.raises(APIStatusError, match="utterance_end_ms") as info:
            await run_stream(stt, sample.frames())
    assert info.value.status_code == 400 and len(fake.sessions) == 1


async def test_stalled_stream_times_out_and_others_continue(fake, speech):
    sample = speech(TWO)
    fake.expect(sample)
    fake.script(Fault.stall(after_seconds=0.0))
    async with make(fake, retry=RetryOptions(max_attempts=1, timeout=1.0)) as slow, make(fake) as ok:
        stalled = asyncio.create_task(run_stream(slow, sample.frames()))
        while not fake.live:
            await asyncio.sleep(0.01)
        events = await run_stream(ok, sample.frames())
        with pytest.raises(APITimeoutError, match="stalled"):
            await stalled
    assert [e.text for e in finals(events)] == TWO


async def test_malformed_message_fails_that_stream(fake, speech):
    sample = speech(TWO)
    fake.script(Fault.malformed(after_seconds=1.0))
    async with make(fake) as stt:
        with pytest.raises(APIResponseError, match="malformed"):
            await run_stream(stt, sample.frames())


async def test_recognize_prerecorded(fake, speech):
    sample = speech(TWO)
    fake.expect(sample)
    async with make(fake, language="en-GB") as stt:
        event = await stt.recognize(sample.frames())
    assert event.type == T.FINAL_TRANSCRIPT and event.text == " ".join(TWO)
    assert event.request_id
    [s] = fake.sessions
    assert s.kind == "prerecorded" and s.auth_scheme == "Token"
    assert (s.params["model"], s.params["language"], s.params["sample_rate"]) == ("nova-3", "en-GB", "16000")
    assert bytes(s.audio) == sample.pcm


async def test_recognize_retries_a_truncated_answer_and_reports_a_malformed_one(fake, speech):
    sample = speech(TWO)
    fake.expect(sample)
    fake.script(Fault.truncate())
    async with make(fake) as stt:
        assert (await stt.recognize(sample.frames())).text == " ".join(TWO)
        assert len(fake.sessions) == 2
        fake.script(Fault.malformed())
        with pytest.raises(APIResponseError, match="malformed"):
            await stt.recognize(sample.frames())
