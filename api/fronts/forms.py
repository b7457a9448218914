"""The inputs of the seed's routes, read from raw form, query or JSON values into normalised models.

Routes hand over what the client sent as a mapping of field name to value (strings from forms and query
strings; strings, numbers, booleans and lists from JSON; bytes or an Upload for a file). Unknown fields are
ignored, since old clients send extras. A bad field raises the gateway error a legacy client expects.

A legacy client sees one code, so the fields are checked in a fixed order and the first failure wins:
  1. the body itself (matrix_vtts: not a JSON object -> 520)
  2. username (510), then password (512)
  3. recipients: phone, group (513; group errors 500 ERROR: GROUP NOT FOUND)
  4. content: txt (511), voicefile (514, or 500 ERROR: VOICE FILE TOO LARGE), voiceurl (514, or 500
     ERROR: VOICE URL REFUSED), msg (520, 511 for a bad text item), id (500 ERROR: MESSAGE NOT FOUND)
  5. options, in the order callerid, tts, response, repeat, language, gender, type (500 ERROR: INVALID ...)

    form = parse_form(MatrixTtsForm, {"username": "u@example.com", "password": "pw", "phone": "12506063167",
                                      "txt": "Hello"})
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationInfo, model_validator

from api.core.checks import FormLimits, check_txt, check_url, has_control
from api.core.errors import (
    GroupNotFound,
    InvalidParameter,
    InvalidPin,
    InvalidTxt,
    NoVoiceFile,
    ParseError,
    VoiceFileTooLarge,
)
from api.core.phones import parse_caller_id, parse_phone, parse_recipients, split_entries
from coded.errors import CodedError
from ivr.errors import InvalidPromptSpec
from ivr.prompt import PromptSpec, TextSegment, UrlSegment, make_voice, spec_from_vtts
from store.errors import InvalidPassword, InvalidUsername, MessageNotFound
from tts.base import GENDERS, LANGUAGES, Gender, Language

RateType = Literal["sms", "voice", "tts"]
RATE_TYPES: tuple[RateType, ...] = ("sms", "voice", "tts")

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"", "0", "false", "no", "off"})
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_MESSAGE_ID = re.compile(r"[A-Za-z0-9_-]+")


@dataclass(frozen=True)
class Upload:
    """A file part of a multipart form, as the route read it."""

    filename: str
    data: bytes
    content_type: str = ""


class _Reader:
    """Reads one field at a time from the raw mapping, raising the field's own error."""

    def __init__(self, data: Mapping[str, Any], limits: FormLimits) -> None:
        self.data = data
        self.limits = limits

    def text(self, name: str, error: Callable[[str], CodedError]) -> str | None:
        """The field as a string (None when absent); numbers and booleans as a form would send them."""
        value = self.data.get(name)
        if value is None:
            return None
        if isinstance(value, bool):
            value = "1" if value else "0"
        elif isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
            value = str(int(value))
        if not isinstance(value, str):
            raise error(f"{name} must be a string, not {type(value).__name__}")
        if _SURROGATE.search(value):
            raise error(f"{name} holds an unpaired surrogate")
        return value

    def username(self) -> str:
        value = (self.text("username", InvalidUsername) or "").strip()
        if not value:
            raise InvalidUsername("username is missing")
        if len(value) > self.limits.max_username_chars:
            raise InvalidUsername(f"username is longer than {self.limits.max_username_chars} characters")
        if has_control(value) or any(ch.isspace() for ch in value):
            raise InvalidUsername("username holds whitespace or control characters")
        return value

    def password(self) -> str:
        value = self.text("password", InvalidPassword) or ""
        if not value:
            raise InvalidPassword("password is missing")
        if len(value) > self.limits.max_password_chars:
            raise InvalidPassword(f"password is longer than {self.limits.max_password_chars} characters")
        return value

    def phone_list(self) -> str:
        """`phone` as one comma list; a JSON list or repeated query field is joined."""
        value = self.data.get("phone")
        if isinstance(value, list | tuple) and all(isinstance(item, str | int) for item in value):
            return ",".join(str(item) for item in value if not isinstance(item, bool))
        return self.text("phone", InvalidPin) or ""

    def recipients(self, *, allow_empty: bool = False) -> tuple[str, ...]:
        return parse_recipients(self.phone_list(), self.limits.phones, allow_empty=allow_empty)

    def single_phone(self) -> str:
        entries = split_entries(self.phone_list())
        if len(entries) != 1:
            raise InvalidPin("exactly one phone number is expected" if entries else "no phone number given")
        return parse_phone(entries[0], self.limits.phones)

    def group(self) -> str | None:
        value = (self.text("group", GroupNotFound) or "").strip()
        if not value:
            return None
        if len(value) > self.limits.max_group_chars or has_control(value):
            raise GroupNotFound(f"no such group: {value[:40]!r}")
        return value

    def txt(self, max_chars: int) -> str:
        return check_txt(self.text("txt", InvalidTxt), max_chars)

    def voicefile(self) -> Upload:
        value = self.data.get("voicefile")
        if isinstance(value, bytes | bytearray):
            value = Upload("", bytes(value))
        if not isinstance(value, Upload):
            raise NoVoiceFile("no voicefile uploaded")
        if not value.data:
            raise NoVoiceFile("voicefile is empty")
        if len(value.data) > self.limits.max_voice_bytes:
            raise VoiceFileTooLarge(f"{len(value.data)} bytes, more than {self.limits.max_voice_bytes}")
        return value

    def voiceurl(self) -> str:
        value = (self.text("voiceurl", NoVoiceFile) or "").strip()
        if not value:
            raise NoVoiceFile("voiceurl is missing")
        return check_url(value, self.limits.max_url_chars)

    def message_id(self) -> str:
        value = (self.text("id", MessageNotFound) or "").strip()
        if not value or len(value) > self.limits.max_id_chars or not _MESSAGE_ID.fullmatch(value):
            raise MessageNotFound(f"not a message ID: {value[:40]!r}")
        return value.lower()

    def callerid(self, *, sms: bool) -> str | None:
        return parse_caller_id(self.text("callerid", _invalid("callerid")) or "", self.limits.phones, sms=sms)

    def flag(self, name: str) -> bool:
        value = (self.text(name, _invalid(name)) or "").strip().lower()
        if value in _TRUE:
            return True
        if value in _FALSE:
            return False
        raise InvalidParameter(name, f"{name} must be 1 or 0, not {value[:20]!r}")

    def repeat(self) -> int:
        if isinstance(self.data.get("repeat"), bool):
            raise InvalidParameter("repeat", "repeat must be a number")
        value = (self.text("repeat", _invalid("repeat")) or "").strip()
        if not value:
            return 0
        digits = value.lstrip("0") or "0"  # int() of more than 4,300 digits raises: count them first
        limit = self.limits.max_repeat
        if not (value.isascii() and value.isdigit()) or len(digits) > len(str(limit)) or int(digits) > limit:
            raise InvalidParameter("repeat", f"repeat must be 0..{limit}, not {value[:20]!r}")
        return int(digits)

    def language(self) -> Language:
        return _choice(self, "language", LANGUAGES, "us")

    def gender(self) -> Gender:
        return _choice(self, "gender", GENDERS, "female")

    def rate_type(self) -> RateType:
        return _choice(self, "type", RATE_TYPES, "sms")


