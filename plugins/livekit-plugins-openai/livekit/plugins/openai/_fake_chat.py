"""The Chat Completions part of the OpenAI loopback fake (``POST /v1/chat/completions``).

:class:`FakeChat` is mounted by :class:`livekit.plugins.openai.testing.FakeOpenAI` as
``fake.chat``. It answers as the documented API does:

* streaming answers are Server-Sent Events: ``data: {chat.completion.chunk}`` lines, one
  token (a word and its space) per chunk, ``chunk_interval`` seconds apart, then
  ``data: [DONE]``; with ``stream_options.include_usage`` a last chunk carries ``usage``
  and no choices. ``stream=false`` gets one ``chat.completion`` object;
* tool calls stream as OpenAI streams them: per call an ``index``, the ``id``, ``type`` and
  ``function.name`` in its first fragment, then ``function.arguments`` in fragments to
  join; several calls in one answer are parallel calls (``finish_reason: "tool_calls"``);
* it rejects (HTTP 400/401, OpenAI's JSON error body) what the real API rejects: a missing
  or wrong ``Authorization: Bearer`` key, an unknown model or parameter, messages with
  an unknown role or field, an assistant's tool calls not answered by tool messages, a
  tool message whose ``tool_call_id`` answers no earlier call, a malformed ``tools`` list
  or ``tool_choice``.

What it answers: the replies queued with :meth:`FakeChat.script` (text, tool calls, or a
:class:`ChatFault`), one per request; with nothing queued, a deterministic reply of a few
sentences to the last user message (or to the last tool result), enough for a voice
agent demo::

    fake.chat.script(
        Reply(tool_calls=[ToolCall("get_weather", {"city": "Paris"})]),
        Reply(text="It is sunny in Paris."),
        ChatFault.http(429, retry_after=1),
    )
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

CHAT_MODELS = (
    "gpt-4o-mini",
    "gpt-4o",
    "gpt-4.1",
    "gpt-4.1-mini",
    "gpt-4.1-nano",
    "gpt-4-turbo",
    "gpt-3.5-turbo",
    "o3-mini",
    "o4-mini",
)
PARAMETERS = {
    "model", "messages", "stream", "stream_options", "tools", "tool_choice", "parallel_tool_calls",
    "temperature", "top_p", "n", "max_tokens", "max_completion_tokens", "seed", "stop", "user",
    "presence_penalty", "frequency_penalty", "logit_bias", "logprobs", "top_logprobs",
    "response_format", "metadata", "store", "service_tier", "reasoning_effort", "modalities",
    "prediction", "audio", "web_search_options", "prompt_cache_key", "safety_identifier",
    "verbosity",
}
MESSAGE_FIELDS = {
    "system": {"role", "content", "name"},
    "developer": {"role", "content", "name"},
    "user": {"role", "content", "name"},
    "assistant": {"role", "content", "name", "tool_calls", "refusal", "audio", "function_call"},
    "tool": {"role", "content", "tool_call_id"},
}
_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


@dataclass
class ToolCall:
    """A tool call the fake makes: ``arguments`` is a dict (sent as JSON) or raw text (sent
    as it is, e.g. to test a model that writes invalid arguments)."""

    name: str
    arguments: dict[str, Any] | str = field(default_factory=dict)
    id: str | None = None

    def arguments_json(self) -> str:
        return self.arguments if isinstance(self.arguments, str) else json.dumps(self.arguments)


@dataclass
class Reply:
    """One scripted answer: text, tool calls (parallel when several), or both."""

    text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    finish_reason: str | None = None
    """Default: ``"tool_calls"`` when there are tool calls, else ``"stop"``."""
    interleave: bool = False
    """Send the argument fragments of parallel calls interleaved (the index tells them apart)."""


@dataclass
class ChatFault:
    """What the fake does to one request instead of answering normally."""

    kind: str  # "status" | "malformed" | "truncate" | "end_early" | "stall" | "error_event"
    status: int = 500
    retry_after: float | None = None
    message: str = ""
    after_chunks: int = 0
    seconds: float = 60.0

    @classmethod
    def http(cls, status: int, *, retry_after: float | None = None, message: str = "") -> ChatFault:
        """Answer with this HTTP status and OpenAI's JSON error body (``Retry-After`` if given)."""
        return cls("status", status=status, retry_after=retry_after, message=message)

    @classmethod
    def malformed(cls, after_chunks: int = 1) -> ChatFault:
        """After ``after_chunks`` chunks, a ``data:`` line that is not JSON."""
        return cls("malformed", after_chunks=after_chunks)

    @classmethod
    def truncate(cls, after_chunks: int = 1) -> ChatFault:
        """After ``after_chunks`` chunks, drop the connection (the chunked body never ends)."""
        return cls("truncate", after_chunks=after_chunks)

    @classmethod
    def end_early(cls, after_chunks: int = 1) -> ChatFault:
        """After ``after_chunks`` chunks, end the body cleanly, without a finish_reason or ``[DONE]``."""
        return cls("end_early", after_chunks=after_chunks)

    @classmethod
    def stall(cls, after_chunks: int = 0, seconds: float = 60.0, *, before_headers: bool = False) -> ChatFault:
        """Go silent for ``seconds`` after ``after_chunks`` chunks (or before any header)."""
        return cls("stall", after_chunks=-1 if before_headers else after_chunks, seconds=seconds)

    @classmethod
    def error_event(cls, after_chunks: int = 1, message: str = "The server had an error while processing your request.") -> ChatFault:
        """After ``after_chunks`` chunks, a ``data: {"error": ...}`` event, as OpenAI sends mid-stream."""
        return cls("error_event", after_chunks=after_chunks, message=message)


