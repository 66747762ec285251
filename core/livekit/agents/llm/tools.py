"""Function tools: typed Python functions that an LLM may call.

The JSON schema of a tool's parameters comes from the function's type hints and the
``Args:`` section of its docstring; the model's arguments are checked against the same
hints before the function runs::

    @llm.function_tool
    async def get_weather(city: str, unit: Literal["c", "f"] = "c") -> str:
        \"\"\"Look up the current weather.

        Args:
            city: the city, e.g. "Paris".
            unit: "c" for Celsius or "f" for Fahrenheit.
        \"\"\"

Supported hints: ``str``, ``int``, ``float``, ``bool``, ``None``, ``Literal[...]``, an
``Enum``, ``list[T]``, ``tuple[T, ...]``, ``dict[str, T]``, ``T | None`` and other unions,
``Any``, and ``Annotated[T, "a description"]``.
"""

from __future__ import annotations

import enum
import inspect
import json
import re
import types
import typing
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar, overload

from ..exceptions import ToolArgumentsError

F = TypeVar("F", bound=Callable[..., Any])
_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


class FunctionTool:
    """A function the model may call: ``name``, ``description``, ``parameters`` (a JSON
    schema object). ``await tool.execute(arguments_json)`` checks the arguments and runs
    it; calling the tool directly calls the function."""

    def __init__(self, fn: Callable[..., Any], *, name: str | None = None, description: str | None = None) -> None:
        self.fn = fn
        self.name = name or fn.__name__
        if not _NAME.match(self.name):
            raise ValueError(f"function tool name {self.name!r} must be 1-64 letters, digits, '_' or '-'")
        summary, arg_docs = _parse_docstring(inspect.getdoc(fn) or "")
        self.description = description if description is not None else summary
        try:
            hints = typing.get_type_hints(fn, include_extras=True)
        except (NameError, TypeError) as exc:
            raise TypeError(f"function tool {self.name!r}: cannot resolve its type hints ({exc})") from None
        self._params: list[tuple[str, Any, inspect.Parameter]] = []
        properties: dict[str, Any] = {}
        required: list[str] = []
        for pname, param in inspect.signature(fn).parameters.items():
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                raise TypeError(f"function tool {self.name!r}: *{pname} / **{pname} cannot be described to a model")
            if pname not in hints:
                raise TypeError(f"function tool {self.name!r}: parameter {pname!r} needs a type hint")
            hint = hints[pname]
            try:
                schema = _schema(hint)
            except TypeError as exc:
                raise TypeError(f"function tool {self.name!r}, parameter {pname!r}: {exc}") from None
            if pname in arg_docs and "description" not in schema:
                schema["description"] = arg_docs[pname]
            if param.default is param.empty:
                required.append(pname)
            elif _jsonable(param.default):
                schema["default"] = param.default.value if isinstance(param.default, enum.Enum) else param.default
            properties[pname] = schema
            self._params.append((pname, hint, param))
        self.parameters: dict[str, Any] = {
            "type": "object",
            "properties": properties,
            "required": required,
            "additionalProperties": False,
        }

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"FunctionTool({self.name!r})"

    def parse_arguments(self, arguments: str | dict[str, Any]) -> dict[str, Any]:
        """The keyword arguments for the function, from the model's JSON arguments.

        Raises :class:`ToolArgumentsError` saying what does not fit the schema."""
        raw = arguments if isinstance(arguments, str) else None
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments) if arguments.strip() else {}
            except ValueError as exc:
                raise ToolArgumentsError(
                    f"{self.name}: the arguments are not valid JSON ({exc}); send a JSON object",
                    tool=self.name,
                    arguments=raw,
                ) from None
        if not isinstance(arguments, dict):
            raise ToolArgumentsError(
                f"{self.name}: the arguments must be a JSON object, got {_json_type(arguments)}",
                tool=self.name,
                arguments=raw,
            )
        known = {p for p, _, _ in self._params}
        unknown = sorted(set(arguments) - known)
        if unknown:
            raise ToolArgumentsError(
                f"{self.name}: unknown argument(s) {', '.join(map(repr, unknown))}; "
                f"the parameters are {', '.join(map(repr, sorted(known))) or 'none'}",
                tool=self.name,
                arguments=raw,
            )
        kwargs: dict[str, Any] = {}
        for pname, hint, param in self._params:
            if pname not in arguments:
                if param.default is param.empty:
                    raise ToolArgumentsError(
                        f"{self.name}: missing required argument {pname!r}", tool=self.name, arguments=raw
                    )
                continue
            try:
                kwargs[pname] = _convert(arguments[pname], hint)
            except _Mismatch as exc:
                raise ToolArgumentsError(
                    f"{self.name}: argument {pname!r}{exc.path}: {exc}", tool=self.name, arguments=raw
                ) from None
        return kwargs

    async def execute(self, arguments: str | dict[str, Any]) -> Any:
        """Check the model's arguments (JSON text or a dict) and run the function; an
        ``async`` function is awaited. Returns what the function returns."""
        kwargs = self.parse_arguments(arguments)
        result = self.fn(**kwargs)
        if inspect.isawaitable(result):
            result = await typing.cast(Awaitable[Any], result)
        return result


