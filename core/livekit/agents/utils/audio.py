"""Audio helpers on :class:`livekit.rtc.AudioFrame`: merge, resample, slice, WAV in/out.

Frames are 16-bit signed PCM, interleaved when there are several channels, the format of
``livekit.rtc``.
"""

from __future__ import annotations

import io
import wave
from pathlib import Path

import numpy as np
from livekit import rtc

from ..exceptions import AudioFormatError

AudioBuffer = list[rtc.AudioFrame] | rtc.AudioFrame
"""One frame or a list of frames of the same rate and channel count."""


def check_frame(frame: object) -> rtc.AudioFrame:
    """Raise :class:`AudioFormatError` unless ``frame`` is a usable, non-empty audio frame."""
    if not isinstance(frame, rtc.AudioFrame):
        raise AudioFormatError(
            f"expected a livekit.rtc.AudioFrame, got {type(frame).__name__}; convert raw "
            f"PCM with livekit.agents.utils.audio.frames_from_pcm()"
        )
    if frame.samples_per_channel <= 0:
        raise AudioFormatError("empty audio frame (0 samples per channel)")
    if frame.sample_rate <= 0 or frame.num_channels <= 0:
        raise AudioFormatError(
            f"bad audio frame: sample_rate={frame.sample_rate}, num_channels={frame.num_channels}"
        )
    return frame