@dataclass
class ChatRequest:
    """What the fake received (the key itself is not kept, only whether it matched)."""

    auth_ok: bool
    body: dict[str, Any] = field(default_factory=dict)
    status: int = 0
    error: str | None = None
    chunks_sent: int = 0
    finished: bool = False
    """The whole answer was sent, ``[DONE]`` included."""
    client_gone: bool = False
    """The client closed the connection before the answer ended."""

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.body.get("messages") or [])


def default_reply(messages: list[dict[str, Any]]) -> Reply:
    """The fake's answer when nothing is scripted: a few deterministic sentences about the
    last user message, or the last tool result when the conversation ends with one."""
    last = messages[-1] if messages else {}
    if last.get("role") == "tool":
        return Reply(text=f"Here is what I found: {_text(last.get('content')).strip() or 'nothing'}. Is there anything else?")
    said = next((_text(m.get("content")) for m in reversed(messages) if m.get("role") == "user"), "")
    said = " ".join(said.split()).rstrip(".!?") or "nothing"
    return Reply(
        text=f"You said: {said}. I am a test assistant answering from a local fake. "
        "Ask me anything else, and I will answer in a few short sentences."
    )


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


class _Rejected(Exception):
    def __init__(self, message: str, param: str | None = None, status: int = 400, code: str | None = None) -> None:
        super().__init__(message)
        self.param = param
        self.status = status
        self.code = code


