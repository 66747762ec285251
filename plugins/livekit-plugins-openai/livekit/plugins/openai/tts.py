"""Text-to-speech with OpenAI's speech endpoint (``POST /audio/speech``), PCM streamed."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import httpx2

import openai
from livekit.agents import tts
from livekit.agents.exceptions import APIConnectionError, APIResponseError
from livekit.agents.utils.audio import AudioByteStream
from livekit.agents.utils.retry import RetryOptions

from ._client import Client
from .log import logger

SAMPLE_RATE = 24000
"""OpenAI's ``pcm`` output: 24 kHz, 16-bit signed little-endian, mono."""
NUM_CHANNELS = 1
VOICES = ("alloy", "ash", "ballad", "coral", "echo", "fable", "nova", "onyx", "sage", "shimmer", "verse")


FRAME_SAMPLES = SAMPLE_RATE // 25
"""Samples per emitted frame (40 ms), cut from the response body as it arrives."""


class TTS(tts.TTS):
    """Speaks text with OpenAI's speech endpoint; frames are yielded as the audio arrives.

    Args:
        model: ``tts-1``, ``tts-1-hd`` or ``gpt-4o-mini-tts``.
        voice: one of the documented voices (``alloy``, ``echo``, ``nova``, ...).
        speed: 0.25 to 4.0.
        instructions: voice instructions (``gpt-4o-mini-tts`` only).
        api_key: defaults to ``OPENAI_API_KEY``.
        base_url: defaults to ``OPENAI_BASE_URL``, else ``https://api.openai.com/v1``.
        timeout: seconds to wait for the answer to start, and for each piece of the body.
        retry: retry policy for 429, 5xx and connection errors before audio starts.
    """

    def __init__(
        self,
        *,
        model: str = "tts-1",
        voice: str = "alloy",
        speed: float = 1.0,
        instructions: str | None = None,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float | None = None,
        retry: RetryOptions | None = None,
    ) -> None:
        super().__init__(
            capabilities=tts.TTSCapabilities(streaming=False, sample_rate=SAMPLE_RATE, num_channels=NUM_CHANNELS)
        )
        if not 0.25 <= speed <= 4.0:
            raise ValueError(f"speed must be between 0.25 and 4.0, got {speed}")
        self.model = model
        self.voice = voice
        self.speed = speed
        self.instructions = instructions
        self._client = Client("OpenAI TTS", api_key=api_key, base_url=base_url, timeout=timeout, retry=retry)

    def synthesize(self, text: str) -> ChunkedStream:
        return ChunkedStream(self, text)

    async def aclose(self) -> None:
        await self._client.aclose()


class ChunkedStream(tts.ChunkedStream):
    """The audio of one ``synthesize()`` call, in 40 ms frames as the body arrives."""

    def __init__(self, tts: TTS, text: str) -> None:
        self._tts = tts
        super().__init__(text)

    async def _run(self) -> None:
        t, client = self._tts, self._tts._client
        what = "OpenAI speech"
        extra: dict[str, Any] = {}
        if t.instructions:
            extra["instructions"] = t.instructions
        async with contextlib.AsyncExitStack() as stack:

            async def open_response() -> Any:
                # the request is retried until the answer starts; once audio flows it is not
                cm = t._client.sdk.audio.speech.with_streaming_response.create(
                    model=t.model,
                    voice=t.voice,
                    input=self.text,
                    speed=t.speed,
                    response_format="pcm",
                    **extra,
                )
                return await stack.enter_async_context(cm)

            response = await client.call(open_response, what)
            chunks = response.iter_bytes().__aiter__()
            # 40 ms frames: a quarter of the per-frame work of 10 ms ones down to the track
            bstream = AudioByteStream(SAMPLE_RATE, NUM_CHANNELS, FRAME_SAMPLES)
            pending: tts.SynthesizedAudio | None = None
            received = 0
            while True:
                try:
                    data = await asyncio.wait_for(chunks.__anext__(), client.retry.timeout)
                except StopAsyncIteration:
                    break
                except (openai.OpenAIError, httpx2.HTTPError, asyncio.TimeoutError) as exc:
                    err = client.error(exc, what)
                    if isinstance(err, APIConnectionError):
                        err.args = (f"{err.args[0]} after {received} bytes of audio; the audio is incomplete",)
                        err.message = err.args[0]
                    raise err from None
                received += len(data)
                for frame in bstream.write(data):
                    if pending is not None:
                        self._emit(pending)
                    pending = tts.SynthesizedAudio(frame, self.text)
            for frame in bstream.flush():
                if pending is not None:
                    self._emit(pending)
                pending = tts.SynthesizedAudio(frame, self.text)
            logger.debug("synthesized %d characters: %d bytes of audio", len(self.text), received)
            if pending is None:
                raise APIResponseError(f"{what}: OpenAI answered with no audio for {len(self.text)} characters of text")
            if pending is not None:
                pending.is_final = True
                self._emit(pending)
