"""Messages between the worker and its job processes: length-prefixed pickles over a socket.

A message is a ``(kind, data)`` tuple of plain values (str, int, float, bytes, dicts and
lists of them; protobuf messages travel as their serialized bytes). Each is framed as a
4-byte big-endian length and the pickle. Both ends are trusted (the worker and the
processes it forked), which is what makes pickle acceptable here.

* :class:`AsyncChannel`: the worker's end, on asyncio streams.
* :class:`ChildChannel`: a job process's end; :meth:`ChildChannel.send` may be called
  from any thread (the watchdog and the log forwarder send from their own threads).
"""

from __future__ import annotations

import asyncio
import pickle
import select
import socket
import struct
import threading
from typing import Any

Message = tuple[str, dict[str, Any]]

HEADER = struct.Struct("!I")
MAX_MESSAGE = 64 * 1024 * 1024


class ChannelClosed(ConnectionError):
    """The other end of a channel went away."""


def encode(kind: str, data: dict[str, Any] | None = None) -> bytes:
    body = pickle.dumps((kind, data or {}), protocol=pickle.HIGHEST_PROTOCOL)
    if len(body) > MAX_MESSAGE:
        raise ValueError(f"IPC message {kind!r} is {len(body)} bytes, more than {MAX_MESSAGE}")
    return HEADER.pack(len(body)) + body


def decode(body: bytes) -> Message:
    kind, data = pickle.loads(body)
    return kind, data


class AsyncChannel:
    """The worker's end of a job process's socket (asyncio)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    @classmethod
    async def open(cls, sock: socket.socket) -> AsyncChannel:
        reader, writer = await asyncio.open_unix_connection(sock=sock)
        return cls(reader, writer)

    async def recv(self) -> Message | None:
        """The next message, or ``None`` once the other end closed (or died)."""
        try:
            header = await self._reader.readexactly(HEADER.size)
            (size,) = HEADER.unpack(header)
            if size > MAX_MESSAGE:
                raise ChannelClosed(f"IPC message of {size} bytes announced; the peer is broken")
            return decode(await self._reader.readexactly(size))
        except (asyncio.IncompleteReadError, ConnectionError):
            return None

    def send(self, kind: str, data: dict[str, Any] | None = None) -> bool:
        """Queue a message; ``False`` when the channel is already closed."""
        if self._writer.is_closing():
            return False
        try:
            self._writer.write(encode(kind, data))
        except (ConnectionError, RuntimeError):
            return False
        return True

    async def aclose(self) -> None:
        if not self._writer.is_closing():
            self._writer.close()
        try:
            await self._writer.wait_closed()
        except (ConnectionError, OSError):
            pass


class ChildChannel:
    """A job process's end: async :meth:`recv` on its loop, thread-safe blocking :meth:`send`."""

    def __init__(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        self._sock = sock
        self._lock = threading.Lock()
        self._buf = bytearray()
        self.closed = False

    def fileno(self) -> int:
        return self._sock.fileno()

    def send(self, kind: str, data: dict[str, Any] | None = None) -> None:
        """Write one message (waits while the socket buffer is full). Raises ChannelClosed."""
        payload = memoryview(encode(kind, data))
        with self._lock:
            if self.closed:
                raise ChannelClosed("the worker's end of the channel is closed")
            while payload:
                try:
                    sent = self._sock.send(payload)
                except BlockingIOError:
                    select.select([], [self._sock], [], 1.0)
                    continue
                except OSError as exc:
                    self.closed = True
                    raise ChannelClosed(str(exc)) from None
                payload = payload[sent:]

    async def recv(self) -> Message | None:
        """The next message, or ``None`` once the worker closed its end (or died)."""
        loop = asyncio.get_running_loop()
        while True:
            if len(self._buf) >= HEADER.size:
                (size,) = HEADER.unpack_from(self._buf)
                if len(self._buf) >= HEADER.size + size:
                    body = bytes(self._buf[HEADER.size:HEADER.size + size])
                    del self._buf[:HEADER.size + size]
                    return decode(body)
            try:
                chunk = await loop.sock_recv(self._sock, 65536)
            except OSError:
                chunk = b""
            if not chunk:
                self.closed = True
                return None
            self._buf += chunk

    def close(self) -> None:
        with self._lock:
            self.closed = True
            self._sock.close()
