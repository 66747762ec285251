"""The deepgram plugin is discoverable, light to load, and passes the core's conformance checks."""

from __future__ import annotations

import subprocess
import sys

import pytest

from livekit.agents.exceptions import MissingCredentialsError
from livekit.agents.testing import conformance


def test_discoverable_and_compatible(plugin_host):
    record = conformance.check_discoverable("deepgram", plugin_host)
    conformance.check_api_compatible("deepgram", plugin_host)
    assert record.distribution == "livekit-plugins-deepgram"
    assert set(record.providers["stt"]) == {"deepgram"}


def test_registration_imports_no_sdk():
    conformance.check_light_registration("deepgram")


def test_package_import_is_lazy():
    code = (
        "import sys; import livekit.plugins.deepgram as d;"
        "assert 'aiohttp' not in sys.modules and 'livekit.rtc' not in sys.modules, 'heavy import';"
        "from livekit.plugins.deepgram import STT; print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "ok", out.stderr


def test_missing_key_names_the_variable(monkeypatch):
    from livekit.plugins.deepgram import STT

    monkeypatch.delenv("DEEPGRAM_API_KEY", raising=False)
    with pytest.raises(MissingCredentialsError, match="DEEPGRAM_API_KEY"):
        STT()


def test_key_from_environment(monkeypatch):
    from livekit.plugins.deepgram import STT

    monkeypatch.setenv("DEEPGRAM_API_KEY", "dg-from-env")
    assert STT()._headers() == {"Authorization": "Token dg-from-env"}


async def test_plugin_check_runs_offline(plugin_host):
    results = await conformance.check_plugin("deepgram", plugin_host)
    outcomes = {r.check: (r.outcome, r.detail) for r in results}
    assert outcomes["stt 'deepgram' contract"] == ("passed", ""), outcomes
    assert all(o == "passed" for o, _ in outcomes.values()), outcomes
