"""Names that load on first use (PEP 562), so that importing a package stays cheap.

A package's ``__init__`` declares where each public name lives::

    from livekit.agents.utils.lazy import lazy_exports

    __getattr__, __dir__ = lazy_exports(__name__, {
        "STT": ".stt",                          # attribute STT of the submodule .stt
        "WhisperAPITranscriber": ".stt:STT",    # another attribute, under an alias
        "stt": ".stt:",                         # the submodule itself
    })
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any


def lazy_exports(
    package: str, exports: dict[str, str], *, eager: tuple[str, ...] = ("__version__",)
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of ``package`` for ``exports``.

    Each value is ``"module"`` (the attribute of the same name), ``"module:attr"``, or
    ``"module:"`` (the module itself); relative module names resolve against ``package``.
    A loaded name is cached in the package, so it is looked up once.
    """
    targets = {}
    for name, spec in exports.items():
        module, _, attr = spec.partition(":")
        targets[name] = (module, attr if ":" in spec else name)

    def __getattr__(name: str) -> Any:
        try:
            module_name, attr = targets[name]
        except KeyError:
            raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
        module = importlib.import_module(module_name, package)
        value = getattr(module, attr) if attr else module
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted([*eager, *targets])

    return __getattr__, __dir__
