"""The SMTP gateway's mail reader (pure): a mail as received -> the legacy form fields it stands for.

The seed's SMTP gateway takes a text mail whose body holds keyword fields and one message, e.g.

    username:user78@hotmail.com password:mypass883 phone:12501238585 callerid:13451238585 sms:Hello Adam

`parse_mail` turns the raw bytes into a `MailRequest`: the kind (sms, tts or voiceurl) and the fields as
the HTTP form would carry them (`txt` or `voiceurl` for the message), so the SMTP front validates them
with the same form models (api.fronts.forms) and submits them through the same Gateway calls as the HTTP API.

Reading a mail (docs/smtp.md):
  1. MIME: the first inline text/plain part (so multipart/alternative uses its text part); HTML alone is
     refused (HtmlOnlyMail), a mail without any text part too (MailNotText).
  2. Transfer encoding (quoted-printable, base64, 7/8bit) is undone; the charset is the declared one
     (UTF-8, ISO-8859-1, windows-1252, ...). An undeclared charset means US-ASCII (RFC 2045): an 8-bit
     body without a charset, an unknown charset or bytes invalid in the declared one are refused
     (MailCharsetError) rather than guessed, so no SMS or call ever says the wrong characters.
  3. format=flowed text is unwrapped (RFC 3676, with DelSp); the signature after a `-- ` line is dropped.
  4. Keywords are lowercase and case-sensitive, fields may share a line (the seed's examples) or stand on
     their own lines, a field's value is one word (`phone:123` or `phone: 123`); the message keyword
     (`sms:`, `tts:`, `voiceurl:`) takes the rest of its line, and exactly one is allowed.

Structural faults are raised here, before any credential is checked: an uppercase keyword (the field's
own error, e.g. `PHONE:` -> 513), a field given twice, text that is no keyword (MailNotUnderstood), no
message or two messages, a message that continues on the next line (511, the seed's 'one line' rule).
Everything else (missing or bad values) is the form's business, in the HTTP API's order.
"""

from __future__ import annotations

import email.errors
import email.parser
import email.policy
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.message import Message
from typing import Literal

from api.core.checks import FormLimits
from api.core.errors import GatewayError, InvalidParameter, InvalidPin, InvalidTxt, NoVoiceFile
from api.fronts.forms import AccountForm, MatrixForm, MatrixTtsForm, MatrixVoicewForm, parse_form
from coded.errors import CodedError
from store.errors import InvalidPassword, InvalidUsername

MailKind = Literal["sms", "tts", "voiceurl"]
MESSAGE_KEYWORDS: tuple[MailKind, ...] = ("sms", "tts", "voiceurl")
FIELD_KEYWORDS = ("username", "password", "phone", "callerid", "response", "language", "gender", "repeat")
"""Keywords whose value is one word; the optional TTS fields of the HTTP API are among them."""
SIGNATURE_LINES = frozenset({"-- ", "--"})
"""The signature separator (RFC 3676 `-- `; `--` too, for editors that strip the trailing space)."""

_TOKEN = re.compile(r"\S+")
_KEYWORD = re.compile(r"([A-Za-z]+):(.*)", re.DOTALL)
_MESSAGE_IN_TEXT = re.compile(r"(?<!\S)(sms|tts|voiceurl):")
_ALL_KEYWORDS = frozenset((*FIELD_KEYWORDS, *MESSAGE_KEYWORDS))
_PARSER_FAILURES = (email.errors.MessageError, LookupError, ValueError, UnicodeError, IndexError)
"""What the standard library's MIME code may raise on a malformed mail."""


class MailNotUnderstood(GatewayError):
    """The body holds text that is no keyword field, or its MIME structure cannot be read."""

    status_text = "ERROR: MAIL NOT UNDERSTOOD"


class HtmlOnlyMail(GatewayError):
    """The mail has an HTML body and no text/plain part: the seed's gateway takes text mail only."""

    status_text = "ERROR: HTML MAIL NOT ACCEPTED, SEND TEXT"


class MailNotText(GatewayError):
    """The mail has no text part at all (e.g. only an attachment)."""

    status_text = "ERROR: NO TEXT PART IN MAIL"


