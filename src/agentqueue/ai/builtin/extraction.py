"""Structured extraction by rules: fill a JSON Schema's properties from text, no language model.

``extract(text, schema, names=...)`` returns a dict holding only the properties it found
reliably; everything else is left out, never guessed. What it can find, chosen per property from
the property's ``format``, ``type``, ``enum`` and name (``snake_case`` and ``camelCase`` names are
split into words; the first rule that applies wins):

=========  ==================================================  ===============================
kind       when                                                 value
=========  ==================================================  ===============================
enum       ``enum`` of strings                                  the enum value written in the
                                                                text (whole word, any case)
email      ``format: email``, or a name word email/mail         the address, verbatim
url        ``format: uri/url``, or url/website/link/homepage    ``http(s)://...``, verbatim
phone      a name word phone/tel/telephone/mobile/cell/fax      the number as written
date       ``format: date``, or a name word date/day/due/       ISO 8601 ``YYYY-MM-DD``
           deadline/birthday/dob
money      number/integer (or string) named amount/price/       a number (string: as written)
           total/subtotal/cost/fee/tax/balance/payment/...
currency   a name word currency                                 an ISO 4217 code
name       string named like a party: company/vendor/           one of the ``names`` given,
           customer/person/author/... or plain ``name``         as a whole phrase, same case
number     number/integer with a label in the text              the number
array      ``type: array`` whose ``items`` are one of above     every distinct match, in order
object     ``type: object`` with ``properties``                 extracted the same way
=========  ==================================================  ===============================

Forms recognised:

- dates: ``2026-03-03``, ``2026/03/03``, ``March 3, 2026``, ``Mar. 3rd 2026``, ``3 March 2026``,
  ``3rd of March, 2026``. Numeric day/month dates (``04/03/2026``, ``04.03.2026``) are read only
  when the order cannot matter: one of the first two numbers is above 12 (``13/03/2026`` and
  ``03/13/2026`` are both 13 March) or both are equal. ``03/04/2026`` is skipped. Two-digit years,
  weekdays alone and relative dates ("next Friday") are skipped.
- money: a currency sign or ISO code before or after a number: ``$1,250.00``, ``€30``, ``30 EUR``,
  ``USD 1,200``, ``£2.5 million``, ``$1.5k``. Thousands separators must be commas in groups of three
  and the decimal mark a point (``1.250,00`` is skipped, not misread).
- phone numbers: ``+`` and a country code, or the North American ``(555) 123-4567`` /
  ``555-123-4567`` forms; 10 to 15 digits, returned as written.
- numbers need a label: a word of the property's name at most three words before the number
  (``quantity: 3``, ``age of 42``) or at most three words after it (``12 full-time employees``
  for ``employee_count``).

Choosing among several matches of a property's kind: a match is *labelled* for a property when a
word of the property's name (or an inflection: ``issued`` for ``issue_date``) stands at most three
words before it in the same sentence, with no other match of that kind in between (the names of
enclosing objects count too: ``customer.email`` is labelled by "customer"); words that only
repeat the kind (``date``, ``email``, ``amount``...) count only when no more specific word
labels anything. Exactly one labelled value is taken; two different labelled values is
ambiguous and the property is left out. With no labelled match, a single distinct match in the
text is taken only when no other property anywhere in the schema wants that kind (so
``due_date`` and ``issue_date`` never both get the one date in the text). A found value that
does not validate against its property's subschema (``pattern``, ``minimum``, ``maxLength``...)
is dropped.

Required properties that could not be found raise ``ExtractionIncomplete`` naming them. Every
returned dict validates against the schema, with format checking (checked with ``jsonschema``).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jsonschema.protocols import Validator

LLM_HINT = "set OPENAI_API_KEY to extract free-form fields with a language model"


class ExtractionIncomplete(Exception):
    """Required properties that the rules could not find reliably in the text."""

    def __init__(
        self, missing: list[str], found: dict[str, Any], problems: list[str] | None = None
    ) -> None:
        self.missing = list(missing)
        self.found = dict(found)
        self.problems = list(problems or [])
        if self.missing:
            names = ", ".join(repr(name) for name in self.missing)
            reason = f"could not reliably find required field(s) {names} in the text"
        else:
            reason = "the fields found do not satisfy the schema: " + "; ".join(self.problems)
        super().__init__(
            f"{reason}. The builtin extractor (no language model) finds only emails, URLs,"
            " phone numbers, dates, money amounts, labelled numbers, enum values and the names"
            f" passed in `names`; {LLM_HINT}."
        )


class InvalidExtractionSchema(ValueError):
    """The schema given to ``extract`` is not a usable JSON Schema object."""


# --- matches ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Match:
    start: int
    end: int
    value: Any


EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
URL = re.compile(r"\bhttps?://[^\s<>\"'`]+", re.IGNORECASE)
PHONE = re.compile(
    r"(?<![\w+])(?:"
    r"\+\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{1,4}(?:[ .-]?\d{2,4}){1,4}"
    r"|(?:\(\d{3}\) ?|\d{3}[ .-])\d{3}[ .-]\d{4}"
    r")(?![\w])"
)

_MONTHS = {
    name: number
    for number, names in enumerate(
        [
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ],
        start=1,
    )
    for name in names
}
_MONTH = r"(?P<month>" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\.?"
_DAY = r"(?P<day>\d{1,2})(?:st|nd|rd|th)?"
_YEAR = r"(?P<year>\d{4})"
DATE_FORMS: list[tuple[re.Pattern[str], str]] = [
    (
        re.compile(
            r"(?<![\d/.-])(?P<year>\d{4})([-/])(?P<month>\d{1,2})\2(?P<day>\d{1,2})(?![\d/])"
        ),
        "ymd",
    ),
    (re.compile(rf"\b{_MONTH}\s+{_DAY},?\s+{_YEAR}\b", re.IGNORECASE), "named"),
    (re.compile(rf"\b{_DAY}\s+(?:of\s+)?{_MONTH},?\s+{_YEAR}\b", re.IGNORECASE), "named"),
    (
        re.compile(r"(?<![\d/.-])(?P<a>\d{1,2})([/.-])(?P<b>\d{1,2})\2(?P<year>\d{4})(?![\d/])"),
        "numeric",
    ),
]

CURRENCY_SIGNS = {"$": None, "€": "EUR", "£": "GBP", "¥": None, "₹": "INR"}
# fmt: off
CURRENCY_CODES = [
    "USD", "EUR", "GBP", "JPY", "CNY", "INR", "CAD", "AUD", "NZD", "CHF", "SEK", "NOK", "DKK",
    "PLN", "CZK", "HUF", "BRL", "MXN", "ZAR", "SGD", "HKD", "KRW", "TRY", "ILS", "AED", "SAR",
    "RUB",
]
# fmt: on
_SIGN = r"[$€£¥₹]"
_CODE = r"(?:" + "|".join(CURRENCY_CODES) + r")"
_AMOUNT = r"(?P<amount>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)"
_SCALE = r"(?:\s?(?P<scale>k|K|m|M|bn|thousand|million|billion)\b)?"
_NOT_MORE_NUMBER = r"(?![.,]?\d)"
MONEY_FORMS = [
    re.compile(rf"(?P<cur>{_SIGN})\s?{_AMOUNT}{_NOT_MORE_NUMBER}{_SCALE}"),
    re.compile(rf"\b(?P<cur>{_CODE})\s?{_SIGN}?\s?{_AMOUNT}{_NOT_MORE_NUMBER}{_SCALE}"),
    re.compile(rf"(?<![\d.,]){_AMOUNT}{_NOT_MORE_NUMBER}{_SCALE}\s?(?P<cur>{_SIGN}|{_CODE}\b)"),
]
_SCALES = {
    "k": 1_000,
    "thousand": 1_000,
    "m": 1_000_000,
    "million": 1_000_000,
    "bn": 1_000_000_000,
    "billion": 1_000_000_000,
}
NUMBER = re.compile(r"(?<![\w.,])-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?![.,]?\d)(?!\w)")

# fmt: off
CORPORATE_SUFFIXES = frozenset(
    {
        "corp", "corporation", "inc", "incorporated", "llc", "ltd", "limited", "gmbh", "ag", "sa",
        "plc", "co", "company", "group", "holdings", "llp", "lp", "nv", "bv", "pty", "se", "kg",
        "oy", "ab", "as", "spa", "srl", "kk",
    }
)
# fmt: on


@dataclass(frozen=True)
class Money:
    amount: Decimal
    currency: str | None
    text: str


def _find_emails(text: str) -> list[Match]:
    return [Match(m.start(), m.end(), m.group()) for m in EMAIL.finditer(text)]


def _find_urls(text: str) -> list[Match]:
    found = []
    for m in URL.finditer(text):
        url = m.group().rstrip(".,;:!?")
        while url.endswith(")") and url.count(")") > url.count("("):
            url = url[:-1]
        if re.match(r"https?://[\w-]+(\.[\w-]+)*", url, re.IGNORECASE):
            found.append(Match(m.start(), m.start() + len(url), url))
    return found


def _find_phones(text: str) -> list[Match]:
    found = []
    for m in PHONE.finditer(text):
        digits = re.sub(r"\D", "", m.group())
        if 10 <= len(digits) <= 15:
            found.append(Match(m.start(), m.end(), m.group()))
    return found


def _find_dates(text: str) -> list[Match]:
    found: list[Match] = []
    for pattern, form in DATE_FORMS:
        for m in pattern.finditer(text):
            if any(m.start() < other.end and other.start < m.end() for other in found):
                continue
            year = int(m.group("year"))
            if form == "numeric":
                a, b = int(m.group("a")), int(m.group("b"))
                if a > 12 and b <= 12:
                    day, month = a, b
                elif b > 12 and a <= 12:
                    month, day = a, b
                elif a == b:
                    day = month = a
                else:
                    continue  # 03/04/2026: 3 April or March 4; the text does not say
            else:
                day = int(m.group("day"))
                raw_month = m.group("month").lower()
                month = int(raw_month) if raw_month.isdigit() else _MONTHS[raw_month]
            try:
                date = dt.date(year, month, day)
            except ValueError:
                continue
            found.append(Match(m.start(), m.end(), date.isoformat()))
    return sorted(found, key=lambda match: match.start)


def _find_money(text: str) -> list[Match]:
    found: list[Match] = []
    for pattern in MONEY_FORMS:
        for m in pattern.finditer(text):
            if any(m.start() < other.end and other.start < m.end() for other in found):
                continue
            try:
                amount = Decimal(m.group("amount").replace(",", ""))
            except InvalidOperation:  # pragma: no cover - the pattern admits only digits
                continue
            scale = m.group("scale")
            if scale:
                amount *= _SCALES[scale.lower()]
            cur = m.group("cur")
            currency = CURRENCY_SIGNS.get(cur, cur) if cur else None
            end = m.end()
            found.append(Match(m.start(), end, Money(amount, currency, text[m.start() : end])))
    return sorted(found, key=lambda match: match.start)


def _find_numbers(text: str, taken: list[Match]) -> list[Match]:
    found = []
    for m in NUMBER.finditer(text):
        if any(m.start() < other.end and other.start < m.end() for other in taken):
            continue
        found.append(Match(m.start(), m.end(), Decimal(m.group().replace(",", ""))))
    return found


def _find_names(text: str, names: Iterable[str]) -> list[Match]:
    found: list[Match] = []
    # Longest first, so "Acme Corp" wins over a listed "Acme" at the same place.
    for name in sorted({n.strip() for n in names if n and n.strip()}, key=len, reverse=True):
        for m in re.finditer(rf"(?<!\w){re.escape(name)}(?!\w)", text):
            if any(m.start() < other.end and other.start < m.end() for other in found):
                continue
            found.append(Match(m.start(), m.end(), name))
    return sorted(found, key=lambda match: match.start)


def _find_enum(text: str, values: list[str]) -> list[Match]:
    found: list[Match] = []
    for value in sorted(values, key=len, reverse=True):
        if not value.strip():
            continue
        for m in re.finditer(rf"(?<!\w){re.escape(value)}(?!\w)", text, re.IGNORECASE):
            if any(m.start() < other.end and other.start < m.end() for other in found):
                continue
            found.append(Match(m.start(), m.end(), value))
    return sorted(found, key=lambda match: match.start)


def is_company_name(name: str) -> bool:
    """Whether a name ends in a corporate suffix (Corp, Inc, LLC, Ltd, GmbH, ...)."""
    words = re.findall(r"[A-Za-z]+", name)
    return len(words) > 1 and words[-1].lower() in CORPORATE_SUFFIXES


# --- what a property asks for -------------------------------------------------------------------

KIND_WORDS: dict[str, frozenset[str]] = {
    "email": frozenset({"email", "mail", "emails", "e"}),
    "url": frozenset({"url", "uri", "website", "site", "link", "homepage", "web", "urls"}),
    "phone": frozenset({"phone", "tel", "telephone", "mobile", "cell", "fax", "phones"}),
    "date": frozenset({"date", "day", "due", "deadline", "birthday", "dob", "dates"}),
    "money": frozenset(
        {
            "amount",
            "price",
            "total",
            "subtotal",
            "cost",
            "fee",
            "fees",
            "tax",
            "balance",
            "payment",
            "salary",
            "revenue",
            "budget",
            "spend",
            "charge",
            "rent",
            "prices",
            "amounts",
            "costs",
            "totals",
            "payments",
            "wage",
            "income",
            "funding",
            "valuation",
        }
    ),
    "currency": frozenset({"currency"}),
}
GENERIC_LABEL_WORDS = frozenset(
    {
        "email",
        "mail",
        "address",
        "url",
        "uri",
        "link",
        "website",
        "date",
        "day",
        "amount",
        "value",
        "number",
        "num",
        "phone",
        "name",
        "names",
        "from",
        "to",
    }
)
LABEL_STOP_WORDS = frozenset(
    {"of", "at", "on", "in", "by", "is", "the", "an", "and", "or", "for", "with", "id", "no"}
)
COMPANY_WORDS = frozenset(
    {
        "company",
        "organization",
        "organisation",
        "org",
        "vendor",
        "supplier",
        "employer",
        "business",
        "firm",
        "merchant",
        "brand",
        "corporation",
        "issuer",
        "manufacturer",
        "bank",
        "companies",
        "vendors",
        "suppliers",
    }
)
PERSON_WORDS = frozenset(
    {
        "person",
        "author",
        "contact",
        "employee",
        "recipient",
        "sender",
        "signatory",
        "assignee",
        "reporter",
        "speaker",
        "manager",
        "people",
        "persons",
        "authors",
        "contacts",
        "employees",
    }
)
PARTY_WORDS = frozenset(
    {
        "customer",
        "client",
        "buyer",
        "seller",
        "payee",
        "payer",
        "party",
        "owner",
        "partner",
        "name",
        "customers",
        "clients",
        "parties",
        "partners",
        "names",
    }
)
NAME_PART_WORDS = frozenset({"first", "last", "middle", "given", "family", "surname", "user"})


def name_words(name: str) -> list[str]:
    """``dueDate`` / ``due_date`` / ``Due Date`` -> ``["due", "date"]``."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name)
    return [word.lower() for word in re.split(r"[^A-Za-z0-9]+", spaced) if word]


