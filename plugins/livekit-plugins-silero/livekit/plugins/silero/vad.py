"""Silero voice activity detection on :class:`livekit.rtc.AudioFrame` streams."""

from __future__ import annotations

import asyncio
import math
from collections import deque
from dataclasses import dataclass, replace

import numpy as np
from livekit import rtc

from livekit.agents import vad as agents_vad
from livekit.agents.exceptions import AudioFormatError
from livekit.agents.utils.audio import Resampler

from ._inference import CONTEXT_SAMPLES, INT16_SCALE, WINDOW_SAMPLES, InferenceJob, new_state, shared_model
from .log import logger

SUPPORTED_INPUT_RATES = (8000, 16000, 22050, 24000, 32000, 44100, 48000)
"""Input sample rates a stream accepts (resampled to the model rate as needed)."""
MODEL_RATES = (8000, 16000)

# at most ~4 s of audio per job: a stream fed faster than real time (a file, a backlog) still
# shares the model, in jobs long enough that its results come back in few loop wake-ups
_MAX_WINDOWS_PER_JOB = 128
_PROBE = rtc.AudioFrame(bytes(4), 8000, 2, 1)
_RAW_IS_BUFFER = isinstance(getattr(_PROBE, "_data", None), (bytes, bytearray))
# livekit.rtc keeps a frame's format in plain attributes behind its properties: reading them
# directly saves three property calls per 10 ms frame (checked here, else the properties)
_FORMAT_FIELDS = (
    getattr(_PROBE, "_samples_per_channel", None),
    getattr(_PROBE, "_sample_rate", None),
    getattr(_PROBE, "_num_channels", None),
) == (1, 8000, 2)


_WAKE = object()  # input-queue marker: frames are waiting in VADStream._arrived


@dataclass(frozen=True)
class VADOptions:
    """Options of the Silero VAD (see :class:`VAD`)."""

    activation_threshold: float = 0.5
    deactivation_threshold: float | None = None
    min_speech_duration: float = 0.05
    min_silence_duration: float = 0.55
    prefix_padding_duration: float = 0.5
    max_buffered_speech: float = 60.0
    sample_rate: int = 16000
    inference_events: bool = True
    """Emit an INFERENCE_DONE event per model window; ``False`` keeps only the start and
    end of speech, which saves CPU when a process runs many streams."""

    @property
    def release_threshold(self) -> float:
        if self.deactivation_threshold is not None:
            return self.deactivation_threshold
        return max(self.activation_threshold - 0.15, 0.01)


def _tail(pieces: list[np.ndarray], n: int) -> np.ndarray:
    """The last ``n`` samples of ``pieces`` (int16) as float32 in [-1, 1)."""
    last = pieces[-1] if len(pieces[-1]) >= n else np.concatenate(pieces)
    return np.multiply(last[-n:], INT16_SCALE, dtype=np.float32)


def _check_options(o: VADOptions) -> None:
    if not 0.0 < o.activation_threshold < 1.0:
        raise ValueError(f"activation_threshold must be between 0 and 1, got {o.activation_threshold}")
    if o.deactivation_threshold is not None and not 0.0 < o.deactivation_threshold <= o.activation_threshold:
        raise ValueError(
            f"deactivation_threshold must be above 0 and at most activation_threshold "
            f"({o.activation_threshold}), got {o.deactivation_threshold}"
        )
    for name in ("min_speech_duration", "min_silence_duration", "prefix_padding_duration"):
        if getattr(o, name) < 0:
            raise ValueError(f"{name} must be >= 0 seconds, got {getattr(o, name)}")
    if o.max_buffered_speech <= 0:
        raise ValueError(f"max_buffered_speech must be > 0 seconds, got {o.max_buffered_speech}")
    if o.sample_rate not in MODEL_RATES:
        raise ValueError(
            f"sample_rate is the model's rate and must be 8000 or 16000, got {o.sample_rate}; "
            f"input frames of other rates are resampled automatically"
        )


def _capabilities(sample_rate: int) -> agents_vad.VADCapabilities:
    # sample_rate: mono frames at the model's rate skip the stream's downmix and resampler;
    # update_interval (one window) makes VAD.audio_stream() deliver one window per frame
    return agents_vad.VADCapabilities(
        update_interval=WINDOW_SAMPLES[sample_rate] / sample_rate,
        sample_rates=SUPPORTED_INPUT_RATES,
        sample_rate=sample_rate,
    )


