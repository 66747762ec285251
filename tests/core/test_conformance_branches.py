"""Every failure branch of the conformance checks, each reached by a deliberately wrong
implementation, failing for that reason (the message is matched). The installed wrong
fixture plugins (tests/fixtures/plugins) cover one branch per capability end to end;
these cover the rest in process."""

from __future__ import annotations

import os
import types

import numpy as np
import pytest
from livekit import rtc

from livekit.agents import hookimpl, stt, tts, vad
from livekit.agents.exceptions import MissingCredentialsError
from livekit.agents.plugin_host import PluginHost, PluginRecord
from livekit.agents.testing import conformance
from livekit.agents.testing.conformance import ConformanceError
from livekit.agents.tokenize import SentenceTokenizer, WordTokenizer
from livekit.agents.tokenize.tokenizer import TokenData, TokenStream
from livekit.agents.utils.audio import frames_from_pcm

TEXT = "The quick brown fox jumps over the lazy dog."


# --- STT: the streaming part -----------------------------------------------------------------


class WrongSTT(stt.STT):
    """recognize() is right; the stream is wrong in the way ``mode`` says."""

    def __init__(self, mode: str, text: str = TEXT) -> None:
        super().__init__(capabilities=stt.STTCapabilities(streaming=True, interim_results=mode != "no_interim_declared"))
        self.mode, self.text = mode, text

    async def recognize(self, buffer, *, language=None):
        return stt.SpeechEvent(stt.SpeechEventType.FINAL_TRANSCRIPT, [stt.SpeechData(text=self.text)])

    def stream(self, *, language=None):
        return _WrongSpeechStream(self)


class _WrongSpeechStream(stt.SpeechStream):
    def __init__(self, owner: WrongSTT) -> None:
        super().__init__()
        self.owner = owner
        if owner.mode == "push_after_end":
            self.push_frame = lambda frame: None  # accepts audio after end_input()

    async def _run(self) -> None:
        async for _ in self._input():
            pass
        mode, text = self.owner.mode, self.owner.text

        def ev(kind, words):
            return stt.SpeechEvent(kind, [stt.SpeechData(text=words)])

        if mode == "no_final":
            self._emit(ev(stt.SpeechEventType.INTERIM_TRANSCRIPT, text))
            return
        if mode == "wrong_words":
            self._emit(ev(stt.SpeechEventType.INTERIM_TRANSCRIPT, "lorem"))
            self._emit(ev(stt.SpeechEventType.FINAL_TRANSCRIPT, "lorem ipsum dolor sit amet"))
            return
        if mode == "final_before_interim":
            self._emit(ev(stt.SpeechEventType.FINAL_TRANSCRIPT, text))
            self._emit(ev(stt.SpeechEventType.INTERIM_TRANSCRIPT, text))
            return
        self._emit(ev(stt.SpeechEventType.INTERIM_TRANSCRIPT, text.split()[0]))
        self._emit(ev(stt.SpeechEventType.FINAL_TRANSCRIPT, text))


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("no_final", "the stream gave no final transcript"),
        ("wrong_words", "the stream's final transcripts 'lorem ipsum dolor sit amet' miss the spoken words"),
        ("final_before_interim", "declares interim_results but gave no interim transcript before its first final"),
        ("push_after_end", r"push_frame\(\) after end_input\(\) did not raise StreamClosedError"),
    ],
)
async def test_check_stt_streaming_branches(speech, mode, message):
    with pytest.raises(ConformanceError, match=message):
        await conformance.check_stt(WrongSTT(mode), speech(TEXT))


async def test_check_stt_accepts_the_right_stream(speech):
    await conformance.check_stt(WrongSTT("right"), speech(TEXT))


async def test_check_stt_rejects_a_non_final_recognize_and_a_non_stt(speech):
    class InterimOnly(WrongSTT):
        async def recognize(self, buffer, *, language=None):
            return stt.SpeechEvent(stt.SpeechEventType.INTERIM_TRANSCRIPT, [stt.SpeechData(text=TEXT)])

    with pytest.raises(ConformanceError, match="recognize\\(\\) returned a interim_transcript event"):
        await conformance.check_stt(InterimOnly("right"), speech(TEXT))
    with pytest.raises(ConformanceError, match="is not a livekit.agents.stt.STT"):
        await conformance.check_stt(object(), speech(TEXT))


# --- TTS ------------------------------------------------------------------------------------


def tone(seconds: float, rate: int, channels: int = 1, loud: bool = True) -> list[rtc.AudioFrame]:
    n = int(seconds * rate)
    a = (8000 * np.sin(2 * np.pi * 220 * np.arange(n) / rate)).astype(np.int16) if loud else np.zeros(n, np.int16)
    if channels > 1:
        a = np.repeat(a, channels)
    return frames_from_pcm(a.tobytes(), rate, channels, 20)