def _type_of(schema: dict[str, Any]) -> str | None:
    declared = schema.get("type")
    if isinstance(declared, list):
        options = [t for t in declared if t != "null"]
        return options[0] if len(options) == 1 else None
    return declared if isinstance(declared, str) else None


@dataclass(frozen=True)
class Want:
    kind: str  # email url phone date money currency name number enum
    type: str | None  # JSON type of each value
    many: bool
    person: bool | None = None  # name kind: True person, False company, None either
    enum: tuple[str, ...] = ()

    @property
    def key(self) -> tuple[str, tuple[str, ...]]:
        return (self.kind, self.enum)


def classify_property(name: str, schema: dict[str, Any]) -> Want | None:
    """What kind of value a property wants, or None when the rules cannot supply it."""
    if _type_of(schema) == "array":
        items = schema.get("items")
        if not isinstance(items, dict):
            return None
        inner = _scalar_want(name, items)
        if inner is None:
            return None
        return Want(inner.kind, inner.type, True, inner.person, inner.enum)
    return _scalar_want(name, schema)


def _scalar_want(name: str, schema: dict[str, Any]) -> Want | None:
    json_type = _type_of(schema)
    words = set(name_words(name))
    fmt = schema.get("format")
    enum = schema.get("enum")
    if isinstance(enum, list) and enum and all(isinstance(v, str) for v in enum):
        return Want("enum", "string", False, enum=tuple(enum))
    if json_type in ("number", "integer"):
        if words & KIND_WORDS["money"]:
            return Want("money", json_type, False)
        return Want("number", json_type, False)
    if json_type not in ("string", None):
        return None
    if fmt == "email" or fmt == "idn-email" or words & {"email", "mail", "emails"}:
        return Want("email", "string", False)
    if fmt in ("uri", "url", "iri") or words & KIND_WORDS["url"]:
        return Want("url", "string", False)
    if words & KIND_WORDS["phone"]:
        return Want("phone", "string", False)
    if fmt == "date" or (fmt is None and words & KIND_WORDS["date"]):
        return Want("date", "string", False)
    if fmt is not None:
        return None  # date-time, time, uuid, ...: nothing here supplies those
    if words & KIND_WORDS["currency"]:
        return Want("currency", "string", False)
    if words & KIND_WORDS["money"]:
        return Want("money", "string", False)
    if words & NAME_PART_WORDS:
        return None  # a first or last name: the names given are whole names
    if words & COMPANY_WORDS:
        return Want("name", "string", False, person=False)
    if words & PERSON_WORDS:
        return Want("name", "string", False, person=True)
    if words & PARTY_WORDS:
        return Want("name", "string", False, person=None)
    return None


