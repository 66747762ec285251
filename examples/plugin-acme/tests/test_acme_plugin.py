"""The acme plugin's own tests: the same conformance checks livekit-agents runs in
`agents plugins check acme`, plus a few tests of acme's own behaviour.

Run them after installing the plugin:  pip install ./examples/plugin-acme && pytest examples/plugin-acme/tests
"""

from __future__ import annotations

from livekit.agents.testing import conformance
from livekit.plugins.acme import SentenceTokenizer, ToneTTS, WordTokenizer


def test_discoverable(plugin_host):
    record = conformance.check_discoverable("acme", plugin_host)
    assert record.distribution == "livekit-plugins-acme"
    assert record.providers == {"sentence_tokenizer": ["acme"], "tts": ["acme"], "word_tokenizer": ["acme"]}


def test_api_compatible(plugin_host):
    conformance.check_api_compatible("acme", plugin_host)


def test_registration_imports_nothing_heavy():
    conformance.check_light_registration("acme")


async def test_sentence_tokenizer_contract(plugin_host):
    from livekit.agents import create_tokenizer

    await conformance.check_sentence_tokenizer(create_tokenizer("acme", kind="sentence"))


async def test_word_tokenizer_contract(plugin_host):
    from livekit.agents import create_tokenizer

    await conformance.check_word_tokenizer(create_tokenizer("acme", kind="word"))


async def test_tts_contract(plugin_host):
    from livekit.agents import create_tts

    tts = create_tts("acme", sample_rate=16000)
    assert tts.sample_rate == 16000
    await conformance.check_tts(tts)


async def test_whole_plugin_passes(plugin_host):
    results = await conformance.check_plugin("acme", plugin_host)
    assert [r for r in results if r.outcome != "passed"] == []
    assert len(results) == 6  # discoverable, API, light registration, three providers


def test_abbreviations_and_initials_do_not_end_sentences():
    text = "Dr. Smith met J. R. Jones at 9 a.m. on Monday. They talked! Did it help? Yes."
    assert SentenceTokenizer().tokenize(text) == [
        "Dr. Smith met J. R. Jones at 9 a.m. on Monday.",
        "They talked!",
        "Did it help?",
        "Yes.",
    ]


def test_words_keep_contractions_and_can_keep_punctuation():
    assert WordTokenizer().tokenize("Don't stop, it's fine.") == ["Don't", "stop", "it's", "fine"]
    assert WordTokenizer(ignore_punctuation=False).tokenize("Don't stop, ok.") == [
        "Don't",
        "stop",
        ",",
        "ok",
        ".",
    ]


async def test_stream_marks_each_flushed_segment_final():
    tts = ToneTTS(sample_rate=16000)
    stream = tts.stream()
    stream.push_text("Hello there ")
    stream.push_text("friend.")
    stream.flush()
    stream.push_text("Bye now.")
    stream.end_input()
    audio = [a async for a in stream]
    await stream.aclose()
    finals = [a for a in audio if a.is_final]
    assert [a.segment_id for a in finals] == [0, 1]
    assert {a.segment_id for a in audio} == {0, 1}
    assert audio[-1].is_final


async def test_longer_words_give_longer_audio():
    tts = ToneTTS(sample_rate=16000)
    short = await tts.synthesize("hi").collect()
    long = await tts.synthesize("extraordinarily").collect()
    assert long.samples_per_channel > short.samples_per_channel
