"""The process-wide Silero model: one onnxruntime session, one inference thread, batching.

Every :class:`~livekit.plugins.silero.vad.VADStream` of the process submits its complete
windows here as a job and awaits the probabilities. The inference thread runs rounds: each
round takes the next window of every active job, groups them by model rate and makes one
model call per rate with the streams' own recurrent states stacked (jobs that arrive join
at the next round, finished jobs are handed back at once). A lone job runs window after
window as soon as it is submitted, without waiting for company.

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


class InferenceJob:
    """Consecutive windows of one stream, with the stream's state before the first."""

    __slots__ = ("rate", "windows", "state", "probs", "next", "loop", "future", "seconds", "slot", "joined")

    def __init__(self, rate: int, windows: np.ndarray, state: np.ndarray) -> None:
        self.rate = rate
        self.windows = windows  # float32 [n, context + window]
        self.state = state  # float32 [2, 1, 128]; replaced by the state after the last window
        self.probs = np.empty(len(windows), dtype=np.float32)
        self.next = 0  # the next window to infer (while batched: where it joined the batch)
        self.loop = asyncio.get_running_loop()
        self.future: asyncio.Future[InferenceJob] = self.loop.create_future()
        self.seconds = 0.0
        self.slot = -1  # its slot in a _Batch, -1 when not batched
        self.joined = 0.0  # the batch's clock when it joined


class _Batch:
    """The batched jobs of one model rate. Each job owns a slot of three arrays (its windows,
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
        self.windows = np.empty((0, 0, 0), dtype=np.float32)  # slot -> [window -> samples]
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
        n, size = job.windows.shape
        if not self.windows.size:
            self.windows = np.empty((0, 0, size), dtype=np.float32)
        elif size != self.windows.shape[2]:
            raise ValueError(f"windows of {size} samples at {self.rate} Hz; expected {self.windows.shape[2]}")
        if not self.free or n > self.windows.shape[1]:
            self._grow(max(n, self.windows.shape[1]))
        slot = self.free.pop()
        self.windows[slot, :n] = job.windows
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
        old = self.windows.shape[0]
        count = max(2 * old, 8) if not self.free else old
        windows = np.empty((count, capacity, self.windows.shape[2]), dtype=np.float32)
        probs = np.empty((count, capacity), dtype=np.float32)
        states = np.empty((2, count, 128), dtype=np.float32)
        windows[:old, : self.windows.shape[1]] = self.windows
        probs[:old, : self.probs.shape[1]] = self.probs
        states[:, :old] = self.states
        self.windows, self.probs, self.states = windows, probs, states
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

    def __init__(self, model_path: Path = MODEL_PATH, intra_op_threads: int = 1) -> None:
        self.model_path = model_path
        self.intra_op_threads = intra_op_threads
        self.stats = InferenceStats()
        self._queue: queue.SimpleQueue[InferenceJob | None] = queue.SimpleQueue()  # None: stop
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._batches: dict[int, _Batch] = {}  # rate -> its batched jobs
        self._loner: InferenceJob | None = None  # the job that ran alone last, unfinished
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
        active: dict[InferenceJob, None] = {}  # insertion-ordered set
        while True:
            joined: list[InferenceJob] = []
            if not active:
                job = self._queue.get()
                if job is None:
                    return
                active[job] = None
                joined.append(job)
            while True:  # every job already waiting joins the next round
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    return
                active[job] = None
                joined.append(job)
            try:
                finished = self._step(active, joined)
            except BaseException as exc:  # handed to every waiting stream
                logger.exception("silero inference failed")
                self._batches.clear()
                self._loner = None
                _send(list(active), exc)
                active = {}
                continue
            if finished:
                for job in finished:
                    del active[job]
                _send(finished, None)

    def _step(self, active: dict[InferenceJob, None], joined: list[InferenceJob]) -> list[InferenceJob]:
        """Run one round: the next window of every active job, one model call per rate.

        A lone job runs window after window until another job arrives, without the
        bookkeeping of a batch."""
        run = self.session().run
        stats = self.stats
        if len(active) == 1:
            job = next(iter(active))
            if job.slot >= 0:  # the last of a batch: it leaves the batch
                batch = self._batches.pop(job.rate)
                batch.remove([0])
            sr = self._rates[job.rate]
            windows, probs, state, k = job.windows, job.probs, job.state, job.next
            n = len(windows)
            t0 = time.perf_counter()
            start = k
            while k < n:
                out, state = run(None, {"input": windows[k : k + 1], "state": state, "sr": sr})
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
            if job.next < len(job.windows):
                self._batch(job.rate).add(job)
            else:
                finished.append(job)
        for rate, batch in list(batches.items()):
            finished += batch.round(run, stats)
            if not batch.jobs:
                del batches[rate]
        return finished

    def _batch(self, rate: int) -> _Batch:
        batch = self._batches.get(rate)
        if batch is None:
            batch = self._batches[rate] = _Batch(rate, self._rates[rate])
        return batch


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
