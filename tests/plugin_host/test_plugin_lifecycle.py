"""A third-party plugin, end to end: pip install -> listed -> usable -> checked -> its own
tests pass -> pip uninstall -> gone. Uses examples/plugin-acme, installed from its source
directory the way its README says."""

from __future__ import annotations

import json
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
ACME = REPO_ROOT / "examples" / "plugin-acme"

USE_ACME = """
import asyncio, json
from livekit.agents import create_tokenizer, create_tts
from livekit.agents.utils.audio import rms

async def main():
    sentences = create_tokenizer("acme").tokenize("Dr. Smith is here. Say hello! Is it late?")
    words = create_tokenizer("acme", kind="word").tokenize("Don't stop now.")
    tts = create_tts("acme", sample_rate=16000)
    frame = await tts.synthesize("Hello world.").collect()
    await tts.aclose()
    import livekit.plugins.acme as acme
    print(json.dumps({"sentences": sentences, "words": words, "rate": frame.sample_rate,
                      "seconds": frame.samples_per_channel / frame.sample_rate, "rms": rms(frame),
                      "module": acme.__file__}))

asyncio.run(main())
"""

ACME_GONE = """
import json
from livekit.agents import create_tokenizer
from livekit.agents.exceptions import ProviderNotFoundError
try:
    create_tokenizer("acme")
except ProviderNotFoundError as exc:
    print(json.dumps({"error": str(exc)}))
else:
    print(json.dumps({"error": None}))
"""


def test_install_list_use_check_uninstall(temp_env):
    before = temp_env.plugins_json()
    assert "acme" not in before

    # install from the source directory, as the example's README says (dependencies are
    # already satisfied by the livekit-agents of this checkout that the environment sees)
    temp_env.pip("install", "-q", "--no-build-isolation", "--no-index", str(ACME))

    listed = temp_env.plugins_json()
    acme = listed["acme"]
    assert acme["status"] == "loaded", acme
    assert acme["error"] is None
    assert acme["distribution"] == "livekit-plugins-acme"
    assert acme["version"] == "0.1.0"
    assert acme["entry_point"] == "acme = livekit.plugins.acme.plugin"
    assert acme["module"] == "livekit.plugins.acme.plugin"
    assert acme["api_version"] == [1, 0]
    assert acme["hooks"] == ["register_tokenizers", "register_tts"]
    assert acme["providers"] == {"sentence_tokenizer": ["acme"], "tts": ["acme"], "word_tokenizer": ["acme"]}
    assert Path(acme["location"]).is_relative_to(temp_env.site_packages)
    # everything installed before is still listed the same way
    assert {k: v["status"] for k, v in before.items()} == {
        k: v["status"] for k, v in listed.items() if k != "acme"
    }

    table = temp_env.agents("plugins", "list")
    assert table.returncode == 0, table.stderr
    row = next(line for line in table.stdout.splitlines() if line.startswith("acme "))
    assert "livekit-plugins-acme" in row and "0.1.0" in row and "loaded" in row
    assert "tts: acme" in row and "sentence_tokenizer: acme" in row

    used = temp_env.python_json(USE_ACME)
    assert used["sentences"] == ["Dr. Smith is here.", "Say hello!", "Is it late?"]
    assert used["words"] == ["Don't", "stop", "now"]
    assert used["rate"] == 16000
    assert 0.3 < used["seconds"] < 3.0
    assert used["rms"] > 1000
    assert Path(used["module"]).is_relative_to(temp_env.site_packages)

    check = temp_env.agents("plugins", "check", "acme")
    assert check.returncode == 0, check.stdout + check.stderr
    assert "OK: 6 passed, 0 failed, 0 skipped" in check.stdout
    assert "PASS  tts 'acme' contract" in check.stdout

    # the plugin's own test suite (conformance kit + its own tests) passes in that environment
    own = temp_env.run("-m", "pytest", "-q", "-p", "no:cacheprovider", "tests", cwd=ACME)
    assert own.returncode == 0, own.stdout[-3000:] + own.stderr[-2000:]
    assert " passed" in own.stdout and "failed" not in own.stdout

    temp_env.pip("uninstall", "-y", "-q", "livekit-plugins-acme")

    after = temp_env.plugins_json()
    assert "acme" not in after
    gone = temp_env.python_json(ACME_GONE)
    assert gone["error"] is not None
    assert "no sentence_tokenizer provider named 'acme' is installed" in gone["error"]
    assert "agents plugins list" in gone["error"]
    missing = temp_env.agents("plugins", "check", "acme")
    assert missing.returncode == 2
    assert "no plugin named 'acme' is installed" in missing.stderr


def test_json_listing_has_every_documented_field(temp_env):
    temp_env.pip("install", "-q", "--no-build-isolation", "--no-index", str(ACME))
    out = temp_env.agents("plugins", "list", "--json")
    records = json.loads(out.stdout)
    assert [r["name"] for r in records] == sorted(r["name"] for r in records)
    fields = {
        "name",
        "distribution",
        "version",
        "entry_point",
        "module",
        "api_version",
        "status",
        "error",
        "hooks",
        "providers",
        "location",
        "warnings",
    }
    for record in records:
        assert set(record) == fields, record["name"]
        assert record["status"] in {"loaded", "failed", "incompatible", "blocked", "disabled"}