_T = TypeVar("_T", bound=str)


def _choice(reader: _Reader, name: str, choices: tuple[_T, ...], default: _T) -> _T:
    value = (reader.text(name, _invalid(name)) or "").strip().lower()
    if not value:
        return default
    for choice in choices:
        if value == choice:
            return choice
    raise InvalidParameter(name, f"{name} must be one of {', '.join(choices)}, not {value[:20]!r}")


def _invalid(name: str) -> Callable[[str], CodedError]:
    return lambda detail: InvalidParameter(name, detail)


class LegacyForm(BaseModel):
    """Base of the route models: validation is `_normalise`, run on the raw mapping in precedence order."""

    model_config = ConfigDict(frozen=True, extra="ignore", strict=True)

    @model_validator(mode="before")
    @classmethod
    def _read(cls, data: Any, info: ValidationInfo) -> Any:
        if not isinstance(data, Mapping):
            raise ParseError(f"form data must be a mapping, not {type(data).__name__}")
        context = info.context if isinstance(info.context, Mapping) else {}
        limits = context.get("limits", FormLimits())
        return cls._normalise(_Reader(data, limits))

    @classmethod
    def _normalise(cls, r: _Reader) -> dict[str, Any]:
        raise NotImplementedError


class AccountForm(LegacyForm):
    """balance: credentials only."""

    username: str
    password: str

    @classmethod
    def _normalise(cls, r: _Reader) -> dict[str, Any]:
        return {"username": r.username(), "password": r.password()}


BalanceForm = AccountForm


class MatrixForm(AccountForm):
    """matrix: an SMS to `phone` (comma list) and/or a `group`; `tts=1` falls back to a TTS call."""

    phones: tuple[str, ...]
    group: str | None
    txt: str
    callerid: str | None
    tts: bool

    @classmethod
    def _normalise(cls, r: _Reader) -> dict[str, Any]:
        out = super()._normalise(r)
        group_given = bool((r.text("group", GroupNotFound) or "").strip())
        out["phones"] = r.recipients(allow_empty=group_given)
        out["group"] = r.group()
        out["txt"] = r.txt(r.limits.max_sms_chars)
        out["callerid"] = r.callerid(sms=True)
        out["tts"] = r.flag("tts")
        return out


