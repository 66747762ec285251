"""Real speech for tests, spoken by espeak-ng and converted by sox (Debian packages).

Each sample knows its words and where each utterance starts and ends, so tests can assert
on transcripts and on VAD boundaries.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

CACHE_DIR = Path(os.environ.get("LIVEKIT_AGENTS_CACHE", Path.home() / ".cache" / "livekit-agents")) / "speech"


class SpeechToolsMissing(RuntimeError):
    """espeak-ng or sox is not installed."""


@dataclass
class SpeechSample:
    """Mono PCM16 speech with known text and utterance boundaries (seconds)."""

    path: Path
    sample_rate: int
    text: str
    utterances: list[str] = field(default_factory=list)
    segments: list[tuple[float, float]] = field(default_factory=list)

    @property
    def pcm(self) -> bytes:
        from ..utils.audio import strip_wav_header

        return strip_wav_header(self.path.read_bytes())[0]

    @property
    def duration(self) -> float:
        return len(self.pcm) / 2 / self.sample_rate

    def frames(self, frame_ms: int = 10):  # type: ignore[no-untyped-def]
        """The audio as ``livekit.rtc.AudioFrame`` s of ``frame_ms`` milliseconds."""
        from ..utils.audio import frames_from_pcm

        return frames_from_pcm(self.pcm, self.sample_rate, 1, frame_ms)

    @property
    def words(self) -> list[str]:
        return [w.strip(".,!?;:").lower() for w in self.text.split() if w.strip(".,!?;:")]


def _require_tools() -> tuple[str, str]:
    espeak, sox = shutil.which("espeak-ng"), shutil.which("sox")
    if not espeak or not sox:
        raise SpeechToolsMissing(
            "test speech needs espeak-ng and sox: apt-get install espeak-ng sox"
        )
    return espeak, sox


def _speak(text: str, rate: int, out: Path, voice: str, wpm: int) -> None:
    espeak, sox = _require_tools()
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.wav"
        subprocess.run([espeak, "-v", voice, "-s", str(wpm), "-w", str(raw), text], check=True, capture_output=True)
        subprocess.run(
            [sox, str(raw), "-r", str(rate), "-c", "1", "-b", "16", "-e", "signed-integer", str(out)],
            check=True,
            capture_output=True,
        )


def _trim(pcm: np.ndarray, threshold: int = 300) -> np.ndarray:
    loud = np.nonzero(np.abs(pcm) > threshold)[0]
    return pcm[loud[0] : loud[-1] + 1] if loud.size else pcm[:0]


def speech(
    utterances: str | list[str],
    *,
    sample_rate: int = 16000,
    silence: float = 1.0,
    lead: float = 0.5,
    voice: str = "en-us",
    wpm: int = 150,
) -> SpeechSample:
    """Speak each utterance, trimmed of espeak's own silences, separated by ``silence``
    seconds of digital silence and preceded and followed by ``lead`` seconds. Cached."""
    texts = [utterances] if isinstance(utterances, str) else list(utterances)
    key = hashlib.sha256(repr((texts, sample_rate, silence, lead, voice, wpm)).encode()).hexdigest()[:16]
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    out = CACHE_DIR / f"speech-{key}.wav"
    index = out.with_suffix(".json")  # the utterances' boundaries, written after the WAV
    if out.exists() and index.exists():
        segments = [(a, b) for a, b in json.loads(index.read_text())]
        return SpeechSample(out, sample_rate, " ".join(texts), texts, segments)

    from livekit import rtc

    from ..utils.audio import strip_wav_header, wav_bytes

    parts: list[np.ndarray] = []
    segments = []
    pos = int(lead * sample_rate)
    gap = np.zeros(int(silence * sample_rate), dtype=np.int16)
    parts.append(np.zeros(pos, dtype=np.int16))
    for i, text in enumerate(texts):
        with tempfile.TemporaryDirectory() as tmp:
            part = Path(tmp) / "u.wav"
            _speak(text, sample_rate, part, voice, wpm)
            pcm = _trim(np.frombuffer(strip_wav_header(part.read_bytes())[0], dtype=np.int16))
        segments.append((pos / sample_rate, (pos + len(pcm)) / sample_rate))
        parts.append(pcm)
        pos += len(pcm)
        if i < len(texts) - 1:
            parts.append(gap)
            pos += len(gap)
    parts.append(np.zeros(int(lead * sample_rate), dtype=np.int16))
    data = np.concatenate(parts).astype(np.int16)
    for path, content in (
        (out, wav_bytes(rtc.AudioFrame(data.tobytes(), sample_rate, 1, len(data)))),
        (index, json.dumps(segments).encode()),
    ):
        tmp_path = path.with_suffix(f".{os.getpid()}.tmp")
        tmp_path.write_bytes(content)
        tmp_path.replace(path)  # atomic: concurrent test processes never read half a file
    return SpeechSample(out, sample_rate, " ".join(texts), texts, segments)


def spoken_pcm(text: str, sample_rate: int, speed: float = 1.0) -> bytes:
    """PCM16 mono of ``text`` for a fake TTS service: real speech from espeak-ng, or,
    where espeak-ng is missing, one tone burst per word (never silence)."""
    if not re.search(r"\w", text):
        return b""
    try:
        return speech(text.strip(), sample_rate=sample_rate, lead=0.05, wpm=int(160 * speed)).pcm
    except SpeechToolsMissing:
        out = []
        for i, _ in enumerate(text.split()):
            n = int(sample_rate * 0.3 / speed)
            t = np.arange(n) / sample_rate
            tone = 8000 * np.sin(2 * np.pi * (180 + 20 * (i % 5)) * t) * np.hanning(n)
            out.append(tone.astype(np.int16).tobytes() + bytes(int(sample_rate * 0.08) * 2))
        return b"".join(out)


# --- "hearing" for provider fakes: utterances recognised by their lengths ----------------------

UTTERANCE_GAP = 0.6
"""Pauses shorter than this (seconds) do not split an utterance."""


def speech_segments(pcm: bytes, rate: int, *, gap: float = UTTERANCE_GAP) -> list[tuple[float, float]]:
    """Where the speech is in PCM16 mono, in seconds: runs of 20 ms windows with a sample
    above 300, merged across pauses shorter than ``gap``; runs under 0.1 s are dropped."""
    a = np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype=np.int16).astype(np.int32)
    win = max(1, rate // 50)
    n = len(a) // win
    if n == 0:
        return []
    loud = np.abs(a[: n * win].reshape(n, win)).max(axis=1) > 300
    segs: list[list[float]] = []
    for i in np.nonzero(loud)[0]:
        t0, t1 = i * win / rate, (i + 1) * win / rate
        if segs and t0 - segs[-1][1] < gap:
            segs[-1][1] = t1
        else:
            segs.append([t0, t1])
    return [(s, e) for s, e in segs if e - s >= 0.1]


def utterance_lengths(sample: SpeechSample) -> list[tuple[str, float]]:
    """``(text, seconds)`` of each utterance of ``sample``, as :func:`speech_segments`
    measures it: what a fake learns so that it can "hear" the sample later."""
    segs = speech_segments(sample.pcm, sample.sample_rate)
    if len(segs) != len(sample.utterances):
        raise ValueError(
            f"found {len(segs)} speech segments for {len(sample.utterances)} utterances; use longer silences"
        )
    return [(text, e - s) for text, (s, e) in zip(sample.utterances, segs, strict=True)]


JITTER_BUFFER_LENGTHENING = 0.25
"""Seconds a receiver's jitter buffer may add to an utterance whose packets came late (it
plays what it has again, or stretches it, until they arrive): measured 0.26 s on one
utterance of 1.38 s on a machine saturated by other processes. :func:`sounds_like` still
hears such audio."""


def fitting_utterances(seconds: float, utterances: list[tuple[str, float]]) -> list[int]:
    """The indexes of the utterances that ``seconds`` of speech may be, the closest length
    first: a length of ``d`` fits from 0.12 s + 8 % shorter to as much plus
    :data:`JITTER_BUFFER_LENGTHENING` longer."""

    def fits(d: float) -> bool:
        slack = 0.12 + 0.08 * d
        return -slack <= seconds - d <= slack + JITTER_BUFFER_LENGTHENING

    return [i for _, i in sorted((abs(seconds - d), i) for i, (_, d) in enumerate(utterances) if fits(d))]


def closest_utterance(seconds: float, utterances: list[tuple[str, float]]) -> int | None:
    """The first of :func:`fitting_utterances`, or ``None``."""
    fits = fitting_utterances(seconds, utterances)
    return fits[0] if fits else None


# --- "hearing" the content: is this audio the utterance a fake expects? ----------------------

_BAND_EDGES = np.geomspace(100.0, 4000.0, 25)


def spectral_features(pcm: bytes, rate: int) -> np.ndarray:
    """Log band energies of PCM16 mono: 32 ms windows every 10 ms, 24 bands spaced
    logarithmically from 100 Hz to 4 kHz (independent of the sample rate), shape
    ``(windows, 24)``."""
    a = np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype=np.int16).astype(np.float64)
    win, hop = int(0.032 * rate), int(0.010 * rate)
    if len(a) < win:
        return np.zeros((0, len(_BAND_EDGES) - 1))
    n = 1 + (len(a) - win) // hop
    idx = np.arange(win)[None, :] + hop * np.arange(n)[:, None]
    spec = np.abs(np.fft.rfft(a[idx] * np.hanning(win), axis=1)) ** 2
    freqs = np.fft.rfftfreq(win, 1 / rate)
    bands = np.stack(
        [spec[:, (freqs >= lo) & (freqs < hi)].sum(axis=1) for lo, hi in zip(_BAND_EDGES[:-1], _BAND_EDGES[1:], strict=True)],
        axis=1,
    )
    return np.log10(bands + 1e3)


PIECE_SECONDS = 0.4
"""The length of the pieces :func:`sounds_like` aligns one by one."""


def sounds_like(
    pcm: bytes, rate: int, reference: bytes, reference_rate: int, *, max_lag: float = 0.15, drift: float = 0.25
) -> float:
    """How much ``pcm`` sounds like ``reference`` (both PCM16 mono, any rates), from 0 to 1.

    The :func:`spectral_features` of ``pcm`` are cut into 0.4 s pieces; each piece is
    matched (normalised correlation of the spectral shapes) where it fits best in the
    reference, within ``max_lag`` seconds of where it would be plus ``drift`` times its
    offset, so audio that a jitter buffer stretched, or that lost a few packets, still
    lines up piece by piece. The score is the pieces' mean, weighted by their length, over
    the longer of the two, so a part of the reference that was not heard counts as 0.

    About 1 for the same speech (resampled, re-framed, shifted, stretched by up to about
    15 %, with gaps or repeats of up to 0.25 s); well below :data:`SOUNDS_LIKE_THRESHOLD`
    for other words, noise or byte-swapped samples. An empty input gives 0."""
    x, y = spectral_features(pcm, rate), spectral_features(reference, reference_rate)
    if len(x) < 10 or len(y) < 10:
        return 0.0
    x, y = _shape(x), _shape(y)
    piece, lags = int(PIECE_SECONDS / 0.010), int(max_lag / 0.010)
    total = 0.0
    for k in range(0, len(x), piece):
        a = x[k : k + piece]
        m = len(a)
        if m < 10:
            break
        reach = lags + int(drift * k)
        best = 0.0
        for j in range(max(0, k - reach), min(len(y) - m, k + reach) + 1):
            b = y[j : j + m]
            denom = float(np.sqrt((a * a).sum() * (b * b).sum()))
            if denom > 0:
                best = max(best, float((a * b).sum()) / denom)
        total += best * m
    return total / max(len(x), len(y))


def _shape(f: np.ndarray) -> np.ndarray:
    """Each window's spectral shape (its mean level removed), then each band's mean
    removed: what is left is what was said, not how loud."""
    f = f - f.mean(axis=1, keepdims=True)
    shaped: np.ndarray = f - f.mean(axis=0)
    return shaped


@dataclass
class Utterance:
    """What a fake knows of one expected utterance: its text, its length as
    :func:`speech_segments` measures it, and its audio (to compare what it receives with)."""

    text: str
    seconds: float
    pcm: bytes
    sample_rate: int


def utterances_of(sample: SpeechSample) -> list[Utterance]:
    """The utterances of ``sample`` with their audio, cut where :func:`speech_segments`
    finds them."""
    pcm, rate = sample.pcm, sample.sample_rate
    segs = speech_segments(pcm, rate)
    if len(segs) != len(sample.utterances):
        raise ValueError(
            f"found {len(segs)} speech segments for {len(sample.utterances)} utterances; use longer silences"
        )
    return [
        Utterance(text, e - s, pcm[int(s * rate) * 2 : int(e * rate) * 2], rate)
        for text, (s, e) in zip(sample.utterances, segs, strict=True)
    ]


SOUNDS_LIKE_THRESHOLD = 0.5
"""The :func:`sounds_like` score above which a fake hears an expected utterance. Measured
on espeak utterances: 1.0 the same audio, 0.89-0.92 with 80-250 ms repeated (what a
receiver's jitter buffer does when its packets come late), 0.61-0.81 stretched or
squeezed by 8-15 %, at most 0.43 for another sentence (0.43: two that start with the
same three words), 0.15 byte-swapped samples, 0.09 noise."""
