"""A document's text, page by page, from each kind it may be: real PDF and DOCX files made by
the test, Markdown and HTML as a browser would show them."""

from __future__ import annotations

import pytest

from agentqueue.documents.extract import (
    DOCX,
    PDF,
    DocumentError,
    content_type,
    pages_of,
)
from tests.documents.builders import docx_of, pdf_of


def test_plain_text_is_one_page_with_whitespace_tidied() -> None:
    assert pages_of(b"  Hello\r\n\r\n\r\n\r\nworld\t again  ", "text/plain") == [
        "Hello\n\nworld again"]


def test_markdown_reads_as_its_rendered_text() -> None:
    md = "# Returns policy\n\nItems may be **returned** within [30 days](https://x.test).\n\n" \
         "- keep the receipt\n- unopened only\n"
    (page,) = pages_of(md.encode(), "markdown")
    assert page == ("Returns policy\n\nItems may be returned within 30 days.\n\n"
                    "keep the receipt\n\nunopened only")


def test_html_drops_scripts_styles_and_head() -> None:
    html = ("<html><head><title>T</title><style>p {color: red}</style></head><body>"
            "<h1>Shipping</h1><p>Orders ship in 2&nbsp;days &amp; arrive fast.</p>"
            "<script>track('x')</script><p>Second<br>line</p></body></html>")
    (page,) = pages_of(html.encode(), "text/html; charset=utf-8")
    assert page == "Shipping\n\nOrders ship in 2 days & arrive fast.\n\nSecond\n\nline"
    assert "track" not in page and "color" not in page


def test_pdf_pages_come_back_in_order() -> None:
    raw = pdf_of(["Invoice 1001\nTotal due: 40 EUR", "Page two talks about refunds"])
    pages = pages_of(raw, PDF)
    assert len(pages) == 2
    assert "Invoice 1001" in pages[0] and "Total due: 40 EUR" in pages[0]
    assert "refunds" in pages[1] and "Invoice" not in pages[1]


def test_docx_paragraphs_and_tables() -> None:
    raw = docx_of(["Quarterly report", "Revenue grew in the north."],
                  table=[["region", "sales"], ["north", "120"]])
    (page,) = pages_of(raw, DOCX)
    assert page.startswith("Quarterly report\n\nRevenue grew in the north.")
    assert "north | 120" in page


@pytest.mark.parametrize(("raw", "kind", "says"), [
    (b"%PDF-1.4 this is not really a PDF", PDF, "not a readable PDF"),
    (b"PK\x03\x04 broken zip", DOCX, "not a readable DOCX"),
    (b"\xff\xfe\x00bad", "text/plain", "not UTF-8"),
])
def test_unreadable_content_says_why(raw: bytes, kind: str, says: str) -> None:
    with pytest.raises(DocumentError, match=says):
        pages_of(raw, kind)


def test_content_types_and_aliases() -> None:
    assert content_type("PDF") == PDF
    assert content_type("text/markdown") == "text/markdown"
    with pytest.raises(ValueError, match="unsupported content type 'image/png'"):
        content_type("image/png")
