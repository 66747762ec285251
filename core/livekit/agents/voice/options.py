"""Options of a voice pipeline."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class VoiceOptions:
    """How a :class:`~livekit.agents.voice.VoicePipelineAgent` takes turns.

    Times are seconds.
    """

    min_endpointing_delay: float = 0.5
    """Silence after the end of the user's speech before the turn is over, counted from the
    speech's end (so a VAD silence window at least this long adds nothing). A streaming
    STT's end of utterance ends the turn at once."""
    allow_interruptions: bool = True
    """User speech while the agent speaks stops the agent (see ``min_interruption_duration``)."""
    min_interruption_duration: float = 0.5
    """Seconds of sustained user speech that interrupt the agent; shorter noise does not,
    and its transcript is dropped."""
    preemptive_generation: bool = True
    """With a non-streaming STT (cut by the VAD), ask the STT, the LLM and the TTS as soon
    as the user has been silent ``preemptive_after`` seconds, before the VAD's silence
    window ends the turn; the reply is played the moment the turn ends if the user said
    nothing more (its transcript is the final one), and dropped if they speak again. A
    held reply plays nothing and runs no tool before the turn ends. A dropped attempt
    costs an STT request, LLM tokens and TTS characters (at most 3 per turn)."""
    preemptive_after: float = 0.25
    """Seconds of silence after which preemptive generation starts."""
    trim_leading_silence: float = 0.5
    """At most this many seconds of silence (no sample above -48 dBFS) at the start of a
    reply's synthesized audio are dropped instead of played: TTS services often open with
    a short silence, which the user only hears as a longer wait. 0 plays it all."""
    max_tool_steps: int = 5
    """LLM rounds with tool calls in one turn before the agent stops calling tools."""
    input_sample_rate: int = 16000
    """Rate the participant's microphone is read at (VAD and STT input)."""
    input_frame_ms: int = 32
    """Length of the microphone frames read from the track: 32 ms is one silero window at
    16 kHz, so the VAD gets whole windows and the event loop a third of the frames of
    10 ms reads (no later: a window is only complete when its last sample is in)."""
    publish_transcriptions: bool = True
    """Send ``lk.transcription`` text streams for the user's and the agent's speech."""
    drain_timeout: float = 8.0
    """On ``aclose(drain=True)``, how long the reply being spoken may take to finish."""

    def __post_init__(self) -> None:
        for name in (
            "min_endpointing_delay", "min_interruption_duration", "drain_timeout", "preemptive_after",
            "trim_leading_silence",
        ):
            value = getattr(self, name)
            if not value >= 0:
                raise ValueError(f"VoiceOptions.{name} must be >= 0 seconds, got {value!r}")
        if self.max_tool_steps < 0:
            raise ValueError(f"VoiceOptions.max_tool_steps must be >= 0, got {self.max_tool_steps}")
        if not 10 <= self.input_frame_ms <= 100:
            raise ValueError(f"VoiceOptions.input_frame_ms must be 10 to 100, got {self.input_frame_ms}")
        if self.input_sample_rate not in (8000, 16000, 24000, 48000):
            raise ValueError(
                f"VoiceOptions.input_sample_rate must be 8000, 16000, 24000 or 48000, got {self.input_sample_rate}"
            )
