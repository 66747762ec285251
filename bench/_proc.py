"""Run a command several times; wall time and peak RSS of each run (os.wait4)."""

from __future__ import annotations

import os
import statistics
import subprocess
import time
from dataclasses import dataclass


@dataclass
class Figures:
    label: str
    seconds: list[float]
    rss_mb: list[float]

    @property
    def median_s(self) -> float:
        return statistics.median(self.seconds)

    @property
    def median_mb(self) -> float:
        return statistics.median(self.rss_mb)

    def row(self, baseline: Figures | None = None) -> str:
        ratio = f"{self.median_s / baseline.median_s:5.2f}x" if baseline else "     "
        return (
            f"{self.label:<48} median {self.median_s * 1000:7.1f} ms  min {min(self.seconds) * 1000:7.1f} ms  "
            f"{ratio}  RSS {self.median_mb:6.1f} MB"
        )


def measure(label: str, argv: list[str], runs: int, env: dict[str, str] | None = None) -> Figures:
    seconds, rss = [], []
    for i in range(runs + 1):
        started = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            err = proc.stderr.read().decode() if proc.stderr else ""
            raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}):\n{err}")
        if proc.stderr:
            proc.stderr.close()
        if i == 0:
            continue  # warm-up: file cache, .pyc
        seconds.append(elapsed)
        rss.append(usage.ru_maxrss / 1024)  # KiB on Linux
    return Figures(label, seconds, rss)
