"""A LiveKit cluster on loopback: one Redis and N ``livekit-server`` nodes, for tests.

Each node is a :class:`~livekit.agents.testing.server.LiveKitServer` on its own free
ports (``port``, ``rtc.tcp_port``, ``rtc.udp_port``) and in its own ``region``; all share
the keys and ``redis.address``. The nodes use the ``regionaware`` node selector with one
region per node, so a room created through node X (``CreateRoom`` on X's URL, or the
first participant joining through X) is hosted on X while X is up; once X is gone the
surviving nodes host new rooms. Every node and the Redis can be killed (``kill -9``) and
restarted on the same ports::

    with LiveKitCluster(nodes=2) as cluster:
        a, b = cluster.nodes
        ...
        a.kill()      # node A crashes
        a.start()     # and comes back on the same ports

Redis is Debian's ``redis-server`` binary (``$REDIS_SERVER_BIN`` overrides it), run
without persistence: a restarted Redis is empty, as a crashed cache would be.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from .server import API_KEY, API_SECRET, LiveKitServer, ensure_server_binary, free_port


class RedisUnavailable(RuntimeError):
    """``redis-server`` is not installed."""


def find_redis_binary() -> Path:
    env = os.environ.get("REDIS_SERVER_BIN")
    found = env if env and Path(env).exists() else shutil.which("redis-server")
    if not found:
        raise RedisUnavailable(
            "redis-server is not installed; a LiveKit cluster needs it. Install the Debian package "
            "(sudo apt-get install -y redis-server, or python scripts/system_deps.py as root), "
            "or set REDIS_SERVER_BIN."
        )
    return Path(found)


def _wait_listening(proc: subprocess.Popen[bytes], port: int, timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}:\n{_tail(log)}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on {port} within {timeout}s:\n{_tail(log)}")


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


class RedisServer:
    """``redis-server`` on a free loopback port, no persistence; restartable on that port."""

    def __init__(self, binary: Path | None = None) -> None:
        self.binary = binary or find_redis_binary()
        self._dir = Path(tempfile.mkdtemp(prefix="redis-"))
        self.log_path = self._dir / "redis.log"
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 15.0) -> RedisServer:
        if self.proc and self.proc.poll() is None:
            return self
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [str(self.binary), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self._dir), "--protected-mode", "no"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        log.close()
        _wait_listening(self.proc, self.port, timeout, "redis-server", self.log_path)
        return self

    def kill(self) -> None:
        """Stop Redis abruptly (SIGKILL); its data is gone (no persistence)."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def restart(self) -> None:
        self.kill()
        self.start()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)

    def command(self, *args: str, timeout: float = 5.0) -> str | None:
        """Run one Redis command (RESP over a socket) and return a bulk/simple string reply."""
        payload = f"*{len(args)}\r\n".encode() + b"".join(
            f"${len(a.encode())}\r\n".encode() + a.encode() + b"\r\n" for a in args)
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as sock:
            sock.sendall(payload)
            reader = sock.makefile("rb")
            line = reader.readline().rstrip(b"\r\n")
            kind, rest = line[:1], line[1:].decode()
            if kind == b"-":
                raise RuntimeError(f"redis: {rest}")
            if kind == b"$":
                size = int(rest)
                return None if size < 0 else reader.read(size + 2)[:-2].decode()
            return rest


class LiveKitNode(LiveKitServer):
    """One node of a :class:`LiveKitCluster` (a :class:`LiveKitServer` with Redis and a region)."""

    def __init__(self, cluster: LiveKitCluster, index: int, binary: Path) -> None:
        self.cluster = cluster
        self.index = index
        self.region = f"region-{chr(ord('a') + index)}"
        super().__init__(binary, api_key=cluster.api_key, api_secret=cluster.api_secret)

    @property
    def name(self) -> str:
        return chr(ord("A") + self.index)

    @property
    def node_id(self) -> str | None:
        """The node id the server chose at its last start (from its log)."""
        found = None
        for line in self.log_tail(100000).splitlines():
            if "starting LiveKit server" in line and '"nodeID": "' in line:
                found = line.split('"nodeID": "', 1)[1].split('"', 1)[0]
        return found

    def config_text(self) -> str:
        regions = "\n".join(
            f"    - name: region-{chr(ord('a') + i)}\n      lat: 0\n      lon: {i * 60}"
            for i in range(self.cluster.size)
        )
        return super().config_text() + f"""region: {self.region}
redis:
  address: {self.cluster.redis.address}
node_selector:
  kind: regionaware
  sort_by: random
  algorithm: lowest
  sysload_limit: 1000
  regions:
{regions}
"""

    def __repr__(self) -> str:
        state = "up" if self.proc and self.proc.poll() is None else "down"
        return f"LiveKitNode({self.name}, {self.url}, {self.region}, {state})"


class LiveKitCluster:
    """Redis plus ``nodes`` LiveKit nodes on loopback (``with`` starts and removes them)."""

    def __init__(self, nodes: int = 2, *, binary: Path | None = None, api_key: str = API_KEY,
                 api_secret: str = API_SECRET) -> None:
        if nodes < 1:
            raise ValueError("a cluster needs at least one node")
        self.size = nodes
        self.api_key = api_key
        self.api_secret = api_secret
        self.redis = RedisServer()
        server_bin = binary or ensure_server_binary()
        self.nodes = [LiveKitNode(self, i, server_bin) for i in range(nodes)]

    @property
    def urls(self) -> list[str]:
        return [n.url for n in self.nodes]

    def host_of(self, room: str) -> LiveKitNode | None:
        """The node hosting ``room`` (Redis' ``room_node_map``), or ``None``."""
        node_id = self.redis.command("HGET", "room_node_map", room)
        return next((n for n in self.nodes if node_id and n.node_id == node_id), None)

    def start(self) -> LiveKitCluster:
        self.redis.start()
        for node in self.nodes:
            node.start()
        return self

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
        self.redis.stop()

    def env(self) -> dict[str, str]:
        """``LIVEKIT_URL`` (every node, comma-separated), key and secret for a worker process."""
        return {"LIVEKIT_URL": ",".join(self.urls), "LIVEKIT_API_KEY": self.api_key,
                "LIVEKIT_API_SECRET": self.api_secret}

    def __enter__(self) -> LiveKitCluster:
        try:
            return self.start()
        except BaseException:
            self.__exit__()
            raise

    def __exit__(self, *exc: object) -> None:
        for node in self.nodes:
            node.__exit__()
        self.redis.close()


__all__ = ["LiveKitCluster", "LiveKitNode", "RedisServer", "RedisUnavailable", "find_redis_binary"]
