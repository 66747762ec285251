"""Broken and deliberately wrong plugins installed beside a good one (acme), in one
temporary environment: each is listed with its status and a one-line error, the good one
keeps working, strict mode makes failures fatal, plugins can be blocked and chosen by
name (CLI option and environment variable), hook calls can be traced, and each
conformance check fails on the plugin that is wrong for it."""

from __future__ import annotations

import json

import pytest

BROKEN = {
    # name: (status, words the one-line error must contain)
    "badimport": ("failed", ["ModuleNotFoundError", "acme_cloud_sdk_not_installed"]),
    "badsignature": ("failed", ["register_stt", "config", "hookspec"]),
    "unknownhook": ("failed", ["unknown hook 'register_chatbot'", "register_stt"]),
    "raisesinregister": ("failed", ["RuntimeError", "ACME_REGION is not set"]),
    "incompatible": ("incompatible", ["plugin API 2.0", "provides 1.1"]),
}
WRONG = {
    # name: (contract check label, words the failure must contain)
    "wrongstt": ("stt 'wrongstt' contract", ["recognize() heard 'lorem ipsum", "quick brown fox"]),
    "wrongtts": ("tts 'wrongtts' contract", ["produced silence"]),
    "wrongvad": ("vad 'wrongvad' contract", ["expected 2 utterance(s)"]),
    "wrongsentence": ("sentence_tokenizer 'wrongsentence' contract", ["found 3 sentences, expected 5"]),
    "wrongword": ("word_tokenizer 'wrongword' contract", ["got 'don', expected \"don't\""]),
}
WRONG_CAPABILITY = {
    "wrongstt": "stt",
    "wrongtts": "tts",
    "wrongvad": "vad",
    "wrongsentence": "sentence_tokenizer",
    "wrongword": "word_tokenizer",
}

USE_GOOD_ONES = """
import asyncio, json
from livekit.agents import create_tokenizer, create_tts, get_plugin_host
from livekit.agents.exceptions import ProviderNotFoundError

async def main():
    host = get_plugin_host()
    tts = create_tts("acme")
    frame = await tts.synthesize("Still working.").collect()
    missing = {}
    for cap, name in [("tts", "halfregistered"), ("stt", "future"), ("stt", "badimport")]:
        try:
            host.registry.get(cap, name)
        except ProviderNotFoundError as exc:
            missing[f"{cap}:{name}"] = str(exc)
    print(json.dumps({
        "sentences": create_tokenizer("acme").tokenize("One. Two!"),
        "frames": frame.samples_per_channel,
        "missing": missing,
        "providers": sorted(f"{p.capability}:{p.name}" for p in host.registry.providers()),
    }))

asyncio.run(main())
"""


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_plugin_is_listed_with_its_error(fixtures_env, name):
    status, words = BROKEN[name]
    record = fixtures_env.plugins_json()[name]
    assert record["status"] == status
    assert record["distribution"] == f"livekit-plugins-{name}"
    assert record["error"] and "\n" not in record["error"]
    for word in words:
        assert word in record["error"], record["error"]
    assert record["providers"] == {}, "a broken plugin must not stay half-registered"


def test_table_shows_status_and_one_line_error(fixtures_env):
    out = fixtures_env.agents("plugins", "list")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    for name, (status, words) in BROKEN.items():
        i = next(i for i, line in enumerate(lines) if line.startswith(f"{name} "))
        assert status in lines[i].split()
        assert lines[i + 1].strip().startswith("error: ") and words[0] in lines[i + 1]
    acme = next(line for line in lines if line.startswith("acme "))
    assert "loaded" in acme.split()
    assert "Block one with --disable-plugin NAME" in out.stdout


