"""A calculator tool: arithmetic evaluated safely with ``simpleeval`` (never ``eval``).

Accepted: numbers (decimals, commas as thousands separators such as ``100,000``), ``+ - * / //
** % ( )``, and ``^ × ÷`` as spellings of ``** * /``. Anything else (names, calls, strings) is
refused before parsing, and again by an evaluator that only knows numbers and these operators.
"""

from __future__ import annotations

import ast
import math
import operator
import re
from collections.abc import Callable
from typing import Any

from simpleeval import SimpleEval

from agentqueue.ai.tools.base import Tool, ToolError

CALCULATOR = "calculator"
MAX_EXPRESSION_LENGTH = 200
MAX_EXPONENT = 1000
MAX_RESULT_DIGITS = 1000

Number = int | float

_ALLOWED_CHARS = re.compile(r"^[0-9\s.,+\-*/%()^×÷]+$")
_THOUSANDS = re.compile(r"(?<![\d.])\d{1,3}(?:,\d{3})+(?![\d,])")


def _power(base: Number, exponent: Number) -> Number:
    """``**`` with limits, so one short expression cannot tie up a worker."""
    if abs(exponent) > MAX_EXPONENT:
        raise ToolError(f"exponent {exponent} is too large (the limit is {MAX_EXPONENT})")
    if abs(base) > 1 and exponent > 0 and exponent * math.log10(abs(base)) > MAX_RESULT_DIGITS:
        raise ToolError("the result would be too large")
    result: Number = base**exponent
    if isinstance(result, complex):
        raise ToolError("the result is not a real number")
    return result


_OPERATORS: dict[type[ast.AST], Callable[..., Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: _power,
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
}


class _ArithmeticEval(SimpleEval):
    """A SimpleEval that knows numbers and arithmetic operators, nothing else."""

    def __init__(self) -> None:
        super().__init__(operators=_OPERATORS, functions={}, names={})
        self.nodes = {
            ast.Expr: self._eval_expr,
            ast.UnaryOp: self._eval_unaryop,
            ast.BinOp: self._eval_binop,
            ast.Constant: self._eval_number,
        }

    @staticmethod
    def _eval_number(node: ast.Constant) -> Number:
        if isinstance(node.value, bool) or not isinstance(node.value, int | float):
            raise ToolError("only numbers are allowed")
        return node.value


def normalize_expression(expression: str) -> str:
    """Turn a human-written expression into the Python arithmetic the evaluator accepts."""
    text = expression.strip()
    if not text:
        raise ToolError("the expression is empty")
    if len(text) > MAX_EXPRESSION_LENGTH:
        raise ToolError(f"the expression is longer than {MAX_EXPRESSION_LENGTH} characters")
    if not _ALLOWED_CHARS.match(text):
        raise ToolError("only numbers and the operators + - * / ** % ( ) are allowed")
    text = _THOUSANDS.sub(lambda m: m.group(0).replace(",", ""), text)
    if "," in text:
        raise ToolError("commas are only allowed as thousands separators, as in 100,000")
    return text.replace("^", "**").replace("×", "*").replace("÷", "/")


def evaluate(expression: str) -> Number:
    """Evaluate an arithmetic expression; raise ``ToolError`` with a readable reason on failure."""
    text = normalize_expression(expression)
    try:
        value = _ArithmeticEval().eval(text)
    except ToolError:
        raise
    except ZeroDivisionError:
        raise ToolError("division by zero") from None
    except OverflowError:
        raise ToolError("the result is too large") from None
    except (SyntaxError, ValueError, TypeError, ArithmeticError) as exc:
        raise ToolError(f"{expression.strip()!r} is not a valid arithmetic expression") from exc
    except Exception as exc:  # simpleeval's own refusals (InvalidExpression and friends)
        raise ToolError(f"{expression.strip()!r} is not a valid arithmetic expression") from exc
    if isinstance(value, float) and not math.isfinite(value):
        raise ToolError("the result is too large")
    if isinstance(value, int) and abs(value) >= 10**MAX_RESULT_DIGITS:
        raise ToolError(f"the result has more than {MAX_RESULT_DIGITS} digits")
    return value


def format_number(value: Number, *, thousands: bool = False) -> str:
    """Format a result the way a person writes it: no ``.0`` on whole numbers, no float noise."""
    if isinstance(value, float):
        value = float(f"{value:.12g}")  # 0.1 + 0.2 -> 0.3
        if value.is_integer() and abs(value) < 1e15:
            value = int(value)
    if isinstance(value, int):
        return f"{value:,}" if thousands else str(value)
    return f"{value:,}" if thousands else repr(value)


def _run(args: dict[str, Any]) -> str:
    return format_number(evaluate(args["expression"]))


def calculator_tool() -> Tool:
    return Tool(
        name=CALCULATOR,
        description=(
            "Evaluate an arithmetic expression exactly. Supports + - * / // ** % and "
            "parentheses; numbers may use commas as thousands separators (100,000)."
        ),
        parameters={
            "type": "object",
            "properties": {
                "expression": {
                    "type": "string",
                    "description": "The expression, for example '100000 / 0.10'.",
                }
            },
            "required": ["expression"],
            "additionalProperties": False,
        },
        func=_run,
    )
