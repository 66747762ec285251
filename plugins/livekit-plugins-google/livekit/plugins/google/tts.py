"""Google Cloud Text-to-Speech through the official ``google-cloud-texttospeech`` client.

``TextToSpeech.SynthesizeSpeech`` with LINEAR16 output at the rate asked. The service's
LINEAR16 audio carries a WAV header: it is stripped (and checked) before the PCM is cut
into frames.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Literal

from livekit import rtc

from google.cloud import texttospeech_v1 as texttospeech
from google.cloud.texttospeech_v1.services.text_to_speech.transports import TextToSpeechGrpcAsyncIOTransport
from livekit.agents import tts
from livekit.agents.exceptions import APIResponseError, AudioFormatError
from livekit.agents.utils.audio import AudioByteStream, resample
from livekit.agents.utils.retry import RetryOptions, with_retries

from ._common import ClientSource, map_error

SERVICE = "Google Text-to-Speech"
Gender = Literal["male", "female", "neutral"]


@dataclass
class _Options:
    language: str
    voice_name: str
    gender: Gender | None
    speaking_rate: float
    pitch: float
    volume_gain_db: float
    effects_profile_id: list[str]
    sample_rate: int
    retry: RetryOptions


class TTS(tts.TTS):
    """Google Cloud Text-to-Speech (not streaming: wrap it with
    ``livekit.agents.tts.StreamAdapter`` to push text).

    Args:
        language: BCP-47 code, e.g. ``en-US``.
        voice_name: e.g. ``en-US-Neural2-F``; empty lets the service choose.
        gender: ``male``, ``female`` or ``neutral`` (a preference for the voice).
        speaking_rate: 0.25 to 4.0 (1.0 is normal).
        pitch: -20.0 to 20.0 semitones.
        volume_gain_db: -96.0 to 16.0.
        effects_profile_id: audio profiles, e.g. ``["telephony-class-application"]``.
        sample_rate: the LINEAR16 rate asked; frames come out at this rate, mono.
        credentials / credentials_file / endpoint / insecure / transport: as for
            :class:`livekit.plugins.google.STT`.
        retry: attempts and backoff (``RetryInfo`` delays are honoured).

    Text that starts with ``<speak>`` is sent as SSML.
    """

    def __init__(
        self,
        *,
        language: str = "en-US",
        voice_name: str = "",
        gender: Gender | None = None,
        speaking_rate: float = 1.0,
        pitch: float = 0.0,
        volume_gain_db: float = 0.0,
        effects_profile_id: list[str] | None = None,
        sample_rate: int = 24000,
        credentials: Any = None,
        credentials_file: str | os.PathLike[str] | None = None,
        endpoint: str | None = None,
        insecure: bool = False,
        transport: TextToSpeechGrpcAsyncIOTransport | None = None,
        retry: RetryOptions | None = None,
    ) -> None:
        if insecure and not endpoint and transport is None:
            raise ValueError("insecure=True needs endpoint='host:port' (an emulator or test server)")
        if not 0.25 <= speaking_rate <= 4.0:
            raise ValueError(f"speaking_rate must be between 0.25 and 4.0, not {speaking_rate}")
        if gender is not None and gender not in ("male", "female", "neutral"):
            raise ValueError(f"gender must be 'male', 'female' or 'neutral', not {gender!r}")
        super().__init__(capabilities=tts.TTSCapabilities(streaming=False, sample_rate=sample_rate, num_channels=1))
        self._opts = _Options(
            language=language,
            voice_name=voice_name,
            gender=gender,
            speaking_rate=speaking_rate,
            pitch=pitch,
            volume_gain_db=volume_gain_db,
            effects_profile_id=list(effects_profile_id or []),
            sample_rate=sample_rate,
            retry=retry or RetryOptions(),
        )
        self._source = ClientSource(
            SERVICE,
            credentials=credentials,
            credentials_file=credentials_file,
            endpoint=endpoint,
            insecure=insecure,
            transport=transport,
        )

    def __repr__(self) -> str:
        return f"google.TTS(language={self._opts.language!r}, voice_name={self._opts.voice_name!r}, sample_rate={self.sample_rate})"

    def client(self) -> texttospeech.TextToSpeechAsyncClient:
        """The official async client (created on first use, in the running event loop)."""
        return self._source.client(texttospeech.TextToSpeechAsyncClient, TextToSpeechGrpcAsyncIOTransport)

    def request(self, text: str) -> texttospeech.SynthesizeSpeechRequest:
        o = self._opts
        is_ssml = text.lstrip().startswith("<speak")
        voice = texttospeech.VoiceSelectionParams(language_code=o.language, name=o.voice_name)
        if o.gender:
            voice.ssml_gender = texttospeech.SsmlVoiceGender[o.gender.upper()]
        return texttospeech.SynthesizeSpeechRequest(
            input=texttospeech.SynthesisInput(ssml=text) if is_ssml else texttospeech.SynthesisInput(text=text),
            voice=voice,
            audio_config=texttospeech.AudioConfig(
                audio_encoding=texttospeech.AudioEncoding.LINEAR16,
                sample_rate_hertz=o.sample_rate,
                speaking_rate=o.speaking_rate,
                pitch=o.pitch,
                volume_gain_db=o.volume_gain_db,
                effects_profile_id=o.effects_profile_id,
            ),
        )

    def synthesize(self, text: str) -> ChunkedStream:
        return ChunkedStream(self, text)

    async def list_voices(self, language: str | None = None) -> list[texttospeech.Voice]:
        """The voices the service offers (for ``language``, if given)."""
        client = self.client()

        async def attempt() -> list[texttospeech.Voice]:
            try:
                response = await client.list_voices(
                    request=texttospeech.ListVoicesRequest(language_code=language or ""),
                    retry=None,
                    timeout=self._opts.retry.timeout,
                )
            except Exception as exc:
                raise map_error(exc, SERVICE, "listing voices") from None
            return list(response.voices)

        return await with_retries(attempt, options=self._opts.retry, what=f"{SERVICE} voice list")

    async def aclose(self) -> None:
        await self._source.aclose()


class ChunkedStream(tts.ChunkedStream):
    """One ``SynthesizeSpeech`` call, cut into 20 ms frames."""

    def __init__(self, tts_: TTS, text: str) -> None:
        self._tts = tts_
        super().__init__(text)

    async def _run(self) -> None:
        opts = self._tts._opts
        request = self._tts.request(self.text)
        client = self._tts.client()

        async def attempt() -> bytes:
            try:
                response = await client.synthesize_speech(request=request, retry=None, timeout=opts.retry.timeout)
            except Exception as exc:
                raise map_error(exc, SERVICE, "synthesizing speech") from None
            if not isinstance(response, texttospeech.SynthesizeSpeechResponse):
                raise APIResponseError(f"{SERVICE} sent a malformed answer (not a SynthesizeSpeechResponse)")
            return response.audio_content

        audio = await with_retries(attempt, options=opts.retry, what=f"{SERVICE} synthesis")
        pcm, rate = _linear16(audio, opts.sample_rate)
        if rate != opts.sample_rate:
            frame = resample(rtc.AudioFrame(pcm, rate, 1, len(pcm) // 2), opts.sample_rate)
            pcm = bytes(frame.data)
        bs = AudioByteStream(opts.sample_rate, 1, opts.sample_rate // 50)
        frames = bs.write(pcm) + bs.flush()
        for i, frame in enumerate(frames):
            self._emit(tts.SynthesizedAudio(frame, self.text, i == len(frames) - 1, 0))


def _linear16(audio: bytes, asked_rate: int) -> tuple[bytes, int]:
    """The PCM of a LINEAR16 answer (WAV header stripped) and its rate."""
    from livekit.agents.utils.audio import strip_wav_header

    try:
        pcm, rate, channels = strip_wav_header(audio)
    except AudioFormatError as exc:
        raise APIResponseError(f"{SERVICE} sent a broken WAV header: {exc}") from None
    if channels not in (None, 1):
        raise APIResponseError(f"{SERVICE} sent {channels}-channel audio; expected mono LINEAR16")
    if not pcm:
        raise APIResponseError(f"{SERVICE} sent no audio")
    if len(pcm) % 2:
        raise APIResponseError(f"{SERVICE} sent {len(pcm)} bytes of LINEAR16, not whole 16-bit samples")
    return pcm, rate or asked_rate
