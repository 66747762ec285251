"""Chat completions with OpenAI's ``POST /chat/completions``, streamed (Server-Sent Events).

Works with any OpenAI-compatible server (vLLM, Ollama, LM Studio, ...) through ``base_url``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx2

import openai
from livekit.agents import llm
from livekit.agents.exceptions import (
    LLMAuthenticationError,
    LLMConnectionError,
    LLMError,
    LLMRateLimitError,
    LLMResponseError,
    LLMServerError,
    LLMStatusError,
    LLMTimeoutError,
    LLMTruncatedError,
)
from livekit.agents.utils.retry import RetryOptions, with_retries

from ._client import ENV_KEY, Client, _message, _retry_after
from .log import logger

DEFAULT_MODEL = "gpt-4o-mini"
CHAT_OPTIONS = (
    "temperature",
    "top_p",
    "max_completion_tokens",
    "max_tokens",
    "seed",
    "stop",
    "parallel_tool_calls",
    "presence_penalty",
    "frequency_penalty",
    "user",
    "extra_body",
)
"""Keyword options of ``LLM(...)`` and ``chat(...)``, sent as the request's parameters
(``extra_body`` is merged into the body as it is, for servers with parameters of their own)."""


class LLM(llm.LLM):
    """A chat model behind OpenAI's Chat Completions API, streamed.

    Args:
        model: the model name, e.g. ``gpt-4o-mini`` (or what an OpenAI-compatible server
            calls its model).
        api_key: defaults to ``OPENAI_API_KEY``.
        base_url: defaults to ``OPENAI_BASE_URL``, else ``https://api.openai.com/v1``.
        timeout: seconds to wait for the answer to start (per attempt).
        stall_timeout: seconds the stream may go without a chunk before it fails.
        retry: retry policy for 429, 5xx and connection errors before the answer starts.
        **options: default request options (see :data:`CHAT_OPTIONS`), e.g. ``temperature``.
    """

    def __init__(
        self,
        *,
        model: str = DEFAULT_MODEL,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float | None = None,
        stall_timeout: float = 15.0,
        retry: RetryOptions | None = None,
        **options: Any,
    ) -> None:
        super().__init__()
        _check_options(options)
        self._model = model
        self.stall_timeout = stall_timeout
        self.options = options
        self._client = Client("OpenAI LLM", api_key=api_key, base_url=base_url, timeout=timeout, retry=retry)

    @property
    def model(self) -> str:
        return self._model

    @property
    def base_url(self) -> str:
        return self._client.base_url

    def chat(
        self,
        chat_ctx: llm.ChatContext,
        *,
        tools: Sequence[llm.FunctionTool] = (),
        tool_choice: llm.ToolChoice | None = None,
        **options: Any,
    ) -> LLMStream:
        _check_options(options)
        return LLMStream(self, chat_ctx, tools=tools, tool_choice=tool_choice, options={**self.options, **options})

    async def aclose(self) -> None:
        await self._client.aclose()


class LLMStream(llm.LLMStream):
    """One streamed chat completion."""

    llm: LLM

    async def _run(self) -> None:
        client = self.llm._client
        body = request_body(self.llm.model, self.chat_ctx, self.tools, self.tool_choice, self.options)
        extra = body.pop("extra_body", None)
        wait = max(client.retry.timeout, self.llm.stall_timeout) + 5.0  # our own timeouts fire first

        async def attempt() -> Any:
            try:
                return await asyncio.wait_for(
                    client.sdk.chat.completions.create(**body, extra_body=extra, timeout=httpx2.Timeout(wait)),
                    client.retry.timeout,
                )
            except (openai.OpenAIError, httpx2.HTTPError, asyncio.TimeoutError, ValueError) as exc:
                raise self._error(exc, started=False) from None

        logger.debug("chat request: model %s, %d messages, %d tools", self.llm.model, len(body["messages"]), len(self.tools))
        stream = await with_retries(attempt, options=client.retry, what="OpenAI chat completion")
        async with stream:
            await self._read(stream)

    async def _read(self, stream: Any) -> None:
        calls: dict[int, _PendingCall] = {}
        finished = False
        while True:
            try:
                chunk = await asyncio.wait_for(stream.__anext__(), self.llm.stall_timeout)
            except StopAsyncIteration:
                break
            except asyncio.TimeoutError:
                raise LLMTimeoutError(
                    f"OpenAI chat completion: no chunk for {self.llm.stall_timeout:.1f} s, the stream stalled "
                    f"({self.llm.base_url}); after {len(self.text)} characters of text"
                ) from None
            except (openai.OpenAIError, httpx2.HTTPError, ValueError) as exc:
                raise self._error(exc, started=True) from None
            try:
                finished = self._handle(chunk, calls) or finished
            except (AttributeError, TypeError, KeyError, IndexError, ValueError) as exc:
                raise LLMResponseError(
                    f"OpenAI chat completion: a stream chunk is not the documented chat.completion.chunk "
                    f"({type(exc).__name__}: {self.llm._client.redact(str(exc))})"
                ) from None
        if not finished:  # unfinished tool calls are dropped: their arguments may be cut
            raise LLMTruncatedError(
                "OpenAI chat completion: the stream ended before the completion finished (no finish_reason); "
                f"{len(self.text)} characters and {len(calls)} unfinished tool calls were received"
            )

    def _handle(self, chunk: Any, calls: dict[int, _PendingCall]) -> bool:
        """Emit what ``chunk`` carries; ``True`` if it finished the completion."""
        finished = False
        if not isinstance(chunk.choices, list):
            raise TypeError("'choices' is not a list")
        for choice in chunk.choices:
            if choice.index != 0:
                continue
            delta = choice.delta
            out = llm.ChatChunk()
            if delta is not None:
                if delta.content:
                    if not isinstance(delta.content, str):
                        raise TypeError("'delta.content' is not a string")
                    out.delta = delta.content
                for fragment in delta.tool_calls or []:
                    index = fragment.index
                    if not isinstance(index, int):
                        raise TypeError("a tool call delta has no integer 'index'")
                    calls.setdefault(index, _PendingCall()).add(fragment)
            if choice.finish_reason is not None:
                finished = True
                out.finish_reason = choice.finish_reason
                out.tool_calls += _complete(calls)  # fragments may interleave: whole at the end
            if out.delta or out.tool_calls or out.finish_reason:
                self._emit(out)
        usage = getattr(chunk, "usage", None)
        if usage is not None:
            details = getattr(usage, "prompt_tokens_details", None)
            self._emit(
                llm.ChatChunk(
                    usage=llm.CompletionUsage(
                        prompt_tokens=int(usage.prompt_tokens or 0),
                        completion_tokens=int(usage.completion_tokens or 0),
                        total_tokens=int(usage.total_tokens or 0),
                        cached_tokens=int(getattr(details, "cached_tokens", 0) or 0),
                    )
                )
            )
        return finished

    def _error(self, exc: BaseException, *, started: bool) -> LLMError:
        """The ``LLMError`` for an SDK or transport exception (``started``: mid-stream)."""
        client = self.llm._client
        what = "OpenAI chat completion"
        if isinstance(exc, LLMError):
            return exc
        if isinstance(exc, (openai.AuthenticationError, openai.PermissionDeniedError)):
            return LLMAuthenticationError(
                f"{what}: the server refused the API key (HTTP {exc.status_code}): "
                f"{client.redact(_message(exc)).rstrip('.')}. Check {ENV_KEY} or the api_key argument.",
                status_code=exc.status_code,
                request_id=exc.request_id,
            )
        if isinstance(exc, openai.APIStatusError):
            body = exc.body if isinstance(exc.body, dict) else {}
            error = body.get("error") if isinstance(body.get("error"), dict) else body
            code = error.get("code")
            message = f"{what}: HTTP {exc.status_code}: {client.redact(_message(exc))}"
            kwargs: dict[str, Any] = {"status_code": exc.status_code, "request_id": exc.request_id}
            retry_after = _retry_after(exc.response.headers)
            if exc.status_code == 429:
                hint = f" (the server asks to wait {retry_after:g} s)" if retry_after is not None else ""
                return LLMRateLimitError(
                    message + hint, retry_after=retry_after, retryable=code != "insufficient_quota", **kwargs
                )
            if exc.status_code >= 500:
                return LLMServerError(message, retry_after=retry_after, **kwargs)
            return LLMStatusError(message, **kwargs)
        if isinstance(exc, (openai.APITimeoutError, httpx2.TimeoutException, asyncio.TimeoutError)):
            if started:
                return LLMTimeoutError(f"{what}: the stream stalled ({client.base_url})")
            return LLMTimeoutError(
                f"{what}: no answer within {client.retry.timeout:.1f} s ({client.base_url})"
            )
        if isinstance(exc, ValueError):  # a data: line that is not JSON
            return LLMResponseError(f"{what}: malformed server-sent event: {client.redact(str(exc))}")
        if isinstance(exc, (openai.APIConnectionError, httpx2.TransportError)):
            cause = exc.__cause__ or exc
            reason = client.redact(str(cause) or type(cause).__name__)
            if started:
                return LLMTruncatedError(
                    f"{what}: the connection closed mid-stream ({reason}); "
                    f"{len(self.text)} characters were received"
                )
            return LLMConnectionError(f"{what}: connection to {client.base_url} failed: {reason}")
        if isinstance(exc, openai.APIError):  # an error event inside the stream
            return LLMError(f"{what}: the server sent an error mid-stream: {client.redact(exc.message)}")
        return LLMError(f"{what}: {type(exc).__name__}: {client.redact(str(exc))}")


@dataclass
class _PendingCall:
    """A tool call whose fragments are still arriving."""

    id: str = ""
    name: str = ""
    arguments: str = ""

    def add(self, fragment: Any) -> None:
        if fragment.id:
            self.id = fragment.id
        function = fragment.function
        if function is not None:
            if function.name:
                self.name += function.name
            if function.arguments:
                self.arguments += function.arguments


def _complete(calls: dict[int, _PendingCall]) -> list[llm.FunctionCall]:
    """The joined tool calls, by index (``calls`` is emptied)."""
    out = []
    for i in sorted(calls):
        call = calls.pop(i)
        if not call.name:
            raise ValueError(f"tool call {i} ended without a function name")
        out.append(llm.FunctionCall(id=call.id or f"call_{i}", name=call.name, arguments=call.arguments or "{}"))
    return out


def _check_options(options: dict[str, Any]) -> None:
    unknown = sorted(set(options) - set(CHAT_OPTIONS))
    if unknown:
        raise TypeError(
            f"unknown OpenAI chat option(s) {', '.join(map(repr, unknown))}; the options are "
            f"{', '.join(CHAT_OPTIONS)} (put server-specific parameters in extra_body={{...}})"
        )


def request_body(
    model: str,
    chat_ctx: llm.ChatContext,
    tools: Sequence[llm.FunctionTool],
    tool_choice: llm.ToolChoice | None,
    options: dict[str, Any],
) -> dict[str, Any]:
    """The Chat Completions request for a chat context, streamed with usage."""
    body: dict[str, Any] = {
        "model": model,
        "messages": [_message_json(m) for m in chat_ctx.messages],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if tools:
        body["tools"] = [
            {
                "type": "function",
                "function": {"name": t.name, "description": t.description, "parameters": t.parameters},
            }
            for t in tools
        ]
        if tool_choice is not None:
            body["tool_choice"] = (
                tool_choice
                if tool_choice in ("auto", "required", "none")
                else {"type": "function", "function": {"name": tool_choice}}
            )
    else:
        options = {k: v for k, v in options.items() if k != "parallel_tool_calls"}  # needs tools
    body.update({k: v for k, v in options.items() if v is not None})
    return body


def _message_json(message: llm.ChatMessage) -> dict[str, Any]:
    if message.role == "tool":
        return {"role": "tool", "tool_call_id": message.tool_call_id, "content": message.content}
    out: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.role == "assistant" and message.tool_calls:
        out["content"] = message.content or None
        out["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in message.tool_calls
        ]
    return out

