"""The process tree, read from ``/proc`` (Linux): which processes a worker runs."""

from __future__ import annotations

import os
from typing import NamedTuple


class Proc(NamedTuple):
    ppid: int
    state: str
    """One letter, as in ``ps``: ``R``, ``S``, ``Z`` (a zombie) ..."""
    comm: str
    """The process name (what ``set_process_name`` gave it)."""


def process_table() -> dict[int, Proc]:
    """Every process that can be read now, by pid."""
    out: dict[int, Proc] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:  # it ended meanwhile
            continue
        close = stat.rindex(")")
        state, ppid = stat[close + 2 :].split()[:2]
        out[int(entry)] = Proc(int(ppid), state, stat[stat.index("(") + 1 : close])
    return out


def children(pid: int) -> dict[int, str]:
    """``{pid: comm}`` of the live (not zombie) children of ``pid``."""
    return {p: proc.comm for p, proc in process_table().items() if proc.ppid == pid and proc.state != "Z"}


def descendants(root: int) -> list[int]:
    """``root`` and every process below it."""
    below: dict[int, list[int]] = {}
    for p, proc in process_table().items():
        below.setdefault(proc.ppid, []).append(p)
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(below.get(pid, []))
    return out
