"""ivr.merge: merge fields in a message text."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coded.errors import CodedError
from ivr.errors import CampaignRuleError
from ivr.merge import (
    MAX_VALUE_CHARS,
    Field,
    InvalidMergeTemplate,
    MissingMergeFields,
    Template,
    escape,
    field_key,
    parse_template,
    require_fields,
    speech_value,
)
from tests.unit.ivr.doc_examples import example_output

REMINDER = "Hello {name}, your appointment is on {date} at {time}. Press 1 to confirm, {name}."


def test_fields_are_listed_once_in_order_of_use() -> None:
    assert parse_template(REMINDER).fields == ("name", "date", "time")


def test_render_per_recipient() -> None:
    template = parse_template(REMINDER)
    text = template.render({"Name": "Ada Lovelace", "date": "Tuesday 8 December", "TIME": "10:30"})
    assert text == ("Hello Ada Lovelace, your appointment is on Tuesday 8 December at 10:30. "
                    "Press 1 to confirm, Ada Lovelace.")


def test_any_column_is_a_field_matched_without_case_or_extra_spaces() -> None:
    template = parse_template("Dear {First  Name} from {clinic.branch-2}")
    assert template.fields == ("first name", "clinic.branch-2")
    assert template.render({"first name": "Grace", "Clinic.Branch-2": "Main St"}) == "Dear Grace from Main St"


def test_a_spreadsheet_byte_order_mark_does_not_hide_the_first_column() -> None:
    template = parse_template("Hi {name}")
    require_fields(template, ["\ufeffName", "phone"])
    assert template.render({"\ufeffName": "Ada"}) == "Hi Ada"


def test_escaped_braces_are_literal() -> None:
    template = parse_template("Code {{1234}} for {name}}}")
    assert template.fields == ("name",)
    assert template.render({"name": "Ada"}) == "Code {1234} for Ada}"
    assert parse_template("{{name}}").render({}) == "{name}"


def test_a_text_without_fields_is_itself() -> None:
    assert parse_template("Your order has shipped.").render({}) == "Your order has shipped."
    assert parse_template("").fields == ()


@pytest.mark.parametrize(("text", "position", "fragment"), [
    ("Hello {name", 6, "'{' is not closed"),
    ("Hello {na{me}", 6, "'{' is not closed"),
    ("Hello name}", 10, "a single '}'"),
    ("Hello {}", 6, "empty field name"),
    ("Hello {  }", 6, "empty field name"),
    ("Hello {name:>10}", 6, "field 'name:>10'"),
    ("Hello {0!r}", 6, "field '0!r'"),
    ("Hi {" + "x" * 65 + "}", 3, "longer than 64"),
    ("{{{", 2, "'{' is not closed"),
])
def test_bad_braces_are_refused_with_field_and_position(text: str, position: int, fragment: str) -> None:
    with pytest.raises(InvalidMergeTemplate) as caught:
        parse_template(text)
    error = caught.value
    assert error.position == position
    assert f"position {position}" in error.detail and fragment in error.detail
    assert error.status == (511, "INVALID TXT")
    assert isinstance(error, CampaignRuleError) and isinstance(error, CodedError)


def test_the_refusal_names_the_field() -> None:
    with pytest.raises(InvalidMergeTemplate) as caught:
        parse_template("Hi {first name}, {due:date}")
    assert caught.value.field == "due:date"


def test_an_upload_missing_a_column_is_refused_before_rendering() -> None:
    template = parse_template(REMINDER)
    require_fields(template, ["phone", "NAME", "date", "time"])
    with pytest.raises(MissingMergeFields) as caught:
        require_fields(template, ["phone", "name"])
    assert caught.value.missing == ("date", "time")
    assert "date, time" in caught.value.detail
    assert caught.value.status_text == "ERROR: MISSING MERGE FIELD"
    with pytest.raises(MissingMergeFields):
        template.render({"name": "Ada"})


@pytest.mark.parametrize(("value", "spoken"), [
    ("Ada\nLovelace", "Ada Lovelace"),
    ("  Ada\t\tLovelace \r\n", "Ada Lovelace"),
    ("Ada\x00\x07Lovelace", "Ada Lovelace"),
    ("Ada\u200bLovelace\u202e", "Ada Lovelace"),
    ("Ada\u2028Lovelace", "Ada Lovelace"),
    ("{name}", "{name}"),
    (42, "42"),
    (None, ""),
    ("é ü ß 日本", "é ü ß 日本"),
])
def test_values_are_normalised_for_speech(value: object, spoken: str) -> None:
    assert speech_value(value) == spoken


def test_values_are_bounded() -> None:
    assert speech_value("a" * 500) == "a" * MAX_VALUE_CHARS
    assert speech_value("word " * 100) == ("word " * 40).strip()


def test_a_value_is_never_read_as_a_template() -> None:
    assert parse_template("Hi {name}").render({"name": "{time} }{"}) == "Hi {time} }{"


# ---------------------------------------------------------------- properties

names = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,15}", fullmatch=True)
literals = st.text(max_size=15)
pieces = st.lists(st.one_of(literals.map(lambda s: ("text", s)), names.map(lambda n: ("field", n))),
                  max_size=8)


def _source(parts: list[tuple[str, str]]) -> str:
    return "".join(f"{{{value}}}" if kind == "field" else escape(value) for kind, value in parts)


@given(parts=pieces)
def test_rendering_with_the_templates_own_names_round_trips(parts: list[tuple[str, str]]) -> None:
    template = parse_template(_source(parts))
    assert template.fields == tuple(dict.fromkeys(field_key(v) for k, v in parts if k == "field"))
    # each field rendered as its own name gives the text with the fields written out
    rendered = template.render({key: key for key in template.fields})
    assert rendered == "".join(field_key(v) if k == "field" else v for k, v in parts)
    # and the canonical source parses to the same template
    assert parse_template(template.source()) == template


@given(text=st.text())
def test_escape_round_trips(text: str) -> None:
    template = parse_template(escape(text))
    assert template.fields == ()
    assert template.render({}) == text


@settings(max_examples=300)
@given(text=st.text(alphabet=st.sampled_from("{}ab :_\n"), max_size=20) | st.text(max_size=30),
       values=st.dictionaries(st.text(max_size=8), st.one_of(st.text(), st.integers(), st.none()),
                              max_size=4))
def test_only_the_coded_errors_escape(text: str, values: dict[str, object]) -> None:
    try:
        template = parse_template(text)
    except InvalidMergeTemplate as error:
        assert 0 <= error.position < len(text) and text[error.position] in "{}"
        return
    assert isinstance(template, Template)
    assert all(isinstance(part, str | Field) for part in template.parts)
    try:
        rendered = template.render(values)
    except MissingMergeFields as error:
        assert error.missing and set(error.missing) <= set(template.fields)
        return
    assert isinstance(rendered, str)


@given(value=st.text())
def test_speech_values_have_no_control_characters_and_are_bounded(value: str) -> None:
    spoken = speech_value(value)
    assert len(spoken) <= MAX_VALUE_CHARS
    assert spoken == spoken.strip() and "  " not in spoken
    assert all(c == " " or c.isprintable() for c in spoken)


def test_the_documented_example_prints_what_the_doc_says() -> None:
    got, shown = example_output("Merge fields")
    assert got == shown


def test_a_single_missing_field_is_named_whole() -> None:
    assert MissingMergeFields("date").missing == ("date",)
    assert InvalidMergeTemplate("why").position == -1