@overload
def function_tool(fn: F, /) -> FunctionTool: ...
@overload
def function_tool(*, name: str | None = None, description: str | None = None) -> Callable[[F], FunctionTool]: ...
def function_tool(
    fn: Callable[..., Any] | None = None, /, *, name: str | None = None, description: str | None = None
) -> FunctionTool | Callable[[Callable[..., Any]], FunctionTool]:
    """Declare a function tool: ``@function_tool`` or ``@function_tool(name=..., description=...)``."""
    if fn is not None:
        return FunctionTool(fn, name=name, description=description)
    return lambda f: FunctionTool(f, name=name, description=description)


def find_tool(tools: Sequence[FunctionTool], name: str) -> FunctionTool | None:
    """The tool named ``name``, or ``None``."""
    return next((t for t in tools if t.name == name), None)


# --- docstrings --------------------------------------------------------------------------

_SECTION = re.compile(r"^(Args|Arguments|Parameters|Returns|Return|Raises|Yields|Examples?|Notes?):\s*$")
_ARG = re.compile(r"^(\*{0,2}\w+)\s*(\([^)]*\))?\s*:\s*(.*)$")
_SPHINX = re.compile(r"^:param\s+(?:[^:]*\s)?(\w+):\s*(.*)$")


def _parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """The description (text before the first section) and the ``Args:`` entries."""
    summary: list[str] = []
    args: dict[str, str] = {}
    section: str | None = None
    current: str | None = None
    indent = 0
    for line in doc.splitlines():
        stripped = line.strip()
        m = _SECTION.match(stripped)
        if m and len(line) - len(line.lstrip()) == 0:
            section, current = m.group(1), None
            continue
        sphinx = _SPHINX.match(stripped)
        if sphinx:
            current = sphinx.group(1)
            args[current] = sphinx.group(2).strip()
            section = "sphinx"
            continue
        if section is None:
            summary.append(stripped)
        elif section in ("Args", "Arguments", "Parameters") and stripped:
            line_indent = len(line) - len(line.lstrip())
            arg = _ARG.match(stripped)
            if arg and (current is None or line_indent <= indent):
                current, indent = arg.group(1).lstrip("*"), line_indent
                args[current] = arg.group(3).strip()
            elif current is not None:
                args[current] = f"{args[current]} {stripped}".strip()
        elif section == "sphinx" and current is not None and stripped:
            args[current] = f"{args[current]} {stripped}".strip()
    text = " ".join(" ".join(summary).split())
    return text, args


# --- type hints to JSON schema, and back -------------------------------------------------

_NONE = type(None)


def _strip_annotated(hint: Any) -> tuple[Any, str | None]:
    if typing.get_origin(hint) is typing.Annotated:
        base, *meta = typing.get_args(hint)
        desc = next((m for m in meta if isinstance(m, str)), None)
        return base, desc
    return hint, None


def _is_union(hint: Any) -> bool:
    return typing.get_origin(hint) in (typing.Union, types.UnionType)


def _schema(hint: Any) -> dict[str, Any]:
    hint, desc = _strip_annotated(hint)
    schema = _schema_of(hint)
    if desc:
        schema["description"] = desc
    return schema


