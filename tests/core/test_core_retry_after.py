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
