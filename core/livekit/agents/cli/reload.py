"""``dev --reload``: run the worker in a child process and restart it when code changes.

The supervisor watches every ``.py`` file under the agent script's directory (hidden
directories, ``__pycache__``, virtual environments and ``site-packages`` skipped) by
polling their modification times. On a change it sends the worker SIGTERM: the worker
drains as ``dev`` does (new offers declined; running jobs get the drain timeout, 10 s by
default, then are ended and leave their rooms), exits, and a new worker starts with the
new code. Rooms whose jobs ended this way do not get a new agent by themselves (the
server dispatches a room once, when it is created): create a new room, or run
``connect --room``. A worker that exits by itself (a syntax error, a crash) is restarted
on the next change. SIGINT/SIGTERM to the supervisor is passed to the worker once (a
second one ends its jobs now), then the supervisor exits with the worker's status.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

logger = logging.getLogger("livekit.agents")

POLL_INTERVAL = 0.5
SKIP_DIRS = {"__pycache__", "node_modules", "site-packages", "venv", ".venv", "build", "dist"}


def watched_files(root: Path) -> dict[Path, float]:
    """``.py`` files under ``root`` and their modification times."""
    found: dict[Path, float] = {}
    for directory, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d not in SKIP_DIRS]
        for name in files:
            if name.endswith(".py"):
                path = Path(directory) / name
                try:
                    found[path] = path.stat().st_mtime_ns
                except OSError:
                    pass
    return found


def changed(before: dict[Path, float], after: dict[Path, float]) -> list[Path]:
    return sorted({p for p in before.keys() | after.keys() if before.get(p) != after.get(p)})


def supervise(argv: list[str], *, drain_timeout: float, root: Path | None = None) -> int:
    """Run ``argv`` (the worker), restart it on file changes; returns its last exit status."""
    from .app import RELOAD_CHILD_ENV

    root = root or Path(sys.argv[0]).resolve().parent
    env = {**os.environ, RELOAD_CHILD_ENV: "1"}
    stop: list[int] = []

    def on_signal(sig: int, _frame: object) -> None:
        stop.append(sig)
        if child is not None and child.poll() is None:
            child.send_signal(signal.SIGTERM)

    child: subprocess.Popen[bytes] | None = None
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    snapshot = watched_files(root)
    logger.info("reload: watching %d .py file(s) under %s", len(snapshot), root)
    while True:
        # its own session: a Ctrl-C in the terminal reaches the supervisor only, which
        # passes it on once (the worker would take a second one as "end the jobs now")
        child = subprocess.Popen(argv, env=env, start_new_session=True)
        reported_exit = False
        while True:
            if stop:
                code = child.wait()
                return code
            time.sleep(POLL_INTERVAL)
            now = watched_files(root)
            diff = changed(snapshot, now)
            snapshot = now
            if diff:
                logger.info("reload: %s changed; restarting the worker (running jobs get %gs to end)",
                            ", ".join(str(p.relative_to(root)) for p in diff[:3]), drain_timeout)
                if child.poll() is None:
                    child.send_signal(signal.SIGTERM)
                    try:
                        child.wait(timeout=drain_timeout + 30)
                    except subprocess.TimeoutExpired:
                        logger.warning("reload: the worker did not stop in time; killing it")
                        child.kill()
                        child.wait()
                break
            if child.poll() is not None and not reported_exit:
                reported_exit = True
                logger.warning("reload: the worker exited with status %s; waiting for a file change to restart it",
                               child.returncode)


__all__ = ["supervise", "watched_files"]