# --- choosing ---------------------------------------------------------------------------------

_TOKEN = re.compile(r"[A-Za-z0-9]+")
# A sentence ends at "!", "?", ";" or a blank line, or at a period after a word of three or more
# letters followed by a capital ("Corp. The"), not at "No. 1042", "Mr. Smith" or "3.5".
_SENTENCE_BREAK = re.compile(r"[!?;]\s|(?<=[A-Za-z]{3})\.\s+(?=[A-Z\"'(])|\n\s*\n")
LABEL_GAP_WORDS = 3
# "12 employees", "12 full-time employees": up to three words straight after, same clause.
_FOLLOWING_WORDS = re.compile(r"[ \t]+(?:[A-Za-z]+[ \t-]+){0,2}[A-Za-z]+")


def _word_matches(token: str, word: str) -> bool:
    token = token.lower()
    if token == word:
        return True
    return len(word) >= 3 and token.startswith(word) and len(token) - len(word) <= 3


def _labelled(
    text: str, match: Match, words: set[str], others: list[Match], after: bool = False
) -> bool:
    """Whether one of ``words`` labels ``match``: a few words before it (or right after)."""
    if not words:
        return False
    if after:
        after_words = _FOLLOWING_WORDS.match(text, match.end)
        following = _TOKEN.findall(after_words.group()) if after_words else []
        return any(_word_matches(token, word) for token in following for word in words)
    window_start = max(0, match.start - 120)
    for other in others:
        if other.end <= match.start and other.end > window_start:
            window_start = other.end
    window = text[window_start : match.start]
    breaks = list(_SENTENCE_BREAK.finditer(window))
    if breaks:
        window = window[breaks[-1].end() :]
    nearby = _TOKEN.findall(window)[-(LABEL_GAP_WORDS + 1) :]
    return any(_word_matches(token, word) for token in nearby for word in words)


