"""Wall time and peak RSS of `agents plugins list` with every installed plugin, beside
baselines from the same run (`python -c pass`, `import livekit.agents`).

Target (GUIDE §7): at most 0.4 s, with no provider SDK or model runtime imported (the
test tests/plugin_host/test_listing_stays_light.py checks the latter through sys.modules).

    python bench/bench_plugins_list.py [--runs 15]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _proc import measure  # noqa: E402

TARGET_S = 0.4


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=15)
    args = ap.parse_args()
    py = sys.executable
    script = Path(py).parent / "agents"
    if not script.exists():
        raise SystemExit(f"no `agents` console script beside {py}; pip install -e ./core")
    listed = json.loads(
        subprocess.run(
            [py, str(script), "plugins", "list", "--json"], capture_output=True, text=True, check=True
        ).stdout
    )
    bare = measure("python -c pass", [py, "-c", "pass"], args.runs)
    core = measure("python -c 'import livekit.agents'", [py, "-c", "import livekit.agents"], args.runs)
    table = measure("agents plugins list", [py, str(script), "plugins", "list"], args.runs)
    as_json = measure("agents plugins list --json", [py, str(script), "plugins", "list", "--json"], args.runs)
    print(f"{args.runs} runs each (after one warm-up), {py}")
    statuses = ", ".join(f"{p['name']} ({p['status']})" for p in listed) or "none"
    print(f"{len(listed)} plugins installed: {statuses}")
    print(bare.row(bare))
    print(core.row(bare))
    print(table.row(bare), "  <- ratio vs bare python")
    print(as_json.row(bare))
    ok = table.median_s <= TARGET_S
    print(
        f"agents plugins list: {table.median_s:.3f} s (target <= {TARGET_S} s), "
        f"{table.median_s - core.median_s:.3f} s above import livekit.agents: {'OK' if ok else 'OVER TARGET'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
