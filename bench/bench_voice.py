"""Voice turn latency and CPU: end of the user's speech -> first non-silent agent audio at
the participant, ours (VoicePipelineAgent) beside livekit-agents 1.8.9's AgentSession.

    python bench/bench_voice.py [--turns 12] [--skip-other]

Both agents run as workers (their own processes) on one local LiveKit server and talk to
one zero-latency loopback OpenAI fake (whisper-1 transcription, gpt-4o-mini chat
completions, tts-1 PCM speech), pointed at by OPENAI_BASE_URL. A real rtc participant
speaks an espeak question per turn and listens to the agent's track. Per turn:

* latency: the instant the question's last speech sample left the participant -> the
  first non-silent frame of the agent's answer it received (p50 / p95);
* split (from the fake's log of request arrivals): end of speech -> STT request (the VAD
  silence window is in here) -> LLM request -> TTS request -> first frame received;
* CPU: user+system time of the worker's process tree over the turns, per turn.

Configurations: each framework at its defaults, and both with the same silero silence
window (ours: endpointing inside the window; theirs: ``turn_detection="vad"``), where the
time outside the window is compared. The first turn of each run is a warm-up.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
QUESTION = "What is the weather like in Paris today?"
ANSWER = "It is sunny and warm in Paris today."
RATE = 48000
LOUD_RMS = 200.0
# the agent's marks of a turn (TurnMetrics fields), in the order they happen
SPLIT_MARKS = ("vad_end", "transcript", "llm_request", "llm_first_token", "tts_first_audio", "first_frame")


# --- the worker of ours (run as `python bench/bench_voice.py worker start ...`) -------------


def worker_main() -> None:
    from livekit import agents

    from livekit.agents.voice import VoiceOptions, VoicePipelineAgent
    from livekit.plugins import silero

    silence = os.environ.get("BENCH_MIN_SILENCE", "default")
    vad = silero.VAD() if silence == "default" else silero.VAD(min_silence_duration=float(silence))

    events_path = os.environ.get("BENCH_EVENTS")

    async def entry(ctx: agents.JobContext) -> None:
        options = VoiceOptions(preemptive_generation=os.environ.get("BENCH_PREEMPTIVE", "1") == "1")
        agent = VoicePipelineAgent(vad=vad, stt="openai", llm="openai", tts="openai",
                                   instructions="You are a helpful voice assistant.", options=options)
        if events_path:
            # per turn: the agent's own marks on the shared monotonic clock, for the split
            stopped: list[float] = []
            agent.on("user_stopped_speaking", lambda ev: stopped.append(time.monotonic()))

            def on_metrics(m) -> None:  # type: ignore[no-untyped-def]
                if m.vad_end is None or not stopped:
                    return
                speech_end = stopped[-1] - m.vad_end
                marks = {k: speech_end + v for k, v in m.as_dict().items()
                         if k in SPLIT_MARKS and isinstance(v, float)}
                marks["speech_end"] = speech_end
                with open(events_path, "a") as f:
                    f.write(json.dumps(marks) + "\n")

            agent.on("metrics", on_metrics)
        await agent.start(ctx)

    async def handler(req: agents.JobRequest) -> None:
        await req.accept(entry, subscribe_cb=agents.AutoSubscribe.AUDIO_ONLY)

    sys.argv = [sys.argv[0], *sys.argv[2:]]
    agents.run_app(agents.Worker(request_handler=handler, worker_type=agents.JobType.JT_ROOM))


# --- measuring ------------------------------------------------------------------------------


@dataclass
class Turn:
    latency: float
    stt: float | None
    llm: float | None
    tts: float | None
    t_end: float = 0.0
    marks: dict[str, float] = field(default_factory=dict)
    """The agent's own marks (ours only), seconds after the end of speech."""


@dataclass
class Run:
    label: str
    turns: list[Turn] = field(default_factory=list)
    cpu_per_turn: float = 0.0
    window: float = 0.55
    missed: list[int] = field(default_factory=list)
    threads: dict[str, float] = field(default_factory=dict)
    """CPU seconds per turn by thread name, across the worker's tree."""

    def p(self, q: float, attr: str = "latency") -> float:
        values = sorted(getattr(t, attr) for t in self.turns if getattr(t, attr) is not None)
        if not values:
            return float("nan")
        k = min(len(values) - 1, max(0, round(q * (len(values) - 1))))
        return values[k]