def _choose(
    text: str,
    label_words: list[str],
    want: Want,
    candidates: list[Match],
    alone: bool,
    same_value: Callable[[Any], Any],
) -> list[Match]:
    """The matches taken for one property (one for a scalar, all for an array), or []."""
    if not candidates:
        return []
    words = {w for w in label_words if len(w) >= 2 and w not in LABEL_STOP_WORDS}
    specific = {w for w in words if w not in GENERIC_LABEL_WORDS}
    generic = words - specific
    for tier in (specific, generic):
        labelled = [
            c
            for c in candidates
            if _labelled(text, c, tier, candidates)
            or (want.kind == "number" and _labelled(text, c, tier, candidates, after=True))
        ]
        if labelled:
            return _distinct(labelled, same_value, want.many)
    if want.kind == "number" or not alone:
        return []
    return _distinct(candidates, same_value, want.many)


def _distinct(matches: list[Match], same_value: Callable[[Any], Any], many: bool) -> list[Match]:
    seen: dict[Any, Match] = {}
    for match in matches:
        seen.setdefault(same_value(match.value), match)
    chosen = list(seen.values())
    if many:
        return chosen
    return chosen if len(chosen) == 1 else []


@dataclass
class _Found:
    emails: list[Match]
    urls: list[Match]
    phones: list[Match]
    dates: list[Match]
    money: list[Match]
    numbers: list[Match]
    names: list[Match]
    enums: dict[tuple[str, ...], list[Match]] = field(default_factory=dict)


