"""One agent reply: the chat goes to the LLM, its text through the sentence tokenizer into
the TTS, the audio onto the agent's track; tool calls run between LLM rounds."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ..tokenize import SentenceTokenizer
from ..tts import TTS, SynthesizeStream
from ..tts import StreamAdapter as TTSStreamAdapter
from .events import ToolCall, TurnMetrics, VoiceError
from .options import VoiceOptions
from .playout import AudioOutput, PlayedText, is_silent
from .transcription import AgentSegment

if TYPE_CHECKING:
    from .. import llm

logger = logging.getLogger("livekit.agents")


class ReplyFailed(Exception):
    """A provider failed during a reply; ``component`` says which."""

    def __init__(self, component: str, error: BaseException) -> None:
        super().__init__(f"{component}: {type(error).__name__}: {error}")
        self.component = component
        self.error = error


class Reply:
    """Speaks one answer to ``chat_ctx`` (which it extends with the tool round trips).
    ``done`` ends with the reply; :meth:`interrupt` stops the audio at once.

    A ``held`` reply (preemptive generation, before the end of the user's turn is
    confirmed) asks the LLM and synthesizes its first audio, but plays nothing and runs
    no tool until :meth:`commit`; closing it uncommitted leaves no trace."""

    def __init__(
        self,
        *,
        turn: int,
        llm: llm.LLM,
        tts: TTS,
        tokenizer: SentenceTokenizer,
        chat_ctx: llm.ChatContext,
        tools: Sequence[llm.FunctionTool],
        output: AudioOutput,
        segment: AgentSegment | None,
        metrics: TurnMetrics,
        speech_end: float,
        options: VoiceOptions,
        emit: Callable[[str, Any], None],
        held: bool = False,
    ) -> None:
        self.turn = turn
        self._llm, self._tts, self._tokenizer = llm, tts, tokenizer
        self.chat_ctx = chat_ctx
        self._tools = {t.name: t for t in tools}
        self._output = output
        self._segment = segment
        self.metrics = metrics
        self._t0 = speech_end
        self._max_steps = options.max_tool_steps
        self._trim = options.trim_leading_silence
        self._emit = emit
        self.played = PlayedText()
        self.speaking = False
        """The first frame is on the track and the reply has not ended."""
        self.interrupted = False
        self.played_text = ""
        self.error: ReplyFailed | None = None
        self.held = held
        self._committed = asyncio.Event()
        self._early: dict[str, float] = {}  # marks made while held (monotonic times)
        if not held:
            self._committed.set()
        self._task = asyncio.create_task(self._run(), name=f"voice-reply-{turn}")

    @property
    def done(self) -> bool:
        return self._task.done()

    async def wait(self) -> None:
        await asyncio.shield(self._task)

    def _mark(self, name: str) -> None:
        if not self._committed.is_set():
            self._early.setdefault(name, time.monotonic())
        elif getattr(self.metrics, name) is None:
            setattr(self.metrics, name, time.monotonic() - self._t0)

    @property
    def committed(self) -> bool:
        return self._committed.is_set()

    def commit(
        self, *, chat_ctx: llm.ChatContext, segment: AgentSegment | None, metrics: TurnMetrics, speech_end: float
    ) -> None:
        """The user's turn is confirmed: play the held reply. ``chat_ctx`` is the agent's
        history (with the user's message, as the held reply's own copy had it): tool
        round trips go there from now on."""
        self.chat_ctx, self._segment, self.metrics, self._t0 = chat_ctx, segment, metrics, speech_end
        for name, at in self._early.items():
            setattr(metrics, name, at - speech_end)
        self._committed.set()

    # --- running -----------------------------------------------------------------------

    async def _run(self) -> None:
        tts_stream = self._open_tts()
        sentences = self._tokenizer.stream()
        producer = asyncio.create_task(self._produce(sentences), name=f"voice-llm-{self.turn}")
        feeder = asyncio.create_task(self._feed(sentences, tts_stream), name=f"voice-sentences-{self.turn}")
        player = asyncio.create_task(self._play(tts_stream), name=f"voice-play-{self.turn}")
        tasks = (producer, feeder, player)
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in tasks:
                if task.done() and not task.cancelled() and task.exception() is not None:
                    exc = task.exception()
                    self.error = exc if isinstance(exc, ReplyFailed) else ReplyFailed("voice", exc)  # type: ignore[arg-type]
                    break
            if self.error is None and not self.interrupted:
                await self._committed.wait()
                await self._output.wait_for_playout()
                self.played_text = self.played.full_text
        except asyncio.CancelledError:
            pass  # interrupted, or the agent is closing
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for stream in (sentences, tts_stream):
                with contextlib.suppress(Exception):
                    await stream.aclose()
            if self._committed.is_set() and (self.error is not None or self.interrupted or not self.played_text):
                if not self.interrupted:
                    self.played_text = self.played.played(self._output.clear())
            if self._segment is not None:
                await self._segment.close()
            self.speaking = False

    def _open_tts(self) -> SynthesizeStream:
        tts = self._tts
        if not tts.capabilities.streaming:
            tts = TTSStreamAdapter(tts=tts, sentence_tokenizer=self._tokenizer)
        return tts.stream()

    async def _produce(self, sentences: Any) -> None:
        """LLM rounds: text into the tokenizer, tool calls run, results back to the LLM."""
        from .. import llm as llm_mod

        self._mark("llm_request")
        for step in range(self._max_steps + 1):
            tools = list(self._tools.values()) if step < self._max_steps else []
            calls: list[llm_mod.FunctionCall] = []
            text = ""
            try:
                async with self._llm.chat(self.chat_ctx, tools=tools) as stream:
                    async for chunk in stream:
                        if chunk.delta or chunk.tool_calls:
                            self._mark("llm_first_token")
                        if chunk.delta:
                            text += chunk.delta
                            sentences.push_text(chunk.delta)
                        calls.extend(chunk.tool_calls)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                raise ReplyFailed("llm", exc) from exc
            if not calls:
                break
            await self._committed.wait()  # no tool runs for a turn that may not be one
            self.metrics.tool_calls += len(calls)
            self.chat_ctx.add_message(role="assistant", content=text, tool_calls=calls)
            results = await asyncio.gather(*(self._call_tool(c) for c in calls))
            for call, result in zip(calls, results, strict=True):
                self.chat_ctx.add_tool_result(call, result)
        sentences.end_input()

    async def _call_tool(self, call: llm.FunctionCall) -> str:
        t0 = time.monotonic()
        tool = self._tools.get(call.name)
        error: str | None = None
        if tool is None:
            error = f"there is no tool named {call.name!r}; the tools are: {', '.join(self._tools) or 'none'}"
            result = f"error: {error}"
        else:
            try:
                value = await tool.execute(call.arguments)
                result = value if isinstance(value, str) else json.dumps(value, default=str)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
                result = f"error: {error}"
                logger.warning("voice turn %d: tool %s failed: %s", self.turn, call.name, error,
                               extra={"turn": self.turn, "tool": call.name})
        ev = ToolCall(self.turn, call.name, call.arguments, result, error, time.monotonic() - t0)
        self._emit("tool_called", ev)
        if error is not None:
            self._emit("error", VoiceError(self.turn, "tool", RuntimeError(error), error))
        return result

    async def _feed(self, sentences: Any, tts_stream: SynthesizeStream) -> None:
        """Each complete sentence to the TTS, flushed so it is spoken without waiting."""
        async for token in sentences:
            text = token.token.strip()
            if not text:
                continue
            self.played.add_sentence(text)
            tts_stream.push_text(text)
            tts_stream.flush()
        tts_stream.end_input()

    async def _play(self, tts_stream: SynthesizeStream) -> None:
        index = -1  # the sentence being played
        sentence_open = False
        trim = self._trim  # seconds of leading silence still to drop
        try:
            async for audio in tts_stream:
                self._mark("tts_first_audio")
                if not self._committed.is_set():
                    await self._committed.wait()
                if not sentence_open and index + 1 < len(self.played.sentences):
                    index += 1
                    sentence_open = True
                    if self._segment is not None:
                        text = self.played.sentences[index][0]
                        self._segment.push((" " if self._segment.text else "") + text)
                frame = audio.frame
                if trim > 0 and not self.speaking and is_silent(frame):
                    trim -= frame.samples_per_channel / frame.sample_rate
                    n = 0  # the service's leading silence: only the listener's wait
                else:
                    n = await self._output.capture(frame)
                if n and index >= 0:
                    self.played.add_samples(index, n)
                if not self.speaking and n:
                    self.speaking = True
                    self._mark("first_frame")
                    self._emit("_agent_started", self)
                if audio.is_final:
                    sentence_open = False
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            raise ReplyFailed("tts", exc) from exc

    def interrupt(self) -> str:
        """Stop the audio now (the queue is dropped) and cancel the LLM and TTS; returns
        the text the user heard."""
        if self.done or self.interrupted:
            return self.played_text
        self.interrupted = True
        self.played_text = self.played.played(self._output.clear())
        self._task.cancel()
        return self.played_text

    async def aclose(self) -> None:
        if not self._task.done():
            self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
