"""A fake ElevenLabs API on loopback, for tests and ``agents plugins check elevenlabs``.

It implements the documented wire protocol of the endpoints the plugin uses and rejects
requests that break it:

* ``POST /v1/text-to-speech/{voice_id}/stream?output_format=pcm_<rate>`` (``xi-api-key``
  header, JSON ``text``, ``model_id``, ``voice_settings``): raw PCM16 in timed chunks.
* ``GET /v1/text-to-speech/{voice_id}/stream-input`` (websocket; ``model_id`` and
  ``output_format`` query parameters; key in the ``xi-api-key`` header or the first
  message's ``xi_api_key``): the first message is ``{"text": " ", ...}``, text follows,
  ``{"text": ""}`` ends the input. Text is generated once the buffer reaches the
  ``chunk_length_schedule`` (default 120, 160, 250, 290 characters), on ``flush: true``
  (or ``try_trigger_generation``), or at the end; audio goes back as base64 ``audio`` with
  ``alignment`` / ``normalizedAlignment``, then ``{"isFinal": true}``.
* ``GET /v1/voices``.

The speech is real: espeak-ng speaks the text (through ``livekit.agents.testing.speech``);
without espeak-ng a tone per word stands in. Failures are scripted per request with
:meth:`FakeElevenLabs.fail`::

    async with FakeElevenLabs() as fake:
        fake.fail("status", status=429, retry_after=1)
        tts = TTS(api_key=fake.api_key, base_url=fake.url)
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import WSCloseCode, web

from livekit.agents.testing.loopback import LoopbackService, retry_after_header
from livekit.agents.testing.speech import spoken_pcm

PCM_RATES = (8000, 16000, 22050, 24000, 44100, 48000)
MODELS = (
    "eleven_turbo_v2_5",
    "eleven_flash_v2_5",
    "eleven_turbo_v2",
    "eleven_flash_v2",
    "eleven_multilingual_v2",
    "eleven_monolingual_v1",
    "eleven_v3",
)
DEFAULT_SCHEDULE = (120, 160, 250, 290)

FailureKind = Literal["status", "stall", "truncate", "drop", "malformed"]
Endpoint = Literal["any", "http", "ws", "voices"]


@dataclass
class Failure:
    """One scripted failure, used by the next matching request.

    * ``status``: answer HTTP ``status`` (the websocket handshake too), with ``Retry-After``.
    * ``stall``: HTTP: send the first chunk, then nothing; websocket: accept, then never answer.
    * ``truncate``: HTTP: close the connection halfway through the body; websocket: send
      the first audio chunk, then drop the connection.
    * ``drop``: websocket: drop the connection after the first text, before any audio.
    * ``malformed``: HTTP: a JSON body with status 200; websocket: a message that is not JSON.
    """

    kind: FailureKind
    endpoint: Endpoint = "any"
    status: int = 500
    retry_after: float | str | None = None
    message: str = ""


@dataclass
class Recorded:
    """A request the fake received (the key is never stored, only whether it matched)."""

    endpoint: str
    path: str
    params: dict[str, str]
    body: Any = None
    auth: str = ""  # "header", "message" or "" (none)
    messages: list[dict[str, Any]] = field(default_factory=list)
    sent_chunks: int = 0
    completed: bool = False




def _alignment(chars: str, duration_ms: int) -> dict[str, Any]:
    n = max(1, len(chars))
    step = duration_ms / n
    return {
        "chars": list(chars),
        "charStartTimesMs": [int(i * step) for i in range(len(chars))],
        "charsDurationMs": [max(1, int(step)) for _ in chars],
    }


class FakeElevenLabs(LoopbackService):
    """The fake service. ``url`` is its base URL; ``api_key`` the only key it accepts."""

    shutdown_timeout = 0.5

    def __init__(
        self,
        *,
        api_key: str = "fake-elevenlabs-key",
        voices: list[dict[str, Any]] | None = None,
        chunk_ms: int = 100,
        chunk_delay: float = 0.01,
        host: str = "127.0.0.1",
    ) -> None:
        super().__init__(host)
        self.api_key = api_key
        self.voices = voices or [
            {"voice_id": "EXAVITQu4vr4xnSDxMaL", "name": "Sarah", "category": "premade", "labels": {"accent": "american"}},
            {"voice_id": "21m00Tcm4TlvDq8ikWAM", "name": "Rachel", "category": "premade", "labels": {"accent": "american"}},
        ]
        self.chunk_ms = chunk_ms
        self.chunk_delay = chunk_delay
        self.requests: list[Recorded] = []
        self.failures: list[Failure] = []
        self.hold: asyncio.Event | None = None
        """When set to an Event, HTTP streams pause after their first chunk until it is set."""
        self._tasks: set[asyncio.Task[Any]] = set()

    # --- lifecycle ---------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/text-to-speech/{voice_id}/stream", self._http_stream)
        app.router.add_post("/v1/text-to-speech/{voice_id}", self._http_stream)
        app.router.add_get("/v1/text-to-speech/{voice_id}/stream-input", self._ws)
        app.router.add_get("/v1/voices", self._voices)

    async def aclose(self) -> None:
        if self.hold is not None:
            self.hold.set()
        await super().aclose()

    # --- scripting ----------------------------------------------------------------------

    def fail(
        self,
        kind: FailureKind,
        *,
        endpoint: Endpoint = "any",
        status: int = 500,
        retry_after: float | str | None = None,
        times: int = 1,
        message: str = "",
    ) -> None:
        """Make the next ``times`` requests to ``endpoint`` fail with ``kind``."""
        for _ in range(times):
            self.failures.append(Failure(kind, endpoint, status, retry_after, message))

    def _take_failure(self, endpoint: str) -> Failure | None:
        for i, f in enumerate(self.failures):
            if f.endpoint in ("any", endpoint):
                return self.failures.pop(i)
        return None

    def recorded(self, endpoint: str) -> list[Recorded]:
        return [r for r in self.requests if r.endpoint == endpoint]

    # --- helpers ------------------------------------------------------------------------

    @staticmethod
    def _error(status: int, code: str, message: str, retry_after: float | str | None = None) -> web.Response:
        headers = {"Retry-After": retry_after_header(retry_after)} if retry_after is not None else {}
        return web.json_response({"detail": {"status": code, "message": message}}, status=status, headers=headers)

    def _status_failure(self, f: Failure) -> web.Response:
        code = {401: "invalid_api_key", 403: "forbidden", 429: "too_many_concurrent_requests"}.get(f.status, "internal_error")
        return self._error(f.status, code, f.message or f"scripted failure {f.status}", f.retry_after)

    def _check_key(self, request: web.Request) -> web.Response | None:
        key = request.headers.get("xi-api-key")
        if key is None:
            return self._error(401, "needs_authorization", "Missing the xi-api-key header")
        if key != self.api_key:
            return self._error(401, "invalid_api_key", "Invalid API key")
        return None

    def _check_voice(self, voice_id: str) -> web.Response | None:
        if not any(v["voice_id"] == voice_id for v in self.voices):
            return self._error(404, "voice_not_found", f"A voice with the voice_id {voice_id} was not found.")
        return None

    @staticmethod
    def _check_format(fmt: str | None) -> tuple[int | None, str]:
        if not fmt:
            return None, "output_format is required by this fake (it serves pcm_<rate> only)"
        m = re.fullmatch(r"pcm_(\d+)", fmt)
        if not m or int(m.group(1)) not in PCM_RATES:
            return None, f"output_format {fmt!r} is not supported here; use pcm_<rate> with a rate of {PCM_RATES}"
        return int(m.group(1)), ""

    @staticmethod
    def _check_voice_settings(vs: Any) -> str:
        if vs is None:
            return ""
        if not isinstance(vs, dict):
            return "voice_settings must be an object"
        for key in ("stability", "similarity_boost"):
            if key not in vs:
                return f"voice_settings.{key} is required"
        for key in ("stability", "similarity_boost", "style"):
            if key in vs and not (isinstance(vs[key], (int, float)) and 0.0 <= vs[key] <= 1.0):
                return f"voice_settings.{key} must be a number between 0 and 1"
        if "speed" in vs and not (isinstance(vs["speed"], (int, float)) and 0.7 <= vs["speed"] <= 1.2):
            return "voice_settings.speed must be between 0.7 and 1.2"
        return ""

    @staticmethod
    def _invalid(msg: str) -> web.Response:
        return web.json_response({"detail": [{"loc": ["body"], "msg": msg, "type": "value_error"}]}, status=422)

    # --- HTTP streaming -----------------------------------------------------------------

    async def _http_stream(self, request: web.Request) -> web.StreamResponse:
        rec = Recorded("http", request.path, dict(request.query))
        self.requests.append(rec)
        failure = self._take_failure("http")
        if failure and failure.kind == "status":
            return self._status_failure(failure)
        if (err := self._check_key(request)) is not None:
            return err
        rec.auth = "header"
        if "xi-api-key" in request.query or "xi_api_key" in request.query:
            return self._invalid("send the API key in the xi-api-key header, not in the URL")
        if (err := self._check_voice(request.match_info["voice_id"])) is not None:
            return err
        rate, problem = self._check_format(request.query.get("output_format"))
        if rate is None:
            return self._invalid(problem)
        try:
            body = await request.json()
        except ValueError:
            return self._invalid("the body must be JSON")
        rec.body = body
        if not isinstance(body, dict) or not isinstance(body.get("text"), str) or not body["text"].strip():
            return self._invalid("text is required and must be a non-empty string")
        if body.get("model_id", "eleven_multilingual_v2") not in MODELS:
            return self._error(400, "model_not_found", f"model {body.get('model_id')!r} does not exist")
        if problem := self._check_voice_settings(body.get("voice_settings")):
            return self._invalid(problem)
        if failure and failure.kind == "malformed":
            return web.json_response({"status": "ok", "audio": None})

        speed = float((body.get("voice_settings") or {}).get("speed", 1.0))
        pcm = await asyncio.to_thread(spoken_pcm, body["text"], rate, speed)
        resp = web.StreamResponse(status=200, headers={"Content-Type": "audio/pcm", "request-id": f"req-{len(self.requests)}"})
        await resp.prepare(request)
        step = rate * 2 * self.chunk_ms // 1000
        chunks = [pcm[i : i + step] for i in range(0, len(pcm), step)]
        for i, chunk in enumerate(chunks):
            if failure and failure.kind == "truncate" and i >= max(1, len(chunks) // 2):
                assert request.transport is not None
                request.transport.close()
                return resp
            await resp.write(chunk)
            rec.sent_chunks += 1
            if i == 0:
                if failure and failure.kind == "stall":
                    await asyncio.sleep(3600)
                if self.hold is not None:
                    await self.hold.wait()
            await asyncio.sleep(self.chunk_delay)
        await resp.write_eof()
        rec.completed = True
        return resp

    # --- voices -------------------------------------------------------------------------

    async def _voices(self, request: web.Request) -> web.Response:
        rec = Recorded("voices", request.path, dict(request.query))
        self.requests.append(rec)
        failure = self._take_failure("voices")
        if failure and failure.kind == "status":
            return self._status_failure(failure)
        if (err := self._check_key(request)) is not None:
            return err
        rec.auth = "header"
        if failure and failure.kind == "malformed":
            return web.Response(text="<html>oops</html>", content_type="text/html")
        rec.completed = True
        return web.json_response({"voices": self.voices})

    # --- stream-input websocket ---------------------------------------------------------

    async def _ws(self, request: web.Request) -> web.StreamResponse:
        rec = Recorded("ws", request.path, dict(request.query))
        self.requests.append(rec)
        failure = self._take_failure("ws")
        if failure and failure.kind == "status":
            return self._status_failure(failure)
        header_key = request.headers.get("xi-api-key")
        if header_key is not None and header_key != self.api_key:
            return self._error(401, "invalid_api_key", "Invalid API key")
        if "xi-api-key" in request.query or "xi_api_key" in request.query:
            return self._invalid("send the API key in the xi-api-key header or the first message, not in the URL")
        if (err := self._check_voice(request.match_info["voice_id"])) is not None:
            return err
        rate, problem = self._check_format(request.query.get("output_format"))
        if rate is None:
            return self._invalid(problem)
        if request.query.get("model_id", "eleven_multilingual_v2") not in MODELS:
            return self._error(400, "model_not_found", f"model {request.query.get('model_id')!r} does not exist")
        inactivity = float(request.query.get("inactivity_timeout", 20))

        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        session = _WSSession(self, ws, rec, rate, failure, header_key is not None)
        try:
            await session.run(inactivity)
        finally:
            if not ws.closed:
                await ws.close()
        return ws


class _WSSession:
    def __init__(
        self, fake: FakeElevenLabs, ws: web.WebSocketResponse, rec: Recorded, rate: int, failure: Failure | None, header_auth: bool
    ) -> None:
        self.fake, self.ws, self.rec, self.rate, self.failure = fake, ws, rec, rate, failure
        self.authed = header_auth
        self.buffer = ""
        self.schedule = list(DEFAULT_SCHEDULE)
        self.generations = 0
        self.speed = 1.0
        self.jobs: asyncio.Queue[str | None] = asyncio.Queue()

    async def error(self, error: str, message: str, code: int = WSCloseCode.POLICY_VIOLATION) -> None:
        await self.ws.send_json({"message": message, "error": error, "code": code})
        await self.ws.close(code=code, message=message.encode()[:120])

    async def run(self, inactivity: float) -> None:
        generator = asyncio.ensure_future(self.generate())
        try:
            await self.receive(inactivity)
            if not self.ws.closed:
                await generator
        finally:
            generator.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await generator

    async def receive(self, inactivity: float) -> None:
        first = True
        f = self.failure
        while not self.ws.closed:
            try:
                msg = await self.ws.receive(timeout=inactivity)
            except asyncio.TimeoutError:
                await self.error("input_timeout_exceeded", f"Have not received new text for {inactivity:g} seconds", 1008)
                return
            if msg.type != 1:  # TEXT
                return
            try:
                data = json.loads(msg.data)
                assert isinstance(data, dict) and isinstance(data.get("text"), str)
            except (ValueError, AssertionError):
                await self.error("invalid_message", "each message must be a JSON object with a text string", 1003)
                return
            self.rec.messages.append({k: v for k, v in data.items() if k != "xi_api_key"})
            if first:
                first = False
                if "xi_api_key" in data:
                    if data["xi_api_key"] != self.fake.api_key:
                        await self.error("invalid_api_key", "Invalid API key", 1008)
                        return
                    self.authed = True
                    self.rec.auth = "message"
                elif self.authed:
                    self.rec.auth = "header"
                if not self.authed:
                    await self.error("invalid_api_key", "Missing API key: send xi-api-key or xi_api_key", 1008)
                    return
                if data["text"] != " ":
                    await self.error("invalid_request", 'the first message must have text " " (a single space)', 1003)
                    return
                if problem := FakeElevenLabs._check_voice_settings(data.get("voice_settings")):
                    await self.error("invalid_request", problem, 1003)
                    return
                self.speed = float((data.get("voice_settings") or {}).get("speed", 1.0))
                sched = (data.get("generation_config") or {}).get("chunk_length_schedule")
                if sched is not None:
                    if not (isinstance(sched, list) and sched and all(isinstance(x, int) and 50 <= x <= 500 for x in sched)):
                        await self.error("invalid_request", "chunk_length_schedule must be integers between 50 and 500", 1003)
                        return
                    self.schedule = sched
                continue
            if f and f.kind == "drop":
                assert self.ws._req is not None and self.ws._req.transport is not None
                self.ws._req.transport.close()
                return
            if data["text"] == "":
                if self.buffer.strip():
                    self.jobs.put_nowait(self.buffer)
                self.buffer = ""
                self.jobs.put_nowait(None)
                return
            if not data["text"].endswith(" "):
                # the stream-input reference: "The text should always end with a single space"
                await self.error("invalid_request", "each text chunk must end with a single space ' '", 1003)
                return
            self.buffer += data["text"]
            limit = self.schedule[min(self.generations, len(self.schedule) - 1)]
            if data.get("flush") or data.get("try_trigger_generation") or len(self.buffer) >= limit:
                if self.buffer.strip():
                    self.jobs.put_nowait(self.buffer)
                    self.generations += 1
                self.buffer = ""

    async def generate(self) -> None:
        f = self.failure
        while True:
            text = await self.jobs.get()
            if text is None:
                break
            if f and f.kind == "stall":
                await asyncio.sleep(3600)
            if f and f.kind == "malformed":
                await self.ws.send_str("this is not json {")
                continue
            pcm = await asyncio.to_thread(spoken_pcm, text, self.rate, self.speed)
            step = self.rate * 2 * self.fake.chunk_ms // 1000
            chunks = [pcm[i : i + step] for i in range(0, len(pcm), step)] or [b""]
            n = len(chunks)
            for i, chunk in enumerate(chunks):
                part = text[i * len(text) // n : (i + 1) * len(text) // n]
                dur = len(chunk) * 1000 // (2 * self.rate)
                await self.ws.send_json(
                    {
                        "audio": base64.b64encode(chunk).decode(),
                        "isFinal": None,
                        "alignment": _alignment(part, dur),
                        "normalizedAlignment": _alignment(part.lower(), dur),
                    }
                )
                self.rec.sent_chunks += 1
                if f and f.kind == "truncate":
                    assert self.ws._req is not None and self.ws._req.transport is not None
                    self.ws._req.transport.close()
                    return
                await asyncio.sleep(self.fake.chunk_delay)
        if f and f.kind == "stall":
            await asyncio.sleep(3600)
        await self.ws.send_json({"audio": None, "isFinal": True, "alignment": None, "normalizedAlignment": None})
        self.rec.completed = True
        await self.ws.close()


@contextlib.asynccontextmanager
async def conformance_environment() -> AsyncIterator[dict[str, dict[str, Any]]]:
    """Start the fake and yield the options that point the ``elevenlabs`` TTS at it."""
    async with FakeElevenLabs() as fake:
        yield {"tts:elevenlabs": {"api_key": fake.api_key, "base_url": fake.url}}
