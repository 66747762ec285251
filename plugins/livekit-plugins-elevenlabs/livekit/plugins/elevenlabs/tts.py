"""ElevenLabs text-to-speech over its documented HTTP and websocket APIs.

* ``synthesize(text)``: ``POST /v1/text-to-speech/{voice_id}/stream?output_format=pcm_<rate>``;
  audio frames are emitted as the response's bytes arrive.
* ``stream()``: the stream-input websocket
  ``/v1/text-to-speech/{voice_id}/stream-input?model_id=...&output_format=pcm_<rate>``;
  text pushed in pieces is sent as it comes, one websocket per segment (text up to a
  ``flush()``), and the audio chunks (base64 PCM with character alignment) become frames.
* ``list_voices()``: ``GET /v1/voices``.

The API key goes in the ``xi-api-key`` header, never in URLs, messages or logs.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
from dataclasses import asdict, dataclass, field
from typing import Any

import aiohttp
from livekit import rtc

from livekit.agents import tts
from livekit.agents.exceptions import (
    APIAuthenticationError,
    APIConnectionError,
    APIError,
    APIResponseError,
    APIStatusError,
    APITimeoutError,
    MissingCredentialsError,
)
from livekit.agents.utils.audio import AudioByteStream
from livekit.agents.utils.retry import RetryOptions, parse_retry_after, with_retries
from livekit.agents.utils.streams import Flush

DEFAULT_BASE_URL = "https://api.elevenlabs.io"
DEFAULT_VOICE_ID = "EXAVITQu4vr4xnSDxMaL"  # "Sarah", a premade voice every account has
DEFAULT_MODEL = "eleven_turbo_v2_5"
API_KEY_ENV_VARS = ("ELEVENLABS_API_KEY", "ELEVEN_API_KEY")
PCM_SAMPLE_RATES = (8000, 16000, 22050, 24000, 44100, 48000)
"""The rates of ElevenLabs' ``pcm_<rate>`` output formats (44.1 and 48 kHz need a paid tier)."""

_SENTENCE_END = re.compile(r"[.!?\u3002\uff01\uff1f\u2026][\"')\]\u201d\u2019]*\s*$")


@dataclass
class VoiceSettings:
    """ElevenLabs ``voice_settings``: stability and similarity_boost are required, 0 to 1."""

    stability: float = 0.5
    similarity_boost: float = 0.75
    style: float | None = None
    use_speaker_boost: bool | None = None
    speed: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass
class Voice:
    """A voice of ``GET /v1/voices``."""

    voice_id: str
    name: str
    category: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    settings: VoiceSettings | None = None


@dataclass
class Alignment:
    """Character timing of an audio chunk, as the stream-input websocket sends it
    (``alignment`` for the text as sent, ``normalizedAlignment`` for the text as spoken).
    Times are milliseconds from the start of the chunk."""

    chars: list[str]
    char_start_times_ms: list[int]
    chars_durations_ms: list[int]

    @property
    def text(self) -> str:
        return "".join(self.chars)

    @classmethod
    def from_json(cls, data: Any) -> Alignment | None:
        if not isinstance(data, dict):
            return None
        try:
            return cls(
                chars=[str(c) for c in data.get("chars") or []],
                char_start_times_ms=[int(t) for t in data.get("charStartTimesMs") or []],
                chars_durations_ms=[int(t) for t in data.get("charsDurationMs") or data.get("charDurationsMs") or []],
            )
        except (TypeError, ValueError):
            return None


@dataclass
class ElevenLabsAudio(tts.SynthesizedAudio):
    """A frame of speech from the stream-input websocket. The first frame cut from each
    audio chunk carries that chunk's alignment data, when the service sent it."""

    alignment: Alignment | None = None
    normalized_alignment: Alignment | None = None


@dataclass
class _Options:
    api_key: str
    base_url: str
    voice_id: str
    model: str
    voice_settings: VoiceSettings | None
    sample_rate: int
    language: str | None
    chunk_length_schedule: list[int] | None
    flush_on_sentence_end: bool
    retry: RetryOptions
    connect_timeout: float
    read_timeout: float


def _resolve_key(api_key: str | None) -> str:
    if api_key:
        return api_key
    for var in API_KEY_ENV_VARS:
        value = os.environ.get(var)
        if value:
            return value
    raise MissingCredentialsError("ElevenLabs", API_KEY_ENV_VARS)


