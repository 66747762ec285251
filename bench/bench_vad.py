"""Silero VAD CPU cost, beside the bare ONNX model over the same audio in the same process.

    python bench/bench_vad.py [--seconds 60] [--streams 32] [--repeat 3]

(1) One stream: 60 s of espeak speech, 16 kHz mono, pushed as 10 ms frames through the
    public async API (``VAD().stream()``), events consumed. Baseline: the bare model
    (one onnxruntime session, one intra-op thread, like the plugin's) run window by window
    over the same audio. Target: at most 1.3x.
(2) N concurrent streams in one process (N=32): CPU per stream beside the single-stream
    bare model. Target: at most 0.5x.

Two ways to feed the streams are measured: "burst" pushes all the audio at once (as fast
as a file is read), "live" pushes one 10 ms frame per tick and yields to the event loop
between ticks (each window then reaches the model on its own, as in a live call, only
faster than real time). CPU is process CPU time (``time.process_time``: every thread).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import numpy as np
from livekit import rtc

from livekit.agents.testing.speech import speech
from livekit.agents.utils.audio import frames_from_pcm
from livekit.agents.vad import VADEventType
from livekit.plugins.silero import VAD, inference_stats
from livekit.plugins.silero._inference import MODEL_PATH, _create_session

RATE = 16000
SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Voice activity detection finds where people speak in a stream of audio.",
    "We measure how much processor time the detector needs for one minute of speech.",
    "Each stream keeps its own state while the model is shared by every stream.",
    "When many calls run at once their windows are batched into a single model call.",
    "Silence between sentences lets the detector end one utterance and start the next.",
]


def audio(seconds: float) -> np.ndarray:
    sample = speech(SENTENCES, sample_rate=RATE, silence=0.8)
    pcm = np.frombuffer(sample.pcm, dtype=np.int16)
    reps = int(np.ceil(seconds * RATE / len(pcm)))
    return np.tile(pcm, reps)[: int(seconds * RATE)]


def bare_model(pcm: np.ndarray, batch: int = 1, gap: float = 0.0) -> float:
    """CPU seconds of the model alone over ``pcm`` (as ``batch`` identical streams);
    ``gap`` seconds of idle between windows, as live audio arrives."""
    session = _create_session(MODEL_PATH, 1)
    sr = np.array(RATE, dtype=np.int64)
    x = pcm.astype(np.float32) / 32768.0
    n = len(x) // 512
    x = np.concatenate([np.zeros(64, np.float32), x[: n * 512]])
    state = np.zeros((2, batch, 128), np.float32)
    t0 = time.process_time()
    for k in range(n):
        w = x[k * 512 : k * 512 + 576]
        inp = w[None, :] if batch == 1 else np.repeat(w[None, :], batch, axis=0)
        _, state = session.run(None, {"input": inp, "state": state, "sr": sr})
        if gap:
            time.sleep(gap)
    return time.process_time() - t0


async def consume(stream) -> int:
    speech_events = 0
    async for ev in stream:
        if ev.type != VADEventType.INFERENCE_DONE:
            speech_events += 1
    return speech_events


async def plugin(vad: VAD, frame_lists: list[list[rtc.AudioFrame]], live: bool) -> tuple[float, int]:
    streams = [vad.stream() for _ in frame_lists]
    consumers = [asyncio.create_task(consume(s)) for s in streams]
    t0 = time.process_time()
    if live:
        for i in range(len(frame_lists[0])):
            for s, frames in zip(streams, frame_lists, strict=True):
                s.push_frame(frames[i])
            await asyncio.sleep(0.0005 if len(streams) == 1 else 0.001)
    else:
        for s, frames in zip(streams, frame_lists, strict=True):
            for f in frames:
                s.push_frame(f)
    for s in streams:
        s.end_input()
    events = await asyncio.gather(*consumers)
    cpu = time.process_time() - t0
    for s in streams:
        await s.aclose()
    return cpu, sum(events)


async def feeding_loop_only(n_frames: int, n_streams: int) -> float:
    """CPU of the "live" feeding loop itself (its ticks), with no stream: subtracted below."""
    t0 = time.process_time()
    for _ in range(n_frames):
        await asyncio.sleep(0.0005 if n_streams == 1 else 0.001)
    return time.process_time() - t0


def median(xs: list[float]) -> float:
    return statistics.median(xs)


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--streams", type=int, default=32)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    pcm = audio(args.seconds)
    frames = frames_from_pcm(pcm.tobytes(), RATE, 1, 10)
    vad = VAD()
    print(f"audio: {args.seconds:.0f} s of espeak speech, {RATE} Hz mono, {len(frames)} frames of 10 ms")

    bare = median([bare_model(pcm) for _ in range(args.repeat)])
    print(f"\nbaseline  bare ONNX model, 1 stream, intra-op 1:            {bare:6.3f} s CPU")

    print("\n(1) one stream through the public async API   [target <= 1.30x]")
    for live in (False, True):
        runs = [await plugin(vad, [frames], live) for _ in range(args.repeat)]
        cpu = median([r[0] for r in runs])
        print(
            f"    {'live ' if live else 'burst'}  {cpu:6.3f} s CPU   {cpu / bare:5.2f}x the bare model   ({runs[0][1]} speech events)"
        )
    harness = median([await feeding_loop_only(len(frames), 1) for _ in range(args.repeat)])
    net = cpu - harness
    print(
        f"    live, net of the feeding loop's own {harness:.3f} s: {net:6.3f} s CPU   {net / bare:5.2f}x the bare model"
    )
    # A process that wakes up for every window pays for it (cold caches, and on VMs tick
    # accounting): the fair baseline of the live figure is the bare model at the same cadence.
    bare_live = median([bare_model(pcm, gap=0.0016) for _ in range(args.repeat)])
    print(
        f"    baseline  bare model at the live cadence (a window every 1.6 ms): {bare_live:6.3f} s CPU;"
        f" live net is {net / bare_live:5.2f}x that"
    )

    n = args.streams
    shift = len(frames) // n
    lists = [frames[i * shift :] + frames[: i * shift] for i in range(n)]
    bare_batched = median([bare_model(pcm, batch=n) / n for _ in range(args.repeat)])
    print(f"\n(2) {n} concurrent streams, CPU per stream   [target <= 0.50x the single-stream bare model]")
    print(
        f"    reference  bare model batched {n}-wide: {bare_batched:6.3f} s per stream  {bare_batched / bare:5.2f}x"
    )
    quiet = VAD(inference_events=False)
    for live, detector, label in ((False, vad, "burst"), (False, quiet, "burst, start/end events only"), (True, vad, "live")):
        inference_stats(reset=True)
        runs = [(await plugin(detector, lists, live))[0] / n for _ in range(args.repeat)]
        stats = inference_stats()
        per = median(runs)
        print(
            f"    {label:<30} {per:6.3f} s CPU per stream   {per / bare:5.2f}x the bare model   "
            f"(median of {len(runs)}; first, cold run {runs[0] / bare:.2f}x; "
            f"mean batch {stats.windows / max(1, stats.calls):.1f}, largest {stats.max_batch})"
        )
    harness = await feeding_loop_only(len(frames), n) / n
    net = per - harness
    print(
        f"    live, net of the feeding loop's own {harness:.3f} s per stream: {net:6.3f} s CPU per stream   {net / bare:5.2f}x"
    )


if __name__ == "__main__":
    asyncio.run(main())
