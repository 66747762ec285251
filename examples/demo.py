"""The README's demo: a local LiveKit server, a worker running examples/utterance_agent.py,
and a participant that speaks three sentences into a room and prints what the agent sends
back. Everything stops at the end; the exit code is 0 when the agent reported each
utterance. The worker runs with ``dev`` (never gated by load, a free health port), so a
busy machine still gets its agent.

    nox -s demo            # or: python examples/demo.py  (core, silero and nltk installed)
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from livekit import rtc

from livekit.agents.testing.server import LiveKitServer, ensure_server_binary
from livekit.agents.testing.speech import speech

HERE = Path(__file__).parent
UTTERANCES = [
    "Hello agent, can you hear me?",
    "The quick brown fox jumps over the lazy dog.",
    "Thank you, goodbye.",
]


def say(msg: str) -> None:
    print(msg, flush=True)


def wait_for_log(path: Path, needle: str, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if needle in path.read_text(errors="replace").lower():
            return
        if proc.poll() is not None:
            raise SystemExit(f"the worker exited with {proc.returncode}:\n{path.read_text()[-3000:]}")
        time.sleep(0.1)
    raise SystemExit(f"the worker did not register within {timeout:.0f} s:\n{path.read_text()[-3000:]}")


async def participant(server: LiveKitServer, room_name: str) -> tuple[int, int]:
    sample = speech(UTTERANCES, sample_rate=48000, silence=1.2)
    room = rtc.Room()
    events: asyncio.Queue[dict] = asyncio.Queue()

    def on_data(packet: rtc.DataPacket) -> None:
        if packet.topic == "agent-events":
            events.put_nowait(json.loads(packet.data))

    room.on("data_received", on_data)
    await room.connect(server.url, server.token("demo-speaker", room_name))
    say(f"==> joined room {room_name!r} as demo-speaker; waiting for the agent")

    deadline = time.monotonic() + 30
    while not any(p.identity.startswith("utterance-agent") for p in room.remote_participants.values()):
        if time.monotonic() > deadline:
            raise SystemExit("the agent did not join the room within 30 s")
        await asyncio.sleep(0.05)
    say("==> the agent joined; speaking: " + " / ".join(UTTERANCES))

    source = rtc.AudioSource(sample.sample_rate, 1)
    track = rtc.LocalAudioTrack.create_audio_track("microphone", source)
    await room.local_participant.publish_track(track, rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE))

    async def speak() -> None:
        await asyncio.sleep(0.5)  # let the agent subscribe
        for frame in sample.frames(10):
            await source.capture_frame(frame)
        await source.wait_for_playout()

    speaking = asyncio.create_task(speak())
    starts = ends = 0
    deadline = time.monotonic() + sample.duration + 20
    while ends < len(UTTERANCES) and time.monotonic() < deadline:
        try:
            ev = await asyncio.wait_for(events.get(), timeout=1.0)
        except asyncio.TimeoutError:
            continue
        if ev["type"] == "greeting":
            say(f"[agent] {ev['text']}")
        elif ev["type"] == "start_of_speech":
            starts += 1
            say(f"[agent] start of speech at {ev['at']:.2f} s")
        elif ev["type"] == "end_of_speech":
            ends += 1
            say(f"[agent] end of speech at {ev['at']:.2f} s ({ev['duration']:.2f} s of speech)")
    await speaking
    await room.disconnect()
    return starts, ends


def main() -> int:
    binary = ensure_server_binary(progress=True)
    with LiveKitServer(binary) as server, tempfile.TemporaryDirectory() as tmp:
        say(f"==> LiveKit server running at {server.url}")
        log_path = Path(tmp) / "worker.log"
        with open(log_path, "w") as log:
            worker = subprocess.Popen(
                [sys.executable, str(HERE / "utterance_agent.py"), "dev", "--log-level", "INFO"],
                env={**os.environ, **server.env()},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_for_log(log_path, "registered", worker, timeout=30)
            say("==> worker registered with the server")
            starts, ends = asyncio.run(participant(server, f"demo-{os.getpid()}"))
        finally:
            worker.send_signal(signal.SIGTERM)
            try:
                code = worker.wait(timeout=40)
            except subprocess.TimeoutExpired:
                worker.kill()
                code = worker.wait()
        say(f"==> worker drained and exited with code {code}")
        ok = starts == ends == len(UTTERANCES)
        say(f"==> {len(UTTERANCES)} utterances spoken; the agent reported {starts} starts and {ends} ends"
            + ("" if ok else "\n--- worker log ---\n" + log_path.read_text()[-4000:]))
        return 0 if ok and code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
