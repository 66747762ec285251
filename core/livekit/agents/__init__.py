"""livekit-agents: real-time programmable participants for LiveKit rooms.

Names are loaded on first use (PEP 562), so ``import livekit.agents`` stays cheap and a
plugin's module can import :data:`hookimpl` without pulling in ``livekit.rtc``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .hookspecs import PLUGIN_API, hookimpl
from .version import __version__

_LAZY: dict[str, tuple[str, str | None]] = {
    # worker and jobs
    "Worker": (".worker", "Worker"),
    "WorkerOptions": (".worker", "WorkerOptions"),
    "WorkerPermissions": (".worker", "WorkerPermissions"),
    "JobType": (".job", "JobType"),
    "JobRequest": (".job", "JobRequest"),
    "JobContext": (".job", "JobContext"),
    "AutoSubscribe": (".job", "AutoSubscribe"),
    "AutoDisconnect": (".job", "AutoDisconnect"),
    "run_app": (".cli.app", "run_app"),
    # plugin host
    "PluginHost": (".plugin_host", "PluginHost"),
    "get_plugin_host": (".plugin_host", "get_plugin_host"),
    "create_stt": (".plugin_host", "create_stt"),
    "create_tts": (".plugin_host", "create_tts"),
    "create_vad": (".plugin_host", "create_vad"),
    "create_tokenizer": (".plugin_host", "create_tokenizer"),
    # capability and helper modules
    "stt": (".stt", None),
    "tts": (".tts", None),
    "vad": (".vad", None),
    "tokenize": (".tokenize", None),
    "utils": (".utils", None),
    "exceptions": (".exceptions", None),
    "hookspecs": (".hookspecs", None),
}

__all__ = ["__version__", "PLUGIN_API", "hookimpl", *_LAZY]


def __getattr__(name: str) -> Any:
    try:
        module_name, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'livekit.agents' has no attribute {name!r}") from None
    module = importlib.import_module(module_name, __name__)
    value = module if attr is None else getattr(module, attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:
    from . import exceptions, hookspecs, stt, tokenize, tts, utils, vad
    from .cli.app import run_app
    from .job import AutoDisconnect, AutoSubscribe, JobContext, JobRequest, JobType
    from .plugin_host import (
        PluginHost,
        create_stt,
        create_tokenizer,
        create_tts,
        create_vad,
        get_plugin_host,
    )
    from .worker import Worker, WorkerOptions, WorkerPermissions
