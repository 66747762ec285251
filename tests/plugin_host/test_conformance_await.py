"""A test that calls an async conformance check without ``await`` used to pass (the check
never ran). The livekit-agents pytest plugin now fails it, naming the check."""

from __future__ import annotations

pytest_plugins = ["pytester"]

TESTS = '''
from livekit.agents import tokenize
from livekit.agents.testing import conformance


class OneSentence(tokenize.SentenceTokenizer):
    def tokenize(self, text):
        return [text]

    def stream(self):
        raise NotImplementedError


def test_sync_forgets_await():
    conformance.check_sentence_tokenizer(OneSentence())


async def test_async_forgets_await():
    conformance.check_sentence_tokenizer(OneSentence())


async def test_awaited_runs_the_check():
    await conformance.check_sentence_tokenizer(OneSentence())
'''


def test_a_check_that_is_not_awaited_fails_the_test(pytester):
    pytester.makepyfile(test_checks=TESTS)
    # -rN: no short summary (untruncated under CI=true, it would repeat each message)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-o", "asyncio_mode=auto", "-rN")
    result.assert_outcomes(failed=3)
    out = result.stdout.str()
    assert out.count("conformance.check_sentence_tokenizer was called but never awaited, so the check did not run") == 2
    assert "tokenize() found 1 sentences, expected 5" in out  # the awaited one really ran
