"""The voice pipeline: listens to a participant, decides when their turn is over, asks the
LLM and speaks the answer on a track of its own, and stops when the user cuts in."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from livekit import rtc

from ..stt import STT, SpeechEvent, SpeechEventType
from ..tokenize import SentenceTokenizer
from ..tts import TTS
from ..vad import VAD, VADEvent, VADEventType
from .events import AgentSpeech, Interruption, TurnMetrics, UserSpeech, UserTranscript, VoiceError
from .listener import Listener
from .options import VoiceOptions
from .playout import AudioOutput
from .providers import resolve
from .reply import Reply
from .transcription import TranscriptionPublisher

if TYPE_CHECKING:
    from .. import llm
    from ..job import JobContext

logger = logging.getLogger("livekit.agents")


class VoicePipelineAgent(rtc.EventEmitter[str]):
    """A voice agent built from a VAD, an STT, an LLM and a TTS.

    Each may be an instance or a provider name (``"openai"``, ``"silero"``...) created
    through the plugin registry; instances made from names are closed with the agent.
    ``instructions`` becomes the system message of a new chat context (or is put first
    in ``chat_ctx``). ``tools`` are :func:`livekit.agents.llm.function_tool` functions.

    Inside a job::

        agent = VoicePipelineAgent(vad="silero", stt="openai", llm="openai", tts="openai",
                                   instructions="You are a helpful voice assistant.")
        await agent.start(ctx)          # ends with the job

    Events (``agent.on(name, callback)``): ``user_started_speaking``,
    ``user_stopped_speaking``, ``user_transcript``, ``agent_started_speaking``,
    ``agent_stopped_speaking``, ``interrupted``, ``tool_called``, ``metrics``, ``error``
    (values in :mod:`livekit.agents.voice.events`).
    """

    def __init__(
        self,
        *,
        vad: VAD | str,
        stt: STT | str,
        llm: llm.LLM | str,
        tts: TTS | str,
        tokenizer: SentenceTokenizer | str | None = None,
        instructions: str | None = None,
        chat_ctx: llm.ChatContext | None = None,
        tools: Sequence[llm.FunctionTool] = (),
        options: VoiceOptions | None = None,
    ) -> None:
        super().__init__()
        from .. import llm as llm_mod

        self.options = options or VoiceOptions()
        self._owned: list[Any] = []
        self.vad: VAD = resolve("vad", vad, self._owned)
        self.stt: STT = resolve("stt", stt, self._owned)
        self.llm: llm_mod.LLM = resolve("llm", llm, self._owned)
        self.tts: TTS = resolve("tts", tts, self._owned)
        self.tokenizer: SentenceTokenizer = resolve("sentence_tokenizer", tokenizer, self._owned)
        self.tools = list(tools)
        for tool in self.tools:
            if not isinstance(tool, llm_mod.FunctionTool):
                raise TypeError(
                    f"tools must be livekit.agents.llm.FunctionTool values (decorate the function "
                    f"with @llm.function_tool), got {type(tool).__name__}"
                )
        self.chat_ctx = chat_ctx.copy() if chat_ctx is not None else llm_mod.ChatContext()
        if instructions:
            if self.chat_ctx.messages and self.chat_ctx.messages[0].role == "system":
                raise ValueError("give the system prompt once: as instructions= or in chat_ctx, not both")
            system = llm_mod.ChatContext()
            system.add_message(role="system", content=instructions)
            for msg in self.chat_ctx.messages:
                system.messages.append(msg)
            self.chat_ctx = system

        self._room: rtc.Room | None = None
        self._output: AudioOutput | None = None
        self._listener: Listener | None = None
        self._transcripts: TranscriptionPublisher | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False
        self._started = False

        self.participant: str | None = None
        self._turn = 0
        self._reply: Reply | None = None
        # the user's turn being assembled
        self._parts: list[str] = []
        self._user_speaking = False
        self._speech_end = 0.0
        self._vad_end: float | None = None
        self._transcript_at: float | None = None
        self._stt_eou = False
        self._over_agent = False  # this utterance began while the agent was answering
        self._commit_timer: asyncio.TimerHandle | None = None
        self._pending: tuple[str, Reply] | None = None  # a preemptive reply: (user text, reply)

    # --- lifecycle ---------------------------------------------------------------------

    async def start(self, ctx: JobContext | rtc.Room, *, participant: str | rtc.RemoteParticipant | None = None) -> None:
        """Publish the agent's track and start listening to ``participant`` (an identity,
        or the first participant who is not an agent). With a JobContext, the agent ends
        with the job (the reply being spoken is finished first)."""
        if self._started:
            raise RuntimeError("this VoicePipelineAgent was already started; create one per room")
        self._started = True
        room = ctx if isinstance(ctx, rtc.Room) else ctx.room
        if not isinstance(ctx, rtc.Room):
            ctx.add_shutdown_callback(lambda: self.aclose(drain=True))
        self._room = room
        self._output = AudioOutput(room, self.tts.sample_rate, self.tts.num_channels)
        await self._output.publish()
        if self.options.publish_transcriptions:
            self._transcripts = TranscriptionPublisher(room)
        identity = participant.identity if isinstance(participant, rtc.RemoteParticipant) else participant
        self._listener = Listener(
            room,
            vad=self.vad,
            stt=self.stt,
            sample_rate=self.options.input_sample_rate,
            frame_ms=self.options.input_frame_ms,
            participant=identity,
            on_vad=self._on_vad,
            on_stt=self._on_stt,
            on_stt_error=self._on_stt_error,
            on_link=self._on_link,
            on_preemptive=self._on_preemptive if self.options.preemptive_generation else None,
            preemptive_after=self.options.preemptive_after,
        )
        self._listener.start()

    async def aclose(self, *, drain: bool = False) -> None:
        """Stop listening and speaking and release everything; with ``drain``, the reply
        being spoken is finished first (up to ``options.drain_timeout``)."""
        if self._closed:
            return
        self._closed = True
        if self._commit_timer is not None:
            self._commit_timer.cancel()
        if self._listener is not None:
            await self._listener.aclose()
        self._discard_pending("the agent is closing")
        reply = self._reply
        if reply is not None and not reply.done:
            if drain:
                with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                    await asyncio.wait_for(reply.wait(), self.options.drain_timeout)
            await reply.aclose()
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        if self._output is not None:
            await self._output.aclose()
        for provider in reversed(self._owned):
            with contextlib.suppress(Exception):
                await provider.aclose()
        self._owned.clear()

    async def __aenter__(self) -> VoicePipelineAgent:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # --- public state ------------------------------------------------------------------

    @property
    def agent_speaking(self) -> bool:
        return self._reply is not None and self._reply.speaking

    @property
    def track_sid(self) -> str | None:
        """The sid of the agent's audio track (once started)."""
        return self._output.track_sid if self._output is not None else None

    def interrupt(self) -> None:
        """Stop the agent's current reply now."""
        self._interrupt(0.0)

    # --- the user's side ---------------------------------------------------------------

    def _on_link(self, identity: str | None, track_sid: str | None) -> None:
        if identity != self.participant:
            self.participant = identity
            self._reset_turn()
            if self._reply is not None and identity is None:
                self._interrupt(0.0)
            self.emit("participant_linked", identity)

    def _reset_turn(self) -> None:
        self._discard_pending("the turn was reset")
        self._parts.clear()
        self._user_speaking = False
        self._stt_eou = False
        self._transcript_at = None
        if self._commit_timer is not None:
            self._commit_timer.cancel()
            self._commit_timer = None

    def _reply_active(self) -> bool:
        return self._reply is not None and not self._reply.done and not self._reply.interrupted

    def _on_vad(self, ev: VADEvent) -> None:
        if self._closed:
            return
        if ev.type == VADEventType.START_OF_SPEECH:
            self._user_speaking = True
            self._discard_pending("the user spoke again")
            self._over_agent = self._reply_active()
            if self._commit_timer is not None:
                self._commit_timer.cancel()
                self._commit_timer = None
            self.emit("user_started_speaking", UserSpeech(self.participant or "", ev.speech_duration))
        elif ev.type == VADEventType.INFERENCE_DONE:
            if (
                ev.speaking
                and self._over_agent
                and self.options.allow_interruptions
                and ev.speech_duration - ev.silence_duration >= self.options.min_interruption_duration
                and self._reply_active()
            ):
                self._interrupt(ev.speech_duration - ev.silence_duration)
        elif ev.type == VADEventType.END_OF_SPEECH:
            now = time.monotonic()
            self._user_speaking = False
            self._speech_end = now - ev.silence_duration
            self._vad_end = now
            self.emit("user_stopped_speaking", UserSpeech(self.participant or "", ev.speech_duration))
            self._maybe_commit()

    def _on_stt(self, ev: SpeechEvent) -> None:
        if self._closed:
            return
        if ev.type == SpeechEventType.FINAL_TRANSCRIPT:
            text = ev.text.strip()
            if not text:
                return
            if self._over_agent and self._reply_active():
                logger.debug("voice agent: dropped %r, heard over the agent without interrupting", text)
                return
            self._parts.append(text)
            self._transcript_at = time.monotonic()
            identity = self.participant or ""
            self.emit("user_transcript", UserTranscript(identity, text))
            if self._transcripts is not None and self._listener is not None:
                self._spawn(self._transcripts.user_final(identity, self._listener.track_sid, text))
            self._maybe_commit()
        elif ev.type == SpeechEventType.END_OF_SPEECH:
            self._stt_eou = True
            self._maybe_commit()

    def _on_stt_error(self, exc: BaseException) -> None:
        turn = self._turn + 1
        logger.error("voice turn %d: STT failed, the user's words are lost: %s", turn, exc,
                     extra={"turn": turn, "component": "stt"})
        self._reset_turn()
        self.emit("error", VoiceError(turn, "stt", exc, str(exc)))

    def _maybe_commit(self) -> None:
        self._commit_timer = None
        if self._closed or self._user_speaking or not self._parts:
            return
        if self._over_agent and self._reply_active():
            # noise or a short remark while the agent speaks: not a turn
            self._parts.clear()
            return
        delay = self._speech_end + self.options.min_endpointing_delay - time.monotonic()
        if self._stt_eou or delay <= 0:
            self._commit()
        else:
            self._commit_timer = asyncio.get_running_loop().call_later(delay, self._maybe_commit)

    # --- preemptive generation ----------------------------------------------------------

    def _on_preemptive(self, text: str | None, speech_end: float) -> None:
        """An early transcript while the user is silent: prepare the reply to the turn
        as it would be (played only if the turn ends with that text); ``None``: stale."""
        if text is None:
            self._discard_pending("the user spoke again")
            return
        text = text.strip()
        if self._closed or not text or self._output is None or (self._over_agent and self._reply_active()):
            return
        full = " ".join([*self._parts, text])
        self._discard_pending("a newer transcript")
        chat = self.chat_ctx.copy()
        chat.add_message(role="user", content=full)
        reply = Reply(
            turn=self._turn + 1,
            llm=self.llm,
            tts=self.tts,
            tokenizer=self.tokenizer,
            chat_ctx=chat,
            tools=self.tools,
            output=self._output,
            segment=None,
            metrics=TurnMetrics(turn=self._turn + 1),
            speech_end=speech_end,
            options=self.options,
            emit=self._on_reply_event,
            held=True,
        )
        self._pending = (full, reply)
        logger.debug("voice agent: preparing the answer to %r before the turn ends", full)

    def _discard_pending(self, why: str) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            logger.debug("voice agent: dropped the answer prepared for %r: %s", pending[0], why)
            self._spawn(pending[1].aclose())

    def _commit(self) -> None:
        text = " ".join(self._parts)
        speech_end = self._speech_end
        metrics = TurnMetrics(turn=self._turn + 1, participant=self.participant or "", user_text_chars=len(text))
        if self._vad_end is not None:
            metrics.vad_end = self._vad_end - speech_end
        if self._transcript_at is not None:
            metrics.transcript = self._transcript_at - speech_end
        pending, self._pending = self._pending, None
        self._reset_turn()
        self._over_agent = False
        if pending is not None and pending[0] != text:
            logger.debug("voice agent: dropped the answer prepared for %r: the turn is %r", pending[0], text)
            self._spawn(pending[1].aclose())
            pending = None
        if self._reply is not None and not self._reply.done:
            self._interrupt(0.0)
        self._turn += 1
        self.chat_ctx.add_message(role="user", content=text)
        assert self._output is not None
        self._output.reset()
        segment = None
        if self._transcripts is not None:
            segment = self._transcripts.agent_segment(self._output.track_sid)
        if pending is not None:
            reply = pending[1]
            metrics.preemptive = True
            reply.commit(chat_ctx=self.chat_ctx, segment=segment, metrics=metrics, speech_end=speech_end)
        else:
            reply = Reply(
                turn=self._turn,
                llm=self.llm,
                tts=self.tts,
                tokenizer=self.tokenizer,
                chat_ctx=self.chat_ctx,
                tools=self.tools,
                output=self._output,
                segment=segment,
                metrics=metrics,
                speech_end=speech_end,
                options=self.options,
                emit=self._on_reply_event,
            )
        self._reply = reply
        self._spawn(self._follow(reply))

    # --- the agent's side --------------------------------------------------------------

    def _on_reply_event(self, name: str, value: Any) -> None:
        if name == "_agent_started":
            self.emit("agent_started_speaking", AgentSpeech(value.turn))
        else:
            self.emit(name, value)

    def _interrupt(self, user_speech: float) -> None:
        reply = self._reply
        if reply is None or reply.done or reply.interrupted:
            return
        was_speaking = reply.speaking
        played = reply.interrupt()
        reply.metrics.interrupted = True
        self._record_reply(reply)
        logger.info("voice turn %d: interrupted after %r", reply.turn, played,
                    extra={"turn": reply.turn, "played_chars": len(played)})
        self.emit("interrupted", Interruption(reply.turn, played, reply.played.full_text, user_speech))
        if was_speaking:
            self.emit("agent_stopped_speaking", AgentSpeech(reply.turn, played, interrupted=True))

    def _record_reply(self, reply: Reply) -> None:
        """The assistant's message in the chat history: only what the user heard."""
        if getattr(reply, "_recorded", False):
            return
        reply._recorded = True  # type: ignore[attr-defined]
        if reply.played_text:
            self.chat_ctx.add_message(role="assistant", content=reply.played_text)
        reply.metrics.agent_text_chars = len(reply.played_text)

    async def _follow(self, reply: Reply) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            await reply.wait()
        m = reply.metrics
        if reply.error is not None:
            err = reply.error
            m.error = f"{err.component}: {type(err.error).__name__}"
            logger.error("voice turn %d failed in the %s: %s; listening again", reply.turn,
                         err.component.upper(), err.error,
                         extra={"turn": reply.turn, "component": err.component})
            self.emit("error", VoiceError(reply.turn, err.component, err.error, str(err.error)))
        if not reply.interrupted:
            self._record_reply(reply)
            if m.first_frame is not None:
                self.emit("agent_stopped_speaking", AgentSpeech(reply.turn, reply.played_text))
        logger.info("voice turn %d metrics", reply.turn, extra={"voice_turn": m.as_dict()})
        self.emit("metrics", m)
        if self._reply is reply:
            self._reply = None

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro, name="voice-agent")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task
