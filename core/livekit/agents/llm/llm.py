"""The LLM capability: a provider streams the continuation of a chat context.

A provider subclasses :class:`LLM` and :class:`LLMStream`. ``LLM.chat()`` returns its
stream at once; the stream's :meth:`LLMStream._run` makes the request and emits
:class:`ChatChunk` values with :meth:`LLMStream._emit` as the answer arrives::

    class AcmeLLM(llm.LLM):
        def chat(self, chat_ctx, *, tools=(), tool_choice=None, **options):
            return AcmeStream(self, chat_ctx, tools=tools, tool_choice=tool_choice, options=options)

    class AcmeStream(llm.LLMStream):
        async def _run(self) -> None:
            async for piece in acme_sdk.stream(...):
                self._emit(llm.ChatChunk(delta=piece.text))
            self._emit(llm.ChatChunk(usage=llm.CompletionUsage(...)))

Consumers iterate the stream (``async with`` closes it); ``aclose()`` stops the request
at once. Errors are the ``LLMError`` family of :mod:`livekit.agents.exceptions`.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ..utils.streams import AsyncStream
from .chat_context import ChatContext, ChatMessage, FunctionCall
from .tools import FunctionTool

ToolChoice = Literal["auto", "required", "none"] | str
"""``"auto"`` (the model decides), ``"required"`` (it must call a tool), ``"none"`` (it must
not), or the name of one of the tools (it must call that one)."""


@dataclass
class CompletionUsage:
    """Token counts of one completion, as the provider reports them."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cached_tokens: int = 0


@dataclass
class ChatChunk:
    """A piece of the answer: a text ``delta``, complete ``tool_calls`` (arguments joined),
    and/or the ``usage`` figures (usually in the last chunk)."""

    delta: str = ""
    tool_calls: list[FunctionCall] = field(default_factory=list)
    usage: CompletionUsage | None = None
    finish_reason: str | None = None


@dataclass(frozen=True)
class LLMCapabilities:
    tool_calls: bool = True
    """The provider can call function tools."""
    parallel_tool_calls: bool = True
    """The provider can ask for several tool calls in one answer."""


class LLM(ABC):
    """A chat-completion provider."""

    def __init__(self, *, capabilities: LLMCapabilities | None = None) -> None:
        self.capabilities = capabilities or LLMCapabilities()

    @property
    def model(self) -> str:
        """The model's name, as the provider knows it."""
        return ""

    @abstractmethod
    def chat(
        self,
        chat_ctx: ChatContext,
        *,
        tools: Sequence[FunctionTool] = (),
        tool_choice: ToolChoice | None = None,
        **options: Any,
    ) -> LLMStream:
        """Stream the assistant's answer to ``chat_ctx``; the model may call ``tools``.
        Call it from a running event loop; iterate the stream for :class:`ChatChunk`."""

    async def aclose(self) -> None:
        """Release connections."""

    async def __aenter__(self) -> LLM:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class LLMStream(AsyncStream[None, ChatChunk]):
    """The answer to one ``chat()`` call, chunk by chunk as it arrives.

    After the stream (or during it): ``text`` and ``tool_calls`` so far, ``usage`` (the
    last usage the provider reported), ``ttft`` (seconds from ``chat()`` to the first text
    or tool call, ``None`` if none came) and ``duration``."""

    def __init__(
        self,
        llm: LLM,
        chat_ctx: ChatContext,
        *,
        tools: Sequence[FunctionTool] = (),
        tool_choice: ToolChoice | None = None,
        options: dict[str, Any] | None = None,
    ) -> None:
        check_tool_choice(tool_choice, tools)
        self.llm = llm
        self.chat_ctx = chat_ctx
        self.tools = list(tools)
        self.tool_choice = tool_choice
        self.options = dict(options or {})
        self.text = ""
        self.tool_calls: list[FunctionCall] = []
        self.usage: CompletionUsage | None = None
        self.finish_reason: str | None = None
        self.ttft: float | None = None
        self.duration: float | None = None
        self._started = time.perf_counter()
        super().__init__()
        self.end_input()

    @abstractmethod
    async def _run(self) -> None:
        """Make the request and :meth:`_emit` its chunks; return when the answer ended."""

    def _emit(self, item: ChatChunk) -> None:
        if self.ttft is None and (item.delta or item.tool_calls):
            self.ttft = time.perf_counter() - self._started
        self.text += item.delta
        self.tool_calls.extend(item.tool_calls)
        if item.usage is not None:
            self.usage = item.usage
        if item.finish_reason is not None:
            self.finish_reason = item.finish_reason
        super()._emit(item)

    async def _main(self) -> None:
        try:
            await super()._main()
        finally:
            self.duration = time.perf_counter() - self._started

    async def collect(self) -> ChatMessage:
        """Read the whole answer; the assistant message to append to the chat context."""
        async for _ in self:
            pass
        return ChatMessage(role="assistant", content=self.text, tool_calls=list(self.tool_calls))

    async def __aenter__(self) -> LLMStream:
        return self


def check_tool_choice(tool_choice: ToolChoice | None, tools: Sequence[FunctionTool]) -> None:
    """Raise ``ValueError`` for a ``tool_choice`` that cannot be honoured with ``tools``."""
    for tool in tools:
        if not isinstance(tool, FunctionTool):
            raise TypeError(f"tools must be FunctionTool objects (decorate with @llm.function_tool), got {tool!r}")
    names = [t.name for t in tools]
    if len(set(names)) != len(names):
        raise ValueError(f"two tools share a name: {sorted(n for n in names if names.count(n) > 1)[0]!r}")
    if tool_choice is None or tool_choice in ("auto", "none"):
        return
    if tool_choice == "required":
        if not tools:
            raise ValueError('tool_choice="required" needs at least one tool')
        return
    if tool_choice not in names:
        raise ValueError(
            f"tool_choice {tool_choice!r} is neither 'auto', 'required', 'none' nor the name of "
            f"one of the tools ({', '.join(names) or 'none given'})"
        )
