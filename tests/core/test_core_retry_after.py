"""Retry-After (RFC 9110 §10.2.3): delay-seconds or an HTTP-date, read by one helper."""

from __future__ import annotations

import email.utils

import pytest

from livekit.agents.testing.loopback import http_date, retry_after_header
from livekit.agents.utils.retry import parse_retry_after

NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("120", 120.0),
        ("0.25", 0.25),
        (" 3 ", 3.0),
        ("-5", 0.0),
        (email.utils.formatdate(NOW + 30, usegmt=True), 30.0),  # IMF-fixdate
        (email.utils.formatdate(NOW - 30, usegmt=True), 0.0),  # in the past: now
        ("Sunday, 06-Nov-94 08:49:37 GMT", 0.0),  # obsolete RFC 850 form, long past
        (None, None),
        ("", None),
        ("soon", None),
    ],
)
def test_parse_retry_after(value, seconds):
    got = parse_retry_after(value, now=NOW)
    assert got == (None if seconds is None else pytest.approx(seconds, abs=1e-6))


def test_fake_header_values_round_trip():
    assert parse_retry_after(retry_after_header(1.5)) == 1.5
    assert 1.0 <= parse_retry_after(retry_after_header(http_date(2))) <= 2.0


# --- what mutation testing found unchecked (nox -s mutants -- retry) --------------------------


def test_a_zero_retry_after_means_now():
    from livekit.agents.exceptions import APIStatusError
    from livekit.agents.utils.retry import RetryOptions

    assert RetryOptions().delay(1, APIStatusError("x", status_code=429, retry_after=0.0)) == 0.0
    assert RetryOptions(max_delay=4.0).delay(1, APIStatusError("x", status_code=429, retry_after=60)) == 4.0


def test_backoff_jitter_spans_half_to_the_whole_backoff(monkeypatch):
    from livekit.agents.utils import retry

    opts = retry.RetryOptions(base_delay=1.0, max_delay=100.0)
    monkeypatch.setattr(retry.random, "random", lambda: 0.0)
    assert opts.delay(3) == pytest.approx(2.0)
    monkeypatch.setattr(retry.random, "random", lambda: 1.0)
    assert opts.delay(3) == pytest.approx(4.0)


async def test_the_retry_log_and_the_final_error_say_what_happened(monkeypatch, caplog):
    import logging

    from livekit.agents.exceptions import APIStatusError
    from livekit.agents.utils import retry

    async def no_sleep(_):
        return None

    monkeypatch.setattr(retry.asyncio, "sleep", no_sleep)
    caplog.set_level(logging.WARNING, logger="livekit.agents")

    async def call():
        raise APIStatusError("HTTP 503", status_code=503, retry_after=1.5)

    with pytest.raises(APIStatusError) as info:
        await retry.with_retries(call, options=retry.RetryOptions(max_attempts=3))
    assert info.value.message == "HTTP 503 (gave up after 3 attempts)" == str(info.value)
    assert [r.getMessage() for r in caplog.records] == [
        "request failed (HTTP 503); retrying in 1.5 s (attempt 2 of 3)",
        "request failed (HTTP 503); retrying in 1.5 s (attempt 3 of 3)",
    ]
