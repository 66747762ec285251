"""Mutation testing (mutmut 3) over the modules where a silent bug hurts most.

``python scripts/mutants.py [TARGET ...]`` (or ``nox -s mutants -- TARGET ...``). Each
target is one source file and the tests that guard it; the script copies them into a
scratch directory under ``.mutants/<target>/``, runs ``mutmut run`` there and prints
mutmut's results (killed / survived per mutant). Surviving mutants are bugs no test
notices: read them with ``mutmut show <name>`` in that directory.

The checkout is installed in editable mode, so a shim conftest puts the mutated copies
in front of the real packages' ``__path__`` (mutmut copies only the files it mutates).
Targets, how each run is kept feasible and the last results: docs/testing.md.
"""

from __future__ import annotations

import fnmatch
import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

TARGETS: dict[str, tuple[list[str], list[str]]] = {
    # name: (source files, test files); PATTERNS below narrow a target to the functions named
    "retry": (["core/livekit/agents/utils/retry.py"], ["tests/core/test_core_retry.py", "tests/core/test_core_retry_after.py"]),
    "plugin_host": (
        ["core/livekit/agents/plugin_host.py"],
        ["tests/plugin_host/test_plugin_host_unit.py", "tests/plugin_host/test_plugin_host_inprocess.py",
         "tests/plugin_host/conftest.py"],
    ),
    # the replay after reconnects: what is retained, covered, resent (its own module)
    "deepgram": (
        ["plugins/livekit-plugins-deepgram/livekit/plugins/deepgram/_replay.py"],
        ["plugins/livekit-plugins-deepgram/tests/test_deepgram_replay_buffer.py"],
    ),
    "silero_batching": (
        ["plugins/livekit-plugins-silero/livekit/plugins/silero/_inference.py"],
        # the unit tests only: test_silero_batch_growth.py shows the same with the real model, but
        # its model thread hangs in mutmut's forked workers (every mutant it reached timed out)
        ["plugins/livekit-plugins-silero/tests/test_silero_batch_unit.py"],
    ),
    # offers and drain, in two parts: the request's answer state (pure: fast unit tests) and
    # the worker's own offer/decline/drain code, which needs the real server (slow per mutant)
    "worker": (["core/livekit/agents/job_request.py"], ["tests/worker/test_job_request_unit.py"]),
    "worker_offers": (
        ["core/livekit/agents/worker.py"],
        ["tests/worker/test_worker_drain_declines.py", "tests/worker/test_worker_drain_contract.py",
         "tests/worker/test_worker_plugin_veto.py", "tests/worker/test_worker_decline_reasons.py"],
    ),
}
DEFAULT = ["retry", "plugin_host", "deepgram", "silero_batching", "worker"]  # the fast ones
PATTERNS: dict[str, list[str]] = {
    "silero_batching": [f"livekit.plugins.silero._inference.{m}__mutmut_*" for m in ("xǁ_Batchǁ*", "xǁInferenceJobǁ*", "x__windows")],
    "worker_offers": [f"livekit.agents.worker.xǁWorkerǁ{m}__mutmut_*" for m in ("_on_offer", "_full_reason", "_drain", "drain")],
}
MAX_CHILDREN = {"worker_offers": 1}  # each run starts a real LiveKit server: one at a time
TIMEOUT_MULTIPLIER = {"worker_offers": 6}  # a hanging mutant costs (test time + 1 s) x this, not x 15
# livekit.rtc's native client does not survive a fork of the process that ran the stats
# (every mutant would hang): fork workers from a clean server process instead
ISOLATION = {"worker_offers": "forkserver"}
ALSO_COPY = {"silero_batching": ["livekit/plugins/silero/resources"]}  # the ONNX model beside the module

SHIM = '''\
"""Put mutmut's mutated copies in front of the editable-installed packages."""
import ctypes
import importlib
import os
import signal
import subprocess
import sys

# mutmut kills a mutant that hangs with SIGKILL: the processes its tests started (a LiveKit
# server) must not outlive it
_libc = ctypes.CDLL(None, use_errno=True)
_popen_init = subprocess.Popen.__init__


def _dies_with_parent():
    _libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _popen(self, *args, **kwargs):
    if kwargs.get("preexec_fn") is None and sys.platform == "linux":
        kwargs["preexec_fn"] = _dies_with_parent
    _popen_init(self, *args, **kwargs)


subprocess.Popen.__init__ = _popen

_root = os.getcwd()
for _dir, _subdirs, _files in os.walk(os.path.join(_root, "livekit")):
    if any(f.endswith(".py") for f in _files):
        _pkg = os.path.relpath(_dir, _root).replace(os.sep, ".")
        _mod = importlib.import_module(_pkg)
        _mod.__path__.insert(0, _dir)
        for _f in _files:
            if _f.endswith(".py"):
                sys.modules.pop(_pkg + "." + _f[:-3], None)
from livekit.agents.testing.pytest_plugin import *  # noqa: E402,F401,F403  (its fixtures, after the shim)
'''

