"""The worker's HTTP endpoint for orchestrators and monitoring (aiohttp).

Served on ``--http-host``:``--http-port`` (default ``0.0.0.0:8081``; port ``0`` picks a
free one, reported in the log and as ``Worker.health_port``):

* ``GET /healthz`` (and ``GET /``): **liveness**. ``200 OK`` while the worker runs,
  including while it reconnects or fails over to another server; ``503`` once it gave up
  reaching every LiveKit server (it is about to exit).
* ``GET /readyz``: **readiness**. ``200`` while the worker is registered with a server
  and takes jobs; ``503`` with the reason while it is not registered (starting,
  reconnecting) or draining.
* ``GET /metrics``: Prometheus text format (:mod:`livekit.agents.metrics`).
* ``GET /worker``: the worker's state as JSON (id, status, load, jobs with their room
  names and participant identities). These details are served only to loopback clients
  (``127.0.0.0/8``, ``::1``) unless the worker is started with ``--http-public-details``
  (``http_public_details=True``); others get ``403``. The JSON is always valid JSON: a
  ``load_threshold`` of ``inf`` (never report full) is ``null``.

The probes, readiness and metrics carry no room names or identities and stay public.
"""

from __future__ import annotations

import ipaddress
import json
import math
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .exceptions import WorkerError

if TYPE_CHECKING:
    from .worker import Worker


class HealthPortInUse(WorkerError):
    """The health endpoint's port is taken (another worker on this host?)."""


def json_safe(value: Any) -> Any:
    """``value`` with every non-finite float (inf, nan) replaced by ``None``."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def is_loopback(remote: str | None) -> bool:
    if not remote:
        return False
    try:
        return ipaddress.ip_address(remote.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


class HealthServer:
    """The endpoint of one worker; ``await start()`` returns the port it listens on."""

    def __init__(self, worker: Worker, host: str, port: int, *, public_details: bool = False) -> None:
        self._worker = worker
        self._host = host
        self._port = port
        self._public_details = public_details
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    async def start(self) -> int:
        app = web.Application()
        app.router.add_get("/", self._live)
        app.router.add_get("/healthz", self._live)
        app.router.add_get("/readyz", self._ready)
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/worker", self._info)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        try:
            await site.start()
        except OSError as exc:
            await self.aclose()
            taken = exc.errno in (98, 48, 10048)  # EADDRINUSE on Linux, macOS, Windows
            what = "is already in use (another worker on this host?)" if taken else f"cannot be used: {exc.strerror or exc}"
            raise HealthPortInUse(
                f"the health endpoint's port {self._port} on {self._host} {what}. Give each worker its own "
                "port with --http-port (or LIVEKIT_AGENTS_HTTP_PORT; 0 picks any free port and logs it), "
                "or turn the endpoint off with http_port=None."
            ) from None
        server = getattr(site, "_server", None)
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else self._port
        return self.port

    async def aclose(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _live(self, request: web.Request) -> web.Response:
        if self._worker.connection_failed:
            return web.Response(status=503, text="cannot reach the LiveKit server")
        return web.Response(text="OK")

    async def _ready(self, request: web.Request) -> web.Response:
        w = self._worker
        if w.connection_failed:
            why = "cannot reach the LiveKit server"
        elif w.draining:
            why = "draining"
        elif not w.registered:
            why = "not registered with a LiveKit server"
        else:
            return web.Response(text="ready")
        return web.Response(status=503, text=f"not ready: {why}")

    async def _metrics(self, request: web.Request) -> web.Response:
        body, content_type = self._worker.metrics.render()
        return web.Response(body=body, headers={"Content-Type": content_type})

    async def _info(self, request: web.Request) -> web.Response:
        if not self._public_details and not is_loopback(request.remote):
            return web.Response(status=403, text="worker details are served to loopback clients only; start "
                                                 "the worker with --http-public-details to serve them to all")
        body = json.dumps(json_safe(self._worker.info()), allow_nan=False)
        return web.Response(text=body, content_type="application/json")


__all__ = ["HealthPortInUse", "HealthServer", "is_loopback", "json_safe"]
