"""Deepgram speech-to-text: live streaming (``wss://.../v1/listen``) and pre-recorded
(``POST /v1/listen``), over plain aiohttp."""

from __future__ import annotations

import asyncio
import json
import os
import time
from dataclasses import replace
from typing import Any
from urllib.parse import urlencode

import aiohttp
from livekit import rtc

from livekit.agents import stt
from livekit.agents.exceptions import (
    APIAuthenticationError,
    APIConnectionError,
    APIError,
    APIResponseError,
    APIStatusError,
    APITimeoutError,
    MissingCredentialsError,
)
from livekit.agents.utils.audio import AudioBuffer, Resampler, merge_frames, to_mono, wav_bytes
from livekit.agents.utils.retry import DEFAULT_RETRY, RetryOptions, parse_retry_after, with_retries
from livekit.agents.utils.streams import Flush

from ._replay import ReplayBuffer
from .log import logger

ENV_KEY = "DEEPGRAM_API_KEY"
DEFAULT_BASE_URL = "https://api.deepgram.com"


def _bool(v: bool) -> str:
    return "true" if v else "false"


class STT(stt.STT):
    """Deepgram speech-to-text.

    ``stream()`` speaks Deepgram's live websocket: audio goes out as 16-bit PCM at
    ``sample_rate`` (input is resampled and mixed to mono), interim results arrive as
    ``INTERIM_TRANSCRIPT``, finals as ``FINAL_TRANSCRIPT``, ``SpeechStarted`` as
    ``START_OF_SPEECH`` and ``speech_final`` / ``UtteranceEnd`` as ``END_OF_SPEECH``.
    A dropped connection is reopened and the audio not yet covered by a final result is
    sent again, so nothing is lost or transcribed twice. ``recognize()`` uses the
    pre-recorded endpoint.

    Args:
        model: Deepgram model (``nova-3``, ``nova-2``, ...).
        language: BCP-47 language (``en-US``); ``None`` leaves Deepgram's default.
        interim_results: stream interim transcripts.
        punctuate, smart_format: Deepgram's formatting options.
        endpointing_ms: silence (ms) that ends an utterance (``speech_final``); ``None`` disables.
        vad_events: ask for ``SpeechStarted`` messages.
        utterance_end_ms: ask for ``UtteranceEnd`` after this much silence (needs
            interim results; Deepgram's minimum is 1000); ``None`` disables.
        sample_rate: rate of the audio sent to Deepgram.
        api_key: defaults to ``DEEPGRAM_API_KEY``.
        base_url: defaults to ``https://api.deepgram.com`` (``ws(s)://`` is derived for streams).
        keepalive_interval: seconds of no audio after which a ``KeepAlive`` is sent
            (Deepgram closes a stream after about 10 s without data).
        timeout: seconds to wait for an HTTP answer, a websocket handshake, or a result
            for audio already sent (a stalled stream).
        retry: retry policy for 429, 5xx, connection errors and dropped streams.
    """

    def __init__(
        self,
        *,
        model: str = "nova-3",
        language: str | None = "en-US",
        interim_results: bool = True,
        punctuate: bool = True,
        smart_format: bool = True,
        endpointing_ms: int | None = 25,
        vad_events: bool = True,
        utterance_end_ms: int | None = 1000,
        sample_rate: int = 16000,
        api_key: str | None = None,
        base_url: str | None = None,
        keepalive_interval: float = 5.0,
        timeout: float | None = None,
        retry: RetryOptions | None = None,
        max_replay_seconds: float = 120.0,
    ) -> None:
        super().__init__(capabilities=stt.STTCapabilities(streaming=True, interim_results=interim_results))
        key = api_key or os.environ.get(ENV_KEY)
        if not key:
            raise MissingCredentialsError("Deepgram STT", ENV_KEY)
        self._key = key
        self.model = model
        self.language = language
        self.interim_results = interim_results
        self.punctuate = punctuate
        self.smart_format = smart_format
        self.endpointing_ms = endpointing_ms
        self.vad_events = vad_events
        self.utterance_end_ms = utterance_end_ms
        self.sample_rate = sample_rate
        self.base_url = (base_url or os.environ.get("DEEPGRAM_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        self.keepalive_interval = keepalive_interval
        self.retry = retry or DEFAULT_RETRY
        if timeout is not None:
            self.retry = replace(self.retry, timeout=timeout)
        self.max_replay_seconds = max_replay_seconds
        self._session: aiohttp.ClientSession | None = None

    # --- shared -----------------------------------------------------------------------

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return self._session

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Token {self._key}"}

    def _redact(self, text: str) -> str:
        return text.replace(self._key, "<redacted>") if self._key else text

    def _status_error(self, what: str, status: int, detail: str, headers: Any, request_id: str | None = None) -> APIStatusError:
        detail = self._redact(detail)
        if status in (401, 403):
            return APIAuthenticationError(
                f"{what}: Deepgram refused the API key (HTTP {status}): {detail}. "
                f"Check {ENV_KEY} or the api_key argument.",
                status_code=status,
                request_id=request_id,
            )
        return APIStatusError(
            f"{what}: Deepgram answered HTTP {status}: {detail}",
            status_code=status,
            request_id=request_id,
            retry_after=_retry_after(headers),
        )

    def _live_params(self, language: str | None) -> dict[str, str]:
        params = {
            "model": self.model,
            "encoding": "linear16",
            "sample_rate": str(self.sample_rate),
            "channels": "1",
            "interim_results": _bool(self.interim_results),
            "punctuate": _bool(self.punctuate),
            "smart_format": _bool(self.smart_format),
            "vad_events": _bool(self.vad_events),
            "endpointing": str(self.endpointing_ms) if self.endpointing_ms is not None else "false",
        }
        lang = language or self.language
        if lang:
            params["language"] = lang
        if self.utterance_end_ms is not None and self.interim_results:
            params["utterance_end_ms"] = str(self.utterance_end_ms)
        return params

    # --- pre-recorded -----------------------------------------------------------------

    async def recognize(self, buffer: AudioBuffer, *, language: str | None = None) -> stt.SpeechEvent:
        frame = to_mono(merge_frames(buffer))
        body = wav_bytes(frame)
        params = {"model": self.model, "punctuate": _bool(self.punctuate), "smart_format": _bool(self.smart_format)}
        lang = language or self.language
        if lang:
            params["language"] = lang
        url = f"{self.base_url}/v1/listen?{urlencode(params)}"
        what = "Deepgram recognize"

        async def attempt() -> Any:
            try:
                async with self._http().post(
                    url,
                    data=body,
                    headers={**self._headers(), "Content-Type": "audio/wav"},
                    timeout=aiohttp.ClientTimeout(total=self.retry.timeout),
                ) as resp:
                    raw = await resp.read()
                    if resp.status >= 400:
                        detail, request_id = _error_detail(raw)
                        raise self._status_error(what, resp.status, detail, resp.headers, request_id)
            except asyncio.TimeoutError:
                raise APITimeoutError(f"{what}: Deepgram did not answer within {self.retry.timeout:.1f} s ({self.base_url})") from None
            except aiohttp.ClientPayloadError as exc:
                raise APIConnectionError(f"{what}: the answer was cut off ({exc})") from None
            except aiohttp.ClientError as exc:
                raise APIConnectionError(f"{what}: connection to Deepgram failed ({self.base_url}): {self._redact(str(exc))}") from None
            try:
                data = json.loads(raw)
                alt = data["results"]["channels"][0]["alternatives"][0]
                return data, alt
            except (ValueError, KeyError, IndexError, TypeError):
                raise APIResponseError(f"{what}: Deepgram's answer is malformed: {raw[:200]!r}") from None

        data, alt = await with_retries(attempt, options=self.retry, what=what)
        words = alt.get("words") or []
        duration = frame.samples_per_channel / frame.sample_rate
        return stt.SpeechEvent(
            type=stt.SpeechEventType.FINAL_TRANSCRIPT,
            request_id=str(data.get("metadata", {}).get("request_id", "")),
            alternatives=[
                stt.SpeechData(
                    text=str(alt.get("transcript", "")),
                    language=lang or "",
                    start_time=float(words[0]["start"]) if words else 0.0,
                    end_time=float(words[-1]["end"]) if words else duration,
                    confidence=float(alt.get("confidence", 0.0)),
                )
            ],
        )

    # --- live -------------------------------------------------------------------------

    def stream(self, *, language: str | None = None) -> SpeechStream:
        return SpeechStream(self, language)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class _Dropped(Exception):
    """The live connection ended before the stream did (retryable)."""

    def __init__(self, error: APIError) -> None:
        self.error = error


class SpeechStream(stt.SpeechStream):
    """One live Deepgram stream. See :class:`STT`."""

    def __init__(self, stt_: STT, language: str | None) -> None:
        self._stt = stt_
        self._params = stt_._live_params(language)
        self._language = language or stt_.language or ""
        self._rate = stt_.sample_rate
        self._replay = ReplayBuffer(self._rate)  # audio not yet covered by a final result
        self._wake = asyncio.Event()
        self._input_done = False
        self._speaking = False
        self._request_id = ""
        super().__init__()

    # --- input ------------------------------------------------------------------------

    async def _read_input(self) -> None:
        resampler: Resampler | None = None
        warned = False
        async for item in self._input():
            if isinstance(item, Flush):
                if resampler is not None:
                    self._append(resampler.flush())
                self._replay.mark("Finalize")
            else:
                frame: rtc.AudioFrame = to_mono(item)
                if resampler is None or resampler.input_rate != frame.sample_rate:
                    if resampler is not None:
                        self._append(resampler.flush())
                    resampler = Resampler(frame.sample_rate, self._rate)
                self._append(resampler.push(frame))
                if self._replay.retained_seconds > self._stt.max_replay_seconds and not warned:
                    warned = True
                    logger.warning("more than %.0f s of audio has no final result yet", self._stt.max_replay_seconds)
            self._wake.set()
        if resampler is not None:
            self._append(resampler.flush())
        self._replay.mark("CloseStream")
        self._input_done = True
        self._wake.set()

    def _append(self, frames: list[rtc.AudioFrame]) -> None:
        for f in frames:
            self._replay.append(bytes(f.data))

    # --- main loop --------------------------------------------------------------------

    async def _run(self) -> None:
        reader = asyncio.create_task(self._read_input())
        failures = 0
        try:
            while True:
                ws = await self._connect()
                progress_before = self._replay.base
                try:
                    await self._session(ws)
                    break
                except _Dropped as dropped:
                    failures = 0 if self._replay.base > progress_before else failures + 1
                    if failures >= self._stt.retry.max_attempts:
                        err = dropped.error
                        err.args = (f"{err.args[0]} (gave up after {failures} reconnects)",)
                        err.message = err.args[0]
                        raise err from None
                    wait = self._stt.retry.delay(failures, dropped.error)
                    logger.warning(
                        "Deepgram stream dropped (%s); reconnecting in %.1f s and replaying %.2f s of audio",
                        dropped.error.message, wait, self._replay.retained_seconds,
                    )
                    await asyncio.sleep(wait)
                finally:
                    await ws.close()
            if self._speaking:
                self._speaking = False
                self._emit(stt.SpeechEvent(stt.SpeechEventType.END_OF_SPEECH, request_id=self._request_id))
            await reader
        finally:
            reader.cancel()

    async def _connect(self) -> aiohttp.ClientWebSocketResponse:
        s = self._stt
        base = s.base_url.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
        url = f"{base}/v1/listen?{urlencode(self._params)}"
        what = "Deepgram stream"

        async def attempt() -> aiohttp.ClientWebSocketResponse:
            try:
                return await s._http().ws_connect(
                    url, headers=s._headers(), timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=s.retry.timeout),
                    autoping=True, heartbeat=None,
                )
            except aiohttp.WSServerHandshakeError as exc:
                headers = exc.headers or {}
                detail = headers.get("dg-error") or exc.message or "handshake refused"
                raise s._status_error(what, exc.status, str(detail), headers, headers.get("dg-request-id")) from None
            except asyncio.TimeoutError:
                raise APITimeoutError(f"{what}: Deepgram did not accept the connection within {s.retry.timeout:.1f} s") from None
            except aiohttp.ClientError as exc:
                raise APIConnectionError(f"{what}: connection to Deepgram failed ({s.base_url}): {s._redact(str(exc))}") from None

        async def timed() -> aiohttp.ClientWebSocketResponse:
            try:
                return await asyncio.wait_for(attempt(), s.retry.timeout)
            except asyncio.TimeoutError:
                raise APITimeoutError(f"{what}: Deepgram did not accept the connection within {s.retry.timeout:.1f} s") from None

        return await with_retries(timed, options=s.retry, what=what)

    async def _session(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """Run one connection: replay the retained audio, send new audio, receive results.
        Returns when Deepgram closes after CloseStream; raises :class:`_Dropped` otherwise."""
        replay = self._replay
        session_base = replay.base
        state: dict[str, Any] = {"sent": replay.base, "closing": False, "last_rx": time.monotonic(), "rx_sent": replay.base}
        chunk = self._rate * 2 // 10  # at most 100 ms of audio per message
        done: set[int] = set()

        async def send_audio_to(target: int) -> None:
            if state["sent"] < target and state["sent"] == state["rx_sent"]:
                state["last_rx"] = time.monotonic()  # starts waiting for results now
            while state["sent"] < target:
                piece = replay.read(state["sent"], min(chunk, target - state["sent"]))
                await ws.send_bytes(piece)
                state["sent"] += len(piece)

        async def send() -> None:
            last_tx = time.monotonic()
            while True:
                # control messages go out at their place in the audio
                for marker in list(replay.markers):
                    if marker.id in done:
                        continue
                    await send_audio_to(marker.offset)
                    if marker.kind == "CloseStream":
                        state["last_rx"] = time.monotonic()
                    await ws.send_str(json.dumps({"type": marker.kind}))
                    done.add(marker.id)
                    last_tx = time.monotonic()
                    if marker.kind == "CloseStream":
                        state["closing"] = True
                        return
                before = state["sent"]
                await send_audio_to(replay.end)
                if state["sent"] > before:
                    last_tx = time.monotonic()
                self._wake.clear()
                if replay.end > state["sent"] or any(m.id not in done for m in replay.markers):
                    continue
                idle = time.monotonic() - last_tx
                try:
                    await asyncio.wait_for(self._wake.wait(), max(0.0, self._stt.keepalive_interval - idle))
                except asyncio.TimeoutError:
                    await ws.send_str(json.dumps({"type": "KeepAlive"}))
                    last_tx = time.monotonic()

        sender = asyncio.create_task(send())
        try:
            await self._receive(ws, session_base, state, sender)
        finally:
            sender.cancel()
            try:
                await sender
            except (asyncio.CancelledError, Exception):
                pass

    async def _receive(self, ws: aiohttp.ClientWebSocketResponse, session_base: int, state: dict[str, Any], sender: asyncio.Task[None]) -> None:
        timeout = self._stt.retry.timeout
        while True:
            try:
                msg = await ws.receive(timeout=min(timeout, 1.0))
            except asyncio.TimeoutError:
                if sender.done() and not state["closing"] and sender.exception() is not None:
                    raise _Dropped(APIConnectionError(f"Deepgram stream: sending failed: {sender.exception()}")) from None
                waiting = state["closing"] or state["sent"] > state["rx_sent"]
                if waiting and time.monotonic() - state["last_rx"] > timeout:
                    raise _Dropped(APITimeoutError(f"Deepgram stream: no answer for {timeout:.1f} s (stalled connection)")) from None
                continue
            if msg.type == aiohttp.WSMsgType.TEXT:
                state["last_rx"] = time.monotonic()
                state["rx_sent"] = state["sent"]
                try:
                    data = json.loads(msg.data)
                    if not isinstance(data, dict):
                        raise ValueError("not an object")
                    self._handle(data, session_base, state)
                except (ValueError, KeyError, IndexError, TypeError) as exc:
                    raise APIResponseError(f"Deepgram stream: malformed message ({exc}): {str(msg.data)[:200]!r}") from None
            elif msg.type == aiohttp.WSMsgType.BINARY:
                continue
            elif msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                code = ws.close_code
                reason = msg.extra if isinstance(msg.extra, str) else ""
                if state["closing"] and code in (1000, None) and msg.type != aiohttp.WSMsgType.ERROR:
                    return
                if code == 1008:
                    # Deepgram's policy close (e.g. DATA-0000: audio it cannot decode): retrying cannot help
                    raise APIStatusError(f"Deepgram stream: Deepgram rejected the stream: {reason or 'policy violation'} (close code 1008)", status_code=400, retryable=False)
                raise _Dropped(APIConnectionError(f"Deepgram stream: the server closed the connection mid-stream (code {code}{', ' + reason if reason else ''})"))

    def _handle(self, data: dict[str, Any], session_base: int, state: dict[str, Any]) -> None:
        kind = data.get("type")
        offset = session_base / 2 / self._rate
        if kind == "Results":
            meta = data.get("metadata") or {}
            self._request_id = str(meta.get("request_id", self._request_id))
            alts = data["channel"]["alternatives"]
            start, duration = float(data.get("start", 0.0)), float(data.get("duration", 0.0))
            speech = [self._speech_data(a, offset, start, duration) for a in alts]
            text = speech[0].text if speech else ""
            if text and not self._speaking:
                self._speaking = True
                self._emit(stt.SpeechEvent(stt.SpeechEventType.START_OF_SPEECH, request_id=self._request_id))
            if data.get("is_final"):
                if text:
                    self._emit(stt.SpeechEvent(stt.SpeechEventType.FINAL_TRANSCRIPT, speech, self._request_id))
                self._replay.covered(start + duration, session_base, state["sent"])
            elif text:
                self._emit(stt.SpeechEvent(stt.SpeechEventType.INTERIM_TRANSCRIPT, speech, self._request_id))
            if data.get("speech_final") and self._speaking:
                self._speaking = False
                self._emit(stt.SpeechEvent(stt.SpeechEventType.END_OF_SPEECH, request_id=self._request_id))
        elif kind == "SpeechStarted":
            if not self._speaking:
                self._speaking = True
                self._emit(stt.SpeechEvent(stt.SpeechEventType.START_OF_SPEECH, request_id=self._request_id))
        elif kind == "UtteranceEnd":
            if self._speaking:
                self._speaking = False
                self._emit(stt.SpeechEvent(stt.SpeechEventType.END_OF_SPEECH, request_id=self._request_id))
        elif kind == "Metadata":
            self._request_id = str(data.get("request_id", self._request_id))
        elif kind == "Error" or "err_code" in data:
            raise APIResponseError(f"Deepgram stream: Deepgram reported an error: {data.get('description') or data.get('err_msg') or data}")
        else:
            logger.debug("ignoring Deepgram message of type %r", kind)

    def _speech_data(self, alt: dict[str, Any], offset: float, start: float, duration: float) -> stt.SpeechData:
        words = alt.get("words") or []
        if words:
            t0, t1 = float(words[0]["start"]), float(words[-1]["end"])
        else:
            t0, t1 = start, start + duration
        return stt.SpeechData(
            text=str(alt.get("transcript", "")),
            language=self._language,
            start_time=offset + t0,
            end_time=offset + t1,
            confidence=float(alt.get("confidence", 0.0)),
        )


def _retry_after(headers: Any) -> float | None:
    return parse_retry_after(headers.get("Retry-After")) if headers is not None else None


def _error_detail(raw: bytes) -> tuple[str, str | None]:
    try:
        data = json.loads(raw)
        return str(data.get("err_msg") or data.get("message") or data), data.get("request_id")
    except (ValueError, AttributeError):
        return raw[:200].decode("utf-8", "replace") or "no details", None
