"""The batch grows while jobs are in flight: the streams already batched keep their
recurrent state (a bug that reset them passed every other silero test)."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from livekit.agents.utils.audio import frames_from_pcm
from livekit.agents.vad import VADEventType
from livekit.plugins.silero import VAD, inference_stats
from livekit.plugins.silero._inference import MODEL_PATH, _create_session

UTTERANCES = ["Hello there, how are you today?", "I am fine, thank you very much.", "The weather is nice."]
BACKLOGS = 8
"""As many streams as the batch's first allocation has slots: the late one makes it grow."""


def bare_model_probabilities(pcm: np.ndarray) -> list[float]:
    session = _create_session(MODEL_PATH, 1)
    x = np.concatenate([np.zeros(64), pcm / 32768.0, np.zeros(-len(pcm) % 512)]).astype(np.float32)
    state = np.zeros((2, 1, 128), np.float32)
    sr = np.array(16000, dtype=np.int64)
    probs = []
    for k in range((len(x) - 64) // 512):
        out, state = session.run(None, {"input": x[None, k * 512 : k * 512 + 576], "state": state, "sr": sr})
        probs.append(float(out[0, 0]))
    return probs


async def test_a_late_stream_grows_the_batch_without_touching_the_others(speech) -> None:
    pcm = np.tile(np.frombuffer(speech(UTTERANCES, sample_rate=16000, silence=0.8).pcm, dtype=np.int16), 2)
    inputs = [np.roll(pcm, 4000 * i) for i in range(BACKLOGS + 1)]
    expected = [bare_model_probabilities(p) for p in inputs]

    streams = [VAD().stream() for _ in range(BACKLOGS)]
    for stream, p in zip(streams, inputs, strict=False):
        for f in frames_from_pcm(p.tobytes(), 16000, 1, 10):
            stream.push_frame(f)
        stream.end_input()

    got: list[list[float]] = [[] for _ in range(BACKLOGS + 1)]
    first_results = asyncio.Event()

    async def drain(i: int, stream) -> None:
        async for ev in stream:
            if ev.type == VADEventType.INFERENCE_DONE:
                got[i].append(ev.probability)
                if all(got[:BACKLOGS]):
                    first_results.set()

    inference_stats(reset=True)
    tasks = [asyncio.create_task(drain(i, s)) for i, s in enumerate(streams)]
    # every backlog stream has results and more jobs queued: the batch is full and running
    await asyncio.wait_for(first_results.wait(), 60)
    assert all(len(g) < len(e) for g, e in zip(got, expected, strict=False)), "the backlogs finished too soon"
    late = VAD().stream()
    for f in frames_from_pcm(inputs[-1].tobytes(), 16000, 1, 10):
        late.push_frame(f)
    late.end_input()
    tasks.append(asyncio.create_task(drain(BACKLOGS, late)))
    await asyncio.wait_for(asyncio.gather(*tasks), 120)
    for s in (*streams, late):
        await s.aclose()

    assert inference_stats().max_batch == BACKLOGS + 1, inference_stats()  # the late stream joined them
    for i, (probs, want) in enumerate(zip(got, expected, strict=True)):
        assert probs == pytest.approx(want, abs=1e-6), f"stream {i} differs from the bare model"
