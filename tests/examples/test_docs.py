"""Every shell command in README.md and docs/*.md is run here, so the docs cannot drift
from the code.

* ``pip install`` of local paths runs as a dry run (``--no-deps``): the paths and their
  metadata must be valid. ``pip install nox`` needs nothing checked.
* ``nox -s NAME``: the session exists; what it runs is tested elsewhere (the demo, the suite).
* ``docker ...``: no engine here; test_dockerfile.py runs the Dockerfile's steps.
* ``export ...`` and ``VAR=value`` prefixes set the environment of what follows.
* ``python <agent>.py start|dev ...``: runs against the real LiveKit server with the
  placeholders (``<key>``, ``<your livekit url>``, ``ws://localhost:7880``) replaced; it
  must register, then drain and exit 0 on SIGTERM. ``python <agent>.py connect ...`` must
  join its room, then end its job and exit 0 on SIGTERM. ``my_agent.py`` is the README's
  own example, written to a file as a user would copy it.
* ``agents ...``: runs and must succeed; in transcripts (``$ command`` followed by its
  output) it runs in an environment with the plugins the transcript shows, and the shown
  output must appear.
A command of any other kind fails the test until this file learns to check it.
"""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BIN = Path(sys.executable).parent


@dataclass
class Command:
    source: str
    line: str
    expected: list[str]  # output shown under a "$ command" line
    transcript: bool


def commands() -> list[Command]:
    found = []
    for doc in DOCS:
        text = doc.read_text()
        for block in re.findall(r"```(?:bash|sh|shell|console)\n(.*?)```", text, re.S):
            lines = [text_line for text_line in block.splitlines() if text_line.strip()]
            if any(text_line.startswith("$ ") for text_line in lines):
                current: Command | None = None
                for text_line in lines:
                    if text_line.startswith("$ "):
                        current = Command(doc.name, text_line[2:].strip(), [], True)
                        found.append(current)
                    elif current is not None:
                        current.expected.append(text_line)
            else:
                found += [Command(doc.name, text_line.strip(), [], False) for text_line in lines]
    return found


ALL = commands()


def readme_agent() -> str:
    match = re.search(r'```python title="my_agent.py"\n(.*?)```', (ROOT / "README.md").read_text(), re.S)
    assert match, "README.md lost its my_agent.py example"
    return match.group(1)


def test_readme_example_is_the_shipped_example() -> None:
    shipped = (ROOT / "examples" / "my_agent.py").read_text()
    norm = lambda s: [text_line.rstrip() for text_line in s.strip().splitlines()]  # noqa: E731
    assert norm(readme_agent()) == norm(shipped)


def test_docs_have_commands() -> None:
    assert len(ALL) > 15 and {c.source for c in ALL} >= {"README.md", "getting-started.md", "plugins.md"}


def _strip_comment(line: str) -> str:
    return re.sub(r"\s+#.*$", "", line)


def _substitute(line: str, server: Any) -> str:
    line = line.replace("ws://localhost:7880", server.url)
    def repl(m: re.Match[str]) -> str:
        word = m.group(1).lower()
        if "url" in word:
            return server.url
        if "secret" in word:
            return server.api_secret
        return server.api_key

    return re.sub(r"<([^<>]*)>", repl, line)


def _split_env(words: list[str]) -> tuple[dict[str, str], list[str]]:
    env = {}
    while words and re.match(r"^[A-Z_][A-Z0-9_]*=", words[0]):
        k, _, v = words.pop(0).partition("=")
        env[k] = v
    return env, words


def _env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LIVEKIT_", "AGENT_"))}
    env["PATH"] = f"{BIN}{os.pathsep}{env['PATH']}"
    # the documented default health port (8081) may be taken by another worker on a
    # shared machine: any free one, through the option's variable
    env["LIVEKIT_AGENTS_HTTP_PORT"] = "0"
    env.update(extra)
    return env


def _nox_sessions() -> set[str]:
    return set(re.findall(r"@nox\.session(?:\([^)]*\))?\s*\ndef (\w+)", (ROOT / "noxfile.py").read_text()))


async def _run_worker(argv: list[str], env: dict[str, str], cwd: Path, server: Any, log: Path,
                      ready: str = "registered worker") -> None:
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        for _ in range(300):
            if ready in log.read_text(errors="replace") or proc.poll() is not None:
                break
            await asyncio.sleep(0.1)
        assert proc.poll() is None, f"{' '.join(argv)} exited with {proc.returncode}:\n{log.read_text()[-3000:]}"
        assert ready in log.read_text(), f"{' '.join(argv)} did not log {ready!r}:\n{log.read_text()[-3000:]}"
        proc.send_signal(signal.SIGTERM)
        for _ in range(300):
            if proc.poll() is not None:
                break
            await asyncio.sleep(0.1)
        assert proc.returncode == 0, f"{' '.join(argv)} did not drain and exit 0:\n{log.read_text()[-3000:]}"
        assert server.api_secret not in log.read_text(), "the API secret appeared in the logs"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


