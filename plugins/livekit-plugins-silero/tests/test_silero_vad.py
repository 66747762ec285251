"""Silero VAD: conformance, accuracy on real speech, batching across streams, bad input."""

from __future__ import annotations

import asyncio
import importlib
import threading
import warnings

import numpy as np
import pytest
from livekit import rtc

from livekit.agents.exceptions import AudioFormatError, StreamClosedError
from livekit.agents.testing import conformance
from livekit.agents.utils.audio import duration, frames_from_pcm
from livekit.agents.vad import VADEvent, VADEventType
from livekit.plugins.silero import VAD, inference_stats
from livekit.plugins.silero import vad as silero_vad
from livekit.plugins.silero._inference import MODEL_PATH, _create_session, shared_model

UTTERANCES = [
    "Hello there, how are you today?",
    "I am fine, thank you very much.",
    "The weather is nice.",
]
TOLERANCE = 0.15


def stereo(frames: list[rtc.AudioFrame]) -> list[rtc.AudioFrame]:
    out = []
    for f in frames:
        mono = np.frombuffer(f.data, dtype=np.int16)
        both = np.repeat(mono, 2)
        out.append(rtc.AudioFrame(both.tobytes(), f.sample_rate, 2, len(mono)))
    return out


async def run_stream(vad: VAD, frames: list[rtc.AudioFrame]) -> list[VADEvent]:
    async with vad.stream() as stream:
        for f in frames:
            stream.push_frame(f)
        stream.end_input()
        return [e async for e in stream]


def speech_events(events: list[VADEvent]) -> list[VADEvent]:
    return [e for e in events if e.type != VADEventType.INFERENCE_DONE]


# --- conformance -------------------------------------------------------------------------------


def test_discoverable(plugin_host) -> None:
    record = conformance.check_discoverable("silero", plugin_host)
    assert record.distribution == "livekit-plugins-silero"
    conformance.check_api_compatible("silero", plugin_host)


def test_registration_imports_no_onnxruntime() -> None:
    conformance.check_light_registration("silero")


async def test_vad_contract(speech) -> None:
    await conformance.check_vad(VAD(), speech(UTTERANCES[:2]))


async def test_created_through_the_plugin_host(plugin_host, speech) -> None:
    vad = plugin_host.registry.get("vad", "silero").create(min_silence_duration=0.4)
    assert isinstance(vad, VAD)
    assert vad.options.min_silence_duration == 0.4
    await conformance.check_vad(vad, speech(UTTERANCES[:1]))


# --- accuracy on real speech -------------------------------------------------------------------


@pytest.mark.parametrize(
    "rate,channels,model_rate",
    [
        (16000, 1, 16000),
        (48000, 1, 16000),
        (48000, 2, 16000),
        (24000, 1, 16000),
        (8000, 1, 8000),
        (16000, 2, 8000),
    ],
)
async def test_boundaries_match_the_speech(speech, rate: int, channels: int, model_rate: int) -> None:
    sample = speech(UTTERANCES, sample_rate=rate, silence=1.0)
    frames = sample.frames(10)
    if channels == 2:
        frames = stereo(frames)
    events = speech_events(await run_stream(VAD(sample_rate=model_rate), frames))
    types = [e.type for e in events]
    assert types == [VADEventType.START_OF_SPEECH, VADEventType.END_OF_SPEECH] * len(UTTERANCES), types
    for (t0, t1), start, end in zip(sample.segments, events[0::2], events[1::2], strict=True):
        began = start.timestamp - start.speech_duration
        stopped = end.timestamp - end.silence_duration
        assert abs(began - t0) <= TOLERANCE, f"speech at {t0:.3f} s detected at {began:.3f} s"
        assert abs(stopped - t1) <= TOLERANCE, f"speech ending at {t1:.3f} s detected at {stopped:.3f} s"
        assert start.samples_index == round(start.timestamp * rate)
        assert abs(end.speech_duration - (t1 - t0)) <= 2 * TOLERANCE
        # the end event carries the speech, in the input's format, with its prefix padding
        assert end.frames and all(f.sample_rate == rate and f.num_channels == channels for f in end.frames)
        assert duration(end.frames) >= (t1 - t0) + 0.5 - TOLERANCE
        assert duration(start.frames) >= start.speech_duration