class FakeChat:
    """``POST /v1/chat/completions`` of a :class:`~livekit.plugins.openai.testing.FakeOpenAI`.

    Args:
        api_key: the key the fake accepts; a callable is read on each request (the parent's).
        closing: an event set when the fake stops (stalls end early).
    """

    def __init__(self, api_key: Callable[[], str] | str, closing: asyncio.Event, *, chunk_interval: float = 0.01) -> None:
        self._api_key = api_key
        self.closing = closing
        self.chunk_interval = chunk_interval
        """Seconds between two chunks of a streamed answer."""
        self.models: tuple[str, ...] = CHAT_MODELS
        self.hold: asyncio.Event | None = None
        """If set, streamed answers pause after their first content chunk until the event is set."""
        self.requests: list[ChatRequest] = []
        self.client_gone = asyncio.Event()
        """Set when a client closes a stream before its end (cancellation reached the socket)."""
        self._script: list[Reply | ChatFault] = []
        self._ids = itertools.count(1)

    @property
    def api_key(self) -> str:
        return self._api_key() if callable(self._api_key) else self._api_key

    # --- control ----------------------------------------------------------------------

    def script(self, *replies: Reply | ChatFault | str) -> None:
        """Answer the next requests, in order, with these (a ``str`` is a text reply)."""
        self._script.extend(Reply(text=r) if isinstance(r, str) else r for r in replies)

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/chat/completions", self._completions)

    # --- the endpoint -----------------------------------------------------------------

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        rec = ChatRequest(auth_ok=scheme == "Bearer" and token == self.api_key)
        self.requests.append(rec)
        if not header:
            return self._reject(rec, _Rejected("You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).", status=401))
        if not rec.auth_ok:
            masked = token[:8] + "*" * 8 + token[-4:] if len(token) > 12 else token
            return self._reject(rec, _Rejected(f"Incorrect API key provided: {masked}. You can find your API key at https://platform.openai.com/account/api-keys.", status=401, code="invalid_api_key"))
        try:
            body = await request.json()
        except ValueError:
            return self._reject(rec, _Rejected("We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly.)"))
        if not isinstance(body, dict):
            return self._reject(rec, _Rejected("The request body must be a JSON object."))
        rec.body = body
        try:
            self._check(body)
        except _Rejected as exc:
            return self._reject(rec, exc)
        answer = self._script.pop(0) if self._script else default_reply(body["messages"])
        if isinstance(answer, ChatFault) and answer.kind == "status":
            return self._status_fault(rec, answer)
        if isinstance(answer, ChatFault) and answer.kind == "stall" and answer.after_chunks < 0:
            await self._sleep(answer.seconds)
            rec.status = 504
            return web.Response(status=504)
        reply = answer if isinstance(answer, Reply) else Reply(text="Tokens flow until the fault hits them, one word at a time.")
        fault = answer if isinstance(answer, ChatFault) else None
        chunks = self._chunks(body, reply)
        if not body.get("stream"):
            return self._whole(rec, body, reply)
        return await self._stream(request, rec, chunks, fault)

    def _reject(self, rec: ChatRequest, exc: _Rejected) -> web.Response:
        rec.status, rec.error = exc.status, str(exc)
        type_ = "invalid_request_error"
        error = {"message": str(exc), "type": type_, "param": exc.param, "code": exc.code}
        return web.json_response({"error": error}, status=exc.status)

    def _status_fault(self, rec: ChatRequest, fault: ChatFault) -> web.Response:
        messages = {
            401: "Incorrect API key provided.",
            403: "You are not allowed to sample from this model",
            429: "Rate limit reached for gpt-4o-mini in organization org-fake on requests per min (RPM): Limit 3, Used 3, Requested 1.",
            500: "The server had an error while processing your request. Sorry about that!",
            503: "The engine is currently overloaded, please try again later",
        }
        type_ = {429: "requests", 500: "server_error", 503: "server_error"}.get(fault.status, "invalid_request_error")
        headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
        rec.status = fault.status
        body = {"error": {"message": fault.message or messages.get(fault.status, "error"), "type": type_, "param": None, "code": None}}
        return web.json_response(body, status=fault.status, headers=headers)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.closing.wait(), seconds)

    # --- the request schema -------------------------------------------------------------

    def _check(self, body: dict[str, Any]) -> None:
        unknown = sorted(set(body) - PARAMETERS)
        if unknown:
            raise _Rejected(f"Unrecognized request argument supplied: {unknown[0]}", param=unknown[0])
        model = body.get("model")
        if not model:
            raise _Rejected("you must provide a model parameter", param="model")
        if model not in self.models:
            raise _Rejected(f"The model `{model}` does not exist or you do not have access to it.", param="model", status=404, code="model_not_found")
        stream = body.get("stream", False)
        if not isinstance(stream, bool):
            raise _Rejected(f"Invalid type for 'stream': expected a boolean, but got {type(stream).__name__} instead.", param="stream")
        if "stream_options" in body:
            opts = body["stream_options"]
            if not stream:
                raise _Rejected("The 'stream_options' parameter is only allowed when 'stream' is enabled.", param="stream_options")
            if not isinstance(opts, dict) or set(opts) - {"include_usage", "include_obfuscation"} or not isinstance(opts.get("include_usage", False), bool):
                raise _Rejected("Invalid 'stream_options': expected an object with a boolean 'include_usage'.", param="stream_options")
        if body.get("n", 1) != 1:
            raise _Rejected("this fake answers with one choice only (n=1)", param="n")
        temperature = body.get("temperature", 1)
        if not isinstance(temperature, (int, float)) or isinstance(temperature, bool) or not 0 <= temperature <= 2:
            raise _Rejected(f"Invalid 'temperature': {temperature!r}. Expected a number between 0 and 2.", param="temperature")
        for name in ("max_tokens", "max_completion_tokens"):
            value = body.get(name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise _Rejected(f"Invalid '{name}': expected an integer of at least 1.", param=name)
        tool_names = self._check_tools(body)
        self._check_messages(body.get("messages"))
        choice = body.get("tool_choice")
        if choice is not None:
            if not tool_names:
                raise _Rejected("Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified.", param="tool_choice")
            if isinstance(choice, str):
                if choice not in ("none", "auto", "required"):
                    raise _Rejected(f"Invalid value: '{choice}'. Supported values are: 'none', 'auto', and 'required'.", param="tool_choice")
            elif isinstance(choice, dict) and choice.get("type") == "function" and isinstance(choice.get("function"), dict):
                name = choice["function"].get("name")
                if name not in tool_names:
                    raise _Rejected(f"Invalid value for 'tool_choice': no function named '{name}' was specified in the 'tools' parameter.", param="tool_choice")
            else:
                raise _Rejected("Invalid 'tool_choice': expected 'none', 'auto', 'required' or {\"type\": \"function\", \"function\": {\"name\": ...}}.", param="tool_choice")
        if "parallel_tool_calls" in body:
            if not tool_names:
                raise _Rejected("Invalid value for 'parallel_tool_calls': 'parallel_tool_calls' is only allowed when 'tools' are specified.", param="parallel_tool_calls")
            if not isinstance(body["parallel_tool_calls"], bool):
                raise _Rejected("Invalid type for 'parallel_tool_calls': expected a boolean.", param="parallel_tool_calls")

    @staticmethod
    def _check_tools(body: dict[str, Any]) -> list[str]:
        if "tools" not in body:
            return []
        tools = body["tools"]
        if not isinstance(tools, list) or not tools:
            raise _Rejected("Invalid 'tools': empty array. Expected an array with minimum length 1, but got an empty array instead.", param="tools")
        names: list[str] = []
        for i, tool in enumerate(tools):
            where = f"tools[{i}]"
            if not isinstance(tool, dict) or tool.get("type") != "function":
                raise _Rejected(f"Invalid value for '{where}.type': expected 'function'.", param=f"{where}.type")
            function = tool.get("function")
            if not isinstance(function, dict):
                raise _Rejected(f"Missing required parameter: '{where}.function'.", param=f"{where}.function")
            extra = set(function) - {"name", "description", "parameters", "strict"}
            if extra:
                raise _Rejected(f"Unrecognized request argument supplied: {where}.function.{sorted(extra)[0]}", param=where)
            name = function.get("name")
            if not isinstance(name, str) or not _TOOL_NAME.match(name):
                raise _Rejected(f"Invalid '{where}.function.name': string does not match pattern. Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$'.", param=f"{where}.function.name")
            if name in names:
                raise _Rejected(f"Invalid 'tools': duplicate function name '{name}'.", param="tools")
            params = function.get("parameters")
            if params is not None and (not isinstance(params, dict) or params.get("type") != "object"):
                raise _Rejected(f"Invalid schema for function '{name}': schema must be a JSON Schema of 'type: \"object\"', got 'type: \"{(params or {}).get('type') if isinstance(params, dict) else type(params).__name__}\"'.", param=f"{where}.function.parameters")
            if params is not None and not isinstance(params.get("properties", {}), dict):
                raise _Rejected(f"Invalid schema for function '{name}': 'properties' must be an object.", param=f"{where}.function.parameters")
            names.append(name)
        return names

    @staticmethod
    def _check_messages(messages: Any) -> None:
        if not isinstance(messages, list):
            raise _Rejected("Missing required parameter: 'messages'.", param="messages")
        if not messages:
            raise _Rejected("Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.", param="messages")
        open_calls: list[str] = []  # ids of the last assistant message's calls not answered yet
        answered: set[str] = set()
        for i, message in enumerate(messages):
            where = f"messages[{i}]"
            if not isinstance(message, dict):
                raise _Rejected(f"Invalid type for '{where}': expected an object.", param=where)
            role = message.get("role")
            if role not in MESSAGE_FIELDS:
                raise _Rejected(f"Invalid value: '{role}'. Supported values are: 'system', 'assistant', 'user', 'tool', 'function', and 'developer'.", param=f"{where}.role")
            extra = sorted(set(message) - MESSAGE_FIELDS[role])
            if extra:
                raise _Rejected(f"Additional properties are not allowed ('{extra[0]}' was unexpected) - '{where}'", param=where)
            if open_calls and role != "tool":
                raise _Rejected(f"An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. The following tool_call_ids did not have response messages: {', '.join(open_calls)}", param=where)
            content = message.get("content")
            if role == "assistant":
                calls = message.get("tool_calls")
                if content is None and not calls:
                    raise _Rejected(f"Invalid '{where}': an assistant message needs 'content' or 'tool_calls'.", param=f"{where}.content")
                if calls is not None:
                    open_calls = FakeChat._check_calls(calls, f"{where}.tool_calls")
            elif role == "tool":
                call_id = message.get("tool_call_id")
                if not isinstance(call_id, str) or not call_id:
                    raise _Rejected(f"Missing required parameter: '{where}.tool_call_id'.", param=f"{where}.tool_call_id")
                if call_id not in open_calls:
                    why = "was already answered" if call_id in answered else "does not answer a tool call of the preceding assistant message"
                    raise _Rejected(f"Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'. ('{where}.tool_call_id' {call_id!r} {why})", param=f"{where}.tool_call_id")
                open_calls.remove(call_id)
                answered.add(call_id)
            if content is None and role != "assistant":
                raise _Rejected(f"Missing required parameter: '{where}.content'.", param=f"{where}.content")
            if content is not None and not isinstance(content, (str, list)):
                raise _Rejected(f"Invalid type for '{where}.content': expected one of a string or array of objects, but got {type(content).__name__} instead.", param=f"{where}.content")
            if isinstance(content, list) and not all(isinstance(p, dict) and p.get("type") in ("text", "image_url", "input_audio", "file", "refusal") for p in content):
                raise _Rejected(f"Invalid '{where}.content': every part needs a 'type'.", param=f"{where}.content")
        if open_calls:
            raise _Rejected(f"An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. The following tool_call_ids did not have response messages: {', '.join(open_calls)}", param="messages")

    @staticmethod
    def _check_calls(calls: Any, where: str) -> list[str]:
        if not isinstance(calls, list) or not calls:
            raise _Rejected(f"Invalid '{where}': empty array. Expected an array with minimum length 1.", param=where)
        ids: list[str] = []
        for j, call in enumerate(calls):
            at = f"{where}[{j}]"
            if not isinstance(call, dict) or call.get("type") != "function" or not isinstance(call.get("id"), str):
                raise _Rejected(f"Invalid '{at}': expected {{'id': str, 'type': 'function', 'function': {{...}}}}.", param=at)
            function = call.get("function")
            if not isinstance(function, dict) or not isinstance(function.get("name"), str) or not isinstance(function.get("arguments"), str):
                raise _Rejected(f"Invalid '{at}.function': expected {{'name': str, 'arguments': str}}.", param=f"{at}.function")
            ids.append(call["id"])
        return ids

    # --- answering ----------------------------------------------------------------------

    def _chunks(self, body: dict[str, Any], reply: Reply) -> list[dict[str, Any]]:
        """The deltas of the answer (``choices[0]`` of each chunk), in order."""
        deltas: list[dict[str, Any]] = [{"delta": {"role": "assistant", "content": ""}, "finish_reason": None}]
        for token in re.findall(r"\S+\s*", reply.text):
            deltas.append({"delta": {"content": token}, "finish_reason": None})
        fragments: list[list[dict[str, Any]]] = []
        for index, call in enumerate(reply.tool_calls):
            call_id = call.id or f"call_fake{next(self._ids):04d}"
            frags = [{"index": index, "id": call_id, "type": "function", "function": {"name": call.name, "arguments": ""}}]
            text = call.arguments_json()
            for k in range(0, len(text), 8):
                frags.append({"index": index, "function": {"arguments": text[k : k + 8]}})
            fragments.append(frags)
        if reply.interleave:
            ordered = [f for group in itertools.zip_longest(*fragments) for f in group if f is not None]
        else:
            ordered = [f for frags in fragments for f in frags]
        for fragment in ordered:
            deltas.append({"delta": {"tool_calls": [fragment]}, "finish_reason": None})
        finish = reply.finish_reason or ("tool_calls" if reply.tool_calls else "stop")
        deltas.append({"delta": {}, "finish_reason": finish})
        return deltas

    def _usage(self, body: dict[str, Any], chunks: list[dict[str, Any]]) -> dict[str, Any]:
        prompt = sum(len(_text(m.get("content")).split()) + 4 for m in body["messages"])
        completion = max(len(chunks) - 2, 0)
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
                "prompt_tokens_details": {"cached_tokens": 0}, "completion_tokens_details": {"reasoning_tokens": 0}}

    def _envelope(self, completion_id: str, body: dict[str, Any], **fields: Any) -> dict[str, Any]:
        return {"id": completion_id, "object": "chat.completion.chunk", "created": int(time.time()),
                "model": body["model"], "system_fingerprint": "fp_fake", **fields}

    def _whole(self, rec: ChatRequest, body: dict[str, Any], reply: Reply) -> web.Response:
        chunks = self._chunks(body, reply)
        message: dict[str, Any] = {"role": "assistant", "content": reply.text or None, "refusal": None}
        if reply.tool_calls:
            calls: dict[int, dict[str, Any]] = {}
            for c in chunks:
                for frag in c["delta"].get("tool_calls", []):
                    call = calls.setdefault(frag["index"], {"id": frag.get("id"), "type": "function", "function": {"name": "", "arguments": ""}})
                    call["function"]["name"] += frag["function"].get("name", "")
                    call["function"]["arguments"] += frag["function"].get("arguments", "")
            message["tool_calls"] = [calls[i] for i in sorted(calls)]
        rec.status, rec.finished = 200, True
        return web.json_response({
            "id": f"chatcmpl-fake{next(self._ids):04d}", "object": "chat.completion", "created": int(time.time()),
            "model": body["model"], "choices": [{"index": 0, "message": message, "finish_reason": chunks[-1]["finish_reason"], "logprobs": None}],
            "usage": self._usage(body, chunks),
        })

    async def _stream(self, request: web.Request, rec: ChatRequest, chunks: list[dict[str, Any]], fault: ChatFault | None) -> web.StreamResponse:
        body = rec.body
        completion_id = f"chatcmpl-fake{next(self._ids):04d}"
        events = [self._envelope(completion_id, body, choices=[{"index": 0, **c, "logprobs": None}]) for c in chunks]
        if (body.get("stream_options") or {}).get("include_usage"):
            for event in events:
                event["usage"] = None
            events.append(self._envelope(completion_id, body, choices=[], usage=self._usage(body, chunks)))
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        rec.status = 200
        try:
            for i, event in enumerate(events):
                if fault is not None and i == fault.after_chunks:
                    await self._apply(request, resp, rec, fault)
                    return resp
                await resp.write(b"data: " + json.dumps(event).encode() + b"\n\n")
                rec.chunks_sent += 1
                if i == 1 and self.hold is not None:
                    await self._wait_hold(request)
                if self._gone(request):
                    raise ConnectionResetError
                await asyncio.sleep(self.chunk_interval)
            await resp.write(b"data: [DONE]\n\n")
            await resp.write_eof()
            rec.finished = True
        except (ConnectionResetError, ConnectionError):
            self._mark_gone(rec)
        return resp

    @staticmethod
    def _gone(request: web.Request) -> bool:
        transport = request.transport
        return transport is None or transport.is_closing()

    def _mark_gone(self, rec: ChatRequest) -> None:
        rec.client_gone = True
        self.client_gone.set()

    async def _wait_hold(self, request: web.Request) -> None:
        """Pause until ``hold`` is set, the fake closes, or the client goes away."""
        assert self.hold is not None
        while not (self.hold.is_set() or self.closing.is_set() or self._gone(request)):
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(self.hold.wait()), 0.01)

    async def _apply(self, request: web.Request, resp: web.StreamResponse, rec: ChatRequest, fault: ChatFault) -> None:
        if fault.kind == "malformed":
            await resp.write(b'data: {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "choices": [{"delta": {"content": "cut\n\n')
            await resp.write_eof()
        elif fault.kind == "error_event":
            error = {"error": {"message": fault.message, "type": "server_error", "param": None, "code": None}}
            await resp.write(b"data: " + json.dumps(error).encode() + b"\n\n")
            await resp.write_eof()
        elif fault.kind == "end_early":
            await resp.write_eof()
        elif fault.kind == "stall":
            await self._sleep(fault.seconds)
            if request.transport is not None:
                request.transport.close()
        else:  # truncate: the chunked body never ends
            if request.transport is not None:
                request.transport.close()
