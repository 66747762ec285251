"""Large language models: chat contexts, function tools and streaming chat completions.

::

    from livekit.agents import llm, create_llm

    @llm.function_tool
    async def get_weather(city: str) -> str:
        \"\"\"The weather in a city.

        Args:
            city: the city's name.
        \"\"\"
        return f"sunny in {city}"

    model = create_llm("openai", model="gpt-4o-mini")
    ctx = llm.ChatContext()
    ctx.add_message(role="user", content="Weather in Paris?")
    async with model.chat(ctx, tools=[get_weather]) as stream:
        async for chunk in stream:
            print(chunk.delta, chunk.tool_calls)
"""

from ..exceptions import (
    LLMAuthenticationError,
    LLMConnectionError,
    LLMError,
    LLMRateLimitError,
    LLMResponseError,
    LLMServerError,
    LLMStatusError,
    LLMTimeoutError,
    LLMTruncatedError,
    ToolArgumentsError,
)
from .chat_context import ChatContext, ChatMessage, ChatRole, FunctionCall
from .llm import (
    LLM,
    ChatChunk,
    CompletionUsage,
    LLMCapabilities,
    LLMStream,
    ToolChoice,
    check_tool_choice,
)
from .tools import FunctionTool, find_tool, function_tool

__all__ = [
    "LLM",
    "LLMStream",
    "LLMCapabilities",
    "ChatChunk",
    "CompletionUsage",
    "ChatContext",
    "ChatMessage",
    "ChatRole",
    "FunctionCall",
    "FunctionTool",
    "function_tool",
    "find_tool",
    "ToolChoice",
    "check_tool_choice",
    "LLMError",
    "LLMConnectionError",
    "LLMTimeoutError",
    "LLMStatusError",
    "LLMAuthenticationError",
    "LLMRateLimitError",
    "LLMServerError",
    "LLMResponseError",
    "LLMTruncatedError",
    "ToolArgumentsError",
]
