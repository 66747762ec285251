"""Serving a provider fake on loopback (the fakes of the plugins' ``testing`` modules)."""

from __future__ import annotations

import asyncio
import email.utils
import time
from typing import Any, TypeVar

from aiohttp import web

_S = TypeVar("_S", bound="LoopbackService")


def http_date(seconds_from_now: float) -> str:
    """An HTTP-date (RFC 9110 §5.6.7, ``Sun, 06 Nov 1994 08:49:37 GMT``) this many seconds
    from now, for a fake's ``Retry-After`` (the form has whole seconds only)."""
    return email.utils.formatdate(time.time() + seconds_from_now, usegmt=True)


def retry_after_header(value: float | str) -> str:
    """A ``Retry-After`` header value: a number is sent as delay-seconds, a string (for
    example :func:`http_date`) as it is."""
    return value if isinstance(value, str) else f"{value:g}"


async def serve_app(app: web.Application, host: str = "127.0.0.1", **runner_options: Any) -> tuple[web.AppRunner, int]:
    """Start ``app`` on a free port of ``host``; returns the runner (``await
    runner.cleanup()`` stops it) and the port."""
    runner = web.AppRunner(app, handle_signals=False, access_log=None, **runner_options)
    await runner.setup()
    site = web.TCPSite(runner, host, 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, int(port)


class LoopbackService:
    """Base of a provider fake served by aiohttp on a free loopback port.

    A subclass adds its endpoints in :meth:`routes`. ``start()`` and ``aclose()`` (or
    ``async with``) serve and stop it; ``port`` is its port once started, and ``closing``
    is set when it stops, so that handlers that wait (timed chunks, stalls) end early."""

    max_body = 1024**2
    """Largest request body accepted, in bytes (aiohttp's ``client_max_size``)."""
    shutdown_timeout = 60.0
    """Seconds ``aclose()`` waits for open connections."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = 0
        self.closing = asyncio.Event()
        self._runner: web.AppRunner | None = None

    def routes(self, app: web.Application) -> None:
        """Add the service's endpoints to ``app``."""
        raise NotImplementedError

    async def start(self: _S) -> _S:
        app = web.Application(client_max_size=self.max_body)
        self.routes(app)
        self._runner, self.port = await serve_app(app, self.host, shutdown_timeout=self.shutdown_timeout)
        return self

    async def aclose(self) -> None:
        self.closing.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self: _S) -> _S:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
