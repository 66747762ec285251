"""livekit.agents.llm: chat contexts and function tools (schema from hints, argument checks)."""

from __future__ import annotations

import enum
from typing import Annotated, Literal

import pytest

from livekit.agents import llm


class Unit(enum.Enum):
    C = "c"
    F = "f"


@llm.function_tool
async def get_weather(city: str, unit: Literal["c", "f"] = "c", days: list[int] | None = None) -> str:
    """Look up the current weather.

    Args:
        city: the city, e.g. "Paris".
            Keep the country out.
        unit: "c" or "f".
    """
    return f"{city}:{unit}:{days}"


def test_schema_comes_from_hints_and_docstring():
    assert get_weather.name == "get_weather"
    assert get_weather.description == "Look up the current weather."
    assert get_weather.parameters == {
        "type": "object",
        "properties": {
            "city": {"type": "string", "description": 'the city, e.g. "Paris". Keep the country out.'},
            "unit": {"type": "string", "enum": ["c", "f"], "description": '"c" or "f".', "default": "c"},
            "days": {"anyOf": [{"type": "array", "items": {"type": "integer"}}, {"type": "null"}], "default": None},
        },
        "required": ["city"],
        "additionalProperties": False,
    }


def test_decorator_with_options_enum_and_annotated():
    @llm.function_tool(name="set_unit", description="Choose the unit.")
    def choose(unit: Unit, why: Annotated[str, "a reason"] = "") -> str:
        return unit.value

    assert isinstance(choose, llm.FunctionTool)
    assert (choose.name, choose.description) == ("set_unit", "Choose the unit.")
    assert choose.parameters["properties"]["unit"] == {"enum": ["c", "f"], "type": "string"}
    assert choose.parameters["properties"]["why"]["description"] == "a reason"
    assert choose(Unit.F) == "f"  # still callable as the function


async def test_execute_checks_and_converts_the_models_arguments():
    assert await get_weather.execute('{"city": "Paris", "days": [1, 2]}') == "Paris:c:[1, 2]"
    assert await get_weather.execute({"city": "Rome", "unit": "f"}) == "Rome:f:None"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ('{"city": 3}', "argument 'city': expected a string, got integer 3"),
        ('{"unit": "c"}', "missing required argument 'city'"),
        ('{"city": "x", "unit": "k"}', "argument 'unit': expected one of 'c', 'f', got 'k'"),
        ('{"city": "x", "country": "FR"}', "unknown argument(s) 'country'"),
        ('{"city": "x", "days": [1, "2"]}', "[1]: expected an integer, got string '2'"),
        ("{city: x}", "not valid JSON"),
        ("[1]", "must be a JSON object, got array"),
    ],
)
async def test_bad_arguments_raise_tool_arguments_error(arguments, message):
    with pytest.raises(llm.ToolArgumentsError) as info:
        await get_weather.execute(arguments)
    assert message in str(info.value)
    assert info.value.tool == "get_weather"


def test_unsupported_hints_fail_at_declaration():
    with pytest.raises(TypeError, match="parameter 'x' needs a type hint"):

        def untyped(x):  # noqa: ANN001
            return x

        llm.function_tool(untyped)
    with pytest.raises(TypeError, match="cannot be described as JSON schema"):

        @llm.function_tool
        def f(x: object) -> None: ...


def test_chat_context_checks_messages_and_copies():
    ctx = llm.ChatContext()
    ctx.add_message(role="system", content="be brief")
    call = llm.FunctionCall(id="call_1", name="get_weather", arguments='{"city": "Paris"}')
    ctx.add_message(role="assistant", tool_calls=[call])
    msg = ctx.add_tool_result(call, "sunny")
    assert (msg.role, msg.tool_call_id, msg.content) == ("tool", "call_1", "sunny")
    with pytest.raises(ValueError, match="needs tool_call_id"):
        ctx.add_message(role="tool", content="x")
    with pytest.raises(ValueError, match="unknown chat role 'robot'"):
        ctx.add_message(role="robot", content="x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="only assistant messages carry tool_calls"):
        ctx.add_message(role="user", content="x", tool_calls=[call])
    copy = ctx.copy()
    copy.messages[1].tool_calls[0].name = "changed"
    copy.add_message(role="user", content="more")
    assert ctx.messages[1].tool_calls[0].name == "get_weather" and len(ctx) == 3 and len(copy) == 4


def test_tool_choice_is_checked_against_the_tools():
    llm.check_tool_choice("get_weather", [get_weather])
    with pytest.raises(ValueError, match="neither 'auto', 'required', 'none' nor the name"):
        llm.check_tool_choice("lookup", [get_weather])
    with pytest.raises(ValueError, match="needs at least one tool"):
        llm.check_tool_choice("required", [])
