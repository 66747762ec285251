"""Entry point of livekit-plugins-elevenlabs: registers the ``elevenlabs`` TTS.

Imports nothing heavy: aiohttp and the implementation load when a TTS is created.
"""

from __future__ import annotations

from typing import Any

from livekit.agents import hookimpl

PLUGIN_API = (1, 0)


@hookimpl
def register_tts(register: Any) -> None:
    def create(**options: Any) -> Any:
        from .tts import TTS

        return TTS(**options)

    register(
        "elevenlabs",
        create,
        description="ElevenLabs text-to-speech: HTTP streaming and the stream-input websocket",
    )
