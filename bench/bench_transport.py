"""The transport floor of a voice turn: one-way audio delays through a local LiveKit server,
with bench_voice's settings, which every framework on LiveKit pays.

    python bench/bench_transport.py [--bursts 12]

* in: a participant's 48 kHz source (40 ms queue) -> the agent reading 16 kHz, 32 ms frames
  (our VAD input): from the instant a tone burst's last sample leaves the source queue to
  the receipt of the frame that holds it (the earliest a VAD can know the speech ended);
* out: the agent's 24 kHz source (the openai TTS rate, default queue) -> the participant
  reading 48 kHz, 10 ms frames: from the instant a burst's first sample leaves the queue to
  the receipt of the first loud frame.

In ``bench_voice.py``'s "time outside the window", what is not the VAD's silence window is
at least in + out (+ the model's own decay after the speech and the whole-window rounding).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import numpy as np
from bench_voice import LOUD_RMS  # a frame heard as the agent's voice there
from livekit import rtc

from livekit.agents.utils.audio import rms


async def one_way(srv, src_rate: int, queue_ms: int | None, dst_rate: int, dst_ms: int, edge: str, bursts: int) -> list[float]:  # type: ignore[no-untyped-def]
    """Delays (s) of ``bursts`` 300 ms tones, at their first or last sample (``edge``)."""
    tx, rx = rtc.Room(), rtc.Room()
    room = f"transport-{edge}-{time.time_ns() % 10**9}"
    received: list[tuple[float, float]] = []  # (arrival, RMS) per frame
    subscribed = asyncio.Event()
    readers: list[asyncio.Task[None]] = []

    async def read(track: rtc.Track) -> None:
        async for ev in rtc.AudioStream(track, sample_rate=dst_rate, num_channels=1, frame_size_ms=dst_ms):
            received.append((time.monotonic(), rms(ev.frame)))

    def on_track(track: rtc.Track, *_: object) -> None:
        readers.append(asyncio.create_task(read(track)))
        subscribed.set()

    rx.on("track_subscribed", on_track)
    await rx.connect(srv.url, srv.token("receiver", room))
    await tx.connect(srv.url, srv.token("sender", room))
    source = rtc.AudioSource(src_rate, 1, **({} if queue_ms is None else {"queue_size_ms": queue_ms}))
    track = rtc.LocalAudioTrack.create_audio_track("audio", source)
    await tx.local_participant.publish_track(track, rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE))
    n = src_rate // 100
    silence = rtc.AudioFrame(bytes(2 * n), src_rate, 1, n)
    t = np.arange(src_rate * 3 // 10) / src_rate
    tone = (8000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
    frames = [rtc.AudioFrame(tone[i : i + n].tobytes(), src_rate, 1, n) for i in range(0, len(tone), n)]
    await asyncio.wait_for(subscribed.wait(), 20)
    marks: list[float] = []
    for _ in range(bursts + 2):  # the first two settle the jitter buffers
        for _ in range(100):
            await source.capture_frame(silence)
        for i, frame in enumerate(frames):
            await source.capture_frame(frame)
            if edge == "first" and i == 0:  # its first sample leaves the queue 10 ms before the queue's end
                marks.append(time.monotonic() + source.queued_duration - 0.01)
            elif edge == "last" and i == len(frames) - 1:
                marks.append(time.monotonic() + source.queued_duration)
    for _ in range(50):
        await source.capture_frame(silence)
    await asyncio.sleep(0.3)
    delays = []
    loud = [at for at, level in received if level >= LOUD_RMS]
    for mark in marks[2:]:
        if edge == "first":
            at = next((a for a in loud if a > mark - 0.005), None)
        else:
            at = max((a for a in loud if mark - 0.3 < a < mark + 0.5), default=None)
        if at is not None:
            delays.append(at - mark)
    for task in readers:
        task.cancel()
    await tx.disconnect()
    await rx.disconnect()
    return delays


async def run(bursts: int) -> None:
    from livekit.agents.testing.server import LiveKitServer

    with LiveKitServer() as srv:
        into = await one_way(srv, 48000, 40, 16000, 32, "last", bursts)
        out = await one_way(srv, 24000, None, 48000, 10, "first", bursts)
    print("One-way audio delay through a local LiveKit server (p50, min-max, seconds)")
    for name, d in (("in: participant -> agent (16 kHz, 32 ms frames), speech end", into),
                    ("out: agent -> participant (48 kHz, 10 ms frames), speech start", out)):
        print(f"  {name:<64} {statistics.median(d):.3f}  ({min(d):.3f}-{max(d):.3f}, {len(d)} bursts)")
    print(f"  transport floor of a turn (in + out): {statistics.median(into) + statistics.median(out):.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bursts", type=int, default=12)
    asyncio.run(run(ap.parse_args().bursts))


if __name__ == "__main__":
    main()
