import numpy as np
import pytest
from livekit import rtc

from livekit.agents.exceptions import AudioFormatError
from livekit.agents.utils import audio


def tone(seconds: float, rate: int = 16000, channels: int = 1, freq: float = 440.0) -> rtc.AudioFrame:
    t = np.arange(int(seconds * rate)) / rate
    mono = (np.sin(2 * np.pi * freq * t) * 10000).astype(np.int16)
    data = np.repeat(mono[:, None], channels, axis=1).reshape(-1)
    return rtc.AudioFrame(data.tobytes(), rate, channels, len(mono))


def test_merge_frames_keeps_every_sample_in_order():
    frames = audio.frames_from_pcm(tone(0.25).data.tobytes(), 16000)
    assert len(frames) == 25 and all(f.samples_per_channel == 160 for f in frames)
    merged = audio.merge_frames(frames)
    assert bytes(merged.data) == bytes(tone(0.25).data)


def test_merge_frames_refuses_mixed_formats_with_advice():
    with pytest.raises(AudioFormatError, match="resample"):
        audio.merge_frames([tone(0.01, 16000), tone(0.01, 48000)])
    with pytest.raises(AudioFormatError, match="empty"):
        audio.merge_frames([])


def test_resample_changes_rate_and_keeps_duration():
    out = audio.resample(tone(1.0, 48000), 16000)
    assert out.sample_rate == 16000
    assert abs(audio.duration(out) - 1.0) < 0.02
    assert audio.rms(out) > 5000  # still the tone, not silence


def test_byte_stream_cuts_exact_frames_and_flushes_the_rest():
    bs = audio.AudioByteStream(24000, 1)  # 10 ms = 240 samples = 480 bytes
    pcm = tone(0.105, 24000).data.tobytes()
    frames = bs.write(pcm[:1000]) + bs.write(pcm[1000:])
    assert [f.samples_per_channel for f in frames] == [240] * 10
    rest = bs.flush()
    assert sum(f.samples_per_channel for f in frames + rest) == 2520
    assert b"".join(bytes(f.data) for f in frames + rest) == pcm


def test_wav_round_trip_and_header_stripping(tmp_path):
    frame = tone(0.3, 16000, channels=2)
    path = tmp_path / "a.wav"
    audio.write_wav(path, frame)
    frames = audio.read_wav(path)
    assert frames[0].num_channels == 2 and frames[0].sample_rate == 16000
    assert bytes(audio.merge_frames(frames).data) == bytes(frame.data)
    pcm, rate, ch = audio.strip_wav_header(path.read_bytes())
    assert (rate, ch, pcm) == (16000, 2, bytes(frame.data))
    assert audio.strip_wav_header(b"raw pcm") == (b"raw pcm", None, None)


def test_to_mono_averages_channels():
    mono = audio.to_mono(tone(0.1, 16000, channels=2))
    assert mono.num_channels == 1
    assert bytes(mono.data) == bytes(tone(0.1, 16000).data)


def test_check_frame_rejects_bad_input_with_a_reason():
    with pytest.raises(AudioFormatError, match="AudioFrame"):
        audio.check_frame(b"\x00\x00")
    with pytest.raises(AudioFormatError, match="empty"):
        audio.check_frame(rtc.AudioFrame(b"", 16000, 1, 0))
