"""A real LiveKit server (``livekit-server --dev``) on loopback, for tests and the demo.

The binary comes from ``$LIVEKIT_SERVER_BIN``, ``livekit-server`` or ``server`` on the cache
path, or is built once with ``go install github.com/livekit/livekit-server/cmd/server@v1.13.5``
into ``~/.cache/livekit-agents/bin`` (a few minutes the first time).
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

logger = logging.getLogger("livekit.agents.testing")

SERVER_VERSION = "v1.13.5"
SERVER_MODULE = f"github.com/livekit/livekit-server/cmd/server@{SERVER_VERSION}"
CACHE_BIN = Path(os.environ.get("LIVEKIT_AGENTS_CACHE", Path.home() / ".cache" / "livekit-agents")) / "bin"

SERVER_NICE = -10
"""The server's nice value where this process may raise priority (root, as in CI): the server
stands in for a machine of its own, so a busy test machine starves the agents under test,
not the server they talk to (starved, its internal requests time out and it drops
connections)."""

STOP_GRACE = 1.0
"""Seconds :meth:`LiveKitServer.stop` lets the server drain before it asks again."""

API_KEY = "devkey"
API_SECRET = "secret-for-local-tests-only-0123456789"


class ServerUnavailable(RuntimeError):
    """The LiveKit server binary is missing and cannot be built here."""


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port free on every interface (the server binds some ports beyond loopback)."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("", 0))
        return int(s.getsockname()[1])


def find_server_binary() -> Path | None:
    env = os.environ.get("LIVEKIT_SERVER_BIN")
    if env:
        return Path(env) if Path(env).exists() else None
    cached = CACHE_BIN / "server"
    if cached.exists():
        return cached
    found = shutil.which("livekit-server")
    return Path(found) if found else None


def ensure_server_binary(*, progress: bool = False) -> Path:
    """The server binary, built with Go on first use."""
    found = find_server_binary()
    if found:
        return found
    go = shutil.which("go")
    if not go:
        raise ServerUnavailable(
            "the LiveKit server binary is not installed and Go is not available to build it. "
            f"Install Go, or set LIVEKIT_SERVER_BIN to a livekit-server {SERVER_VERSION} binary."
        )
    CACHE_BIN.mkdir(parents=True, exist_ok=True)
    msg = f"building livekit-server {SERVER_VERSION} with Go into {CACHE_BIN} (first run only, a few minutes)"
    logger.info(msg)
    if progress:
        print(f"==> {msg}", file=sys.stderr, flush=True)
    env = dict(os.environ, GOBIN=str(CACHE_BIN))
    proc = subprocess.Popen(
        [go, "install", "-v", SERVER_MODULE], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert proc.stdout is not None
    tail: list[str] = []
    started, built = time.monotonic(), 0
    for line in proc.stdout:
        line = line.rstrip()
        tail = (tail + [line])[-20:]
        if line.startswith("go: downloading"):
            continue
        built += 1  # -v prints each package as it is compiled
        if progress and built % 50 == 0:
            print(f"    {built} packages compiled ({time.monotonic() - started:.0f} s) ...", file=sys.stderr, flush=True)
    if proc.wait() != 0:
        raise ServerUnavailable("go install of livekit-server failed:\n" + "\n".join(tail))
    return CACHE_BIN / "server"


class LiveKitServer:
    """One ``livekit-server`` process on free loopback ports.

    ``stop()`` and ``start()`` keep the same ports, so a restart looks like a server that
    went away and came back.
    """

    def __init__(self, binary: Path | None = None, *, api_key: str = API_KEY, api_secret: str = API_SECRET):
        self.binary = binary or ensure_server_binary()
        self.api_key = api_key
        self.api_secret = api_secret
        self._dir = Path(tempfile.mkdtemp(prefix="livekit-server-"))
        self.config_path = self._dir / "livekit.yaml"
        self.log_path = self._dir / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._new_ports()

    def _new_ports(self) -> None:
        self.port = free_port()
        self.tcp_port = free_port()
        self.udp_port = free_port(socket.SOCK_DGRAM)
        self._write_config()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def config_text(self) -> str:
        """The server's YAML config (subclasses add to it, e.g. a cluster node's Redis)."""
        stun = free_port(socket.SOCK_DGRAM)  # nothing listens: keeps ICE on loopback
        return f"""port: {self.port}
