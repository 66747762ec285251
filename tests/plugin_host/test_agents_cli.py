"""The `agents` console script itself: version, help, documented options."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click

from livekit.agents.cli.main import cli
from livekit.agents.version import __version__

REPO_ROOT = Path(__file__).resolve().parents[2]


def run(agents_script: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LIVEKIT_AGENTS_")}
    return subprocess.run(
        [sys.executable, str(agents_script), *args],
        capture_output=True,
        text=True,
        env={**clean, **env},
        timeout=60,
    )


def test_version(agents_script):
    out = run(agents_script, "--version")
    assert out.returncode == 0
    assert out.stdout.strip() == f"livekit-agents {__version__}"


def test_help_names_the_environment_variables(agents_script):
    out = run(agents_script, "--help")
    assert out.returncode == 0
    for var in (
        "LIVEKIT_AGENTS_PLUGINS",
        "LIVEKIT_AGENTS_DISABLE_PLUGINS",
        "LIVEKIT_AGENTS_STRICT_PLUGINS",
        "LIVEKIT_AGENTS_TRACE_PLUGINS",
    ):
        assert var in out.stdout
    assert "plugins" in out.stdout


def test_choosing_no_plugin_disables_all(agents_script):
    out = run(agents_script, "--plugins", "", "plugins", "list", "--json")
    assert out.returncode == 0, out.stderr
    assert {p["status"] for p in json.loads(out.stdout)} <= {"disabled"}


def test_every_option_is_documented():
    text = (REPO_ROOT / "docs" / "cli.md").read_text() + (REPO_ROOT / "docs" / "plugins.md").read_text()
    commands: list[click.Command] = [cli]
    seen = []
    while commands:
        command = commands.pop()
        if isinstance(command, click.Group):
            commands += list(command.commands.values())
        for param in command.params:
            for opt in getattr(param, "opts", []):
                if opt.startswith("--") and opt != "--help":
                    seen.append(opt)
                    assert f"`{opt}" in text or f"{opt} " in text, f"{opt} is not documented in docs/cli.md"
    assert {"--plugins", "--disable-plugin", "--strict", "--trace", "--json", "--version"} <= set(seen)
