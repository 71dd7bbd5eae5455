"""A calculator tool: arithmetic evaluated safely with ``simpleeval`` (never ``eval``).

Accepted: numbers (decimals, scientific notation such as ``3e4``, commas as thousands separators
such as ``100,000``), ``+ - * / // ** % ( )``, ``^ × ÷ −`` as spellings of ``** * / -``, and the
functions ``sqrt(x)`` and ``cbrt(x)`` (also written ``√x``). Anything else (names, other calls,
strings) is refused before parsing, and again by an evaluator that only knows numbers, these
operators and these two functions.
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

# One token of an accepted expression; the whole text must be a sequence of these.
_TOKEN = re.compile(
    r"\s*(?:(?:\d[\d,]*(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|sqrt|cbrt|√|\*\*|//|[-+*/%()^×÷−])",
    re.IGNORECASE,
)
_THOUSANDS = re.compile(r"(?<![\d.])\d{1,3}(?:,\d{3})+(?![\d,])")
_ROOT_SIGN = re.compile(r"√\s*(\((?:[^()]|\([^()]*\))*\)|[\d.,]+(?:[eE][-+]?\d+)?)")


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


def _sqrt(value: Number) -> Number:
    if value < 0:
        raise ToolError("the square root of a negative number is not a real number")
    root = math.sqrt(value)
    return int(root) if root.is_integer() and abs(root) < 2**53 else root


def _cbrt(value: Number) -> Number:
    root = math.cbrt(value)
    nearest = round(root)
    return nearest if nearest**3 == value else root  # 27 -> 3, not 3.0000000000000004


FUNCTIONS: dict[str, Callable[[Number], Number]] = {"sqrt": _sqrt, "cbrt": _cbrt}

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
    """A SimpleEval that knows numbers, arithmetic operators and ``FUNCTIONS``, nothing else."""

    def __init__(self) -> None:
        super().__init__(operators=_OPERATORS, functions=dict(FUNCTIONS), names={})
        self.nodes = {
            ast.Expr: self._eval_expr,
            ast.UnaryOp: self._eval_unaryop,
            ast.BinOp: self._eval_binop,
            ast.Constant: self._eval_number,
            ast.Call: self._eval_function,
        }

    def _eval_function(self, node: ast.Call) -> Number:
        name = node.func.id if isinstance(node.func, ast.Name) else None
        if name not in FUNCTIONS or len(node.args) != 1 or node.keywords:
            raise ToolError("only sqrt(x) and cbrt(x) may be called")
        value = self._eval(node.args[0])
        return FUNCTIONS[name](value)

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
    position = 0
    for match in _TOKEN.finditer(text):
        if match.start() != position:
            break
        position = match.end()
    if text[position:].strip():
        raise ToolError(
            "only numbers, the operators + - * / ** % ( ) and sqrt( ) / cbrt( ) are allowed"
        )
    text = _THOUSANDS.sub(lambda m: m.group(0).replace(",", ""), text)
    if "," in text:
        raise ToolError("commas are only allowed as thousands separators, as in 100,000")
    text = _ROOT_SIGN.sub(r"sqrt(\1)", text).casefold()
    return text.replace("^", "**").replace("×", "*").replace("÷", "/").replace("−", "-")


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
            "Evaluate an arithmetic expression exactly. Supports + - * / // ** % , "
            "parentheses, sqrt(x) and cbrt(x); numbers may use scientific notation (3e4) and "
            "commas as thousands separators (100,000)."
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
