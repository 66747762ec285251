"""Temporary Python environments for plugin install / list / check / uninstall tests.

Each environment is a venv (no pip of its own) whose ``.pth`` file adds the site-packages of
the interpreter running the tests with ``site.addsitedir``, so it sees livekit-agents (from
this checkout) and its dependencies, while whatever the test installs lands in the
environment itself and can be uninstalled again. Fixture plugin wheels are built once per
session.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURE_PLUGINS = REPO_ROOT / "tests" / "fixtures" / "plugins"
ACME = REPO_ROOT / "examples" / "plugin-acme"
AGENTS_SCRIPT = Path(sys.executable).parent / "agents"

BROKEN = ("badimport", "badsignature", "unknownhook", "raisesinregister", "incompatible")
WRONG = ("wrongstt", "wrongtts", "wrongvad", "wrongsentence", "wrongword")


class TempEnv:
    """A throwaway environment layered on the test interpreter's site-packages."""

    def __init__(self, root: Path) -> None:
        self.root = root
        venv.EnvBuilder(with_pip=False, symlinks=True).create(root)
        self.python = root / "bin" / "python"
        self.site_packages = Path(
            subprocess.run(
                [str(self.python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
        )
        parent = sysconfig.get_paths()["purelib"]
        (self.site_packages / "_livekit_test_parent.pth").write_text(
            f"import site; site.addsitedir({parent!r})\n"
        )

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = {
            k: v for k, v in os.environ.items() if not k.startswith("LIVEKIT_AGENTS_") and k != "PYTHONPATH"
        }
        env.update(extra or {})
        return env

    def run(
        self, *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.python), *args],
            capture_output=True,
            text=True,
            env=self.env(env),
            cwd=cwd or self.root,
            timeout=timeout,
        )

    def pip(self, *args: str) -> subprocess.CompletedProcess[str]:
        out = self.run("-m", "pip", *args, "--disable-pip-version-check")
        assert out.returncode == 0, f"pip {' '.join(args)} failed:\n{out.stdout}\n{out.stderr}"
        return out

    def agents(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """Run the real ``agents`` console script with this environment's interpreter."""
        return self.run(str(AGENTS_SCRIPT), *args, env=env)

    def plugins_json(self, *args: str, env: dict[str, str] | None = None) -> dict[str, dict[str, Any]]:
        out = self.agents(*args, "plugins", "list", "--json", env=env)
        assert out.returncode == 0, out.stderr
        return {p["name"]: p for p in json.loads(out.stdout)}

    def python_json(self, code: str, env: dict[str, str] | None = None) -> Any:
        """Run ``code`` (which prints one JSON document last) in this environment."""
        out = self.run("-c", code, env=env)
        assert out.returncode == 0, f"python failed:\n{out.stderr}"
        return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def agents_script() -> Path:
    assert AGENTS_SCRIPT.exists(), (
        f"the `agents` console script is missing beside {sys.executable}; reinstall core: pip install -e ./core"
    )
    import importlib.util

    assert importlib.util.find_spec("hatchling") is not None, (
        "these tests build plugin wheels offline (pip --no-build-isolation) and need the build "
        "backend: pip install hatchling"
    )
    return AGENTS_SCRIPT


@pytest.fixture(scope="session")
def plugin_wheels(tmp_path_factory: pytest.TempPathFactory, agents_script: Path) -> dict[str, Path]:
    """Wheels of every fixture plugin and of the acme example, built once."""
    out = tmp_path_factory.mktemp("wheels")
    sources = sorted(FIXTURE_PLUGINS.glob("livekit-plugins-*")) + [ACME]
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--disable-pip-version-check",
            "-w",
            str(out),
            *map(str, sources),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, f"building fixture wheels failed (is hatchling installed?):\n{proc.stderr}"
    wheels = {w.name.split("-")[0].removeprefix("livekit_plugins_"): w for w in out.glob("*.whl")}
    assert set(wheels) == {*BROKEN, *WRONG, "acme"}, sorted(wheels)
    return wheels


@pytest.fixture(scope="session")
def fixtures_env(
    tmp_path_factory: pytest.TempPathFactory, plugin_wheels: dict[str, Path], agents_script: Path
) -> TempEnv:
    """One environment with acme and every broken and wrong fixture plugin installed."""
    env = TempEnv(tmp_path_factory.mktemp("fixtures-env") / "env")
    env.pip("install", "-q", "--no-deps", "--no-index", *map(str, plugin_wheels.values()))
    return env


@pytest.fixture
def temp_env(tmp_path: Path, agents_script: Path) -> TempEnv:
    """A fresh, empty environment for one test."""
    return TempEnv(tmp_path / "env")
