"""Our livekit-agents and livekit-plugins-* must come from this checkout.

PyPI has unrelated packages with the same names; a `pip install livekit-agents` by bare
name would silently replace ours. These tests fail if an imported ``livekit.agents`` /
``livekit.plugins.*`` module, or an installed ``livekit-agents`` / ``livekit-plugins-*``
distribution, is not from the checkout that holds this test file (CI runs from its own
clone, so the root is computed, never hard-coded).
"""

from __future__ import annotations

import importlib
import json
import sys
from importlib import metadata
from pathlib import Path
from urllib.parse import unquote, urlparse

REPO_ROOT = Path(__file__).resolve().parents[2]
FIX = "reinstall it from this checkout: pip install -e ./core ./plugins/livekit-plugins-<name> (never by bare name from PyPI)"


def _ours(dist_name: str) -> bool:
    name = dist_name.lower().replace("_", "-")
    return name == "livekit-agents" or name.startswith("livekit-plugins-")


def _in_checkout(path: str | Path) -> bool:
    return Path(path).resolve().is_relative_to(REPO_ROOT)


def test_livekit_agents_is_imported_from_this_checkout():
    import livekit.agents

    assert _in_checkout(livekit.agents.__file__), (
        f"livekit.agents was imported from {livekit.agents.__file__}, not from {REPO_ROOT}; {FIX}"
    )


def test_every_loaded_livekit_module_is_from_this_checkout():
    from livekit.agents.plugin_host import PluginHost

    host = PluginHost()
    host.load_entry_points()  # imports every installed plugin's entry-point module
    for name in [n for n in host.records if host.records[n].status == "loaded"]:
        importlib.import_module(host.records[name].module.rsplit(".", 1)[0])
    outside = []
    for name, module in sorted(sys.modules.items()):
        if not (name == "livekit.agents" or name.startswith(("livekit.agents.", "livekit.plugins."))):
            continue
        files = (
            [getattr(module, "__file__", None)]
            if getattr(module, "__file__", None)
            else list(getattr(module, "__path__", []))
        )
        outside += [f"{name} ({f})" for f in files if not _in_checkout(f)]
    assert outside == [], f"modules imported from outside {REPO_ROOT}: {outside}; {FIX}"


def test_namespace_package_livekit_plugins_only_spans_this_checkout():
    import livekit.plugins

    outside = [p for p in livekit.plugins.__path__ if not _in_checkout(p)]
    assert outside == [], (
        f"livekit.plugins has portions outside {REPO_ROOT}: {outside} (a livekit-plugins-* installed "
        f"from somewhere else); {FIX}"
    )


def test_installed_distributions_were_built_from_this_checkout():
    problems = []
    for dist in metadata.distributions():
        name = dist.metadata["Name"] or ""
        if not _ours(name):
            continue
        raw = dist.read_text("direct_url.json")
        if raw is None:
            problems.append(f"{name} {dist.version}: installed from an index, not from a local path")
            continue
        url = json.loads(raw).get("url", "")
        parsed = urlparse(url)
        if parsed.scheme != "file" or not _in_checkout(unquote(parsed.path)):
            problems.append(f"{name} {dist.version}: installed from {url}")
    assert problems == [], f"distributions not from {REPO_ROOT}: {problems}; {FIX}"


def test_at_least_core_is_checked():
    names = {(d.metadata["Name"] or "").lower() for d in metadata.distributions()}
    assert "livekit-agents" in names, "livekit-agents is not installed; pip install -e ./core"


def test_these_checks_catch_plugins_installed_from_elsewhere(fixtures_env):
    """In an environment holding wheels built outside the checkout, the checks above fail."""
    out = fixtures_env.run(
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        __file__,
        "-k",
        "loaded_livekit_module or built_from_this_checkout or spans_this_checkout",
        cwd=REPO_ROOT,
    )
    assert out.returncode == 1, out.stdout[-2000:]
    assert "3 failed" in out.stdout
    assert "livekit-plugins-acme 0.1.0: installed from file://" in out.stdout
    assert "livekit.plugins.acme.plugin (" in out.stdout
