"""The input rules the gateway and its fronts share: the bounds on a request's fields (FormLimits, nested
in the settings as `forms`) and the checks of a message text and of a voice URL. The fronts' parsers
(api.fronts.forms, SMTP) and the service apply the same functions, so a text or URL refused by one is
refused by all.

    check_txt("Disk full\r\n", 160)          # -> "Disk full"
    check_url("https://example.com/a.mp3", FormLimits().max_url_chars)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from api.core.errors import InvalidTxt
from api.core.phones import PhoneSettings
from ivr.errors import UrlRefused
from ivr.flow import MAX_REPEAT

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029]")
"""Control characters refused in texts: all but tab, LF and CR."""
_ANY_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


@dataclass(frozen=True)
class FormLimits:
    """Bounds on legacy input (api.core.settings may nest it as `forms`)."""

    phones: PhoneSettings = field(default_factory=PhoneSettings)
    max_username_chars: int = 254
    max_password_chars: int = 1024
    """Bounds the argon2 input a client can make the gateway hash."""
    max_sms_chars: int = 1600
    max_tts_chars: int = 2000
    max_repeat: int = MAX_REPEAT
    max_voice_bytes: int = 10 * 1024 * 1024
    max_url_chars: int = 2048
    max_group_chars: int = 64
    max_id_chars: int = 64


def has_control(text: str) -> bool:
    """Whether `text` holds any control character (tab and line breaks included)."""
    return _ANY_CONTROL.search(text) is not None


def check_txt(value: str | None, max_chars: int) -> str:
    """A message text: stripped, CR LF and CR made LF; InvalidTxt (511) when missing, empty, longer
    than `max_chars` or holding a control character other than tab and line breaks."""
    text = (value or "").replace("\r\n", "\n").replace("\r", "\n").strip()
    if not text:
        raise InvalidTxt("txt is missing or empty")
    if len(text) > max_chars:
        raise InvalidTxt(f"txt is {len(text)} characters, more than {max_chars}")
    bad = _CONTROL.search(text)
    if bad:
        raise InvalidTxt(f"txt holds control character U+{ord(bad.group(0)):04X}")
    return text


def check_url(value: str, max_chars: int) -> str:
    """A voice URL that is worth fetching: absolute http(s) with a host, no whitespace; else UrlRefused."""
    if len(value) > max_chars or has_control(value) or any(ch.isspace() for ch in value):
        raise UrlRefused(f"not a usable URL: {value[:60]!r}")
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError:
        raise UrlRefused(f"not a usable URL: {value[:60]!r}") from None
    if parts.scheme.lower() not in ("http", "https") or not host:
        raise UrlRefused(f"only http and https URLs with a host are fetched: {value[:60]!r}")
    return value
