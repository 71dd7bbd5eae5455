from __future__ import annotations

import pytest

from agentqueue.ai.tools import ToolError, ToolRegistry, calculator_tool, evaluate, format_number
from agentqueue.ai.tools.calculator import MAX_EXPRESSION_LENGTH


async def calculate(expression: str) -> tuple[str | None, str | None]:
    result = await ToolRegistry([calculator_tool()]).call("calculator", {"expression": expression})
    return result.output, result.error


async def test_seed_example_divides_by_a_decimal() -> None:
    assert await calculate("100000 / 0.10") == ("1000000", None)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("2 + 3 * 4", "14"),
        ("(2 + 3) * 4", "20"),
        ("10 - 4 - 3", "3"),
        ("2 ** 3 ** 2", "512"),
        ("-2 ** 2", "-4"),
        ("17 % 5", "2"),
        ("7 / 2", "3.5"),
        ("0.1 + 0.2", "0.3"),
        ("100,000 * 2", "200000"),
        ("1,250,000 / 5", "250000"),
        ("2^10", "1024"),
    ],
)
async def test_arithmetic(expression: str, expected: str) -> None:
    assert await calculate(expression) == (expected, None)


async def test_division_by_zero_is_an_error_message_not_an_exception() -> None:
    output, error = await calculate("5 / (3 - 3)")
    assert output is None
    assert error == "division by zero"


@pytest.mark.parametrize(
    "expression",
    [
        "__import__('os')",
        "__import__('os').system('true')",
        "().__class__.__bases__",
        "open('/etc/passwd')",
        "x + 1",
        "1 if 1 else 2",
        "[1] * 10",
        "1; 2",
        "",
    ],
)
async def test_anything_but_arithmetic_is_refused(expression: str) -> None:
    output, error = await calculate(expression)
    assert output is None
    assert error


async def test_commas_must_be_thousands_separators() -> None:
    _, error = await calculate("1,5 + 2")
    assert error is not None and "thousands" in error


async def test_long_expressions_are_refused() -> None:
    _, error = await calculate("1+" * MAX_EXPRESSION_LENGTH + "1")
    assert error is not None and str(MAX_EXPRESSION_LENGTH) in error


@pytest.mark.parametrize("expression", ["2 ** 100000", "9 ** 9 ** 9", "(10 ** 999) ** 2"])
async def test_huge_powers_are_refused(expression: str) -> None:
    _, error = await calculate(expression)
    assert error is not None and ("exponent" in error or "too large" in error)


async def test_missing_expression_argument_is_reported() -> None:
    result = await ToolRegistry([calculator_tool()]).call("calculator", {})
    assert result.error == "missing required argument 'expression'"


def test_evaluate_raises_tool_error() -> None:
    with pytest.raises(ToolError, match="division by zero"):
        evaluate("1 / 0")


@pytest.mark.parametrize(
    ("value", "plain", "grouped"),
    [
        (1000000.0, "1000000", "1,000,000"),
        (1234.5, "1234.5", "1,234.5"),
        (-42, "-42", "-42"),
        (0.30000000000000004, "0.3", "0.3"),
    ],
)
def test_format_number(value: float, plain: str, grouped: str) -> None:
    assert format_number(value) == plain
    assert format_number(value, thousands=True) == grouped


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("3e4 / 12", "2500"),
        ("2.5e3 * 4", "10000"),
        ("1.5E-3 * 2", "0.003"),
        ("sqrt(144)", "12"),
        ("sqrt(2)", "1.41421356237"),
        ("cbrt(27)", "3"),
        ("cbrt(-8)", "-2"),
        ("√16 + 1", "5"),
        ("−5 + 2", "-3"),
    ],
)
async def test_scientific_notation_and_roots(expression: str, expected: str) -> None:
    assert await calculate(expression) == (expected, None)


@pytest.mark.parametrize(
    "expression", ["abs(-1)", "sqrt(1, 2)", "sqrt(x=4)", "e", "3e", "pow(2, 3)"]
)
async def test_no_other_names_or_calls(expression: str) -> None:
    output, error = await calculate(expression)
    assert output is None and error


async def test_square_root_of_a_negative_number_is_explained() -> None:
    assert await calculate("sqrt(-4)") == (
        None,
        "the square root of a negative number is not a real number",
    )
