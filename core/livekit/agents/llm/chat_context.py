"""The conversation an LLM is asked to continue: system, user, assistant and tool messages."""

from __future__ import annotations

import copy as _copy
import itertools
from dataclasses import dataclass, field
from typing import Literal, get_args

ChatRole = Literal["system", "user", "assistant", "tool"]
ROLES: tuple[str, ...] = get_args(ChatRole)
_ids = itertools.count(1)


@dataclass
class FunctionCall:
    """A call of a function tool, as the model asked for it. ``arguments`` is the JSON
    text the model wrote (validated when the tool runs, see ``FunctionTool.execute``)."""

    id: str
    name: str
    arguments: str = "{}"


@dataclass
class ChatMessage:
    """One message. An assistant message may carry ``tool_calls``; a tool message answers
    one of them and names it in ``tool_call_id``."""

    role: ChatRole
    content: str = ""
    tool_calls: list[FunctionCall] = field(default_factory=list)
    tool_call_id: str | None = None
    name: str | None = None
    """For a tool message: the function's name (optional)."""
    id: str = field(default_factory=lambda: f"msg_{next(_ids)}")


class ChatContext:
    """An ordered list of :class:`ChatMessage`, checked as it is built::

        ctx = ChatContext()
        ctx.add_message(role="system", content="You are a helpful voice assistant.")
        ctx.add_message(role="user", content="What's the weather in Paris?")
    """

    def __init__(self, messages: list[ChatMessage] | None = None) -> None:
        self.messages: list[ChatMessage] = []
        for message in messages or []:
            self.append(message)

    def add_message(
        self,
        *,
        role: ChatRole,
        content: str = "",
        tool_calls: list[FunctionCall] | None = None,
        tool_call_id: str | None = None,
        name: str | None = None,
    ) -> ChatMessage:
        """Append a message and return it. Raises ``ValueError`` for a message an LLM API
        would refuse (unknown role, a tool message without ``tool_call_id``, ...)."""
        message = ChatMessage(
            role=role,
            content=content,
            tool_calls=list(tool_calls or []),
            tool_call_id=tool_call_id,
            name=name,
        )
        return self.append(message)

    def append(self, message: ChatMessage) -> ChatMessage:
        """Append an existing :class:`ChatMessage` (checked like :meth:`add_message`)."""
        _check(message)
        self.messages.append(message)
        return message

    def add_tool_result(self, call: FunctionCall, output: object) -> ChatMessage:
        """Append the tool message that answers ``call`` (``output`` is sent as text)."""
        text = output if isinstance(output, str) else str(output)
        return self.add_message(role="tool", content=text, tool_call_id=call.id, name=call.name)

    def copy(self) -> ChatContext:
        """An independent copy: changing it (or its messages) leaves this one as it is."""
        new = ChatContext()
        new.messages = _copy.deepcopy(self.messages)
        return new

    def __len__(self) -> int:
        return len(self.messages)

    def __repr__(self) -> str:
        return f"ChatContext({len(self.messages)} messages)"


def _check(message: ChatMessage) -> None:
    if message.role not in ROLES:
        raise ValueError(f"unknown chat role {message.role!r}; use one of {', '.join(ROLES)}")
    if not isinstance(message.content, str):
        raise TypeError(f"{message.role} message content must be str, got {type(message.content).__name__}")
    if message.tool_calls and message.role != "assistant":
        raise ValueError(f"only assistant messages carry tool_calls, not {message.role} messages")
    for call in message.tool_calls:
        if not isinstance(call, FunctionCall):
            raise TypeError(f"tool_calls must be FunctionCall objects, got {type(call).__name__}")
    if message.role == "tool" and not message.tool_call_id:
        raise ValueError(
            "a tool message needs tool_call_id: the id of the FunctionCall it answers "
            "(use ChatContext.add_tool_result(call, output))"
        )
    if message.role != "tool" and message.tool_call_id is not None:
        raise ValueError(f"tool_call_id is only for tool messages, not {message.role} messages")