def merge_frames(buffer: AudioBuffer) -> rtc.AudioFrame:
    """One frame holding all of ``buffer``'s audio."""
    if isinstance(buffer, rtc.AudioFrame):
        return buffer
    if not buffer:
        raise AudioFormatError("cannot merge an empty list of audio frames")
    first = buffer[0]
    for f in buffer:
        if f.sample_rate != first.sample_rate or f.num_channels != first.num_channels:
            raise AudioFormatError(
                f"frames to merge differ: {first.sample_rate} Hz/{first.num_channels} ch vs "
                f"{f.sample_rate} Hz/{f.num_channels} ch; resample them first"
            )
    data = b"".join(bytes(f.data) for f in buffer)
    return rtc.AudioFrame(data, first.sample_rate, first.num_channels, len(data) // (2 * first.num_channels))


def to_array(frame: rtc.AudioFrame) -> np.ndarray:
    """The frame's samples as an int16 array of shape ``(samples, channels)``."""
    return np.frombuffer(frame.data, dtype=np.int16).reshape(-1, frame.num_channels)


def to_mono(frame: rtc.AudioFrame) -> rtc.AudioFrame:
    """Average the channels into one."""
    if frame.num_channels == 1:
        return frame
    mono = to_array(frame).mean(axis=1).astype(np.int16)
    return rtc.AudioFrame(mono.tobytes(), frame.sample_rate, 1, len(mono))


def duration(buffer: AudioBuffer) -> float:
    """Length of the audio in seconds."""
    frames = [buffer] if isinstance(buffer, rtc.AudioFrame) else buffer
    return sum(f.samples_per_channel / f.sample_rate for f in frames)


class Resampler:
    """Streaming resampler; passes frames through when the rate already matches."""

    def __init__(self, input_rate: int, output_rate: int, num_channels: int = 1) -> None:
        self.input_rate = input_rate
        self.output_rate = output_rate
        self._rs = (
            rtc.AudioResampler(input_rate, output_rate, num_channels=num_channels)
            if input_rate != output_rate
            else None
        )

    def push(self, frame: rtc.AudioFrame) -> list[rtc.AudioFrame]:
        if self._rs is None:
            return [frame]
        return [f for f in self._rs.push(frame) if f.samples_per_channel > 0]

    def flush(self) -> list[rtc.AudioFrame]:
        if self._rs is None:
            return []
        return [f for f in self._rs.flush() if f.samples_per_channel > 0]


def resample(buffer: AudioBuffer, rate: int) -> rtc.AudioFrame:
    """The whole buffer at ``rate`` Hz, as one frame."""
    frame = merge_frames(buffer)
    if frame.sample_rate == rate:
        return frame
    rs = Resampler(frame.sample_rate, rate, frame.num_channels)
    return merge_frames(rs.push(frame) + rs.flush())


class AudioByteStream:
    """Cuts a byte stream of PCM16 into frames of a fixed size, as bytes arrive."""

    def __init__(self, sample_rate: int, num_channels: int = 1, samples_per_channel: int | None = None):
        self.sample_rate = sample_rate
        self.num_channels = num_channels
        self.samples_per_channel = samples_per_channel or sample_rate // 100  # 10 ms
        self._bytes_per_frame = self.samples_per_channel * num_channels * 2
        self._buf = bytearray()

    def write(self, data: bytes) -> list[rtc.AudioFrame]:
        self._buf.extend(data)
        frames = []
        while len(self._buf) >= self._bytes_per_frame:
            chunk = bytes(self._buf[: self._bytes_per_frame])
            del self._buf[: self._bytes_per_frame]
            frames.append(rtc.AudioFrame(chunk, self.sample_rate, self.num_channels, self.samples_per_channel))
        return frames

    def flush(self) -> list[rtc.AudioFrame]:
        """The remaining whole samples as a last, shorter frame (an odd byte is dropped)."""
        usable = len(self._buf) - len(self._buf) % (2 * self.num_channels)
        if usable <= 0:
            self._buf.clear()
            return []
        chunk = bytes(self._buf[:usable])
        self._buf.clear()
        return [rtc.AudioFrame(chunk, self.sample_rate, self.num_channels, usable // (2 * self.num_channels))]


def frames_from_pcm(
    data: bytes, sample_rate: int, num_channels: int = 1, frame_ms: int = 10
) -> list[rtc.AudioFrame]:
    """Cut PCM16 bytes into frames of ``frame_ms`` milliseconds (the last may be shorter)."""
    bs = AudioByteStream(sample_rate, num_channels, sample_rate * frame_ms // 1000)
    return bs.write(data) + bs.flush()


def read_wav(source: str | Path | bytes, frame_ms: int = 10) -> list[rtc.AudioFrame]:
    """Read a PCM16 WAV file (path or bytes) into frames of ``frame_ms`` milliseconds."""
    fh = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else open(source, "rb")
    with fh, wave.open(fh, "rb") as w:
        if w.getsampwidth() != 2:
            raise AudioFormatError(f"WAV must be 16-bit PCM, this one has {8 * w.getsampwidth()}-bit samples")
        rate, channels = w.getframerate(), w.getnchannels()
        pcm = w.readframes(w.getnframes())
    return frames_from_pcm(pcm, rate, channels, frame_ms)


def wav_bytes(buffer: AudioBuffer) -> bytes:
    """The audio as a PCM16 WAV file, in memory."""
    frame = merge_frames(buffer)
    return pcm_wav(bytes(frame.data), frame.sample_rate, frame.num_channels)


def pcm_wav(pcm: bytes, sample_rate: int, num_channels: int = 1) -> bytes:
    """Interleaved PCM16 as a WAV file, in memory."""
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(num_channels)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(pcm)
    return out.getvalue()


def write_wav(path: str | Path, buffer: AudioBuffer) -> None:
    """Write the audio to a PCM16 WAV file."""
    Path(path).write_bytes(wav_bytes(buffer))


def strip_wav_header(data: bytes) -> tuple[bytes, int | None, int | None]:
    """If ``data`` starts with a RIFF/WAVE header, return (pcm, rate, channels); else (data, None, None)."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return data, None, None
    pos, rate, channels = 12, None, None
    while pos + 8 <= len(data):
        cid, size = data[pos : pos + 4], int.from_bytes(data[pos + 4 : pos + 8], "little")
        if cid == b"fmt ":
            channels = int.from_bytes(data[pos + 10 : pos + 12], "little")
            rate = int.from_bytes(data[pos + 12 : pos + 16], "little")
        elif cid == b"data":
            return data[pos + 8 :], rate, channels
        pos += 8 + size + (size & 1)
    raise AudioFormatError("WAV data has a RIFF header but no data chunk")


def rms(frame: rtc.AudioFrame) -> float:
    """Root mean square of the samples, 0 to 32767 (0 is silence)."""
    a = to_array(frame).astype(np.float64)
    return float(np.sqrt(np.mean(a * a))) if a.size else 0.0
