"""Deprecated import path of the Silero VAD (the framework's early names).

``from livekit.plugins.vad import VADPlugin, VADEventType`` keeps working:

* ``VADPlugin`` is :class:`livekit.plugins.silero.VAD`;
* ``VADEventType`` is :class:`livekit.agents.vad.VADEventType`.

Both emit a :class:`DeprecationWarning` naming the current name. New code should write
``from livekit.plugins.silero import VAD`` and ``from livekit.agents.vad import VADEventType``.
"""

from __future__ import annotations

import importlib
import warnings
from typing import Any

_ALIASES = {
    "VADPlugin": ("livekit.plugins.silero.vad", "VAD", "livekit.plugins.silero.VAD"),
    "VADEventType": ("livekit.agents.vad", "VADEventType", "livekit.agents.vad.VADEventType"),
}

__all__ = list(_ALIASES)


def __getattr__(name: str) -> Any:
    try:
        module_name, attr, current = _ALIASES[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    warnings.warn(
        f"livekit.plugins.vad.{name} is deprecated; use {current} instead",
        DeprecationWarning,
        stacklevel=2,
    )
    value = getattr(importlib.import_module(module_name), attr)
    globals()[name] = value  # warn once per name
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
