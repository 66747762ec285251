"""Time and peak RSS of `python -c "import livekit.agents"`, beside baselines from the same run.

Target (GUIDE §7): at most 0.25 s and 60 MB. Baselines: `python -c pass` and
`import livekit.rtc` (the SDK every agent needs anyway).

    python bench/bench_import.py [--runs 15]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _proc import measure  # noqa: E402

TARGET_S, TARGET_MB = 0.25, 60.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=15)
    args = ap.parse_args()
    py = sys.executable
    bare = measure("python -c pass", [py, "-c", "pass"], args.runs)
    rtc = measure("python -c 'import livekit.rtc'", [py, "-c", "import livekit.rtc"], args.runs)
    agents = measure("python -c 'import livekit.agents'", [py, "-c", "import livekit.agents"], args.runs)
    both = measure(
        "python -c 'import livekit.agents, livekit.rtc'",
        [py, "-c", "import livekit.agents, livekit.rtc"],
        args.runs,
    )
    print(f"{args.runs} runs each (after one warm-up), {py}")
    print(bare.row())
    print(rtc.row(rtc))
    print(agents.row(rtc), "  <- ratio vs import livekit.rtc")
    print(both.row(rtc))
    ok = agents.median_s <= TARGET_S and agents.median_mb <= TARGET_MB
    print(
        f"import livekit.agents: {agents.median_s:.3f} s (target <= {TARGET_S} s), "
        f"{agents.median_mb:.1f} MB (target <= {TARGET_MB:.0f} MB), "
        f"{agents.median_s - bare.median_s:.3f} s above bare python: {'OK' if ok else 'OVER TARGET'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