async def _run_fake(args: list[str], env: dict[str, str]) -> None:
    """``python -m livekit.plugins.openai.testing ... [&]``: the simulation starts (on a
    free port here), says it is one, answers on its port, and stops on SIGTERM."""
    args = [a for a in args if a != "&"]
    if "--port" in args:
        args[args.index("--port") + 1] = "0"
    proc = subprocess.Popen([sys.executable, "-m", "livekit.plugins.openai.testing", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        out = ""
        while "serving on" not in out:
            line = await asyncio.to_thread(proc.stdout.readline)  # type: ignore[union-attr]
            assert line, f"the fake exited ({proc.wait()}):\n{out}"
            out += line
        assert out.startswith("SIMULATION"), out
        base = re.search(r"serving on (\S+)", out).group(1)  # type: ignore[union-attr]
        import urllib.error
        import urllib.request

        with pytest.raises(urllib.error.HTTPError) as denied:  # no key: OpenAI's 401
            await asyncio.to_thread(urllib.request.urlopen, urllib.request.Request(f"{base}/audio/speech", data=b"{}"))
        assert denied.value.code == 401
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0


def _mutant_targets() -> list[str]:
    import importlib.util

    spec = importlib.util.spec_from_file_location("_mutants", ROOT / "scripts/mutants.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return list(module.TARGETS)


async def _check(cmd: Command, server: Any, tmp: Path, session_env: dict[str, str]) -> None:
    line = _substitute(_strip_comment(cmd.line), server)
    for part in [p.strip() for p in line.split("&&")]:
        words = shlex.split(part)
        if words[0] == "export":
            session_env.update(dict(w.split("=", 1) for w in words[1:]))
            continue
        env_prefix, words = _split_env(words)
        env = _env({**session_env, **env_prefix})
        prog = words[0]
        if prog == "pip" and words[1:] == ["install", "nox"]:
            continue
        if prog == "pip" and words[1] == "install":
            args = words[2:]
            assert all(a.startswith(("-", "./")) for a in args), f"{cmd.line}: installs by name, not from a local path"
            out = subprocess.run(
                [sys.executable, "-m", "pip", "install", "--dry-run", "--no-deps", "--no-build-isolation", "--no-index", *args],
                cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
            )
            assert out.returncode == 0, f"{cmd.source}: {cmd.line}\n{out.stderr[-2000:]}"
        elif prog == "nox":
            assert words[1] == "-s" and words[2] in _nox_sessions(), f"{cmd.source}: no nox session {words[2:]}"
        elif prog == "docker":
            assert (ROOT / "examples/agents/Dockerfile").exists()
            if words[1] == "build":
                assert words[words.index("-f") + 1] == "examples/agents/Dockerfile"
        elif prog == "python" and words[1:3] == ["-m", "livekit.plugins.openai.testing"]:
            await _run_fake(words[3:], env)
        elif prog == "python" and {"start", "dev", "connect"} & set(words):
            script = words[1]
            if script == "my_agent.py":  # the README's example, as a user copies it
                path = tmp / "my_agent.py"
                path.write_text(readme_agent())
                cwd = tmp
            else:
                assert (ROOT / script).exists(), f"{cmd.source}: {script} does not exist"
                cwd = ROOT
            argv = [sys.executable, *words[1:]]
            ready = "joined room" if "connect" in words else "registered worker"
            log = tmp / f"{Path(script).stem}-{words[2]}-{len(list(tmp.glob('*.log')))}.log"
            await _run_worker(argv, env, cwd, server, log, ready)
        elif prog == "python" and words[1] == "scripts/mutants.py":  # long: check its targets exist
            assert set(words[2:]) <= set(_mutant_targets()), f"{cmd.source}: {cmd.line}: unknown target"
        elif prog == "agents":
            out = subprocess.run([str(BIN / "agents"), *words[1:]], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
            assert out.returncode == 0, f"{cmd.source}: {cmd.line}\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}"
        else:
            pytest.fail(f"{cmd.source}: {cmd.line!r} is a kind of command test_docs.py does not check yet")


async def test_every_plain_command_works(livekit_server, tmp_path) -> None:
    session_env: dict[str, str] = {}
    checked = []
    for cmd in ALL:
        if cmd.transcript:
            continue
        await _check(cmd, livekit_server, tmp_path, session_env)
        checked.append(cmd.line)
    assert any("my_agent.py start" in c for c in checked)


def _norm(line: str) -> str:
    return re.sub(r"\d+(\.\d+)?", "N", " ".join(line.split()))


def test_transcripts_show_what_the_commands_print(docs_env) -> None:
    transcripts = [c for c in ALL if c.transcript]
    assert transcripts, "the plugin docs lost their example sessions"
    for cmd in transcripts:
        words = shlex.split(cmd.line)
        assert words[0] == "agents", f"{cmd.source}: transcript of {cmd.line!r} is not checked"
        out = docs_env.agents(*words[1:])
        printed = {_norm(text_line) for text_line in (out.stdout + out.stderr).splitlines()}
        shows_error = any(text_line.startswith("Error") for text_line in cmd.expected)
        assert (out.returncode != 0) == shows_error, f"{cmd.line}: exit {out.returncode}\n{out.stdout}\n{out.stderr}"
        for expected in cmd.expected:
            if expected.strip() == "..." or set(expected) <= {"-", " "}:
                continue  # an elision, or a table's ruler (its width follows what is installed)
            assert _norm(expected) in printed, (
                f"{cmd.source}: `{cmd.line}` no longer prints\n  {expected}\nit printed:\n{out.stdout}{out.stderr}"
            )