class WrongTTS(tts.TTS):
    """Declares 24 kHz mono and streaming; ``where`` says which path is wrong and ``how``."""

    def __init__(self, how: str, where: str = "synthesize") -> None:
        super().__init__(capabilities=tts.TTSCapabilities(streaming=True, sample_rate=24000))
        self.how, self.where = how, where

    def audio(self, text: str, path: str) -> list[tts.SynthesizedAudio]:
        rate, channels, seconds, loud, final = 24000, 1, 0.35 * len(text.split()), True, True
        if path == self.where:
            if self.how == "rate":
                rate = 16000
            elif self.how == "channels":
                channels = 2
            elif self.how == "short":
                seconds = 0.1
            elif self.how == "long":
                seconds = 60.0
            elif self.how == "silence":
                loud = False
            elif self.how == "not_final":
                final = False
            elif self.how == "nothing":
                return []
        frames = tone(seconds, rate, channels, loud)
        return [tts.SynthesizedAudio(f, text, is_final=final and i == len(frames) - 1) for i, f in enumerate(frames)]

    def synthesize(self, text):
        return _Chunked(self, text)

    def stream(self):
        return _Streamed(self)


class _Chunked(tts.ChunkedStream):
    def __init__(self, owner, text):
        super().__init__(text)
        self.owner = owner

    async def _run(self):
        for a in self.owner.audio(self.text, "synthesize"):
            self._emit(a)


class _Streamed(tts.SynthesizeStream):
    def __init__(self, owner):
        super().__init__()
        self.owner = owner

    async def _run(self):
        text = ""
        async for item in self._input():
            if isinstance(item, str):
                text += item
        for a in self.owner.audio(text, "stream"):
            self._emit(a)


WORDS = len(conformance._words(conformance.DEFAULT_TEXT))


@pytest.mark.parametrize(
    ("how", "where", "message"),
    [
        ("rate", "synthesize", r"synthesize\(\) produced 16000 Hz/1 ch frames; the TTS declares 24000 Hz/1 ch"),
        ("channels", "synthesize", r"synthesize\(\) produced 24000 Hz/2 ch frames; the TTS declares 24000 Hz/1 ch"),
        ("short", "synthesize", rf"synthesize\(\) produced 0.1\d s of audio for {WORDS} words; not a plausible length"),
        ("long", "synthesize", rf"synthesize\(\) produced 60.00 s of audio for {WORDS} words; not a plausible length"),
        ("not_final", "synthesize", r"the last frame of synthesize\(\) is not marked is_final"),
        ("nothing", "synthesize", r"synthesize\(\) produced no audio"),
        ("rate", "stream", r"stream\(\) produced 16000 Hz/1 ch frames"),
        ("short", "stream", r"stream\(\) produced 0.1\d s of audio"),
        ("silence", "stream", r"stream\(\) produced silence"),
        ("nothing", "stream", r"stream\(\) produced no audio"),
    ],
)
async def test_check_tts_branches(how, where, message):
    with pytest.raises(ConformanceError, match=message):
        await conformance.check_tts(WrongTTS(how, where))


async def test_check_tts_accepts_the_right_tts():
    await conformance.check_tts(WrongTTS("none"))


# --- VAD ------------------------------------------------------------------------------------


class ScriptedVAD(vad.VAD):
    """Emits events computed from the sample's true segments, wrong as ``how`` says."""

    def __init__(self, segments, how: str) -> None:
        super().__init__(capabilities=vad.VADCapabilities(update_interval=0.032))
        self.segments, self.how = segments, how

    def stream(self):
        return _ScriptedVADStream(self)


class _ScriptedVADStream(vad.VADStream):
    def __init__(self, owner):
        super().__init__()
        self.owner = owner

    async def _run(self):
        frames = []
        async for f in self._input():
            if isinstance(f, rtc.AudioFrame):
                frames.append(f)
        how = self.owner.how
        events = []
        for t0, t1 in self.owner.segments:
            if how == "late_start":
                t0 += 0.8
            if how == "early_end":
                t1 -= 0.8
            speech = [f for i, f in enumerate(frames) if t0 <= i * 0.01 < t1]
            start = vad.VADEvent(vad.VADEventType.START_OF_SPEECH, 0, t0 + 0.1, speech_duration=0.1)
            end = vad.VADEvent(vad.VADEventType.END_OF_SPEECH, 0, t1 + 0.5, silence_duration=0.5,
                               frames=[] if how == "no_frames" else speech)
            events.append((start, end))
        if how == "one_missing":
            events = events[:-1]
        flat = [e for pair in events for e in pair]
        if how == "unpaired":
            flat = [e for e in flat if e.type == vad.VADEventType.START_OF_SPEECH] + [
                e for e in flat if e.type == vad.VADEventType.END_OF_SPEECH
            ]
        for e in flat:
            self._emit(e)


