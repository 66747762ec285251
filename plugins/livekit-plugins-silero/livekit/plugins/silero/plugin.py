"""Hook implementations of livekit-plugins-silero (imports nothing heavy)."""

from __future__ import annotations

from typing import Any

from livekit.agents import hookimpl

PLUGIN_API = (1, 0)


@hookimpl
def register_vad(register: Any) -> None:
    def create(**options: Any) -> Any:
        from .vad import VAD

        return VAD(**options)

    register("silero", create, description="Silero VAD (ONNX, bundled model, batched across streams)")