def _schema_of(hint: Any) -> dict[str, Any]:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return {}
    if hint is _NONE or hint is None:
        return {"type": "null"}
    if hint is bool:
        return {"type": "boolean"}
    if hint is int:
        return {"type": "integer"}
    if hint is float:
        return {"type": "number"}
    if hint is str:
        return {"type": "string"}
    if origin is typing.Literal:
        values = list(args)
        types_ = {_json_type(v) for v in values}
        out: dict[str, Any] = {"enum": values}
        if len(types_) == 1:
            out["type"] = types_.pop()
        return out
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        values = [m.value for m in hint]
        out = {"enum": values}
        types_ = {_json_type(v) for v in values}
        if len(types_) == 1:
            out["type"] = types_.pop()
        return out
    if _is_union(hint):
        return {"anyOf": [_schema(a) for a in args]}
    if origin in (list, Sequence, typing.Sequence) or hint in (list,):
        return {"type": "array", "items": _schema(args[0]) if args else {}}
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return {"type": "array", "items": _schema(args[0])}
        return {"type": "array", "prefixItems": [_schema(a) for a in args], "minItems": len(args), "maxItems": len(args)}
    if origin is dict or hint is dict:
        if args and args[0] is not str:
            raise TypeError("dict keys must be str (JSON object keys are strings)")
        return {"type": "object", "additionalProperties": _schema(args[1]) if args else {}}
    raise TypeError(
        f"type {hint!r} cannot be described as JSON schema; use str, int, float, bool, "
        "Literal, an Enum, list, dict[str, ...] or a union of these"
    )


class _Mismatch(Exception):
    def __init__(self, message: str, path: str = "") -> None:
        super().__init__(message)
        self.path = path


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _jsonable(value: Any) -> bool:
    if isinstance(value, enum.Enum):
        value = value.value
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


def _convert(value: Any, hint: Any) -> Any:
    """``value`` (decoded JSON) as ``hint`` asks, or :class:`_Mismatch`."""
    hint, _ = _strip_annotated(hint)
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return value
    if hint is _NONE or hint is None:
        if value is not None:
            raise _Mismatch(f"expected null, got {_json_type(value)}")
        return None
    if hint is bool:
        if not isinstance(value, bool):
            raise _Mismatch(f"expected a boolean, got {_json_type(value)} {value!r}")
        return value
    if hint is int:
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if not isinstance(value, int) or isinstance(value, bool):
            raise _Mismatch(f"expected an integer, got {_json_type(value)} {value!r}")
        return value
    if hint is float:
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise _Mismatch(f"expected a number, got {_json_type(value)} {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise _Mismatch(f"expected a string, got {_json_type(value)} {value!r}")
        return value
    if origin is typing.Literal:
        for allowed in args:
            if value == allowed and type(value) is type(allowed):
                return value
        raise _Mismatch(f"expected one of {', '.join(map(repr, args))}, got {value!r}")
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        for member in hint:
            if member.value == value and type(member.value) is type(value):
                return member
        raise _Mismatch(f"expected one of {', '.join(repr(m.value) for m in hint)}, got {value!r}")
    if _is_union(hint):
        errors = []
        for option in args:
            try:
                return _convert(value, option)
            except _Mismatch as exc:
                errors.append(f"{exc.path}: {exc}" if exc.path else str(exc))
        raise _Mismatch(" or ".join(dict.fromkeys(errors)))
    if origin in (list, tuple, Sequence, typing.Sequence) or hint in (list, tuple):
        if not isinstance(value, list):
            raise _Mismatch(f"expected an array, got {_json_type(value)} {value!r}")
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            if len(value) != len(args):
                raise _Mismatch(f"expected an array of {len(args)} items, got {len(value)}")
            item_hints = list(args)
        else:
            item_hints = [args[0] if args else Any] * len(value)
        out = []
        for i, (item, item_hint) in enumerate(zip(value, item_hints, strict=True)):
            try:
                out.append(_convert(item, item_hint))
            except _Mismatch as exc:
                raise _Mismatch(str(exc), f"[{i}]{exc.path}") from None
        return tuple(out) if origin is tuple else out
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise _Mismatch(f"expected an object, got {_json_type(value)} {value!r}")
        item_hint = args[1] if args else Any
        result = {}
        for key, item in value.items():
            try:
                result[key] = _convert(item, item_hint)
            except _Mismatch as exc:
                raise _Mismatch(str(exc), f"[{key!r}]{exc.path}") from None
        return result
    raise _Mismatch(f"cannot check a value against {hint!r}")
