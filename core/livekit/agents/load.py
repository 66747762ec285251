"""The worker's default load: the CPU this worker uses over the CPU available to it.

A worker reports a load between 0.0 (idle) and 1.0 (saturated) to the LiveKit server,
which weights its choice of worker by ``1 - load`` and skips workers that report
``WS_FULL``. :class:`WorkerCPULoad` measures it honestly:

* **available CPU**: the cgroup's CPU quota when the worker runs in a cgroup that has
  one (cgroup v2 ``cpu.max`` ``quota period``; v1 ``cpu.cfs_quota_us`` /
  ``cpu.cfs_period_us``), the nearest limited ancestor included; otherwise the cores this
  process may run on (``os.sched_getaffinity``), else ``os.cpu_count()``;
* **used CPU**: with a quota, the cgroup's usage (v2 ``cpu.stat`` ``usage_usec``, v1
  ``cpuacct.usage``): everything in the container counts against the quota; without one,
  the CPU time of this worker's process tree (``/proc/<pid>/stat`` of the worker and its
  descendants, reaped children included). Other processes on the machine do not count.

The first sample's baseline is taken by :meth:`WorkerCPULoad.reset` (the worker calls it
when it registers), so the start-up does not count as load. Samples are smoothed with a
moving average so one busy second does not close the worker. ``cgroup_root``,
``self_cgroup``, ``proc_root`` and ``clock`` are injectable for tests (a fake cgroup tree).

A ``load_fn`` of your own may have a ``reset()`` method too: the worker calls it when it
first registers.
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger("livekit.agents")

CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_ROOT = Path("/proc")
MIN_INTERVAL = 0.05
"""Seconds: a sample closer than this to the previous one only returns the average."""
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


# --- cgroups ----------------------------------------------------------------------------


@dataclass(frozen=True)
class CgroupCPU:
    """A cgroup with a CPU quota: how many CPUs it may use and where its usage is read."""

    version: int
    cpus: float
    """The quota in CPUs (``quota / period``)."""
    usage_file: Path
    """``cpu.stat`` (v2, ``usage_usec``) or ``cpuacct.usage`` (v1, nanoseconds)."""

    def usage_seconds(self) -> float | None:
        try:
            text = self.usage_file.read_text()
        except OSError:
            return None
        if self.version == 2:
            for line in text.splitlines():
                key, _, value = line.partition(" ")
                if key == "usage_usec":
                    return int(value) / 1e6
            return None
        try:
            return int(text.strip()) / 1e9
        except ValueError:
            return None


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _ancestors(root: Path, cgroup_path: str) -> list[Path]:
    """The cgroup's directory under ``root`` and its parents up to ``root``, nearest first.
    In a container the process's path is often not visible inside its own mount: then
    ``root`` itself is its cgroup."""
    parts = [p for p in cgroup_path.strip().split("/") if p]
    dirs = [root.joinpath(*parts[:i]) for i in range(len(parts), 0, -1)]
    return [d for d in dirs if d.is_dir()] + [root]


def _v2_quota(directory: Path) -> float | None:
    text = _read(directory / "cpu.max")
    if not text:
        return None
    fields = text.split()
    if fields[0] == "max":
        return None
    try:
        quota = int(fields[0])
        period = int(fields[1]) if len(fields) > 1 else 100_000
    except ValueError:
        return None
    return quota / period if quota > 0 and period > 0 else None


def _v1_quota(directory: Path) -> float | None:
    quota, period = _read(directory / "cpu.cfs_quota_us"), _read(directory / "cpu.cfs_period_us")
    try:
        q, p = int(quota or "-1"), int(period or "0")
    except ValueError:
        return None
    return q / p if q > 0 and p > 0 else None


def _first_dir(*candidates: Path) -> Path | None:
    return next((c for c in candidates if c.is_dir()), None)


def find_cgroup_cpu(cgroup_root: Path | str = CGROUP_ROOT,
                    self_cgroup: Path | str = PROC_ROOT / "self" / "cgroup") -> CgroupCPU | None:
    """The CPU-limited cgroup this process runs in (the tightest quota among its cgroup
    and ancestors), or ``None`` when no quota applies or cgroups are not readable."""
    root = Path(cgroup_root)
    text = _read(Path(self_cgroup))
    if text is None or not root.is_dir():
        return None
    v2_path: str | None = None
    v1: dict[str, str] = {}
    for line in text.splitlines():
        fields = line.split(":", 2)
        if len(fields) != 3:
            continue
        hierarchy, controllers, path = fields
        if hierarchy == "0" and controllers == "":
            v2_path = path
        for name in controllers.split(","):
            if name in ("cpu", "cpuacct"):
                v1[name] = path
                v1.setdefault("_mount_" + name, controllers)

    best: CgroupCPU | None = None
    if "cpu" in v1:
        cpu_base = _first_dir(root / v1["_mount_cpu"], root / "cpu,cpuacct", root / "cpu")
        acct_base = _first_dir(root / v1.get("_mount_cpuacct", "cpuacct"), root / "cpu,cpuacct", root / "cpuacct")
        if cpu_base is not None:
            for directory in _ancestors(cpu_base, v1["cpu"]):
                cpus = _v1_quota(directory)
                if cpus is None or (best is not None and cpus >= best.cpus):
                    continue
                usage = directory / "cpuacct.usage"
                if not usage.exists() and acct_base is not None:
                    usage = acct_base / directory.relative_to(cpu_base) / "cpuacct.usage"
                best = CgroupCPU(1, cpus, usage)
    if v2_path is not None:
        unified = root / "unified" if (root / "unified").is_dir() and not (root / "cgroup.controllers").exists() \
            else root
        for directory in _ancestors(unified, v2_path):
            cpus = _v2_quota(directory)
            if cpus is not None and (best is None or cpus < best.cpus):
                best = CgroupCPU(2, cpus, directory / "cpu.stat")
    return best


def available_cpus() -> float:
    """The cores this process may run on (affinity), else the machine's count."""
    try:
        return float(len(os.sched_getaffinity(0))) or 1.0
    except (AttributeError, OSError):
        return float(os.cpu_count() or 1)


