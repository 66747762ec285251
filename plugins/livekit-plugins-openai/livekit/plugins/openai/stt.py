"""Speech-to-text with OpenAI's audio transcription endpoint (``POST /audio/transcriptions``)."""

from __future__ import annotations

from livekit.agents import stt
from livekit.agents.exceptions import APIResponseError
from livekit.agents.utils.audio import AudioBuffer, merge_frames, to_mono, wav_bytes
from livekit.agents.utils.retry import RetryOptions

from ._client import Client
from .log import logger


class STT(stt.STT):
    """Transcribes a buffer of speech (sent as a WAV file) with Whisper.

    It does not stream by itself; for a stream, cut the audio into utterances with a VAD::

        from livekit.agents.stt import StreamAdapter
        stream = StreamAdapter(stt=openai.STT(), vad=silero.VAD()).stream()

    Args:
        model: transcription model (``whisper-1``, ``gpt-4o-transcribe``, ...).
        language: ISO-639-1 code of the spoken language (``"en"``); ``None`` lets the
            model detect it.
        prompt: text that guides the model's style or vocabulary.
        api_key: defaults to ``OPENAI_API_KEY``.
        base_url: defaults to ``OPENAI_BASE_URL``, else ``https://api.openai.com/v1``.
        timeout: seconds one attempt may take.
        retry: retry policy for 429, 5xx and connection errors (Retry-After is honoured).
    """

    def __init__(
        self,
        *,
        model: str = "whisper-1",
        language: str | None = "en",
        prompt: str | None = None,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float | None = None,
        retry: RetryOptions | None = None,
    ) -> None:
        super().__init__(capabilities=stt.STTCapabilities(streaming=False, interim_results=False))
        self.model = model
        self.language = language
        self.prompt = prompt
        self._client = Client("OpenAI STT", api_key=api_key, base_url=base_url, timeout=timeout, retry=retry)

    async def recognize(self, buffer: AudioBuffer, *, language: str | None = None) -> stt.SpeechEvent:
        frame = to_mono(merge_frames(buffer))
        wav = wav_bytes(frame)
        lang = language or self.language
        extra: dict[str, object] = {}
        if lang:
            extra["language"] = lang
        if self.prompt:
            extra["prompt"] = self.prompt

        async def transcribe() -> object:
            return await self._client.sdk.audio.transcriptions.create(
                file=("speech.wav", wav, "audio/wav"),
                model=self.model,
                response_format="json",
                **extra,  # type: ignore[arg-type]
            )

        result = await self._client.call(transcribe, "OpenAI transcription")
        text = getattr(result, "text", None)
        if not isinstance(text, str):
            raise APIResponseError(
                f"OpenAI transcription: the answer has no text field: {str(result)[:200]!r}"
            )
        logger.debug("transcribed %.2f s of audio: %d characters", frame.samples_per_channel / frame.sample_rate, len(text))
        duration = frame.samples_per_channel / frame.sample_rate
        return stt.SpeechEvent(
            type=stt.SpeechEventType.FINAL_TRANSCRIPT,
            alternatives=[stt.SpeechData(text=text.strip(), language=lang or "", end_time=duration)],
        )

    async def aclose(self) -> None:
        await self._client.aclose()
