"""The other framework (livekit-agents 1.8.9 from PyPI), in a venv of the benchmarks' own.

It is never installed in the project's environment: a benchmark that compares against it
calls :func:`python` and runs its side in a subprocess of that interpreter.

    from _otherfw import python
    py = python()          # builds ~/.cache/livekit-agents/otherfw-1.8.9 on first use
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

VERSION = "1.8.9"
REQUIREMENTS = [
    f"livekit-agents=={VERSION}",
    f"livekit-plugins-openai=={VERSION}",
    f"livekit-plugins-silero=={VERSION}",
]
VENV = Path(os.environ.get("LIVEKIT_AGENTS_CACHE", Path.home() / ".cache" / "livekit-agents")) / f"otherfw-{VERSION}"


def python() -> str:
    """The interpreter of the other framework's venv, created (and filled from PyPI) once."""
    exe = VENV / "bin" / "python"
    marker = VENV / ".installed"
    if not marker.exists():
        print(f"==> installing livekit-agents {VERSION} (the other framework) into {VENV}", file=sys.stderr, flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(exe), "-m", "pip", "install", "-q", *REQUIREMENTS], check=True)
        marker.write_text("\n".join(REQUIREMENTS) + "\n")
    return str(exe)


if __name__ == "__main__":
    print(python())
