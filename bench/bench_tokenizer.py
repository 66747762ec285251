"""Streaming sentence tokenizer throughput, beside NLTK's batch Punkt on the same text.

    python bench/bench_tokenizer.py [--repeat 5]

The text (about 100 KB of LLM-like English) is pushed into ``SentenceTokenizer().stream()``
token by token (a word or a punctuation mark with its leading space, as an LLM streams it)
through the public async API, and the sentences are consumed. Baselines from the same run:
``nltk.tokenize.punkt.PunktSentenceTokenizer`` with the same trained parameters over the whole
text at once, and the plugin's own batch ``tokenize()``. The streamed sentences are checked
to equal the batch ones.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import time

from nltk.tokenize.punkt import PunktSentenceTokenizer

from livekit.plugins.nltk import SentenceTokenizer, load_parameters

PARAGRAPH = (
    "Sure! Here's a quick summary of the plan. Dr. Alvarez from the U.S. office will join at "
    "9 a.m. on Monday, e.g. before the all-hands. The budget is $4.5 million, i.e. about 10% "
    'more than last year. Mr. Chen asked: "Is that enough?" Nobody knew. We\'ll see. '
    "First, review the draft (it's in the shared folder). Second, send comments to Ms. Park "
    "by Friday! Finally, book the rooms at St. James Hotel on 5th Ave. in New York. "
    "Questions? Ask me anytime. Thanks, and have a great weekend. "
)


def text_of(kb: int) -> str:
    return PARAGRAPH * (kb * 1024 // len(PARAGRAPH) + 1)


def llm_tokens(text: str) -> list[str]:
    return re.findall(r" ?[A-Za-z']+| ?[0-9]+|[^\sA-Za-z0-9]| ", text)


async def stream_once(tok: SentenceTokenizer, pieces: list[str]) -> tuple[float, list[str]]:
    t0 = time.process_time()
    stream = tok.stream()
    for p in pieces:
        stream.push_text(p)
    stream.end_input()
    out = [t.token async for t in stream]
    cpu = time.process_time() - t0
    await stream.aclose()
    return cpu, out


async def stream_live(tok: SentenceTokenizer, pieces: list[str]) -> tuple[float, list[str]]:
    """One piece per event-loop turn, the way an LLM's tokens arrive."""
    t0 = time.process_time()
    stream = tok.stream()

    async def feed() -> None:
        for p in pieces:
            stream.push_text(p)
            await asyncio.sleep(0)
        stream.end_input()

    feeder = asyncio.create_task(feed())
    out = [t.token async for t in stream]
    await feeder
    cpu = time.process_time() - t0
    await stream.aclose()
    return cpu, out


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kb", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()

    text = text_of(args.kb)
    pieces = llm_tokens(text)
    tok = SentenceTokenizer()
    nltk_punkt = PunktSentenceTokenizer(load_parameters("english"))
    mb = len(text) / 1e6

    def timed(fn) -> float:  # type: ignore[no-untyped-def]
        runs = []
        for _ in range(args.repeat):
            t0 = time.process_time()
            fn()
            runs.append(time.process_time() - t0)
        return statistics.median(runs)

    base = timed(lambda: nltk_punkt.tokenize(text))
    batch = timed(lambda: tok.tokenize(text))
    sentences = tok.tokenize(text)
    print(f"text: {len(text) / 1024:.0f} KB, {len(pieces)} LLM-like pieces, {len(sentences)} sentences")
    print(f"baseline  nltk PunktSentenceTokenizer.tokenize (batch): {base:6.3f} s CPU  {mb / base:6.2f} MB/s")
    print(
        f"plugin    SentenceTokenizer.tokenize (batch):            {batch:6.3f} s CPU  {mb / batch:6.2f} MB/s  {batch / base:5.2f}x"
    )
    for name, fn in (("burst", stream_once), ("live ", stream_live)):
        runs = [await fn(tok, pieces) for _ in range(args.repeat)]
        cpu = statistics.median(r[0] for r in runs)
        same = all(r[1] == sentences for r in runs)
        print(
            f"plugin    stream, piece by piece ({name}):            {cpu:6.3f} s CPU  {mb / cpu:6.2f} MB/s  "
            f"{cpu / base:5.2f}x the batch baseline  ({len(pieces) / cpu / 1000:.0f}k pieces/s; equals batch: {same})"
        )


if __name__ == "__main__":
    asyncio.run(main())
