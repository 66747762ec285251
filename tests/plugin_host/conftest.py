"""Fixtures of the plugin-host tests."""

from __future__ import annotations

import importlib
import sys
import textwrap

import pytest

from livekit.agents import hookspecs

GROUP = hookspecs.ENTRY_POINT_GROUP


@pytest.fixture
def install(tmp_path, monkeypatch):
    """``install(name, source, ...)`` puts a plugin distribution on ``sys.path``; returns
    the module name. ``entry`` overrides the entry-point line(s)."""
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    created: list[str] = []
    tag = abs(hash(str(tmp_path))) % 10**8

    def install(name: str, source: str = "", *, dist: str | None = None, version: str = "1.2.3",
                entry: str | None = None, module: str | None = None) -> str:
        module = module or f"inproc_{name.replace('-', '_')}_{tag}"
        if source:
            (site / f"{module}.py").write_text(textwrap.dedent(source))
        dist = dist or f"livekit-plugins-{name}"
        info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
        (info / "entry_points.txt").write_text(f"[{GROUP}]\n{entry or f'{name} = {module}'}\n")
        created.append(module)
        importlib.invalidate_caches()
        return module

    yield install
    for module in created:
        sys.modules.pop(module, None)


entry_points = install  # the unit tests' name for it
