"""A loopback fake of OpenAI's audio endpoints, for tests and ``agents plugins check openai``.

:class:`FakeOpenAI` serves ``POST /v1/audio/transcriptions`` and ``POST /v1/audio/speech``
on 127.0.0.1 as the documented API does, errors included:

* it checks the ``Authorization: Bearer <key>`` header (401 otherwise), the required
  fields, the model, voice, speed and language values (400 with OpenAI's JSON error body),
  as the reference documents them per model: ``json`` is the only ``response_format`` of
  ``gpt-4o-transcribe`` / ``gpt-4o-mini-transcribe``; ``tts-1`` / ``tts-1-hd`` have
  fewer voices than ``gpt-4o-mini-tts`` and take no ``instructions``;
* transcription reads the uploaded WAV (format, rate, length) and "hears" what it can
  know: it finds the speech segments in the audio and answers with the text of the
  expected utterance of that length (see :meth:`FakeOpenAI.expect`) if the segment also
  sounds like it (spectral similarity, so corrupt samples are heard as nothing); audio of
  the wrong rate or format is heard as nothing;
* speech answers 24 kHz 16-bit mono PCM (voice-like tones, one per word), streamed in
  timed chunks;
* :meth:`FakeOpenAI.script` queues faults for the next requests: an HTTP status (401, 429
  with Retry-After, 5xx...), a truncated or malformed body, a stall.

Example::

    async with FakeOpenAI() as fake:
        fake.expect(sample)
        stt = openai.STT(api_key=fake.api_key, base_url=fake.base_url)
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import math
import wave
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from aiohttp import web

from livekit.agents.testing.conformance import STT_TEXT as CONFORMANCE_TEXT
from livekit.agents.testing.loopback import LoopbackService, retry_after_header
from livekit.agents.testing.speech import (
    SOUNDS_LIKE_THRESHOLD,
    Utterance,
    fitting_utterances,
    sounds_like,
    speech_segments,
    utterances_of,
)
from livekit.agents.utils.audio import pcm_wav

from ._fake_chat import ChatFault, ChatRequest, FakeChat, Reply, ToolCall  # noqa: F401  (POST /v1/chat/completions)
from .log import logger

TRANSCRIPTION_MODELS = ("whisper-1", "gpt-4o-transcribe", "gpt-4o-mini-transcribe")
SPEECH_MODELS = ("tts-1", "tts-1-hd", "gpt-4o-mini-tts")
VOICES = ("alloy", "ash", "ballad", "coral", "echo", "fable", "nova", "onyx", "sage", "shimmer", "verse")
TTS1_VOICES = ("alloy", "ash", "coral", "echo", "fable", "nova", "onyx", "sage", "shimmer")
"""The voices of ``tts-1`` and ``tts-1-hd`` (``ballad`` and ``verse`` are ``gpt-4o-mini-tts``'s only)."""
JSON_ONLY_MODELS = ("gpt-4o-transcribe", "gpt-4o-mini-transcribe")
"""Transcription models whose only ``response_format`` is ``json`` (OpenAI's API reference)."""
SPEECH_FORMATS = ("mp3", "opus", "aac", "flac", "wav", "pcm")
PCM_RATE = 24000


@dataclass
class Fault:
    """What the fake does to one request instead of answering normally."""

    kind: str  # "status" | "truncate" | "stall" | "malformed"
    status: int = 500
    retry_after: float | str | None = None
    message: str = ""
    after_bytes: int = 0
    seconds: float = 60.0

    @classmethod
    def http(cls, status: int, *, retry_after: float | str | None = None, message: str = "") -> Fault:
        return cls("status", status=status, retry_after=retry_after, message=message)

    @classmethod
    def truncate(cls, after_bytes: int = 0) -> Fault:
        """Declare the full length, send ``after_bytes`` of the body, then drop the connection."""
        return cls("truncate", after_bytes=after_bytes)

    @classmethod
    def stall(cls, after_bytes: int = 0, seconds: float = 60.0) -> Fault:
        """Send ``after_bytes`` of the body (0: not even the headers), then go silent."""
        return cls("stall", after_bytes=after_bytes, seconds=seconds)

    @classmethod
    def malformed(cls) -> Fault:
        """200 with a body that is not what the endpoint documents."""
        return cls("malformed")


@dataclass
class Request:
    """What the fake received (the key itself is not kept, only whether it matched)."""

    path: str
    auth_ok: bool
    auth_scheme: str
    fields: dict[str, Any] = field(default_factory=dict)
    wav_rate: int | None = None
    wav_channels: int | None = None
    wav_seconds: float | None = None
    answered: int = 0


class FakeOpenAI(LoopbackService):
    """OpenAI's audio endpoints on a free loopback port."""

    max_body = 26 * 1024 * 1024

    def __init__(self, *, api_key: str = "sk-fake-0123456789abcdef", chunk_bytes: int = 4800, chunk_interval: float = 0.005) -> None:
        super().__init__()
        self.api_key = api_key
        self.chunk_bytes = chunk_bytes
        """Bytes per body chunk of the speech endpoint (4800 = 100 ms of PCM)."""
        self.chunk_interval = chunk_interval
        self.hold: asyncio.Event | None = None
        """If set, speech bodies pause after their first chunk until the event is set."""
        self.bodies_finished = 0
        self.requests: list[Request] = []
        self.utterances: list[tuple[str, float]] = []
        self.references: list[Utterance] = []
        self.similarities: list[float] = []
        """The :func:`~livekit.agents.testing.speech.sounds_like` score of each utterance
        heard against the expected utterance of its length that it sounds most like; below
        the threshold it is not heard."""
        self._faults: list[Fault] = []
        self.chat = FakeChat(lambda: self.api_key, self.closing)
        """The chat completions endpoint: ``fake.chat.script(...)``, ``fake.chat.requests``."""

    # --- control ----------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def expect(self, sample: Any) -> None:
        """Make the fake able to "hear" the utterances of a SpeechSample (``.pcm``,
        ``.sample_rate``, ``.utterances``): it learns the length and the sound of each."""
        for u in utterances_of(sample):
            self.references.append(u)
            self.utterances.append((u.text, u.seconds))

    def script(self, *faults: Fault) -> None:
        """Apply these faults, in order, to the next requests."""
        self._faults.extend(faults)

    def hear(self, pcm: bytes, rate: int) -> str:
        """The text the fake understands in this audio (logged with what it compared, so a
        test that got no transcript says why)."""
        words, seen = [], []
        for s, e in speech_segments(pcm, rate):
            heard = pcm[int(s * rate) * 2 : int(e * rate) * 2]
            candidates = [self.references[i] for i in fitting_utterances(e - s, self.utterances)]
            scored = [(sounds_like(heard, rate, ref.pcm, ref.sample_rate), ref) for ref in candidates]
            if not scored:
                seen.append(f"{s:.2f}-{e:.2f} s: no utterance of this length")
                continue
            score, ref = max(scored, key=lambda sr: sr[0])
            self.similarities.append(score)
            seen.append(f"{s:.2f}-{e:.2f} s: {ref.text!r} scores {score:.2f}")
            if score >= SOUNDS_LIKE_THRESHOLD:
                words.append(ref.text)
        text = " ".join(words)
        logger.info("fake STT heard %r in %.2f s of audio (%s)", text, len(pcm) / 2 / rate, "; ".join(seen) or "no speech")
        return text

    # --- lifecycle ----------------------------------------------------------------------

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/audio/transcriptions", self._transcriptions)
        app.router.add_post("/v1/audio/speech", self._speech)
        self.chat.routes(app)

    async def aclose(self) -> None:
        if self.hold is not None:
            self.hold.set()
        await super().aclose()

    # --- helpers ------------------------------------------------------------------------

    async def _sleep(self, seconds: float) -> None:
        """Stall for ``seconds``, or until the fake is closed."""
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.closing.wait(), seconds)

    @staticmethod
    def _error(status: int, message: str, *, type_: str = "invalid_request_error", param: str | None = None, code: str | None = None, headers: dict[str, str] | None = None) -> web.Response:
        body = {"error": {"message": message, "type": type_, "param": param, "code": code}}
        return web.json_response(body, status=status, headers=headers)

    def _auth(self, request: web.Request) -> tuple[Request, web.Response | None]:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        rec = Request(request.path, auth_ok=scheme == "Bearer" and token == self.api_key, auth_scheme=scheme)
        self.requests.append(rec)
        if not header:
            return rec, self._error(401, "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).")
        if not rec.auth_ok:
            # like the real service, echo a masked form of the wrong key (the plugin must redact it)
            masked = token[:8] + "*" * 8 + token[-4:] if len(token) > 12 else token
            return rec, self._error(401, f"Incorrect API key provided: {masked}. You can find your API key at https://platform.openai.com/account/api-keys.", code="invalid_api_key")
        return rec, None

    async def _fault(self, request: web.Request, body: bytes, content_type: str) -> web.StreamResponse | None:
        if not self._faults:
            return None
        fault = self._faults.pop(0)
        if fault.kind == "status":
            headers = {}
            if fault.retry_after is not None:
                headers["Retry-After"] = retry_after_header(fault.retry_after)
            messages = {
                401: "Incorrect API key provided.",
                403: "You are not allowed to sample from this model",
                429: "Rate limit reached for requests",
                500: "The server had an error while processing your request. Sorry about that!",
                503: "The engine is currently overloaded, please try again later",
            }
            type_ = {429: "requests", 500: "server_error", 503: "server_error"}.get(fault.status, "invalid_request_error")
            return self._error(fault.status, fault.message or messages.get(fault.status, "error"), type_=type_, headers=headers)
        if fault.kind == "malformed":
            return web.Response(body=b'{"text": "the answer stops her', content_type="application/json")
        if fault.kind == "stall" and fault.after_bytes == 0:
            await self._sleep(fault.seconds)
            return web.Response(status=504)
        resp = web.StreamResponse(headers={"Content-Type": content_type})
        resp.content_length = len(body)
        await resp.prepare(request)
        await resp.write(body[: fault.after_bytes])
        if fault.kind == "stall":
            await self._sleep(fault.seconds)
        assert request.transport is not None
        request.transport.close()
        return resp

    # --- endpoints ----------------------------------------------------------------------

    async def _transcriptions(self, request: web.Request) -> web.StreamResponse:
        rec, denied = self._auth(request)
        if denied is not None:
            return denied
        if not request.content_type.startswith("multipart/form-data"):
            return self._error(400, "Could not parse multipart form")
        fields: dict[str, Any] = {}
        wav: bytes | None = None
        reader = await request.multipart()
        async for part in reader:
            if part.name == "file":
                wav = await part.read()  # type: ignore[union-attr]
                fields["filename"] = part.filename  # type: ignore[union-attr]
            elif part.name:
                fields[part.name] = (await part.text())  # type: ignore[union-attr]
        rec.fields = fields
        if wav is None:
            return self._error(400, "you must provide a file", param="file")
        model = fields.get("model")
        if not model:
            return self._error(400, "you must provide a model parameter", param="model")
        if model not in TRANSCRIPTION_MODELS:
            return self._error(400, f"invalid model ID '{model}'", param="model", code="model_not_found")
        lang = fields.get("language")
        if lang is not None and not (len(lang) == 2 and lang.isalpha() and lang.islower()):
            return self._error(400, f"Invalid language '{lang}'. Language parameter must be specified in ISO-639-1 format.", param="language")
        fmt = fields.get("response_format", "json")
        if fmt not in ("json", "text", "verbose_json", "srt", "vtt"):
            return self._error(400, f"'{fmt}' is not one of ['json', 'text', 'srt', 'verbose_json', 'vtt'] - 'response_format'", param="response_format")
        if model in JSON_ONLY_MODELS and fmt != "json":
            return self._error(400, f"response_format '{fmt}' is not compatible with model '{model}'. Use 'json'.", param="response_format", code="unsupported_value")
        try:
            with wave.open(io.BytesIO(wav), "rb") as w:
                if w.getcomptype() != "NONE" or w.getsampwidth() != 2:
                    raise wave.Error("not 16-bit PCM")
                rate, channels = w.getframerate(), w.getnchannels()
                pcm = w.readframes(w.getnframes())
        except (wave.Error, EOFError) as exc:
            return self._error(400, f"Invalid file format ({exc}). Supported formats: ['flac', 'm4a', 'mp3', 'mp4', 'mpeg', 'mpga', 'oga', 'ogg', 'wav', 'webm']", param="file")
        seconds = len(pcm) / (2 * channels * rate)
        rec.wav_rate, rec.wav_channels, rec.wav_seconds = rate, channels, seconds
        if seconds < 0.1:
            return self._error(400, "Audio file is too short. Minimum audio length is 0.1 seconds.", param="file", code="audio_too_short")
        mono = np.frombuffer(pcm, dtype=np.int16).reshape(-1, channels).mean(axis=1).astype(np.int16).tobytes()
        text = self.hear(mono, rate)
        if fmt == "text":
            body, ctype = (text + "\n").encode(), "text/plain"
        elif fmt == "verbose_json":
            body = json.dumps({"task": "transcribe", "language": "english", "duration": seconds, "text": text, "segments": []}).encode()
            ctype = "application/json"
        else:
            body, ctype = json.dumps({"text": text}).encode(), "application/json"
        faulted = await self._fault(request, body, ctype)
        if faulted is not None:
            return faulted
        rec.answered = 200
        return web.Response(body=body, content_type=ctype.split(";")[0])

    async def _speech(self, request: web.Request) -> web.StreamResponse:
        rec, denied = self._auth(request)
        if denied is not None:
            return denied
        try:
            params = await request.json()
            assert isinstance(params, dict)
        except (ValueError, AssertionError):
            return self._error(400, "We could not parse the JSON body of your request.")
        rec.fields = dict(params)
        for name in ("model", "input", "voice"):
            if name not in params:
                return self._error(400, f"Missing required parameter: '{name}'.", param=name)
        if params["model"] not in SPEECH_MODELS:
            return self._error(400, f"invalid model ID '{params['model']}'", param="model", code="model_not_found")
        if params["voice"] not in VOICES:
            return self._error(400, f"Invalid value: '{params['voice']}'. Supported values are: {', '.join(VOICES)}.", param="voice")
        if params["model"] in ("tts-1", "tts-1-hd") and params["voice"] not in TTS1_VOICES:
            return self._error(400, f"Voice '{params['voice']}' is not available for model '{params['model']}'. Supported values are: {', '.join(TTS1_VOICES)}.", param="voice")
        if params["model"] in ("tts-1", "tts-1-hd") and params.get("instructions"):
            return self._error(400, f"instructions are not supported by model '{params['model']}'; use gpt-4o-mini-tts.", param="instructions")
        text = params["input"]
        if not isinstance(text, str) or not text.strip():
            return self._error(400, "Invalid 'input': empty string.", param="input")
        if len(text) > 4096:
            return self._error(400, f"Invalid 'input': string too long. Expected a string with maximum length 4096, but got a string with length {len(text)} instead.", param="input")
        speed = params.get("speed", 1.0)
        if not isinstance(speed, (int, float)) or not 0.25 <= speed <= 4.0:
            return self._error(400, f"Invalid 'speed': {speed}. Expected a value between 0.25 and 4.0.", param="speed")
        fmt = params.get("response_format", "mp3")
        if fmt not in SPEECH_FORMATS:
            return self._error(400, f"Invalid value: '{fmt}'. Supported values are: {', '.join(SPEECH_FORMATS)}.", param="response_format")
        if fmt not in ("pcm", "wav"):
            return self._error(400, f"this fake renders only 'pcm' and 'wav', not '{fmt}'", param="response_format")
        pcm = speak(text, float(speed))
        body = pcm if fmt == "pcm" else pcm_wav(pcm, PCM_RATE)
        ctype = "audio/pcm" if fmt == "pcm" else "audio/wav"
        faulted = await self._fault(request, body, ctype)
        if faulted is not None:
            return faulted
        resp = web.StreamResponse(headers={"Content-Type": ctype})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        for i in range(0, len(body), self.chunk_bytes):
            await resp.write(body[i : i + self.chunk_bytes])
            if i == 0 and self.hold is not None:
                await self.hold.wait()
            await asyncio.sleep(self.chunk_interval)
        await resp.write_eof()
        rec.answered = 200
        self.bodies_finished += 1
        return resp


