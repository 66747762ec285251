"""The default load: the CPU this worker uses over the CPU available to it.

Fake cgroup trees (a tmp dir laid out like ``/sys/fs/cgroup``) and a fake clock give
exact figures for cgroup v2 and v1; two real CPU hogs that are not the worker's show
that other processes do not make the worker full.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from livekit.agents.load import (
    WorkerCPULoad,
    available_cpus,
    find_cgroup_cpu,
    process_tree_cpu_seconds,
    process_tree_rss,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def v2_tree(root: Path, cgroup: str, cpu_max: str, usage_usec: int) -> Path:
    """A cgroup v2 mount at ``root`` with the process in ``cgroup``; returns its /proc/self/cgroup."""
    write(root / "cgroup.controllers", "cpu memory pids\n")
    d = root.joinpath(*[p for p in cgroup.split("/") if p])
    write(d / "cpu.max", cpu_max + "\n")
    write(d / "cpu.stat", f"usage_usec {usage_usec}\nuser_usec 0\nsystem_usec 0\nnr_periods 0\n")
    return write(root.parent / "self-cgroup", f"0::{cgroup}\n")


def set_usage_v2(root: Path, cgroup: str, usage_usec: int) -> None:
    d = root.joinpath(*[p for p in cgroup.split("/") if p])
    write(d / "cpu.stat", f"usage_usec {usage_usec}\nuser_usec 0\nsystem_usec 0\n")


def test_cgroup_v2_quota_is_the_available_cpu(tmp_path: Path) -> None:
    root = tmp_path / "cgroup"
    self_cgroup = v2_tree(root, "/", "50000 100000", usage_usec=7_000_000)
    clock = Clock()
    load = WorkerCPULoad(window=1, cgroup_root=root, self_cgroup=self_cgroup, clock=clock)
    assert load.cgroup is not None and load.cgroup.version == 2
    assert load.cpus == pytest.approx(0.5)
    # 0.25 CPU-seconds in one second against a quota of half a CPU: load 0.5
    clock.now += 1.0
    set_usage_v2(root, "/", 7_250_000)
    assert load.sample() == pytest.approx(0.5)
    # the whole quota used: saturated (never above 1)
    clock.now += 2.0
    set_usage_v2(root, "/", 8_750_000)
    assert load.sample() == pytest.approx(1.0)


def test_cgroup_v2_tightest_ancestor_quota_wins(tmp_path: Path) -> None:
    root = tmp_path / "cgroup"
    self_cgroup = v2_tree(root, "/kubepods/pod1/ctr", "max 100000", usage_usec=0)
    write(root / "kubepods" / "pod1" / "cpu.max", "150000 100000\n")
    write(root / "kubepods" / "pod1" / "cpu.stat", "usage_usec 0\n")
    found = find_cgroup_cpu(root, self_cgroup)
    assert found is not None and found.cpus == pytest.approx(1.5)
    assert found.usage_file == root / "kubepods" / "pod1" / "cpu.stat"


def test_cgroup_v2_max_means_no_quota(tmp_path: Path) -> None:
    root = tmp_path / "cgroup"
    self_cgroup = v2_tree(root, "/", "max 100000", usage_usec=0)
    assert find_cgroup_cpu(root, self_cgroup) is None
    load = WorkerCPULoad(cgroup_root=root, self_cgroup=self_cgroup)
    assert load.cgroup is None and load.cpus == available_cpus() == len(os.sched_getaffinity(0))
    assert load.source.startswith("process tree")


def test_cgroup_v1_cfs_quota_and_cpuacct_usage(tmp_path: Path) -> None:
    root = tmp_path / "cgroup"
    d = root / "cpu,cpuacct" / "docker" / "abc"
    write(d / "cpu.cfs_quota_us", "150000\n")
    write(d / "cpu.cfs_period_us", "100000\n")
    write(d / "cpuacct.usage", "5000000000\n")
    self_cgroup = write(tmp_path / "self-cgroup", "5:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n0::/\n")
    clock = Clock()
    load = WorkerCPULoad(window=1, cgroup_root=root, self_cgroup=self_cgroup, clock=clock)
    assert load.cgroup is not None and load.cgroup.version == 1 and load.cpus == pytest.approx(1.5)
    clock.now += 2.0
    write(d / "cpuacct.usage", str(5_000_000_000 + 1_500_000_000) + "\n")  # 1.5 CPU-s in 2 s of 1.5 CPUs
    assert load.sample() == pytest.approx(0.5)


def test_cgroup_v1_separate_mounts_and_no_quota(tmp_path: Path) -> None:
    root = tmp_path / "cgroup"
    write(root / "cpu" / "job" / "cpu.cfs_quota_us", "25000\n")
    write(root / "cpu" / "job" / "cpu.cfs_period_us", "100000\n")
    write(root / "cpuacct" / "job" / "cpuacct.usage", "0\n")
    self_cgroup = write(tmp_path / "self-cgroup", "2:cpuacct:/job\n1:cpu:/job\n")
    found = find_cgroup_cpu(root, self_cgroup)
    assert found is not None and found.cpus == pytest.approx(0.25)
    assert found.usage_file == root / "cpuacct" / "job" / "cpuacct.usage"
    write(root / "cpu" / "job" / "cpu.cfs_quota_us", "-1\n")
    assert find_cgroup_cpu(root, self_cgroup) is None


def test_start_up_is_not_load(tmp_path: Path) -> None:
    root = tmp_path / "cgroup"
    self_cgroup = v2_tree(root, "/", "100000 100000", usage_usec=0)
    clock = Clock()
    load = WorkerCPULoad(window=1, cgroup_root=root, self_cgroup=self_cgroup, clock=clock)
    clock.now += 1.0
    set_usage_v2(root, "/", 1_000_000)  # a busy start-up: one full CPU-second
    load.reset()  # the worker registers
    clock.now += 1.0
    set_usage_v2(root, "/", 1_100_000)
    assert load.sample() == pytest.approx(0.1)


def _start_hog() -> int:
    """A ``while True: pass`` process that is not our descendant (its parent exits)."""
    out = subprocess.run(
        [sys.executable, "-c", "import subprocess, sys; "
         "p = subprocess.Popen([sys.executable, '-c', 'while True: pass'], stdin=subprocess.DEVNULL, "
         "stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); print(p.pid)"],
        capture_output=True, text=True, check=True, timeout=30)
    return int(out.stdout.strip())


def _cpu_seconds(pid: int) -> float:
    return process_tree_cpu_seconds(pid) or 0.0


@pytest.fixture
def two_hogs():
    pids = [_start_hog(), _start_hog()]
    yield pids
    for pid in pids:
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass


async def test_other_processes_cpu_hogs_do_not_load_this_worker(tmp_path: Path, two_hogs, helpers) -> None:
    empty = tmp_path / "no-cgroup"  # force the process-tree measure (the machine has no quota)
    empty.mkdir()
    load = WorkerCPULoad(window=1, cgroup_root=empty)
    start = [_cpu_seconds(p) for p in two_hogs]
    # wait until the hogs have really burnt CPU while we sampled (not a fixed sleep)
    await helpers.wait_until(lambda: all(_cpu_seconds(p) - s >= 1.0 for p, s in zip(two_hogs, start, strict=True)),
                             timeout=60, what="the hogs using a CPU-second each")
    assert not set(two_hogs) & set(_tree())  # really not ours
    # two busy cores of a two-core machine; this process idled meanwhile
    assert load.sample() < 0.5


def _tree() -> list[int]:
    from livekit.agents.load import process_tree

    return process_tree(os.getpid())


def test_process_tree_counts_children_and_memory() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import sys; x = bytearray(64 << 20); sys.stdin.read()"],
                             stdin=subprocess.PIPE)
    try:
        from livekit.agents.load import process_tree

        def rss_of(pid: int) -> int:
            return process_tree_rss(pid) or 0

        import time

        deadline = time.monotonic() + 30
        while rss_of(child.pid) < 64 << 20 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert child.pid in process_tree(os.getpid())
        own = (process_tree_rss(os.getpid()) or 0) - rss_of(child.pid)
        assert own > 10 << 20  # this interpreter
        assert process_tree_rss(os.getpid()) == pytest.approx(own + rss_of(child.pid), rel=0.05)
        assert rss_of(child.pid) >= 64 << 20
    finally:
        child.stdin.close()  # type: ignore[union-attr]
        child.wait()


async def test_worker_stays_available_beside_cpu_hogs(livekit_server, lk, worker_opts, helpers, two_hogs) -> None:
    """The default load (no load_fn) at the default threshold 0.7: two hogs on a two-core
    machine do not make this worker full, and a new room gets its agent."""
    from livekit import agents

    started: list[agents.JobContext] = []

    async def handler(req: agents.JobRequest) -> None:
        await req.accept(started.append)

    opts = worker_opts(load_threshold=0.7, update_interval=0.2)
    async with agents.Worker(handler, **opts) as worker:
        start = [_cpu_seconds(p) for p in two_hogs]
        await helpers.wait_until(lambda: all(_cpu_seconds(p) - s >= 1.0 for p, s in zip(two_hogs, start, strict=True)),
                                 timeout=60, what="the hogs using a CPU-second each")
        assert worker.info()["status"] == "available", worker.info()
        assert worker.info()["load"] < 0.7
        room = helpers.unique_room("hogs")
        await lk.create_room(room)
        await helpers.wait_until(lambda: any(c.room.name == room for c in started), timeout=30,
                                 what="the agent for a room created beside the hogs")
        await lk.delete_room(room)


# --- a real cgroup, when the test may create one ------------------------------------------

V1_CPU, V1_ACCT = Path("/sys/fs/cgroup/cpu"), Path("/sys/fs/cgroup/cpuacct")


@pytest.fixture
def half_cpu_cgroup():
    """A cgroup v1 limited to half a CPU (cpu + cpuacct controllers); skipped where the
    test cannot create one (not root, no v1 cpu controller, a read-only cgroup fs)."""
    import uuid

    name = f"lk-agents-test-{uuid.uuid4().hex[:8]}"
    dirs = [V1_CPU / name, V1_ACCT / name]
    if not (V1_CPU / "cpu.cfs_quota_us").exists() or not (V1_ACCT / "cpuacct.usage").exists():
        pytest.skip("no cgroup v1 cpu/cpuacct controllers here (the fake-tree tests cover v2)")
    try:
        for d in dirs:
            d.mkdir()
        (dirs[0] / "cpu.cfs_period_us").write_text("100000")
        (dirs[0] / "cpu.cfs_quota_us").write_text("50000")
    except OSError as exc:
        for d in dirs:
            if d.exists():
                d.rmdir()
        pytest.skip(f"cannot create a cgroup here: {exc}")
    yield dirs
    import signal
    import time

    for d in dirs:
        for pid in (d / "cgroup.procs").read_text().split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + 10
    for d in dirs:
        while True:
            try:
                d.rmdir()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)


def _in_cgroup(dirs: list[Path], argv: list[str]) -> list[str]:
    """``argv`` run from a shell that first moves itself into the cgroups."""
    import shlex

    joins = " && ".join(f"echo $$ > {d / 'cgroup.procs'}" for d in dirs)
    return ["sh", "-c", f"{joins} && exec {shlex.join(argv)}"]


@pytest.mark.parametrize("with_hog", [True, False], ids=["hog-in-the-cgroup", "idle-cgroup"])
async def test_worker_in_a_cpu_limited_cgroup_measures_its_quota(
    livekit_server, tmp_path: Path, half_cpu_cgroup, helpers, with_hog: bool
) -> None:
    """A worker in a cgroup limited to 0.5 CPU, beside a hog in the same cgroup, is full
    (the container's CPU is used up, whatever the host has left); without the hog it
    stays available."""
    log = tmp_path / "worker.log"
    env = {**os.environ, **livekit_server.env(), "PYTHONUNBUFFERED": "1"}
    script = Path(__file__).parent / "agents" / "greeter_agent.py"
    procs = []
    try:
        if with_hog:
            procs.append(subprocess.Popen(_in_cgroup(half_cpu_cgroup, [sys.executable, "-c", "while True: pass"])))
        with open(log, "wb") as out:
            procs.append(subprocess.Popen(
                _in_cgroup(half_cpu_cgroup, [sys.executable, str(script), "start", "--http-port=0",
                                             "--log-format=text", "--log-level=DEBUG"]),
                env=env, stdout=out, stderr=subprocess.STDOUT))
        text = lambda: log.read_text(errors="replace")  # noqa: E731
        await helpers.wait_until(lambda: "registered worker" in text() or procs[-1].poll() is not None, 30,
                                 "the worker registering")
        assert "load: CPU used by this worker's cgroup v1 (0.5 CPUs)" in text(), text()[-3000:]
        # three load reports (every 2.5 s) over the cgroup's own usage and quota
        await helpers.wait_until(lambda: text().count("worker load ") >= 3, 40, "three load reports")
        loads = [float(line.split("worker load ")[1].split()[0]) for line in text().splitlines()
                 if "worker load " in line]
        if with_hog:
            await helpers.wait_until(lambda: "worker status: full" in text(), 40, "the worker reporting full")
            assert max(loads) >= 0.8, loads
        else:
            assert "worker status: full" not in text()
            assert max(loads) < 0.5, loads
    finally:
        for p in procs:
            p.kill()
            p.wait()