ROOT_CONFTEST = ROOT / "tests" / "conftest.py"


def prepare(name: str) -> Path:
    sources, tests = TARGETS[name]
    work = ROOT / ".mutants" / name
    shutil.rmtree(work, ignore_errors=True)
    (work / "tests").mkdir(parents=True)
    (work / "docs").symlink_to(ROOT / "docs")  # tests that read the docs
    rels = []
    for source in sources:
        src = ROOT / source
        # the path from the (namespace) "livekit" directory on: livekit/agents/..., livekit/plugins/...
        rel = Path(*src.parts[src.parts.index("livekit"):])
        (work / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src, work / rel)
        rels.append(rel.as_posix())
    for extra in ALSO_COPY.get(name, []):
        (work / extra).symlink_to(ROOT / sources[0].split("/livekit/")[0] / extra)
    conftests = [SHIM]
    for t in tests:
        path = ROOT / t
        if path.name == "conftest.py":
            conftests.append(path.read_text())
        else:
            shutil.copy(path, work / "tests" / path.name)
    if tests[0].startswith("tests/"):  # the suite's shared fixtures
        conftests.append(ROOT_CONFTEST.read_text().replace('ROOT = Path(__file__).resolve().parents[1]', f'ROOT = Path({str(ROOT)!r})'))
    (work / "tests" / "conftest.py").write_text("\n\n".join(_hoist(conftests)))
    (work / "pyproject.toml").write_text(
        "[tool.mutmut]\n"
        f"timeout_multiplier = {TIMEOUT_MULTIPLIER.get(name, 15)}\n"
        f'process_isolation = "{ISOLATION.get(name, "fork")}"\n'
        f"also_copy = {json.dumps(ALSO_COPY.get(name, []))}\n"
        f"source_paths = {json.dumps(rels)}\n"
        'pytest_add_cli_args = ["-p", "no:livekit_agents", "-p", "no:cacheprovider", "-q"]\n'
        'pytest_add_cli_args_test_selection = ["tests/"]\n\n'
        "[tool.pytest.ini_options]\n"
        'asyncio_mode = "auto"\nasyncio_default_fixture_loop_scope = "function"\n'
    )
    return work


def _hoist(parts: list[str]) -> list[str]:
    """``from __future__`` imports must come first in the merged conftest."""
    future = "from __future__ import annotations"
    return [future] + [p.replace(future, "") for p in parts]


def main(argv: list[str]) -> int:
    names = argv or DEFAULT
    for name in names:
        if name not in TARGETS:
            print(f"unknown target {name!r}; choose from {', '.join(TARGETS)}", file=sys.stderr)
            return 2
    mutmut = [str(Path(sys.executable).parent / "mutmut")]
    for name in names:
        work = prepare(name)
        print(f"== {name}: {', '.join(TARGETS[name][0])}", flush=True)
        subprocess.run([*mutmut, "run", "--max-children", str(MAX_CHILDREN.get(name, 2)), *PATTERNS.get(name, [])], cwd=work, check=False)
        out = subprocess.run([*mutmut, "results", "--all", "true"], cwd=work, capture_output=True, text=True)
        lines = [line.strip() for line in out.stdout.splitlines() if ":" in line]
        if name in PATTERNS:
            lines = [line for line in lines if any(fnmatch.fnmatch(line.rsplit(":", 1)[0].strip(), p) for p in PATTERNS[name])]
        counts: dict[str, int] = {}
        for line in lines:
            status = line.rsplit(":", 1)[1].strip()
            counts[status] = counts.get(status, 0) + 1
        total = sum(counts.values())
        survived = counts.get("survived", 0)
        print(f"== {name}: {total} mutants, {counts}; survival {survived / max(1, total):.0%}")
        for line in lines:
            if line.endswith("survived"):
                print("   survived:", line.rsplit(":", 1)[0])
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