def speak(text: str, speed: float = 1.0, rate: int = PCM_RATE) -> bytes:
    """Voice-like audio for ``text``: one harmonic tone per word, its length growing with
    the word's, separated by short pauses; 16-bit mono PCM."""
    words = text.split()
    out = [np.zeros(int(0.05 * rate), dtype=np.float64)]
    for i, word in enumerate(words):
        seconds = (0.15 + 0.05 * len(word)) / speed
        t = np.arange(int(seconds * rate)) / rate
        f0 = 110 + 15 * (i % 5)
        tone = sum(np.sin(2 * math.pi * f0 * k * t) / k for k in range(1, 6))
        env = np.sin(math.pi * t / seconds) ** 0.5
        out.append(6000 * tone * env)
        out.append(np.zeros(int(0.08 / speed * rate)))
    out.append(np.zeros(int(0.05 * rate)))
    return np.clip(np.concatenate(out), -32767, 32767).astype("<i2").tobytes()




@contextlib.asynccontextmanager
async def conformance_environment() -> AsyncIterator[dict[str, dict[str, Any]]]:
    """Start a :class:`FakeOpenAI` that can hear the conformance check's sentence, and
    yield the options that point the ``openai`` STT and TTS at it."""
    from livekit.agents.testing.speech import speech

    async with FakeOpenAI() as fake:
        fake.expect(speech(CONFORMANCE_TEXT))
        options = {"api_key": fake.api_key, "base_url": fake.base_url}
        yield {"stt:openai": dict(options), "tts:openai": dict(options), "llm:openai": dict(options)}


if __name__ == "__main__":  # python -m livekit.plugins.openai.testing --port N
    from .standalone import main

    raise SystemExit(main())
