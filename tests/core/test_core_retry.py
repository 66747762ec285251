import pytest

from livekit.agents.exceptions import APIAuthenticationError, APIConnectionError, APIStatusError
from livekit.agents.utils import retry


async def test_retry_after_is_honoured_then_success(monkeypatch):
    waits = []

    async def fake_sleep(s):
        waits.append(s)

    monkeypatch.setattr(retry.asyncio, "sleep", fake_sleep)
    calls = []

    async def call():
        calls.append(1)
        if len(calls) < 3:
            raise APIStatusError("rate limited", status_code=429, retry_after=2.5)
        return "ok"

    assert await retry.with_retries(call, options=retry.RetryOptions(max_attempts=3)) == "ok"
    assert waits == [2.5, 2.5]


async def test_gives_up_after_max_attempts_saying_so(monkeypatch):
    monkeypatch.setattr(retry.asyncio, "sleep", lambda s: _noop())

    async def call():
        raise APIStatusError("server error", status_code=503)

    with pytest.raises(APIStatusError, match="gave up after 4 attempts"):
        await retry.with_retries(call, options=retry.RetryOptions(max_attempts=4))


async def test_authentication_errors_are_not_retried():
    calls = []

    async def call():
        calls.append(1)
        raise APIAuthenticationError("bad key")

    with pytest.raises(APIAuthenticationError):
        await retry.with_retries(call)
    assert calls == [1]


def test_backoff_grows_and_is_capped():
    opts = retry.RetryOptions(base_delay=1.0, max_delay=4.0)
    assert 0.5 <= opts.delay(1, APIConnectionError("x")) <= 1.0
    assert 1.0 <= opts.delay(2) <= 2.0
    assert opts.delay(10) <= 4.0
    assert opts.delay(1, APIStatusError("x", status_code=429, retry_after=99)) == 4.0


async def _noop():
    return None