class MailCharsetError(GatewayError):
    """The text part's bytes cannot be read as text: undeclared 8-bit, unknown or violated charset."""

    status_text = "ERROR: MAIL CHARSET NOT READABLE"


_FIELD_ERRORS: dict[str, Callable[[str], CodedError]] = {
    "username": InvalidUsername,
    "password": InvalidPassword,
    "phone": InvalidPin,
    "sms": InvalidTxt,
    "tts": InvalidTxt,
    "voiceurl": NoVoiceFile,
}


def field_error(keyword: str, detail: str) -> CodedError:
    """The error a legacy client gets for a bad `keyword` (the HTTP form's error of that field)."""
    factory = _FIELD_ERRORS.get(keyword)
    return factory(detail) if factory is not None else InvalidParameter(keyword, detail)


FormOf = MatrixForm | MatrixTtsForm | MatrixVoicewForm
_FORMS: dict[MailKind, type[FormOf]] = {"sms": MatrixForm, "tts": MatrixTtsForm, "voiceurl": MatrixVoicewForm}


@dataclass(frozen=True)
class MailRequest:
    """One mail's submission: its kind and the legacy form fields it carries."""

    kind: MailKind
    """sms -> the `matrix` route, tts -> `matrix_tts`, voiceurl -> `matrix_voicew`."""
    fields: Mapping[str, str]
    """Form field -> value: the keyword fields as given, and `txt` (sms, tts) or `voiceurl`."""

    def account(self, limits: FormLimits | None = None) -> AccountForm:
        """The credentials, checked like the HTTP forms' (510, 512)."""
        return parse_form(AccountForm, self.fields, limits)

    def form(self, limits: FormLimits | None = None) -> FormOf:
        """The whole submission validated by the HTTP route's form model (first bad field wins)."""
        return parse_form(_FORMS[self.kind], self.fields, limits)


def parse_mail(data: bytes) -> MailRequest:
    """Read a received mail (RFC 5322 bytes) into its submission; a CodedError says why it cannot be."""
    return parse_body(mail_text(data))


# --- MIME ----------------------------------------------------------------------------------------------


def mail_text(data: bytes) -> str:
    """The body text to parse: text part chosen, transfer encoding and charset undone, format=flowed
    unwrapped, line ends made LF, the signature dropped."""
    try:
        message = email.parser.BytesParser(policy=email.policy.compat32).parsebytes(data)
        part = text_part(message)
        payload = part.get_payload(decode=True)
        charset = part.get_content_charset()
        flowed = (part.get_param("format") or "") == "flowed"
        delsp = (part.get_param("delsp") or "") == "yes"
    except _PARSER_FAILURES as exc:
        raise MailNotUnderstood(f"the MIME structure cannot be read: {type(exc).__name__}") from None
    raw = payload if isinstance(payload, bytes) else b""
    lines = decode_text(raw, charset).replace("\r\n", "\n").replace("\r", "\n").split("\n")
    lines = unflow(lines, delsp) if flowed else lines
    return "\n".join(drop_signature(lines))


def text_part(message: Message) -> Message:
    """The first text/plain part that is not an attachment; HtmlOnlyMail or MailNotText otherwise."""
    html = False
    for part in message.walk():
        if part.is_multipart():
            continue
        content_type = part.get_content_type()
        if part.get_content_disposition() == "attachment":
            continue
        if content_type == "text/plain":
            return part
        html = html or content_type == "text/html"
    if html:
        raise HtmlOnlyMail("the mail has only an HTML body; send it as plain text")
    raise MailNotText("the mail has no text/plain part")


def decode_text(data: bytes, charset: str | None) -> str:
    """`data` in its declared charset, strictly; no charset means US-ASCII (RFC 2045), never a guess."""
    if charset is None:
        if data.isascii():
            return data.decode("ascii")
        raise MailCharsetError("8-bit text without a declared charset; declare one, e.g. charset=UTF-8")
    try:
        return data.decode(charset)
    except LookupError:
        raise MailCharsetError(f"unknown charset {charset[:40]!r}") from None
    except (UnicodeError, ValueError) as exc:
        raise MailCharsetError(f"the text is not valid {charset[:40]}: {exc}"[:200]) from None


