"""The worker's connection to the LiveKit server: socket, registration, outbox, ping.

:class:`WorkerConnection` opens ``<url>/agent``, registers, and keeps the registration:
a lost socket is re-opened with exponential backoff and jitter, a fatal problem (bad
credentials, a URL that is no LiveKit server, a TLS mismatch) ends :meth:`run` with the
error. The worker uses it through two callbacks and :meth:`send`:

* ``on_registered(reconnect)``: a registration was answered (again, after a reconnect);
* ``on_message(msg)``: every other ``ServerMessage`` (offers, assignments, terminations);
* ``on_lost()``: the socket went away; a reconnect follows.

Messages sent while disconnected wait in the outbox; on a new registration only job
status updates (``update_job``) are kept, the rest described a registration that is gone.
The connection is *ready* once the server answered the first ping after registering: the
server adds a worker to its dispatch table after answering ``register``.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from typing import Any

import aiohttp

from .exceptions import WorkerError
from .protocol import REGISTER_TIMEOUT, RetryableConnectionError, open_socket

logger = logging.getLogger("livekit.agents")


class WorkerConnection:
    """One worker's registration with a LiveKit server, kept across reconnects."""

    def __init__(
        self,
        url: str,
        api_key: str,
        api_secret: str,
        *,
        registration: Callable[[], Any],
        on_registered: Callable[[bool], None],
        on_message: Callable[[Any], None],
        on_lost: Callable[[], None],
        max_retry: int = 16,
        retry_base: float = 0.5,
        retry_max_delay: float = 10.0,
    ) -> None:
        self.url = url
        self._key = api_key
        self._secret = api_secret
        self._registration = registration
        self._on_registered = on_registered
        self._on_message = on_message
        self._on_lost = on_lost
        self._max_retry = max_retry
        self._retry_base = retry_base
        self._retry_max_delay = retry_max_delay
        self.worker_id: str | None = None
        self.server_info: Any = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._outbox: list[Any] = []
        self._outbox_event = asyncio.Event()
        self._ready = asyncio.Event()
        self._closing = False

    # --- state -------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """Registered on an open socket."""
        return self._ws is not None and not self._ws.closed

    @property
    def ready(self) -> bool:
        """Registered and dispatchable (the server answered the first ping)."""
        return self._ready.is_set()

    async def wait_ready(self) -> None:
        await self._ready.wait()

    # --- sending -----------------------------------------------------------------------

    def send(self, msg: Any) -> None:
        """Queue a ``WorkerMessage``; it is written as soon as the socket allows."""
        self._outbox.append(msg)
        self._outbox_event.set()

    async def flush(self, timeout: float = 2.0) -> None:
        """Wait (at most ``timeout``) until the outbox is written, while connected."""
        deadline = time.monotonic() + timeout
        while self._outbox and self.connected and time.monotonic() < deadline:
            await asyncio.sleep(0.02)

    # --- running -----------------------------------------------------------------------

    async def run(self) -> None:
        """Connect, register and serve until :meth:`aclose`; raises WorkerError (or
        AuthenticationError) on a fatal problem or when the retry budget is spent."""
        async with aiohttp.ClientSession() as session:
            attempt = 0
            while not self._closing:
                try:
                    ws = await open_socket(session, self.url, self._key, self._secret)
                    try:
                        await self._register(ws)
                    except BaseException:
                        await ws.close()
                        raise
                except RetryableConnectionError as exc:
                    attempt += 1
                    if attempt > self._max_retry:
                        raise WorkerError(
                            f"gave up after {attempt} attempts to reach the LiveKit server at {self.url}: {exc}. "
                            "Check that the server is running and --url (LIVEKIT_URL) points at it."
                        ) from None
                    delay = min(self._retry_max_delay, self._retry_base * 2 ** (attempt - 1))
                    delay *= random.uniform(0.5, 1.0)
                    logger.warning("%s; retrying in %.1fs (attempt %d of %d)", exc, delay, attempt, self._max_retry)
                    await asyncio.sleep(delay)
                    continue
                attempt = 0
                await self._serve(ws)
                if self._closing:
                    return
                self._ready.clear()
                self._on_lost()

    async def aclose(self) -> None:
        self._closing = True
        if self._ws is not None and not self._ws.closed:
            await self._ws.close()

    async def _register(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        from livekit.protocol import agent as agent_pb

        await ws.send_bytes(agent_pb.WorkerMessage(register=self._registration()).SerializeToString())
        try:
            msg = await asyncio.wait_for(ws.receive(), timeout=REGISTER_TIMEOUT)
        except asyncio.TimeoutError:
            raise RetryableConnectionError(
                f"the server did not answer registration within {REGISTER_TIMEOUT:g}s") from None
        if msg.type != aiohttp.WSMsgType.BINARY:
            raise RetryableConnectionError(f"the server closed the connection during registration ({msg.type.name})")
        server_msg = agent_pb.ServerMessage.FromString(msg.data)
        if server_msg.WhichOneof("message") != "register":
            raise RetryableConnectionError("the server's first message was not a registration answer")
        reconnect = self.worker_id is not None
        self.worker_id = server_msg.register.worker_id
        self.server_info = server_msg.register.server_info
        self._ws = ws
        self._outbox = [m for m in self._outbox if m.WhichOneof("message") == "update_job"]
        self._on_registered(reconnect)
        self.send(agent_pb.WorkerMessage(ping=agent_pb.WorkerPing(timestamp=int(time.time() * 1000))))

    async def _serve(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        from livekit.protocol import agent as agent_pb

        writer = asyncio.create_task(self._writer(ws))
        try:
            async for msg in ws:
                if msg.type != aiohttp.WSMsgType.BINARY:
                    if msg.type in (aiohttp.WSMsgType.ERROR, aiohttp.WSMsgType.CLOSE):
                        break
                    continue
                try:
                    server_msg = agent_pb.ServerMessage.FromString(msg.data)
                except Exception:
                    logger.warning("ignored a malformed message from the server")
                    continue
                which = server_msg.WhichOneof("message")
                if which == "pong":
                    self._ready.set()
                elif which == "go_away":
                    logger.info("server asked the worker to go away; reconnecting")
                    break
                else:
                    self._on_message(server_msg)
                if writer.done():
                    break
        except (aiohttp.ClientError, ConnectionError) as exc:
            logger.debug("agent websocket error: %s", exc)
        finally:
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)
            self._ws = None
            if not ws.closed:
                await ws.close()

    async def _writer(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        while True:
            while self._outbox:
                msg = self._outbox[0]
                await ws.send_bytes(msg.SerializeToString())
                self._outbox.pop(0)
            self._outbox_event.clear()
            await self._outbox_event.wait()


__all__ = ["WorkerConnection"]
