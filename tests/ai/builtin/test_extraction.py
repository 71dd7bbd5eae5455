from __future__ import annotations

from typing import Any

import jsonschema
import pytest

from agentqueue.ai.builtin import ExtractionIncomplete, InvalidExtractionSchema, extract

INVOICE = "Invoice from Acme Corp to jane.doe@example.com, total $1,250.00, due March 3, 2026"
INVOICE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "email": {"type": "string", "format": "email"},
        "total": {"type": "number"},
        "due_date": {"type": "string", "format": "date"},
        "company": {"type": "string"},
    },
    "required": ["email", "total", "due_date", "company"],
    "additionalProperties": False,
}

DETAILED_INVOICE = """Invoice No. 1042 from Globex Inc. Issued 2026-02-01, due 13/03/2026.
Customer: Jane Doe (jane.doe@example.com, cc billing@globex.com). Phone: +1 (555) 123-4567.
Quantity: 3 licences. Subtotal EUR 1,000.00, tax €250, total 1,250.00 EUR. Status: unpaid.
Details at https://globex.example.com/invoices/1042."""
DETAILED_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "invoice_number": {"type": "integer"},
        "issue_date": {"type": "string", "format": "date"},
        "due_date": {"type": "string", "format": "date"},
        "subtotal": {"type": "number"},
        "tax": {"type": "number"},
        "total": {"type": "number"},
        "currency": {"type": "string"},
        "customer": {"type": "string"},
        "phone": {"type": "string"},
        "website": {"type": "string", "format": "uri"},
        "status": {"type": "string", "enum": ["paid", "unpaid", "overdue"]},
        "quantity": {"type": "integer", "minimum": 1},
        "emails": {"type": "array", "items": {"type": "string", "format": "email"}},
        "notes": {"type": "string"},
    },
}


def assert_valid(result: dict[str, Any], schema: dict[str, Any]) -> None:
    jsonschema.validate(result, schema, format_checker=jsonschema.FormatChecker())


def test_the_invoice_sentence_gives_every_field() -> None:
    result = extract(INVOICE, INVOICE_SCHEMA, names=["Acme Corp"])
    assert result == {
        "email": "jane.doe@example.com",
        "total": 1250.0,
        "due_date": "2026-03-03",
        "company": "Acme Corp",
    }
    assert_valid(result, INVOICE_SCHEMA)


def test_a_detailed_invoice_fills_what_it_states_and_leaves_notes_out() -> None:
    result = extract(DETAILED_INVOICE, DETAILED_SCHEMA, names=["Globex Inc", "Jane Doe"])
    assert result == {
        "invoice_number": 1042,
        "issue_date": "2026-02-01",
        "due_date": "2026-03-13",  # 13/03/2026: day first, as 13 cannot be a month
        "subtotal": 1000.0,
        "tax": 250.0,
        "total": 1250.0,
        "currency": "EUR",
        "customer": "Jane Doe",
        "phone": "+1 (555) 123-4567",
        "website": "https://globex.example.com/invoices/1042",
        "status": "unpaid",
        "quantity": 3,
        "emails": ["jane.doe@example.com", "billing@globex.com"],
    }
    assert_valid(result, DETAILED_SCHEMA)


def test_a_missing_required_field_is_named_and_the_llm_setting_is_suggested() -> None:
    schema = {
        "type": "object",
        "properties": {
            "email": {"type": "string", "format": "email"},
            "po_number": {"type": "string"},
            "total": {"type": "number"},
        },
        "required": ["email", "po_number"],
    }
    with pytest.raises(ExtractionIncomplete) as caught:
        extract(INVOICE, schema)
    assert caught.value.missing == ["po_number"]
    assert caught.value.found == {"email": "jane.doe@example.com", "total": 1250.0}
    message = str(caught.value)
    assert "'po_number'" in message
    assert "OPENAI_API_KEY" in message
    assert "'email'" not in message


def test_nothing_is_invented_when_the_text_has_nothing() -> None:
    result = extract("Thanks for your help yesterday!", INVOICE_SCHEMA | {"required": []})
    assert result == {}


