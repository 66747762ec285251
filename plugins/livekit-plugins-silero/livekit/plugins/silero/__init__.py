"""Silero voice activity detection for livekit-agents.

``VAD`` runs the Silero VAD ONNX model shipped inside this distribution; every stream of
the process shares one onnxruntime session on one inference thread, and the windows of
concurrent streams are batched into one model call.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .version import __version__

_LAZY = {
    "VAD": (".vad", "VAD"),
    "VADStream": (".vad", "VADStream"),
    "VADOptions": (".vad", "VADOptions"),
    "InferenceStats": ("._inference", "InferenceStats"),
    "inference_stats": ("._inference", "inference_stats"),
    "MODEL_PATH": ("._inference", "MODEL_PATH"),
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    try:
        module_name, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module_name, __name__), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:
    from ._inference import MODEL_PATH as MODEL_PATH
    from ._inference import InferenceStats as InferenceStats
    from ._inference import inference_stats as inference_stats
    from .vad import VAD as VAD
    from .vad import VADOptions as VADOptions
    from .vad import VADStream as VADStream
