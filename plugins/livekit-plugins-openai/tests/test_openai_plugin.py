"""The openai plugin is discoverable, light to load, and passes the core's conformance checks."""

from __future__ import annotations

import subprocess
import sys

import pytest

from livekit.agents.exceptions import MissingCredentialsError
from livekit.agents.testing import conformance


def test_discoverable_and_compatible(plugin_host):
    record = conformance.check_discoverable("openai", plugin_host)
    conformance.check_api_compatible("openai", plugin_host)
    assert record.distribution == "livekit-plugins-openai"
    assert set(record.providers["stt"]) == {"openai"}
    assert set(record.providers["tts"]) == {"openai"}


def test_registration_imports_no_sdk():
    conformance.check_light_registration("openai")


def test_package_import_is_lazy_and_alias_works():
    code = (
        "import sys; import livekit.plugins.openai as o; assert 'openai' not in sys.modules, 'sdk imported';"
        "from livekit.plugins.openai import WhisperAPITranscriber, STT; assert WhisperAPITranscriber is STT;"
        "print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "ok", out.stderr


@pytest.mark.parametrize("cls", ["STT", "TTS"])
def test_missing_key_names_the_variable(monkeypatch, cls):
    import livekit.plugins.openai as openai_plugin

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(MissingCredentialsError, match="OPENAI_API_KEY"):
        getattr(openai_plugin, cls)()


def test_key_and_base_url_from_environment(monkeypatch, fake):
    from livekit.plugins.openai import STT

    monkeypatch.setenv("OPENAI_API_KEY", fake.api_key)
    monkeypatch.setenv("OPENAI_BASE_URL", fake.base_url)
    stt = STT()
    assert stt._client.base_url == fake.base_url


async def test_plugin_check_runs_offline(plugin_host):
    results = await conformance.check_plugin("openai", plugin_host)
    outcomes = {r.check: (r.outcome, r.detail) for r in results}
    assert outcomes["stt 'openai' contract"] == ("passed", ""), outcomes
    assert outcomes["tts 'openai' contract"] == ("passed", ""), outcomes
    assert all(o == "passed" for o, _ in outcomes.values()), outcomes
