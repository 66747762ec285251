from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def docs_env(temp_env: Any, plugin_wheels: dict[str, Path]) -> Any:
    """An environment with the plugins the plugin docs' example sessions show: the acme
    example and one broken plugin (badimport)."""
    temp_env.pip("install", "--no-deps", "--no-index", str(plugin_wheels["acme"]), str(plugin_wheels["badimport"]))
    return temp_env