async def test_inference_done_per_window(speech) -> None:
    sample = speech(UTTERANCES[:1], sample_rate=16000)
    events = await run_stream(VAD(), sample.frames(10))
    probs = [e for e in events if e.type == VADEventType.INFERENCE_DONE]
    assert len(probs) == -(-len(sample.pcm) // 2 // 512)  # one per 32 ms window
    t0, t1 = sample.segments[0]
    inside = [e.probability for e in probs if t0 + 0.3 < e.timestamp < t1 - 0.3]
    outside = [e.probability for e in probs if e.timestamp < t0 - 0.1]
    assert np.mean(inside) > 0.5 > max(outside)
    assert any(e.speaking for e in probs) and not probs[0].speaking


async def test_inference_events_can_be_turned_off(speech) -> None:
    sample = speech(UTTERANCES[:2], sample_rate=16000, silence=0.8)
    full = await run_stream(VAD(), sample.frames(10))
    quiet = await run_stream(VAD(inference_events=False), sample.frames(10))
    assert not [e for e in quiet if e.type == VADEventType.INFERENCE_DONE]
    assert [(e.type, e.samples_index, e.speech_duration) for e in quiet] == [
        (e.type, e.samples_index, e.speech_duration) for e in speech_events(full)
    ]


async def test_options_change_behaviour(speech) -> None:
    sample = speech(UTTERANCES[:2], sample_rate=16000, silence=0.8)
    # 0.8 s pauses split the speech at the default min silence, not with a longer one
    default = speech_events(await run_stream(VAD(), sample.frames()))
    patient = speech_events(await run_stream(VAD(min_silence_duration=1.2), sample.frames()))
    assert len(default) == 4 and len(patient) == 2
    padded = speech_events(await run_stream(VAD(prefix_padding_duration=0.1), sample.frames()))
    assert duration(padded[1].frames) < duration(default[1].frames) - 0.3
    capped = speech_events(await run_stream(VAD(max_buffered_speech=1.0), sample.frames()))
    assert duration(capped[1].frames) == pytest.approx(1.0, abs=0.01)


# --- batching across streams ---------------------------------------------------------------------


async def test_concurrent_streams_are_batched_and_match_single_stream(speech) -> None:
    # inputs at the model rates (livekit.rtc's resampler dithers, so resampled input is not
    # bit-exact from run to run); the 8 kHz streams are batched in their own group
    cases = [
        (VAD(), speech(UTTERANCES[:1], sample_rate=16000)),
        (VAD(), speech(UTTERANCES[1:2], sample_rate=16000)),
        (VAD(sample_rate=8000), speech(UTTERANCES[2:], sample_rate=8000)),
        (VAD(), speech(UTTERANCES[:2], sample_rate=16000)),
    ]
    alone = [await run_stream(vad, s.frames()) for vad, s in cases]
    inference_stats(reset=True)
    together = await asyncio.gather(*(run_stream(vad, s.frames()) for vad, s in cases for _ in range(2)))
    stats = inference_stats()
    assert stats.max_batch > 1, f"no batch larger than one reached the model: {stats}"
    assert stats.windows == sum(
        len([e for e in ev if e.type == VADEventType.INFERENCE_DONE]) for ev in together
    )
    assert stats.calls < stats.windows
    for i, events in enumerate(together):
        ref = alone[i // 2]
        assert [e.type for e in events] == [e.type for e in ref]
        assert [e.samples_index for e in events] == [e.samples_index for e in ref]
        assert [e.probability for e in events] == [e.probability for e in ref]


def bare_model_probabilities(pcm: np.ndarray) -> list[float]:
    """The model alone, window by window over 16 kHz int16 ``pcm`` (the last window zero-padded)."""
    session = _create_session(MODEL_PATH, 1)
    x = np.concatenate([np.zeros(64), pcm / 32768.0, np.zeros(-len(pcm) % 512)]).astype(np.float32)
    state = np.zeros((2, 1, 128), np.float32)
    sr = np.array(16000, dtype=np.int64)
    probs = []
    for k in range((len(x) - 64) // 512):
        out, state = session.run(None, {"input": x[None, k * 512 : k * 512 + 576], "state": state, "sr": sr})
        probs.append(float(out[0, 0]))
    return probs


async def test_backlogs_run_as_chained_jobs_with_the_bare_models_results(speech) -> None:
    """Audio pushed faster than real time is cut into jobs of at most _MAX_WINDOWS_PER_JOB
    windows, each continuing the state of the one before; alone or batched with other
    backlogs, every window's probability is the bare model's."""
    pcm = np.frombuffer(speech(UTTERANCES, sample_rate=16000, silence=0.8).pcm, dtype=np.int16)
    pcm = np.tile(pcm, 2)  # ~3.5 jobs
    assert len(pcm) // 512 > 3 * silero_vad._MAX_WINDOWS_PER_JOB
    shifted = [np.roll(pcm, 16000 * i) for i in range(3)]
    expected = [bare_model_probabilities(p) for p in shifted]

    def probabilities(events: list[VADEvent]) -> list[float]:
        return [e.probability for e in events if e.type == VADEventType.INFERENCE_DONE]

    inference_stats(reset=True)
    alone = await run_stream(VAD(), frames_from_pcm(shifted[0].tobytes(), 16000, 1, 10))
    assert set(inference_stats().batch_sizes) == {1}
    assert probabilities(alone) == pytest.approx(expected[0], abs=1e-6)

    inference_stats(reset=True)
    together = await asyncio.gather(
        *(run_stream(VAD(), frames_from_pcm(p.tobytes(), 16000, 1, 10)) for p in shifted)
    )
    stats = inference_stats()
    assert stats.max_batch == 3
    for events, want in zip(together, expected, strict=True):
        assert probabilities(events) == pytest.approx(want, abs=1e-6)
        got = [e.samples_index for e in events if e.type == VADEventType.INFERENCE_DONE]
        assert got == [min(512 * (k + 1), len(pcm)) for k in range(len(want))]


async def test_closing_a_stream_mid_backlog_leaves_the_others_intact(speech) -> None:
    pcm = np.tile(np.frombuffer(speech(UTTERANCES, sample_rate=16000).pcm, dtype=np.int16), 2)
    frames = frames_from_pcm(pcm.tobytes(), 16000, 1, 10)
    expected = bare_model_probabilities(pcm)
    doomed, kept = VAD().stream(), VAD().stream()
    for stream in (doomed, kept):
        for f in frames:
            stream.push_frame(f)
        stream.end_input()
    async for _ in doomed:  # its first job is done, the next ones are queued or running
        break
    await doomed.aclose()
    events = [e async for e in kept]
    await kept.aclose()
    probs = [e.probability for e in events if e.type == VADEventType.INFERENCE_DONE]
    assert probs == pytest.approx(expected, abs=1e-6)
    # the model is free for new streams
    again = await run_stream(VAD(), frames[:300])
    assert len([e for e in again if e.type == VADEventType.INFERENCE_DONE]) == -(-300 * 160 // 512)


async def test_single_stream_runs_unbatched(speech) -> None:
    sample = speech(UTTERANCES[:1], sample_rate=16000)
    inference_stats(reset=True)
    await run_stream(VAD(), sample.frames())
    stats = inference_stats()
    assert stats.windows > 0 and set(stats.batch_sizes) == {1}


async def test_inference_runs_off_the_event_loop(speech) -> None:
    model = shared_model()
    session = model.session()
    threads: set[int] = set()

    class Recording:
        def run(self, *args, **kwargs):
            threads.add(threading.get_ident())
            return session.run(*args, **kwargs)

    model._session = Recording()
    try:
        await run_stream(VAD(), speech(UTTERANCES[:1]).frames())
    finally:
        model._session = session
    assert threads and threading.get_ident() not in threads


# --- bad input and lifecycle ------------------------------------------------------------------------


async def test_bad_frames_are_rejected() -> None:
    vad = VAD()
    stream = vad.stream()
    try:
        with pytest.raises(AudioFormatError, match="AudioFrame"):
            stream.push_frame(b"\x00" * 320)  # type: ignore[arg-type]
        with pytest.raises(AudioFormatError, match="AudioFrame"):
            stream.push_frame(np.zeros(160, dtype=np.float32))  # type: ignore[arg-type]
        with pytest.raises(AudioFormatError, match="empty"):
            stream.push_frame(rtc.AudioFrame(b"", 16000, 1, 0))
        with pytest.raises(AudioFormatError, match="11025"):
            stream.push_frame(rtc.AudioFrame(bytes(220), 11025, 1, 110))
        with pytest.raises(AudioFormatError, match="channel"):
            stream.push_frame(rtc.AudioFrame(bytes(160 * 2 * 6), 16000, 6, 160))
        stream.push_frame(rtc.AudioFrame(bytes(320), 16000, 1, 160))
        with pytest.raises(AudioFormatError, match="16000 Hz/1 ch"):
            stream.push_frame(rtc.AudioFrame(bytes(960), 48000, 1, 480))
        stream.end_input()
        with pytest.raises(StreamClosedError):
            stream.push_frame(rtc.AudioFrame(bytes(320), 16000, 1, 160))
        events = [e async for e in stream]
        assert events and all(e.type == VADEventType.INFERENCE_DONE for e in events)
    finally:
        await stream.aclose()
    with pytest.raises(StreamClosedError):
        stream.push_frame(rtc.AudioFrame(bytes(320), 16000, 1, 160))


@pytest.mark.parametrize(
    "options",
    [
        {"activation_threshold": 1.5},
        {"sample_rate": 48000},
        {"min_silence_duration": -1},
        {"deactivation_threshold": 0.9},
    ],
)
def test_bad_options(options) -> None:
    with pytest.raises(ValueError, match=next(iter(options))):
        VAD(**options)


async def test_input_ended_mid_speech_ends_the_speech(speech) -> None:
    sample = speech(UTTERANCES[:1], sample_rate=16000)
    t0, t1 = sample.segments[0]
    frames = sample.frames()[: int((t0 + 1.0) * 100)]
    events = speech_events(await run_stream(VAD(), frames))
    assert [e.type for e in events] == [VADEventType.START_OF_SPEECH, VADEventType.END_OF_SPEECH]
    assert events[1].frames and duration(events[1].frames) >= 1.0


async def test_closed_mid_speech_emits_end_of_speech(speech) -> None:
    sample = speech(UTTERANCES[:1], sample_rate=16000)
    t0, _ = sample.segments[0]
    stream = VAD().stream()
    for f in sample.frames()[: int((t0 + 1.0) * 100)]:
        stream.push_frame(f)
    got = []
    async for e in stream:
        if e.type == VADEventType.START_OF_SPEECH:
            got.append(e)
            break
    await asyncio.sleep(0.2)  # let the stream infer the rest of what was pushed
    await stream.aclose()
    rest = [e async for e in stream if e.type != VADEventType.INFERENCE_DONE]
    assert got and [e.type for e in rest] == [VADEventType.END_OF_SPEECH]
    assert duration(rest[0].frames) > 0.5


# --- the seed's import path ------------------------------------------------------------------------------


def test_legacy_import_path_warns_and_aliases() -> None:
    import livekit.agents.vad as agents_vad
    import livekit.plugins.vad as legacy

    legacy = importlib.reload(legacy)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        from livekit.plugins.vad import VADEventType as LegacyType
        from livekit.plugins.vad import VADPlugin
    assert VADPlugin is VAD
    assert LegacyType is agents_vad.VADEventType
    assert LegacyType.START_SPEAKING is VADEventType.START_OF_SPEECH
    messages = [str(w.message) for w in caught if issubclass(w.category, DeprecationWarning)]
    assert any("livekit.plugins.silero.VAD" in m for m in messages), messages
    assert any("livekit.agents.vad.VADEventType" in m for m in messages), messages


def test_process_exits_cleanly_while_inference_runs() -> None:
    """A worker that exits while a stream is mid-inference must exit 0, not abort inside
    onnxruntime when the interpreter shuts its threads down."""
    import subprocess
    import sys

    code = """
import asyncio
import numpy as np
from livekit import rtc
from livekit.plugins.silero import VAD

async def main():
    noise = np.random.default_rng(0).integers(-3000, 3000, 160).astype(np.int16).tobytes()
    stream = VAD().stream()
    for _ in range(30000):
        stream.push_frame(rtc.AudioFrame(noise, 16000, 1, 160))
    stream.end_input()
    await asyncio.sleep(0.3)  # the inference thread is busy with this stream now

asyncio.run(main())
"""
    for _ in range(3):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, f"exit {out.returncode}:\n{out.stderr[-2000:]}"


async def test_a_vad_stream_is_live_for_the_shared_model_from_its_start_to_its_close():
    """The model waits for the windows of live streams only (see test_silero_batch_unit.py)."""
    model_ = shared_model()
    before = model_._live
    stream = VAD().stream()
    frame = np.zeros(512, dtype=np.int16)
    stream.push_frame(rtc.AudioFrame(frame.tobytes(), 16000, 1, 512))
    for _ in range(100):
        if model_._live == before + 1:
            break
        await asyncio.sleep(0.01)
    assert model_._live == before + 1
    await stream.aclose()
    assert model_._live == before