def test_good_plugins_keep_working_beside_broken_ones(fixtures_env):
    listed = fixtures_env.plugins_json()
    assert listed["acme"]["status"] == "loaded"
    for name in WRONG:  # wrong but well-formed plugins load fine; only their checks fail
        assert listed[name]["status"] == "loaded"
        assert listed[name]["providers"] == {WRONG_CAPABILITY[name]: [name]}
    used = fixtures_env.python_json(USE_GOOD_ONES)
    assert used["sentences"] == ["One.", "Two!"]
    assert used["frames"] > 0
    assert set(used["missing"]) == {"tts:halfregistered", "stt:future", "stt:badimport"}
    assert "installed:" in used["missing"]["tts:halfregistered"]
    assert "acme" in used["missing"]["tts:halfregistered"]  # the error lists what is installed
    assert "tts:acme" in used["providers"] and "word_tokenizer:wrongword" in used["providers"]


@pytest.mark.parametrize("how", ["option", "env"])
def test_strict_mode_makes_a_broken_plugin_fatal(fixtures_env, how):
    if how == "option":
        out = fixtures_env.agents("--strict", "plugins", "list")
    else:
        out = fixtures_env.agents("plugins", "list", env={"LIVEKIT_AGENTS_STRICT_PLUGINS": "1"})
    assert out.returncode == 1
    assert "strict mode" in out.stderr
    assert "plugin 'badimport' failed to load: ModuleNotFoundError" in out.stderr  # first broken one, by name
    assert "Traceback" not in out.stderr
    assert out.stdout == ""


def test_strict_mode_reports_incompatible_plugins(fixtures_env):
    out = fixtures_env.agents("--strict", "--plugins", "acme,incompatible", "plugins", "list")
    assert out.returncode == 1
    assert "plugin 'incompatible' is incompatible: built for plugin API 2.0" in out.stderr


def test_strict_mode_passes_once_broken_plugins_are_blocked(fixtures_env):
    args = []
    for name in BROKEN:
        args += ["--disable-plugin", name]
    out = fixtures_env.agents(
        "--strict", *args, "--plugins", "acme," + ",".join([*BROKEN, *WRONG]), "plugins", "list", "--json"
    )
    assert out.returncode == 0, out.stderr
    statuses = {p["name"]: p["status"] for p in json.loads(out.stdout)}
    assert all(statuses[n] == "blocked" for n in BROKEN)
    assert statuses["acme"] == "loaded"


def test_block_by_option(fixtures_env):
    listed = fixtures_env.plugins_json("--disable-plugin", "badimport", "--disable-plugin", "acme,wrongtts")
    for name in ("badimport", "acme", "wrongtts"):
        assert listed[name]["status"] == "blocked"
        assert listed[name]["error"] is None and listed[name]["providers"] == {}
    assert listed["wrongstt"]["status"] == "loaded"
    assert listed["badsignature"]["status"] == "failed"


def test_block_by_env_var_and_option_add_up(fixtures_env):
    listed = fixtures_env.plugins_json(
        "--disable-plugin", "wrongvad", env={"LIVEKIT_AGENTS_DISABLE_PLUGINS": "badimport, unknownhook"}
    )
    assert [n for n, p in sorted(listed.items()) if p["status"] == "blocked"] == [
        "badimport",
        "unknownhook",
        "wrongvad",
    ]


def test_blocked_plugin_is_not_usable(fixtures_env):
    code = (
        "import json\nfrom livekit.agents import create_tts\n"
        "try:\n    create_tts('acme')\nexcept LookupError as e:\n    print(json.dumps(str(e)))\n"
        "else:\n    print(json.dumps('created'))\n"
    )
    assert fixtures_env.python_json(code) == "created"
    error = fixtures_env.python_json(code, env={"LIVEKIT_AGENTS_DISABLE_PLUGINS": "acme"})
    assert "no tts provider named 'acme'" in error


def test_choose_by_option(fixtures_env):
    listed = fixtures_env.plugins_json("--plugins", "acme,wrongtts")
    assert {n for n, p in listed.items() if p["status"] == "loaded"} == {"acme", "wrongtts"}
    assert {p["status"] for n, p in listed.items() if n not in ("acme", "wrongtts")} == {"disabled"}
    assert listed["badimport"]["error"] is None  # never imported


