"""Entry point of livekit-plugins-google: registers the ``google`` STT and TTS.

Imports neither grpc nor google.cloud: the official clients load when an STT or TTS is
created.
"""

from __future__ import annotations

from typing import Any

from livekit.agents import hookimpl

PLUGIN_API = (1, 0)


@hookimpl
def register_stt(register: Any) -> None:
    def create(**options: Any) -> Any:
        from .stt import STT

        return STT(**options)

    register("google", create, description="Google Cloud Speech-to-Text v1 (recognize and streaming recognize)")


@hookimpl
def register_tts(register: Any) -> None:
    def create(**options: Any) -> Any:
        from .tts import TTS

        return TTS(**options)

    register("google", create, description="Google Cloud Text-to-Speech (LINEAR16)")
