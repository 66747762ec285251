"""Deepgram behaviours a silent bug would break: replay across several reconnects,
UtteranceEnd as the only end of speech, Retry-After as an HTTP-date; and the fake
following Deepgram's documented parameters."""

from __future__ import annotations

import logging
import re

import pytest

from livekit.agents.stt import SpeechEventType as T
from livekit.agents.testing.loopback import http_date
from livekit.agents.utils.retry import RetryOptions
from livekit.plugins.deepgram import STT
from livekit.plugins.deepgram.testing import Fault

FAST = RetryOptions(max_attempts=3, base_delay=0.05, max_delay=1.0, timeout=5.0)
TWO = ["Hello there, how are you?", "I am fine, thank you."]
THREE = [*TWO, "See you again tomorrow."]


def make(fake, **kw):
    kw.setdefault("retry", FAST)
    return STT(api_key=fake.api_key, base_url=fake.base_url, **kw)


async def run_stream(stt, frames):
    stream = stt.stream()
    try:
        for f in frames:
            stream.push_frame(f)
        stream.end_input()
        return [e async for e in stream]
    finally:
        await stream.aclose()


def covered_bytes(session, rate=16000):
    """Bytes of the session's audio its last final result covers (session-relative)."""
    last = [m for m in session.sent if m["type"] == "Results" and m["is_final"]][-1]
    return round((last["start"] + last["duration"]) * rate) * 2


async def test_replay_after_a_second_reconnect_neither_loses_nor_doubles(fake, speech):
    sample = speech(THREE)
    fake.expect(sample)
    # the first drop inside the second utterance; the second (of the replayed session)
    # inside the third: the second session's finals must drop audio at global offsets
    fake.script(Fault.close(after_seconds=3.6), Fault.close(after_seconds=3.5))
    async with make(fake) as stt:
        events = await run_stream(stt, sample.frames())
    finals = [e for e in events if e.type == T.FINAL_TRANSCRIPT]
    assert [e.text for e in finals] == THREE
    for ev, (t0, t1) in zip(finals, sample.segments, strict=True):
        assert ev.alternatives[0].start_time == pytest.approx(t0, abs=0.05)
        assert ev.alternatives[0].end_time == pytest.approx(t1, abs=0.05)
    first, second, third = fake.live
    assert first.closed_code == second.closed_code == 1011
    c1, c2 = covered_bytes(first), covered_bytes(second)
    assert 0 < c1 < len(first.audio) and 0 < c2 < len(second.audio)
    # each new session starts exactly where the finals of the previous one ended
    assert bytes(first.audio[:c1]) + bytes(second.audio[:c2]) + bytes(third.audio) == sample.pcm


async def test_utterance_end_is_the_only_end_of_speech_without_endpointing(fake, speech):
    sample = speech(TWO, silence=1.5)
    fake.expect(sample)
    async with make(fake, endpointing_ms=None) as stt:
        events = await run_stream(stt, sample.frames())
    [session] = fake.live
    assert session.params["endpointing"] == "false"
    results = [m for m in session.sent if m["type"] == "Results"]
    assert not any(m["speech_final"] for m in results)  # Deepgram: no pause detection
    ends = [i for i, m in enumerate(session.sent) if m["type"] == "UtteranceEnd"]
    assert len(ends) >= 1
    kinds = [e.type for e in events]
    # an END_OF_SPEECH after the first utterance (from UtteranceEnd), not just at close
    first_end = kinds.index(T.END_OF_SPEECH)
    assert kinds.count(T.START_OF_SPEECH) == 2 and kinds.count(T.END_OF_SPEECH) == 2
    assert [e.text for e in events[:first_end] if e.type == T.FINAL_TRANSCRIPT] == TWO[:1]


async def test_fake_sends_no_utterance_end_unless_asked(fake, speech):
    sample = speech(TWO, silence=1.5)
    fake.expect(sample)
    async with make(fake, endpointing_ms=None, utterance_end_ms=None) as stt:
        events = await run_stream(stt, sample.frames())
    [session] = fake.live
    assert "utterance_end_ms" not in session.params
    assert not [m for m in session.sent if m["type"] == "UtteranceEnd"]
    assert not any(m.get("speech_final") for m in session.sent if m["type"] == "Results")
    # nothing ends the speech until the stream does
    kinds = [e.type for e in events]
    assert kinds.count(T.END_OF_SPEECH) == 1 and kinds[-1] == T.END_OF_SPEECH
    assert [e.text for e in events if e.type == T.FINAL_TRANSCRIPT] == TWO


async def test_utterance_end_needs_interim_results(fake, speech):
    sample = speech(TWO)
    fake.expect(sample)
    async with make(fake, interim_results=False, endpointing_ms=None) as stt:
        await run_stream(stt, sample.frames())
    [session] = fake.live
    assert "utterance_end_ms" not in session.params  # the plugin does not ask for what Deepgram refuses
    assert not [m for m in session.sent if m["type"] in ("UtteranceEnd",)]


@pytest.mark.parametrize("where", ["handshake", "recognize"])
async def test_retry_after_as_an_http_date_is_honoured(fake, speech, caplog, where):
    caplog.set_level(logging.WARNING)
    sample = speech(TWO)
    fake.expect(sample)
    fake.script(Fault.http(429, retry_after=http_date(2)))
    # backoff alone would wait 2.5-5 s; the date says at most 2 s
    async with make(fake, retry=RetryOptions(max_attempts=3, base_delay=5.0, max_delay=5.0, timeout=5.0)) as stt:
        if where == "handshake":
            events = await run_stream(stt, sample.frames())
            assert [e.text for e in events if e.type == T.FINAL_TRANSCRIPT] == TWO
        else:
            assert (await stt.recognize(sample.frames())).text == " ".join(TWO)
    assert [s.status for s in fake.sessions][:1] == [429]
    waits = [float(w) for w in re.findall(r"retrying in ([0-9.]+) s", caplog.text)]
    assert len(waits) == 1 and waits[0] <= 2.05, caplog.text
