"""Fixtures shared by the test suite.

* Real LiveKit clients, agent scripts run as subprocesses, and waits with deadlines (the
  worker, example and docs tests). Everything runs against the real LiveKit server of the
  ``livekit_server`` fixture; waits poll with a deadline, never a fixed sleep.
* Temporary Python environments for plugin install / list / check / uninstall tests: a
  venv whose ``.pth`` file adds the test interpreter's site-packages, so it sees
  livekit-agents and its dependencies while what a test installs lands in the venv itself.
  Fixture plugin wheels are built once per session.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
import signal
import subprocess
import sys
import sysconfig
import time
import uuid
import venv
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
AGENTS_DIR = ROOT / "tests" / "worker" / "agents"


async def wait_until(predicate: Callable[[], Any], timeout: float = 15.0, what: str = "condition",
                     interval: float = 0.05) -> Any:
    """Poll ``predicate`` (sync or async) until truthy; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        await asyncio.sleep(interval)


def unique_room(prefix: str = "room") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@dataclass
class Client:
    """A real ``livekit.rtc`` participant in a room."""

    room: Any
    identity: str
    data: list[tuple[str, bytes]] = field(default_factory=list)
    joined: list[str] = field(default_factory=list)
    left: list[str] = field(default_factory=list)
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)

    async def publish_audio(self, sample: Any, *, loop: bool = True) -> None:
        from livekit import rtc

        source = rtc.AudioSource(sample.sample_rate, 1)
        track = rtc.LocalAudioTrack.create_audio_track("mic", source)
        await self.room.local_participant.publish_track(
            track, rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE))
        frames = list(sample.frames(10))

        async def pump() -> None:
            while True:
                for frame in frames:
                    await source.capture_frame(frame)
                if not loop:
                    return

        self.tasks.append(asyncio.create_task(pump()))

    async def publish_video(self, width: int = 64, height: int = 48) -> None:
        from livekit import rtc

        source = rtc.VideoSource(width, height)
        track = rtc.LocalVideoTrack.create_video_track("cam", source)
        await self.room.local_participant.publish_track(
            track, rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_CAMERA))
        buf = bytearray(width * height * 4)

        async def pump() -> None:
            n = 0
            while True:
                buf[0] = n % 256
                source.capture_frame(rtc.VideoFrame(width, height, rtc.VideoBufferType.RGBA, bytes(buf)))
                n += 1
                await asyncio.sleep(1 / 15)

        self.tasks.append(asyncio.create_task(pump()))

    async def leave(self) -> None:
        """Stop publishing and disconnect. A publishing task that had failed (rather than
        been cancelled here) raises its error: the audio a test relied on never went out."""
        failed = [t.exception() for t in self.tasks if t.done() and not t.cancelled() and t.exception()]
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.tasks.clear()
        if self.room.isconnected():
            await self.room.disconnect()
        if failed:
            raise AssertionError(f"{self.identity}'s publishing task failed: {failed[0]!r}") from failed[0]


async def leave_all(clients: list[Client]) -> None:
    """Every client leaves (all of them, even if one fails); then the first failure is raised."""
    results = await asyncio.gather(*(c.leave() for c in clients), return_exceptions=True)
    errors = [r for r in results if isinstance(r, BaseException)]
    if errors:
        raise errors[0]


async def delete_rooms(rooms: Any) -> None:
    """Delete the ``(server, room name)`` rooms a test made, so that no later test's worker
    finds them without an agent and recovers them (orphan recovery is on by default). A
    node a test killed cannot be asked; that is fine: its rooms went with it."""
    from livekit.api import DeleteRoomRequest

    for server, name in rooms:
        api = server.api()
        try:
            await api.room.delete_room(DeleteRoomRequest(room=name))
        except Exception:  # gone already, or its node is down: nothing left to clean
            pass
        finally:
            await api.aclose()


JOIN_ATTEMPTS = 3
"""Times a test participant tries to join before its test fails."""