def _scan(text: str, names: list[str]) -> _Found:
    emails = _find_emails(text)
    urls = _find_urls(text)
    emails = [e for e in emails if not any(u.start <= e.start < u.end for u in urls)]
    dates = _find_dates(text)
    money = _find_money(text)
    phones = [
        p
        for p in _find_phones(text)
        if not any(p.start < o.end and o.start < p.end for o in [*urls, *emails, *dates, *money])
    ]
    numbers = _find_numbers(text, [*emails, *urls, *phones, *dates, *money])
    return _Found(emails, urls, phones, dates, money, numbers, _find_names(text, names))


def _candidates(found: _Found, text: str, want: Want) -> list[Match]:
    if want.kind == "enum":
        if want.enum not in found.enums:
            found.enums[want.enum] = _find_enum(text, list(want.enum))
        return found.enums[want.enum]
    if want.kind == "name":
        if want.person is True:
            return [m for m in found.names if not is_company_name(m.value)]
        if want.person is False:
            companies = [m for m in found.names if is_company_name(m.value)]
            return companies or found.names
        return found.names
    if want.kind == "currency":
        return [Match(m.start, m.end, m.value.currency) for m in found.money if m.value.currency]
    lists = {
        "email": found.emails,
        "url": found.urls,
        "phone": found.phones,
        "date": found.dates,
        "money": found.money,
        "number": found.numbers,
    }
    return lists[want.kind]


