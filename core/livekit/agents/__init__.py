"""livekit-agents: real-time programmable participants for LiveKit rooms.

Names are loaded on first use (PEP 562), so ``import livekit.agents`` stays cheap and a
plugin's module can import :data:`hookimpl` without pulling in ``livekit.rtc``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .hookspecs import PLUGIN_API, hookimpl
from .utils.lazy import lazy_exports
from .version import __version__

_EXPORTS = {
    # worker and jobs
    "Worker": ".worker",
    "WorkerOptions": ".options",
    "WorkerPermissions": ".options",
    "JobType": ".job",
    "JobRequest": ".job_request",
    "JobEnd": ".job_end",
    "JobEndKind": ".job_end",
    "JobContext": ".job",
    "AutoSubscribe": ".job",
    "AutoDisconnect": ".job",
    "run_app": ".cli.app",
    # plugin host
    "PluginHost": ".plugin_host",
    "get_plugin_host": ".plugin_host",
    "create_stt": ".plugin_host",
    "create_tts": ".plugin_host",
    "create_vad": ".plugin_host",
    "create_llm": ".plugin_host",
    "create_tokenizer": ".plugin_host",
    # capability and helper modules
    "stt": ".stt:",
    "tts": ".tts:",
    "vad": ".vad:",
    "llm": ".llm:",
    "tokenize": ".tokenize:",
    "voice": ".voice:",
    "utils": ".utils:",
    "exceptions": ".exceptions:",
    "hookspecs": ".hookspecs:",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, eager=("__version__", "PLUGIN_API", "hookimpl"))
__all__ = ["__version__", "PLUGIN_API", "hookimpl", *_EXPORTS]


if TYPE_CHECKING:
    from . import exceptions, hookspecs, llm, stt, tokenize, tts, utils, vad, voice
    from .cli.app import run_app
    from .job import AutoDisconnect, AutoSubscribe, JobContext, JobType
    from .job_end import JobEnd, JobEndKind
    from .job_request import JobRequest
    from .options import WorkerOptions, WorkerPermissions
    from .plugin_host import (
        PluginHost,
        create_llm,
        create_stt,
        create_tokenizer,
        create_tts,
        create_vad,
        get_plugin_host,
    )
    from .worker import Worker