class _VoiceJobForm(AccountForm):
    """What every voice job has: recipients, caller ID, response and repeat."""

    phones: tuple[str, ...]
    callerid: str | None
    response: bool
    repeat: int

    @classmethod
    def _content(cls, r: _Reader) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def _normalise(cls, r: _Reader) -> dict[str, Any]:
        out = super()._normalise(r)
        out["phones"] = r.recipients()
        out.update(cls._content(r))
        out["callerid"] = r.callerid(sms=False)
        out["response"] = r.flag("response")
        out["repeat"] = r.repeat()
        return out


class MatrixTtsForm(_VoiceJobForm):
    """matrix_tts: `txt` spoken in `language` (us|es, default us) by a `gender` voice (default female)."""

    txt: str
    language: Language
    gender: Gender

    @classmethod
    def _content(cls, r: _Reader) -> dict[str, Any]:
        return {"txt": r.txt(r.limits.max_tts_chars)}

    @classmethod
    def _normalise(cls, r: _Reader) -> dict[str, Any]:
        return {**super()._normalise(r), "language": r.language(), "gender": r.gender()}


class MatrixVoiceForm(_VoiceJobForm):
    """matrix_voice: an uploaded `voicefile` (multipart)."""

    voicefile: Upload

    @classmethod
    def _content(cls, r: _Reader) -> dict[str, Any]:
        return {"voicefile": r.voicefile()}


class MatrixVoicewForm(_VoiceJobForm):
    """matrix_voicew: a `voiceurl` fetched once at submission."""

    voiceurl: str

    @classmethod
    def _content(cls, r: _Reader) -> dict[str, Any]:
        return {"voiceurl": r.voiceurl()}


class MatrixVttsForm(_VoiceJobForm):
    """matrix_vtts: a JSON body whose `msg` list mixes voice URLs and texts, played in order."""

    msg: tuple[str, ...]
    language: Language
    gender: Gender

    @classmethod
    def _content(cls, r: _Reader) -> dict[str, Any]:
        msg = r.data.get("msg")
        try:
            spec = spec_from_vtts(msg)
        except InvalidPromptSpec as exc:
            raise ParseError(exc.detail) from None
        for segment in spec.segments:
            if isinstance(segment, TextSegment):
                check_txt(segment.text, r.limits.max_tts_chars)
            elif isinstance(segment, UrlSegment):
                check_url(segment.url, r.limits.max_url_chars)
        return {"msg": tuple(_item_text(segment) for segment in spec.segments)}

    @classmethod
    def _normalise(cls, r: _Reader) -> dict[str, Any]:
        return {**super()._normalise(r), "language": r.language(), "gender": r.gender()}

    @classmethod
    def from_body(cls, body: bytes | str, limits: FormLimits | None = None) -> MatrixVttsForm:
        """Parse the request body; ParseError (520) unless it is a JSON object."""
        try:
            document = json.loads(body)
        except (ValueError, RecursionError) as exc:
            raise ParseError(f"body is not JSON: {exc}") from None
        if not isinstance(document, dict):
            raise ParseError("body must be a JSON object")
        return parse_form(cls, document, limits)

    def prompt_spec(self) -> PromptSpec:
        """The prompt to render: URL items fetched, text items spoken in the form's voice."""
        return spec_from_vtts(list(self.msg), make_voice(self.language, self.gender))


def _item_text(segment: object) -> str:
    if isinstance(segment, TextSegment):
        return segment.text
    if isinstance(segment, UrlSegment):
        return segment.url
    raise ParseError("msg items are texts and URLs")


class MatrixStatusForm(AccountForm):
    """matrix_status: the status of message `id`."""

    id: str

    @classmethod
    def _normalise(cls, r: _Reader) -> dict[str, Any]:
        return {**super()._normalise(r), "id": r.message_id()}


class CarrierForm(AccountForm):
    """carrier: one `phone` to look up."""

    phone: str

    @classmethod
    def _normalise(cls, r: _Reader) -> dict[str, Any]:
        return {**super()._normalise(r), "phone": r.single_phone()}


class SmsRateForm(LegacyForm):
    """sms_rate: the rate to one `phone`, of `type` sms (default), voice or tts; no account needed."""

    phone: str
    type: RateType

    @classmethod
    def _normalise(cls, r: _Reader) -> dict[str, Any]:
        return {"phone": r.single_phone(), "type": r.rate_type()}


_F = TypeVar("_F", bound=LegacyForm)


def parse_form(form: type[_F], data: Mapping[str, Any], limits: FormLimits | None = None) -> _F:
    """Validate raw route input into `form`, raising the gateway error of the first bad field."""
    return form.model_validate(data, context={"limits": limits or FormLimits()})