def test_choose_by_env_var_and_option_wins(fixtures_env):
    listed = fixtures_env.plugins_json(env={"LIVEKIT_AGENTS_PLUGINS": "wrongstt"})
    assert [n for n, p in listed.items() if p["status"] == "loaded"] == ["wrongstt"]
    listed = fixtures_env.plugins_json("--plugins", "acme", env={"LIVEKIT_AGENTS_PLUGINS": "wrongstt"})
    assert [n for n, p in listed.items() if p["status"] == "loaded"] == ["acme"]
    listed = fixtures_env.plugins_json(env={"LIVEKIT_AGENTS_PLUGINS": ""})
    assert {p["status"] for p in listed.values()} == {"disabled"}


@pytest.mark.parametrize("how", ["option", "env"])
def test_trace_logs_hook_calls(fixtures_env, how):
    if how == "option":
        out = fixtures_env.agents("--trace", "--plugins", "acme,raisesinregister", "plugins", "list")
    else:
        out = fixtures_env.agents(
            "--plugins", "acme,raisesinregister", "plugins", "list", env={"LIVEKIT_AGENTS_TRACE_PLUGINS": "1"}
        )
    assert out.returncode == 0
    err = out.stderr
    assert "loading plugin acme from livekit.plugins.acme.plugin (livekit-plugins-acme 0.1.0)" in err
    assert "hook register_tts(register=<register tts providers for plugin acme>) -> plugin acme" in err
    assert "hook register_tokenizers <- plugin acme returned None" in err
    assert "plugin acme registered word_tokenizer provider 'acme'" in err
    assert "hook register_tts <- plugin raisesinregister raised RuntimeError: ACME_REGION is not set" in err
    assert "plugin badimport disabled" in err


def test_no_trace_without_asking(fixtures_env):
    out = fixtures_env.agents("--plugins", "acme", "plugins", "list")
    assert "hook register_tts" not in out.stderr


@pytest.mark.parametrize("name", sorted(WRONG))
def test_each_conformance_check_fails_on_its_wrong_plugin(fixtures_env, name):
    label, words = WRONG[name]
    out = fixtures_env.agents("plugins", "check", name)
    assert out.returncode == 1, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == f"Checking plugin '{name}' (livekit-plugins-{name} 0.1.0)"
    assert "  PASS  discoverable" in lines
    assert "  PASS  plugin API compatible" in lines
    assert "  PASS  registration imports no SDK" in lines
    i = lines.index(f"  FAIL  {label}")
    for word in words:
        assert word in lines[i + 1], lines[i + 1]
    assert lines[-1] == "FAILED: 3 passed, 1 failed, 0 skipped"


def test_check_json_output(fixtures_env):
    out = fixtures_env.agents("plugins", "check", "wrongtts", "--json")
    assert out.returncode == 1
    results = {r["check"]: r for r in json.loads(out.stdout)}
    assert results["tts 'wrongtts' contract"]["outcome"] == "failed"
    assert "silence" in results["tts 'wrongtts' contract"]["detail"]


@pytest.mark.parametrize("name", ["badimport", "incompatible"])
def test_check_of_a_broken_plugin_fails_with_its_error(fixtures_env, name):
    out = fixtures_env.agents("plugins", "check", name)
    assert out.returncode == 1
    assert "FAIL  discoverable" in out.stdout
    assert BROKEN[name][1][0] in out.stdout


def test_check_of_a_blocked_plugin_says_so(fixtures_env):
    out = fixtures_env.agents("--disable-plugin", "acme", "plugins", "check", "acme")
    assert out.returncode == 1
    assert "plugin 'acme' is blocked" in out.stdout


def test_check_of_an_unknown_plugin_exits_2(fixtures_env):
    out = fixtures_env.agents("plugins", "check", "nosuchplugin")
    assert out.returncode == 2
    assert "no plugin named 'nosuchplugin' is installed" in out.stderr
    assert "acme" in out.stderr  # lists what is installed