bind_addresses: [127.0.0.1]
log_level: info
rtc:
  tcp_port: {self.tcp_port}
  udp_port: {self.udp_port}
  node_ip: 127.0.0.1
  use_external_ip: false
  stun_servers: ["127.0.0.1:{stun}"]
keys:
  {self.api_key}: {self.api_secret}
room:
  empty_timeout: 20
  departure_timeout: 5
"""

    def _write_config(self) -> None:
        self.config_path.write_text(self.config_text())

    def start(self, timeout: float = 30.0) -> LiveKitServer:
        """Start the server and wait until it listens. On the first start, a port taken
        meanwhile by another process is replaced (up to three tries); a restart keeps the
        ports, so clients see the same server come back."""
        first = self.proc is None
        for attempt in range(3):
            try:
                return self._start(timeout)
            except RuntimeError as exc:
                if not (first and "address already in use" in str(exc) and attempt < 2):
                    raise
                logger.info("livekit-server: a port was taken meanwhile; trying other ports")
                self._new_ports()
        raise AssertionError("unreachable")

    def _start(self, timeout: float) -> LiveKitServer:
        if self.proc and self.proc.poll() is None:
            return self
        command = [str(self.binary), "--config", str(self.config_path), "--dev"]
        if os.geteuid() == 0 and shutil.which("nice"):
            command = ["nice", "-n", str(SERVER_NICE), *command]
        with open(self.log_path, "ab") as log:  # the server writes to its own copy
            self.proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"livekit-server exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"livekit-server did not listen on {self.port} within {timeout}s:\n{self.log_tail()}")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server: SIGTERM, and a second one after ``STOP_GRACE`` seconds (the server
        waits for its rooms on the first and closes them on the second), then SIGKILL."""
        if not self.proc or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(min(STOP_GRACE, timeout))
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def kill(self) -> None:
        """Stop the server abruptly (SIGKILL), as a crash would."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_size(self) -> int:
        """Bytes in the server's log so far (an offset for :meth:`log_tail`'s ``since``)."""
        try:
            return self.log_path.stat().st_size
        except OSError:
            return 0

    def log_tail(self, lines: int = 40, *, since: int = 0) -> str:
        """The last ``lines`` lines of the server's log, of those written after byte ``since``."""
        try:
            with open(self.log_path, "rb") as log:
                log.seek(since)
                return "\n".join(log.read().decode(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def token(self, identity: str, room: str, **grants: Any) -> str:
        """An access token to join ``room`` as ``identity`` (a test participant)."""
        from livekit import api

        return (
            api.AccessToken(self.api_key, self.api_secret)
            .with_identity(identity)
            .with_grants(api.VideoGrants(room_join=True, room=room, **grants))
            .to_jwt()
        )

    def api(self):  # type: ignore[no-untyped-def]
        """A ``livekit.api.LiveKitAPI`` for this server (close it with ``await aclose()``)."""
        from livekit import api

        return api.LiveKitAPI(self.http_url, self.api_key, self.api_secret)

    def env(self) -> dict[str, str]:
        """``LIVEKIT_URL`` / ``LIVEKIT_API_KEY`` / ``LIVEKIT_API_SECRET`` for a worker process."""
        return {"LIVEKIT_URL": self.url, "LIVEKIT_API_KEY": self.api_key, "LIVEKIT_API_SECRET": self.api_secret}

    def __enter__(self) -> LiveKitServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)
