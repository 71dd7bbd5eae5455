"""Greetings, thanks and "what can you do?": short honest answers, no tool call.

A message counts as small talk only when small talk is all it says; "Hi, what is 2 + 2?" is a
calculation with a greeting in front (``strip_greeting`` takes the greeting off).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Kind = Literal["greeting", "thanks", "farewell", "how_are_you", "who_are_you", "capabilities"]


@dataclass(frozen=True)
class SmallTalk:
    kind: Kind


_GREETING = (
    r"(?:hi|hello|hey|hiya|howdy|yo|greetings|good (?:morning|afternoon|evening|day)|"
    r"hi there|hello there|hey there)"
)
_KINDS: list[tuple[Kind, re.Pattern[str]]] = [
    ("capabilities", re.compile(
        r"(?:what (?:can|could|do) you (?:do|help (?:me )?with|answer)|what are you (?:able|good) "
        r"(?:to do|for|at)|how can you help(?: me)?|what do you know(?: about)?|help|help me|"
        r"what questions can (?:i|you) ask|what can i ask(?: you)?|what are your (?:capabilities|"
        r"features|skills)|what kind of questions (?:can|do) you (?:answer|handle)|"
        r"(?:show|list) (?:me )?(?:your )?(?:commands|capabilities)|how does this work|"
        r"what is this|can you help me)"
    )),
    ("who_are_you", re.compile(
        r"(?:who|what) are you|are you (?:a |an )?(?:bot|robot|human|ai|real|person|chatgpt|"
        r"language model)|what(?:'s| is) your name|who made you|which model are you"
    )),
    ("how_are_you", re.compile(
        r"how are you(?: doing)?(?: today)?|how(?:'s| is) it going|how do you do|what'?s up|sup"
    )),
    ("thanks", re.compile(
        r"(?:thanks?|thank you|thx|ty|cheers|much appreciated|great|cool|nice|awesome|perfect|"
        r"ok(?:ay)?|got it)(?: (?:so much|a lot|very much|for (?:the|your) help|again))?"
        r"(?: (?:that's|that is) (?:all|it|great|helpful|enough))?"
    )),
    ("farewell", re.compile(r"bye|goodbye|good bye|see you|see ya|later|good night|farewell")),
    ("greeting", re.compile(_GREETING)),
]  # fmt: skip
_LEAD = re.compile(rf"^(?:{_GREETING})\b[\s,!.:;-]*", re.IGNORECASE)
_FILLER = re.compile(r"\b(please|there|again|so|then|exactly|actually|just|today|friend|bot)\b")


def _clean(message: str) -> str:
    text = message.casefold().replace("’", "'")
    text = re.sub(r"[^\w' ]+", " ", text)
    return " ".join(text.split())


def small_talk(message: str) -> SmallTalk | None:
    """The kind of small talk the whole message is, if it is only small talk."""
    text = _clean(message)
    if not text:
        return None
    # "hi, what can you do?" is a capabilities question; check what follows a greeting first.
    rest = _LEAD.sub("", text).strip()
    candidates = [rest, text] if rest and rest != text else [text]
    for candidate in candidates:
        stripped = " ".join(_FILLER.sub(" ", candidate).split()) or candidate
        for kind, pattern in _KINDS:
            if pattern.fullmatch(candidate) or pattern.fullmatch(stripped):
                return SmallTalk(kind)
    return None


def strip_greeting(message: str) -> str:
    """The message without a greeting in front ("Hi, list the Food companies" -> "list ...")."""
    stripped = _LEAD.sub("", message.strip())
    return stripped if stripped.strip() else message
