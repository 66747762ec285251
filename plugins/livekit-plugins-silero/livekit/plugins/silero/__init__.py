"""Silero voice activity detection for livekit-agents.

``VAD`` runs the Silero VAD ONNX model shipped inside this distribution; every stream of
the process shares one onnxruntime session on one inference thread, and the windows of
concurrent streams are batched into one model call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from livekit.agents.utils.lazy import lazy_exports

from .version import __version__

_EXPORTS = {
    "VAD": ".vad",
    "VADStream": ".vad",
    "VADOptions": ".vad",
    "InferenceStats": "._inference",
    "inference_stats": "._inference",
    "MODEL_PATH": "._inference",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = ["__version__", *_EXPORTS]

if TYPE_CHECKING:
    from ._inference import MODEL_PATH as MODEL_PATH
    from ._inference import InferenceStats as InferenceStats
    from ._inference import inference_stats as inference_stats
    from .vad import VAD as VAD
    from .vad import VADOptions as VADOptions
    from .vad import VADStream as VADStream
