"""Conformance checks that every plugin runs in its own tests (and ``agents plugins check``).

Each check drives an implementation through its public API with real speech or text and
raises :class:`ConformanceError` saying what is wrong. Use them from pytest::

    from livekit.agents.testing import conformance

    def test_discoverable():
        conformance.check_discoverable("acme")

    async def test_stt(speech):
        sample = speech("The quick brown fox jumps over the lazy dog.")
        await conformance.check_stt(AcmeSTT(base_url=fake.url), sample)
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib
import json
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass
from importlib import metadata
from typing import Any, NoReturn, TypeVar

from .. import capabilities
from ..exceptions import MissingCredentialsError, StreamClosedError
from ..plugin_host import PluginHost, PluginRecord, get_plugin_host, is_compatible
from ..registry import Provider
from .speech import SpeechSample

DEFAULT_TEXT = "Hello from the conformance check. The weather is nice today, isn't it? Goodbye for now."
STT_TEXT = "The quick brown fox jumps over the lazy dog."
"""What :func:`check_plugin` speaks to an STT; a plugin's fake service must transcribe it."""
TOKENIZER_TEXT = (
    "Hello there. How are you today? I am fine, thanks! "
    "The meeting starts at nine, so don't be late. See you soon."
)
TOKENIZER_SENTENCES = 5
VAD_UTTERANCES = ["Hello there, how are you?", "I am fine, thank you."]


_T = TypeVar("_T")
_unawaited: dict[int, str] = {}
"""Checks called but not awaited yet (id -> name); the pytest plugin fails a test that leaves one."""
_dropped: list[str] = []
"""Checks that were garbage-collected without being awaited."""


class PendingCheck(Coroutine[Any, Any, _T]):
    """What an async check returns: await it. If it is never awaited the check never ran, so
    the livekit-agents pytest plugin fails the test that called it, naming the check."""

    def __init__(self, name: str, coro: Any) -> None:
        self.name = name
        self._coro = coro
        _unawaited[id(self)] = name

    def __await__(self) -> Any:
        _unawaited.pop(id(self), None)
        return self._coro.__await__()

    # a coroutine too, so asyncio.run() and create_task() take it
    def send(self, value: Any) -> Any:
        _unawaited.pop(id(self), None)
        return self._coro.send(value)

    def throw(self, *args: Any) -> Any:
        _unawaited.pop(id(self), None)
        return self._coro.throw(*args)

    def close(self) -> None:
        _unawaited.pop(id(self), None)
        self._coro.close()

    def __del__(self) -> None:
        name = _unawaited.pop(id(self), None)
        if name is not None:
            _dropped.append(name)
            self._coro.close()  # no "never awaited" RuntimeWarning: the test fails instead


def _must_await(fn: Callable[..., Awaitable[_T]]) -> Callable[..., PendingCheck[_T]]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> PendingCheck[_T]:
        return PendingCheck(f"conformance.{fn.__name__}", fn(*args, **kwargs))

    return wrapper


def take_unawaited() -> list[str]:
    """The checks called but never awaited since the last call (and forget them)."""
    names = sorted({*_unawaited.values(), *_dropped})
    _unawaited.clear()
    _dropped.clear()
    return names


class ConformanceError(AssertionError):
    """An implementation breaks the contract of its capability."""


def _fail(what: str) -> NoReturn:
    raise ConformanceError(what)


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def _word_recall(expected: list[str], heard: str) -> float:
    got = set(_words(heard))
    return sum(1 for w in expected if w in got) / max(1, len(expected))


async def _with_timeout(aw: Awaitable[_T], seconds: float, what: str) -> _T:
    try:
        return await asyncio.wait_for(aw, seconds)
    except asyncio.TimeoutError:
        _fail(f"{what} did not finish within {seconds:.0f} s")


# --- discovery and API ------------------------------------------------------------------