def test_names_come_only_from_the_list_as_whole_phrases() -> None:
    schema = {"type": "object", "properties": {"company": {"type": "string"}}}
    assert extract(INVOICE, schema) == {}  # no names given: nothing to match against
    assert extract("We met Acmeville's mayor.", schema, names=["Acme"]) == {}
    assert extract("We met ACME CORP staff.", schema, names=["Acme Corp"]) == {}


def test_a_person_field_never_gets_a_company() -> None:
    schema = {"type": "object", "properties": {"contact_person": {"type": "string"}}}
    text = "Acme Corp sent the contract; Jane Doe signed it."
    assert extract(text, schema, names=["Acme Corp"]) == {}
    assert extract(text, schema, names=["Acme Corp", "Jane Doe"]) == {"contact_person": "Jane Doe"}


def test_a_company_field_prefers_a_name_with_a_corporate_suffix() -> None:
    schema = {"type": "object", "properties": {"vendor": {"type": "string"}}}
    text = "Jane Doe ordered ten chairs from Acme Corp."
    assert extract(text, schema, names=["Jane Doe", "Acme Corp"]) == {"vendor": "Acme Corp"}


def test_two_candidates_without_a_label_are_ambiguous() -> None:
    schema = {"type": "object", "properties": {"email": {"type": "string"}}}
    text = "Write to jane@example.com or bob@example.com."
    assert extract(text, schema) == {}


def test_labels_in_the_text_tell_fields_of_one_kind_apart() -> None:
    schema = {
        "type": "object",
        "properties": {
            "billing_email": {"type": "string", "format": "email"},
            "support_email": {"type": "string", "format": "email"},
            "start_date": {"type": "string", "format": "date"},
            "end_date": {"type": "string", "format": "date"},
            "subtotal": {"type": "number"},
            "total": {"type": "number"},
        },
    }
    text = (
        "The contract starts on 1 April 2026 and ends on March 31, 2027. "
        "Subtotal $900, total $990. Billing questions: accounts@example.com; "
        "for support write to help@example.com."
    )
    assert extract(text, schema) == {
        "billing_email": "accounts@example.com",
        "support_email": "help@example.com",
        "start_date": "2026-04-01",
        "end_date": "2027-03-31",
        "subtotal": 900.0,
        "total": 990.0,
    }


def test_one_date_is_not_given_to_two_unlabelled_date_fields() -> None:
    schema = {
        "type": "object",
        "properties": {
            "start_date": {"type": "string", "format": "date"},
            "end_date": {"type": "string", "format": "date"},
        },
    }
    assert extract("The workshop is on 2026-05-20.", schema) == {}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Due 03/04/2026.", {}),  # 3 April or March 4: skipped
        ("Due 04/04/2026.", {"due_date": "2026-04-04"}),  # same either way
        ("Due 04/13/2026.", {"due_date": "2026-04-13"}),
        ("Due 2026/4/13.", {"due_date": "2026-04-13"}),
        ("Due the 13th of April, 2026.", {"due_date": "2026-04-13"}),
        ("Due Apr. 13th 2026.", {"due_date": "2026-04-13"}),
        ("Due February 30, 2026.", {}),  # no such day
        ("Due in April 2026.", {}),  # no day
        ("Due 4/13/26.", {}),  # two-digit year
    ],
)
def test_date_forms(text: str, expected: dict[str, str]) -> None:
    schema = {"type": "object", "properties": {"due_date": {"type": "string", "format": "date"}}}
    assert extract(text, schema) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The price is €30.", 30.0),
        ("The price is 30 EUR.", 30.0),
        ("The price is USD 1,200.", 1200.0),
        ("The price is £2.5 million.", 2_500_000.0),
        ("The price is $1.5k.", 1500.0),
        ("The price is EUR 1.250,00.", None),  # decimal comma: not misread as 1.25
        ("The price is 1,250.", None),  # no currency: not clearly money
    ],
)
def test_money_forms(text: str, expected: float | None) -> None:
    schema = {"type": "object", "properties": {"price": {"type": "number"}}}
    assert extract(text, schema) == ({} if expected is None else {"price": expected})


