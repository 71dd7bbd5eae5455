"""The text of a document, page by page: plain text, Markdown, HTML, PDF (pypdf) and DOCX
(python-docx). Each library is imported when a document of its kind is read."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from html.parser import HTMLParser

TEXT, MARKDOWN, HTML = "text/plain", "text/markdown", "text/html"
PDF = "application/pdf"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
CONTENT_TYPES = (TEXT, MARKDOWN, HTML, PDF, DOCX)
BINARY_TYPES = frozenset({PDF, DOCX})
# Short names a client may give instead of the media type.
ALIASES = {"text": TEXT, "txt": TEXT, "markdown": MARKDOWN, "md": MARKDOWN, "html": HTML,
           "pdf": PDF, "docx": DOCX}


class DocumentError(ValueError):
    """The content cannot be read as the type it claims (a broken PDF, say)."""


def content_type(name: str) -> str:
    """The media type `name` means (an alias or the type itself, parameters dropped)."""
    base = name.split(";", 1)[0].strip().lower()
    resolved = ALIASES.get(base, base)
    if resolved not in CONTENT_TYPES:
        known = ", ".join([*CONTENT_TYPES, *ALIASES])
        raise ValueError(f"unsupported content type {name!r}; one of {known}")
    return resolved


def pages_of(content: bytes, kind: str) -> list[str]:
    """The text of each page (one page for the kinds that have none); `kind` a media type."""
    readers: dict[str, Callable[[bytes], list[str]]] = {
        TEXT: lambda raw: [_decode(raw)],
        MARKDOWN: lambda raw: [_markdown_text(_decode(raw))],
        HTML: lambda raw: [html_text(_decode(raw))],
        PDF: _pdf_pages,
        DOCX: _docx_text,
    }
    return [_tidy(page) for page in readers[content_type(kind)](content)]


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DocumentError(f"the content is not UTF-8 text (byte {exc.start})") from None


def _tidy(text: str) -> str:
    """Runs of spaces to one, at most one blank line between paragraphs."""
    text = re.sub(r"[ \t\f\v\u00a0]+", " ", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = re.sub(r" *\n *", "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


class _TextOfHtml(HTMLParser):
    """Visible text: script, style and template contents dropped, blocks on lines of their own."""

    _HIDDEN = frozenset({"script", "style", "template", "noscript", "head"})
    _BLOCKS = frozenset({"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6",
                         "section", "article", "header", "footer", "blockquote", "pre",
                         "table", "ul", "ol", "hr", "title"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._HIDDEN:
            self._hidden += 1
        elif tag in self._BLOCKS:
            self.parts.append("\n\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._HIDDEN:
            self._hidden = max(0, self._hidden - 1)
        elif tag in self._BLOCKS:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.parts.append(data)


def html_text(html: str) -> str:
    parser = _TextOfHtml()
    parser.feed(html)
    parser.close()
    return "".join(parser.parts)


def _markdown_text(markdown: str) -> str:
    # markdown-it-py (CommonMark) renders it; the HTML's visible text is the document's text.
    from markdown_it import MarkdownIt

    return html_text(MarkdownIt("commonmark").render(markdown))


def _pdf_pages(raw: bytes) -> list[str]:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(raw))
        if reader.is_encrypted:
            raise DocumentError("the PDF is encrypted; upload it without a password")
        return [page.extract_text() or "" for page in reader.pages]
    except DocumentError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
        raise DocumentError(f"not a readable PDF: {exc}") from None


def _docx_text(raw: bytes) -> list[str]:
    import zipfile

    from docx import Document

    try:
        document = Document(io.BytesIO(raw))
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise DocumentError(f"not a readable DOCX file: {exc}") from None
    paragraphs = [p.text for p in document.paragraphs]
    for table in document.tables:
        for row in table.rows:
            paragraphs.append(" | ".join(cell.text for cell in row.cells))
    return ["\n\n".join(paragraphs)]