@pytest.mark.parametrize(
    ("how", "message"),
    [
        ("one_missing", r"expected 2 utterance\(s\); got 1 start\(s\) and 1 end\(s\)"),
        ("unpaired", "VAD events are not start/end pairs"),
        ("late_start", r"speech starting at \d+.\d\d s was detected as starting at"),
        ("early_end", r"speech ending at \d+.\d\d s was detected as ending at"),
        ("no_frames", r"the end-of-speech event carries 0.00 s of audio"),
    ],
)
async def test_check_vad_branches(speech, how, message):
    sample = speech(["Hello there, how are you?", "I am fine, thank you."])
    with pytest.raises(ConformanceError, match=message):
        await conformance.check_vad(ScriptedVAD(sample.segments, how), sample)


async def test_check_vad_accepts_the_scripted_right_vad(speech):
    sample = speech(["Hello there, how are you?", "I am fine, thank you."])
    await conformance.check_vad(ScriptedVAD(sample.segments, "right"), sample)


# --- tokenizers: streamed != batch ------------------------------------------------------------


class _ListStream(TokenStream):
    def __init__(self, split):
        super().__init__()
        self.split = split

    async def _run(self):
        text = ""
        async for item in self._input():
            if isinstance(item, str):
                text += item
        for t in self.split(text):
            self._emit(TokenData(token=t))


class StreamsDifferently(SentenceTokenizer):
    """Batch is right; the stream merges everything into one token."""

    def tokenize(self, text, *, language=None):
        import re

        return [s for s in re.split(r"(?<=[.?!])\s+", text.strip()) if s]

    def stream(self, *, language=None):
        return _ListStream(lambda text: [text.strip()])


class WordsStreamDifferently(WordTokenizer):
    def tokenize(self, text, *, language=None):
        return text.split()

    def stream(self, *, language=None):
        return _ListStream(lambda text: text.lower().split())


async def test_sentence_tokenizer_stream_must_equal_batch():
    with pytest.raises(ConformanceError, match=r"streaming in 1-character pieces gave \[.*\], batch gave"):
        await conformance.check_sentence_tokenizer(StreamsDifferently())


async def test_word_tokenizer_stream_must_equal_batch():
    with pytest.raises(ConformanceError, match=r"streaming in 1-character pieces gave \[.*\], batch gave"):
        await conformance.check_word_tokenizer(WordsStreamDifferently())


# --- discovery ------------------------------------------------------------------------------


def record(**kw) -> PluginRecord:
    base = dict(name="p", distribution="livekit-plugins-p", version="0.1.0", entry_point="p = x", module="x",
                status="loaded", api_version=(1, 0), providers={"stt": ["p"]})
    base.update(kw)
    return PluginRecord(**base)


@pytest.mark.parametrize(
    ("rec", "message"),
    [
        (record(status="disabled"), "is not among the chosen plugins"),
        (record(status="blocked"), "is blocked"),
        (record(status="failed", error="ImportError: x"), "failed to load: ImportError: x"),
        (record(status="incompatible", error="wants 2.0"), "is incompatible: wants 2.0"),
        (record(distribution=None), "has no distribution metadata"),
        (record(providers={"stt": [], "tts": []}), "loaded but registered no provider"),
    ],
)
def test_check_discoverable_branches(rec, message):
    host = types.SimpleNamespace(records={"p": rec})
    with pytest.raises(ConformanceError, match=message):
        conformance.check_discoverable("p", host)  # type: ignore[arg-type]


def test_check_discoverable_of_a_plugin_that_is_not_installed():
    with pytest.raises(ConformanceError, match="no plugin 'nosuchplugin' in entry-point group"):
        conformance.check_discoverable("nosuchplugin", types.SimpleNamespace(records={}))  # type: ignore[arg-type]


def test_check_api_compatible_branches():
    host = types.SimpleNamespace(records={"p": record(api_version=None), "q": record(name="q", api_version=(2, 0), error="built for 2.0")})
    with pytest.raises(ConformanceError, match="does not declare PLUGIN_API"):
        conformance.check_api_compatible("p", host)  # type: ignore[arg-type]
    with pytest.raises(ConformanceError, match="plugin 'q': built for 2.0"):
        conformance.check_api_compatible("q", host)  # type: ignore[arg-type]


def test_check_light_registration_fails_for_a_plugin_that_does_not_load():
    with pytest.raises(ConformanceError, match="nosuchplugin"):
        conformance.check_light_registration("nosuchplugin")


# --- a whole plugin: crash and skipped outcomes ------------------------------------------------


