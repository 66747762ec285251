"""What a voice pipeline tells the agent: events and per-turn metrics.

Hook them with ``agent.on(name, callback)``; the callback gets one of these values.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

EventName = Literal[
    "user_started_speaking",
    "user_stopped_speaking",
    "user_transcript",
    "agent_started_speaking",
    "agent_stopped_speaking",
    "interrupted",
    "tool_called",
    "metrics",
    "error",
    "participant_linked",
]


@dataclass
class UserSpeech:
    """``user_started_speaking`` / ``user_stopped_speaking``."""

    participant: str
    speech_duration: float = 0.0


@dataclass
class UserTranscript:
    """``user_transcript``: a final transcript of the user's speech."""

    participant: str
    text: str
    is_final: bool = True


@dataclass
class AgentSpeech:
    """``agent_started_speaking`` / ``agent_stopped_speaking``; ``text`` is what was played."""

    turn: int
    text: str = ""
    interrupted: bool = False


@dataclass
class Interruption:
    """``interrupted``: the user spoke over the agent. ``played_text`` is the part of the
    reply the user heard (kept in the chat history), ``text`` all that was generated."""

    turn: int
    played_text: str
    text: str
    user_speech_duration: float


@dataclass
class ToolCall:
    """``tool_called``: a function tool ran. ``error`` is set when it failed (the LLM gets
    the error as the tool's result)."""

    turn: int
    name: str
    arguments: str
    result: str
    error: str | None = None
    duration: float = 0.0


@dataclass
class VoiceError:
    """``error``: a turn ended early. ``component`` is ``stt``, ``llm``, ``tts`` or ``tool``."""

    turn: int
    component: str
    error: BaseException
    message: str


@dataclass
class TurnMetrics:
    """``metrics``: the latency of one turn, in seconds from the end of the user's speech
    (``None`` where the turn did not get that far).

    * ``vad_end``: the VAD reported the end of speech (its silence window is in here);
    * ``transcript``: the final transcript was in;
    * ``llm_request``: the chat was sent to the LLM (the end of turn was decided);
    * ``llm_first_token``: the first text (or tool call) came back;
    * ``tts_first_audio``: the first synthesized audio frame came back;
    * ``first_frame``: the first frame was queued on the agent's track.
    """

    turn: int
    participant: str = ""
    vad_end: float | None = None
    transcript: float | None = None
    llm_request: float | None = None
    llm_first_token: float | None = None
    tts_first_audio: float | None = None
    first_frame: float | None = None
    tool_calls: int = 0
    preemptive: bool = False
    """The reply was prepared before the end of the turn was confirmed (its LLM and TTS
    marks can come before ``vad_end``)."""
    interrupted: bool = False
    error: str | None = None
    user_text_chars: int = 0
    agent_text_chars: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("extra")
        d.update(self.extra)
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in d.items()}
