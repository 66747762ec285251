"""Serving a provider fake on loopback (the fakes of the plugins' ``testing`` modules)."""

from __future__ import annotations

from typing import Any

from aiohttp import web


async def serve_app(app: web.Application, host: str = "127.0.0.1", **runner_options: Any) -> tuple[web.AppRunner, int]:
    """Start ``app`` on a free port of ``host``; returns the runner (``await
    runner.cleanup()`` stops it) and the port."""
    runner = web.AppRunner(app, handle_signals=False, access_log=None, **runner_options)
    await runner.setup()
    site = web.TCPSite(runner, host, 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, int(port)