def _normalize_base_url(url: str) -> str:
    url = url.rstrip("/")
    if url.endswith("/v1"):
        url = url[: -len("/v1")]
    return url


class TTS(tts.TTS):
    """ElevenLabs text-to-speech.

    Args:
        voice_id: the voice (see :meth:`list_voices`).
        model: the model id, e.g. ``eleven_turbo_v2_5``, ``eleven_flash_v2_5``,
            ``eleven_multilingual_v2``.
        voice_settings: stability, similarity boost, style, speaker boost, speed.
        sample_rate: the PCM rate asked of the service (``pcm_<rate>``), one of
            :data:`PCM_SAMPLE_RATES`; frames come out at this rate.
        language: ISO 639-1 code for models that accept ``language_code``.
        api_key: defaults to ``ELEVENLABS_API_KEY``, then ``ELEVEN_API_KEY``.
        base_url: the API's origin (``https://api.elevenlabs.io``; a trailing ``/v1`` is
            accepted); websockets use the same host with ``ws``/``wss``.
        chunk_length_schedule: the websocket's ``generation_config.chunk_length_schedule``.
        flush_on_sentence_end: on the websocket, a pushed piece that ends a sentence is
            sent with ``flush: true`` so the service speaks it at once instead of waiting
            for more text (low latency with a sentence tokenizer).
        retry: how failed requests are retried (only before any audio was emitted).
        connect_timeout / read_timeout: seconds to connect, and to wait for more audio.
        http_session: an ``aiohttp.ClientSession`` to use (else one is created and closed
            by :meth:`aclose`).
    """

    def __init__(
        self,
        *,
        voice_id: str = DEFAULT_VOICE_ID,
        model: str = DEFAULT_MODEL,
        voice_settings: VoiceSettings | dict[str, Any] | None = None,
        sample_rate: int = 24000,
        language: str | None = None,
        api_key: str | None = None,
        base_url: str | None = None,
        chunk_length_schedule: list[int] | None = None,
        flush_on_sentence_end: bool = True,
        retry: RetryOptions | None = None,
        connect_timeout: float = 10.0,
        read_timeout: float = 10.0,
        http_session: aiohttp.ClientSession | None = None,
    ) -> None:
        if sample_rate not in PCM_SAMPLE_RATES:
            raise ValueError(
                f"ElevenLabs has no pcm_{sample_rate} output; use one of "
                f"{', '.join(map(str, PCM_SAMPLE_RATES))} Hz"
            )
        if isinstance(voice_settings, dict):
            voice_settings = VoiceSettings(**voice_settings)
        super().__init__(capabilities=tts.TTSCapabilities(streaming=True, sample_rate=sample_rate, num_channels=1))
        self._opts = _Options(
            api_key=_resolve_key(api_key),
            base_url=_normalize_base_url(base_url or DEFAULT_BASE_URL),
            voice_id=voice_id,
            model=model,
            voice_settings=voice_settings,
            sample_rate=sample_rate,
            language=language,
            chunk_length_schedule=chunk_length_schedule,
            flush_on_sentence_end=flush_on_sentence_end,
            retry=retry or RetryOptions(),
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
        )
        self._session = http_session
        self._own_session = http_session is None

    def __repr__(self) -> str:  # never shows the key
        return f"elevenlabs.TTS(voice_id={self._opts.voice_id!r}, model={self._opts.model!r}, sample_rate={self.sample_rate})"

    @property
    def voice_id(self) -> str:
        return self._opts.voice_id

    @property
    def model(self) -> str:
        return self._opts.model

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
            self._own_session = True
        return self._session

    def _headers(self) -> dict[str, str]:
        return {"xi-api-key": self._opts.api_key}

    def synthesize(self, text: str) -> ChunkedStream:
        """Speak ``text`` over HTTP streaming; frames arrive as the service sends bytes."""
        return ChunkedStream(self, text)

    def stream(self) -> SynthesizeStream:
        """Push text in pieces; spoken over the stream-input websocket with low latency."""
        return SynthesizeStream(self)

    async def list_voices(self) -> list[Voice]:
        """The voices of the account (``GET /v1/voices``)."""

        async def attempt() -> list[Voice]:
            try:
                async with self._http().get(
                    f"{self._opts.base_url}/v1/voices",
                    headers=self._headers(),
                    timeout=aiohttp.ClientTimeout(total=self._opts.retry.timeout, sock_connect=self._opts.connect_timeout),
                ) as resp:
                    await _raise_for_status(resp, "listing voices")
                    try:
                        data = await resp.json(content_type=None)
                        return [_voice(v) for v in data["voices"]]
                    except (ValueError, KeyError, TypeError) as exc:
                        raise APIResponseError(f"ElevenLabs sent a malformed voice list: {exc}") from None
            except asyncio.TimeoutError:
                raise APITimeoutError("ElevenLabs did not answer the voice list in time") from None
            except aiohttp.ClientError as exc:
                raise APIConnectionError(f"cannot reach ElevenLabs at {self._opts.base_url}: {exc}") from None

        return await with_retries(attempt, options=self._opts.retry, what="ElevenLabs voice list")

    async def aclose(self) -> None:
        if self._own_session and self._session is not None:
            await self._session.close()
        self._session = None