def unflow(lines: list[str], delsp: bool = False) -> list[str]:
    """Join format=flowed lines (RFC 3676): a line ending in a space continues on the next one.

    Space-stuffing is undone; the signature separator `-- ` is never a soft break; with DelSp=yes the
    space before a soft break belongs to the wrapping and is removed."""
    out: list[str] = []
    pending = ""
    for line in lines:
        if line.startswith(" "):
            line = line[1:]
        if line.endswith(" ") and line != "-- ":
            pending += line[:-1] if delsp else line
            continue
        out.append(pending + line)
        pending = ""
    if pending:
        out.append(pending)
    return out


def drop_signature(lines: list[str]) -> list[str]:
    """The lines before the first signature separator."""
    for index, line in enumerate(lines):
        if line in SIGNATURE_LINES:
            return lines[:index]
    return lines


# --- the body ------------------------------------------------------------------------------------------


@dataclass
class _Body:
    """What has been read of a body so far."""

    fields: dict[str, str]
    kind: MailKind | None = None
    message: str = ""
    message_line: int = 0


def parse_body(text: str) -> MailRequest:
    """Read the keyword fields and the one message of a body text (lines separated by LF)."""
    body = _Body({})
    for number, line in enumerate(text.split("\n"), start=1):
        tokens = list(_TOKEN.finditer(line))
        if not tokens:
            continue
        if body.kind is not None and not _is_keyword(tokens[0].group(0)):
            raise InvalidTxt(
                f"the {body.kind}: text goes on in line {number} (after line {body.message_line}); "
                "the message must be written in one line"
            )
        _read_line(body, line, tokens, number)
    if body.kind is None:
        raise InvalidTxt("the mail holds no message: sms:, tts: or voiceurl: is missing")
    content = "voiceurl" if body.kind == "voiceurl" else "txt"
    return MailRequest(body.kind, {**body.fields, content: body.message})


def _is_keyword(token: str) -> bool:
    match = _KEYWORD.fullmatch(token)
    return match is not None and match.group(1).lower() in _ALL_KEYWORDS


def _read_line(body: _Body, line: str, tokens: list[re.Match[str]], number: int) -> None:
    """Read the fields of one line; a message keyword takes the rest of the line."""
    index = 0
    while index < len(tokens):
        token = tokens[index]
        match = _KEYWORD.fullmatch(token.group(0))
        name = match.group(1) if match is not None else ""
        if match is None or name.lower() not in _ALL_KEYWORDS:
            raise MailNotUnderstood(f"line {number}: {token.group(0)[:40]!r} is not a keyword field")
        if name not in _ALL_KEYWORDS:
            raise field_error(name.lower(), f"keywords are lowercase: {name[:20]}: should be {name.lower()}:")
        if name in MESSAGE_KEYWORDS:
            _read_message(body, name, line[token.start() + len(name) + 1:], number)
            return
        value = match.group(2)
        if not value and index + 1 < len(tokens) and not _is_keyword(tokens[index + 1].group(0)):
            index += 1  # `phone: 123`: the value is the next word
            value = tokens[index].group(0)
        if name in body.fields:
            raise field_error(name, f"{name}: is given twice")
        body.fields[name] = value
        index += 1


def _read_message(body: _Body, keyword: str, text: str, number: int) -> None:
    if body.kind is not None:
        raise InvalidTxt(f"two messages in one mail ({body.kind}: and {keyword}:); send one per mail")
    other = _MESSAGE_IN_TEXT.search(text)
    if other is not None:
        raise InvalidTxt(f"two messages in one mail ({keyword}: and {other.group(1)}:); send one per mail")
    body.kind = _kind(keyword)
    body.message = text.strip()
    body.message_line = number


def _kind(keyword: str) -> MailKind:
    for kind in MESSAGE_KEYWORDS:
        if kind == keyword:
            return kind
    raise InvalidTxt(f"{keyword}: is not a message keyword")
