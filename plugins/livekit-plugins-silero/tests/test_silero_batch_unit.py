"""The batch bookkeeping of the shared silero model, round by round: every stream in a batch
must get exactly the probabilities and the recurrent state it would get alone, whatever
joins, grows or leaves the batch around it.

The model here is a small deterministic function with silero's inputs and outputs
(``input [B, context + window]``, ``state [2, B, 128]``, ``sr``), in which every output
depends on every input sample, the state and the rate, so any window, slot or state mix-up
shows; test_silero_batch_growth.py shows the same rules with the real ONNX model."""

from __future__ import annotations

import asyncio
import time
import types
from collections import Counter

import numpy as np
import pytest

from livekit.plugins.silero._inference import (
    CONTEXT_SAMPLES,
    WINDOW_SAMPLES,
    InferenceJob,
    InferenceStats,
    SharedModel,
    _Batch,
    _windows,
    new_state,
)

RATE = 16000
W, C = WINDOW_SAMPLES[RATE], CONTEXT_SAMPLES[RATE]
SR = np.array(RATE, dtype=np.int64)
_MIX = np.random.default_rng(7).standard_normal((C + W, 128)).astype(np.float32) / 40


def model(_outputs, feeds):
    """Silero's signature; the probability and the next state depend on all of the input."""
    x, state, sr = feeds["input"], feeds["state"], feeds["sr"]
    assert x.shape[1] == C + W and state.shape == (2, len(x), 128)
    h = np.tanh(x @ _MIX + 0.7 * state[0] - 0.2 * state[1] + float(sr) / 1e5)
    new = np.stack([h, 0.5 * state[0] + 0.5 * h]).astype(np.float32)
    out = (h.mean(axis=1, keepdims=True) + 0.01 * x.sum(axis=1, keepdims=True)).astype(np.float32)
    return out, new