class ClientFactory:
    """Joins real ``livekit.rtc`` participants to rooms and makes them all leave at the end.

    ``join(room, identity)`` joins through the default server; ``join_via(server, room,
    identity)`` through any server or cluster node (anything with ``url`` and
    ``token(identity, room)``)."""

    def __init__(self, server: Any = None) -> None:
        self.server = server
        self.made: list[Client] = []
        self.rooms: set[tuple[Any, str]] = set()

    async def join(self, room_name: str, identity: str | None = None) -> Client:
        if self.server is None:
            raise TypeError("this factory has no default server: use join_via(server, room, identity)")
        return await self.join_via(self.server, room_name, identity)

    async def join_via(self, server: Any, room_name: str, identity: str | None = None) -> Client:
        from livekit import rtc

        identity = identity or f"user-{uuid.uuid4().hex[:6]}"
        for attempt in range(1, JOIN_ATTEMPTS + 1):
            room = rtc.Room()
            client = Client(room=room, identity=identity)
            room.on("data_received", lambda pkt, c=client: c.data.append(
                (pkt.participant.identity if pkt.participant else "", pkt.data)))
            room.on("participant_connected", lambda p, c=client: c.joined.append(p.identity))
            room.on("participant_disconnected", lambda p, c=client: c.left.append(p.identity))
            try:
                await room.connect(server.url, server.token(identity, room_name))
                break
            except rtc.ConnectError:
                # a peer connection that timed out on a busy machine (what the job's own join
                # retries too); the tests are about the agents, not about this client's join
                if attempt == JOIN_ATTEMPTS:
                    raise
                await asyncio.sleep(0.5 * attempt)
        self.made.append(client)
        self.rooms.add((server, room_name))
        return client

    async def aclose(self) -> None:
        await leave_all(self.made)
        await delete_rooms(self.rooms)


@pytest.fixture
async def clients(livekit_server: Any):
    """``await clients.join(room, identity)`` -> :class:`Client`; all leave at the end."""
    factory = ClientFactory(livekit_server)
    yield factory
    await factory.aclose()


class ServerHelpers:
    """Server-side views of rooms (through the server API): participants, create/delete.

    The server answers an empty list for a room that does not exist (or no longer does);
    any error (API, credentials, server down) is raised, never read as "nobody there"."""

    def __init__(self, server: Any, api: Any) -> None:
        self.server = server
        self._api = api
        self.created: set[tuple[Any, str]] = set()

    async def identities(self, room: str) -> list[str]:
        from livekit.api import ListParticipantsRequest

        res = await self._api.room.list_participants(ListParticipantsRequest(room=room))
        return [p.identity for p in res.participants]

    async def agents_in(self, room: str) -> list[str]:
        from livekit.api import ListParticipantsRequest
        from livekit.protocol import models

        res = await self._api.room.list_participants(ListParticipantsRequest(room=room))
        return [p.identity for p in res.participants if p.kind == models.ParticipantInfo.AGENT]

    async def create_room(self, name: str, empty_timeout: int = 20) -> Any:
        from livekit.api import CreateRoomRequest

        self.created.add((self.server, name))
        return await self._api.room.create_room(CreateRoomRequest(name=name, empty_timeout=empty_timeout,
                                                                  departure_timeout=1))

    async def delete_room(self, name: str) -> None:
        from livekit.api import DeleteRoomRequest, TwirpError

        try:
            await self._api.room.delete_room(DeleteRoomRequest(room=name))
        except TwirpError as exc:
            if exc.code != "not_found":  # already gone is fine; any other failure is not
                raise


@pytest.fixture
async def lk(livekit_server: Any):
    """Server helpers: participants of a room, create/delete rooms (async)."""
    api = livekit_server.api()
    helpers = ServerHelpers(livekit_server, api)
    yield helpers
    await api.aclose()
    await delete_rooms(helpers.created)


