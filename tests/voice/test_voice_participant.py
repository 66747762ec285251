"""The voice tests' participant, while the test's event loop (which the agent's inline job
shares) is blocked: its microphone sends an utterance without holes, and its ears time the
agent's audio when it arrives, not when the loop gets to it."""

from __future__ import annotations

import asyncio
import time

import numpy as np
from livekit import rtc

from livekit.agents.testing.speech import speech_segments
from livekit.plugins.openai.testing import FakeOpenAI

from .conftest import RATE, Mic


async def test_a_blocked_loop_leaves_no_hole_in_the_speech(clients, helpers, speech):
    sample = speech("What is the weather in Paris today, and how about tomorrow?", sample_rate=RATE)
    room = helpers.unique_room("mic")
    alice, bob = await clients.join(room, "alice"), await clients.join(room, "bob")
    received = bytearray()

    async def listen(track: rtc.Track) -> None:
        async for ev in rtc.AudioStream(track, sample_rate=RATE, num_channels=1):
            received.extend(ev.frame.data.cast("B"))

    bob.room.on("track_subscribed",
                lambda track, *_: bob.tasks.append(asyncio.create_task(listen(track))))
    sent = speech_segments(sample.pcm, RATE, gap=0.2)
    mic = Mic(alice.room)
    await mic.publish()
    try:
        await helpers.wait_until(lambda: len(received) > RATE * 2, 30, "the microphone's silence at the listener")
        started = await mic.say(sample, wait=False)
        await asyncio.sleep(max(0.0, started + sent[0][0] + 1.0 - time.monotonic()))
        time.sleep(0.5)  # the loop is starved a second into the speech
        await asyncio.sleep(max(0.0, started + sample.duration + 1.0 - time.monotonic()))
    finally:
        await mic.aclose()

    pcm = bytes(received)
    heard = speech_segments(pcm, RATE, gap=0.2)
    assert len(heard) == len(sent), f"the utterance arrived in {len(heard)} piece(s), sent as {len(sent)}: {heard}"
    span = lambda segs: segs[-1][1] - segs[0][0]  # noqa: E731
    assert abs(span(heard) - span(sent)) <= 0.1, f"heard {span(heard):.2f} s of speech, sent {span(sent):.2f} s"
    loud = np.abs(np.frombuffer(pcm, dtype=np.int16)).max()
    assert loud > 3000


async def test_a_blocked_loop_does_not_delay_what_the_ears_hear(voice_agent, speech):
    question = speech("Tell me about Paris.", sample_rate=RATE)
    async with FakeOpenAI() as fake:
        fake.expect(question)
        fake.chat.script("Paris is lovely in the spring. The river runs through the old town and past the islands.")
        run = await voice_agent(fake)
        await run.mic.say(question)
        await run.wait_event("agent_started_speaking")
        await asyncio.sleep(0.5)
        blocked_at = time.monotonic()
        time.sleep(0.5)  # the agent's audio plays on from its queue, and the ears hear it
        blocked_until = time.monotonic()
        await run.wait_event("agent_stopped_speaking")

    timed = [t for t, _ in run.heard.frames if blocked_at + 0.1 <= t <= blocked_until - 0.1]
    assert len(timed) >= 20, f"{len(timed)} of the ~30 frames that arrived while the loop was blocked were timed then"
