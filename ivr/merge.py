"""Merge fields in a message text: `Hello {name}, your appointment is on {date} at {time}.`

A template is parsed once (parse_template); its `fields` say which values each recipient needs, so an
upload whose columns lack one is refused before anything is queued (require_fields); render() fills it
per recipient.

Syntax: `{field}` where a field name is letters, digits, spaces, '_', '-' and '.', at most
MAX_FIELD_CHARS; `{{` is a literal '{' and `}}` a literal '}'. Anything else with a brace is refused with
InvalidMergeTemplate (status 511 INVALID TXT, the detail names the field and its position, 0-based
characters). Field names match columns without regard to case or repeated spaces: `{First  Name}`,
`{first name}` and a CSV column `First Name` are one field. `name`, `time` and `date` are the usual ones;
any CSV column (or group member field) is a field.

Values are normalised for speech: control and format characters (line breaks, tabs, zero-width and
bidirectional marks, private-use and unassigned code points) become spaces, runs of white space become
one space, and a value is cut to MAX_VALUE_CHARS. A value is inserted as text, never read as a template,
so braces in it stay braces.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from ivr.errors import CampaignRuleError

MAX_FIELD_CHARS: Final = 64
MAX_VALUE_CHARS: Final = 200
"""Longest value spoken for one field (a name or a date, not a paragraph)."""
STANDARD_FIELDS: Final = ("name", "time", "date")

_UNSPOKEN: Final = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"})
"""Unicode categories replaced by a space: controls, format marks, separators, surrogates, private and
unassigned code points."""
_FIELD_NAME: Final = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_ .\-]*")


class InvalidMergeTemplate(CampaignRuleError):
    """A message text whose braces cannot be read as merge fields."""

    code = 511
    status_text = "INVALID TXT"

    def __init__(self, detail: str = "", *, field: str = "", position: int = -1) -> None:
        super().__init__(detail)
        self.field = field
        self.position = position


class MissingMergeFields(CampaignRuleError):
    """Recipients' values (CSV columns, member fields) lack fields the message needs."""

    status_text = "ERROR: MISSING MERGE FIELD"

    def __init__(self, missing: Iterable[str] | str = ()) -> None:
        self.missing = (missing,) if isinstance(missing, str) else tuple(missing)
        super().__init__(f"the message needs merge field(s) {', '.join(self.missing)} that the recipients "
                         "do not have")


def field_key(name: str) -> str:
    """How field names and columns are matched: case-folded, white space collapsed, format characters (the
    byte-order mark a spreadsheet puts before a CSV's first column) dropped."""
    visible = "".join(c for c in name if unicodedata.category(c) != "Cf")
    return " ".join(visible.split()).casefold()


@dataclass(frozen=True)
class Field:
    key: str
    """field_key() of the name."""
    position: int


@dataclass(frozen=True)
class Template:
    """A parsed message text: literal strings and fields, in order."""

    parts: tuple[str | Field, ...]

    @property
    def fields(self) -> tuple[str, ...]:
        """Keys of the fields used, each once, in order of first use."""
        return tuple(dict.fromkeys(part.key for part in self.parts if isinstance(part, Field)))

    def source(self) -> str:
        """The canonical text of the template (braces escaped, field names as keys)."""
        return "".join(f"{{{part.key}}}" if isinstance(part, Field) else escape(part) for part in self.parts)

    def render(self, values: Mapping[str, object]) -> str:
        """The text for one recipient; `values` keyed by column or field name (any case)."""
        keyed = {field_key(str(name)): value for name, value in values.items()}
        missing = [key for key in self.fields if key not in keyed]
        if missing:
            raise MissingMergeFields(missing)
        return "".join(speech_value(keyed[part.key]) if isinstance(part, Field) else part
                       for part in self.parts)


def escape(text: str) -> str:
    """A literal text as template source: braces doubled."""
    return text.replace("{", "{{").replace("}", "}}")


def _refuse(text: str, position: int, why: str, field: str = "") -> InvalidMergeTemplate:
    excerpt = text[position:position + 20]
    return InvalidMergeTemplate(f"merge field at position {position} ({excerpt!r}): {why}", field=field,
                                position=position)


def _read_field(text: str, start: int) -> tuple[Field, int]:
    """The field whose '{' is at `start`; returns it and the index after its '}'."""
    close = text.find("}", start + 1)
    inner_open = text.find("{", start + 1)
    if close < 0 or (0 <= inner_open < close):
        raise _refuse(text, start, "'{' is not closed by '}' (write '{{' for a brace)")
    raw = text[start + 1:close]
    name = raw.strip()
    if not name:
        raise _refuse(text, start, "empty field name")
    if len(name) > MAX_FIELD_CHARS:
        raise _refuse(text, start, f"field name longer than {MAX_FIELD_CHARS} characters", field=name[:20])
    if not _FIELD_NAME.fullmatch(name):
        raise _refuse(text, start, f"field {name!r}: a name is letters, digits, spaces, '_', '-' and '.'",
                      field=name)
    return Field(field_key(name), start), close + 1


def parse_template(text: str) -> Template:
    """Parse a message text; InvalidMergeTemplate for any brace that is neither a field nor escaped."""
    parts: list[str | Field] = []
    literal: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char in "{}" and text.startswith(char * 2, i):
            literal.append(char)
            i += 2
        elif char == "}":
            raise _refuse(text, i, "a single '}' (write '}}' for a brace)")
        elif char == "{":
            field, i = _read_field(text, i)
            if literal:
                parts.append("".join(literal))
                literal = []
            parts.append(field)
        else:
            literal.append(char)
            i += 1
    if literal:
        parts.append("".join(literal))
    return Template(tuple(parts))


def require_fields(template: Template, available: Iterable[str]) -> None:
    """Refuse (MissingMergeFields) when `available` (CSV header, member fields) lacks a field."""
    have = {field_key(name) for name in available}
    missing = [key for key in template.fields if key not in have]
    if missing:
        raise MissingMergeFields(missing)


def speech_value(value: object) -> str:
    """A value as it is spoken: no control or format characters, one space between words, bounded."""
    text = "" if value is None else str(value)
    cleaned = "".join(" " if unicodedata.category(c) in _UNSPOKEN else c
                      for c in text)
    spoken = " ".join(cleaned.split())
    if len(spoken) > MAX_VALUE_CHARS:
        spoken = spoken[:MAX_VALUE_CHARS].rstrip()
    return spoken