def check_discoverable(name: str, host: PluginHost | None = None) -> PluginRecord:
    """The plugin is installed with an entry point, loads, and registers at least one provider."""
    host = host or get_plugin_host()
    record = host.records.get(name)
    if record is None:
        eps = sorted(ep.name for ep in metadata.entry_points(group="livekit.agents.plugins"))
        _fail(
            f"no plugin {name!r} in entry-point group livekit.agents.plugins "
            f"(found: {', '.join(eps) or 'none'}); declare "
            f'[project.entry-points."livekit.agents.plugins"] {name} = "<module>" and reinstall'
        )
    assert record is not None
    if record.status != "loaded":
        why = {
            "failed": f"failed to load: {record.error}",
            "incompatible": f"is incompatible: {record.error}",
            "blocked": "is blocked (--disable-plugin or LIVEKIT_AGENTS_DISABLE_PLUGINS); unblock it to check it",
            "disabled": "is not among the chosen plugins (--plugins or LIVEKIT_AGENTS_PLUGINS); choose it to check it",
        }.get(record.status, f"is {record.status}: {record.error}")
        _fail(f"plugin {name!r} {why}")
    if not record.distribution:
        _fail(f"plugin {name!r} has no distribution metadata")
    if not any(record.providers.values()):
        _fail(f"plugin {name!r} loaded but registered no provider (register_stt/tts/vad/tokenizers)")
    return record


def check_api_compatible(name: str, host: PluginHost | None = None) -> None:
    """The plugin declares a plugin API version this core supports."""
    host = host or get_plugin_host()
    record = host.records.get(name)
    if record is None or record.api_version is None:
        _fail(f"plugin {name!r} does not declare PLUGIN_API = (major, minor) in its plugin module")
    assert record is not None and record.api_version is not None
    if not is_compatible(record.api_version):
        _fail(f"plugin {name!r}: {record.error}")


_ALWAYS_HEAVY = ("onnxruntime", "numpy", "torch", "livekit.rtc", "aiohttp", "grpc")


