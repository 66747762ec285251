"""Memory of a process tree: RSS and PSS (``/proc/PID/smaps_rollup``) summed over a
process and all its descendants."""

from __future__ import annotations

import asyncio
import os
import sys
import time

from livekit.agents.executor.process import process_memory_mb


def descendants(root: int) -> list[int]:
    """``root`` and every process below it."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


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
