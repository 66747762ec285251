"""A voice agent in a real room: an in-process worker whose job runs a VoicePipelineAgent
(silero VAD, the openai plugin's STT, LLM and TTS against the loopback fakes), and a real
rtc participant with a microphone that speaks espeak utterances on cue, hears the agent's
track and reads the ``lk.transcription`` text streams."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from livekit import agents, rtc

from livekit.agents.testing.speech import SpeechSample
from livekit.agents.utils.audio import rms
from livekit.agents.voice import TRANSCRIPTION_TOPIC, VoiceOptions, VoicePipelineAgent

RATE = 48000
SILENT_RMS = 200.0


class Mic:
    """A participant's microphone: silence, and speech when told.

    An utterance goes to the source whole, in one frame, so the rtc runtime sends it at real
    time however late this process's event loop runs (the agent's job shares it); frames
    pumped one by one from a starved loop left holes inside the speech. Between utterances
    the pump keeps ``LEAD`` seconds of silence queued, so the next utterance starts soon."""

    LEAD = 0.03
    MAX_UTTERANCE_S = 30

    def __init__(self, room: rtc.Room) -> None:
        self.room = room
        self.source = rtc.AudioSource(RATE, 1, queue_size_ms=self.MAX_UTTERANCE_S * 1000)
        self._pending: list[tuple[rtc.AudioFrame, asyncio.Future[float]]] = []
        self._wake = asyncio.Event()
        self.speech_started_at: float | None = None
        """Monotonic time the current utterance's first sample is sent (estimated)."""
        self._task: asyncio.Task[None] | None = None

    async def publish(self) -> None:
        track = rtc.LocalAudioTrack.create_audio_track("mic", self.source)
        await self.room.local_participant.publish_track(
            track, rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE))
        self._task = asyncio.create_task(self._pump())

    async def _pump(self) -> None:
        silence = rtc.AudioFrame(bytes(RATE // 100 * 2), RATE, 1, RATE // 100)
        while True:
            if self._pending:
                frame, started = self._pending.pop(0)
                if not started.done():
                    started.set_result(time.monotonic() + self.source.queued_duration)
                await self.source.capture_frame(frame)
            elif self.source.queued_duration < self.LEAD:
                await self.source.capture_frame(silence)
            else:
                self._wake.clear()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), 0.005)

    async def say(self, sample: SpeechSample, *, wait: bool = True) -> float:
        """Send the sample's audio; returns the (estimated) time its first sample is sent,
        after it was all sent when ``wait``."""
        pcm = sample.pcm
        assert sample.sample_rate == RATE and len(pcm) / 2 / RATE <= self.MAX_UTTERANCE_S
        started: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._pending.append((rtc.AudioFrame(pcm, RATE, 1, len(pcm) // 2), started))
        self._wake.set()
        self.speech_started_at = at = await started
        if wait:
            await asyncio.sleep(max(0.0, at + sample.duration - time.monotonic()))
        return at

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.source.aclose()


@dataclass
class Heard:
    """What the participant received from the agent."""

    frames: list[tuple[float, float]] = field(default_factory=list)  # (monotonic time, rms)
    transcripts: list[dict[str, Any]] = field(default_factory=list)
    track_sids: list[str] = field(default_factory=list)

    def loud_since(self, t: float) -> list[float]:
        return [at for at, level in list(self.frames) if at >= t and level > SILENT_RMS]

    def audio_seconds(self, since: float = 0.0) -> float:
        return 0.01 * len(self.loud_since(since))


class Ears:
    """The participant's ears: the agent's audio is read on a thread and event loop of
    their own, as on the participant's own device. Each frame is timed when it arrives,
    however busy the test's loop (which the agent's inline job shares) is; on that loop,
    frames that arrived while it was busy were all timed when it got to them."""

    def __init__(self, heard: Heard) -> None:
        self.heard = heard
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="voice-test-ears", daemon=True)
        self._thread.start()
        self._reads: list[asyncio.Task[None]] = []  # on the ears' loop

    def listen(self, track: rtc.Track) -> None:
        self._loop.call_soon_threadsafe(lambda: self._reads.append(self._loop.create_task(self._read(track))))

    async def _read(self, track: rtc.Track) -> None:
        stream = rtc.AudioStream(track, loop=self._loop, sample_rate=RATE, num_channels=1)
        try:
            async for ev in stream:
                self.heard.frames.append((time.monotonic(), rms(ev.frame)))
        finally:
            await stream.aclose()

    async def _stop(self) -> list[BaseException | None]:
        for read in self._reads:
            read.cancel()
        return await asyncio.gather(*self._reads, return_exceptions=True)

    async def aclose(self) -> None:
        """Stop reading and the thread; a read that had failed raises its error."""
        results = await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(self._stop(), self._loop))
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()
        failed = [r for r in results if isinstance(r, Exception)]
        if failed:
            raise AssertionError(f"reading the agent's audio failed: {failed[0]!r}") from failed[0]


@dataclass
class VoiceRun:
    """A running voice agent (in the worker of this test) and its participant."""

    room: rtc.Room
    mic: Mic
    heard: Heard
    fake: Any
    events: list[tuple[float, str, Any]] = field(default_factory=list)
    agents: list[VoicePipelineAgent] = field(default_factory=list)
    contexts: list[Any] = field(default_factory=list)

    @property
    def agent(self) -> VoicePipelineAgent:
        return self.agents[0]

    def named(self, name: str) -> list[Any]:
        return [v for _, n, v in self.events if n == name]

    def at(self, name: str) -> list[float]:
        return [t for t, n, _ in self.events if n == name]

    async def wait_event(self, name: str, count: int = 1, timeout: float = 30.0) -> Any:
        deadline = time.monotonic() + timeout
        while len(self.named(name)) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout:g}s waiting for {count} {name!r} event(s); "
                                     f"events: {[n for _, n, _ in self.events]}")
            await asyncio.sleep(0.02)
        return self.named(name)[count - 1]


