"""Entry point of livekit-plugins-deepgram: registers the ``deepgram`` STT.

Loading this module imports neither aiohttp nor the audio stack; the factory does.
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

    register("deepgram", create, description="Deepgram live streaming STT (interim results) and pre-recorded recognize")
