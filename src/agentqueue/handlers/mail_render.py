"""Email templates: Jinja2, one set of files per kind of message (`welcome.subject`,
`welcome.txt`, `welcome.html`, …), the built-in ones shipped in `agentqueue/data/email`.

An operator's EMAIL_TEMPLATES_DIR comes first: any file found there is used instead of the
built-in one of the same name (so `welcome.html` alone can be replaced, and `base.html`, the
HTML layout, restyles them all). HTML is autoescaped (a name like `<b>` arrives as text);
the subject and text part are not HTML and are not escaped. A variable a template names but
the job does not give fails the job (StrictUndefined), rather than mailing a blank.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jinja2 import Environment

BUILTIN_DIR = Path(__file__).resolve().parent.parent / "data" / "email"


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


class Templates:
    """The templates of one worker (loaded once, from the operator's directory first)."""

    def __init__(self, directory: Path | None = None) -> None:
        # Jinja2 loads with the first email, not when `agentqueue serve` starts.
        from jinja2 import (
            ChoiceLoader,
            FileSystemLoader,
            StrictUndefined,
            select_autoescape,
        )
        from jinja2.sandbox import SandboxedEnvironment

        loaders = [FileSystemLoader(str(directory.expanduser()))] if directory else []
        loaders.append(FileSystemLoader(str(BUILTIN_DIR)))
        # Sandboxed: a template is the operator's, but the values in it are the tenant's.
        self.env: Environment = SandboxedEnvironment(
            loader=ChoiceLoader(loaders),
            autoescape=select_autoescape(enabled_extensions=("html",),
                                         default_for_string=False, default=False),
            undefined=StrictUndefined,
            keep_trailing_newline=True,
        )

    def render(self, kind: str, variables: dict[str, Any]) -> Rendered:
        subject = self.env.get_template(f"{kind}.subject").render(variables)
        values = {**variables, "subject": " ".join(subject.split())}
        return Rendered(
            subject=values["subject"],
            text=self.env.get_template(f"{kind}.txt").render(values),
            html=self.env.get_template(f"{kind}.html").render(values),
        )
