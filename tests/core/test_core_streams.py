import asyncio

import pytest

from livekit.agents.exceptions import StreamClosedError
from livekit.agents.utils.streams import FLUSH, AsyncStream


class Doubler(AsyncStream[int, int]):
    """Emits each pushed number twice as large; fails on a negative one."""

    async def _run(self) -> None:
        async for item in self._input():
            if item is FLUSH:
                self._emit(0)
                continue
            if item < 0:
                raise ValueError("negative input")
            self._emit(item * 2)


async def test_items_come_out_in_order_and_stream_ends_after_end_input():
    s = Doubler()
    for i in range(5):
        s._push(i)
    s.flush()
    s.end_input()
    assert [x async for x in s] == [0, 2, 4, 6, 8, 0]
    # iterating an ended stream again ends at once
    assert [x async for x in s] == []


async def test_push_after_end_input_raises_a_clear_error():
    s = Doubler()
    s.end_input()
    with pytest.raises(StreamClosedError, match="end_input"):
        s._push(1)
    await s.aclose()
    with pytest.raises(StreamClosedError, match="closed"):
        s._push(1)


async def test_error_in_stream_reaches_consumer_after_earlier_output():
    s = Doubler()
    s._push(1)
    s._push(-1)
    s._push(3)
    got = []
    with pytest.raises(ValueError, match="negative input"):
        async for x in s:
            got.append(x)
    assert got == [2]


async def test_one_failing_stream_does_not_affect_another():
    bad, good = Doubler(), Doubler()
    bad._push(-1)
    good._push(21)
    good.end_input()
    with pytest.raises(ValueError):
        async for _ in bad:
            pass
    assert [x async for x in good] == [42]


async def test_aclose_stops_a_waiting_stream_and_async_with_closes():
    async with Doubler() as s:
        s._push(1)
        assert await s.__anext__() == 2
    assert s._task.done()
    assert [x async for x in s] == []


async def test_consumer_waiting_on_output_is_released_by_aclose():
    s = Doubler()
    waiter = asyncio.create_task(s.__anext__())
    await asyncio.sleep(0.01)
    await s.aclose()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(waiter, 2)
