"""A process tree's CPU (by thread) and memory: RSS and PSS (``/proc/PID/smaps_rollup``) summed over a
process and all its descendants."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections import defaultdict

from livekit.agents.executor.process import process_memory_mb
from livekit.agents.testing.procs import descendants


def tree_cpu(root: int) -> tuple[float, dict[str, float]]:
    """CPU seconds (user+system) of the tree, and by thread name. The total is each process's
    own count, which keeps the time of its threads that have ended (under "ended threads")."""
    tick = os.sysconf("SC_CLK_TCK")

    def cpu_of(path: str) -> tuple[str, float] | None:
        try:
            with open(path) as f:
                stat = f.read()
        except OSError:  # it ended meanwhile
            return None
        fields = stat[stat.rindex(")") + 2 :].split()
        return stat[stat.index("(") + 1 : stat.rindex(")")], (int(fields[11]) + int(fields[12])) / tick

    total = 0.0
    by_thread: dict[str, float] = defaultdict(float)
    for pid in descendants(root):
        process = cpu_of(f"/proc/{pid}/stat")
        if process is None:
            continue
        total += process[1]
        threads = 0.0
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            tids = []
        for tid in tids:
            thread = cpu_of(f"/proc/{pid}/task/{tid}/stat")
            if thread is not None:
                by_thread[_thread_kind(thread[0])] += thread[1]
                threads += thread[1]
        if process[1] > threads:
            by_thread["ended threads"] += process[1] - threads
    return total, by_thread


def _thread_kind(name: str) -> str:
    name = name.strip()
    for prefix in ("tokio", "livekit", "webrtc", "signaling", "worker", "network", "lk-"):
        if name.startswith(prefix):
            return name.rstrip("0123456789-_ ") or name
    return name.rstrip("0123456789-_ ") or name


def tree_memory_mb(root: int) -> tuple[float, float, int]:
    """``(RSS, PSS, processes)`` of the tree under ``root``."""
    rss = pss = 0.0
    pids = descendants(root)
    for pid in pids:
        r, p = process_memory_mb(pid)
        rss += r
        pss += p
    return rss, pss, len(pids)


async def settled_tree(root: int, interval: float = 2.0, window: int = 5, limit: float = 120.0
                       ) -> tuple[float, float, int]:
    """Tree memory once steady: the last ``window`` PSS samples within 2%; their mean."""
    samples: list[tuple[float, float, int]] = []
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        samples.append(tree_memory_mb(root))
        if os.environ.get("BENCH_DEBUG"):
            print(f"  tree {root}: rss {samples[-1][0]:.1f} pss {samples[-1][1]:.1f} MB, "
                  f"{samples[-1][2]} processes", file=sys.stderr)
        last = samples[-window:]
        if len(last) == window:
            pss = [s[1] for s in last]
            if max(pss) - min(pss) <= 0.02 * min(pss):
                break
        await asyncio.sleep(interval)
    last = samples[-window:]
    return (sum(s[0] for s in last) / len(last), sum(s[1] for s in last) / len(last), last[-1][2])
