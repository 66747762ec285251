import re

from livekit.agents.tokenize import BufferedTokenStream


def sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s]


TEXT = "Hi. The agent joined the room. It hears you! Does it answer? Yes, it does."


async def run(stream: BufferedTokenStream, pieces: list[str]) -> list[tuple[str, int]]:
    for p in pieces:
        stream.push_text(p)
    stream.end_input()
    return [(t.token, t.segment_id) async for t in stream]


async def test_streamed_tokens_equal_batch_tokens_whatever_the_chunking():
    for size in (1, 2, 5, 13, len(TEXT)):
        pieces = [TEXT[i : i + size] for i in range(0, len(TEXT), size)]
        got = await run(BufferedTokenStream(sentences), pieces)
        assert [t for t, _ in got] == sentences(TEXT), size


async def test_sentence_comes_out_as_soon_as_the_next_one_starts():
    s = BufferedTokenStream(sentences)
    s.push_text("The agent joined the room. It")
    first = await s.__anext__()
    assert first.token == "The agent joined the room."
    await s.aclose()


async def test_min_length_joins_short_sentences_with_the_next():
    got = await run(BufferedTokenStream(sentences, min_token_len=20), [TEXT])
    assert [t for t, _ in got] == ["Hi. The agent joined the room.", "It hears you! Does it answer?", "Yes, it does."]


async def test_flush_releases_the_buffer_and_starts_a_new_segment():
    s = BufferedTokenStream(sentences)
    s.push_text("Hello there")
    s.flush()
    s.push_text("Second part. Done")
    s.end_input()
    assert [(t.token, t.segment_id) async for t in s] == [
        ("Hello there", 0),
        ("Second part.", 1),
        ("Done", 1),
    ]
