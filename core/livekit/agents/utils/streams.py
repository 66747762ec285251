"""The push-in, iterate-out stream that every capability stream is built on.

A subclass implements :meth:`AsyncStream._run`, which reads the pushed input through
:meth:`AsyncStream._input` and emits results with :meth:`AsyncStream._emit`. Consumers push
input, call ``end_input()`` when they are done, and iterate the output::

    async with vad.stream() as stream:
        for frame in frames:
            stream.push_frame(frame)
        stream.end_input()
        async for event in stream:
            ...

An exception raised by ``_run`` is raised to the consumer on its next iteration, after
everything emitted before it: one failing stream never affects the others.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import AsyncIterator
from typing import Generic, TypeVar

from ..exceptions import StreamClosedError

In = TypeVar("In")
Out = TypeVar("Out")


class Flush:
    """Marker yielded by :meth:`AsyncStream._input` where the user called ``flush()``."""

    def __repr__(self) -> str:
        return "FLUSH"


FLUSH = Flush()
_END = object()


class _Channel:
    """An unbounded FIFO with one consumer at a time: cheaper than ``asyncio.Queue`` on
    the per-frame path, which matters when a process runs many streams."""

    __slots__ = ("_items", "_waiter", "_loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._items: deque[object] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._loop = loop

    def put_nowait(self, item: object) -> None:
        self._items.append(item)
        self._wake()

    def put_many(self, items: list[object]) -> None:
        self._items.extend(items)
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    async def get(self) -> object:
        while not self._items:
            self._waiter = self._loop.create_future()
            await self._waiter
        return self._items.popleft()

    def empty(self) -> bool:
        return not self._items


class AsyncStream(ABC, Generic[In, Out]):
    """Base of STT, TTS, VAD and tokenizer streams."""

    def __init__(self) -> None:
        loop = asyncio.get_running_loop()
        self._input_q = _Channel(loop)
        self._output_q = _Channel(loop)
        self._input_ended = False
        self._closed = False
        self._task = loop.create_task(self._main())

    # --- for subclasses ----------------------------------------------------------------

    @abstractmethod
    async def _run(self) -> None:
        """Read :meth:`_input`, emit results with :meth:`_emit`; return when done."""

    async def _input(self) -> AsyncIterator[In | Flush]:
        """The pushed items (and :data:`FLUSH` markers) until ``end_input()``."""
        while True:
            item = await self._input_q.get()
            if item is _END:
                return
            yield item  # type: ignore[misc]

    def _emit(self, item: Out) -> None:
        self._output_q.put_nowait(item)

    def _emit_many(self, items: list[Out]) -> None:
        """Emit ``items`` in order (one consumer wake-up for all of them)."""
        if items:
            self._output_q.put_many(items)  # type: ignore[arg-type]

    # --- for users ---------------------------------------------------------------------

    def _push(self, item: In | Flush) -> None:
        if self._closed:
            raise StreamClosedError(f"{type(self).__name__} is closed; create a new stream")
        if self._input_ended:
            raise StreamClosedError(
                f"{type(self).__name__}: input was ended with end_input(); nothing more can be pushed"
            )
        self._input_q.put_nowait(item)

    def flush(self) -> None:
        """Mark the end of a segment: pending input is processed without waiting for more."""
        self._push(FLUSH)

    def end_input(self) -> None:
        """No more input will be pushed; the stream ends once all of it is processed."""
        if not self._input_ended and not self._closed:
            self._input_ended = True
            self._input_q.put_nowait(_END)

    async def _main(self) -> None:
        try:
            await self._run()
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # handed to the consumer
            self._output_q.put_nowait(_Failure(exc))
        finally:
            self._output_q.put_nowait(_END)

    def __aiter__(self) -> AsyncStream[In, Out]:
        return self

    async def __anext__(self) -> Out:
        output = self._output_q
        if output._items:  # the common case while results flow: no inner await
            item = output._items.popleft()
        elif self._closed:
            raise StopAsyncIteration
        else:
            item = await output.get()
        if item is _END:
            self._output_q.put_nowait(_END)  # stays ended
            raise StopAsyncIteration
        if isinstance(item, _Failure):
            raise item.exc
        return item  # type: ignore[return-value]

    async def aclose(self) -> None:
        """Stop the stream now; pending input is dropped."""
        if self._closed:
            return
        self._closed = True
        self._task.cancel()
        try:
            await self._task
        except (asyncio.CancelledError, Exception):
            pass
        self._output_q.put_nowait(_END)

    async def __aenter__(self) -> AsyncStream[In, Out]:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc
