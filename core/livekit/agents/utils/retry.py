"""Retrying provider calls: backoff with jitter, honouring the provider's Retry-After."""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from ..exceptions import APIError, APIStatusError

T = TypeVar("T")
logger = logging.getLogger("livekit.agents")


@dataclass(frozen=True)
class RetryOptions:
    """How a provider call is retried. Only errors marked ``retryable`` are retried."""

    max_attempts: int = 3
    base_delay: float = 0.5
    max_delay: float = 10.0
    timeout: float = 30.0
    """Seconds one attempt may take (a stalled socket times out)."""

    def delay(self, attempt: int, exc: BaseException | None = None) -> float:
        """Seconds to wait before attempt ``attempt + 1`` (``attempt`` counts from 1)."""
        if isinstance(exc, APIStatusError) and exc.retry_after is not None:
            return min(max(exc.retry_after, 0.0), self.max_delay)
        backoff = min(self.base_delay * 2 ** (attempt - 1), self.max_delay)
        return float(backoff * (0.5 + random.random() / 2))


DEFAULT_RETRY = RetryOptions()


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header value (RFC 9110 §10.2.3): either
    delay-seconds (``"120"``; fractions accepted) or an HTTP-date
    (``"Wed, 21 Oct 2015 07:28:00 GMT"``). ``None`` when absent or unreadable; a date in
    the past gives 0."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


async def with_retries(
    call: Callable[[], Awaitable[T]], *, options: RetryOptions = DEFAULT_RETRY, what: str = "request"
) -> T:
    """Run ``call`` until it succeeds, raises a non-retryable error, or attempts run out.

    The last error is raised, with the number of attempts in its message.
    """
    attempt = 0
    while True:
        attempt += 1
        try:
            return await call()
        except APIError as exc:
            if not exc.retryable or attempt >= options.max_attempts:
                if exc.retryable:
                    exc.args = (f"{exc.args[0]} (gave up after {attempt} attempts)",)
                    exc.message = exc.args[0]
                raise
            wait = options.delay(attempt, exc)
            logger.warning("%s failed (%s); retrying in %.1f s (attempt %d of %d)", what, exc.message, wait, attempt + 1, options.max_attempts)
            await asyncio.sleep(wait)