class VAD(agents_vad.VAD):
    """Silero VAD. One model session and one inference thread serve every stream of the
    process; windows of concurrent streams are batched into one model call.

    Args:
        activation_threshold: probability at or above which a window is speech.
        deactivation_threshold: probability below which a window is silence again while
            speaking (hysteresis); default ``activation_threshold - 0.15``.
        min_speech_duration: seconds of speech before START_OF_SPEECH is emitted.
        min_silence_duration: seconds of silence before END_OF_SPEECH is emitted.
        prefix_padding_duration: seconds of audio before the speech kept in the events' frames.
        max_buffered_speech: at most this many seconds of speech are kept for the
            END_OF_SPEECH frames (the start of the speech is kept).
        sample_rate: the model's rate, 16000 or 8000 (input of any supported rate is resampled).
        inference_events: emit INFERENCE_DONE (the probability) for every model window;
            ``False`` emits only START_OF_SPEECH and END_OF_SPEECH, which saves CPU when
            a process runs many streams.
    """

    def __init__(
        self,
        *,
        activation_threshold: float = 0.5,
        deactivation_threshold: float | None = None,
        min_speech_duration: float = 0.05,
        min_silence_duration: float = 0.55,
        prefix_padding_duration: float = 0.5,
        max_buffered_speech: float = 60.0,
        sample_rate: int = 16000,
        inference_events: bool = True,
    ) -> None:
        opts = VADOptions(
            activation_threshold=activation_threshold,
            deactivation_threshold=deactivation_threshold,
            min_speech_duration=min_speech_duration,
            min_silence_duration=min_silence_duration,
            prefix_padding_duration=prefix_padding_duration,
            max_buffered_speech=max_buffered_speech,
            sample_rate=sample_rate,
            inference_events=inference_events,
        )
        _check_options(opts)
        super().__init__(capabilities=_capabilities(sample_rate))
        self._opts = opts
        self._model = shared_model()
        self._model.session()  # load now: a broken install fails here, not in a stream

    @property
    def options(self) -> VADOptions:
        return self._opts

    def update_options(self, **changes: object) -> None:
        """Change options for streams created from now on (``sample_rate`` included)."""
        opts = replace(self._opts, **changes)  # type: ignore[arg-type]
        _check_options(opts)
        self._opts = opts
        self.capabilities = _capabilities(opts.sample_rate)

    def stream(self) -> VADStream:
        return VADStream(self._opts)