def _voice(v: dict[str, Any]) -> Voice:
    settings = v.get("settings")
    vs = None
    if isinstance(settings, dict) and "stability" in settings:
        vs = VoiceSettings(**{k: settings[k] for k in ("stability", "similarity_boost", "style", "use_speaker_boost", "speed") if k in settings})
    return Voice(
        voice_id=v["voice_id"],
        name=v.get("name", ""),
        category=v.get("category") or "",
        labels=dict(v.get("labels") or {}),
        settings=vs,
    )


def _detail(body: str) -> str:
    """The message of an ElevenLabs error body (``{"detail": {"status", "message"}}``)."""
    try:
        data = json.loads(body)
    except ValueError:
        return body.strip()[:300] or "no details"
    detail = data.get("detail", data) if isinstance(data, dict) else data
    if isinstance(detail, dict):
        msg = detail.get("message") or detail.get("status") or json.dumps(detail)
        status = detail.get("status")
        return f"{status}: {msg}" if status and status != msg else str(msg)
    if isinstance(detail, list):  # validation errors
        return "; ".join(str(d.get("msg", d)) if isinstance(d, dict) else str(d) for d in detail)[:300]
    return str(detail)[:300]


async def _raise_for_status(resp: aiohttp.ClientResponse, what: str) -> None:
    if resp.status < 400:
        return
    try:
        body = await resp.text()
    except (aiohttp.ClientError, asyncio.TimeoutError):
        body = ""
    detail = _detail(body)
    request_id = resp.headers.get("request-id") or resp.headers.get("x-request-id")
    if resp.status in (401, 403):
        raise APIAuthenticationError(
            f"ElevenLabs refused the API key while {what} (HTTP {resp.status}: {detail}); "
            f"check ELEVENLABS_API_KEY (or ELEVEN_API_KEY) or the api_key= argument",
            status_code=resp.status,
            request_id=request_id,
        )
    raise APIStatusError(
        f"ElevenLabs failed while {what}: HTTP {resp.status}: {detail}",
        status_code=resp.status,
        request_id=request_id,
        body=body[:1000],
        retry_after=parse_retry_after(resp.headers.get("Retry-After")),
    )


