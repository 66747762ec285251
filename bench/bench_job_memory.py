"""Memory per running job: RSS and PSS of the worker's whole process tree with N idle
agents (one per room), for each executor, beside livekit-agents 1.8.9 (the other
framework, one process per job) and a bare livekit.rtc process, in the same run, against
the same local LiveKit server.

    python bench/bench_job_memory.py [--jobs 30] [--other-jobs 30] [--skip-other]

Each worker is measured the same way: the tree's memory once registered and warmed up
(one job run and ended, so first-use costs are not counted per job), then with N rooms
joined, once it settled. Per job = (tree_N - tree_0) / N. PSS (proportional set size,
``/proc/PID/smaps_rollup``) splits pages shared between processes (forked job processes
share most of their pages with the zygote), so the tree's PSS is what the machine spends;
RSS counts shared pages in every process. Goal (GUIDE §7): one job per process at most
0.2x the other framework.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _tree import descendants, settled_tree  # noqa: E402

HERE = Path(__file__).resolve().parent


# --- child processes -----------------------------------------------------------------------


def worker_main() -> None:
    """An idle agent: joins, subscribes to nothing, stays until the room is deleted."""
    from livekit import agents

    async def idle(ctx: agents.JobContext) -> None:
        pass

    async def handler(req: agents.JobRequest) -> None:
        await req.accept(idle, auto_subscribe=agents.AutoSubscribe.SUBSCRIBE_NONE,
                         auto_disconnect=agents.AutoDisconnect.NEVER)

    sys.argv = [sys.argv[0], *sys.argv[2:]]
    agents.run_app(agents.Worker(request_handler=handler, worker_type=agents.JobType.JT_ROOM, max_jobs=1000))


def bare_main(url: str, tokens_file: str) -> None:
    """N plain livekit.rtc connections; prints READY after each phase, waits on stdin."""
    from livekit import rtc

    async def go() -> None:
        with open(tokens_file) as f:
            tokens = json.load(f)
        warm = rtc.Room()
        await warm.connect(url, tokens[0], rtc.RoomOptions(auto_subscribe=False))
        await warm.disconnect()
        print("READY 0", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        rooms = [rtc.Room() for _ in tokens[1:]]
        await asyncio.gather(*(room.connect(url, token, rtc.RoomOptions(auto_subscribe=False))
                               for room, token in zip(rooms, tokens[1:], strict=True)))
        print(f"READY {len(rooms)}", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        for room in rooms:
            await room.disconnect()

    asyncio.run(go())


# --- the benchmark ---------------------------------------------------------------------------


async def delete_room(lkapi, name: str) -> None:
    from livekit import api

    try:
        await lkapi.room.delete_room(api.DeleteRoomRequest(room=name))
    except api.TwirpError:
        pass


async def agents_in(lkapi, rooms: list[str]) -> int:
    """How many of ``rooms`` have an agent participant (what the server sees)."""
    from livekit import api
    from livekit.protocol import models

    async def one(room: str) -> bool:
        try:
            res = await lkapi.room.list_participants(api.ListParticipantsRequest(room=room))
        except api.TwirpError:
            return False
        return any(p.kind == models.ParticipantInfo.AGENT for p in res.participants)

    return sum(await asyncio.gather(*(one(r) for r in rooms)))


async def wait_for(pred, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await pred():
            return
        await asyncio.sleep(0.5)
    raise SystemExit(f"timed out after {timeout:g}s waiting for {what}")


def stop_tree(proc: subprocess.Popen) -> None:
    pids = descendants(proc.pid)
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        pass
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()


async def measure_tree(srv, argv: list[str], n: int, label: str, env_extra: dict[str, str] | None = None,
                       ready_text: str = "registered worker") -> tuple[float, float, float, float, int]:
    """(rss_0, pss_0, rss_n, pss_n, processes_n) of a worker's tree."""
    from livekit import api

    env = dict(os.environ, **srv.env(), **(env_extra or {}))
    log = tempfile.NamedTemporaryFile("w+", prefix="bench-mem-", suffix=".log", delete=False)
    proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
    lkapi = srv.api()
    try:
        async def registered() -> bool:
            if proc.poll() is not None:
                raise SystemExit(f"{label} exited ({proc.returncode}); see {log.name}")
            return ready_text in Path(log.name).read_text(errors="replace")

        await wait_for(registered, 60, f"{label} to register")
        await asyncio.sleep(2)  # the server dispatches to a worker once it answered a ping
        warm = f"warm-{uuid.uuid4().hex[:6]}"
        await lkapi.room.create_room(api.CreateRoomRequest(name=warm, empty_timeout=300))

        async def warm_joined() -> bool:
            return await agents_in(lkapi, [warm]) == 1

        await wait_for(warm_joined, 60, f"{label}: the warm-up job")
        await delete_room(lkapi, warm)
        await asyncio.sleep(3)
        rss0, pss0, _ = await settled_tree(proc.pid)
        names = [f"mem-{uuid.uuid4().hex[:8]}" for _ in range(n)]
        for name in names:
            await lkapi.room.create_room(api.CreateRoomRequest(name=name, empty_timeout=300))

        async def all_joined() -> bool:
            return await agents_in(lkapi, names) == n

        await wait_for(all_joined, 240, f"{label}: {n} agents in their rooms")
        rssn, pssn, procs = await settled_tree(proc.pid)
        for name in names:
            await delete_room(lkapi, name)
        return rss0, pss0, rssn, pssn, procs
    finally:
        await lkapi.aclose()
        stop_tree(proc)
        os.unlink(log.name)


