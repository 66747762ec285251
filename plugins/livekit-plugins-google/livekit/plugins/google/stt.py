"""Google Cloud Speech-to-Text v1 through the official ``google-cloud-speech`` client.

* ``recognize()``: ``Speech.Recognize`` (synchronous recognition, up to one minute).
* ``stream()``: ``Speech.StreamingRecognize`` with interim results. A v1 stream ends after
  about five minutes, so the stream rotates to a new gRPC stream once it has carried
  ``max_stream_duration`` seconds of audio, preferably at a quiet moment; a retryable
  failure opens a new stream that replays the audio no final result covered yet, with
  timestamps kept relative to the start of the :class:`SpeechStream`.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from livekit import rtc

from google.cloud import speech_v1 as speech
from google.cloud.speech_v1.services.speech.transports import SpeechGrpcAsyncIOTransport
from livekit.agents import stt
from livekit.agents.exceptions import APIError, APIResponseError, APIStatusError, APITimeoutError
from livekit.agents.utils.audio import AudioBuffer, Resampler, merge_frames, resample, rms, to_mono
from livekit.agents.utils.retry import RetryOptions, with_retries
from livekit.agents.utils.streams import Flush

from ._common import ClientSource, map_error
from .log import logger

SERVICE = "Google Speech-to-Text"
CHUNK_SECONDS = 0.1
"""Audio per StreamingRecognizeRequest (Google recommends ~100 ms; the limit is 25 KB)."""
MAX_SEND_SPEED = 10.0
"""Buffered audio (a burst, a replay after a failure) is sent at most this much faster than real time."""


@dataclass
class _Options:
    language: str
    alternative_languages: list[str]
    model: str
    interim_results: bool
    punctuate: bool
    profanity_filter: bool
    phrases: list[str]
    sample_rate: int
    max_stream_duration: float
    read_timeout: float
    retry: RetryOptions


class STT(stt.STT):
    """Google Cloud Speech-to-Text v1.

    Args:
        language: BCP-47 code, e.g. ``en-US``.
        alternative_languages: up to 3 more languages the service may detect.
        model: ``latest_long``, ``latest_short``, ``phone_call``, ``video``, ``default``...
        interim_results: streams emit interim transcripts.
        punctuate: ``enable_automatic_punctuation``.
        profanity_filter: mask profanities.
        phrases: hint phrases (a speech context).
        sample_rate: the LINEAR16 rate sent (input is resampled to it and mixed to mono).
        credentials / credentials_file: explicit credentials or a key file; default:
            application default credentials (``GOOGLE_APPLICATION_CREDENTIALS``, gcloud).
        endpoint: ``host:port`` of the API (default ``speech.googleapis.com``, or a
            regional endpoint such as ``eu-speech.googleapis.com``).
        insecure: talk plaintext gRPC to ``endpoint`` (an emulator or test server); any
            credentials are sent only when the endpoint is loopback.
        transport: a ready ``SpeechGrpcAsyncIOTransport`` (overrides the above).
        max_stream_duration: seconds of audio after which a stream rotates (the service
            ends v1 streams after about 305 s).
        read_timeout: seconds to wait for the final results once the audio has ended.
        retry: attempts and backoff (``RetryInfo`` delays are honoured).
    """

    def __init__(
        self,
        *,
        language: str = "en-US",
        alternative_languages: list[str] | None = None,
        model: str = "latest_long",
        interim_results: bool = True,
        punctuate: bool = True,
        profanity_filter: bool = False,
        phrases: list[str] | None = None,
        sample_rate: int = 16000,
        credentials: Any = None,
        credentials_file: str | os.PathLike[str] | None = None,
        endpoint: str | None = None,
        insecure: bool = False,
        transport: SpeechGrpcAsyncIOTransport | None = None,
        max_stream_duration: float = 290.0,
        read_timeout: float = 10.0,
        retry: RetryOptions | None = None,
    ) -> None:
        if insecure and not endpoint and transport is None:
            raise ValueError("insecure=True needs endpoint='host:port' (an emulator or test server)")
        if not 8000 <= sample_rate <= 48000:
            raise ValueError(f"Google Speech-to-Text takes LINEAR16 at 8000 to 48000 Hz, not {sample_rate}")
        super().__init__(capabilities=stt.STTCapabilities(streaming=True, interim_results=interim_results))
        self._opts = _Options(
            language=language,
            alternative_languages=list(alternative_languages or []),
            model=model,
            interim_results=interim_results,
            punctuate=punctuate,
            profanity_filter=profanity_filter,
            phrases=list(phrases or []),
            sample_rate=sample_rate,
            max_stream_duration=max_stream_duration,
            read_timeout=read_timeout,
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
        return f"google.STT(language={self._opts.language!r}, model={self._opts.model!r}, endpoint={self._source.endpoint!r})"

    def client(self) -> speech.SpeechAsyncClient:
        """The official async client (created on first use, in the running event loop)."""
        return self._source.client(speech.SpeechAsyncClient, SpeechGrpcAsyncIOTransport)

    def recognition_config(self, language: str | None = None) -> speech.RecognitionConfig:
        o = self._opts
        config = speech.RecognitionConfig(
            encoding=speech.RecognitionConfig.AudioEncoding.LINEAR16,
            sample_rate_hertz=o.sample_rate,
            audio_channel_count=1,
            language_code=language or o.language,
            alternative_language_codes=o.alternative_languages,
            model=o.model,
            enable_automatic_punctuation=o.punctuate,
            enable_word_time_offsets=True,
            profanity_filter=o.profanity_filter,
        )
        if o.phrases:
            config.speech_contexts = [speech.SpeechContext(phrases=o.phrases)]
        return config

    async def recognize(self, buffer: AudioBuffer, *, language: str | None = None) -> stt.SpeechEvent:
        frame = resample(to_mono(merge_frames(buffer)), self._opts.sample_rate)
        request = speech.RecognizeRequest(
            config=self.recognition_config(language), audio=speech.RecognitionAudio(content=bytes(frame.data))
        )
        client = self.client()

        async def attempt() -> speech.RecognizeResponse:
            try:
                response = await client.recognize(request=request, retry=None, timeout=self._opts.retry.timeout)
            except Exception as exc:
                raise map_error(exc, SERVICE, "recognizing speech") from None
            if not isinstance(response, speech.RecognizeResponse):
                raise APIResponseError(f"{SERVICE} sent a malformed answer (not a RecognizeResponse)")
            return response

        response = await with_retries(attempt, options=self._opts.retry, what=f"{SERVICE} recognize")
        texts, confidences, lang = [], [], language or self._opts.language
        start, end = None, 0.0
        for result in response.results:
            if not result.alternatives:
                continue
            best = result.alternatives[0]
            texts.append(best.transcript.strip())
            confidences.append(best.confidence)
            lang = result.language_code or lang
            if best.words:
                start = best.words[0].start_time.total_seconds() if start is None else start
                end = best.words[-1].end_time.total_seconds()
        data = stt.SpeechData(
            text=" ".join(t for t in texts if t),
            language=lang,
            start_time=start or 0.0,
            end_time=end or frame.samples_per_channel / frame.sample_rate,
            confidence=sum(confidences) / len(confidences) if confidences else 0.0,
        )
        return stt.SpeechEvent(stt.SpeechEventType.FINAL_TRANSCRIPT, [data], request_id=str(response.request_id or ""))

    def stream(self, *, language: str | None = None) -> SpeechStream:
        return SpeechStream(self, language or self._opts.language)

    async def aclose(self) -> None:
        await self._source.aclose()


@dataclass
class _Chunk:
    start: float  # seconds from the start of the SpeechStream
    pcm: bytes
    rate: int

    @property
    def end(self) -> float:
        return self.start + len(self.pcm) / 2 / self.rate


class _Reason:
    ENDED, FLUSH, ROTATE = "ended", "flush", "rotate"


class SpeechStream(stt.SpeechStream):
    """Streaming recognition over one or more consecutive gRPC streams."""

    def __init__(self, stt_: STT, language: str) -> None:
        self._stt = stt_
        self._opts = stt_._opts
        self._language = language
        self._audio: asyncio.Queue[_Chunk | Flush | None] = asyncio.Queue()
        self._pending: deque[_Chunk] = deque()  # sent, not yet covered by a final result
        self._carry: _Chunk | None = None
        self._in_speech = False
        self._last_final_end = 0.0
        self.streams_opened = 0
        """How many gRPC streams this stream opened (rotations and retries add one)."""
        super().__init__()

    async def _read_input(self) -> None:
        rate = self._opts.sample_rate
        resampler: Resampler | None = None
        buf = bytearray()
        pos = 0.0
        size = int(rate * CHUNK_SECONDS) * 2

        def cut(all_: bool) -> None:
            nonlocal pos
            while len(buf) >= size or (all_ and buf):
                data = bytes(buf[:size])
                del buf[:size]
                self._audio.put_nowait(_Chunk(pos, data, rate))
                pos += len(data) / 2 / rate

        async for item in self._input():
            if isinstance(item, Flush):
                if resampler is not None:
                    for f in resampler.flush():
                        buf.extend(bytes(f.data))
                cut(True)
                self._audio.put_nowait(item)
                continue
            frame: rtc.AudioFrame = to_mono(item)
            if resampler is None or resampler.input_rate != frame.sample_rate:
                resampler = Resampler(frame.sample_rate, rate)
            for f in resampler.push(frame):
                buf.extend(bytes(f.data))
            cut(False)
        if resampler is not None:
            for f in resampler.flush():
                buf.extend(bytes(f.data))
        cut(True)
        self._audio.put_nowait(None)

    async def _run(self) -> None:
        reader = asyncio.ensure_future(self._read_input())
        failures = 0
        try:
            while True:
                if not self._pending:
                    item = await self._audio.get()
                    if item is None:
                        break
                    if isinstance(item, Flush):
                        continue
                    self._carry = item  # a stream opens only once there is audio to send
                try:
                    reason = await self._session()
                    failures = 0
                except APIError as exc:
                    failures += 1
                    if not exc.retryable or failures >= self._opts.retry.max_attempts:
                        if exc.retryable:
                            exc.args = (f"{exc.args[0]} (gave up after {failures} attempts)",)
                            exc.message = exc.args[0]
                        raise
                    wait = self._opts.retry.delay(failures, exc)
                    logger.warning(
                        "%s stream failed (%s); reopening in %.1f s and replaying %.1f s of audio",
                        SERVICE, exc.message, wait, sum(c.end - c.start for c in self._pending),
                    )
                    await asyncio.sleep(wait)
                    continue
                if reason == _Reason.ENDED:
                    break
        finally:
            reader.cancel()

    def _config(self) -> speech.StreamingRecognitionConfig:
        return speech.StreamingRecognitionConfig(
            config=self._stt.recognition_config(self._language),
            interim_results=self._opts.interim_results,
            single_utterance=False,
        )

    async def _session(self) -> str:
        """One gRPC stream: send audio until the end, a flush or a rotation, then half-close
        and read the remaining results."""
        self.streams_opened += 1
        replay = list(self._pending)
        first = replay[0] if replay else self._carry
        assert first is not None
        origin = first.start
        requests: asyncio.Queue[bytes | None] = asyncio.Queue()
        for c in replay:
            requests.put_nowait(c.pcm)
        if not replay and self._carry is not None:
            self._pending.append(self._carry)
            requests.put_nowait(self._carry.pcm)
        self._carry = None
        sent = sum(len(c.pcm) for c in self._pending) / 2 / self._opts.sample_rate
        self._in_speech = False
        config = self._config()

        async def request_iter() -> AsyncIterator[speech.StreamingRecognizeRequest]:
            yield speech.StreamingRecognizeRequest(streaming_config=config)
            while True:
                pcm = await requests.get()
                if pcm is None:
                    return
                yield speech.StreamingRecognizeRequest(audio_content=pcm)
                # at most MAX_SEND_SPEED x real time: the service wants audio at about real time
                await asyncio.sleep(len(pcm) / 2 / self._opts.sample_rate / MAX_SEND_SPEED)

        client = self._stt.client()
        try:
            call = await client.streaming_recognize(
                requests=request_iter(), retry=None, timeout=self._opts.max_stream_duration + 120
            )
        except Exception as exc:
            raise map_error(exc, SERVICE, "opening a recognition stream") from None
        first = _FirstStatus.watch(call)
        receiver = asyncio.ensure_future(self._receive(call, origin, first))
        reason = _Reason.ENDED
        try:
            while True:
                getter = asyncio.ensure_future(self._audio.get())
                await asyncio.wait({getter, receiver}, return_when=asyncio.FIRST_COMPLETED)
                if not getter.done():
                    getter.cancel()
                    receiver.result()  # the stream failed: raise its error
                    raise map_error(
                        ConnectionError("the service ended the stream early"), SERVICE, "streaming audio"
                    )
                item = getter.result()
                if item is None:
                    self._audio.put_nowait(None)  # seen again by _run after this session
                    reason = _Reason.ENDED
                    break
                if isinstance(item, Flush):
                    reason = _Reason.FLUSH
                    break
                self._pending.append(item)
                requests.put_nowait(item.pcm)
                sent += item.end - item.start
                if self._should_rotate(sent, item):
                    reason = _Reason.ROTATE
                    break
            requests.put_nowait(None)  # half-close: the service sends its last results
            try:
                await asyncio.wait_for(asyncio.shield(receiver), self._opts.read_timeout)
            except asyncio.TimeoutError:
                raise APITimeoutError(
                    f"{SERVICE} sent no final result within {self._opts.read_timeout:.0f} s of the end of the audio",
                    retryable=True,
                ) from None
        finally:
            if not receiver.done():
                receiver.cancel()
                try:
                    await receiver
                except (asyncio.CancelledError, Exception):
                    pass
                call.cancel() if hasattr(call, "cancel") else None
        self._pending.clear()  # the half-closed stream finalized everything it was sent
        if reason == _Reason.ROTATE:
            logger.debug("%s: rotating the stream after %.1f s of audio", SERVICE, sent)
        return reason

    def _should_rotate(self, sent: float, last: _Chunk) -> bool:
        limit = self._opts.max_stream_duration
        if sent >= limit:
            return True
        if sent < 0.8 * limit or self._in_speech:
            return False
        frame = rtc.AudioFrame(last.pcm, last.rate, 1, len(last.pcm) // 2)
        return rms(frame) < 200  # a quiet moment after a final result

    async def _receive(self, call: Any, origin: float, first: _FirstStatus) -> None:
        try:
            async for response in call:
                if not isinstance(response, speech.StreamingRecognizeResponse):
                    raise APIResponseError(f"{SERVICE} sent a malformed answer (not a StreamingRecognizeResponse)")
                if response.error and response.error.code:
                    raise APIStatusError(
                        f"{SERVICE} stream error {response.error.code}: {response.error.message}",
                        status_code=500,
                    )
                self._handle(response, origin)
        except APIError:
            raise
        except Exception as exc:
            true = await _true_status(call, exc, first)
            if true is None:
                return  # the service ended the stream with OK; _session decides whether that was early
            err = map_error(true, SERVICE, "streaming recognition")
            if "maximum allowed stream duration" in err.message.lower():
                err.retryable = True  # rotate: replay what no final covered
            raise err from None

    def _handle(self, response: speech.StreamingRecognizeResponse, origin: float) -> None:
        results = [r for r in response.results if r.alternatives]
        if not results:
            return
        if not self._in_speech:
            self._in_speech = True
            self._emit(stt.SpeechEvent(stt.SpeechEventType.START_OF_SPEECH))
        final = [r for r in results if r.is_final]
        if final:
            for r in final:
                best = r.alternatives[0]
                end = origin + r.result_end_time.total_seconds()
                start = origin + best.words[0].start_time.total_seconds() if best.words else self._last_final_end
                data = stt.SpeechData(
                    text=best.transcript.strip(),
                    language=r.language_code or self._language,
                    start_time=start,
                    end_time=end,
                    confidence=best.confidence,
                )
                self._emit(stt.SpeechEvent(stt.SpeechEventType.FINAL_TRANSCRIPT, [data]))
                self._last_final_end = end
                while self._pending and self._pending[0].end <= end + 1e-6:
                    self._pending.popleft()
            self._in_speech = False
            self._emit(stt.SpeechEvent(stt.SpeechEventType.END_OF_SPEECH))
            return
        text = re.sub(r"\s+", " ", " ".join(r.alternatives[0].transcript.strip() for r in results)).strip()
        last = results[-1]
        data = stt.SpeechData(
            text=text,
            language=last.language_code or self._language,
            start_time=self._last_final_end,
            end_time=origin + last.result_end_time.total_seconds(),
            confidence=last.stability,
        )
        self._emit(stt.SpeechEvent(stt.SpeechEventType.INTERIM_TRANSCRIPT, [data]))


_CORE_INTERNAL = "internal error from core"


def _status_now(coro: Any) -> Any:
    """Run a status getter of a finished grpc.aio call (it returns without suspending)."""
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value
    coro.close()
    raise RuntimeError("the call has no status yet")


class _FirstStatus:
    """The first status grpc.aio recorded for a call.

    When the service ends a stream (INVALID_ARGUMENT, OUT_OF_RANGE...) while a request
    write is in flight, the write fails and grpc.aio (``_StreamRequestMixin._write``)
    calls ``set_internal_error``, which overwrites the status the service already sent
    with INTERNAL "Internal error from Core" for good (grpc/grpc#36066). A done callback
    runs once, when the first status is set, so it sees the service's status.
    """

    def __init__(self) -> None:
        self.code: Any = None
        self.details = ""
        self.trailing: Any = None

    @classmethod
    def watch(cls, call: Any) -> _FirstStatus:
        first = cls()
        try:
            call.add_done_callback(first._done)
        except Exception:  # a call type without done callbacks: only the late status helps
            pass
        return first

    def _done(self, call: Any) -> None:  # called by grpc.aio: must not raise
        try:
            self.code = _status_now(call.code())
            self.details = _status_now(call.details()) or ""
            self.trailing = _status_now(call.trailing_metadata())
        except Exception:
            self.code = None

    @property
    def from_service(self) -> bool:
        return self.code is not None and _CORE_INTERNAL not in self.details.lower()


async def _true_status(call: Any, exc: BaseException, first: _FirstStatus) -> BaseException | None:
    """The status the service sent, when grpc.aio reported its own INTERNAL error instead
    (``None`` when the service had ended the stream with OK).

    Either the service's status came first and a failed write overwrote it (it is in
    ``first``), or the write failed first and the service's status may still arrive and
    replace grpc.aio's (polled for a moment).
    """
    import grpc
    import grpc.aio

    if _CORE_INTERNAL not in str(exc).lower():
        return exc
    if first.from_service:
        logger.debug("%s: a failed write hid the stream's status %s; reporting that status", SERVICE, first.code)
        if first.code == grpc.StatusCode.OK:
            return None
        return grpc.aio.AioRpcError(
            first.code, grpc.aio.Metadata(), first.trailing or grpc.aio.Metadata(), first.details
        )
    from google.api_core import exceptions as gexc

    for _ in range(20):
        await asyncio.sleep(0.01)
        try:
            code, details = await call.code(), await call.details()
        except Exception:
            return exc
        if code is not None and _CORE_INTERNAL not in (details or "").lower():
            if code == grpc.StatusCode.OK:
                return None
            return gexc.from_grpc_status(code, details or "", response=None)
    return exc