class VADStream(agents_vad.VADStream):
    """Push :class:`livekit.rtc.AudioFrame` s (one rate and channel count per stream);
    iterate :class:`livekit.agents.vad.VADEvent` s."""

    def __init__(self, opts: VADOptions) -> None:
        super().__init__()
        self._opts = opts
        self._model = shared_model()
        self._in_rate = 0
        self._in_channels = 0
        self._speaking = False
        self._speech_start = 0  # input sample index where the current speech began
        self._processed_in = 0  # input samples covered by inferred windows
        self._arrived: list[rtc.AudioFrame] = []
        self._arrived_samples = 0
        self._wake_samples = 1  # input samples per model window, once the input rate is known
        self._wake_queued = False

    # --- input -------------------------------------------------------------------------------

    def push_frame(self, frame: rtc.AudioFrame) -> None:
        """Queue one frame. Raises :class:`AudioFormatError` for an unusable frame and
        :class:`StreamClosedError` after ``end_input()`` or ``aclose()``."""
        if not isinstance(frame, rtc.AudioFrame):
            raise AudioFormatError(
                f"push_frame() takes a livekit.rtc.AudioFrame, got {type(frame).__name__}; "
                f"convert raw PCM16 with livekit.agents.utils.audio.frames_from_pcm()"
            )
        if _FORMAT_FIELDS:
            n, rate, channels = frame._samples_per_channel, frame._sample_rate, frame._num_channels
        else:
            n, rate, channels = frame.samples_per_channel, frame.sample_rate, frame.num_channels
        if n <= 0:
            raise AudioFormatError("push_frame() got an empty audio frame (0 samples per channel)")
        if rate != self._in_rate or channels != self._in_channels:
            self._check_format(frame)
        if self._closed or self._input_ended:
            self._push(frame)  # raises StreamClosedError
        # frames wait in a list; the input queue carries one wake-up per batch of frames
        self._arrived.append(frame)
        self._arrived_samples += n
        # wake the stream's task once a window's worth has arrived, not for every frame
        if not self._wake_queued and self._arrived_samples >= self._wake_samples:
            self._wake_queued = True
            self._input_q.put_nowait(_WAKE)

    def _check_format(self, frame: rtc.AudioFrame) -> None:
        rate, channels = frame.sample_rate, frame.num_channels
        if self._in_rate:
            raise AudioFormatError(
                f"this VAD stream receives {self._in_rate} Hz/{self._in_channels} ch audio; got a "
                f"{rate} Hz/{channels} ch frame. Use one stream per audio format (or resample first)"
            )
        if rate not in SUPPORTED_INPUT_RATES:
            raise AudioFormatError(
                f"unsupported sample rate {rate} Hz; the Silero VAD accepts "
                f"{', '.join(str(r) for r in SUPPORTED_INPUT_RATES)} Hz (resample the audio first)"
            )
        if channels not in (1, 2):
            raise AudioFormatError(f"unsupported channel count {channels}; push mono or stereo frames")
        self._in_rate, self._in_channels = rate, channels
        self._wake_samples = WINDOW_SAMPLES[self._opts.sample_rate] * rate // self._opts.sample_rate

    # --- processing --------------------------------------------------------------------------

    async def _run(self) -> None:
        opts = self._opts
        model_rate = opts.sample_rate
        self._window = WINDOW_SAMPLES[model_rate]
        self._context = np.zeros(CONTEXT_SAMPLES[model_rate], dtype=np.float32)
        self._state = new_state()
        self._ring: deque[tuple[int, np.ndarray]] = deque()  # (input sample index, interleaved int16)
        self._ring_end = 0  # input samples received
        self._pending: list[np.ndarray] = []  # model-rate mono int16 audio not yet inferred
        self._pending_len = 0
        self._model_pos = 0  # model-rate samples inferred
        self._resampler: Resampler | None = None
        self._speech_run = 0.0  # seconds of consecutive speech windows while not speaking
        self._run_start = 0  # model sample where that run began
        self._silence_run = 0.0
        self._silence_start = 0
        self._speech_head: bytes | None = None  # the kept speech once it exceeded the cap
        self._model.attach()
        try:
            async for item in self._input():
                # _WAKE (a window's worth arrived) or FLUSH (take what arrived so far)
                if item is _WAKE:
                    self._wake_queued = False
                await self._process(final=False)
            await self._process(final=True)
            if self._speaking:
                self._emit_end(final=True)
        except asyncio.CancelledError:
            # closed mid-speech: the consumer still learns that the speech ended
            if self._speaking:
                self._emit_end(final=True)
            raise
        finally:
            self._model.detach()

    async def _process(self, *, final: bool) -> None:
        """Infer every complete window of what arrived (at the end, the zero-padded rest too).

        A backlog is cut into jobs of at most ``_MAX_WINDOWS_PER_JOB`` windows, each accepted
        from the arrived frames just before it is submitted, so a long burst never holds
        more than a few jobs of converted audio. The next job is submitted before the results
        of the previous one are handled: the model never waits for this stream."""
        W = self._window
        limit = _MAX_WINDOWS_PER_JOB * W
        previous: InferenceJob | None = None
        try:
            while True:
                if self._arrived and self._pending_len < limit:
                    self._take(limit - self._pending_len)
                if final and not self._arrived:
                    self._pad_pending()
                count = min(self._pending_len, limit) // W
                if not count:
                    break
                audio = self._pop_pending(count * W)
                state = None if previous is not None else self._state
                job = InferenceJob(self._opts.sample_rate, audio, self._context, state, previous)
                self._context = _tail(audio, len(self._context))
                self._model.submit(job)
                if previous is not None:
                    await self._handle(previous)
                previous = job
            if previous is not None:
                await self._handle(previous)
                previous = None
        finally:
            if previous is not None:  # failed or cancelled: nobody waits for the rest
                previous.future.cancel()

    async def _handle(self, job: InferenceJob) -> None:
        await job.future
        self._state = job.state
        self._on_probabilities(job.probs, job.seconds / job.count)

    def _take(self, model_samples: int) -> None:
        """Accept arrived frames, about ``model_samples`` worth (at least one frame)."""
        arrived = self._arrived
        per_frame = arrived[0].samples_per_channel * self._opts.sample_rate / self._in_rate
        k = max(1, math.ceil(model_samples / per_frame))
        if k >= len(arrived):
            frames, self._arrived, self._arrived_samples = arrived, [], 0
        else:
            frames = arrived[:k]
            del arrived[:k]
        self._accept(frames)

    def _pad_pending(self) -> None:
        """At the end of input: flush the resampler, zero-pad to a whole window."""
        if self._resampler is not None:
            for f in self._resampler.flush():
                self._add_model_audio(np.frombuffer(f.data, dtype=np.int16))
            self._resampler = None
        if self._pending_len % self._window:
            self._add_model_audio(np.zeros(self._window - self._pending_len % self._window, dtype=np.int16))

    def _pop_pending(self, samples: int) -> list[np.ndarray]:
        """The first ``samples`` of the pending audio, as the arrays (or views) holding them."""
        out: list[np.ndarray] = []
        pending = self._pending
        need = samples
        while need:
            piece = pending[0]
            if len(piece) <= need:
                out.append(pending.pop(0))
                need -= len(piece)
            else:
                out.append(piece[:need])
                pending[0] = piece[need:]
                need = 0
        self._pending_len -= samples
        return out

    def _accept(self, frames: list[rtc.AudioFrame]) -> None:
        if len(frames) == 1:
            pcm = np.frombuffer(frames[0].data, dtype=np.int16).copy()
        else:
            raw = [f._data for f in frames] if _RAW_IS_BUFFER else [f.data for f in frames]  # type: ignore[attr-defined]
            pcm = np.frombuffer(b"".join(raw), dtype=np.int16)
        channels = self._in_channels
        self._ring.append((self._ring_end, pcm))
        self._ring_end += len(pcm) // channels
        if channels > 1:
            mono = pcm.reshape(-1, channels).mean(axis=1, dtype=np.float32).astype(np.int16)
        else:
            mono = pcm
        if self._in_rate != self._opts.sample_rate:
            if self._resampler is None:
                self._resampler = Resampler(self._in_rate, self._opts.sample_rate, 1)
            src = rtc.AudioFrame(mono.tobytes(), self._in_rate, 1, len(mono))
            for f in self._resampler.push(src):
                self._add_model_audio(np.frombuffer(f.data, dtype=np.int16))
        else:
            self._add_model_audio(mono)

    def _add_model_audio(self, samples: np.ndarray) -> None:
        if len(samples):
            self._pending.append(samples)
            self._pending_len += len(samples)

    def _on_probabilities(self, probs: np.ndarray, seconds_each: float) -> None:
        """Advance the speech state machine over ``probs`` (one per window) and emit the
        events, INFERENCE_DONE ones in one batch per job: this loop runs for every window."""
        opts = self._opts
        W = self._window
        win_dur = W / opts.sample_rate
        act, deact = opts.activation_threshold, opts.release_threshold
        min_speech, min_silence = opts.min_speech_duration - 1e-9, opts.min_silence_duration - 1e-9
        in_rate, model_rate = self._in_rate, opts.sample_rate
        ratio = in_rate / model_rate
        half = model_rate // 2  # rounds the input position (no ties at the supported rates)
        ring_end = self._ring_end
        done: list[agents_vad.VADEvent] | None = [] if opts.inference_events else None
        InferenceDone = agents_vad.VADEventType.INFERENCE_DONE
        Event = agents_vad.VADEvent
        end = self._model_pos
        end_in = self._processed_in
        for p in probs.tolist():
            start = end
            end += W
            end_in = (end * in_rate + half) // model_rate
            if end_in > ring_end:  # the zero padding of the last window
                end_in = ring_end
            if not self._speaking:
                if p >= act:
                    if self._speech_run == 0.0:
                        self._run_start = start
                    self._speech_run += win_dur
                    if self._speech_run >= min_speech:
                        self._model_pos, self._processed_in = end, end_in
                        if done:  # the events so far go first
                            self._emit_many(done)
                            done = []
                        self._emit_start(end_in, min(round(self._run_start * ratio), end_in))
                else:
                    self._speech_run = 0.0
            elif p < deact:
                if self._silence_run == 0.0:
                    self._silence_start = start
                self._silence_run += win_dur
                if self._silence_run >= min_silence:
                    self._model_pos, self._processed_in = end, end_in
                    if done:
                        self._emit_many(done)
                        done = []
                    self._emit_end(final=False)
            else:
                self._silence_run = 0.0
            if done is not None:
                speaking = self._speaking
                done.append(
                    Event(
                        InferenceDone,
                        end_in,
                        end_in / in_rate,
                        (end_in - self._speech_start) / in_rate if speaking else self._speech_run,
                        self._silence_run,
                        [],
                        p,
                        seconds_each,
                        speaking,
                    )
                )
        self._model_pos, self._processed_in = end, end_in
        if done:
            self._emit_many(done)
        self._trim_ring()

    # --- events --------------------------------------------------------------------------------

    def _emit_start(self, end_in: int, began_in: int) -> None:
        self._speaking = True
        self._speech_start = began_in
        self._silence_run = 0.0
        self._speech_head = None
        rate = self._in_rate
        self._emit(
            agents_vad.VADEvent(
                type=agents_vad.VADEventType.START_OF_SPEECH,
                samples_index=end_in,
                timestamp=end_in / rate,
                speech_duration=(end_in - began_in) / rate,
                frames=self._frames(self._padded_start(), end_in),
                speaking=True,
            )
        )

    def _emit_end(self, *, final: bool) -> None:
        rate = self._in_rate
        end_in = self._processed_in
        if self._silence_run > 0.0:
            stopped = min(round(self._silence_start * rate / self._opts.sample_rate), end_in)
        else:
            stopped = end_in
        cap = self._speech_cap()
        if self._speech_head is not None:
            frames = [self._to_frame(self._speech_head)]
            logger.warning(
                "speech longer than max_buffered_speech (%.1f s): END_OF_SPEECH carries its first %.1f s",
                self._opts.max_buffered_speech,
                self._opts.max_buffered_speech,
            )
        else:
            frames = self._frames(self._padded_start(), min(end_in, cap))
        self._speaking = False
        self._speech_run = 0.0
        silence = (end_in - stopped) / rate
        self._silence_run = 0.0
        self._emit(
            agents_vad.VADEvent(
                type=agents_vad.VADEventType.END_OF_SPEECH,
                samples_index=end_in,
                timestamp=end_in / rate,
                speech_duration=(stopped - self._speech_start) / rate,
                silence_duration=silence,
                frames=frames,
                speaking=False,
            )
        )
        self._speech_head = None

    def _padded_start(self) -> int:
        return max(0, self._speech_start - round(self._opts.prefix_padding_duration * self._in_rate))

    def _speech_cap(self) -> int:
        return self._padded_start() + round(self._opts.max_buffered_speech * self._in_rate)

    # --- the input ring (original format, for the events' frames) -------------------------------

    def _trim_ring(self) -> None:
        rate = self._in_rate
        if self._speaking:
            cap = self._speech_cap()
            if self._speech_head is None and self._processed_in > cap:
                self._speech_head = self._slice(self._padded_start(), cap)
            keep_from = self._padded_start() if self._speech_head is None else self._processed_in
        else:
            lookback = self._opts.prefix_padding_duration + self._opts.min_speech_duration + 0.2
            keep_from = self._processed_in - round(lookback * rate)
        ring = self._ring
        ch = self._in_channels
        while ring and ring[0][0] + len(ring[0][1]) // ch <= keep_from:
            ring.popleft()

    def _slice(self, a: int, b: int) -> bytes:
        """Input samples ``a`` to ``b`` (interleaved int16), copied once out of the ring."""
        ch = self._in_channels
        parts = []
        for start, pcm in self._ring:
            n = len(pcm) // ch
            if start + n <= a:
                continue
            if start >= b:
                break
            if a <= start and start + n <= b:
                parts.append(pcm)  # a whole entry (the common case): no slice
            else:
                lo, hi = max(a - start, 0), min(b - start, n)
                parts.append(pcm[lo * ch : hi * ch])
        return b"".join(parts)

    def _to_frame(self, pcm: bytes) -> rtc.AudioFrame:
        ch = self._in_channels
        return rtc.AudioFrame(pcm, self._in_rate, ch, len(pcm) // (2 * ch))

    def _frames(self, a: int, b: int) -> list[rtc.AudioFrame]:
        pcm = self._slice(a, b)
        return [self._to_frame(pcm)] if pcm else []
