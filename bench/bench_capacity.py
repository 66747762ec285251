"""Capacity: N live sessions on one worker, each job running silero VAD on a participant's
real-time espeak speech; CPU per session, sessions per core, VAD start latency against the
known speech onsets, memory per session; beside livekit-agents 1.8.9 (the other framework,
its silero plugin) in the same run, against the same local LiveKit server.

    python bench/bench_capacity.py [--sessions 8] [--seconds 30] [--skip-other]
        [--only inline1,inline,process,other1,other] [--frame-ms 10] [--worker-arg=--num-processes=1]

Our agent reads each track with ``VAD.stream_track()`` (16 kHz mono, one 32 ms model
window per frame); ``--frame-ms 10`` pushes 10 ms frames from a plain ``rtc.AudioStream``
instead, for comparison. The other framework's agent (``_otherfw_vad_worker.py``) is
written as its docs show.

The publishers run in a process of their own (``publish``): one participant per room
publishing the same speech in a loop at real time (an AudioSource with a 20 ms queue, so
a frame is captured when it is sent), writing the time of each utterance onset. Each
job appends the time of each START_OF_SPEECH. Times are ``time.monotonic()``, one clock
for every process. Latency = detection - onset for each onset; an onset with no
detection within 1.5 s is missed. CPU = user+system time of the worker's process tree
(``/proc/PID/stat`` of every process under it) over the measured window, per session
per second; sessions per core = 1 / that. The per-thread split of that CPU (by thread
name, across the tree) says where it goes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _tree import tree_cpu, tree_memory_mb  # noqa: E402

HERE = Path(__file__).resolve().parent
SENTENCES = [
    "Good morning, I would like to check my order.",
    "It was sent last Tuesday to the office.",
    "Could you tell me when it will arrive?",
    "Thank you, that is all for today.",
]
MATCH_WINDOW = 1.5


# --- the agent (ours) and the publishers ------------------------------------------------------


def worker_main() -> None:
    from livekit import agents, rtc

    from livekit.agents.vad import VADEventType
    from livekit.plugins.silero import VAD

    out = Path(os.environ["BENCH_DIR"])
    detector = VAD(inference_events=False)
    frame_ms = int(os.environ.get("BENCH_FRAME_MS", "0"))

    async def vad_agent(ctx: agents.JobContext) -> None:
        starts = open(out / f"{ctx.job.room.name}.starts", "a", buffering=1)

        async def run(track: rtc.Track) -> None:
            # the framework's way: the track's audio as the VAD works on it (16 kHz mono,
            # one 32 ms model window per frame); BENCH_FRAME_MS=10 feeds 10 ms frames instead
            if frame_ms:
                stream = detector.stream()
                audio = rtc.AudioStream(track, sample_rate=16000, num_channels=1, frame_size_ms=frame_ms)

                async def feed() -> None:
                    async for ev in audio:
                        stream.push_frame(ev.frame)

                stream._feeder = asyncio.create_task(feed())
            else:
                stream = detector.stream_track(track)
            async with stream:
                async for event in stream:
                    if event.type == VADEventType.START_OF_SPEECH:
                        starts.write(f"{time.monotonic():.6f}\n")

        def on_track(track: rtc.Track, *_: object) -> None:
            if track.kind == rtc.TrackKind.KIND_AUDIO:
                (out / f"{ctx.job.room.name}.track").write_text(f"{time.monotonic():.6f}\n")
                ctx.create_task(run(track))

        ctx.room.on("track_subscribed", on_track)

    async def handler(req: agents.JobRequest) -> None:
        await req.accept(vad_agent, auto_subscribe=agents.AutoSubscribe.AUDIO_ONLY,
                         auto_disconnect=agents.AutoDisconnect.NEVER)

    sys.argv = [sys.argv[0], *sys.argv[2:]]
    agents.run_app(agents.Worker(request_handler=handler, worker_type=agents.JobType.JT_ROOM))


def publish_main(url: str, tokens_file: str, out: str) -> None:
    """Join every room, wait for "go" on stdin, publish speech in a loop until stdin closes."""
    from livekit import rtc

    from livekit.agents.testing.speech import speech

    sample = speech(SENTENCES, sample_rate=48000, silence=1.2)
    frames = list(sample.frames(10))
    onset_frames = {int(round(start * 100)) for start, _ in sample.segments}

    async def go() -> None:
        with open(tokens_file) as f:
            tokens = json.load(f)
        rooms = {}
        for room_name, token in tokens.items():
            room = rtc.Room()
            await room.connect(url, token)
            source = rtc.AudioSource(48000, 1, queue_size_ms=20)
            track = rtc.LocalAudioTrack.create_audio_track("mic", source)
            await room.local_participant.publish_track(
                track, rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE))
            rooms[room_name] = (room, source)
        print("READY", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)

        async def pump(room_name: str, source: rtc.AudioSource, offset: int) -> None:
            onsets = open(os.path.join(out, f"{room_name}.onsets"), "a", buffering=1)
            silence = rtc.AudioFrame(bytes(960), 48000, 1, 480)
            for _ in range(offset):  # rooms start at different points of the speech
                await source.capture_frame(silence)
            i = 0
            while True:
                frame_no = i % len(frames)
                await source.capture_frame(frames[frame_no])
                if frame_no in onset_frames:
                    onsets.write(f"{time.monotonic():.6f}\n")
                i += 1

        n = len(rooms)
        pumps = [asyncio.create_task(pump(name, src, k * len(frames) // max(1, n) % 100))
                 for k, (name, (_, src)) in enumerate(rooms.items())]
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        for task in pumps:
            task.cancel()
        for room, _ in rooms.values():
            await room.disconnect()

    asyncio.run(go())


# --- measuring --------------------------------------------------------------------------------


def latencies(out: Path, rooms: list[str], start: float, end: float) -> tuple[list[float], int, int]:
    lat: list[float] = []
    onsets_total = missed = 0
    for room in rooms:
        onsets = _read(out / f"{room}.onsets")
        starts = _read(out / f"{room}.starts")
        for onset in onsets:
            if not start <= onset <= end - MATCH_WINDOW:
                continue
            onsets_total += 1
            hits = [s for s in starts if onset <= s <= onset + MATCH_WINDOW]
            if hits:
                lat.append(hits[0] - onset)
            else:
                missed += 1
    return lat, onsets_total, missed


def _read(path: Path) -> list[float]:
    return [float(x) for x in path.read_text().split()] if path.exists() else []


def p95(values: list[float]) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(0.95 * (len(values) - 1))))]


async def run_case(srv, label: str, argv: list[str], n: int, seconds: float, env_extra: dict[str, str]) -> dict:
    from livekit import api

    from livekit.agents.testing.server import free_port

    out = Path(tempfile.mkdtemp(prefix="bench-cap-"))
    env = dict(os.environ, **srv.env(), BENCH_DIR=str(out), BENCH_HTTP_PORT=str(free_port()), **env_extra)
    log = open(out / "worker.log", "w")
    worker = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
    lkapi = srv.api()
    pub = None
    try:
        deadline = time.monotonic() + 60
        while "registered worker" not in (out / "worker.log").read_text(errors="replace"):
            if worker.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{label}: the worker did not register; see {out / 'worker.log'}")
            await asyncio.sleep(0.3)
        await asyncio.sleep(2)
        rooms = [f"cap-{uuid.uuid4().hex[:8]}" for _ in range(n)]
        for room in rooms:
            await lkapi.room.create_room(api.CreateRoomRequest(name=room, empty_timeout=120))
        tokens = {room: srv.token(f"speaker-{i}", room) for i, room in enumerate(rooms)}
        (out / "tokens.json").write_text(json.dumps(tokens))
        pub = subprocess.Popen([sys.executable, __file__, "publish", srv.url, str(out / "tokens.json"), str(out)],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert pub.stdout and pub.stdin
        await asyncio.to_thread(pub.stdout.readline)
        pub.stdin.write("go\n")
        pub.stdin.flush()
        # wait until every room's agent detected speech, then measure a steady window
        deadline = time.monotonic() + 90
        while not all((out / f"{r}.starts").exists() and (out / f"{r}.starts").read_text() for r in rooms):
            if time.monotonic() > deadline:
                silent = [r for r in rooms if not ((out / f"{r}.starts").exists() and (out / f"{r}.starts").read_text())]
                untracked = [r for r in silent if not (out / f"{r}.track").exists()]
                raise SystemExit(f"{label}: {len(silent)} session(s) detected no speech within 90 s "
                                 f"({len(untracked)} of them never got the participant's track); see {out}")
            await asyncio.sleep(0.5)
        t0 = time.monotonic()
        cpu0, threads0 = tree_cpu(worker.pid)
        await asyncio.sleep(seconds)
        cpu1, threads1 = tree_cpu(worker.pid)
        t1 = time.monotonic()
        rss, pss, procs = tree_memory_mb(worker.pid)
        lat, onsets, missed = latencies(out, rooms, t0, t1)
        cpu = cpu1 - cpu0
        split = {k: threads1.get(k, 0.0) - threads0.get(k, 0.0) for k in threads1}
        return {"label": label, "n": n, "window": t1 - t0, "cpu": cpu, "per_session": cpu / (n * (t1 - t0)),
                "lat": lat, "onsets": onsets, "missed": missed, "rss": rss, "pss": pss, "procs": procs,
                "split": split}
    finally:
        if pub is not None and pub.stdin:
            try:
                pub.stdin.write("done\n")
                pub.stdin.flush()
                pub.wait(20)
            except Exception:
                pub.kill()
        await lkapi.aclose()
        from bench_job_memory import stop_tree

        stop_tree(worker)


CASES = ("inline1", "inline", "process", "other1", "other")


async def run(n: int, seconds: float, skip_other: bool, only: list[str], extra: list[str],
              frame_ms: int) -> None:
    from livekit.agents.testing.server import LiveKitServer

    ours = [sys.executable, __file__, "worker", "start", "--load-threshold=inf", "--log-level=INFO",
            "--log-format=json", "--http-port=0", *extra]
    env = {"BENCH_FRAME_MS": str(frame_ms)} if frame_ms else {}
    how = f", {frame_ms} ms frames pushed" if frame_ms else ""
    cases: list[tuple[str, str, list[str], int, dict[str, str]]] = [
        ("inline1", f"ours: inline, 1 session{how}", [*ours, "--job-executor=inline"], 1, env),
        ("inline", f"ours: inline, {n} sessions{how}", [*ours, "--job-executor=inline"], n, env),
        ("process", f"ours: process (sharded), {n} sessions{how}", [*ours, "--job-executor=process"], n, env),
    ]
    if not skip_other:
        from _otherfw import VERSION, python

        other = [python(), str(HERE / "_otherfw_vad_worker.py"), "start", "--log-level=INFO"]
        cases += [("other1", f"livekit-agents {VERSION}, 1 session", other, 1, {}),
                  ("other", f"livekit-agents {VERSION}, {n} sessions", other, n, {})]
    results = []
    with LiveKitServer() as srv:
        for key, label, argv, count, case_env in cases:
            if only and key not in only:
                continue
            print(f"==> {label}", file=sys.stderr, flush=True)
            try:
                results.append(await run_case(srv, label, argv, count, seconds, case_env))
            except SystemExit as exc:  # report it, measure the other cases
                print(f"!! {exc}", file=sys.stderr, flush=True)
    if not results:
        raise SystemExit("no case could be measured")

    print(f"\nCapacity: live espeak speech + silero VAD per job, {seconds:g} s measured per case "
          f"(LiveKit server on loopback; publishers in another process)")
    print(f"{'case':<40} {'CPU/session':>11} {'sess/core':>9} {'VAD p50':>8} {'VAD p95':>8} "
          f"{'onsets':>6} {'missed':>6} {'tree RSS':>9} {'tree PSS':>9} {'PSS/sess':>8}")
    for r in results:
        lat = r["lat"]
        print(f"{r['label']:<40} {r['per_session'] * 100:10.2f}% {1 / r['per_session']:9.1f} "
              f"{statistics.median(lat) * 1000 if lat else float('nan'):6.0f}ms {p95(lat) * 1000:6.0f}ms "
              f"{r['onsets']:6d} {r['missed']:6d} {r['rss']:7.0f}MB {r['pss']:7.0f}MB {r['pss'] / r['n']:6.0f}MB")
    other_n = next((r for r in results if r["label"].startswith("livekit-agents") and r["n"] == n), None)
    if other_n:
        print(f"\nsessions per core against livekit-agents at {n} sessions (goal: at least 3x):")
        for r in results:
            if r["n"] == n and r is not other_n:
                print(f"  {r['label']:<40} {other_n['per_session'] / r['per_session']:5.2f}x")
    one = next((r for r in results if r["label"].startswith("ours") and r["n"] == 1), None)
    for r in results:
        if one is not None and r["label"].startswith("ours") and r["n"] > 1:
            print(f"VAD start p95 at {r['n']} sessions minus 1 session ({r['label']}): "
                  f"{(p95(r['lat']) - p95(one['lat'])) * 1000:+.0f} ms (goal: within 50 ms)")
    print("\nwhere the CPU goes (CPU seconds per session-second by thread, across the worker tree):")
    for r in results:
        window = r["window"] * r["n"]
        top = sorted(r["split"].items(), key=lambda kv: -kv[1])[:6]
        print(f"  {r['label']:<40} " + ", ".join(f"{k} {v / window * 100:.2f}%" for k, v in top if v > 0))


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        worker_main()
        return
    if len(sys.argv) > 1 and sys.argv[1] == "publish":
        publish_main(sys.argv[2], sys.argv[3], sys.argv[4])
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--skip-other", action="store_true")
    ap.add_argument("--only", default="", help=f"comma-separated cases to run, of {', '.join(CASES)}")
    ap.add_argument("--frame-ms", type=int, default=0,
                    help="ours: push frames of this many ms from a plain rtc.AudioStream instead of "
                         "VAD.stream_track() (10 is what the agent did before)")
    ap.add_argument("--worker-arg", action="append", default=[],
                    help="an extra flag for our worker, e.g. --worker-arg=--num-processes=1")
    args = ap.parse_args()
    only = [c for c in args.only.split(",") if c]
    if bad := [c for c in only if c not in CASES]:
        ap.error(f"unknown case(s) {', '.join(bad)}; choose from {', '.join(CASES)}")
    asyncio.run(run(args.sessions, args.seconds, args.skip_other, only, args.worker_arg, args.frame_ms))


if __name__ == "__main__":
    main()