async def measure_bare(srv, n: int, tmpdir: str) -> tuple[float, float, float, float, int]:
    names = [f"bare-{uuid.uuid4().hex[:8]}" for _ in range(n + 1)]
    tokens_file = os.path.join(tmpdir, "tokens.json")
    with open(tokens_file, "w") as f:
        json.dump([srv.token(f"bare-{i}", name, agent=True) for i, name in enumerate(names)], f)
    proc = subprocess.Popen([sys.executable, __file__, "bare", srv.url, tokens_file], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    lkapi = srv.api()
    try:
        assert proc.stdout and proc.stdin
        await asyncio.to_thread(proc.stdout.readline)
        rss0, pss0, _ = await settled_tree(proc.pid)
        proc.stdin.write("go\n")
        proc.stdin.flush()
        await asyncio.to_thread(proc.stdout.readline)
        rssn, pssn, procs = await settled_tree(proc.pid)
        proc.stdin.write("done\n")
        proc.stdin.flush()
        for name in names:
            await delete_room(lkapi, name)
        return rss0, pss0, rssn, pssn, procs
    finally:
        await lkapi.aclose()
        proc.wait(30)


async def run(n: int, other_n: int, skip_other: bool) -> None:
    from livekit.agents.testing.server import LiveKitServer, free_port

    ours = [sys.executable, __file__, "worker", "start", "--load-threshold=inf", "--log-level=INFO",
            "--http-host=127.0.0.1", "--log-format=json"]
    rows: list[tuple[str, int, tuple[float, float, float, float, int]]] = []
    with LiveKitServer() as srv, tempfile.TemporaryDirectory() as tmp:
        cases = [
            ("ours: inline", ["--job-executor=inline"]),
            ("ours: process, sharded (1 per CPU)", ["--job-executor=process"]),
            ("ours: process, one job per process", ["--job-executor=process", "--jobs-per-process=1"]),
        ]
        for label, extra in cases:
            print(f"==> {label}: {n} idle jobs", file=sys.stderr, flush=True)
            port = free_port()
            figures = await measure_tree(srv, [*ours, f"--http-port={port}", *extra], n, label)
            rows.append((label, n, figures))
        print(f"==> bare livekit.rtc: {n} rooms", file=sys.stderr, flush=True)
        rows.append(("bare livekit.rtc process (baseline)", n, await measure_bare(srv, n, tmp)))
        if not skip_other:
            from _otherfw import VERSION, python

            other = python()
            print(f"==> livekit-agents {VERSION}: {other_n} idle jobs", file=sys.stderr, flush=True)
            figures = await measure_tree(
                srv, [other, str(HERE / "_otherfw_idle_worker.py"), "start", "--log-level=INFO"], other_n,
                f"livekit-agents {VERSION}", env_extra={"BENCH_HTTP_PORT": str(free_port())},
                ready_text="registered worker")
            rows.append((f"livekit-agents {VERSION} (process per job)", other_n, figures))

    print(f"\nMemory per running idle job (worker process tree; LiveKit server on loopback; {n} jobs)")
    print(f"{'':<44} {'tree at 0':>18} {'tree at N':>18} {'procs':>5} {'per job RSS':>12} {'per job PSS':>12}")
    per: dict[str, tuple[float, float]] = {}
    for label, jobs, (r0, p0, rn, pn, procs) in rows:
        per[label] = ((rn - r0) / jobs, (pn - p0) / jobs)
        print(f"{label:<44} {r0:7.1f}/{p0:7.1f} MB {rn:7.1f}/{pn:7.1f} MB {procs:5d} "
              f"{per[label][0]:9.2f} MB {per[label][1]:9.2f} MB")
    other_label = next((lbl for lbl in per if lbl.startswith("livekit-agents")), None)
    if other_label:
        o_rss, o_pss = per[other_label]
        print(f"\nratios against {other_label} (per job; RSS / PSS):")
        for label, (rss, pss) in per.items():
            if label != other_label:
                print(f"  {label:<42} {rss / o_rss:6.3f}x / {pss / o_pss:6.3f}x")
        one_rss, one_pss = per["ours: process, one job per process"]
        print(f"goal (GUIDE §7, stated in RSS): one job per process <= 0.2x the other framework: "
              f"{one_rss / o_rss:.3f}x RSS {'met' if one_rss / o_rss <= 0.2 else 'NOT met'}; "
              f"in PSS (pages shared by forked processes split between them) {one_pss / o_pss:.3f}x")

def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        worker_main()
        return
    if len(sys.argv) > 1 and sys.argv[1] == "bare":
        bare_main(sys.argv[2], sys.argv[3])
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=30)
    ap.add_argument("--other-jobs", type=int, default=30, help="jobs for the other framework")
    ap.add_argument("--skip-other", action="store_true", help="do not run livekit-agents 1.8.9")
    args = ap.parse_args()
    asyncio.run(run(args.jobs, args.other_jobs, args.skip_other))


if __name__ == "__main__":
    main()