def audio(seed: int, windows: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(-20000, 20000, windows * W).astype(np.int16)


def context(seed: int) -> np.ndarray:
    return np.random.default_rng(1000 + seed).standard_normal(C).astype(np.float32) * 0.1


def state(seed: int) -> np.ndarray:
    return np.random.default_rng(2000 + seed).standard_normal((2, 1, 128)).astype(np.float32)


def alone(seed: int, windows: int, start: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The probabilities and the final state of the stream run window by window, alone."""
    x = np.concatenate([context(seed), audio(seed, windows) / np.float32(32768)]).astype(np.float32)
    st = state(seed) if start is None else start
    probs = []
    for k in range(windows):
        out, st = model(None, {"input": x[None, k * W : k * W + C + W], "state": st, "sr": SR})
        probs.append(out[0, 0])
    return np.array(probs, dtype=np.float32), st


def job(seed: int, windows: int, pieces: int = 1) -> InferenceJob:
    a = audio(seed, windows)
    return InferenceJob(RATE, np.array_split(a, pieces), context(seed), state(seed))


def run_out(batch: _Batch, stats: InferenceStats, rounds: int | None = None, run=model) -> list[list[InferenceJob]]:
    """Rounds until the batch is empty (or ``rounds``): the jobs finished in each."""
    done = []
    while batch.jobs and (rounds is None or len(done) < rounds):
        done.append(batch.round(run, stats))
    return done


def check(j: InferenceJob, seed: int, windows: int) -> None:
    probs, st = alone(seed, windows)
    assert j.next == windows and j.slot == -1
    np.testing.assert_allclose(j.probs, probs, rtol=0, atol=1e-6)
    np.testing.assert_allclose(j.state, st, rtol=0, atol=1e-6)


async def test_one_job_alone_in_a_batch():
    batch, stats = _Batch(RATE, SR), InferenceStats()
    j = job(1, 4, pieces=3)
    batch.add(j)
    assert j.slot >= 0 and batch.jobs == [j]
    assert batch.probs.dtype == batch.samples.dtype == batch.states.dtype == np.float32
    t0 = time.perf_counter()
    done = run_out(batch, stats)
    wall = time.perf_counter() - t0
    assert done == [[], [], [], [j]]
    assert 0 < stats.seconds <= wall  # the model's time, measured inside the rounds
    check(j, 1, 4)
    assert (stats.calls, stats.windows, dict(stats.batch_sizes), stats.max_batch) == (4, 4, {1: 4}, 1)
    assert stats.seconds > 0 and j.seconds == pytest.approx(stats.seconds, rel=1e-9)
    assert batch.jobs == [] and len(batch.slots) == len(batch.pos) == len(batch.ends) == 0


async def test_jobs_of_different_lengths_finish_in_their_own_rounds():
    batch, stats = _Batch(RATE, SR), InferenceStats()
    lengths = {1: 3, 2: 5, 3: 1, 4: 4, 5: 3}
    jobs = {s: job(s, n, pieces=s) for s, n in lengths.items()}
    for j in jobs.values():
        batch.add(j)
    assert len({j.slot for j in jobs.values()}) == len(jobs)  # a slot each
    done = run_out(batch, stats)
    assert [sorted(d, key=id) for d in done] == [
        sorted(d, key=id) for d in ([jobs[3]], [], [jobs[1], jobs[5]], [jobs[4]], [jobs[2]])
    ]
    for s, n in lengths.items():
        check(jobs[s], s, n)
    assert dict(stats.batch_sizes) == {5: 1, 4: 2, 2: 1, 1: 1}
    assert (stats.calls, stats.windows, stats.max_batch) == (5, 16, 5)
    # each round's time is shared by the jobs in it
    assert sum(j.seconds for j in jobs.values()) == pytest.approx(stats.seconds, rel=1e-9)


async def test_a_job_joining_mid_flight_leaves_the_others_alone():
    batch, stats = _Batch(RATE, SR), InferenceStats()
    first = [job(s, 6) for s in range(3)]
    for j in first:
        batch.add(j)
    assert run_out(batch, stats, rounds=2) == [[], []]
    late = job(9, 2)
    batch.add(late)  # the running states are stored back before the slots change
    done = run_out(batch, stats)
    assert done[:3] == [[], [late], []] and len(done) == 4
    assert sorted(map(id, done[3])) == sorted(map(id, first))
    for s, j in enumerate(first):
        check(j, s, 6)
    check(late, 9, 2)
    assert late.joined > 0  # it joined a running batch: its share starts then
    assert sum(j.seconds for j in [*first, late]) == pytest.approx(stats.seconds, rel=1e-9)


async def test_the_batch_grows_past_its_first_slots_without_touching_the_batched_states():
    batch, stats = _Batch(RATE, SR), InferenceStats()
    backlog = [job(s, 8) for s in range(8)]
    for j in backlog:
        batch.add(j)
    first_slots = len(batch.samples)
    assert first_slots == 8 and batch.free == []
    run_out(batch, stats, rounds=3)
    late = job(20, 5)
    batch.add(late)  # no slot is free: the batch doubles
    assert len(batch.samples) == 16 and len(batch.free) == 7
    run_out(batch, stats)
    for s, j in enumerate(backlog):
        check(j, s, 8)
    check(late, 20, 5)
    assert stats.max_batch == 9


async def test_a_longer_job_lengthens_the_slots_and_keeps_the_running_ones():
    batch, stats = _Batch(RATE, SR), InferenceStats()
    short = [job(s, 3) for s in range(2)]
    for j in short:
        batch.add(j)
    assert batch.capacity == 3
    run_out(batch, stats, rounds=1)
    long = job(30, 7)
    batch.add(long)  # free slots remain: the same number of slots, each longer
    assert (len(batch.samples), batch.capacity) == (8, 7)
    run_out(batch, stats)
    for s, j in enumerate(short):
        check(j, s, 3)
    check(long, 30, 7)


async def test_finished_slots_are_reused():
    batch, stats = _Batch(RATE, SR), InferenceStats()
    a, b = job(1, 1), job(2, 2)
    batch.add(a)
    batch.add(b)
    slot_a = a.slot
    assert run_out(batch, stats, rounds=1) == [[a]]
    assert slot_a in batch.free
    c = job(3, 2)
    batch.add(c)
    assert c.slot == slot_a
    run_out(batch, stats)
    check(b, 2, 2)
    check(c, 3, 2)


async def test_a_job_taken_out_half_way_keeps_its_progress_and_continues_elsewhere():
    """The last job of a batch leaves it to run alone (SharedModel._step): it takes the
    probabilities and the state of the windows it ran, and may join a batch again."""
    batch, stats = _Batch(RATE, SR), InferenceStats()
    keep, leave = job(1, 5), job(2, 6)
    batch.add(keep)
    batch.add(leave)
    run_out(batch, stats, rounds=2)
    [gone] = batch.remove([1])
    assert gone is leave and leave.slot == -1 and leave.next == 2
    probs, st = alone(2, 2)
    np.testing.assert_allclose(leave.probs[:2], probs, rtol=0, atol=1e-6)
    np.testing.assert_allclose(leave.state, st, rtol=0, atol=1e-6)
    assert batch.jobs == [keep] and batch.left == 3
    other = _Batch(RATE, SR)
    other.add(leave)  # joins another batch at its next window
    assert int(other.pos[0]) == 2 and other.left == 4
    run_out(other, stats)
    run_out(batch, stats)
    check(leave, 2, 6)
    check(keep, 1, 5)
    # the job's time in both batches adds up
    assert leave.seconds + keep.seconds == pytest.approx(stats.seconds, rel=1e-9)


async def test_removing_several_jobs_at_once():
    batch, stats = _Batch(RATE, SR), InferenceStats()
    jobs = [job(s, 4 + s) for s in range(4)]
    for j in jobs:
        batch.add(j)
    run_out(batch, stats, rounds=1)
    gone = batch.remove([0, 2])
    assert gone == [jobs[0], jobs[2]] and batch.jobs == [jobs[1], jobs[3]]
    assert [j.next for j in gone] == [1, 1]
    assert batch.left == 4  # jobs[1] has 5 windows, 1 done
    for j in gone:
        batch.add(j)
    run_out(batch, stats)
    for s, j in enumerate(jobs):
        check(j, s, 4 + s)


async def test_the_8khz_model_rate_uses_its_own_window_and_rate():
    rate = 8000
    w, c = WINDOW_SAMPLES[rate], CONTEXT_SAMPLES[rate]
    sr = np.array(rate, dtype=np.int64)
    seen = []

    def small(_o, feeds):
        seen.append((feeds["input"].shape, int(feeds["sr"])))
        x = feeds["input"]
        return x[:, -1:] + x[:, :1], feeds["state"]

    batch, stats = _Batch(rate, sr), InferenceStats()
    a = np.arange(2 * w, dtype=np.int16)
    ctx = np.full(c, 0.5, dtype=np.float32)
    j = InferenceJob(rate, [a], ctx, new_state())
    batch.add(j)
    run_out(batch, stats, run=small)
    assert seen == [((1, c + w), rate)] * 2
    scale = np.float32(1 / 32768)
    assert j.probs.tolist() == pytest.approx([(w - 1) * scale + 0.5, (2 * w - 1) * scale + (w - c) * scale], abs=1e-7)


async def test_a_job_takes_whole_windows_and_its_context():
    both = "an InferenceJob starts from a state or after another job, not both"
    with pytest.raises(ValueError) as err:
        InferenceJob(RATE, [audio(1, 1)], context(1), state(1), after=job(2, 1))
    assert str(err.value) == both
    with pytest.raises(ValueError) as err:
        InferenceJob(RATE, [audio(1, 1)], context(1), None)
    assert str(err.value) == both
    for bad in ([audio(1, 1)[:-1]], [np.zeros(0, np.int16)], []):
        with pytest.raises(ValueError, match="an InferenceJob at 16000 Hz takes whole windows and the context"):
            InferenceJob(RATE, bad, context(1), state(1))
    with pytest.raises(ValueError, match="takes whole windows and the context"):
        InferenceJob(RATE, [audio(1, 1)], context(1)[:-1], state(1))
    before = job(3, 1)
    j = InferenceJob(RATE, [audio(1, 1)[:100], audio(1, 1)[100:], audio(2, 1)], context(1), None, after=before)
    assert (j.count, j.next, j.slot, j.state, j.finished, j.successor, j.seconds) == (2, 0, -1, None, False, None, 0.0)
    assert j.rate == RATE and j.after is before  # the inference thread takes its state from `before`
    assert j.probs.shape == (2,) and j.probs.dtype == np.float32 and not j.future.done()


async def test_fill_writes_the_context_then_the_scaled_audio():
    a = audio(4, 2)
    j = InferenceJob(RATE, [a[:300], a[300:]], context(4), state(4))
    out = np.full(C + 2 * W + 5, 7.0, dtype=np.float32)
    j.fill(out)
    np.testing.assert_array_equal(out[:C], context(4))
    np.testing.assert_array_equal(out[C : C + 2 * W], a.astype(np.float32) / np.float32(32768))
    assert out[C + 2 * W :].tolist() == [7.0] * 5


def test_windows_overlap_by_the_context():
    samples = np.arange(2 * (C + 3 * W), dtype=np.float32).reshape(2, -1)
    views = _windows(samples, RATE, 3)
    assert views.shape == (2, 3, C + W)
    for s in range(2):
        for k in range(3):
            np.testing.assert_array_equal(views[s, k], samples[s, k * W : k * W + C + W])
    assert not views.flags.writeable
    flat = np.arange(C + 2 * W, dtype=np.float32)  # one stream: no leading axis
    one = _windows(flat, RATE, 2)
    assert one.shape == (2, C + W)
    np.testing.assert_array_equal(one[1], flat[W : W + C + W])
    assert new_state().shape == (2, 1, 128) and not new_state().any() and new_state().dtype == np.float32
    assert InferenceStats().max_batch == 0


async def test_a_job_that_fits_the_slots_reuses_them():
    batch, stats = _Batch(RATE, SR), InferenceStats()
    batch.add(job(1, 4))
    samples, capacity = batch.samples, batch.capacity
    batch.add(job(2, 4))  # as long as the slots and a slot is free: no new memory
    assert batch.samples is samples and batch.capacity == capacity
    run_out(batch, stats)


# --- gathering: the idle model waits a little for the windows of the other live streams, so
# that they share one call (after an idle gap a call costs about as much as four windows in
# one); a lone stream, or one whose companions send nothing, never waits long

LONG = 30.0  # a gather no test could wait out


def fake_model(gather: float, streams: int) -> SharedModel:
    m = SharedModel(gather=gather)
    m._session = types.SimpleNamespace(run=model)  # the deterministic stand-in of the unit tests
    for _ in range(streams):
        m.attach()
    return m


async def test_windows_of_two_live_streams_run_in_one_call():
    m = fake_model(gather=LONG, streams=2)
    try:
        first = m.submit(job(1, 1))
        await asyncio.sleep(0.05)
        assert not first.done(), "the model ran the first window without waiting for the other stream's"
        second = m.submit(job(2, 1))
        a, b = await asyncio.wait_for(asyncio.gather(first, second), 5)
        assert m.stats.batch_sizes == Counter({2: 1})
        check(a, 1, 1)
        check(b, 2, 1)
    finally:
        m.close()


async def test_a_window_waits_no_longer_than_the_gather_time():
    m = fake_model(gather=0.05, streams=2)  # the other live stream sends nothing
    try:
        done = await asyncio.wait_for(m.submit(job(1, 1)), 5)
        check(done, 1, 1)
        assert m.stats.batch_sizes == Counter({1: 1})
    finally:
        m.close()


async def test_a_lone_stream_never_waits():
    for streams, detached in ((1, 0), (2, 1)):  # alone, or alone again after the other left
        m = fake_model(gather=LONG, streams=streams)
        for _ in range(detached):
            m.detach()
        try:
            check(await asyncio.wait_for(m.submit(job(3, 2)), 5), 3, 2)
        finally:
            m.close()
