"""The fakes "hear" an expected utterance with ``sounds_like``: what a receiver's jitter
buffer does to speech (repeats, small gaps, a few percent of stretch) must still be heard,
as a real STT would; other words, noise and broken samples must not."""

from __future__ import annotations

import numpy as np
import pytest

from livekit.agents.testing.speech import SOUNDS_LIKE_THRESHOLD, sounds_like, speech, utterances_of

RATE = 48000
SENTENCES = [
    "What is the weather in Paris today?",
    "And how about tomorrow?",
    "Please book a table for two.",
    "What is the time in London now?",
]


@pytest.fixture(scope="module")
def spoken() -> list[np.ndarray]:
    return [np.frombuffer(utterances_of(speech(text, sample_rate=RATE))[0].pcm, dtype=np.int16) for text in SENTENCES]


def repeat(x: np.ndarray, at: float, ms: int) -> np.ndarray:
    """``ms`` of the audio before ``at`` (a fraction of it) played twice."""
    i, n = int(len(x) * at), RATE * ms // 1000
    return np.concatenate([x[:i], x[i - n : i], x[i:]])


def stretch(x: np.ndarray, factor: float) -> np.ndarray:
    t = np.arange(0, len(x) - 1, 1 / factor)
    return np.interp(t, np.arange(len(x)), x).astype(np.int16)


def score(x: np.ndarray, ref: np.ndarray) -> float:
    return sounds_like(x.tobytes(), RATE, ref.tobytes(), RATE)


@pytest.mark.parametrize(
    "distort",
    [
        lambda x: repeat(x, 0.3, 250),
        lambda x: repeat(repeat(repeat(x, 0.25, 80), 0.5, 80), 0.75, 80),
        lambda x: stretch(x, 1.12),
        lambda x: stretch(x, 0.92),
        lambda x: np.concatenate([x[: len(x) // 2], x[len(x) // 2 + RATE // 10 :]]),  # 100 ms lost
    ],
    ids=["250 ms repeated", "80 ms repeated 3 times", "12% longer", "8% shorter", "100 ms lost"],
)
def test_speech_a_jitter_buffer_reshaped_is_still_heard(spoken, distort):
    x = spoken[0]
    assert score(x, x) > 0.99
    assert score(distort(x), x) >= SOUNDS_LIKE_THRESHOLD


def test_other_words_noise_and_swapped_bytes_are_not_heard(spoken):
    for i, x in enumerate(spoken):
        for j, ref in enumerate(spoken):
            if i != j:
                assert score(x, ref) < SOUNDS_LIKE_THRESHOLD, (SENTENCES[i], SENTENCES[j])
    x = spoken[0]
    noise = (np.random.default_rng(0).standard_normal(len(x)) * 3000).astype(np.int16)
    assert score(noise, x) < SOUNDS_LIKE_THRESHOLD
    assert score(x.byteswap(), x) < SOUNDS_LIKE_THRESHOLD


def test_half_of_the_utterance_is_not_the_utterance(spoken):
    x = spoken[0]
    assert score(x[: len(x) // 2], x) < SOUNDS_LIKE_THRESHOLD
