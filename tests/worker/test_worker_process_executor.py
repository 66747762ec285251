"""The process executor, with a real worker process (``python <script> start
--job-executor process``), a real LiveKit server and real participants publishing espeak
speech.

A job that blocks its loop, one that calls ``os._exit(1)`` and one that segfaults cost
only themselves: the jobs in other processes keep receiving audio without a gap, the
worker stays registered, the three jobs end as failed with what happened, and new jobs
run in fresh processes. The seed's ``my_agent.py`` runs under ``process`` as written and
drains across its job processes on SIGTERM.
"""

from __future__ import annotations

import json
import re
import signal
import time
import urllib.request
from pathlib import Path
from typing import Any

from livekit.agents.testing.procs import children

from .test_worker_lifecycle import MY_AGENT, log_messages

CHAOS = "tests/worker/agents/chaos_agent.py"
MAX_GAP = 0.100  # seconds between two audio frames a healthy job receives


def worker_info(worker: Any) -> dict[str, Any]:
    port = re.search(r"health endpoint on http://[^:]+:(\d+)/", worker.output())
    assert port, "the worker did not log its health endpoint"
    with urllib.request.urlopen(f"http://127.0.0.1:{port.group(1)}/worker", timeout=5) as r:
        return json.loads(r.read())


def frame_times(path: Path) -> list[float]:
    if not path.exists():
        return []
    return [float(line) for line in path.read_text().split() if line]


def largest_gap(times: list[float], start: float, end: float) -> float:
    window = [t for t in times if start <= t <= end]
    assert len(window) > 10, f"only {len(window)} frames between {start:.2f} and {end:.2f}"
    return max(b - a for a, b in zip(window, window[1:], strict=False))


def ready_pids(worker: Any) -> set[int]:
    return {p["pid"] for p in worker_info(worker)["processes"] if p["state"] == "ready"}


def ended(worker: Any, room: str) -> dict[str, Any] | None:
    """The worker's "job ... ended" record for the job of ``room`` (what it reported)."""
    for entry in log_messages(worker.output()):
        if entry.get("room") == room and " ended: " in entry["message"]:
            return entry
    return None


async def test_crashing_and_blocking_jobs_cost_only_themselves(
    livekit_server, clients, lk, agent_process, helpers, speech, tmp_path
):
    worker = agent_process(CHAOS, livekit_server, "--job-executor=process", "--jobs-per-process=1",
                           env={"CHAOS_DIR": str(tmp_path)})
    await worker.wait_output("registered worker")
    sample = speech("one two three four five six seven eight nine ten")

    good_rooms = [helpers.unique_room("good") for _ in range(2)]
    for room in good_rooms:
        client = await clients.join(room)
        await client.publish_audio(sample)
    for room in good_rooms:
        await helpers.wait_until(lambda room=room: len(frame_times(tmp_path / f"{room}.frames")) > 100,
                                 timeout=40, what=f"audio reaching the agent of {room}")

    started = time.monotonic()
    bad = {kind: helpers.unique_room(kind) for kind in ("block", "exit", "segv")}
    for room in bad.values():
        await lk.create_room(room)
    for room in bad.values():
        await helpers.wait_until(lambda room=room: ended(worker, room), timeout=60,
                                 what=f"the job of {room} to end")
    finished = time.monotonic()

    # each reported failed, saying what happened to its process
    errors = {kind: ended(worker, room)["message"] for kind, room in bad.items()}  # type: ignore[index]
    assert re.search(r"ended: failed: job process \d+ exited with code 1", errors["exit"]), errors["exit"]
    assert re.search(r"ended: failed: job process \d+ exited with signal SIGSEGV", errors["segv"]), errors["segv"]
    assert re.search(r"ended: failed: job process \d+ did not answer pings for [\d.]+s", errors["block"]), \
        errors["block"]
    # the watchdog in the blocked process named the job and the blocking code
    block_job = ended(worker, bad["block"])["job_id"]  # type: ignore[index]
    blocked = [e for e in log_messages(worker.output()) if "blocked the event loop" in e["message"]]
    assert blocked and blocked[0]["job_id"] == block_job, blocked
    assert "block_the_loop" in blocked[0]["message"] and "time.sleep(10)" in blocked[0]["message"]

    # the jobs in the other processes kept receiving audio all along, and still run
    for room in good_rooms:
        times = frame_times(tmp_path / f"{room}.frames")
        gap = largest_gap(times, started, finished)
        assert gap <= MAX_GAP, f"the agent of {room} got no audio for {gap * 1000:.0f} ms while others crashed"
        assert ended(worker, room) is None
    info = worker_info(worker)
    assert info["registered"] and info["status"] == "available"
    assert sorted(j["room"] for j in info["jobs"]) == sorted(good_rooms)
    assert all(j["status"] == "running" for j in info["jobs"])

    # new jobs still run, each in a process of its own
    late = helpers.unique_room("good")
    client = await clients.join(late)
    await client.publish_audio(sample)
    await helpers.wait_until(lambda: len(frame_times(tmp_path / f"{late}.frames")) > 50, timeout=40,
                             what="audio reaching a job started after the crashes")
    info = worker_info(worker)
    pids = [p["pid"] for p in info["processes"] if p["jobs"]]
    assert len(pids) == 3 and len(set(pids)) == 3, info["processes"]
    assert worker.proc.poll() is None


