"""`agents plugins list` imports no provider SDK, no model runtime and not livekit.rtc,
with every installed plugin (ours, acme and the fixtures) loaded; checked through
sys.modules in a fresh interpreter."""

from __future__ import annotations

import re
from importlib import metadata

ALWAYS_HEAVY = {
    "livekit.rtc",
    "numpy",
    "onnxruntime",
    "torch",
    "aiohttp",
    "grpc",
    "httpx",
    "openai",
    "deepgram",
    "elevenlabs",
    "google.cloud",
    "nltk",
}

LIST_AND_DUMP = """
import io, json, sys, contextlib
from livekit.agents.cli.main import main
buf = io.StringIO()
with contextlib.redirect_stdout(buf):
    try:
        main(["plugins", "list", "--json"])
    except SystemExit as exc:
        assert not exc.code, exc.code
print(json.dumps({"plugins": json.loads(buf.getvalue()), "modules": sorted(sys.modules)}))
"""


def _plugin_sdk_modules() -> set[str]:
    """Top-level modules of every dependency of the installed livekit-plugins-* (besides core)."""
    required: set[str] = set()
    for dist in metadata.distributions():
        name = (dist.metadata["Name"] or "").lower().replace("_", "-")
        if name.startswith("livekit-plugins-"):
            for req in dist.requires or []:
                if "extra ==" in req:
                    continue
                required.add(re.split(r"[ ;<>=!~\[(]", req, maxsplit=1)[0].lower().replace("_", "-"))
    required -= {"livekit-agents", "pluggy"}
    modules = set()
    for top, dists in metadata.packages_distributions().items():
        if any(d.lower().replace("_", "-") in required for d in dists):
            modules.add(top)
    # namespace tops shared with us are too coarse; keep their SDK sub-packages only
    modules -= {"livekit", "google"}
    return modules


def test_plugins_list_imports_no_sdk(fixtures_env):
    result = fixtures_env.python_json(LIST_AND_DUMP)
    plugins = {p["name"]: p for p in result["plugins"]}
    assert plugins["acme"]["status"] == "loaded"
    assert any(p["status"] == "failed" for p in plugins.values())
    modules = set(result["modules"])
    heavy = ALWAYS_HEAVY | _plugin_sdk_modules()
    leaked = sorted(h for h in heavy if h in modules)  # a submodule's import imports its package
    assert leaked == [], f"`agents plugins list` imported {leaked}; import SDKs inside provider factories"
    # the plugin modules themselves were imported (so the check above means something)
    assert "livekit.plugins.acme.plugin" in modules
    assert "livekit.plugins.acme.tts" not in modules  # factories ran nothing


def test_importing_livekit_agents_is_light(fixtures_env):
    code = "import json, sys, livekit.agents; print(json.dumps(sorted(sys.modules)))"
    modules = set(fixtures_env.python_json(code))
    leaked = sorted(h for h in ALWAYS_HEAVY if h in modules)
    assert leaked == [], f"`import livekit.agents` imported {leaked}; expose heavy names lazily (PEP 562)"
    assert not any(m.startswith("livekit.plugins.") for m in modules), "importing core must not load plugins"
