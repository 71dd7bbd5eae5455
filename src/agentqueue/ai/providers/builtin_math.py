"""Arithmetic as people write it, turned into an expression for the ``calculator`` tool.

This module only rewrites text: "subtract 17 from 250" -> ``250 - 17``, "15% of 80" ->
``15 / 100 * 80``, "the square root of 144" -> ``sqrt(144)``, "3e4 / 12" stays as it is. It never
computes a number itself; the calculator tool evaluates the expression, and the answer shows the
user's own figures (``display``) next to the tool's result.

Number words ("fifteen", "two hundred") become digits with ``text2num`` when it is installed (a
maintained parser; ``word2number`` has had no release since 2017). Without it, only digits count.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Calculate:
    expression: str  # what the calculator evaluates
    display: str | None = None  # how the answer restates the question ("15% of 80")
    unit: str = ""  # appended to the result ("%" for "what percent of ...")


# A number as people type it: 1,250,000 / 0.5 / .5 / 3e4 / 2.5E-3, optionally "2.5 million".
_MAGNITUDES = {"thousand": 3, "k": 3, "million": 6, "m": 6, "mn": 6, "billion": 9, "bn": 9,
               "b": 9, "trillion": 12}  # fmt: skip
_NUM = (
    r"(?:(?<![\w.])-)?(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d+)?(?:e[-+]?\d+)?"
    r"(?:\s*(?:thousand|million|billion|trillion)\b)?"
)
_N = rf"(?P<a>{_NUM})"
_M = rf"(?P<b>{_NUM})"
_LIST = rf"(?P<list>{_NUM}(?:\s*(?:,\s*(?:and\s+)?|and\s+|&\s*|\+\s*){_NUM})+)"
_PCT = r"\s*(?:%|percent\b|per\s*cent\b|pct\b)"

# How the answers show what the calculator understands (every figure here is an example).
ARITHMETIC_EXAMPLES = '"subtract 17 from 250", "15% of 80", "square root of 144", "3e4 / 12"'

CALC_WORDS = re.compile(r"\b(calculate|calc|compute|evaluate|work out|figure out)\b")
# Mathematics the calculator does not do: the answer says so instead of guessing.
UNSUPPORTED = re.compile(
    r"\b(factorial|logarithm|log|ln|sine|sin|cosine|cos|tangent|tan|integral|integrate|"
    r"derivative|differentiate|solve for|equation|matrix|prime|gcd|lcm|modular inverse|binary|"
    r"hexadecimal|hex|octal|roman numerals?|in base \d+|convert|conversion|celsius|fahrenheit|"
    r"unit conversion|exchange rate|round|rounded|rounding|nearest|decimal places)\b|"
    r"^\s*(?:is|are|was|were|does|do)\b.*\b(?P<comparison>more|less|greater|bigger|smaller|"
    r"larger|higher|lower|equal|divisible)\b|"
    r"\d\s*!(?!=)"
)



def _t(pattern: str) -> re.Pattern[str]:
    return re.compile(r"(?<![\w.])" + pattern + r"(?![\w])")


def _listed(text: str) -> list[str]:
    return re.findall(_NUM, text)


_TEMPLATES: list[tuple[re.Pattern[str], Callable[[dict[str, str]], str], str, str]] = []


def _template(pattern: str, expression: Callable[[dict[str, str]], str], display: str,
              unit: str = "") -> None:  # fmt: skip
    _TEMPLATES.append((_t(pattern), expression, display, unit))


_template(rf"(?:subtract|deduct|take away|take)\s+{_N}\s+(?:away\s+)?(?:from|off)\s+{_M}",
          lambda g: f"{g['b']} - {g['a']}", "{b} - {a}")  # fmt: skip
_template(rf"{_N}\s+(?:less than|fewer than|subtracted from|taken from)\s+{_M}",
          lambda g: f"{g['b']} - {g['a']}", "{b} - {a}")  # fmt: skip
_template(rf"{_N}{_PCT}\s+(?:more than|above|on top of)\s+{_M}",
          lambda g: f"{g['b']} * (1 + {g['a']} / 100)", "{b} increased by {a}%")  # fmt: skip
_template(rf"{_N}{_PCT}\s+(?:less than|below|under)\s+{_M}",
          lambda g: f"{g['b']} * (1 - {g['a']} / 100)", "{b} decreased by {a}%")  # fmt: skip
_template(rf"{_N}\s+(?:more than|added to|greater than)\s+{_M}",
          lambda g: f"{g['b']} + {g['a']}", "{b} + {a}")  # fmt: skip
_template(rf"(?:divide)\s+{_N}\s+(?:by|over)\s+{_M}", lambda g: f"{g['a']} / {g['b']}",
          "{a} / {b}")  # fmt: skip
_template(rf"(?:divide|split|share)\s+{_N}\s+(?:into|between|among|amongst|across|by)\s+{_M}",
          lambda g: f"{g['a']} / {g['b']}", "{a} / {b}")  # fmt: skip
_template(rf"(?:multiply)\s+{_N}\s+(?:by|and|with|times)\s+{_M}",
          lambda g: f"{g['a']} * {g['b']}", "{a} * {b}")  # fmt: skip
_template(rf"(?:add)\s+{_N}\s+(?:to)\s+{_M}", lambda g: f"{g['b']} + {g['a']}", "{b} + {a}")
_template(rf"(?:how many times does|how many times)\s+{_N}\s+(?:go into|fit into|goes into)\s+{_M}",
          lambda g: f"{g['b']} / {g['a']}", "{b} / {a}")  # fmt: skip
_template(rf"(?:the\s+)?(?:difference between)\s+{_N}\s+and\s+{_M}",
          lambda g: f"{g['a']} - {g['b']}", "{a} - {b}")  # fmt: skip
_template(rf"(?:the\s+)?(?:quotient of)\s+{_N}\s+(?:and|by)\s+{_M}",
          lambda g: f"{g['a']} / {g['b']}", "{a} / {b}")  # fmt: skip
_template(rf"(?:the\s+)?(?:ratio of)\s+{_N}\s+(?:to)\s+{_M}",
          lambda g: f"{g['a']} / {g['b']}", "{a} / {b}")  # fmt: skip
# Percentages.
_template(rf"(?:what|which)\s+(?:percent|percentage|%)\s+of\s+{_M}\s+is\s+{_N}",
          lambda g: f"{g['a']} / {g['b']} * 100", "{a} as a percentage of {b}", "%")  # fmt: skip
_template(rf"{_N}\s+(?:is\s+)?(?:what|which)\s+(?:percent|percentage|%)\s+of\s+{_M}",
          lambda g: f"{g['a']} / {g['b']} * 100", "{a} as a percentage of {b}", "%")  # fmt: skip
_template(rf"{_N}\s+(?:as\s+a\s+percent(?:age)?\s+of|out of)\s+{_M}"
          r"(?:\s+as\s+a\s+percent(?:age)?)?",
          lambda g: f"{g['a']} / {g['b']} * 100", "{a} as a percentage of {b}", "%")  # fmt: skip
_template(rf"(?:percent(?:age)?\s+(?:change|increase|decrease|difference))\s+from\s+{_N}\s+to\s+{_M}",
          lambda g: f"({g['b']} - {g['a']}) / {g['a']} * 100",
          "the percentage change from {a} to {b}", "%")  # fmt: skip
_template(rf"{_N}{_PCT}\s+(?:tip|tax|vat|commission|interest|fee|service charge|discount)\s+"
          rf"(?:on|of|for)\s+(?:a\s+|an\s+)?(?:bill\s+of\s+)?{_M}",
          lambda g: f"{g['a']} / 100 * {g['b']}", "{a}% of {b}")  # fmt: skip
_template(rf"(?:the\s+)?square\s+of\s+{_N}", lambda g: f"{g['a']} ** 2", "{a} ** 2")
_template(rf"(?:the\s+)?cube\s+of\s+{_N}", lambda g: f"{g['a']} ** 3", "{a} ** 3")
_template(rf"(?:increase|raise|grow|mark up|markup)\s+{_N}\s+by\s+{_M}{_PCT}",
          lambda g: f"{g['a']} * (1 + {g['b']} / 100)", "{a} increased by {b}%")  # fmt: skip
_template(rf"(?:decrease|reduce|lower|cut|discount|mark down|markdown)\s+{_N}\s+by\s+{_M}{_PCT}",
          lambda g: f"{g['a']} * (1 - {g['b']} / 100)", "{a} decreased by {b}%")  # fmt: skip
_template(rf"{_N}\s+(?:plus|\+|with)\s+(?:an?\s+(?:extra|additional)\s+)?{_M}{_PCT}(?!\s+of)",
          lambda g: f"{g['a']} * (1 + {g['b']} / 100)", "{a} increased by {b}%")  # fmt: skip
_template(rf"{_N}\s+(?:minus|-|less)\s+{_M}{_PCT}(?!\s+of)",
          lambda g: f"{g['a']} * (1 - {g['b']} / 100)", "{a} decreased by {b}%")  # fmt: skip
_template(rf"{_N}{_PCT}\s+(?:off|discount on|off of)\s+{_M}",
          lambda g: f"{g['b']} * (1 - {g['a']} / 100)", "{b} decreased by {a}%")  # fmt: skip
# Increase/decrease by an amount.
_template(rf"(?:increase|raise)\s+{_N}\s+by\s+{_M}", lambda g: f"{g['a']} + {g['b']}",
          "{a} + {b}")  # fmt: skip
_template(rf"(?:decrease|reduce|lower)\s+{_N}\s+by\s+{_M}", lambda g: f"{g['a']} - {g['b']}",
          "{a} - {b}")  # fmt: skip


def _list_expression(kind: str, numbers: list[str]) -> tuple[str, str]:
    if kind in ("sum", "total", "add"):  # "add up 1, 2 and 3", "sum 5, 10 and 15"
        return " + ".join(numbers), " + ".join(numbers)
    if kind in ("product", "multiply"):
        return " * ".join(numbers), " * ".join(numbers)
    # average / mean: the count is how many figures the user gave
    joined = " + ".join(numbers)
    return f"({joined}) / {len(numbers)}", f"the average of {_and(numbers)}"


def _and(items: list[str]) -> str:
    return ", ".join(items[:-1]) + " and " + items[-1] if len(items) > 1 else "".join(items)


_LIST_PHRASE = _t(
    rf"(?:(?:the\s+)?(?P<kind>sum|total|product|average|mean)\s+of|(?P<verb>add|multiply|sum|total)"
    rf"(?:\s+up|\s+together)?)\s+(?:the\s+numbers\s+)?{_LIST}(?:\s+together)?"
)

# Words for operators inside an expression ("7 times 6", "2 to the power of 10").
_WORD_OPERATORS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(p), r) for p, r in [
        (r"\b(?:the\s+)?cube\s+root\s+of\b|\bcube\s+root\b|\bcubic\s+root\s+of\b", " cbrt "),
        (r"\b(?:the\s+)?square\s+root\s+of\b|\bsquare\s+root\b|\bsqrt\s+of\b|\broot\s+of\b",
         " sqrt "),
        (r"\b(?:raised\s+to\s+the\s+power\s+of|to\s+the\s+power\s+of|raised\s+to\s+the|"
         r"raised\s+to|to\s+the\s+power|to\s+the)\b", " ** "),
        (r"(?<=\*\*)\s*(\d+)\s*(?:st|nd|rd|th)(?:\s+power)?\b", r" \1 "),
        (r"\bsquared\b", " ** 2 "),
        (r"\bcubed\b", " ** 3 "),
        (r"\bmultiplied\s+by\b|\btimes\b|(?<=\d)\s*[x×]\s*(?=[-\d(])|\bmultiply\s+by\b", " * "),
        (r"\bdivided\s+by\b|\bdivide\s+by\b|\bover\b|÷", " / "),
        (r"\bplus\b|\badded\s+to\b", " + "),
        (r"\bminus\b|\bless\b|−", " - "),
        (r"\bnegative\s+(?=\d)", " -"),
        (r"\bmod(?:ulo)?\b", " % "),
        (rf"(?<=\d)\s*{_PCT}\s+of\b", " / 100 * "),
        (r"\bhalf\s+of\b", " 0.5 * "),
        (r"(?<=\d)\s+of\s+(?=[\d(]|sqrt|cbrt)", " * "),  # "1/3 of 90"
    ]
]  # fmt: skip
_DISPLAY_FIXES = [(re.compile(r"\s*/ 100 \*\s*"), "% of "), (re.compile(r"^0\.5 \* "), "half of ")]

# A run of expression tokens in rewritten text.
_TOKEN = rf"(?:{_NUM}|sqrt|cbrt|\*\*|//|[-+*/%()^])"
_RUN = re.compile(rf"{_TOKEN}(?:\s*{_TOKEN})*")
_OPERATOR = re.compile(r"\*\*|[-+*/%^]|sqrt|cbrt")
_DATE_LIKE = re.compile(r"^\d{1,4}[-/]\d{1,2}(?:[-/]\d{1,4})?$")


def _digits_for_words(text: str) -> str:
    """ "fifteen percent of eighty" -> "15 percent of 80" (when text2num is installed)."""
    try:
        from text_to_num import alpha2digit
    except ImportError:  # pragma: no cover - a declared dependency; digits still work
        return text
    converted: str = alpha2digit(text, "en", threshold=0)
    return converted


def _prepare(message: str) -> str:
    text = message.casefold().replace("’", "'")
    text = re.sub(r"[−–]", "-", text)  # unicode minus / en dash used as minus
    text = re.sub(r"(?<=[a-z])-(?=[a-z])", " ", text)  # "twenty-five" -> "twenty five"
    text = re.sub(r"\b(?:a|one)\s+(third|quarter|fifth)\s+of\b",
                  lambda m: {"third": "1/3", "quarter": "1/4", "fifth": "1/5"}[m.group(1)] + " of",
                  text)  # fmt: skip
    # "2.5 million" stays a figure with its magnitude (text2num would make it "2.5 1000000").
    text = re.sub(r"(?<=\d)\s+(thousand|million|billion|trillion)\b", r"\1", text)
    if re.search(r"[a-z]", text):
        text = _digits_for_words(text)
    text = re.sub(r"\$\s*(?=[\d.])", "", text)  # amounts: "$250" -> "250"
    text = re.sub(r"(?<=\d)\s*(?:dollars|usd|euros|eur|pounds)\b", "", text)
    text = re.sub(
        r"(?<=\d)(k|m|mn|bn|b|thousand|million|billion|trillion)\b",
        lambda m: " " + _magnitude_word(m.group(1)),
        text,
    )
    return " ".join(text.split())


def _magnitude_word(suffix: str) -> str:
    return {3: "thousand", 6: "million", 9: "billion", 12: "trillion"}[_MAGNITUDES[suffix]]


def _to_expression(display: str) -> str:
    """Magnitude words become exponents ("2.5 million" -> "2.5e6"); nothing is computed."""

    def exponent(match: re.Match[str]) -> str:
        number, word = match.group(1), match.group(2)
        return f"{number}e{_MAGNITUDES[word]}" if "e" not in number else match.group(0)

    text = re.sub(r"(-?[\d,]*\d(?:\.\d+)?(?:e[-+]?\d+)?)\s*(thousand|million|billion|trillion)\b",
                  exponent, display)  # fmt: skip
    return re.sub(r"\b(sqrt|cbrt)\s+(-?[\d.,]+(?:e[-+]?\d+)?)", r"\1(\2)", text)


_ROOT_CALL = re.compile(
    r"\b(sqrt|cbrt)\s+(-?[\d.,]+(?:e[-+]?\d+)?(?:\s*(?:thousand|million|billion))?)"
)


def _parses(expression: str) -> bool:
    """Whether the expression is well formed (parsed, never evaluated: the tool evaluates)."""
    try:
        ast.parse(expression.replace(",", "").replace("^", "**"), mode="eval")
    except SyntaxError:
        return False
    return True


def _spaced(run: str) -> str:
    text = re.sub(r"\s*(\*\*|//|[+*/%^])\s*", r" \1 ", run)
    text = re.sub(r"(?<=[\d)])\s*-\s*", " - ", text)
    text = re.sub(r"\(\s+", "(", re.sub(r"\s+\)", ")", text))
    return " ".join(text.split())


def _balance(run: str) -> str:
    text = run.strip().rstrip(" .,")
    while text.endswith(")") and text.count(")") > text.count("("):
        text = text[:-1].rstrip()
    while text.startswith("(") and text.count("(") > text.count(")"):
        text = text[1:].lstrip()
    while text and text[-1] in "-+*/%^(":
        text = text[:-1].rstrip()
    return text


def _calculate(display: str, unit: str = "") -> Calculate | None:
    expression = _to_expression(display)
    if not _parses(expression):
        return None
    return Calculate(expression, display, unit)


def parse_arithmetic(message: str) -> Calculate | None:
    """The calculation a message asks for, if it asks for one the calculator can do."""
    text = _prepare(message)
    listed = _LIST_PHRASE.search(text)
    if listed:
        kind = listed.group("kind") or listed.group("verb")
        expression, display = _list_expression(kind, _listed(listed.group("list")))
        if _parses(_to_expression(expression)):
            return Calculate(_to_expression(expression), display)
    for pattern, expression_of, display, unit in _TEMPLATES:
        match = pattern.search(text)
        if match:
            groups = {k: " ".join(v.split()) for k, v in match.groupdict().items() if v}
            expression = _to_expression(expression_of(groups))
            if _parses(expression):
                return Calculate(expression, display.format(**groups), unit)
    rewritten = text
    for pattern, replacement in _WORD_OPERATORS:
        rewritten = pattern.sub(replacement, rewritten)
    runs = [_balance(m.group(0)) for m in _RUN.finditer(rewritten)]
    runs = [r for r in runs if _OPERATOR.search(r.lstrip("-")) and not _DATE_LIKE.match(r)]
    # An operation needs its operands: "12 apples plus 3" leaves "+ 3", which is not one.
    runs = [r for r in runs if len(re.findall(_NUM, r)) >= 2 or re.search(r"sqrt|cbrt", r)]
    for run in sorted(runs, key=len, reverse=True):
        display = _spaced(run)
        for pattern, replacement in _DISPLAY_FIXES:
            display = pattern.sub(replacement, display)
        calc = _calculate(_spaced(run))
        if calc is not None:
            return Calculate(calc.expression, _ROOT_CALL.sub(r"\1(\2)", display))
    return None


def wants_calculation(message: str) -> bool:
    """Whether the message asks to calculate something (used to explain what cannot be done)."""
    return bool(CALC_WORDS.search(message.casefold()))


def unsupported_math(message: str) -> str | None:
    """The name of mathematics the calculator cannot do, if the message asks for it."""
    match = UNSUPPORTED.search(message.casefold())
    if not match:
        return None
    if match.group("comparison"):
        return "comparisons"
    return match.group(1) or "factorial"
