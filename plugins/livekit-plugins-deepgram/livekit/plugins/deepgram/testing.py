"""A loopback fake of Deepgram's listen API, for tests and ``agents plugins check deepgram``.

:class:`FakeDeepgram` serves the live websocket (``/v1/listen``) and the pre-recorded
endpoint (``POST /v1/listen``) on 127.0.0.1 as the documented API does:

* it checks ``Authorization: Token <key>`` (401 otherwise, with ``dg-error``), the query
  parameters (model, ``encoding`` with ``sample_rate``, ``utterance_end_ms`` needing
  ``interim_results``...; 400 with Deepgram's JSON error body);
* it "hears" what it can know: it finds speech in the 16-bit PCM it receives (at the
  declared rate) and gives each speech segment the text of the expected utterance of
  that length (:meth:`FakeDeepgram.expect`); audio at the wrong rate is heard as nothing;
* live: ``SpeechStarted`` at speech onsets (``vad_events``), interim ``Results`` as audio
  arrives, a final ``Results`` once an utterance is followed by silence (with
  ``speech_final: true`` unless ``endpointing=false``, which Deepgram documents as
  disabling pause detection), empty finals over long silences, ``UtteranceEnd`` (only
  with ``utterance_end_ms`` and interim results), finals on ``Finalize``, and on ``CloseStream``
  the last finals, a ``Metadata`` message and a normal close. Silence longer than
  ``idle_timeout`` without audio or ``KeepAlive`` closes the stream (NET-0001);
* :meth:`FakeDeepgram.script` queues faults for the next connections or requests:
  an HTTP status at the handshake (401, 429 with Retry-After in seconds or as an
  HTTP-date, 5xx), a close or stall
  after some seconds of audio, a malformed message, a truncated HTTP body.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import uuid
import wave
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from aiohttp import WSMsgType, web

from livekit.agents.testing.conformance import STT_TEXT as CONFORMANCE_TEXT
from livekit.agents.testing.loopback import LoopbackService, retry_after_header
from livekit.agents.testing.speech import UTTERANCE_GAP, closest_utterance, speech_segments, utterance_lengths

MODELS = ("nova-3", "nova-2", "nova", "enhanced", "base", "whisper")
"""Silence (s) after which the fake ends an utterance (it never splits one at shorter pauses)."""


@dataclass
class Fault:
    """What the fake does to one connection (or HTTP request) instead of behaving."""

    kind: str  # "status" | "close" | "stall" | "malformed" | "truncate"
    status: int = 500
    retry_after: float | str | None = None
    after_seconds: float = 0.0
    code: int = 1011

    @classmethod
    def http(cls, status: int, *, retry_after: float | str | None = None) -> Fault:
        return cls("status", status=status, retry_after=retry_after)

    @classmethod
    def close(cls, after_seconds: float, code: int = 1011) -> Fault:
        """Close the websocket once this much audio has arrived (1011: NET-0000 server error)."""
        return cls("close", after_seconds=after_seconds, code=code)

    @classmethod
    def stall(cls, after_seconds: float = 0.0) -> Fault:
        """Stop answering (but keep the socket open) once this much audio has arrived."""
        return cls("stall", after_seconds=after_seconds)

    @classmethod
    def malformed(cls, after_seconds: float = 0.0) -> Fault:
        """Send a message that is not JSON (live), or a 200 body that is not JSON (HTTP)."""
        return cls("malformed", after_seconds=after_seconds)

    @classmethod
    def truncate(cls) -> Fault:
        """HTTP: declare the full body length, send half of it, drop the connection."""
        return cls("truncate")


@dataclass
class Session:
    """One live connection or HTTP request, as the fake saw it (the key is not kept)."""

    kind: str  # "live" | "prerecorded"
    params: dict[str, str]
    auth_ok: bool
    auth_scheme: str
    status: int = 101
    audio: bytearray = field(default_factory=bytearray)
    controls: list[str] = field(default_factory=list)
    sent: list[dict[str, Any]] = field(default_factory=list)
    closed_code: int | None = None
    """The close code the fake sent (``None``: the client closed first or the socket dropped)."""

    @property
    def seconds(self) -> float:
        rate = int(self.params.get("sample_rate", 16000))
        return len(self.audio) / 2 / rate


class FakeDeepgram(LoopbackService):
    """Deepgram's listen API on a free loopback port."""

    max_body = 64 * 1024 * 1024

    def __init__(self, *, api_key: str = "dg-fake-0123456789abcdef", idle_timeout: float = 10.0, interim_every: float = 0.3) -> None:
        super().__init__()
        self.api_key = api_key
        self.idle_timeout = idle_timeout
        self.interim_every = interim_every
        self.sessions: list[Session] = []
        self.utterances: list[tuple[str, float]] = []
        self._faults: list[Fault] = []

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def live(self) -> list[Session]:
        return [s for s in self.sessions if s.kind == "live"]

    def expect(self, sample: Any) -> None:
        """Let the fake "hear" a SpeechSample's utterances: it learns the length of each."""
        self.utterances += utterance_lengths(sample)

    def script(self, *faults: Fault) -> None:
        """Apply these faults, in order, to the next connections or requests."""
        self._faults.extend(faults)

    def _match(self, seconds: float) -> tuple[int, str] | None:
        i = closest_utterance(seconds, self.utterances)
        return None if i is None else (i, self.utterances[i][0])

    # --- lifecycle ----------------------------------------------------------------------

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/v1/listen", self._live)
        app.router.add_post("/v1/listen", self._prerecorded)

    # --- checks shared by both endpoints --------------------------------------------------

    @staticmethod
    def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
        body = {"err_code": code, "err_msg": message, "request_id": str(uuid.uuid4())}
        return web.json_response(body, status=status, headers={"dg-error": message, **(headers or {})})

    def _check(self, request: web.Request, kind: str) -> tuple[Session, web.Response | None]:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        params = dict(request.query)
        session = Session(kind, params, auth_ok=scheme == "Token" and token == self.api_key, auth_scheme=scheme)
        self.sessions.append(session)
        if not session.auth_ok:
            session.status = 401
            return session, self._error(401, "INVALID_AUTH", "Invalid credentials.")
        if self._faults and self._faults[0].kind == "status":
            fault = self._faults.pop(0)
            session.status = fault.status
            headers = {"Retry-After": retry_after_header(fault.retry_after)} if fault.retry_after is not None else {}
            code = {429: "TOO_MANY_REQUESTS", 403: "INSUFFICIENT_PERMISSIONS"}.get(fault.status, "INTERNAL_SERVER_ERROR")
            return session, self._error(fault.status, code, f"scripted HTTP {fault.status}", headers)
        model = params.get("model", "base")
        if model not in MODELS:
            session.status = 400
            return session, self._error(400, "Bad Request", f"No such model/language/tier combination found: model={model}")
        for name in ("interim_results", "punctuate", "smart_format", "vad_events"):
            if name in params and params[name] not in ("true", "false"):
                session.status = 400
                return session, self._error(400, "Bad Request", f"Invalid query string. Failed to parse {name}: expected true or false")
        if kind == "live":
            enc = params.get("encoding")
            if enc is not None and enc != "linear16":
                session.status = 400
                return session, self._error(400, "Bad Request", f"this fake decodes only encoding=linear16, not {enc}")
            if enc is not None and "sample_rate" not in params:
                session.status = 400
                return session, self._error(400, "Bad Request", "sample_rate is required when encoding is set (raw audio)")
            if params.get("channels", "1") != "1":
                session.status = 400
                return session, self._error(400, "Bad Request", "this fake hears only channels=1")
            if "utterance_end_ms" in params:
                if params.get("interim_results") != "true":
                    session.status = 400
                    return session, self._error(400, "Bad Request", "utterance_end_ms requires interim_results=true")
                if int(params["utterance_end_ms"]) < 1000:
                    session.status = 400
                    return session, self._error(400, "Bad Request", "utterance_end_ms must be at least 1000")
        return session, None

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.closing.wait(), seconds)

    # --- pre-recorded -------------------------------------------------------------------

    async def _prerecorded(self, request: web.Request) -> web.StreamResponse:
        session, denied = self._check(request, "prerecorded")
        if denied is not None:
            return denied
        body = await request.read()
        try:
            with wave.open(io.BytesIO(body), "rb") as w:
                if w.getsampwidth() != 2:
                    raise wave.Error("not 16-bit")
                rate, channels = w.getframerate(), w.getnchannels()
                pcm = w.readframes(w.getnframes())
        except (wave.Error, EOFError):
            session.status = 400
            return self._error(400, "Bad Request", "Bad Request: failed to process audio: corrupt or unsupported data")
        session.params["sample_rate"] = str(rate)
        mono = np.frombuffer(pcm, dtype=np.int16).reshape(-1, channels).mean(axis=1).astype(np.int16).tobytes()
        session.audio.extend(mono)
        words, texts = [], []
        for s, e in speech_segments(mono, rate):
            m = self._match(e - s)
            if m is not None:
                texts.append(m[1])
                words += _words(m[1], s, e)
        duration = len(mono) / 2 / rate
        answer = {
            "metadata": {"request_id": str(uuid.uuid4()), "duration": duration, "channels": 1, "models": [session.params.get("model", "base")]},
            "results": {"channels": [{"alternatives": [{"transcript": " ".join(texts), "confidence": 0.98 if texts else 0.0, "words": words}]}]},
        }
        data = json.dumps(answer).encode()
        if self._faults:
            fault = self._faults.pop(0)
            if fault.kind == "malformed":
                return web.Response(body=data[: len(data) // 2], content_type="application/json")
            if fault.kind == "stall":
                await self._sleep(60)
                return web.Response(status=504)
            if fault.kind == "truncate":
                resp = web.StreamResponse(headers={"Content-Type": "application/json"})
                resp.content_length = len(data)
                await resp.prepare(request)
                await resp.write(data[: len(data) // 2])
                assert request.transport is not None
                request.transport.close()
                return resp
        session.status = 200
        return web.Response(body=data, content_type="application/json")

    # --- live ---------------------------------------------------------------------------

    async def _live(self, request: web.Request) -> web.StreamResponse:
        session, denied = self._check(request, "live")
        if denied is not None:
            return denied
        fault = self._faults.pop(0) if self._faults and self._faults[0].kind in ("close", "stall", "malformed") else None
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        live = _LiveSession(self, session, ws, fault)
        await live.run()
        return ws


def _words(text: str, start: float, end: float) -> list[dict[str, Any]]:
    parts = text.split()
    step = (end - start) / max(1, len(parts))
    return [
        {
            "word": p.strip(".,!?;:").lower(),
            "start": round(start + i * step, 3),
            "end": round(start + (i + 1) * step, 3),
            "confidence": 0.97,
            "punctuated_word": p,
        }
        for i, p in enumerate(parts)
    ]


class _LiveSession:
    """The state of one live connection: hears 20 ms windows as the audio arrives."""

    def __init__(self, fake: FakeDeepgram, session: Session, ws: web.WebSocketResponse, fault: Fault | None) -> None:
        self.fake, self.session, self.ws, self.fault = fake, session, ws, fault
        p = session.params
        self.rate = int(p.get("sample_rate", 16000))
        self.interim = p.get("interim_results") == "true"
        self.vad_events = p.get("vad_events") == "true"
        ep = p.get("endpointing", "10")
        # endpointing=false disables pause detection: finals still come, never speech_final
        self.endpointing: float | None = None if ep == "false" else int(ep) / 1000
        self.utterance_end = int(p["utterance_end_ms"]) / 1000 if "utterance_end_ms" in p else None
        self.request_id = str(uuid.uuid4())
        self.win = self.rate // 50
        self.processed = 0  # samples analysed
        self.final_end = 0.0  # session seconds covered by finals
        self.seg_start: float | None = None
        self.last_loud = 0.0
        self.last_interim = 0.0
        self.last_word_end: float | None = None
        self.stalled = False
        self.next = 0  # the utterance interim results guess at

    async def send(self, msg: dict[str, Any]) -> None:
        if self.stalled:
            return
        self.session.sent.append(msg)
        await self.ws.send_str(json.dumps(msg))

    async def run(self) -> None:
        while True:
            try:
                msg = await self.ws.receive(timeout=self.fake.idle_timeout)
            except asyncio.TimeoutError:
                # like Deepgram's NET-0001: no audio (or KeepAlive) for too long
                self.session.closed_code = 1011
                await self.ws.close(code=1011, message=b"NET-0001: did not receive audio data or a text message within the timeout window")
                return
            if msg.type == WSMsgType.BINARY:
                self.session.audio.extend(msg.data)
                await self.hear()
                if await self.apply_fault():
                    return
            elif msg.type == WSMsgType.TEXT:
                try:
                    kind = json.loads(msg.data).get("type")
                except (ValueError, AttributeError):
                    await self.ws.close(code=1008, message=b"DATA-0000: could not parse text message")
                    return
                self.session.controls.append(str(kind))
                if kind == "Finalize":
                    await self.finalize(from_finalize=True)
                elif kind == "CloseStream":
                    await self.finalize(from_finalize=False)
                    await self.send({"type": "Metadata", "transaction_key": "deprecated", "request_id": self.request_id, "created": "", "duration": self.session.seconds, "channels": 1})
                    if self.stalled:
                        await self.fake._sleep(60)
                    self.session.closed_code = 1000
                    await self.ws.close(code=1000)
                    return
            else:
                return

    async def apply_fault(self) -> bool:
        f = self.fault
        if f is None or self.session.seconds < f.after_seconds:
            return False
        self.fault = None
        if f.kind == "close":
            self.session.closed_code = f.code
            await self.ws.close(code=f.code, message=b"NET-0000: the service has closed the connection")
            return True
        if f.kind == "stall":
            self.stalled = True
        elif f.kind == "malformed":
            await self.ws.send_str('{"type": "Results", "channel": {"alternatives": [')
        return False

    def results(self, start: float, end: float, text: str, words: list[dict[str, Any]], *, is_final: bool, speech_final: bool = False, from_finalize: bool = False) -> dict[str, Any]:
        return {
            "type": "Results",
            "channel_index": [0, 1],
            "duration": round(end - start, 3),
            "start": round(start, 3),
            "is_final": is_final,
            "speech_final": speech_final,
            "from_finalize": from_finalize,
            "channel": {"alternatives": [{"transcript": text, "confidence": 0.97 if text else 0.0, "words": words}]},
            "metadata": {"request_id": self.request_id, "model_info": {"name": self.session.params.get("model", "base")}},
        }

    async def final(self, now: float, *, speech_final: bool, from_finalize: bool = False) -> None:
        text, words = "", []
        if self.seg_start is not None:
            m = self.fake._match(self.last_loud - self.seg_start)
            if m is not None:
                self.next = m[0] + 1
                text, words = m[1], _words(m[1], self.seg_start, self.last_loud)
                self.last_word_end = self.last_loud
        await self.send(self.results(self.final_end, now, text, words, is_final=True, speech_final=speech_final, from_finalize=from_finalize))
        self.final_end = now
        self.seg_start = None

    async def hear(self) -> None:
        a = np.frombuffer(bytes(self.session.audio[self.processed * 2 : len(self.session.audio) // 2 * 2]), dtype=np.int16)
        n = len(a) // self.win
        for i in range(n):
            w = a[i * self.win : (i + 1) * self.win]
            t0 = (self.processed + i * self.win) / self.rate
            t1 = t0 + self.win / self.rate
            if int(np.abs(w.astype(np.int32)).max()) > 300:
                if self.seg_start is None:
                    self.seg_start = t0
                    if self.vad_events:
                        await self.send({"type": "SpeechStarted", "channel": [0, 1], "timestamp": round(t0, 3)})
                self.last_loud = t1
            if self.seg_start is not None:
                if t1 - self.last_loud >= max(self.endpointing or 0.0, UTTERANCE_GAP):
                    await self.final(t1, speech_final=self.endpointing is not None)
                elif self.interim and t1 - self.last_interim >= self.fake.interim_every:
                    self.last_interim = t1
                    await self.interim_result(t1)
            else:
                if self.utterance_end is not None and self.interim and self.last_word_end is not None and t1 - self.last_word_end >= self.utterance_end:
                    await self.send({"type": "UtteranceEnd", "channel": [0, 1], "last_word_end": round(self.last_word_end, 3)})
                    self.last_word_end = None
                if t1 - self.final_end >= 2.0:
                    await self.final(t1, speech_final=False)
        self.processed += n * self.win

    async def interim_result(self, now: float) -> None:
        if self.next >= len(self.fake.utterances) or self.seg_start is None:
            return
        text, seconds = self.fake.utterances[self.next]
        parts = text.split()
        k = min(len(parts), int(len(parts) * (self.last_loud - self.seg_start) / max(seconds, 0.1)))
        if k == 0:
            return
        partial = " ".join(parts[:k])
        await self.send(self.results(self.final_end, now, partial, _words(partial, self.seg_start, self.last_loud), is_final=False))

    async def finalize(self, *, from_finalize: bool) -> None:
        now = self.processed / self.rate
        if self.seg_start is not None or now > self.final_end:
            await self.final(now, speech_final=False, from_finalize=from_finalize)


@contextlib.asynccontextmanager
async def conformance_environment() -> AsyncIterator[dict[str, dict[str, Any]]]:
    """Start a :class:`FakeDeepgram` that can hear the conformance check's sentence, and
    yield the options that point the ``deepgram`` STT at it."""
    from livekit.agents.testing.speech import speech

    async with FakeDeepgram() as fake:
        fake.expect(speech(CONFORMANCE_TEXT))
        yield {"stt:deepgram": {"api_key": fake.api_key, "base_url": fake.base_url}}