def test_an_integer_field_takes_only_a_whole_amount() -> None:
    schema = {"type": "object", "properties": {"amount": {"type": "integer"}}}
    assert extract("Amount: $1,250.00", schema) == {"amount": 1250}
    assert extract("Amount: $1,250.50", schema) == {}


def test_a_string_money_field_keeps_the_amount_as_written() -> None:
    schema = {"type": "object", "properties": {"total": {"type": "string"}}}
    assert extract(INVOICE, schema) == {"total": "$1,250.00"}


def test_plain_numbers_need_a_label() -> None:
    schema = {
        "type": "object",
        "properties": {
            "employee_count": {"type": "integer"},
            "founded_year": {"type": "integer"},
            "rating": {"type": "number"},
        },
    }
    text = "Acme has 120 full-time employees. It was founded in 1999. Room 42 is upstairs."
    assert extract(text, schema) == {"employee_count": 120, "founded_year": 1999}


def test_values_that_break_the_subschema_are_dropped() -> None:
    schema = {
        "type": "object",
        "properties": {
            "quantity": {"type": "integer", "maximum": 10},
            "email": {"type": "string", "pattern": "@acme\\.com$"},
        },
    }
    assert extract("Quantity: 12, contact jane@example.com", schema) == {}
    assert extract("Quantity: 7, contact jane@acme.com", schema) == {
        "quantity": 7,
        "email": "jane@acme.com",
    }


def test_arrays_collect_every_distinct_match_in_order() -> None:
    schema = {
        "type": "object",
        "properties": {
            "dates": {"type": "array", "items": {"type": "string", "format": "date"}},
            "links": {"type": "array", "items": {"type": "string", "format": "uri"}},
        },
    }
    text = (
        "Sessions on 2026-06-01, June 8, 2026 and again 1 June 2026. "
        "Slides: https://example.org/a, https://example.org/b."
    )
    result = extract(text, schema)
    assert result == {
        "dates": ["2026-06-01", "2026-06-08"],
        "links": ["https://example.org/a", "https://example.org/b"],
    }
    assert_valid(result, schema)


def test_enum_values_are_matched_whole_and_returned_as_declared() -> None:
    schema = {
        "type": "object",
        "properties": {"priority": {"type": "string", "enum": ["Low", "Medium", "High"]}},
    }
    assert extract("This is a HIGH priority ticket.", schema) == {"priority": "High"}
    assert extract("Highway traffic was low to medium.", schema) == {}  # two values: ambiguous


def test_nested_objects_are_filled_and_missing_nested_fields_named() -> None:
    schema = {
        "type": "object",
        "properties": {
            "customer": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "email": {"type": "string", "format": "email"},
                },
                "required": ["name", "email"],
            },
        },
        "required": ["customer"],
    }
    result = extract("Customer Jane Doe, jane@example.com.", schema, names=["Jane Doe"])
    assert result == {"customer": {"name": "Jane Doe", "email": "jane@example.com"}}
    assert_valid(result, schema)
    with pytest.raises(ExtractionIncomplete) as caught:
        extract("Customer Jane Doe called.", schema, names=["Jane Doe"])
    assert caught.value.missing == ["customer.email"]


def test_the_whole_schema_is_checked_after_filling() -> None:
    schema = {
        "type": "object",
        "properties": {"email": {"type": "string", "format": "email"}},
        "minProperties": 2,
    }
    with pytest.raises(ExtractionIncomplete) as caught:
        extract("Write to jane@example.com.", schema)
    assert caught.value.missing == []
    assert caught.value.found == {"email": "jane@example.com"}
    assert "does not have enough properties" in str(caught.value)
    assert "OPENAI_API_KEY" in str(caught.value)


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "array", "items": {"type": "string"}},
        {"type": "object"},
        {"type": "object", "properties": {"email": {"type": "strin"}}},
    ],
)
def test_unusable_schemas_are_rejected(schema: dict[str, Any]) -> None:
    with pytest.raises(InvalidExtractionSchema):
        extract(INVOICE, schema)


def test_empty_text_is_rejected() -> None:
    with pytest.raises(ValueError, match="empty text"):
        extract("  ", INVOICE_SCHEMA)