def _comparable(want: Want) -> Callable[[Any], Any]:
    if want.kind == "money":
        return lambda value: (value.amount, value.currency)
    if want.kind in ("email", "enum"):
        return lambda value: str(value).lower()
    if want.kind == "phone":
        return lambda value: re.sub(r"\D", "", value)
    return lambda value: value


def _to_json(value: Any, want: Want) -> Any:
    """A match's value as the JSON value the property's type asks for, or None."""
    if isinstance(value, Money):
        if want.type == "string":
            return value.text
        value = value.amount
    if isinstance(value, Decimal):
        if want.type == "integer":
            return int(value) if value == value.to_integral_value() else None
        if want.type in ("number", None):
            return float(value)
        return None
    return value


def _value_for(
    text: str,
    label_words: list[str],
    schema: dict[str, Any],
    want: Want,
    found: _Found,
    alone: bool,
) -> Any:
    candidates = _candidates(found, text, want)
    chosen = _choose(text, label_words, want, candidates, alone, _comparable(want))
    values = []
    item_schema = schema.get("items", {}) if want.many else schema
    for match in chosen:
        value = _to_json(match.value, want)
        if value is not None and _valid(value, item_schema):
            values.append(value)
    if want.many:
        return values if values and _valid(values, schema) else None
    return values[0] if values else None


