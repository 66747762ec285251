"""Entry point of livekit-plugins-openai: registers the ``openai`` STT, TTS and LLM.

Loading this module imports neither the ``openai`` SDK nor the audio stack; the factories
do, when an implementation is created.
"""

from __future__ import annotations

from typing import Any

from livekit.agents import hookimpl

PLUGIN_API = (1, 1)


@hookimpl
def register_stt(register: Any) -> None:
    def create(**options: Any) -> Any:
        from .stt import STT

        return STT(**options)

    register("openai", create, description="OpenAI audio transcriptions (Whisper); stream with a VAD")


@hookimpl
def register_tts(register: Any) -> None:
    def create(**options: Any) -> Any:
        from .tts import TTS

        return TTS(**options)

    register("openai", create, description="OpenAI speech (tts-1), 24 kHz PCM streamed as it arrives")


@hookimpl
def register_llm(register: Any) -> None:
    def create(**options: Any) -> Any:
        from .llm import LLM

        return LLM(**options)

    register("openai", create, description="OpenAI Chat Completions (or any compatible server), streamed, with tools")
