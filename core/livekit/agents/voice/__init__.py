"""Voice agents: a pipeline that listens to a participant, thinks with an LLM and speaks
in the room, and lets the user interrupt it. See docs/voice.md."""

from .agent import VoicePipelineAgent
from .events import (
    AgentSpeech,
    Interruption,
    ToolCall,
    TurnMetrics,
    UserSpeech,
    UserTranscript,
    VoiceError,
)
from .options import VoiceOptions
from .providers import BasicSentenceTokenizer
from .transcription import ATTR_FINAL, ATTR_SEGMENT_ID, ATTR_TRACK_ID, TOPIC

TRANSCRIPTION_TOPIC = TOPIC

__all__ = [
    "VoicePipelineAgent",
    "VoiceOptions",
    "AgentSpeech",
    "Interruption",
    "ToolCall",
    "TurnMetrics",
    "UserSpeech",
    "UserTranscript",
    "VoiceError",
    "BasicSentenceTokenizer",
    "TRANSCRIPTION_TOPIC",
    "ATTR_TRACK_ID",
    "ATTR_SEGMENT_ID",
    "ATTR_FINAL",
]