class _FrameEmitter:
    """Cuts PCM into 20 ms frames and emits them, holding back the last one so that it can
    be marked final."""

    def __init__(self, emit: Any, sample_rate: int, text: str, segment_id: int) -> None:
        self._emit = emit
        self._bytes = AudioByteStream(sample_rate, 1, sample_rate // 50)
        self._pending: tts.SynthesizedAudio | None = None
        self._text = text
        self._segment_id = segment_id
        self._extra: dict[str, Any] | None = None
        self.emitted = 0
        self.received = 0

    def write(self, data: bytes, **extra: Any) -> None:
        """Add PCM bytes; ``extra`` (alignment) goes on the first frame cut from them."""
        self.received += len(data)
        if extra:
            self._extra = extra
        for frame in self._bytes.write(data):
            self._push(frame)

    def _push(self, frame: rtc.AudioFrame) -> None:
        if self._pending is not None:
            self._emit(self._pending)
            self.emitted += 1
        extra, self._extra = self._extra, None
        if extra:
            text = extra.pop("text", self._text)
            self._pending = ElevenLabsAudio(frame, text, False, self._segment_id, **extra)
        else:
            self._pending = tts.SynthesizedAudio(frame, self._text, False, self._segment_id)

    def finish(self) -> None:
        for frame in self._bytes.flush():
            self._push(frame)
        if self._pending is not None:
            self._pending.is_final = True
            self._emit(self._pending)
            self.emitted += 1
            self._pending = None


class ChunkedStream(tts.ChunkedStream):
    """One ``synthesize()`` call over ``POST .../stream``."""

    def __init__(self, tts_: TTS, text: str) -> None:
        self._tts = tts_
        super().__init__(text)

    async def _run(self) -> None:
        opts = self._tts._opts
        emitter = _FrameEmitter(self._emit, opts.sample_rate, self.text, 0)
        body: dict[str, Any] = {"text": self.text, "model_id": opts.model}
        if opts.voice_settings is not None:
            body["voice_settings"] = opts.voice_settings.to_json()
        if opts.language:
            body["language_code"] = opts.language
        url = f"{opts.base_url}/v1/text-to-speech/{opts.voice_id}/stream"
        params = {"output_format": f"pcm_{opts.sample_rate}"}

        async def attempt() -> None:
            try:
                async with self._tts._http().post(
                    url,
                    params=params,
                    headers={**self._tts._headers(), "Accept": "audio/pcm"},
                    json=body,
                    timeout=aiohttp.ClientTimeout(
                        total=None, sock_connect=opts.connect_timeout, sock_read=opts.read_timeout
                    ),
                ) as resp:
                    await _raise_for_status(resp, "synthesizing speech")
                    ctype = resp.headers.get("Content-Type", "")
                    if ctype.startswith(("application/json", "text/")):
                        raise APIResponseError(
                            f"ElevenLabs answered with {ctype} instead of audio: {(await resp.text())[:200]!r}"
                        )
                    async for chunk in resp.content.iter_any():
                        emitter.write(chunk)
                    if emitter.received % 2:
                        raise APIResponseError(
                            f"ElevenLabs sent {emitter.received} bytes, not whole 16-bit samples; the audio is truncated"
                        )
                    if emitter.received == 0:
                        raise APIResponseError("ElevenLabs sent no audio")
            except APIError as exc:
                if emitter.received:
                    exc.retryable = False  # audio went out: a retry would repeat it
                raise
            except asyncio.TimeoutError:
                raise APITimeoutError(
                    f"ElevenLabs stopped sending audio for {opts.read_timeout:.0f} s",
                    retryable=emitter.received == 0,
                ) from None
            except aiohttp.ClientPayloadError as exc:
                raise APIConnectionError(
                    f"ElevenLabs' audio response was cut off after {emitter.received} bytes: {exc}",
                    retryable=emitter.received == 0,
                ) from None
            except aiohttp.ClientError as exc:
                raise APIConnectionError(
                    f"cannot reach ElevenLabs at {opts.base_url}: {exc}", retryable=emitter.received == 0
                ) from None

        await with_retries(attempt, options=opts.retry, what="ElevenLabs synthesis")
        emitter.finish()


class SynthesizeStream(tts.SynthesizeStream):
    """Streaming synthesis over the stream-input websocket, one connection per segment."""

    def __init__(self, tts_: TTS) -> None:
        self._tts = tts_
        super().__init__()

    async def _run(self) -> None:
        segment: _Segment | None = None
        segment_id = 0
        inputs = self._input().__aiter__()
        try:
            while True:
                nxt = asyncio.ensure_future(inputs.__anext__())
                waiting: set[asyncio.Future[Any]] = {nxt}
                if segment is not None:
                    waiting.add(segment.task)
                await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                if segment is not None and segment.task.done() and not nxt.done():
                    nxt.cancel()
                    segment.task.result()  # raises the segment's error
                    raise APIConnectionError("ElevenLabs closed the websocket before the end of the text")
                try:
                    item = nxt.result()
                except StopAsyncIteration:
                    break
                if isinstance(item, Flush):
                    if segment is not None:
                        await segment.finish()
                        segment = None
                        segment_id += 1
                    continue
                if not item:
                    continue
                if segment is None:
                    segment = _Segment(self, segment_id)
                segment.push(item)
            if segment is not None:
                await segment.finish()
                segment = None
        finally:
            if segment is not None:
                await segment.aclose()


class _Segment:
    """The text up to a flush, spoken over one stream-input websocket."""

    def __init__(self, stream: SynthesizeStream, segment_id: int) -> None:
        self._tts = stream._tts
        self._opts = stream._tts._opts
        self._queue: asyncio.Queue[str | None] = asyncio.Queue()
        self._sent: list[dict[str, Any]] = []
        self._pending = ""
        self._eos = False
        self._emitter = _FrameEmitter(stream._emit, self._opts.sample_rate, "", segment_id)
        self.task = asyncio.ensure_future(self._main())

    def push(self, text: str) -> None:
        self._queue.put_nowait(text)

    async def finish(self) -> None:
        self._queue.put_nowait(None)
        await self.task

    async def aclose(self) -> None:
        self.task.cancel()
        try:
            await self.task
        except (asyncio.CancelledError, Exception):
            pass

    def _url(self) -> str:
        base = self._opts.base_url
        ws = "wss://" + base[len("https://") :] if base.startswith("https://") else "ws://" + base.split("://", 1)[-1]
        return f"{ws}/v1/text-to-speech/{self._opts.voice_id}/stream-input"

    def _init_message(self) -> dict[str, Any]:
        msg: dict[str, Any] = {"text": " "}
        if self._opts.voice_settings is not None:
            msg["voice_settings"] = self._opts.voice_settings.to_json()
        if self._opts.chunk_length_schedule:
            msg["generation_config"] = {"chunk_length_schedule": list(self._opts.chunk_length_schedule)}
        return msg

    def _text_message(self, text: str) -> dict[str, Any]:
        msg: dict[str, Any] = {"text": text}
        if self._opts.flush_on_sentence_end and _SENTENCE_END.search(text):
            msg["flush"] = True
        return msg

    async def _main(self) -> None:
        await with_retries(self._attempt, options=self._opts.retry, what="ElevenLabs stream-input")
        self._emitter.finish()

    async def _attempt(self) -> None:
        opts = self._opts
        params = {"model_id": opts.model, "output_format": f"pcm_{opts.sample_rate}"}
        if opts.language:
            params["language_code"] = opts.language
        try:
            try:
                ws = await asyncio.wait_for(
                    self._tts._http().ws_connect(self._url(), params=params, headers=self._tts._headers(), autoping=True),
                    opts.connect_timeout,
                )
            except aiohttp.WSServerHandshakeError as exc:
                if exc.status in (401, 403):
                    raise APIAuthenticationError(
                        f"ElevenLabs refused the API key on the stream-input websocket (HTTP {exc.status}); "
                        f"check ELEVENLABS_API_KEY (or ELEVEN_API_KEY) or the api_key= argument",
                        status_code=exc.status,
                    ) from None
                retry_after = parse_retry_after(exc.headers.get("Retry-After")) if exc.headers else None
                raise APIStatusError(
                    f"ElevenLabs refused the stream-input websocket: HTTP {exc.status} {exc.message}",
                    status_code=exc.status,
                    retry_after=retry_after,
                ) from None
            try:
                await ws.send_json(self._init_message())
                for msg in self._sent:  # a retry replays the text of the segment
                    await ws.send_json(msg)
                if self._eos:
                    await ws.send_json({"text": ""})
                sender = asyncio.ensure_future(self._send_loop(ws))
                try:
                    await self._recv_loop(ws, sender)
                finally:
                    sender.cancel()
                    try:
                        await sender
                    except (asyncio.CancelledError, Exception):
                        pass
            finally:
                await ws.close()
        except APIError as exc:
            if self._emitter.received:
                exc.retryable = False
            raise
        except asyncio.TimeoutError:
            raise APITimeoutError(
                f"ElevenLabs' stream-input websocket did not connect within {opts.connect_timeout:.0f} s",
                retryable=self._emitter.received == 0,
            ) from None
        except aiohttp.ClientError as exc:
            raise APIConnectionError(
                f"ElevenLabs stream-input websocket failed: {exc}", retryable=self._emitter.received == 0
            ) from None

    async def _send_loop(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        # ElevenLabs' stream-input reference: every text chunk ends with a single space.
        # Text is sent up to its last whitespace (a word cut between two pushes waits for
        # its end); the rest goes out, with its space, when the segment ends.
        while not self._eos:
            text = await self._queue.get()
            if text is None:
                if self._pending.strip():
                    await self._send_text(ws, self._pending.rstrip() + " ")
                self._pending = ""
                self._eos = True
                await ws.send_json({"text": ""})
                return
            self._pending += text
            cut = max(self._pending.rfind(c) for c in " \t\n\r")
            if cut < 0:
                continue
            chunk, self._pending = self._pending[: cut + 1], self._pending[cut + 1 :]
            if chunk.strip():
                await self._send_text(ws, chunk.rstrip() + " ")

    async def _send_text(self, ws: aiohttp.ClientWebSocketResponse, text: str) -> None:
        msg = self._text_message(text)
        self._sent.append(msg)
        await ws.send_json(msg)

    async def _recv_loop(self, ws: aiohttp.ClientWebSocketResponse, sender: asyncio.Future[None]) -> None:
        opts = self._opts
        while True:
            try:
                msg = await ws.receive(timeout=1.0 if not self._eos else opts.read_timeout)
            except asyncio.TimeoutError:
                if sender.done() and sender.exception() is not None:
                    raise sender.exception() from None  # type: ignore[misc]
                if not self._eos:
                    continue  # waiting for the user's text is no stall
                raise APITimeoutError(
                    f"ElevenLabs sent no audio for {opts.read_timeout:.0f} s after the end of the text",
                    retryable=self._emitter.received == 0,
                ) from None
            if msg.type == aiohttp.WSMsgType.TEXT:
                try:
                    data = json.loads(msg.data)
                    if not isinstance(data, dict):
                        raise ValueError("not an object")
                except ValueError:
                    raise APIResponseError(
                        f"ElevenLabs sent a malformed websocket message: {str(msg.data)[:200]!r}", retryable=False
                    ) from None
                if data.get("error") or (data.get("message") and "audio" not in data):
                    raise _ws_error(data)
                audio = data.get("audio")
                if audio:
                    try:
                        pcm = base64.b64decode(audio, validate=True)
                    except (ValueError, TypeError):
                        raise APIResponseError("ElevenLabs sent audio that is not valid base64", retryable=False) from None
                    align = Alignment.from_json(data.get("alignment"))
                    norm = Alignment.from_json(data.get("normalizedAlignment"))
                    extra: dict[str, Any] = {}
                    if align is not None or norm is not None:
                        extra = {
                            "alignment": align,
                            "normalized_alignment": norm,
                            "text": (align or norm).text,  # type: ignore[union-attr]
                        }
                    self._emitter.write(pcm, **extra)
                if data.get("isFinal"):
                    if self._emitter.received % 2:
                        raise APIResponseError("ElevenLabs sent audio that is not whole 16-bit samples", retryable=False)
                    return
            elif msg.type == aiohttp.WSMsgType.BINARY:
                raise APIResponseError("ElevenLabs sent an unexpected binary websocket message", retryable=False)
            elif msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED):
                code = ws.close_code
                reason = (msg.extra or "") if msg.type == aiohttp.WSMsgType.CLOSE else ""
                if code == 1008:
                    raise APIAuthenticationError(
                        f"ElevenLabs closed the stream-input websocket (policy violation: {reason or 'no reason'}); "
                        f"check ELEVENLABS_API_KEY (or ELEVEN_API_KEY) or the api_key= argument",
                        status_code=401,
                    )
                raise APIConnectionError(
                    f"ElevenLabs closed the stream-input websocket before the final audio (code {code}{': ' + reason if reason else ''})",
                    retryable=self._emitter.received == 0,
                )
            elif msg.type == aiohttp.WSMsgType.ERROR:
                raise APIConnectionError(
                    f"ElevenLabs stream-input websocket error: {ws.exception()}",
                    retryable=self._emitter.received == 0,
                )


def _ws_error(data: dict[str, Any]) -> APIError:
    error = str(data.get("error") or "")
    message = str(data.get("message") or error or "unknown error")
    code = data.get("code")
    if "api_key" in error or "auth" in error or code == 1008 and "key" in message.lower():
        return APIAuthenticationError(
            f"ElevenLabs refused the API key on the stream-input websocket ({message}); "
            f"check ELEVENLABS_API_KEY (or ELEVEN_API_KEY) or the api_key= argument",
            status_code=401,
        )
    status = 429 if "quota" in error or "rate" in error or "concurren" in error else (code if isinstance(code, int) and code < 1000 else 400)
    return APIStatusError(f"ElevenLabs stream-input error: {error + ': ' if error else ''}{message}", status_code=status)