def record_events(agent: VoicePipelineAgent, events: list[tuple[float, str, Any]]) -> None:
    for name in ("user_started_speaking", "user_stopped_speaking", "user_transcript",
                 "agent_started_speaking", "agent_stopped_speaking", "interrupted",
                 "tool_called", "metrics", "error"):
        agent.on(name, lambda value, name=name: events.append((time.monotonic(), name, value)))


@pytest.fixture(scope="session")
def silero_vad() -> Any:
    from livekit.plugins import silero

    return silero.VAD()


@pytest.fixture
async def voice_agent(livekit_server, clients, worker_opts, helpers, silero_vad):
    """``await voice_agent(fake, tools=..., options=...)`` -> :class:`VoiceRun`: a worker
    whose job runs the pipeline (openai STT, LLM and TTS) against ``fake`` (a FakeOpenAI;
    ``tts_fake`` another one for the TTS), and a participant who joined."""
    from livekit.plugins import openai

    started: list[Any] = []

    async def start(fake: Any, *, tools: tuple = (), options: VoiceOptions | None = None,
                    retry: Any = None, instructions: str = "You are a helpful voice assistant.",
                    tts_fake: Any = None, vad: Any = None) -> VoiceRun:
        events: list[tuple[float, str, Any]] = []
        made: list[VoicePipelineAgent] = []
        contexts: list[Any] = []
        keys = dict(api_key=fake.api_key, base_url=fake.base_url, retry=retry)
        tts_fake = tts_fake or fake
        llm_keys = dict(keys, **({"stall_timeout": retry.timeout} if retry is not None else {}))
        tts_keys = dict(api_key=tts_fake.api_key, base_url=tts_fake.base_url, retry=retry)

        async def agent_fn(ctx: agents.JobContext) -> None:
            providers = openai.STT(**keys), openai.LLM(**llm_keys), openai.TTS(**tts_keys)
            agent = VoicePipelineAgent(vad=vad or silero_vad, stt=providers[0], llm=providers[1], tts=providers[2],
                                       instructions=instructions, tools=tools, options=options)
            record_events(agent, events)
            made.append(agent)
            contexts.append(ctx)
            await agent.start(ctx)

            async def close_providers() -> None:  # instances given to the agent stay their owner's
                for provider in providers:
                    await provider.aclose()

            ctx.add_shutdown_callback(close_providers)

        async def handler(req: agents.JobRequest) -> None:
            await req.accept(agent_fn, subscribe_cb=agents.AutoSubscribe.AUDIO_ONLY)

        worker = agents.Worker(request_handler=handler, worker_type=agents.JobType.JT_ROOM, **worker_opts())
        await worker.__aenter__()
        started.append(worker)
        room_name = helpers.unique_room("voice")
        user = await clients.join(room_name, "alice")
        heard = Heard()
        ears = Ears(heard)
        started.append(ears)

        def on_subscribed(track: rtc.Track, pub: rtc.RemoteTrackPublication, p: rtc.RemoteParticipant) -> None:
            if track.kind == rtc.TrackKind.KIND_AUDIO:
                heard.track_sids.append(pub.sid)
                ears.listen(track)

        user.room.on("track_subscribed", on_subscribed)

        async def read_text(reader: rtc.TextStreamReader, identity: str) -> None:
            text = await reader.read_all()
            heard.transcripts.append({"from": identity, "text": text, "attributes": dict(reader.info.attributes or {})})

        user.room.register_text_stream_handler(
            TRANSCRIPTION_TOPIC, lambda reader, identity: user.tasks.append(asyncio.create_task(read_text(reader, identity))))
        mic = Mic(user.room)
        await mic.publish()
        run = VoiceRun(user.room, mic, heard, fake, events, made, contexts)
        await helpers.wait_until(lambda: made and heard.track_sids, 30, "the voice agent's track")
        # the agent hears the participant once it has subscribed to the microphone
        await helpers.wait_until(lambda: made[0]._listener is not None and made[0]._listener.track_sid, 30,
                                 "the agent subscribing to the microphone")
        started.append(mic)
        return run

    yield start
    for obj in reversed(started):
        if isinstance(obj, (Mic, Ears)):
            await obj.aclose()
        else:
            await obj.__aexit__(None, None, None)


def loudness(frames: list[rtc.AudioFrame]) -> float:
    data = np.concatenate([np.frombuffer(f.data, dtype=np.int16) for f in frames]).astype(np.float64)
    return float(np.sqrt(np.mean(data * data)))


@pytest.fixture
def mic_class() -> type[Mic]:
    """The :class:`Mic` of this conftest (for a second participant's microphone)."""
    return Mic
