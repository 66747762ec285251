"""The OpenAI loopback fake as a program: ``python -m livekit.plugins.openai.testing``.

It serves transcription (``POST /v1/audio/transcriptions``), chat completions (``POST
/v1/chat/completions``, when this version of the fake has them) and speech (``POST
/v1/audio/speech``) on 127.0.0.1 until stopped (Ctrl-C or SIGTERM), so that a voice agent
runs with no account::

    python -m livekit.plugins.openai.testing --port 8089 --expect "What is the weather in Paris?"
    OPENAI_BASE_URL=http://127.0.0.1:8089/v1 OPENAI_API_KEY=sk-fake-0123456789abcdef python examples/voice_agent.py dev

It is a simulation: it does not understand speech. It "hears" the ``--expect`` sentences by
their spoken length (espeak-ng renders them once at start) and anything else as a phrase
that gives the speech's length; its voice is a hum, one tone per word.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys

from aiohttp import web

from livekit.agents.testing.speech import speech_segments

from .testing import FakeOpenAI


class StandaloneFakeOpenAI(FakeOpenAI):
    """:class:`FakeOpenAI` on a chosen port that answers every utterance: the expected
    ones by their text, the others as ``"I spoke for N seconds"``."""

    def __init__(self, *, port: int = 0, host: str = "127.0.0.1", **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.host = host
        self._wanted_port = port

    def hear(self, pcm: bytes, rate: int) -> str:
        text = super().hear(pcm, rate) if self.utterances else ""
        if text:
            return text
        spoken = sum(e - s for s, e in speech_segments(pcm, rate))
        return f"I spoke for {spoken:.1f} seconds." if spoken > 0 else ""

    async def start(self) -> StandaloneFakeOpenAI:
        app = web.Application(client_max_size=self.max_body)
        self.routes(app)
        runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=5.0)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self._wanted_port)
        await site.start()
        self._runner = runner
        self.port = int(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
        return self


def _routes(fake: FakeOpenAI) -> list[str]:
    app = web.Application()
    fake.routes(app)
    return sorted({f"{r.method} {r.resource.canonical}" for r in app.router.routes() if r.resource is not None})


async def serve(port: int, *, expect: list[str], api_key: str, chunk_interval: float) -> None:
    """Serve until SIGINT/SIGTERM."""
    fake = StandaloneFakeOpenAI(port=port, api_key=api_key, chunk_interval=chunk_interval)
    if expect:
        from livekit.agents.testing.speech import speech

        for text in expect:
            fake.expect(speech(text))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    async with fake:
        out = sys.stdout
        out.write(
            "SIMULATION: this is a local fake of OpenAI's API, not OpenAI. It does not understand\n"
            "speech or text; it answers with canned words and a humming voice.\n"
            f"serving on {fake.base_url}  ({', '.join(_routes(fake))})\n"
            f"use: OPENAI_BASE_URL={fake.base_url} OPENAI_API_KEY={api_key}\n"
            "stop with Ctrl-C\n"
        )
        out.flush()
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m livekit.plugins.openai.testing",
        description="Serve a loopback simulation of OpenAI's transcription, chat and speech endpoints.",
    )
    parser.add_argument("--port", type=int, default=8089, help="port on 127.0.0.1 (0: any free port); default 8089")
    parser.add_argument("--expect", action="append", default=[], metavar="TEXT",
                        help="a sentence the fake should recognise when spoken (repeatable)")
    parser.add_argument("--api-key", default="sk-fake-0123456789abcdef",
                        help="the key clients must send (a fake one; default sk-fake-0123456789abcdef)")
    parser.add_argument("--chunk-interval", type=float, default=0.005,
                        help="seconds between streamed chunks of speech (0: as fast as possible)")
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        parser.error(f"--port must be between 0 and 65535, got {args.port}")
    try:
        asyncio.run(serve(args.port, expect=args.expect, api_key=args.api_key, chunk_interval=args.chunk_interval))
    except OSError as exc:
        print(f"error: cannot serve on 127.0.0.1:{args.port}: {exc.strerror or exc}; choose another --port",
              file=sys.stderr)
        return 1
    return 0