class CrashingSTT(WrongSTT):
    async def recognize(self, buffer, *, language=None):
        raise RuntimeError("boom inside recognize")


class NeedsKey:
    @hookimpl
    def register_stt(self, register):
        def create(**options):
            raise MissingCredentialsError("Needy STT", "NEEDY_API_KEY")

        register("needy", create)

    @hookimpl
    def register_tts(self, register):
        register("crashy", lambda **options: WrongTTS("none"))

    @hookimpl
    def register_vad(self, register):
        register("crashvad", lambda **options: (_ for _ in ()).throw(RuntimeError("boom at creation")))


async def test_check_plugin_reports_crashes_as_failures_and_missing_keys_as_skipped():
    host = PluginHost()
    host.register_plugin("needs", NeedsKey(), distribution="livekit-plugins-needs")
    results = {r.check: r for r in await conformance.check_plugin("needs", host)}
    assert results["discoverable"].outcome == "passed"
    skipped = results["stt 'needy' contract"]
    assert skipped.outcome == "skipped" and "NEEDY_API_KEY" in skipped.detail
    assert "ships no testing.conformance_environment" in skipped.detail
    crashed = results["vad 'crashvad' contract"]
    assert crashed.outcome == "failed" and crashed.detail == "RuntimeError: boom at creation"
    assert results["tts 'crashy' contract"].outcome == "passed"
    # registered in code, not installed: the fresh interpreter cannot load it
    assert results["registration imports no SDK"].outcome == "failed"


async def test_check_plugin_reports_an_incompatible_plugin_api():
    rec = record(name="old", status="incompatible", api_version=(2, 0), error="built for plugin API 2.0; this core has 1.x")
    host = types.SimpleNamespace(records={"old": rec}, registry=types.SimpleNamespace(providers=lambda: []))
    results = {r.check: r for r in await conformance.check_plugin("old", host)}  # type: ignore[arg-type]
    assert results["plugin API compatible"].outcome == "failed"
    assert "built for plugin API 2.0" in results["plugin API compatible"].detail
    assert results["discoverable"].outcome == "failed" and "is incompatible" in results["discoverable"].detail


# --- check_light_registration: a plugin whose registration imports its SDK ----------------------


def _write_dist(site, dist: str, files: dict[str, str], *, requires=(), entry_points: str = "", top_level: str = ""):
    """An installed distribution (a dist-info directory beside its files) under ``site``."""
    for rel, text in files.items():
        (site / rel).parent.mkdir(parents=True, exist_ok=True)
        (site / rel).write_text(text)
    info = site / f"{dist.replace('-', '_')}-0.1.dist-info"
    info.mkdir()
    meta = ["Metadata-Version: 2.1", f"Name: {dist}", "Version: 0.1", *(f"Requires-Dist: {r}" for r in requires)]
    (info / "METADATA").write_text("\n".join(meta) + "\n")
    if entry_points:
        (info / "entry_points.txt").write_text(entry_points)
    if top_level:
        (info / "top_level.txt").write_text(top_level + "\n")


def test_check_light_registration_fails_for_a_plugin_that_imports_its_sdk(tmp_path, monkeypatch):
    """The plugin declares ``heavysdk`` as a dependency and imports it at module level,
    not inside the factory it registers: the check names the SDK it imported."""
    site = tmp_path / "site"
    _write_dist(site, "heavysdk", {"heavysdk/__init__.py": "LOADED = True\n"}, top_level="heavysdk")
    plugin = (
        "import heavysdk  # the mistake: the SDK comes in with the plugin module\n"
        "from livekit.agents import hookimpl\n"
        "PLUGIN_API = (1, 0)\n\n"
        "@hookimpl\n"
        "def register_stt(register):\n"
        "    register('sdkheavy', lambda **options: None)\n"
    )
    light = plugin.replace("import heavysdk  #", "#")
    _write_dist(
        site, "livekit-plugins-sdkheavy", {"sdkheavy_plugin.py": plugin, "sdklight_plugin.py": light},
        requires=["livekit-agents", "heavysdk>=1"],
        entry_points="[livekit.agents.plugins]\nsdkheavy = sdkheavy_plugin\n",
    )
    _write_dist(
        site, "livekit-plugins-sdklight", {},
        requires=["livekit-agents", "heavysdk>=1"],
        entry_points="[livekit.agents.plugins]\nsdklight = sdklight_plugin\n",
    )
    monkeypatch.syspath_prepend(str(site))  # this process reads the plugin's declared dependencies
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")])))
    with pytest.raises(ConformanceError, match=r"loading plugin 'sdkheavy' imported heavysdk; import SDKs and models inside the factories"):
        conformance.check_light_registration("sdkheavy")
    # the same plugin with the SDK import left out passes: the failure was for that reason
    conformance.check_light_registration("sdklight")
