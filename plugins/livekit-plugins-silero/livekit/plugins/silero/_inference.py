"""The process-wide Silero model: one onnxruntime session, one inference thread, batching.

Every :class:`~livekit.plugins.silero.vad.VADStream` of the process submits its complete
windows here as a job and awaits the probabilities. The inference thread runs rounds: each
round takes the next window of every active job, groups them by model rate and makes one
model call per rate with the streams' own recurrent states stacked (jobs that arrive join
at the next round, finished jobs are handed back at once). When the model is idle and a
window arrives, it waits up to :data:`GATHER_SECONDS` for the windows of the process's
other live streams, so that they share a call; a lone stream's job runs window after window
as soon as it is submitted, without waiting for company.

A stream with a backlog submits its next job while the previous one runs, naming it as the
predecessor: the next job takes over the predecessor's recurrent state (and its place in the
batch) in the round after it finishes, so the batch stays full while the stream handles the
previous results.

Inference never runs on an asyncio event loop: results go back to the submitting loop with
``call_soon_threadsafe``, one callback per loop per wake-up.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import queue
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .log import logger

MODEL_PATH = Path(__file__).parent / "resources" / "silero_vad.onnx"
"""The bundled Silero VAD ONNX model (see ``resources/MODEL.md``)."""

WINDOW_SAMPLES = {16000: 512, 8000: 256}
"""Samples per model window at each model rate."""
CONTEXT_SAMPLES = {16000: 64, 8000: 32}
"""Samples of the previous window prepended to each window."""
STATE_SHAPE = (2, 1, 128)


def new_state() -> np.ndarray:
    """A zero recurrent state for one stream."""
    return np.zeros(STATE_SHAPE, dtype=np.float32)


@dataclass
class InferenceStats:
    """What the shared model did since the process started (or the last reset)."""

    calls: int = 0
    """Model calls (``session.run``)."""
    windows: int = 0
    """Windows inferred (sum of batch sizes)."""
    batch_sizes: Counter = field(default_factory=Counter)
    """Batch size -> number of model calls of that size."""
    seconds: float = 0.0
    """Wall-clock seconds spent in the model."""

    @property
    def max_batch(self) -> int:
        return max(self.batch_sizes, default=0)


INT16_SCALE = np.float32(1.0 / 32768.0)

GATHER_SECONDS = 0.020
"""How long the idle model waits, once a window arrives, for the windows of the other live
streams of the process. Streams' windows come at unrelated moments of each 32 ms; a model
call costs much more after an idle gap (about 500 µs for one window, 120 µs a window for
eight, on the benchmark machine), so calls of several windows cost a share of lone ones.
A window waits at most this long; a lone stream never waits."""


class InferenceJob:
    """Consecutive windows of one stream: its model-rate int16 audio (whole windows) and the
    float32 context before it, with the stream's state before the first window, or the job
    of the same stream whose windows come just before (``after``).

    The audio is converted to float32 by the inference thread, straight into memory it
    reuses: a job allocates nothing the size of its audio."""

    __slots__ = (
        "rate", "audio", "context", "count", "state", "probs", "next", "loop", "future", "seconds",
        "slot", "joined", "after", "successor", "finished",
    )  # fmt: skip

    def __init__(
        self,
        rate: int,
        audio: list[np.ndarray],
        context: np.ndarray,
        state: np.ndarray | None,
        after: InferenceJob | None = None,
    ) -> None:
        if (state is None) == (after is None):
            raise ValueError("an InferenceJob starts from a state or after another job, not both")
        count, rest = divmod(sum(len(a) for a in audio), WINDOW_SAMPLES[rate])
        if rest or not count or len(context) != CONTEXT_SAMPLES[rate]:
            raise ValueError(f"an InferenceJob at {rate} Hz takes whole windows and the context")
        self.rate = rate
        self.audio = audio  # int16 arrays, count * window samples in all
        self.context = context  # float32 [context]: the samples just before the audio
        self.count = count
        self.state = state  # float32 [2, 1, 128]; replaced by the state after the last window
        self.probs = np.empty(count, dtype=np.float32)
        self.next = 0  # the next window to infer (while batched: where it joined the batch)
        self.loop = asyncio.get_running_loop()
        self.future: asyncio.Future[InferenceJob] = self.loop.create_future()
        self.seconds = 0.0
        self.slot = -1  # its slot in a _Batch, -1 when not batched
        self.joined = 0.0  # the batch's clock when it joined
        self.after = after  # the job it continues (its state is taken once that job finished)
        self.successor: InferenceJob | None = None  # inference thread only: the job continuing it
        self.finished = False  # inference thread only: its windows ran

    def fill(self, out: np.ndarray) -> None:
        """Write the context and the audio, as float32, at the start of ``out`` (1-D)."""
        i = len(self.context)
        out[:i] = self.context
        for piece in self.audio:
            np.multiply(piece, INT16_SCALE, out=out[i : i + len(piece)])
            i += len(piece)


def _windows(samples: np.ndarray, rate: int, count: int) -> np.ndarray:
    """The model windows over ``samples`` (context then audio, float32, last axis): a view
    of shape ``[..., count, context + window]``, consecutive windows overlapping by the context."""
    w, c = WINDOW_SAMPLES[rate], CONTEXT_SAMPLES[rate]
    step = samples.strides[-1]
    return np.lib.stride_tricks.as_strided(
        samples,
        shape=(*samples.shape[:-1], count, c + w),
        strides=(*samples.strides[:-1], w * step, step),
        writeable=False,
    )


class _Batch:
    """The batched jobs of one model rate. Each job owns a slot of three arrays (its samples,
    their probabilities, its state), so a round gathers its inputs with one indexing
    operation whatever the jobs, and jobs join and leave without touching the others."""

    def __init__(self, rate: int, sr: np.ndarray) -> None:
        self.rate = rate
        self.sr = sr
        self.jobs: list[InferenceJob] = []  # position in the round -> job
        self.slots = np.zeros(0, dtype=np.intp)  # position -> slot
        self.pos = np.zeros(0, dtype=np.intp)  # position -> the window it runs next
        self.ends = np.zeros(0, dtype=np.intp)  # position -> its number of windows
        self.left = 0  # rounds until the first job finishes
        self.clock = 0.0  # model seconds per window so far (a job's share of each round)
        self.live: np.ndarray | None = None  # the state of the jobs, in round order, if not in `states`
        self.capacity = 0  # windows per slot
        self.samples = np.empty((0, 0), dtype=np.float32)  # slot -> context + audio
        self.windows = _windows(self.samples, rate, 0)  # slot -> [window -> samples] (a view)
        self.probs = np.empty((0, 0), dtype=np.float32)
        self.states = np.empty((2, 0, 128), dtype=np.float32)
        self.free: list[int] = []

    def _settle(self) -> None:
        """Store the live state back in the slots (before the jobs change)."""
        if self.live is not None:
            self.states[:, self.slots] = self.live
            self.live = None

    def add(self, job: InferenceJob) -> None:
        self._settle()
        n = job.count
        if not self.free or n > self.capacity:
            self._grow(max(n, self.capacity))
        slot = self.free.pop()
        job.fill(self.samples[slot])
        self.states[:, slot] = job.state[:, 0]
        job.slot, job.joined = slot, self.clock
        self.jobs.append(job)
        self.slots = np.append(self.slots, slot)
        self.pos = np.append(self.pos, job.next)
        self.ends = np.append(self.ends, n)
        remaining = n - job.next
        self.left = remaining if len(self.jobs) == 1 else min(self.left, remaining)

    def _grow(self, capacity: int) -> None:
        """More slots (when none is free) or longer ones (for a longer job)."""
        old = len(self.samples)
        count = max(2 * old, 8) if not self.free else old
        size = CONTEXT_SAMPLES[self.rate] + capacity * WINDOW_SAMPLES[self.rate]
        samples = np.empty((count, size), dtype=np.float32)
        probs = np.empty((count, capacity), dtype=np.float32)
        states = np.empty((2, count, 128), dtype=np.float32)
        samples[:old, : self.samples.shape[1]] = self.samples
        probs[:old, : self.capacity] = self.probs
        states[:, :old] = self.states
        self.samples, self.probs, self.states, self.capacity = samples, probs, states, capacity
        self.windows = _windows(samples, self.rate, capacity)
        self.free.extend(range(count - 1, old - 1, -1))

    def remove(self, positions: list[int]) -> list[InferenceJob]:
        """Take the jobs at ``positions`` out, with their probabilities and states."""
        self._settle()
        gone = [self.jobs[i] for i in positions]
        for job, i in zip(gone, positions, strict=True):
            k = int(self.pos[i])
            slot = job.slot
            job.probs[job.next : k] = self.probs[slot, job.next : k]
            job.state = self.states[:, slot : slot + 1].copy()
            job.seconds += self.clock - job.joined
            job.next, job.slot = k, -1
            self.free.append(slot)
        keep = np.ones(len(self.jobs), dtype=bool)
        keep[positions] = False
        self.jobs = [j for j, kept in zip(self.jobs, keep.tolist(), strict=True) if kept]
        self.slots, self.pos, self.ends = self.slots[keep], self.pos[keep], self.ends[keep]
        if self.jobs:
            self.left = int((self.ends - self.pos).min())
        return gone

    def round(self, run: Any, stats: InferenceStats) -> list[InferenceJob]:
        """One model call over the next window of every job; returns the finished jobs."""
        t0 = time.perf_counter()
        slots, pos = self.slots, self.pos
        state = self.live if self.live is not None else self.states[:, slots]
        out, self.live = run(None, {"input": self.windows[slots, pos], "state": state, "sr": self.sr})
        self.probs[slots, pos] = out[:, 0]
        pos += 1
        elapsed = time.perf_counter() - t0
        width = len(slots)
        self.clock += elapsed / width
        stats.calls += 1
        stats.windows += width
        stats.batch_sizes[width] += 1
        stats.seconds += elapsed
        self.left -= 1
        if self.left:
            return []
        return self.remove(np.flatnonzero(pos == self.ends).tolist())


class SharedModel:
    """One onnxruntime session and the thread that runs it."""

    def __init__(self, model_path: Path = MODEL_PATH, intra_op_threads: int = 1, gather: float = GATHER_SECONDS) -> None:
        self.model_path = model_path
        self.intra_op_threads = intra_op_threads
        self.gather = gather
        """Seconds the idle model waits for the windows of other live streams (see
        :data:`GATHER_SECONDS`)."""
        self._live = 0  # streams attached (that submit a window every window's time)
        self._live_lock = threading.Lock()
        self.stats = InferenceStats()
        self._queue: queue.SimpleQueue[InferenceJob | None] = queue.SimpleQueue()  # None: stop
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        # rate -> its batched jobs; kept while empty, so that its memory is reused (fresh
        # memory costs a page fault per 4 KiB on first touch)
        self._batches: dict[int, _Batch] = {}
        self._loner: InferenceJob | None = None  # the job that ran alone last, unfinished
        self._lone = np.empty(0, dtype=np.float32)  # the lone job's samples (reused)
        self._session: Any = None
        self._session_lock = threading.Lock()
        self._rates: dict[int, np.ndarray] = {r: np.array(r, dtype=np.int64) for r in WINDOW_SAMPLES}

    # --- session ---------------------------------------------------------------------------

    def session(self) -> Any:
        """The onnxruntime session, created on first use."""
        if self._session is None:
            with self._session_lock:
                if self._session is None:
                    self._session = _create_session(self.model_path, self.intra_op_threads)
        return self._session

    # --- submitting (event loop side) -----------------------------------------------------

    def attach(self) -> None:
        """A stream starts submitting its windows (as they arrive, one window's time apart)."""
        with self._live_lock:
            self._live += 1

    def detach(self) -> None:
        """A stream submits no more."""
        with self._live_lock:
            self._live -= 1

    def submit(self, job: InferenceJob) -> asyncio.Future[InferenceJob]:
        """Queue ``job``; the future resolves (on the job's loop) once its windows ran."""
        self._queue.put(job)
        if self._thread is None:
            with self._start_lock:
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._serve, name="silero-vad-inference", daemon=True
                    )
                    self._thread.start()
                    atexit.register(self.close)
        return job.future

    def close(self, timeout: float = 5.0) -> None:
        """Stop the inference thread after its current model call (runs at exit: a
        thread killed inside onnxruntime at interpreter shutdown aborts the process)."""
        thread = self._thread
        if thread is None or not thread.is_alive():
            return
        self._queue.put(None)
        thread.join(timeout)

    # --- the inference thread -------------------------------------------------------------

    def _serve(self) -> None:
        _name_os_thread("silero-vad")  # in top -H and per-thread CPU figures
        active: dict[InferenceJob, None] = {}  # insertion-ordered set
        joined: list[InferenceJob] = []  # jobs that join the next round
        while True:
            if not active:
                job = self._queue.get()
                if job is None:
                    return
                self._arrive(job, active, joined)
                if not self._gather(active, joined):
                    return
            while True:  # every job already waiting joins the next round
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    return
                self._arrive(job, active, joined)
            try:
                finished = self._step(active, joined)
            except BaseException as exc:  # handed to every waiting stream
                logger.exception("silero inference failed")
                self._batches.clear()
                self._loner = None
                waiting = list(active)
                for job in list(waiting):
                    while job.successor is not None:
                        job = job.successor
                        waiting.append(job)
                _send(waiting, exc)
                active, joined = {}, []
                continue
            joined = []
            if finished:
                for job in finished:
                    del active[job]
                    job.finished = True
                    successor = job.successor
                    if successor is not None:  # it takes over in the next round
                        job.successor = None
                        successor.state = job.state
                        active[successor] = None
                        joined.append(successor)
                _send(finished, None)

    def _gather(self, active: dict[InferenceJob, None], joined: list[InferenceJob]) -> bool:
        """The model was idle and a window came: wait up to ``gather`` seconds for the
        windows of the other live streams, so that they run in one call; False: stop."""
        deadline = time.monotonic() + self.gather
        while len(active) < self._live:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                job = self._queue.get(timeout=left)
            except queue.Empty:
                break
            if job is None:
                return False
            self._arrive(job, active, joined)
        return True

    @staticmethod
    def _arrive(job: InferenceJob, active: dict[InferenceJob, None], joined: list[InferenceJob]) -> None:
        after = job.after
        job.after = None
        if after is not None and not after.finished:
            after.successor = job  # waits for its predecessor's state
            return
        if after is not None:
            job.state = after.state
        active[job] = None
        joined.append(job)

    def _step(self, active: dict[InferenceJob, None], joined: list[InferenceJob]) -> list[InferenceJob]:
        """Run one round: the next window of every active job, one model call per rate.

        A lone job runs window after window until another job arrives, without the
        bookkeeping of a batch."""
        run = self.session().run
        stats = self.stats
        if len(active) == 1:
            job = next(iter(active))
            if job.slot >= 0:  # the last of a batch: it leaves the batch
                self._batches[job.rate].remove([0])
            sr = self._rates[job.rate]
            samples = self._lone_samples(job)
            W, size = WINDOW_SAMPLES[job.rate], WINDOW_SAMPLES[job.rate] + CONTEXT_SAMPLES[job.rate]
            probs, state, k, n = job.probs, job.state, job.next, job.count
            t0 = time.perf_counter()
            start = k
            while k < n:
                window = samples[None, k * W : k * W + size]
                out, state = run(None, {"input": window, "state": state, "sr": sr})
                probs[k] = out[0, 0]
                k += 1
                if not self._queue.empty():
                    break
            job.state, job.next = state, k
            elapsed = time.perf_counter() - t0
            job.seconds += elapsed
            stats.seconds += elapsed
            stats.calls += k - start
            stats.windows += k - start
            stats.batch_sizes[1] += k - start
            self._loner = job if k < n else None
            return [job] if k == n else []
        batches = self._batches
        loner, self._loner = self._loner, None
        if loner is not None and loner.slot < 0:
            self._batch(loner.rate).add(loner)
        finished: list[InferenceJob] = []
        for job in joined:
            if job.next < job.count:
                self._batch(job.rate).add(job)
            else:
                finished.append(job)
        for batch in batches.values():
            if batch.jobs:
                finished += batch.round(run, stats)
        return finished

    def _lone_samples(self, job: InferenceJob) -> np.ndarray:
        """The samples of a job that runs alone (context first), in a buffer the thread reuses."""
        size = len(job.context) + job.count * WINDOW_SAMPLES[job.rate]
        if len(self._lone) < size:
            self._lone = np.empty(max(size, 2 * len(self._lone)), dtype=np.float32)
        job.fill(self._lone)
        return self._lone

    def _batch(self, rate: int) -> _Batch:
        batch = self._batches.get(rate)
        if batch is None:
            batch = self._batches[rate] = _Batch(rate, self._rates[rate])
        return batch