async def test_sharded_processes_are_replaced_after_a_crash(
    livekit_server, clients, lk, agent_process, helpers, speech, tmp_path
):
    worker = agent_process(CHAOS, livekit_server, "--job-executor=process", "--num-processes=2",
                           env={"CHAOS_DIR": str(tmp_path)})
    await worker.wait_output("registered worker")
    await helpers.wait_until(lambda: len(ready_pids(worker)) == 2, what="two job processes")
    before = ready_pids(worker)
    sample = speech("one two three four five")

    good = helpers.unique_room("good")
    client = await clients.join(good)
    await client.publish_audio(sample)
    await helpers.wait_until(lambda: len(frame_times(tmp_path / f"{good}.frames")) > 50, timeout=40,
                             what="audio reaching the first job")
    good_pid = next(p["pid"] for p in worker_info(worker)["processes"] if p["jobs"])

    segv = helpers.unique_room("segv")
    await lk.create_room(segv)
    await helpers.wait_until(lambda: ended(worker, segv), timeout=60, what="the segfaulting job to end")
    entry = ended(worker, segv)
    assert entry and "exited with signal SIGSEGV" in entry["message"], entry
    crashed_pid = int(re.search(r"job process (\d+)", entry["message"]).group(1))  # type: ignore[union-attr]
    assert crashed_pid != good_pid  # placed on the other (idle) process

    # the crashed process is replaced; the first job runs on, undisturbed
    await helpers.wait_until(lambda: len(ready_pids(worker) - {crashed_pid}) == 2, what="a replacement process")
    after = ready_pids(worker)
    assert good_pid in after and crashed_pid not in after and len(after - before) == 1
    assert ended(worker, good) is None
    count = len(frame_times(tmp_path / f"{good}.frames"))
    await helpers.wait_until(lambda: len(frame_times(tmp_path / f"{good}.frames")) > count + 50,
                             what="the first job still receiving audio")

    # the replacement takes the next job (the least busy process)
    late = helpers.unique_room("good")
    client2 = await clients.join(late)
    await client2.publish_audio(sample)
    await helpers.wait_until(lambda: len(frame_times(tmp_path / f"{late}.frames")) > 50, timeout=40,
                             what="audio reaching the job on the replacement process")
    procs = {p["pid"]: p["jobs"] for p in worker_info(worker)["processes"]}
    (new_pid,) = after - before
    assert len(procs[new_pid]) == 1 and len(procs[good_pid]) == 1, procs


async def test_a_job_process_over_its_memory_limit_is_killed_and_its_job_fails(
    livekit_server, lk, agent_process, helpers, tmp_path
):
    worker = agent_process(CHAOS, livekit_server, "--job-executor=process", "--jobs-per-process=1",
                           "--memory-warn-mb=150", "--memory-limit-mb=300", env={"CHAOS_DIR": str(tmp_path)})
    await worker.wait_output("registered worker")
    leak = helpers.unique_room("leak")
    await lk.create_room(leak)
    await helpers.wait_until(lambda: ended(worker, leak), timeout=60, what="the leaking job to end")
    entry = ended(worker, leak)
    assert entry and re.search(r"ended: failed: job process \d+ used \d+ MB \(PSS\), above memory_limit_mb "
                               r"\(300 MB\); killed", entry["message"]), entry
    assert worker_info(worker)["registered"] and worker.proc.poll() is None


async def test_my_agent_under_process_executor_drains_on_sigterm(
    livekit_server, clients, lk, agent_process, helpers
):
    # the seed README's example, unchanged: its handler and agent are closures under
    # ``if __name__ == "__main__"``, run in a job process
    worker = agent_process(MY_AGENT, livekit_server, "--job-executor=process")
    await worker.wait_output("registered worker")
    room = helpers.unique_room("drain")
    alice = await clients.join(room, "alice")
    await helpers.wait_until(lambda: "agent" in alice.joined, timeout=30, what="the example agent joining")
    info = worker_info(worker)
    (job,) = info["jobs"]
    assert job["status"] == "running"
    assert any(job["id"] in p["jobs"] for p in info["processes"])
    # the job's log lines come from its process, through the worker's logging, with its id
    joined = [e for e in log_messages(worker.output()) if e["message"].startswith(f"job {job['id']} joined room")]
    assert joined and joined[0]["job_id"] == job["id"] and joined[0]["pid"] != worker.proc.pid

    # systemd (KillMode=control-group) signals every process: children leave draining to the worker
    worker.signal(signal.SIGTERM)
    for pid in [p["pid"] for p in info["processes"]]:
        try:
            import os

            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    await worker.wait_output("draining")
    assert worker.proc.poll() is None
    await helpers.wait_until(lambda: "agent" in alice.joined and worker.proc.poll() is None, what="still running")
    assert await lk.agents_in(room) == ["agent"]

    await alice.leave()
    assert await worker.wait_exit(timeout=40) == 0
    out = worker.output()
    assert "auto_disconnect" in out and "worker stopped" in out
    assert await lk.agents_in(room) == []