def make_fake():  # type: ignore[no-untyped-def]
    from aiohttp import web

    from livekit.plugins.openai.testing import FakeOpenAI

    class TimedFake(FakeOpenAI):
        """The fake, at zero latency, with each request's arrival time."""

        def __init__(self) -> None:
            super().__init__(chunk_interval=0.0)
            self.arrivals: list[tuple[float, str]] = []
            chat = getattr(self, "chat", None)
            if chat is not None and hasattr(chat, "chunk_interval"):
                chat.chunk_interval = 0.0

        def routes(self, app: web.Application) -> None:
            @web.middleware
            async def stamp(request: web.Request, handler):  # type: ignore[no-untyped-def]
                self.arrivals.append((time.monotonic(), request.path))
                return await handler(request)

            app.middlewares.append(stamp)
            super().routes(app)

        def after(self, t: float, path_end: str) -> float | None:
            return next((at for at, path in self.arrivals if at >= t and path.endswith(path_end)), None)

    return TimedFake()


async def participant_turns(server, fake, room_name: str, turns: int, label: str,  # type: ignore[no-untyped-def]
                            missed: list[int]) -> list[Turn]:
    from livekit import rtc

    from livekit.agents.testing.speech import speech
    from livekit.agents.utils.audio import rms

    sample = speech(QUESTION, sample_rate=RATE)
    fake.expect(sample)
    frames = list(sample.frames(10))
    speech_end_index = int(sample.segments[-1][1] * 100)
    room = rtc.Room()
    loud: list[float] = []
    got_track = asyncio.Event()
    readers: list[asyncio.Task] = []

    async def read(track: rtc.Track) -> None:
        async for ev in rtc.AudioStream(track, sample_rate=RATE, num_channels=1):
            if rms(ev.frame) > LOUD_RMS:
                loud.append(time.monotonic())

    def on_track(track: rtc.Track, pub: rtc.RemoteTrackPublication, p: rtc.RemoteParticipant) -> None:
        if track.kind == rtc.TrackKind.KIND_AUDIO:
            readers.append(asyncio.create_task(read(track)))
            got_track.set()

    room.on("track_subscribed", on_track)
    await room.connect(server.url, server.token("bench-user", room_name))
    source = rtc.AudioSource(RATE, 1, queue_size_ms=40)
    track = rtc.LocalAudioTrack.create_audio_track("mic", source)
    await room.local_participant.publish_track(track, rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE))
    silence = rtc.AudioFrame(bytes(RATE // 100 * 2), RATE, 1, RATE // 100)
    speaking: list[rtc.AudioFrame] = []
    speech_end: list[float] = []

    async def pump() -> None:
        i = 0
        while True:
            if speaking:
                await source.capture_frame(speaking.pop(0))
                i += 1
                if i == speech_end_index:
                    speech_end.append(time.monotonic() + source.queued_duration)
            else:
                i = 0
                await source.capture_frame(silence)

    pumping = asyncio.create_task(pump())
    results: list[Turn] = []
    try:
        await asyncio.wait_for(got_track.wait(), 60)
        await asyncio.sleep(2.0)  # the agent subscribes to the microphone
        for n in range(turns + 1):
            speaking.extend(frames)
            while len(speech_end) <= n:
                await asyncio.sleep(0.005)
            t_end = speech_end[n]
            deadline = time.monotonic() + 10
            while not any(t > t_end for t in loud) and time.monotonic() < deadline:
                await asyncio.sleep(0.005)
            first = next((t for t in loud if t > t_end), None)
            if first is None:  # e.g. the VAD cut the question in two and the fake heard neither part
                print(f"    {label} turn {n}: no answer within 10 s (counted as missed)", file=sys.stderr, flush=True)
                missed.append(n)
                continue
            stt_at = fake.after(t_end, "/audio/transcriptions")
            llm_at = fake.after(stt_at or t_end, "/chat/completions")
            tts_at = fake.after(llm_at or t_end, "/audio/speech")
            if n > 0:
                results.append(Turn(first - t_end, *(None if t is None else t - t_end for t in (stt_at, llm_at, tts_at)),
                                    t_end=t_end))
            print(f"    {label} turn {n}{' (warm-up)' if n == 0 else ''}: {first - t_end:.3f} s", file=sys.stderr, flush=True)
            while not loud or time.monotonic() - loud[-1] < 1.5:  # the answer ends
                await asyncio.sleep(0.05)
    finally:
        pumping.cancel()
        for r in readers:
            r.cancel()
        await room.disconnect()
    return results


async def measure(server, argv: list[str], env_extra: dict[str, str], label: str, turns: int, window: float) -> Run:  # type: ignore[no-untyped-def]
    from _tree import tree_cpu

    from livekit.agents.testing.server import free_port
    from livekit.plugins.openai.testing import Reply  # type: ignore[attr-defined]

    async with make_fake() as fake:
        fake.chat.script(*[Reply(text=ANSWER) for _ in range(20 * (turns + 1))])
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LIVEKIT_", "OPENAI_"))}
        env.update(server.env())
        events = tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False)
        events.close()
        env.update(OPENAI_BASE_URL=fake.base_url, OPENAI_API_KEY=fake.api_key, BENCH_HTTP_PORT=str(free_port()),
                   PYTHONUNBUFFERED="1", BENCH_EVENTS=events.name, **env_extra)
        with tempfile.NamedTemporaryFile("w+b", suffix=".log", delete=False) as log:
            proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=HERE.parent)
        try:
            deadline = time.monotonic() + 90
            while "registered worker" not in Path(log.name).read_text(errors="replace"):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"{label}: the worker did not register:\n{Path(log.name).read_text()[-3000:]}")
                await asyncio.sleep(0.1)
            room = f"bench-voice-{os.getpid()}-{int(time.time() * 1000) % 100000}"
            box: dict[str, Any] = {}
            missed: list[int] = []

            async def turns_with_cpu() -> list[Turn]:
                box["cpu0"], box["threads0"] = tree_cpu(proc.pid)
                return await participant_turns(server, fake, room, turns, label, missed)

            results = await turns_with_cpu()
            cpu, threads = tree_cpu(proc.pid)
            cpu -= box["cpu0"]
            threads = {k: v - box["threads0"].get(k, 0.0) for k, v in threads.items()}
            attach_marks(results, Path(events.name))
        except SystemExit:
            print(Path(log.name).read_text(errors="replace")[-4000:], file=sys.stderr)
            raise
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            os.unlink(log.name)
            os.unlink(events.name)
    per_turn = {k: v / (turns + 1) for k, v in sorted(threads.items(), key=lambda kv: -kv[1]) if v > 0}
    return Run(label, results, cpu / (turns + 1), window, missed, per_turn)