def _name_os_thread(name: str) -> None:
    """Give the calling thread an OS-level name (Linux; elsewhere nothing)."""
    try:
        import ctypes

        ctypes.CDLL(None).prctl(15, name.encode()[:15], 0, 0, 0)  # PR_SET_NAME
    except Exception:
        pass


def _send(jobs: list[InferenceJob], error: BaseException | None) -> None:
    by_loop: dict[asyncio.AbstractEventLoop, list[InferenceJob]] = {}
    for job in jobs:
        by_loop.setdefault(job.loop, []).append(job)
    for loop, loop_jobs in by_loop.items():
        try:
            loop.call_soon_threadsafe(_deliver, loop_jobs, error)
        except RuntimeError:  # the loop is closed: nobody waits any more
            pass


def _deliver(jobs: list[InferenceJob], error: BaseException | None) -> None:
    for job in jobs:
        if job.future.done():  # the stream was closed meanwhile
            continue
        if error is not None:
            job.future.set_exception(error)
        else:
            job.future.set_result(job)


def _create_session(model_path: Path, intra_op_threads: int) -> Any:
    import onnxruntime as ort

    if not model_path.is_file():
        raise FileNotFoundError(
            f"the Silero VAD model is missing at {model_path}; reinstall livekit-plugins-silero "
            f"(pip install --force-reinstall ./plugins/livekit-plugins-silero)"
        )
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = intra_op_threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.log_severity_level = 3
    return ort.InferenceSession(str(model_path), sess_options=opts, providers=["CPUExecutionProvider"])


_shared: SharedModel | None = None
_shared_pid = -1
_shared_lock = threading.Lock()


def shared_model() -> SharedModel:
    """The process's model (created on first use; recreated in a forked child)."""
    global _shared, _shared_pid
    pid = os.getpid()
    if _shared is None or _shared_pid != pid:
        with _shared_lock:
            if _shared is None or _shared_pid != pid:
                _shared, _shared_pid = SharedModel(), pid
    return _shared


def inference_stats(reset: bool = False) -> InferenceStats:
    """A copy of the shared model's counters; ``reset=True`` starts them again from zero."""
    model = shared_model()
    with model._start_lock:
        s = model.stats
        snap = InferenceStats(s.calls, s.windows, Counter(s.batch_sizes), s.seconds)
        if reset:
            model.stats = InferenceStats()
    return snap
