"""The reference Dockerfile (examples/agents/Dockerfile). No container engine runs here, so
its steps run in a temporary environment instead: the files it copies, the pip install it
runs, and the command it starts, against the real LiveKit server; then SIGTERM drains."""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import shutil
import signal
import subprocess
import sysconfig
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "examples" / "agents" / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    text = DOCKERFILE.read_text()
    joined = text.replace("\\\n", " ")
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def test_dockerfile_follows_the_deployment_rules() -> None:
    steps = instructions()
    kinds = [k for k, _ in steps]
    base = dict(steps)["FROM"]
    assert base.startswith("python:") and base.endswith("-slim"), base
    user = [a for k, a in steps if k == "USER"]
    assert user and user[-1] not in ("root", "0"), "the worker must not run as root"
    assert kinds.index("USER") > max(i for i, k in enumerate(kinds) if k == "RUN"), "USER comes after the installs"
    entry = json.loads(dict(steps)["ENTRYPOINT"])  # exec form, so SIGTERM reaches the worker
    assert entry[0] == "python"
    assert json.loads(dict(steps)["CMD"]) == ["start"]
    assert dict(steps).get("STOPSIGNAL", "SIGTERM") == "SIGTERM"
    for k, a in steps:
        if k == "RUN" and "pip install" in a:
            for arg in shlex.split(a.split("pip install", 1)[1]):
                if arg.startswith("-"):
                    continue
                assert arg.startswith("./"), f"{arg!r}: install our distributions from local paths, never by name"
    assert not any(k == "ENV" and "LIVEKIT_API_SECRET" in a for k, a in steps), "no secret baked into the image"


def _temp_python(root: Path) -> Path:
    """A venv that sees the test interpreter's packages (the dependencies) through a .pth,
    while what it installs lands in the venv itself."""
    venv.EnvBuilder(with_pip=False, symlinks=True).create(root)
    python = root / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    parent = sysconfig.get_paths()["purelib"]
    Path(site, "_parent.pth").write_text(f"import site; site.addsitedir({parent!r})\n")
    return python


async def test_dockerfile_steps_install_and_start_a_draining_worker(tmp_path, livekit_server, lk, helpers) -> None:
    app = tmp_path / "app"
    python = _temp_python(tmp_path / "venv")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LIVEKIT_", "PIP_"))}
    env["PATH"] = f"{python.parent}{os.pathsep}{env['PATH']}"
    workdir = app
    entry: list[str] = []
    cmd: list[str] = []
    for kind, args in instructions():
        if kind == "WORKDIR":
            workdir = app / args.lstrip("/").removeprefix("app").lstrip("/")
            workdir.mkdir(parents=True, exist_ok=True)
        elif kind == "COPY":
            src, dst = shlex.split(args)
            target = workdir / dst if not dst.startswith("/") else app / dst.lstrip("/")
            source = ROOT / src
            if source.is_dir():
                shutil.copytree(source, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target)
        elif kind == "RUN":
            if args.startswith(("useradd", "adduser", "groupadd")):
                continue  # creates the image's user: nothing to do outside a container
            assert args.startswith("pip install"), f"a RUN step this test does not know how to check: {args}"
            run = subprocess.run(
                [str(python), "-m", "pip", *shlex.split(args)[1:], "--disable-pip-version-check"],
                cwd=workdir, env=env, capture_output=True, text=True, timeout=600,
            )
            assert run.returncode == 0, f"{args} failed:\n{run.stdout[-2000:]}\n{run.stderr[-3000:]}"
        elif kind == "ENV":
            for pair in shlex.split(args):
                k, _, v = pair.partition("=")
                env[k] = v
        elif kind == "ENTRYPOINT":
            entry = json.loads(args)
        elif kind == "CMD":
            cmd = json.loads(args)
    # the installed core is the copy's, not the checkout's
    where = subprocess.run(
        [str(python), "-c", "import livekit.agents, livekit.plugins.silero; print(livekit.agents.__file__)"],
        cwd=tmp_path, env=env, capture_output=True, text=True,
    )
    assert where.returncode == 0, where.stderr
    assert str(ROOT / "core") not in where.stdout, where.stdout

    env.update(livekit_server.env())
    argv = [str(python) if entry[0] == "python" else entry[0], *entry[1:], *cmd]
    log = tmp_path / "worker.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        await helpers.wait_until(lambda: "registered worker" in log.read_text() or proc.poll() is not None, 30,
                                 "the worker to register")
        assert proc.poll() is None, log.read_text()[-3000:]
        room = helpers.unique_room("docker")
        await lk.create_room(room)
        await helpers.wait_until(lambda: "joined room" in log.read_text(), 30, "the agent to join the new room")
        assert "agent" in await lk.identities(room)
        await lk.delete_room(room)
        proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 30
        while proc.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert proc.returncode == 0, log.read_text()[-3000:]
        assert livekit_server.api_secret not in log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