def attach_marks(turns: list[Turn], events: Path) -> None:
    """Each turn gets the agent's marks of the first turn it logged after that end of speech."""
    records = [json.loads(line) for line in events.read_text().splitlines() if line.strip()]
    for t in turns:
        rec = next((r for r in records if r.get("vad_end", 0) > t.t_end), None)
        if rec is not None and rec["vad_end"] < t.t_end + t.latency:
            t.marks = {k: v - t.t_end for k, v in rec.items()}


def _median(values: list[float]) -> float:
    values = sorted(values)
    return values[len(values) // 2] if values else float("nan")


SPLIT_STEPS = (
    ("speech_end", "the VAD's estimate of the speech end"),
    ("vad_end", "VAD end of speech event"),
    ("stt", "STT request at the fake"),
    ("transcript", "final transcript"),
    ("llm", "LLM request at the fake"),
    ("llm_first_token", "first LLM token"),
    ("tts", "TTS request at the fake"),
    ("tts_first_audio", "first TTS audio frame"),
    ("first_frame", "first frame captured on our AudioSource"),
    ("latency", "first loud frame received"),
)


def print_split(r: Run) -> None:
    """Ours only: p50 of each mark after the last speech sample left the participant, and
    p50 of each step (the per-turn difference from the mark before)."""
    turns = [t for t in r.turns if t.marks]
    if not turns:
        return
    print(f"\n  split of {r.label} (p50 over {len(turns)} turns; seconds after the last speech sample was sent)")

    def at(t: Turn, key: str) -> float | None:
        if key in ("stt", "llm", "tts", "latency"):
            return getattr(t, key)  # type: ignore[no-any-return]
        return t.marks.get(key)

    prev: str | None = None
    for key, what in SPLIT_STEPS:
        values = [v for t in turns if (v := at(t, key)) is not None]
        line = f"    {what:<42} {_median(values):7.3f}"
        if prev is not None:
            steps = [b - a for t in turns if (a := at(t, prev)) is not None and (b := at(t, key)) is not None]
            line += f"   (+{_median(steps):.3f})"
        print(line)
        prev = key


def report(runs: list[Run], turns: int) -> None:
    print(f"\nVoice turn: end of user speech -> first non-silent agent frame at the participant "
          f"({turns} turns each after a warm-up; zero-latency OpenAI fake; LiveKit server on loopback)")
    print(f"{'':<58} {'p50':>7} {'p95':>7} | {'->STT':>6} {'->LLM':>6} {'->TTS':>6} {'->heard':>7} | {'CPU/turn':>8}")
    for r in runs:
        print(f"{r.label[:58]:<58} {r.p(0.5):7.3f} {r.p(0.95):7.3f} | {r.p(0.5, 'stt'):6.3f} {r.p(0.5, 'llm'):6.3f} "
              f"{r.p(0.5, 'tts'):6.3f} {r.p(0.5):7.3f} | {r.cpu_per_turn:7.3f}s"
              + (f"  ({len(r.missed)} turn(s) unanswered: {r.missed})" if r.missed else ""))
    print("(split columns: p50 seconds from the end of speech to the STT, LLM and TTS requests reaching the fake)")
    for r in runs:
        print_split(r)
        top = ", ".join(f"{name} {cpu:.3f}" for name, cpu in list(r.threads.items())[:6])
        print(f"    CPU per turn by thread: {top}")
    by = {r.label.split(":")[0] + ":" + r.label.split(":")[1].split("(")[0].strip(): r for r in runs}
    ours_d, other_d = by.get("ours:defaults"), by.get("other:defaults")
    ours_v, other_v = by.get("ours:equal window"), by.get("other:equal window")
    print()
    if ours_d and other_d:
        ratio = ours_d.p(0.5) / other_d.p(0.5)
        print(f"defaults: p50 {ours_d.p(0.5):.3f} s vs {other_d.p(0.5):.3f} s = {ratio:.2f}x (goal <= 0.5x: "
              f"{'met' if ratio <= 0.5 else 'NOT met'})")
        cr = ours_d.cpu_per_turn / other_d.cpu_per_turn
        print(f"CPU per turn at defaults: {ours_d.cpu_per_turn:.3f} s vs {other_d.cpu_per_turn:.3f} s = {cr:.2f}x "
              f"(goal <= 0.5x: {'met' if cr <= 0.5 else 'NOT met'})")
    pairs = [(by.get(a), by.get(b)) for a, b in (
        ("ours:equal window", "other:equal window"),
        ("ours:equal window", "other:equal window, preemptive TTS"),
        ("ours:equal window, no preemptive generation", "other:equal window"),
    )]
    for ours_v, other_v in pairs:
        if not (ours_v and other_v):
            continue
        a, b = ours_v.p(0.5) - ours_v.window, other_v.p(0.5) - other_v.window
        ratio = a / b if b > 0 else float("nan")
        names = f"[{ours_v.label.split('(')[0].strip()} vs {other_v.label.split('(')[0].strip()}]"
        print(f"equal VAD silence window ({ours_v.window:.2f} s) {names}: p50 outside the window {a:.3f} s vs "
              f"{b:.3f} s = {ratio:.2f}x (goal <= 0.5x: {'met' if ratio <= 0.5 else 'NOT met'})")
        cr = ours_v.cpu_per_turn / other_v.cpu_per_turn
        print(f"  CPU per turn: {ours_v.cpu_per_turn:.3f} s vs {other_v.cpu_per_turn:.3f} s = {cr:.2f}x "
              f"(goal <= 0.5x: {'met' if cr <= 0.5 else 'NOT met'})")


async def run(turns: int, skip_other: bool, window: float, only: str | None = None) -> None:
    from livekit.agents.testing.server import LiveKitServer

    ours = [sys.executable, __file__, "worker", "start", "--load-threshold=inf", "--log-level=INFO", "--http-port=0"]
    runs: list[Run] = []
    with LiveKitServer() as server:
        cases = [("ours:defaults", ours, {}), ("ours:equal window", ours, {"BENCH_MIN_SILENCE": str(window)}),
                 ("ours:equal window, no preemptive generation", ours,
                  {"BENCH_MIN_SILENCE": str(window), "BENCH_PREEMPTIVE": "0"})]
        if not skip_other:
            from _otherfw import VERSION, python

            other = [python(), str(HERE / "_otherfw_voice_worker.py"), "start", "--log-level=INFO"]
            cases += [
                (f"other:defaults (livekit-agents {VERSION})", other, {}),
                (f"other:equal window (livekit-agents {VERSION}, turn_detection=vad)", other,
                 {"BENCH_MIN_SILENCE": str(window), "BENCH_TURN_DETECTION": "vad"}),
                (f"other:equal window, preemptive TTS (livekit-agents {VERSION}, turn_detection=vad, "
                 f"preemptive_tts)", other,
                 {"BENCH_MIN_SILENCE": str(window), "BENCH_TURN_DETECTION": "vad", "BENCH_PREEMPTIVE_TTS": "1"}),
            ]
        for label, argv, env in cases:
            if only is not None and only not in label:
                continue
            print(f"==> {label}", file=sys.stderr, flush=True)
            runs.append(await measure(server, argv, env, label, turns, window))
    report(runs, turns)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        worker_main()
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--turns", type=int, default=12)
    ap.add_argument("--window", type=float, default=0.55, help="the equal silero silence window, seconds")
    ap.add_argument("--skip-other", action="store_true", help="do not run livekit-agents 1.8.9")
    ap.add_argument("--only", help="run only the configurations whose label contains this text")
    args = ap.parse_args()
    if args.turns < 10:
        ap.error("--turns must be at least 10")
    sys.path.insert(0, str(HERE))
    asyncio.run(run(args.turns, args.skip_other, args.window, args.only))


if __name__ == "__main__":
    main()