def check_light_registration(name: str) -> None:
    """Loading the plugin imports none of its dependencies' SDKs, models or native libraries
    (checked in a fresh interpreter)."""
    code = (
        "import sys, json;"
        "from livekit.agents.plugin_host import PluginHost;"
        f"h = PluginHost(only={{{name!r}}}); h.load_entry_points();"
        f"r = h.records[{name!r}];"
        "print(json.dumps({'status': r.status, 'error': r.error, 'modules': sorted(sys.modules)}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        _fail(f"loading plugin {name!r} in a fresh interpreter failed:\n{out.stderr[-2000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if result["status"] != "loaded":
        _fail(f"plugin {name!r} is {result['status']}: {result['error']}")
    modules = set(result["modules"])
    heavy = set(_ALWAYS_HEAVY)
    try:
        dist = metadata.distribution(_dist_of(name))
        mapping = metadata.packages_distributions()
        required = {re.split(r"[ ;<>=!~\[]", r, maxsplit=1)[0].lower().replace("_", "-") for r in dist.requires or []}
        required -= {"livekit-agents", "pluggy"}
        for top, dists in mapping.items():
            if any(d.lower().replace("_", "-") in required for d in dists):
                heavy.add(top)
    except metadata.PackageNotFoundError:
        pass
    leaked = sorted(m for m in heavy if m in modules)
    if leaked:
        _fail(
            f"loading plugin {name!r} imported {', '.join(leaked)}; import SDKs and models "
            f"inside the factories passed to register(), not in the plugin module"
        )


def _dist_of(name: str) -> str:
    for ep in metadata.entry_points(group="livekit.agents.plugins"):
        dist = getattr(ep, "dist", None)
        if ep.name == name and dist is not None:
            return str(dist.metadata["Name"])
    return f"livekit-plugins-{name}"


# --- capability contracts ------------------------------------------------------------------


@_must_await
async def check_stt(
    stt: Any,
    sample: SpeechSample | None = None,
    *,
    expected_words: list[str] | None = None,
    min_recall: float = 0.6,
    timeout: float = 60.0,
) -> None:
    """``recognize`` returns a final transcript of the spoken words; a streaming STT yields
    interim results (when it declares them) before its final ones, and ends after
    ``end_input()``."""
    from ..stt import STT, SpeechEventType

    if not isinstance(stt, STT):
        _fail(f"{type(stt).__name__} is not a livekit.agents.stt.STT")
    if sample is None:
        from .speech import speech

        sample = speech(STT_TEXT)
    expected = expected_words or sample.words
    frames = sample.frames()

    event = await _with_timeout(stt.recognize(frames), timeout, "recognize()")
    if event.type != SpeechEventType.FINAL_TRANSCRIPT:
        _fail(f"recognize() returned a {event.type.value} event, expected final_transcript")
    recall = _word_recall(expected, event.text)
    if recall < min_recall:
        _fail(f"recognize() heard {event.text!r}; expected the words {' '.join(expected)!r} (recall {recall:.0%})")

    if not stt.capabilities.streaming:
        return
    stream = stt.stream()
    try:
        for f in frames:
            stream.push_frame(f)
        stream.end_input()
        with contextlib.suppress(StreamClosedError):
            stream.push_frame(frames[0])
            _fail("push_frame() after end_input() did not raise StreamClosedError")

        async def collect() -> list[Any]:
            return [ev async for ev in stream]

        events = await _with_timeout(collect(), timeout, "the speech stream")
    finally:
        await stream.aclose()
    types = [e.type for e in events]
    finals = [e for e in events if e.type == SpeechEventType.FINAL_TRANSCRIPT]
    if not finals:
        _fail(f"the stream gave no final transcript (events: {[t.value for t in types]})")
    text = " ".join(e.text for e in finals)
    recall = _word_recall(expected, text)
    if recall < min_recall:
        _fail(f"the stream's final transcripts {text!r} miss the spoken words (recall {recall:.0%})")
    if stt.capabilities.interim_results:
        first_final = types.index(SpeechEventType.FINAL_TRANSCRIPT)
        if SpeechEventType.INTERIM_TRANSCRIPT not in types[:first_final]:
            _fail("the STT declares interim_results but gave no interim transcript before its first final one")


@_must_await
async def check_tts(tts: Any, text: str = DEFAULT_TEXT, *, timeout: float = 60.0) -> None:
    """``synthesize`` yields non-silent frames at the declared rate and channel count, of a
    plausible length for the text, the last one marked final; a streaming TTS does the
    same for text pushed in pieces."""
    from ..tts import TTS

    if not isinstance(tts, TTS):
        _fail(f"{type(tts).__name__} is not a livekit.agents.tts.TTS")

    async def collect(aiter: Any) -> list[Any]:
        return [a async for a in aiter]

    async with tts.synthesize(text) as chunked:
        audio = await _with_timeout(collect(chunked), timeout, "synthesize()")
    _check_audio(tts, audio, text, "synthesize()")
    if not audio[-1].is_final:
        _fail("the last frame of synthesize() is not marked is_final")

    if not tts.capabilities.streaming:
        return
    stream = tts.stream()
    try:
        for piece in re.findall(r"\S+\s*", text):
            stream.push_text(piece)
        stream.flush()
        stream.end_input()
        audio = await _with_timeout(collect(stream), timeout, "the synthesis stream")
    finally:
        await stream.aclose()
    _check_audio(tts, audio, text, "stream()")
    if not audio[-1].is_final:
        _fail(
            "the last frame of the stream's segment (the text up to flush()) is not marked is_final; "
            "emit SynthesizedAudio(..., is_final=True) for the last frame of each segment"
        )


def _check_audio(tts: Any, audio: list[Any], text: str, what: str) -> None:
    from ..utils.audio import duration, rms

    if not audio:
        _fail(f"{what} produced no audio")
    for a in audio:
        if a.frame.sample_rate != tts.sample_rate or a.frame.num_channels != tts.num_channels:
            _fail(
                f"{what} produced {a.frame.sample_rate} Hz/{a.frame.num_channels} ch frames; "
                f"the TTS declares {tts.sample_rate} Hz/{tts.num_channels} ch"
            )
    frames = [a.frame for a in audio]
    seconds = duration(frames)
    n = max(1, len(_words(text)))
    if not 0.08 * n <= seconds <= 1.5 * n + 2.0:
        _fail(f"{what} produced {seconds:.2f} s of audio for {n} words; not a plausible length")
    loud = sum(1 for f in frames if rms(f) > 100)
    if loud < max(1, len(frames) // 10):
        _fail(f"{what} produced silence ({loud} of {len(frames)} frames carry sound)")


@_must_await
async def check_vad(
    vad: Any, sample: SpeechSample | None = None, *, tolerance: float = 0.3, timeout: float = 60.0
) -> None:
    """One START_OF_SPEECH and one END_OF_SPEECH per utterance, in order, close to the
    true boundaries, the end event carrying the speech's frames."""
    from ..utils.audio import duration
    from ..vad import VAD, VADEventType

    if not isinstance(vad, VAD):
        _fail(f"{type(vad).__name__} is not a livekit.agents.vad.VAD")
    if sample is None:
        from .speech import speech

        sample = speech(VAD_UTTERANCES)
    stream = vad.stream()
    try:
        for f in sample.frames(10):
            stream.push_frame(f)
        stream.end_input()

        async def collect() -> list[Any]:
            return [e async for e in stream if e.type != VADEventType.INFERENCE_DONE]

        events = await _with_timeout(collect(), timeout, "the VAD stream")
    finally:
        await stream.aclose()
    starts = [e for e in events if e.type == VADEventType.START_OF_SPEECH]
    ends = [e for e in events if e.type == VADEventType.END_OF_SPEECH]
    want = len(sample.segments)
    if len(starts) != want or len(ends) != want:
        _fail(f"expected {want} utterance(s); got {len(starts)} start(s) and {len(ends)} end(s)")
    for i, ev in enumerate(events):
        expect = VADEventType.START_OF_SPEECH if i % 2 == 0 else VADEventType.END_OF_SPEECH
        if ev.type != expect:
            _fail(f"VAD events are not start/end pairs: {[e.type.value for e in events]}")
    for (t0, t1), start, end in zip(sample.segments, starts, ends, strict=True):
        # a start is reported once min speech has been heard; the speech began earlier
        began = start.timestamp - start.speech_duration
        if abs(began - t0) > tolerance:
            _fail(f"speech starting at {t0:.2f} s was detected as starting at {began:.2f} s")
        stopped = end.timestamp - end.silence_duration
        if abs(stopped - t1) > tolerance:
            _fail(f"speech ending at {t1:.2f} s was detected as ending at {stopped:.2f} s")
        if not end.frames or duration(end.frames) < (t1 - t0) - tolerance:
            _fail(f"the end-of-speech event carries {duration(end.frames or []):.2f} s of audio for {t1 - t0:.2f} s of speech")


async def _stream_tokens(tokenizer: Any, text: str, chunk: int) -> list[str]:
    stream = tokenizer.stream()
    try:
        for i in range(0, len(text), chunk):
            stream.push_text(text[i : i + chunk])
        stream.end_input()

        async def collect() -> list[str]:
            return [t.token async for t in stream]

        return await _with_timeout(collect(), 30, "the token stream")
    finally:
        await stream.aclose()


@_must_await
async def check_sentence_tokenizer(tokenizer: Any, text: str = TOKENIZER_TEXT, sentences: int = TOKENIZER_SENTENCES) -> None:
    """``tokenize`` splits the text into its sentences, keeping every word; streaming the
    text in small pieces gives the same sentences."""
    from ..tokenize import SentenceTokenizer

    if not isinstance(tokenizer, SentenceTokenizer):
        _fail(f"{type(tokenizer).__name__} is not a livekit.agents.tokenize.SentenceTokenizer")
    batch = tokenizer.tokenize(text)
    if len(batch) != sentences:
        _fail(f"tokenize() found {len(batch)} sentences, expected {sentences}: {batch}")
    if _words(" ".join(batch)) != _words(text):
        _fail(f"tokenize() lost or changed words: {batch}")
    for chunk in (1, 7):
        streamed = await _stream_tokens(tokenizer, text, chunk)
        if streamed != batch:
            _fail(f"streaming in {chunk}-character pieces gave {streamed}, batch gave {batch}")


@_must_await
async def check_word_tokenizer(tokenizer: Any, text: str = TOKENIZER_TEXT) -> None:
    """``tokenize`` yields the text's words in order; streaming gives the same words."""
    from ..tokenize import WordTokenizer

    if not isinstance(tokenizer, WordTokenizer):
        _fail(f"{type(tokenizer).__name__} is not a livekit.agents.tokenize.WordTokenizer")
    batch = tokenizer.tokenize(text)
    got, want = _words(" ".join(batch)), _words(text)
    if got != want:
        at = next((i for i, (g, w) in enumerate(zip(got, want, strict=False)) if g != w), min(len(got), len(want)))
        found = repr(got[at]) if at < len(got) else "nothing"
        expected = repr(want[at]) if at < len(want) else "nothing"
        _fail(f"tokenize() words differ from the text's at word {at + 1}: got {found}, expected {expected} (tokens: {batch})")
    for chunk in (1, 7):
        streamed = await _stream_tokens(tokenizer, text, chunk)
        if streamed != batch:
            _fail(f"streaming in {chunk}-character pieces gave {streamed}, batch gave {batch}")


LLM_PROMPT = "Say hello and tell me, in two short sentences, what you can do."
LLM_TOOL_PROMPT = "What time is it in Paris? Use the get_time tool."


@_must_await
async def check_llm(model: Any, *, timeout: float = 60.0) -> None:
    """``chat()`` streams its answer in more than one text delta; with a tool and
    ``tool_choice="required"`` it calls the tool with arguments that fit its schema, and
    answers in text once the tool's result is in the context; ``aclose()`` mid-stream
    stops the stream at once (no chunk after it)."""
    from ..llm import LLM, ChatContext, ToolArgumentsError, function_tool

    if not isinstance(model, LLM):
        _fail(f"{type(model).__name__} is not a livekit.agents.llm.LLM")

    async def collect(stream: Any) -> list[Any]:
        async with stream:
            return [c async for c in stream]

    ctx = ChatContext()
    ctx.add_message(role="system", content="You are a helpful voice assistant. Answer briefly.")
    ctx.add_message(role="user", content=LLM_PROMPT)
    chunks = await _with_timeout(collect(model.chat(ctx)), timeout, "chat()")
    deltas = [c.delta for c in chunks if c.delta]
    if not "".join(deltas).strip():
        _fail("chat() streamed no text for a plain question")
    if len(deltas) < 2:
        _fail(f"chat() gave its answer in {len(deltas)} text delta; stream it: emit a ChatChunk per piece as it arrives")

    @function_tool
    def get_time(city: str) -> str:
        """The current local time in a city.

        Args:
            city: the city's name.
        """
        return f"It is 10:42 in {city}."

    tool_ctx = ChatContext()
    tool_ctx.add_message(role="user", content=LLM_TOOL_PROMPT)
    stream = model.chat(tool_ctx, tools=[get_time], tool_choice="required")
    answer = await _with_timeout(stream.collect(), timeout, "chat() with a tool")
    if not answer.tool_calls:
        _fail('chat(tools=[get_time], tool_choice="required") called no tool; emit the calls as ChatChunk(tool_calls=[FunctionCall(...)])')
    tool_ctx.append(answer)
    for call in answer.tool_calls:
        if call.name != get_time.name:
            _fail(f"the model called {call.name!r}, which is not among the tools (get_time)")
        try:
            result = await get_time.execute(call.arguments)
        except ToolArgumentsError as exc:
            _fail(f"the tool call's arguments do not fit the tool's schema: {exc}")
        tool_ctx.add_tool_result(call, result)
    final = await _with_timeout(model.chat(tool_ctx, tools=[get_time]).collect(), timeout, "chat() after the tool result")
    if not final.content.strip():
        _fail("after the tool result message the model answered no text")

    stream = model.chat(ctx)
    first = None
    async for chunk in stream:
        if chunk.delta:
            first = chunk
            break
    if first is None:
        _fail("chat() ended before any text (cancellation could not be tested)")
    await _with_timeout(stream.aclose(), 5.0, "aclose() of a chat stream")
    after = await _with_timeout(collect(stream), 5.0, "iterating a closed chat stream")
    if after:
        _fail(f"after aclose() the chat stream still yielded {len(after)} chunk(s); aclose() must stop it at once")


# --- a whole plugin --------------------------------------------------------------------------


@dataclass
class CheckResult:
    check: str
    outcome: str  # "passed" | "failed" | "skipped"
    detail: str = ""


@_must_await
async def check_provider(provider: Provider, options: dict[str, Any] | None = None) -> None:
    """Create ``provider`` with ``options`` and run the check of its capability."""
    cap = capabilities.get(provider.capability)
    impl = provider.create(**(options or {}))
    try:
        base = cap.base_class()
        if not isinstance(impl, base):
            _fail(
                f"the factory returned {_type_name(impl)}, not a {cap.base_name}; "
                f"register a factory that returns an instance of a {cap.base_name} subclass"
            )
        await cap.check_function()(impl)
    finally:
        close = getattr(impl, "aclose", None)
        if close is not None:
            await close()


def _type_name(value: Any) -> str:
    return f"{type(value).__module__}.{type(value).__qualname__}"


@contextlib.asynccontextmanager
async def _environment(name: str) -> AsyncIterator[dict[str, dict[str, Any]]]:
    """Options per provider from the plugin's ``testing`` module, if it has one.

    A plugin whose providers need a service (cloud plugins) offers
    ``livekit.plugins.<name>.testing.conformance_environment()``: an async context manager
    that starts its loopback fake and yields ``{"stt:<provider>": {options}, ...}``.
    """
    try:
        testing = importlib.import_module(f"livekit.plugins.{name}.testing")
    except ImportError:
        yield {}
        return
    env: Callable[[], Any] | None = getattr(testing, "conformance_environment", None)
    if env is None:
        yield {}
        return
    async with env() as options:
        yield options


@_must_await
async def check_plugin(name: str, host: PluginHost | None = None) -> list[CheckResult]:
    """Every check for one installed plugin, as ``agents plugins check NAME`` runs them."""
    host = host or get_plugin_host()
    results: list[CheckResult] = []

    def run_sync(label: str, fn: Callable[[], Any]) -> bool:
        try:
            fn()
        except ConformanceError as exc:
            results.append(CheckResult(label, "failed", str(exc)))
            return False
        results.append(CheckResult(label, "passed"))
        return True

    # the API check first: once a plugin is discoverable (loaded) it is compatible, so
    # after the discovery check this one could never fail
    api_ok = run_sync("plugin API compatible", lambda: check_api_compatible(name, host))
    if not run_sync("discoverable", lambda: check_discoverable(name, host)) or not api_ok:
        return results
    run_sync("registration imports no SDK", lambda: check_light_registration(name))
    record = host.records.get(name)
    if record is not None and record.warnings:
        results.append(CheckResult("providers registered", "failed", "; ".join(record.warnings)))
    providers = [p for p in host.registry.providers() if p.plugin == name]
    async with _environment(name) as env:
        for p in providers:
            label = f"{p.capability} {p.name!r} contract"
            try:
                await check_provider(p, env.get(f"{p.capability}:{p.name}"))
            except MissingCredentialsError as exc:
                results.append(CheckResult(label, "skipped", f"{exc} (the plugin ships no testing.conformance_environment)"))
            except ConformanceError as exc:
                results.append(CheckResult(label, "failed", str(exc)))
            except Exception as exc:  # a crash is a failure of the contract too
                results.append(CheckResult(label, "failed", f"{type(exc).__name__}: {exc}"))
            else:
                results.append(CheckResult(label, "passed"))
    return results
