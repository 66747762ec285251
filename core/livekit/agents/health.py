"""A small HTTP endpoint for orchestrators (aiohttp).

``GET /`` is the liveness probe: 200 ``OK`` while the worker runs, 503 once it cannot
reach the LiveKit server any more. ``GET /worker`` returns the worker's state as JSON
(id, type, status, load, draining, jobs, executor, memory).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from .worker import Worker


class HealthServer:
    def __init__(self, worker: Worker, host: str, port: int) -> None:
        self._worker = worker
        self._host = host
        self._port = port
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    async def start(self) -> int:
        app = web.Application()
        app.router.add_get("/", self._live)
        app.router.add_get("/worker", self._info)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
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

    async def _info(self, request: web.Request) -> web.Response:
        return web.json_response(self._worker.info())