def _valid(value: Any, schema: Any) -> bool:
    if not isinstance(schema, dict):
        return True
    return bool(_validator(schema).is_valid(value))


def _validator(schema: dict[str, Any]) -> Validator:
    # jsonschema takes ~30 ms to import: loaded by the first extraction, not at start.
    from jsonschema import FormatChecker
    from jsonschema.validators import validator_for

    return validator_for(schema)(schema, format_checker=FormatChecker())


def _count_wants(schema: dict[str, Any], counts: dict[tuple[str, tuple[str, ...]], int]) -> None:
    """How many properties, anywhere in the schema, want each kind of value."""
    for name, sub in (schema.get("properties") or {}).items():
        if not isinstance(sub, dict):
            continue
        want = classify_property(name, sub)
        if want is not None:
            counts[want.key] = counts.get(want.key, 0) + 1
        elif _type_of(sub) == "object" and isinstance(sub.get("properties"), dict):
            _count_wants(sub, counts)


def _extract_object(
    text: str,
    schema: dict[str, Any],
    found: _Found,
    counts: dict[tuple[str, tuple[str, ...]], int],
    parents: list[str],
    missing: list[str],
) -> dict[str, Any]:
    properties = schema.get("properties") or {}
    required = schema.get("required", [])
    path = "".join(f"{parent}." for parent in parents)
    parent_words = [word for parent in parents for word in name_words(parent)]
    result: dict[str, Any] = {}
    for name, sub in properties.items():
        if not isinstance(sub, dict):
            continue
        want = classify_property(name, sub)
        value: Any = None
        if want is not None:
            label_words = name_words(name) + parent_words
            value = _value_for(text, label_words, sub, want, found, counts[want.key] == 1)
        elif _type_of(sub) == "object" and isinstance(sub.get("properties"), dict):
            inner_missing: list[str] = []
            inner = _extract_object(text, sub, found, counts, [*parents, name], inner_missing)
            if inner and not inner_missing and _valid(inner, sub):
                value = inner
            elif name in required:
                missing.extend(inner_missing)
        if value is not None:
            result[name] = value
    for name in required:
        if name not in result and not any(m.startswith(f"{path}{name}.") for m in missing):
            missing.append(f"{path}{name}")
    return result


def extract(text: str, schema: dict[str, Any], *, names: list[str] | None = None) -> dict[str, Any]:
    """Fill ``schema``'s properties from ``text`` by rules; omit what is not found reliably.

    ``names`` lists the people and organisations the caller knows of; a name-like property is
    filled only with one of them, written in the text as a whole phrase with the same case.

    Raises ``InvalidExtractionSchema`` for a schema that is not a JSON Schema object with
    ``properties``, ``ValueError`` for empty text, and ``ExtractionIncomplete`` (naming the fields,
    nested ones as ``parent.child``) when required properties cannot be found.
    """
    if not isinstance(schema, dict):
        raise InvalidExtractionSchema("the schema must be a JSON Schema object (a dict)")
    from jsonschema.exceptions import SchemaError
    from jsonschema.validators import validator_for

    try:
        validator_for(schema).check_schema(schema)
    except SchemaError as error:
        message = f"the schema is not valid JSON Schema: {error.message}"
        raise InvalidExtractionSchema(message) from None
    if _type_of(schema) not in ("object", None) or not isinstance(schema.get("properties"), dict):
        raise InvalidExtractionSchema(
            'the schema must describe an object: {"type": "object", "properties": {...}}'
        )
    if not text or not text.strip():
        raise ValueError("cannot extract from empty text")
    found = _scan(text, list(names or []))
    counts: dict[tuple[str, tuple[str, ...]], int] = {}
    _count_wants(schema, counts)
    missing: list[str] = []
    result = _extract_object(text, schema, found, counts, [], missing)
    if missing:
        raise ExtractionIncomplete(missing, result)
    problems = [error.message for error in _validator(schema).iter_errors(result)]
    if problems:
        raise ExtractionIncomplete([], result, problems)
    return result
