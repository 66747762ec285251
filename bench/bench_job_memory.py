"""Memory per running job: RSS of one worker process running N idle agents (one per room),
beside a bare livekit.rtc process holding N room connections, in the same run.

    python bench/bench_job_memory.py [--rooms 50]

Both processes are measured the same way: VmRSS after startup (connected/registered,
no room), then with N rooms joined, once RSS has settled. Per job = (RSS_N - RSS_0) / N.
Another framework runs one process per job and reports 50-96 MB each (GUIDE §7).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
import urllib.request
import uuid


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


async def settled_rss(pid: int, interval: float = 2.0, window: int = 5, limit: float = 120.0) -> float:
    """RSS once it is steady: the last ``window`` samples (``interval`` apart) within 2%.

    Joining many rooms at once makes a transient peak that is given back over ~10-20 s;
    the figure is the steady state after it."""
    samples: list[float] = []
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        samples.append(rss_mb(pid))
        if os.environ.get("BENCH_DEBUG"):
            print(f"  rss pid {pid}: {samples[-1]:.1f} MB", file=sys.stderr)
        last = samples[-window:]
        if len(last) == window and max(last) - min(last) <= 0.02 * min(last):
            return sum(last) / window
        await asyncio.sleep(interval)
    return min(samples[-window:])


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
        warm = rtc.Room()  # same warm-up as the worker: one room joined and left
        await warm.connect(url, tokens[0], rtc.RoomOptions(auto_subscribe=False))
        await warm.disconnect()
        print("READY 0", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        rooms = [rtc.Room() for _ in tokens[1:]]
        # concurrently, as a worker's jobs join when their rooms are created
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
        pass  # already closed


async def measure_worker(srv, n: int) -> tuple[float, float]:
    from livekit import api

    from livekit.agents.testing.server import free_port

    port = free_port()
    env = dict(os.environ, **srv.env())
    proc = subprocess.Popen(
        [sys.executable, __file__, "worker", "start", f"--http-port={port}", "--load-threshold=inf",
         "--log-level=WARNING", "--http-host=127.0.0.1"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )

    def info() -> dict:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/worker", timeout=2) as r:
            return json.loads(r.read())

    async def wait(pred, timeout: float, what: str):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if pred(await asyncio.to_thread(info)):
                    return
            except OSError:
                pass
            await asyncio.sleep(0.2)
        raise SystemExit(f"timed out waiting for {what}")

    lkapi = srv.api()
    try:
        await wait(lambda i: i["registered"], 20, "the worker to register")
        # warm up: one job, so first-use costs (FFI runtime, rtc imports) are not counted per job
        warm = f"warm-{uuid.uuid4().hex[:6]}"
        await lkapi.room.create_room(api.CreateRoomRequest(name=warm, empty_timeout=300))
        await wait(lambda i: i["job_count"] == 1 and i["jobs"][0]["status"] == "running", 30, "warm-up job")
        await delete_room(lkapi, warm)
        await wait(lambda i: i["job_count"] == 0, 30, "warm-up job end")
        base = await settled_rss(proc.pid)
        names = [f"mem-{uuid.uuid4().hex[:8]}" for _ in range(n)]
        for name in names:
            await lkapi.room.create_room(api.CreateRoomRequest(name=name, empty_timeout=300))
        await wait(lambda i: i["job_count"] == n and all(j["status"] == "running" for j in i["jobs"]),
                   120, f"{n} running jobs")
        loaded = await settled_rss(proc.pid)
        for name in names:
            await delete_room(lkapi, name)
        return base, loaded
    finally:
        await lkapi.aclose()
        proc.terminate()
        proc.wait(30)


async def measure_bare(srv, n: int, tmpdir: str) -> tuple[float, float]:

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
        base = await settled_rss(proc.pid)
        proc.stdin.write("go\n")
        proc.stdin.flush()
        await asyncio.to_thread(proc.stdout.readline)
        loaded = await settled_rss(proc.pid)
        proc.stdin.write("done\n")
        proc.stdin.flush()
        for name in names:
            await delete_room(lkapi, name)
        return base, loaded
    finally:
        await lkapi.aclose()
        proc.wait(30)


async def run(n: int) -> None:
    import tempfile

    from livekit.agents.testing.server import LiveKitServer

    with LiveKitServer() as srv, tempfile.TemporaryDirectory() as tmp:
        w0, wn = await measure_worker(srv, n)
        b0, bn = await measure_bare(srv, n, tmp)
    per_job = (wn - w0) / n
    per_room = (bn - b0) / n
    print(f"RSS with {n} concurrent idle jobs (one worker process, LiveKit server on loopback)")
    print(f"{'worker process (livekit.agents)':<40} idle {w0:7.1f} MB   {n} jobs {wn:7.1f} MB   "
          f"per job {per_job:6.2f} MB")
    print(f"{'bare livekit.rtc process (baseline)':<40} idle {b0:7.1f} MB   {n} rooms {bn:7.1f} MB   "
          f"per room {per_room:6.2f} MB")
    print(f"per job / per bare room: {per_job / per_room:.2f}x   "
          f"(another framework: 50-96 MB per job process)")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        worker_main()
        return
    if len(sys.argv) > 1 and sys.argv[1] == "bare":
        bare_main(sys.argv[2], sys.argv[3])
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rooms", type=int, default=50)
    args = ap.parse_args()
    asyncio.run(run(args.rooms))


if __name__ == "__main__":
    main()