def worker_kwargs(server: Any, **extra: Any) -> dict[str, Any]:
    """Options of an in-process test worker: this server, any free health port, and a
    load threshold that other processes on a busy CI machine cannot trip."""
    opts: dict[str, Any] = dict(url=server.url, api_key=server.api_key, api_secret=server.api_secret,
                                http_port=0, load_threshold=math.inf)
    opts.update(extra)
    return opts


@pytest.fixture
def worker_opts(livekit_server: Any) -> Callable[..., dict[str, Any]]:
    return lambda **extra: worker_kwargs(livekit_server, **extra)


class AgentProcess:
    """An agent script run as ``python <script> start ...`` with its stderr in a file."""

    def __init__(self, script: Path, args: list[str], env: dict[str, str], log_path: Path,
                 command: str = "start") -> None:
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, str(script), command, *args], env=env, cwd=str(ROOT),
            stdout=self._log, stderr=subprocess.STDOUT,
        )

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def count(self, pattern: str) -> int:
        return len(re.findall(pattern, self.output()))

    async def wait_output(self, pattern: str, timeout: float = 20.0, count: int = 1) -> None:
        await wait_until(lambda: self.count(pattern) >= count or self.proc.poll() is not None,
                         timeout, f"{pattern!r} in the agent's output")
        if self.count(pattern) < count:
            raise AssertionError(f"agent exited ({self.proc.returncode}) before logging {pattern!r}:\n"
                                 + self.output()[-3000:])

    async def wait_exit(self, timeout: float = 30.0) -> int:
        await wait_until(lambda: self.proc.poll() is not None, timeout, "the agent process to exit")
        return self.proc.returncode

    def signal(self, sig: int = signal.SIGTERM) -> None:
        self.proc.send_signal(sig)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._log.close()


@pytest.fixture
def agent_process(tmp_path: Path):
    """``agent_process(script, server, *args, env=..., command="start")`` starts an agent
    script's worker (``command``: ``start``, ``dev`` or ``connect``)."""
    started: list[AgentProcess] = []

    def start(script: str | Path, server: Any | None = None, *args: str, env: dict[str, str] | None = None,
              defaults: bool = True, command: str = "start") -> AgentProcess:
        full_env = dict(os.environ)
        for var in ("LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET"):
            full_env.pop(var, None)
        if server is not None:
            full_env.update(server.env())
        full_env.update(env or {})
        full_env["PYTHONUNBUFFERED"] = "1"
        extra = ["--http-port=0", "--log-format=json", "--load-threshold=inf"] if defaults else []
        path = Path(script)
        if not path.is_absolute():
            path = ROOT / path
        proc = AgentProcess(path, [*extra, *args], full_env, tmp_path / f"agent-{len(started)}.log", command)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()


async def cleanup(*clients: Client) -> None:
    await leave_all(list(clients))


@pytest.fixture
def helpers() -> Any:
    class H:
        wait_until = staticmethod(wait_until)
        unique_room = staticmethod(unique_room)
        cleanup = staticmethod(cleanup)
        worker_kwargs = staticmethod(worker_kwargs)
        Client = Client
        ClientFactory = ClientFactory

    return H




REPO_ROOT = ROOT
FIXTURE_PLUGINS = REPO_ROOT / "tests" / "fixtures" / "plugins"
ACME = REPO_ROOT / "examples" / "plugin-acme"
AGENTS_SCRIPT = Path(sys.executable).parent / "agents"

BROKEN = ("badimport", "badsignature", "unknownhook", "raisesinregister", "incompatible")
WRONG = ("wrongstt", "wrongtts", "wrongvad", "wrongllm", "wrongsentence", "wrongword")
SILENT = ("asynchook", "apistring", "clash", "ttsnofinal", "needskey")
"""Breakages a third-party author hit that once passed silently (issue #14, item 3)."""


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
    assert set(wheels) == {*BROKEN, *WRONG, *SILENT, "acme"}, sorted(wheels)
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