def room_of(proc: dict[str, Any], worker: Any) -> str | None:
    """The room of the (single) job a job process runs, from the worker's /worker jobs."""
    rooms = {j["id"]: j["room"] for j in worker_info(worker)["jobs"]}
    return next((rooms.get(job) for job in proc["jobs"]), None)


def _comm(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return None


def _spare_of(zygote: int) -> int | None:
    """The zygote's spare: its child named lk-zygote-spare."""
    return next((p for p, name in children(zygote).items() if name == "lk-zygote-spare"), None)


async def test_a_killed_zygote_is_replaced_by_its_spare_and_new_jobs_still_run(
    livekit_server, clients, lk, agent_process, helpers, speech, tmp_path
):
    import os

    # one job per process: every new job needs a process forked after the kill
    worker = agent_process(CHAOS, livekit_server, "--job-executor=process", "--jobs-per-process=1",
                           env={"CHAOS_DIR": str(tmp_path)})
    await worker.wait_output("registered worker")
    (zygote,) = [p for p, name in children(worker.proc.pid).items() if name == "lk-zygote"]
    await helpers.wait_until(lambda: _spare_of(zygote), what="the zygote's spare")
    sample = speech("one two three four five")

    good = helpers.unique_room("good")
    client = await clients.join(good)
    await client.publish_audio(sample)
    await helpers.wait_until(lambda: len(frame_times(tmp_path / f"{good}.frames")) > 50, timeout=40,
                             what="audio reaching the first job")

    for generation in range(2):  # the spare's own spare takes over the next time
        spare = _spare_of(zygote)
        assert spare
        os.kill(zygote, signal.SIGKILL)

        # a new job runs, in a process forked by the former spare
        room = helpers.unique_room("good")
        late = await clients.join(room)
        await late.publish_audio(sample)
        await helpers.wait_until(lambda room=room: len(frame_times(tmp_path / f"{room}.frames")) > 50, timeout=40,
                                 what=f"audio reaching a job started after zygote kill {generation + 1}")
        (pid,) = [p["pid"] for p in worker_info(worker)["processes"] if room_of(p, worker) == room]
        assert pid in children(spare), "the new job's process was not forked by the promoted spare"
        await worker.wait_output("forks the job processes now", count=generation + 1)
        await helpers.wait_until(lambda spare=spare: _comm(spare) == "lk-zygote" and _spare_of(spare),
                                 what="the spare promoted to zygote, with a new spare of its own")
        zygote = spare

    # the job that ran through both kills never noticed them
    count = len(frame_times(tmp_path / f"{good}.frames"))
    await helpers.wait_until(lambda: len(frame_times(tmp_path / f"{good}.frames")) > count + 50,
                             what="the first job still receiving audio")
    assert ended(worker, good) is None
    assert worker_info(worker)["registered"] and worker.proc.poll() is None


async def test_with_the_zygote_and_its_spare_gone_the_worker_drains_and_exits_non_zero(
    livekit_server, clients, agent_process, helpers, speech, tmp_path
):
    import os

    worker = agent_process(CHAOS, livekit_server, "--job-executor=process", "--jobs-per-process=1",
                           "--drain-timeout=8", env={"CHAOS_DIR": str(tmp_path)})
    await worker.wait_output("registered worker")
    (zygote,) = [p for p, name in children(worker.proc.pid).items() if name == "lk-zygote"]
    await helpers.wait_until(lambda: _spare_of(zygote), what="the zygote's spare")
    good = helpers.unique_room("good")
    client = await clients.join(good)
    await client.publish_audio(speech("one two three four five"))
    await helpers.wait_until(lambda: len(frame_times(tmp_path / f"{good}.frames")) > 50, timeout=40,
                             what="audio reaching the job")

    spare = _spare_of(zygote)
    assert spare
    os.kill(spare, signal.SIGKILL)
    os.kill(zygote, signal.SIGKILL)
    # no new job can start: the worker drains (the running job goes on) ...
    await worker.wait_output("draining", timeout=30)
    count = len(frame_times(tmp_path / f"{good}.frames"))
    await helpers.wait_until(lambda: len(frame_times(tmp_path / f"{good}.frames")) > count + 50,
                             what="the running job still receiving audio while the worker drains")
    assert worker.proc.poll() is None
    # ... and once its job ended (here: the drain timeout cut it), exits non-zero for its
    # supervisor to restart it
    code = await worker.wait_exit(timeout=60)
    assert code not in (0, None), code
    assert "no spare zygote" in worker.output()
