"""Ways a third-party author once shipped a broken plugin that the host and `agents plugins
check` accepted as fine (issue #14, item 3). Each is now reported, and `check` fails
saying what to fix. The fixture plugins are in tests/fixtures/plugins/."""

from __future__ import annotations

import json


def check(env, name):
    out = env.agents("plugins", "check", name)
    return out.returncode, out.stdout, out.stderr


def test_async_def_hookimpl_fails_the_plugin(fixtures_env):
    record = fixtures_env.plugins_json()["asynchook"]
    assert record["status"] == "failed"
    assert "hook 'register_tts' is an async def; pluggy never awaits it" in record["error"]
    assert "Make it a plain def" in record["error"]
    code, out, _ = check(fixtures_env, "asynchook")
    assert code == 1 and "FAIL  discoverable" in out and "Make it a plain def" in out
    strict = fixtures_env.agents("--strict", "--plugins", "asynchook", "plugins", "list")
    assert strict.returncode == 1 and "async def" in strict.stderr


def test_plugin_api_of_the_wrong_type_says_so(fixtures_env):
    record = fixtures_env.plugins_json()["apistring"]
    assert record["status"] == "failed"
    assert record["error"] == (
        "PLUGIN_API in livekit.plugins.apistring.plugin has the wrong type: '1.0' (str); "
        "it must be a tuple of two ints, (major, minor); write PLUGIN_API = (1, 0)"
    )
    code, out, _ = check(fixtures_env, "apistring")
    assert code == 1 and "write PLUGIN_API = (1, 0)" in out


def test_a_clashing_provider_is_refused_alone_and_reported(fixtures_env):
    listed = fixtures_env.plugins_json()
    clash = listed["clash"]
    assert clash["status"] == "loaded"
    assert clash["providers"] == {"tts": ["clash"]}  # the rest of the plugin works
    assert clash["warnings"] == [
        "tts provider 'acme' is not registered: plugin 'acme' already registered that name (rename one of them)"
    ]
    assert listed["acme"]["providers"]["tts"] == ["acme"]
    table = fixtures_env.agents("plugins", "list").stdout
    assert "    warning: tts provider 'acme' is not registered" in table
    code, out, _ = check(fixtures_env, "clash")
    assert code == 1
    lines = out.splitlines()
    i = lines.index("  FAIL  providers registered")
    assert "plugin 'acme' already registered that name (rename one of them)" in lines[i + 1]
    assert "  PASS  tts 'clash' contract" in lines


def test_a_tts_stream_without_is_final_fails_its_check(fixtures_env):
    code, out, _ = check(fixtures_env, "ttsnofinal")
    assert code == 1
    lines = out.splitlines()
    i = lines.index("  FAIL  tts 'ttsnofinal' contract")
    assert "the last frame of the stream's segment (the text up to flush()) is not marked is_final" in lines[i + 1]


def test_provider_of_a_failed_plugin_says_the_plugin_failed_and_why(fixtures_env):
    code = """
import json
from livekit.agents import create_tts
from livekit.agents.exceptions import ProviderNotFoundError
try:
    create_tts("apistring")
except ProviderNotFoundError as exc:
    print(json.dumps(str(exc)))
"""
    message = fixtures_env.python_json(code)
    assert "plugin 'apistring' is installed but failed to load: PLUGIN_API in" in message
    assert "installed: none" not in message


def test_check_of_an_unknown_name_suggests_something_true(fixtures_env, tmp_path):
    out = fixtures_env.agents("plugins", "check", "thirdparty")
    assert out.returncode == 2
    assert "pip install the distribution that provides it" in out.stderr
    assert "entry point in the group livekit.agents.plugins must be named 'thirdparty'" in out.stderr
    assert "./plugins/livekit-plugins-thirdparty" not in out.stderr


def test_a_run_where_every_contract_check_was_skipped_is_not_ok(fixtures_env):
    code, out, _ = check(fixtures_env, "needskey")
    assert code == 3
    assert "  SKIP  tts 'needskey' contract" in out
    assert "NOT VERIFIED: 3 passed, 0 failed, 1 skipped" in out
    assert "Every contract check was skipped" in out
    assert "\nOK" not in out
    data = json.loads(fixtures_env.agents("plugins", "check", "needskey", "--json").stdout)
    assert [r["outcome"] for r in data if r["check"].endswith("contract")] == ["skipped"]
