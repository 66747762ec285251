"""The worker's default load: the machine's CPU utilisation, averaged over a few seconds.

A worker reports a load between 0.0 (idle) and 1.0 (saturated) to the LiveKit server,
which weights its choice of worker by ``1 - load`` and skips workers that report
``WS_FULL``. The default measure is the CPU time the whole machine spent busy since the
previous sample (``/proc/stat``; ``os.getloadavg() / cpu_count`` where that file does
not exist), smoothed with a moving average so one busy second does not close the worker.
"""

from __future__ import annotations

import os
from collections import deque


def _read_proc_stat() -> tuple[int, int] | None:
    """``(busy, total)`` CPU jiffies of the machine, or ``None`` without ``/proc``."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            fields = f.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu":
        return None
    values = [int(v) for v in fields[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    total = sum(values[:8])  # guest time is already counted in user/nice
    return total - idle, total


class CPULoad:
    """Call :meth:`sample` periodically; it returns the smoothed utilisation (0..1)."""

    def __init__(self, window: int = 3) -> None:
        self._last = _read_proc_stat()
        self._values: deque[float] = deque(maxlen=max(1, window))

    def sample(self) -> float:
        now = _read_proc_stat()
        if now is None or self._last is None:
            value = os.getloadavg()[0] / (os.cpu_count() or 1)
        else:
            busy = now[0] - self._last[0]
            total = now[1] - self._last[1]
            value = busy / total if total > 0 else (self._values[-1] if self._values else 0.0)
        self._last = now
        self._values.append(min(1.0, max(0.0, value)))
        return sum(self._values) / len(self._values)

    def __call__(self) -> float:
        return self.sample()
