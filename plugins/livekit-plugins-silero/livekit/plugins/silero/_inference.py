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

    __slots__ = ("rate", "windows", "state", "probs", "next", "loop", "future", "seconds")

    def __init__(self, rate: int, windows: np.ndarray, state: np.ndarray) -> None:
        self.rate = rate
        self.windows = windows  # float32 [n, context + window]
        self.state = state  # float32 [2, 1, 128]; replaced by the state after the last window
        self.probs = np.empty(len(windows), dtype=np.float32)
        self.next = 0  # the next window to infer
        self.loop = asyncio.get_running_loop()
        self.future: asyncio.Future[InferenceJob] = self.loop.create_future()
        self.seconds = 0.0


class SharedModel:
    """One onnxruntime session and the thread that runs it."""

    def __init__(self, model_path: Path = MODEL_PATH, intra_op_threads: int = 1) -> None:
        self.model_path = model_path
        self.intra_op_threads = intra_op_threads
        self.stats = InferenceStats()
        self._queue: queue.SimpleQueue[InferenceJob | None] = queue.SimpleQueue()  # None: stop
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._batches: dict[int, tuple[list[InferenceJob], np.ndarray]] = {}  # rate -> (jobs, their states)
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
        active: list[InferenceJob] = []
        while True:
            if not active:
                job = self._queue.get()
                if job is None:
                    return
                active.append(job)
            while True:  # every job already waiting joins the next round
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    return
                active.append(job)
            try:
                finished = self._step(active)
            except BaseException as exc:  # handed to every waiting stream
                logger.exception("silero inference failed")
                self._batches.clear()
                _send(active, exc)
                active = []
                continue
            if finished:
                active = [j for j in active if j.next < len(j.windows)]
                _send(finished, None)

    def _step(self, active: list[InferenceJob]) -> list[InferenceJob]:
        """Run one round: the next window of every active job, one model call per rate.

        A lone job runs window after window until another job arrives, without the
        bookkeeping of a batch."""
        session = self.session()
        run = session.run
        stats = self.stats
        if len(active) == 1:
            self._write_back()
            job = active[0]
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
            return [job] if k == n else []
        groups: dict[int, list[InferenceJob]] = {}
        for job in active:
            groups.setdefault(job.rate, []).append(job)
        finished = []
        for rate, group in groups.items():
            t0 = time.perf_counter()
            width = len(group)
            cached = self._batches.get(rate)
            if cached is not None and cached[0] != group:
                self._write_back(rate)
                cached = None
            if width == 1:
                j = group[0]
                out, j.state = run(
                    None, {"input": j.windows[j.next : j.next + 1], "state": j.state, "sr": self._rates[rate]}
                )
            else:
                # the same streams as last round keep their states in one array
                state = cached[1] if cached is not None else np.concatenate([j.state for j in group], axis=1)
                x = np.stack([j.windows[j.next] for j in group])
                out, state = run(None, {"input": x, "state": state, "sr": self._rates[rate]})
                self._batches[rate] = (group, state)
            elapsed = time.perf_counter() - t0
            for i, j in enumerate(group):
                j.probs[j.next] = out[i, 0]
                j.next += 1
                j.seconds += elapsed / width
                if j.next == len(j.windows):
                    if width > 1:
                        j.state = np.ascontiguousarray(state[:, i : i + 1])
                    finished.append(j)
            stats.calls += 1
            stats.windows += width
            stats.batch_sizes[width] += 1
            stats.seconds += elapsed
        return finished

    def _write_back(self, rate: int | None = None) -> None:
        """Give each stream of a kept batch its own state again."""
        for r in [rate] if rate is not None else list(self._batches):
            cached = self._batches.pop(r, None)
            if cached is not None:
                jobs, state = cached
                for i, j in enumerate(jobs):
                    j.state = np.ascontiguousarray(state[:, i : i + 1])


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
