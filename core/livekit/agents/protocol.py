"""The worker's websocket to ``<url>/agent``: opening it, and what each failure means.

Failures are sorted into two kinds: those worth retrying (the server is not reachable
yet, went away, or answered 5xx) and those that never get better by retrying (bad
credentials, a URL that is not a LiveKit server, ``wss://`` against a plain-text server or
``ws://`` against a TLS one). The second kind ends the worker at once
with a message that says what to fix, instead of a retry storm.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import aiohttp

from .exceptions import AuthenticationError, WorkerError

REGISTER_TIMEOUT = 10.0
"""Seconds to wait for the server's answer to ``register`` (the server waits as long)."""


class RetryableConnectionError(WorkerError):
    """The server could not be reached or dropped the connection; trying again may help."""


def agent_url(url: str) -> str:
    """``ws(s)://host[:port][/prefix]/agent`` from a LiveKit URL (http(s) or ws(s))."""
    parts = urlsplit(url.strip())
    scheme = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}.get(parts.scheme.lower())
    if scheme is None or not parts.netloc:
        raise WorkerError(
            f"invalid LiveKit URL {url!r}: expected ws://host:port, wss://host, http:// or https:// "
            "(set --url or LIVEKIT_URL)"
        )
    path = parts.path.rstrip("/") + "/agent"
    return urlunsplit((scheme, parts.netloc, path, "", ""))


def room_url(url: str) -> str:
    """The URL rooms are joined with when the server's assignment carries none."""
    parts = urlsplit(url.strip())
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme.lower(), parts.scheme)
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/"), "", ""))


def worker_token(api_key: str, api_secret: str) -> str:
    """A JWT with the agent grant, which the server requires on ``/agent``."""
    from livekit import api

    return api.AccessToken(api_key, api_secret).with_grants(api.VideoGrants(agent=True)).to_jwt()


async def open_socket(
    session: aiohttp.ClientSession, url: str, api_key: str, api_secret: str, *, timeout: float = 10.0
) -> aiohttp.ClientWebSocketResponse:
    """Open the agent websocket, or raise AuthenticationError / WorkerError (fatal) or
    RetryableConnectionError. Messages never contain the token or the secret."""
    target = agent_url(url)
    headers = {"Authorization": f"Bearer {worker_token(api_key, api_secret)}"}
    try:
        return await session.ws_connect(
            target,
            headers=headers,
            heartbeat=15.0,
            timeout=aiohttp.ClientWSTimeout(ws_close=5.0),
            max_msg_size=0,
        )
    except aiohttp.WSServerHandshakeError as exc:
        status = exc.status
        if status in (401, 403):
            raise AuthenticationError(
                f"the LiveKit server at {url} refused the API key {api_key!r} or its secret (HTTP {status}). "
                "Check --api-key/--api-secret (LIVEKIT_API_KEY/LIVEKIT_API_SECRET) against the server's keys."
            ) from None
        if status == 400 and await _plain_text_to_tls(url):
            raise WorkerError(_TLS_ONLY.format(url=url, wss=_with_scheme(url, "wss"))) from None
        if status in (404, 405, 400, 426) or (400 <= status < 500 and status != 429):
            raise WorkerError(
                f"{target} is not a LiveKit agent endpoint (HTTP {status}). "
                "Check --url (LIVEKIT_URL): it should be the LiveKit server's ws:// or wss:// URL."
            ) from None
        raise RetryableConnectionError(f"the LiveKit server at {url} answered HTTP {status}") from None
    except aiohttp.ClientConnectorDNSError:
        raise WorkerError(
            f"cannot resolve the host of {url}. Check --url (LIVEKIT_URL)."
        ) from None
    except aiohttp.ClientConnectorSSLError as exc:
        if "WRONG_VERSION_NUMBER" in str(exc) or "wrong version number" in str(exc) or "record layer" in str(exc):
            raise WorkerError(
                f"the server at {url} does not speak TLS (wss://): it answered in plain text. "
                f"Use {_with_scheme(url, 'ws')} for a server without TLS, or enable TLS on the server."
            ) from None
        raise RetryableConnectionError(f"TLS handshake with {url} failed: {exc}") from None
    except aiohttp.ClientConnectorCertificateError as exc:
        raise WorkerError(f"TLS certificate of {url} was refused: {exc.certificate_error}") from None
    except aiohttp.InvalidURL:
        raise WorkerError(f"invalid LiveKit URL {url!r} (set --url or LIVEKIT_URL)") from None
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        if isinstance(exc, aiohttp.ServerDisconnectedError) and await _plain_text_to_tls(url):
            raise WorkerError(_TLS_ONLY.format(url=url, wss=_with_scheme(url, "wss"))) from None
        reason = getattr(exc, "os_error", None) or exc
        raise RetryableConnectionError(f"cannot reach the LiveKit server at {url}: {_describe(reason)}") from None


_TLS_ONLY = ("the server at {url} speaks TLS: it closed a plain-text (ws://) connection but accepts a TLS "
             "handshake. Use {wss} (or https://).")


def _with_scheme(url: str, scheme: str) -> str:
    parts = urlsplit(url.strip())
    return urlunsplit((scheme, parts.netloc, parts.path, "", ""))


async def _plain_text_to_tls(url: str, timeout: float = 3.0) -> bool:
    """Whether ``url`` is plain-text (ws/http) but its server completes a TLS handshake:
    a plain-text client talking to a TLS port (the server drops it or answers 400)."""
    import asyncio
    import ssl

    parts = urlsplit(url.strip())
    if parts.scheme.lower() not in ("ws", "http") or not parts.hostname:
        return False
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # a probe only: nothing is sent over this connection
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(parts.hostname, parts.port or 80, ssl=ctx), timeout)
    except (OSError, ssl.SSLError, asyncio.TimeoutError):
        return False
    writer.close()
    try:
        await writer.wait_closed()
    except (OSError, ssl.SSLError):
        pass
    return True


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    if isinstance(exc, ConnectionRefusedError) or "Connect call failed" in text:
        return "connection refused"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
