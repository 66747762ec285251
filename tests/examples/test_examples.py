"""The examples a newcomer runs, each against the real LiveKit server: the demo, the
transcriber (a streaming STT, and a non-streaming one through the stream adapter) and
the speaker. Cloud providers are the plugins' loopback fakes."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]


def test_demo_reports_every_utterance_and_stops_cleanly() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "demo.py")], capture_output=True, text=True, timeout=240
    )
    text = out.stdout + out.stderr
    assert out.returncode == 0, text[-4000:]
    assert "[agent] Hello, I am the utterance agent." in text
    assert "[agent] Dr. Smith says hi." in text  # nltk kept "Dr." inside its sentence
    assert text.count("[agent] start of speech") == 3 and text.count("[agent] end of speech") == 3
    assert "the agent reported 3 starts and 3 ends" in text
    assert "worker drained and exited with code 0" in text


class Listener:
    """A participant that publishes speech and records what agents send back."""

    def __init__(self) -> None:
        from livekit import rtc

        self.room = rtc.Room()
        self.messages: dict[str, list[dict[str, Any]]] = {}
        self.transcriptions: list[Any] = []
        self.audio_frames: list[Any] = []
        self.tasks: list[asyncio.Task[Any]] = []
        self.room.on("data_received", self._on_data)
        self.room.on("transcription_received", lambda segments, participant, publication: self.transcriptions.extend(segments))
        self.room.on("track_subscribed", self._on_track)

    def _on_data(self, packet: Any) -> None:
        self.messages.setdefault(packet.topic, []).append(json.loads(packet.data))

    def _on_track(self, track: Any, publication: Any, participant: Any) -> None:
        from livekit import rtc

        async def read() -> None:
            async for ev in rtc.AudioStream(track, sample_rate=24000, num_channels=1):
                self.audio_frames.append(ev.frame)

        if track.kind == rtc.TrackKind.KIND_AUDIO:
            self.tasks.append(asyncio.create_task(read()))

    async def join(self, server: Any, room: str) -> None:
        await self.room.connect(server.url, server.token(f"listener-{room}", room))

    async def speak(self, sample: Any) -> None:
        from livekit import rtc

        source = rtc.AudioSource(sample.sample_rate, 1)
        track = rtc.LocalAudioTrack.create_audio_track("mic", source)
        subscribed = asyncio.Event()
        self.room.on("local_track_subscribed", lambda _track: subscribed.set())
        await self.room.local_participant.publish_track(
            track, rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
        )
        await asyncio.wait_for(subscribed.wait(), 30)  # the agent subscribed to the microphone
        silence = rtc.AudioFrame(bytes(sample.sample_rate // 50), sample.sample_rate, 1, sample.sample_rate // 100)
        for _ in range(100):  # 1 s of leading silence while the agent's audio stream starts
            await source.capture_frame(silence)
        for frame in sample.frames(10):
            await source.capture_frame(frame)
        for _ in range(150):  # 1.5 s of trailing silence ends the last utterance
            await source.capture_frame(silence)

    async def leave(self) -> None:
        for t in self.tasks:
            t.cancel()
        await self.room.disconnect()


async def _agent_joined(lk: Any, room: str, prefix: str) -> bool:
    return any(i.startswith(prefix) for i in await lk.identities(room))


async def _transcribe_with(provider: str, fake: Any, server: Any, lk: Any, agent_process: Any, helpers: Any, speech: Any) -> None:
    utterances = ["Hello agent, can you hear me?", "The weather is nice today."]
    sample = speech(utterances, sample_rate=48000, silence=1.5)
    fake.expect(sample)
    options = {"api_key": fake.api_key, "base_url": fake.base_url}
    worker = agent_process(
        "examples/transcriber.py", server, env={"AGENT_STT": provider, "AGENT_STT_OPTIONS": json.dumps(options)}
    )
    await worker.wait_output("registered worker")
    room = helpers.unique_room("transcribe")
    listener = Listener()
    try:
        await listener.join(server, room)
        await helpers.wait_until(lambda: _agent_joined(lk, room, "transcriber-"), 20, "the transcriber to join")
        await listener.speak(sample)
        try:
            await helpers.wait_until(
                lambda: len([m for m in listener.messages.get("transcripts", []) if m["final"]]) >= 2,
                60,
                "two final transcripts",
            )
        except AssertionError as exc:
            heard = getattr(fake, "similarities", None)
            raise AssertionError(f"{exc}; got {listener.messages.get('transcripts')}; the fake's similarity "
                                 f"scores: {heard}\n{worker.output()[-3000:]}") from None
        finals = [m["text"] for m in listener.messages["transcripts"] if m["final"]]
        assert finals == utterances, worker.output()[-3000:]
        assert all(m["participant"] == f"listener-{room}" for m in listener.messages["transcripts"])
        await helpers.wait_until(
            lambda: {s.text for s in listener.transcriptions if s.final} >= set(utterances), 10,
            "the transcription events",
        )
    finally:
        await listener.leave()
    # the key never reaches the logs
    assert fake.api_key not in worker.output()


async def test_transcriber_with_a_streaming_stt(livekit_server, lk, agent_process, helpers, speech) -> None:
    from livekit.plugins.deepgram.testing import FakeDeepgram

    async with FakeDeepgram() as fake:
        await _transcribe_with("deepgram", fake, livekit_server, lk, agent_process, helpers, speech)
        assert fake.live, "the transcriber never opened a live Deepgram stream"


async def test_transcriber_with_a_non_streaming_stt_through_the_adapter(
    livekit_server, lk, agent_process, helpers, speech
) -> None:
    from livekit.plugins.openai.testing import FakeOpenAI

    async with FakeOpenAI() as fake:
        await _transcribe_with("openai", fake, livekit_server, lk, agent_process, helpers, speech)
        # one upload per utterance: the VAD of the stream adapter cut the audio
        assert len([r for r in fake.requests if "transcriptions" in r.path]) == 2


async def test_speaker_speaks_the_text_it_is_sent(livekit_server, lk, agent_process, helpers) -> None:
    from livekit.agents.utils.audio import rms
    from livekit.plugins.openai.testing import FakeOpenAI

    async with FakeOpenAI() as fake:
        options = {"api_key": fake.api_key, "base_url": fake.base_url}
        worker = agent_process(
            "examples/speaker.py", livekit_server, env={"AGENT_TTS": "openai", "AGENT_TTS_OPTIONS": json.dumps(options)}
        )
        await worker.wait_output("registered worker")
        room = helpers.unique_room("speak")
        listener = Listener()
        try:
            await listener.join(livekit_server, room)
            await helpers.wait_until(lambda: listener.tasks, 20, "the speaker's audio track")
            text = "Hello there, this is the speaker agent talking."
            await listener.room.local_participant.publish_data(text, reliable=True, topic="say")
            await helpers.wait_until(lambda: listener.messages.get("said"), 20, "the speaker to finish")
            said = listener.messages["said"][0]
            assert said["said"] == text and said["seconds"] > 1.0
            await helpers.wait_until(
                lambda: sum(1 for f in listener.audio_frames if rms(f) > 300) > 50, 10, "audible frames"
            )
            loud = np.mean([rms(f) > 300 for f in listener.audio_frames])
            assert loud > 0.05, f"only {loud:.0%} of the received frames carry sound"
        finally:
            await listener.leave()
        speech_requests = [r for r in fake.requests if "speech" in r.path]
        assert len(speech_requests) == 1, worker.output()[-2000:]
