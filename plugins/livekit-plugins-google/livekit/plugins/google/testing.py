"""A fake of Google Cloud Speech-to-Text v1 and Text-to-Speech v1 on loopback gRPC.

One ``grpc.aio`` server with generic method handlers for ``google.cloud.speech.v1.Speech``
(``Recognize``, ``StreamingRecognize``) and ``google.cloud.texttospeech.v1.TextToSpeech``
(``SynthesizeSpeech``, ``ListVoices``), (de)serialized with the client libraries' own
message types. It checks what the clients send like the real service does and answers
with the real status codes (INVALID_ARGUMENT, OUT_OF_RANGE, UNAUTHENTICATED, ...).

Hearing: the fake finds utterances in the audio by its energy (10 ms frames, an utterance
ends after ``silence_ms`` of silence) and labels the n-th utterance it heard with the n-th
of ``transcripts``: interim results grow while the speech goes on, a final result comes at
its end. Silence, noise at the wrong place or missing audio therefore change what it hears.

Speaking: espeak-ng speaks the text (``livekit.agents.testing.speech``), returned as
LINEAR16 with a WAV header like the real service.

Authentication: the server uses gRPC local credentials, so clients can send call
credentials over loopback; with ``token`` set, every call must carry
``authorization: Bearer <token>`` (else UNAUTHENTICATED).

Failures are scripted per call with :meth:`FakeGoogleCloud.fail`.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal

import grpc
import grpc.aio
import numpy as np

from google.cloud import speech_v1 as speech
from google.cloud import texttospeech_v1 as tts
from google.protobuf import duration_pb2
from google.rpc import error_details_pb2, status_pb2
from livekit.agents.testing.speech import spoken_pcm
from livekit.agents.utils.audio import pcm_wav

Method = Literal["any", "Recognize", "StreamingRecognize", "SynthesizeSpeech", "ListVoices"]
FailureKind = Literal["status", "stall", "drop", "malformed"]
MAX_CHUNK_BYTES = 25600
SYNC_LIMIT_SECONDS = 60.0

VOICES = [
    ("en-US-Standard-C", ["en-US"], tts.SsmlVoiceGender.FEMALE),
    ("en-US-Standard-D", ["en-US"], tts.SsmlVoiceGender.MALE),
    ("en-US-Neural2-F", ["en-US"], tts.SsmlVoiceGender.FEMALE),
    ("en-GB-Standard-A", ["en-GB"], tts.SsmlVoiceGender.FEMALE),
    ("de-DE-Standard-A", ["de-DE"], tts.SsmlVoiceGender.FEMALE),
]


@dataclass
class Failure:
    """A scripted failure for the next matching call.

    * ``status``: fail with ``code`` (``RESOURCE_EXHAUSTED`` carries a ``RetryInfo`` of
      ``retry_after`` seconds when given); for StreamingRecognize after ``after_seconds``
      of audio (0: at once).
    * ``stall``: never answer (the stream reads the audio and stays silent).
    * ``drop``: StreamingRecognize: UNAVAILABLE after ``after_seconds`` of audio.
    * ``malformed``: Recognize / StreamingRecognize: bytes that are no protobuf;
      SynthesizeSpeech: a WAV header with no data chunk.
    """

    kind: FailureKind
    method: Method = "any"
    code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE
    message: str = ""
    retry_after: float | None = None
    after_seconds: float = 0.0


@dataclass
class Call:
    """A call the fake received. ``config`` is the request's config as a dict; the
    credentials are never stored, only whether they were right."""

    method: str
    authorized: bool | None = None
    config: dict[str, Any] = field(default_factory=dict)
    audio_seconds: float = 0.0
    requests: int = 0
    heard: list[str] = field(default_factory=list)
    status: str = "OK"
    completed: bool = False


class _Abort(Exception):
    def __init__(self, code: grpc.StatusCode, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.retry_after = code, message, retry_after


def _duration(seconds: float) -> duration_pb2.Duration:
    d = duration_pb2.Duration()
    d.FromNanoseconds(int(round(seconds * 1e9)))
    return d




class _Ear:
    """Finds utterances in LINEAR16 audio as it arrives (energy in 10 ms frames)."""

    def __init__(self, rate: int, silence_ms: int, threshold: float = 300.0, min_speech_ms: int = 120) -> None:
        self.rate = rate
        self.frame_bytes = rate // 100 * 2
        self.silence_frames = silence_ms // 10
        self.min_speech = min_speech_ms // 10
        self.threshold = threshold
        self._buf = bytearray()
        self.t = 0  # frames seen
        self.start: int | None = None
        self.loud = 0
        self.quiet = 0
        self.last_loud = 0

    def feed(self, pcm: bytes) -> list[tuple[str, float, float]]:
        """Events ``("speech", start, now)`` every frame in speech, ``("end", start, end)``."""
        self._buf.extend(pcm)
        events = []
        while len(self._buf) >= self.frame_bytes:
            frame = np.frombuffer(bytes(self._buf[: self.frame_bytes]), dtype=np.int16).astype(np.float64)
            del self._buf[: self.frame_bytes]
            loud = math.sqrt(float(np.mean(frame * frame))) > self.threshold
            self.t += 1
            if loud:
                if self.start is None:
                    self.start, self.loud = self.t - 1, 0
                self.loud += 1
                self.quiet = 0
                self.last_loud = self.t
            elif self.start is not None:
                self.quiet += 1
            if self.start is not None:
                if self.quiet >= self.silence_frames:
                    if self.loud >= self.min_speech:
                        events.append(("end", self.start / 100, self.last_loud / 100))
                    self.start = None
                elif self.loud >= self.min_speech:
                    events.append(("speech", self.start / 100, self.t / 100))
        return events

    def finish(self) -> list[tuple[str, float, float]]:
        if self.start is not None and self.loud >= self.min_speech:
            self.start, start = None, self.start
            return [("end", start / 100, self.last_loud / 100)]
        return []


class FakeGoogleCloud:
    """The fake Speech-to-Text and Text-to-Speech services. Start it in the event loop of
    the clients that use it (``async with FakeGoogleCloud() as fake``)."""

    def __init__(
        self,
        *,
        transcripts: list[str] | None = None,
        token: str | None = "fake-google-access-token",
        max_stream_seconds: float = 305.0,
        silence_ms: int = 400,
        word_ms: int = 350,
        chunk_delay: float = 0.0,
        host: str = "127.0.0.1",
        max_ahead_seconds: float = 15.0,
        idle_timeout: float = 10.0,
    ) -> None:
        self.transcripts = list(transcripts or [])
        self.token = token
        self.max_stream_seconds = max_stream_seconds
        self.silence_ms = silence_ms
        self.word_ms = word_ms
        self.chunk_delay = chunk_delay
        self.host = host
        self.max_ahead_seconds = max_ahead_seconds
        """Google wants streamed audio "approximately at real time" and answers OUT_OF_RANGE
        to audio sent faster: the fake, by its own clock, lets a stream's audio run at most
        this many seconds ahead of the stream's age (a backlog burst is tolerated)."""
        self.idle_timeout = idle_timeout
        """Seconds a stream may go without audio before OUT_OF_RANGE (Google's "Audio Timeout
        Error: Long duration elapsed without audio")."""
        self.calls: list[Call] = []
        self.failures: list[Failure] = []
        self.utterances_heard = 0
        """Utterances finalized by streaming calls, across streams (rotations continue the count)."""
        self._server: grpc.aio.Server | None = None
        self._port = 0

    # --- lifecycle -----------------------------------------------------------------------

    @property
    def address(self) -> str:
        return f"{self.host}:{self._port}"

    def credentials(self) -> Any:
        """Credentials holding the access token the fake accepts."""
        import google.oauth2.credentials

        return google.oauth2.credentials.Credentials(token=self.token or "anonymous")

    def options(self) -> dict[str, Any]:
        """Options that point a google STT or TTS at this fake."""
        return {"endpoint": self.address, "insecure": True, "credentials": self.credentials()}

    async def start(self) -> FakeGoogleCloud:
        server = grpc.aio.server()
        server.add_generic_rpc_handlers(
            (
                grpc.method_handlers_generic_handler(
                    "google.cloud.speech.v1.Speech",
                    {
                        "Recognize": grpc.unary_unary_rpc_method_handler(
                            self._recognize,
                            request_deserializer=speech.RecognizeRequest.deserialize,
                            response_serializer=_serialize(speech.RecognizeResponse),
                        ),
                        "StreamingRecognize": grpc.stream_stream_rpc_method_handler(
                            self._streaming_recognize,
                            request_deserializer=speech.StreamingRecognizeRequest.deserialize,
                            response_serializer=_serialize(speech.StreamingRecognizeResponse),
                        ),
                    },
                ),
                grpc.method_handlers_generic_handler(
                    "google.cloud.texttospeech.v1.TextToSpeech",
                    {
                        "SynthesizeSpeech": grpc.unary_unary_rpc_method_handler(
                            self._synthesize,
                            request_deserializer=tts.SynthesizeSpeechRequest.deserialize,
                            response_serializer=tts.SynthesizeSpeechResponse.serialize,
                        ),
                        "ListVoices": grpc.unary_unary_rpc_method_handler(
                            self._list_voices,
                            request_deserializer=tts.ListVoicesRequest.deserialize,
                            response_serializer=tts.ListVoicesResponse.serialize,
                        ),
                    },
                ),
            )
        )
        self._port = server.add_secure_port(
            f"{self.host}:0", grpc.local_server_credentials(grpc.LocalConnectionType.LOCAL_TCP)
        )
        await server.start()
        self._server = server
        return self

    async def aclose(self) -> None:
        if self._server is not None:
            await self._server.stop(grace=0.2)
            self._server = None

    async def __aenter__(self) -> FakeGoogleCloud:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # --- scripting -------------------------------------------------------------------------

    def fail(
        self,
        kind: FailureKind,
        *,
        method: Method = "any",
        code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE,
        message: str = "",
        retry_after: float | None = None,
        after_seconds: float = 0.0,
        times: int = 1,
    ) -> None:
        """Make the next ``times`` calls of ``method`` fail with ``kind``."""
        for _ in range(times):
            self.failures.append(Failure(kind, method, code, message, retry_after, after_seconds))

    def _take(self, method: str) -> Failure | None:
        for i, f in enumerate(self.failures):
            if f.method in ("any", method):
                return self.failures.pop(i)
        return None

    def recorded(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    # --- common checks ---------------------------------------------------------------------

    def _authorize(self, context: grpc.aio.ServicerContext, call: Call) -> None:
        if self.token is None:
            call.authorized = None
            return
        md = {k: v for k, v in (context.invocation_metadata() or ())}
        auth = md.get("authorization")
        call.authorized = auth == f"Bearer {self.token}"
        if not call.authorized:
            raise _Abort(
                grpc.StatusCode.UNAUTHENTICATED,
                "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie "
                "or other valid authentication credential.",
            )

    @staticmethod
    async def _abort(context: grpc.aio.ServicerContext, call: Call, err: _Abort) -> None:
        call.status = err.code.name
        trailing: tuple[tuple[str, bytes], ...] = ()
        if err.retry_after is not None:
            info = error_details_pb2.RetryInfo()
            info.retry_delay.CopyFrom(_duration(err.retry_after))
            status = status_pb2.Status(code=err.code.value[0], message=err.message)
            status.details.add().Pack(info)
            trailing = (("grpc-status-details-bin", status.SerializeToString()),)
        await context.abort(err.code, err.message, trailing_metadata=trailing)

    @staticmethod
    def _failure_abort(f: Failure) -> _Abort:
        message = f.message or {
            grpc.StatusCode.RESOURCE_EXHAUSTED: "Quota exceeded for quota metric 'Requests' of service speech.googleapis.com.",
            grpc.StatusCode.UNAVAILABLE: "The service is currently unavailable.",
            grpc.StatusCode.PERMISSION_DENIED: "Cloud Speech-to-Text API has not been used in project 0 before or it is disabled.",
            grpc.StatusCode.INTERNAL: "Internal error encountered.",
        }.get(f.code, f"scripted {f.code.name}")
        return _Abort(f.code, message, f.retry_after)

    def _check_config(self, config: speech.RecognitionConfig, audio: bytes | None = None) -> int:
        enc = speech.RecognitionConfig.AudioEncoding
        if not config.language_code:
            raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, "Invalid recognition 'config': language_code is required.")
        if config.encoding not in (enc.LINEAR16, enc.ENCODING_UNSPECIFIED):
            raise _Abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"this fake hears LINEAR16 only, got encoding {enc(config.encoding).name}",
            )
        rate = config.sample_rate_hertz
        if audio is not None and audio[:4] == b"RIFF":
            from livekit.agents.utils.audio import strip_wav_header

            _, wav_rate, _ = strip_wav_header(audio)
            if rate and wav_rate and rate != wav_rate:
                raise _Abort(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"sample_rate_hertz ({rate}) in RecognitionConfig must either be unspecified or match "
                    f"the value in the FLAC or WAV header ({wav_rate}).",
                )
            rate = rate or wav_rate or 0
        if config.encoding == enc.ENCODING_UNSPECIFIED and not (audio or b"")[:4] == b"RIFF":
            raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, "Invalid recognition 'config': bad encoding.")
        if not 8000 <= rate <= 48000:
            raise _Abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"Invalid recognition 'config': sample_rate_hertz must be between 8000 and 48000 for LINEAR16, got {rate}.",
            )
        if config.audio_channel_count not in (0, 1):
            raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, "this fake hears mono audio only (audio_channel_count 1)")
        return rate

    def _text(self, index: int, punctuate: bool) -> str:
        text = self.transcripts[index % len(self.transcripts)] if self.transcripts else f"utterance {index + 1}"
        if not punctuate:
            text = re.sub(r"[^\w\s']", "", text).lower()
        return text

    def _words(self, text: str, start: float, end: float) -> list[speech.WordInfo]:
        words = text.split()
        step = (end - start) / max(1, len(words))
        return [
            speech.WordInfo(word=w, start_time=_duration(start + i * step), end_time=_duration(start + (i + 1) * step))
            for i, w in enumerate(words)
        ]

    @staticmethod
    def _config_dict(config: Any) -> dict[str, Any]:
        return type(config).to_dict(config, preserving_proto_field_name=True, use_integers_for_enums=False)

    # --- Speech.Recognize ----------------------------------------------------------------

    async def _recognize(self, request: speech.RecognizeRequest, context: grpc.aio.ServicerContext) -> Any:
        call = Call("Recognize")
        self.calls.append(call)
        try:
            self._authorize(context, call)
            f = self._take("Recognize")
            if f and f.kind == "status":
                raise self._failure_abort(f)
            if f and f.kind == "stall":
                await asyncio.sleep(3600)
            if "config" not in request:
                raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, "RecognitionConfig is required.")
            call.config = self._config_dict(request.config)
            audio = request.audio.content
            if request.audio.uri:
                raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, "this fake does not read gs:// URIs; send content")
            rate = self._check_config(request.config, audio)
            if audio[:4] == b"RIFF":
                from livekit.agents.utils.audio import strip_wav_header

                audio = strip_wav_header(audio)[0]
            if len(audio) % 2:
                raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, "LINEAR16 audio must have an even number of bytes.")
            call.audio_seconds = len(audio) / 2 / rate
            if call.audio_seconds > SYNC_LIMIT_SECONDS:
                raise _Abort(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    "Sync input too long. For audio longer than 1 min use LongRunningRecognize with a 'uri' parameter.",
                )
            if f and f.kind == "malformed":
                call.completed = True
                return _MALFORMED
            ear = _Ear(rate, self.silence_ms)
            ends = [e for e in ear.feed(audio) + ear.finish() if e[0] == "end"]
            results = []
            for i, (_, start, end) in enumerate(ends):
                text = self._text(i, request.config.enable_automatic_punctuation)
                call.heard.append(text)
                alt = speech.SpeechRecognitionAlternative(transcript=text if i == 0 else " " + text, confidence=0.93)
                if request.config.enable_word_time_offsets:
                    alt.words = self._words(text, start, end)
                results.append(
                    speech.SpeechRecognitionResult(
                        alternatives=[alt], result_end_time=_duration(end), language_code=request.config.language_code.lower()
                    )
                )
            call.completed = True
            return speech.RecognizeResponse(
                results=results, total_billed_time=_duration(math.ceil(call.audio_seconds)), request_id=len(self.calls)
            )
        except _Abort as err:
            await self._abort(context, call, err)

    # --- Speech.StreamingRecognize -----------------------------------------------------------

    async def _streaming_recognize(
        self, requests: AsyncIterator[speech.StreamingRecognizeRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[Any]:
        call = Call("StreamingRecognize")
        self.calls.append(call)
        try:
            self._authorize(context, call)
            f = self._take("StreamingRecognize")
            if f and f.kind == "status" and f.after_seconds <= 0:
                raise self._failure_abort(f)
            it = requests.__aiter__()
            try:
                first = await it.__anext__()
            except StopAsyncIteration:
                raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, "No StreamingRecognizeRequest was sent.") from None
            call.requests += 1
            if "streaming_config" not in first or first.audio_content:
                raise _Abort(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    "Malordered Data Received. Send exactly one config, followed by audio data.",
                )
            scfg = first.streaming_config
            call.config = self._config_dict(scfg)
            rate = self._check_config(scfg.config)
            punctuate = scfg.config.enable_automatic_punctuation
            lang = scfg.config.language_code.lower()
            ear = _Ear(rate, self.silence_ms)
            total = 0
            shown = 0  # words shown in the last interim
            loop = asyncio.get_running_loop()
            started = loop.time()
            while True:
                try:
                    req = await asyncio.wait_for(it.__anext__(), self.idle_timeout)
                except StopAsyncIteration:
                    break
                except asyncio.TimeoutError:
                    raise _Abort(
                        grpc.StatusCode.OUT_OF_RANGE,
                        "Audio Timeout Error: Long duration elapsed without audio. Audio should be sent close to real time.",
                    ) from None
                call.requests += 1
                if "streaming_config" in req:
                    raise _Abort(
                        grpc.StatusCode.INVALID_ARGUMENT,
                        "Malordered Data Received. Send exactly one config, followed by audio data.",
                    )
                audio = req.audio_content
                if len(audio) > MAX_CHUNK_BYTES:
                    raise _Abort(
                        grpc.StatusCode.INVALID_ARGUMENT,
                        f"Request audio_content too large: {len(audio)} bytes; the limit is {MAX_CHUNK_BYTES} per request.",
                    )
                if len(audio) % 2:
                    raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, "LINEAR16 audio must have an even number of bytes.")
                total += len(audio)
                call.audio_seconds = total / 2 / rate
                if call.audio_seconds > loop.time() - started + self.max_ahead_seconds:
                    raise _Abort(
                        grpc.StatusCode.OUT_OF_RANGE,
                        "Audio data is being streamed too fast. Please stream audio data approximately at real time.",
                    )
                if call.audio_seconds > self.max_stream_seconds:
                    raise _Abort(
                        grpc.StatusCode.OUT_OF_RANGE,
                        f"Exceeded maximum allowed stream duration of {self.max_stream_seconds:g} seconds.",
                    )
                if f and f.kind in ("drop", "status") and call.audio_seconds >= f.after_seconds:
                    raise self._failure_abort(f) if f.kind == "status" else _Abort(
                        grpc.StatusCode.UNAVAILABLE, "The service is currently unavailable."
                    )
                if f and f.kind == "stall":
                    continue
                if f and f.kind == "malformed":
                    yield _MALFORMED
                    continue
                for kind, start, now in ear.feed(audio):
                    text = self._text(self.utterances_heard, punctuate)
                    words = text.split()
                    if kind == "speech":
                        n = min(len(words), int((now - start) * 1000 // self.word_ms) + 1)
                        if scfg.interim_results and n > shown:
                            shown = n
                            yield speech.StreamingRecognizeResponse(
                                results=[
                                    speech.StreamingRecognitionResult(
                                        alternatives=[speech.SpeechRecognitionAlternative(transcript=" ".join(words[:n]))],
                                        is_final=False,
                                        stability=0.8 if n < len(words) else 0.9,
                                        result_end_time=_duration(now),
                                        language_code=lang,
                                    )
                                ]
                            )
                    else:
                        yield self._final(call, text, start, now, ear, lang, scfg.config.enable_word_time_offsets)
                        shown = 0
                if self.chunk_delay:
                    await asyncio.sleep(self.chunk_delay)
            if f and f.kind == "stall":
                await asyncio.sleep(3600)
            for _, start, end in ear.finish():
                text = self._text(self.utterances_heard, punctuate)
                yield self._final(call, text, start, end, ear, lang, scfg.config.enable_word_time_offsets)
            call.completed = True
        except _Abort as err:
            await self._abort(context, call, err)

    def _final(self, call: Call, text: str, start: float, end: float, ear: _Ear, lang: str, words: bool) -> Any:
        self.utterances_heard += 1
        call.heard.append(text)
        alt = speech.SpeechRecognitionAlternative(transcript=text, confidence=0.91)
        if words:
            alt.words = self._words(text, start, end)
        return speech.StreamingRecognizeResponse(
            results=[
                speech.StreamingRecognitionResult(
                    alternatives=[alt], is_final=True, result_end_time=_duration(ear.t / 100), language_code=lang
                )
            ]
        )

    # --- TextToSpeech ----------------------------------------------------------------------

    async def _synthesize(self, request: tts.SynthesizeSpeechRequest, context: grpc.aio.ServicerContext) -> Any:
        call = Call("SynthesizeSpeech")
        self.calls.append(call)
        try:
            self._authorize(context, call)
            f = self._take("SynthesizeSpeech")
            if f and f.kind == "status":
                raise self._failure_abort(f)
            if f and f.kind == "stall":
                await asyncio.sleep(3600)
            call.config = self._config_dict(request)
            text = request.input.text or re.sub(r"<[^>]+>", " ", request.input.ssml)
            if not (request.input.text or request.input.ssml):
                raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, "Either `input.text` or `input.ssml` must be set.")
            if len((request.input.text or request.input.ssml).encode()) > 5000:
                raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, "Either `input.text` or `input.ssml` is longer than the limit of 5000 bytes.")
            voice = request.voice
            if not voice.language_code:
                raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, "Voice language_code is required.")
            if voice.name:
                known = {name: langs for name, langs, _ in VOICES}
                if voice.name not in known or voice.language_code not in known[voice.name]:
                    raise _Abort(
                        grpc.StatusCode.INVALID_ARGUMENT,
                        f"Voice '{voice.name}' does not exist. Is it misspelled? (language_code {voice.language_code})",
                    )
            elif not any(voice.language_code in langs for _, langs, _ in VOICES):
                raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, f"No voice for language_code {voice.language_code}.")
            ac = request.audio_config
            if ac.audio_encoding != tts.AudioEncoding.LINEAR16:
                raise _Abort(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"this fake produces LINEAR16 only, got {tts.AudioEncoding(ac.audio_encoding).name}",
                )
            rate = ac.sample_rate_hertz or 24000
            if not 8000 <= rate <= 48000:
                raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, f"sample_rate_hertz {rate} is out of range.")
            speed = ac.speaking_rate or 1.0
            if not 0.25 <= speed <= 4.0:
                raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, "speaking_rate must be between 0.25 and 4.0.")
            if not -20.0 <= ac.pitch <= 20.0:
                raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, "pitch must be between -20.0 and 20.0.")
            if f and f.kind == "malformed":
                call.completed = True
                return tts.SynthesizeSpeechResponse(audio_content=b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00")
            pcm = await asyncio.to_thread(spoken_pcm, text, rate, speed)
            call.audio_seconds = len(pcm) / 2 / rate
            call.completed = True
            return tts.SynthesizeSpeechResponse(audio_content=pcm_wav(pcm, rate))
        except _Abort as err:
            await self._abort(context, call, err)

    async def _list_voices(self, request: tts.ListVoicesRequest, context: grpc.aio.ServicerContext) -> Any:
        call = Call("ListVoices")
        self.calls.append(call)
        try:
            self._authorize(context, call)
            f = self._take("ListVoices")
            if f and f.kind == "status":
                raise self._failure_abort(f)
            voices = [
                tts.Voice(name=name, language_codes=langs, ssml_gender=gender, natural_sample_rate_hertz=24000)
                for name, langs, gender in VOICES
                if not request.language_code or any(lang.startswith(request.language_code) for lang in langs)
            ]
            call.completed = True
            return tts.ListVoicesResponse(voices=voices)
        except _Abort as err:
            await self._abort(context, call, err)


class _Malformed:
    pass


_MALFORMED = _Malformed()


def _serialize(message_type: Any) -> Any:
    def serialize(message: Any) -> bytes:
        if message is _MALFORMED:
            return b"\xff\xff\xff\xff not a protobuf"
        return message_type.serialize(message)

    return serialize


@contextlib.asynccontextmanager
async def conformance_environment() -> AsyncIterator[dict[str, dict[str, Any]]]:
    """Start the fake and yield the options of the ``google`` STT and TTS pointing at it.

    It hears the sentence the conformance check speaks (``conformance.STT_TEXT``).
    """
    from livekit.agents.testing.conformance import STT_TEXT

    async with FakeGoogleCloud(transcripts=[STT_TEXT]) as fake:
        yield {"stt:google": fake.options(), "tts:google": fake.options()}

