"""ReplayBuffer: what a live stream resends after a reconnect. A wrong offset here either
loses audio (a word never transcribed) or resends covered audio (a word transcribed twice);
the end-to-end tests in test_deepgram_strict.py show that through the fake, these pin each
rule down on its own."""

from __future__ import annotations

import pytest

from livekit.plugins.deepgram._replay import Marker, ReplayBuffer

RATE = 16000


def samples(n: int, start: int = 0) -> bytes:
    """``n`` distinct 16-bit samples (so a wrong offset reads different bytes)."""
    return b"".join(((start + i) % 65536).to_bytes(2, "little") for i in range(n))


def test_a_new_buffer_is_empty_at_offset_zero():
    buf = ReplayBuffer(RATE)
    assert (buf.base, buf.end, buf.retained_bytes, buf.retained_seconds, buf.markers) == (0, 0, 0, 0.0, [])
    assert buf.sample_rate == RATE


def test_appended_audio_is_retained_and_read_back_from_global_offsets():
    buf = ReplayBuffer(RATE)
    buf.append(samples(100))
    buf.append(samples(60, start=100))
    assert buf.end == 320 and buf.retained_bytes == 320
    assert buf.read(0, 320) == samples(160)
    assert buf.read(40, 10) == samples(5, start=20)
    assert buf.read(300, 100) == samples(10, start=150)  # clipped at the end
    assert buf.read(320, 10) == b""


def test_retained_seconds_count_16_bit_samples_at_the_stream_rate():
    buf = ReplayBuffer(8000)
    buf.append(bytes(8000 * 2 * 3))
    assert buf.retained_seconds == 3.0


def test_markers_sit_at_the_end_of_the_audio_with_increasing_ids():
    buf = ReplayBuffer(RATE)
    buf.append(samples(10))
    first = buf.mark("Finalize")
    buf.append(samples(5))
    last = buf.mark("CloseStream")
    assert first == Marker(20, "Finalize", 0)
    assert last == Marker(30, "CloseStream", 1)
    assert buf.markers == [first, last]


def test_a_final_result_drops_the_audio_it_covers_and_keeps_the_rest():
    buf = ReplayBuffer(RATE)
    buf.append(samples(RATE * 2))  # 2 s
    buf.covered(0.5, session_base=0, sent=buf.end)
    assert buf.base == RATE  # 0.5 s = 8000 samples = 16000 bytes
    assert buf.end == RATE * 4
    assert buf.retained_seconds == 1.5
    # what is left is the audio after the covered part, at the same global offsets
    assert buf.read(RATE, 4) == samples(2, start=RATE // 2)


def test_session_relative_seconds_are_moved_to_global_offsets():
    """The second reconnect: Deepgram's 1.0 s in a session that began at 3 s of audio is
    4 s into the stream (keeping it session-relative would resend 3 s that are covered)."""
    buf = ReplayBuffer(RATE)
    buf.append(samples(RATE * 6))
    buf.covered(3.0, session_base=0, sent=buf.end)
    session_base = buf.base
    assert session_base == RATE * 6
    buf.covered(1.0, session_base=session_base, sent=buf.end)
    assert buf.base == RATE * 8
    assert buf.read(buf.base, 2) == samples(1, start=RATE * 4)


def test_seconds_round_to_the_nearest_sample():
    buf = ReplayBuffer(RATE)
    buf.append(samples(RATE))
    buf.covered(0.10003, session_base=0, sent=buf.end)  # 1600.48 samples
    assert buf.base == 1600 * 2
    buf.covered(0.20004, session_base=0, sent=buf.end)  # 3200.64 samples
    assert buf.base == 3201 * 2


def test_a_result_never_covers_audio_the_session_was_not_sent():
    """Deepgram's padding can end a result past the last byte sent: the unsent audio must
    stay for the next session."""
    buf = ReplayBuffer(RATE)
    buf.append(samples(RATE))
    buf.covered(0.9, session_base=0, sent=1000)
    assert buf.base == 1000
    assert buf.read(1000, 2) == samples(1, start=500)


def test_an_older_result_never_moves_the_base_back():
    buf = ReplayBuffer(RATE)
    buf.append(samples(RATE))
    buf.covered(0.5, session_base=0, sent=buf.end)
    base, end = buf.base, buf.end
    buf.covered(0.25, session_base=0, sent=buf.end)
    assert (buf.base, buf.end) == (base, end)
    buf.covered(0.5, session_base=0, sent=buf.end)  # the same end: nothing to drop
    assert (buf.base, buf.end) == (base, end)


def test_covered_finalize_markers_are_dropped_and_close_stays():
    buf = ReplayBuffer(RATE)
    buf.append(samples(RATE // 2))
    early = buf.mark("Finalize")  # at 0.5 s
    buf.append(samples(RATE // 2))
    at_end = buf.mark("Finalize")  # at 1.0 s
    buf.append(samples(RATE // 2))
    later = buf.mark("Finalize")  # at 1.5 s
    close = buf.mark("CloseStream")
    buf.covered(1.0, session_base=0, sent=buf.end)
    # a Finalize exactly at the covered end is covered too; CloseStream always goes out
    assert buf.markers == [later, close]
    assert early not in buf.markers and at_end not in buf.markers
    buf.covered(1.5, session_base=0, sent=buf.end)
    assert buf.markers == [close]


def test_a_result_that_covers_nothing_keeps_every_marker():
    buf = ReplayBuffer(RATE)
    buf.append(samples(100))
    m = buf.mark("Finalize")
    buf.covered(0.0, session_base=0, sent=buf.end)
    assert buf.markers == [m]


def test_reading_before_the_retained_audio_is_refused():
    buf = ReplayBuffer(RATE)
    buf.append(samples(RATE))
    buf.covered(0.5, session_base=0, sent=buf.end)
    with pytest.raises(ValueError, match="before the retained audio"):
        buf.read(buf.base - 2, 2)
    assert buf.read(buf.base, 2) == samples(1, start=RATE // 2)