# --- the process tree -------------------------------------------------------------------


def _children(proc: Path, pid: int) -> list[int]:
    kids: list[int] = []
    task_dir = proc / str(pid) / "task"
    try:
        tids = os.listdir(task_dir)
    except OSError:
        tids = [str(pid)]
    for tid in tids:
        text = _read(task_dir / tid / "children")
        if text:
            kids.extend(int(c) for c in text.split())
    return kids


def process_tree(pid: int, proc_root: Path | str = PROC_ROOT) -> list[int]:
    """``pid`` and its descendants (via ``/proc/<pid>/task/*/children``)."""
    proc = Path(proc_root)
    seen: list[int] = []
    todo = [pid]
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.append(p)
        todo.extend(_children(proc, p))
    return seen


def _stat_fields(proc: Path, pid: int) -> list[str] | None:
    text = _read(proc / str(pid) / "stat")
    if not text:
        return None
    # the command name is in parentheses and may contain spaces
    return text[text.rfind(")") + 2:].split()


def process_tree_cpu_seconds(pid: int, proc_root: Path | str = PROC_ROOT) -> float | None:
    """CPU seconds used by ``pid`` and its descendants, reaped children included
    (utime + stime + cutime + cstime of each)."""
    proc = Path(proc_root)
    total = 0
    found = False
    for p in process_tree(pid, proc):
        fields = _stat_fields(proc, p)
        if fields is None or len(fields) < 15:
            continue
        found = True
        total += sum(int(v) for v in fields[11:15])
    return total / _CLOCK_TICKS if found else None


def process_tree_rss(pid: int, proc_root: Path | str = PROC_ROOT) -> int | None:
    """Resident bytes of ``pid`` and its descendants (``None`` without ``/proc``)."""
    proc = Path(proc_root)
    total = 0
    found = False
    for p in process_tree(pid, proc):
        text = _read(proc / str(p) / "statm")
        if not text:
            continue
        found = True
        total += int(text.split()[1]) * _PAGE
    return total if found else None


# --- the load ---------------------------------------------------------------------------


class WorkerCPULoad:
    """Call :meth:`sample` periodically; it returns the smoothed load (0..1) of this worker.

    ``WorkerCPULoad()`` measures the calling process's tree and its cgroup; the keyword
    arguments exist for tests."""

    def __init__(
        self,
        window: int = 3,
        *,
        pid: int | None = None,
        cgroup_root: Path | str = CGROUP_ROOT,
        self_cgroup: Path | str | None = None,
        proc_root: Path | str = PROC_ROOT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        self.pid = os.getpid() if pid is None else pid
        self._proc = Path(proc_root)
        self.cgroup = find_cgroup_cpu(cgroup_root, self_cgroup or self._proc / str(self.pid) / "cgroup")
        self.cpus = self.cgroup.cpus if self.cgroup is not None else available_cpus()
        self._values: deque[float] = deque(maxlen=max(1, window))
        self._last: tuple[float, float] | None = None
        self.reset()

    @property
    def source(self) -> str:
        """What is measured, for logs: ``cgroup v2 (0.5 CPUs)``, ``process tree (2 CPUs)``."""
        if self.cgroup is not None:
            return f"cgroup v{self.cgroup.version} ({self.cpus:g} CPUs)"
        return f"process tree ({self.cpus:g} CPUs)"

    def _used(self) -> float | None:
        if self.cgroup is not None:
            return self.cgroup.usage_seconds()
        return process_tree_cpu_seconds(self.pid, self._proc)

    def reset(self) -> None:
        """Forget the samples and take a new baseline now (what came before is not load)."""
        used = self._used()
        self._last = (self._clock(), used) if used is not None else None
        self._values.clear()

    def sample(self) -> float:
        now, used = self._clock(), self._used()
        if used is None or self._last is None:
            value = self._values[-1] if self._values else 0.0
        else:
            elapsed = now - self._last[0]
            if elapsed < MIN_INTERVAL:  # too short to tell anything; keep the baseline
                return sum(self._values) / len(self._values) if self._values else 0.0
            value = (used - self._last[1]) / (elapsed * self.cpus)
        self._last = (now, used) if used is not None else self._last
        self._values.append(min(1.0, max(0.0, value)))
        return sum(self._values) / len(self._values)

    def __call__(self) -> float:
        return self.sample()


CPULoad = WorkerCPULoad
"""The former name."""

__all__ = ["CPULoad", "CgroupCPU", "WorkerCPULoad", "available_cpus", "find_cgroup_cpu", "process_tree",
           "process_tree_cpu_seconds", "process_tree_rss"]
