"""The GUI's session: a signed cookie holding who is logged in, a CSRF token and one flash message.

The cookie is `base64url(json).base64url(hmac-sha256)` under a secret kept in `<data_dir>/web-session.key`
(created with mode 0600 on first use, so every process of one node, and every node sharing the data
directory, accepts the same cookies). Nothing is stored server-side. A session names the login and a tag
of its password hash, so changing or resetting a password ends the other sessions of that login; a
disabled login is refused on its next request because the row is read every time.

Pure functions take the secret and the time as arguments; only `load_secret` touches the file system.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import os
import secrets
from dataclasses import dataclass, field, replace
from pathlib import Path

log = logging.getLogger(__name__)

COOKIE_NAME = "ivrgate_session"
MAX_AGE_S = 12 * 3600
"""A session ends 12 hours after login, whatever the activity."""
KEY_FILE = "web-session.key"
SECRET_BYTES = 32


@dataclass(frozen=True)
class SessionData:
    """What the cookie carries."""

    csrf: str
    """The token every POST form must echo (field `csrf`)."""
    user_id: int | None = None
    issued_at: int = 0
    """UNIX seconds of the login."""
    password_tag: str = ""
    """A keyed tag of the login's password hash at login time."""
    flash: tuple[str, str] | None = None
    """(level, text) to show once: level is ok or error."""
    dirty: bool = field(default=False, compare=False)
    """Changed during this request: the cookie must be sent again."""


def new_session(token: str | None = None) -> SessionData:
    """An anonymous session with a fresh CSRF token (also used on the login form)."""
    return SessionData(csrf=token or secrets.token_urlsafe(24), dirty=True)


def logged_in(session: SessionData, user_id: int, password_tag: str, now: int) -> SessionData:
    """The session after a login: a NEW CSRF token (a token seen before login is not trusted after it)."""
    return SessionData(new_session().csrf, user_id, now, password_tag, session.flash, dirty=True)


def with_flash(session: SessionData, level: str, text: str | None) -> SessionData:
    """The session carrying one message for the next page (None clears it)."""
    flash = None if text is None else (level, text[:300])
    if flash == session.flash:
        return session
    return replace(session, flash=flash, dirty=True)


def password_tag(secret: bytes, password_hash: str) -> str:
    """A short keyed digest of a password hash: a session survives only as long as the password does."""
    return hmac.new(secret, b"pw|" + password_hash.encode(), hashlib.sha256).hexdigest()[:16]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encode(session: SessionData, secret: bytes) -> str:
    """The cookie value of `session`."""
    document = {"c": session.csrf, "u": session.user_id, "t": session.issued_at, "p": session.password_tag,
                "f": list(session.flash) if session.flash else None}
    body = _b64(json.dumps(document, separators=(",", ":")).encode())
    mac = hmac.new(secret, body.encode(), hashlib.sha256).digest()
    return f"{body}.{_b64(mac)}"


def decode(value: str, secret: bytes, now: int) -> SessionData | None:
    """The session in a cookie value, or None when it is forged, malformed or expired."""
    body, _, signature = value.partition(".")
    try:
        expected = hmac.new(secret, body.encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(expected, _unb64(signature)):
            return None
        document = json.loads(_unb64(body))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None
    return _from_document(document, now)


def _from_document(document: object, now: int) -> SessionData | None:
    if not isinstance(document, dict) or not isinstance(document.get("c"), str):
        return None
    user_id, issued = document.get("u"), document.get("t")
    if not isinstance(issued, int) or (user_id is not None and not isinstance(user_id, int)):
        return None
    if user_id is not None and not 0 <= now - issued <= MAX_AGE_S:
        return None
    flash = document.get("f")
    flash_pair = (str(flash[0]), str(flash[1])) if isinstance(flash, list) and len(flash) == 2 else None
    return SessionData(document["c"], user_id, issued, str(document.get("p", "")), flash_pair)


def csrf_matches(session: SessionData, submitted: str) -> bool:
    """The form's token equals the session's (constant-time)."""
    return bool(submitted) and hmac.compare_digest(session.csrf.encode(), submitted.encode())


def load_secret(data_dir: Path) -> bytes:
    """The signing secret: `<data_dir>/web-session.key`, created (0600, atomically) when missing."""
    path = Path(data_dir) / KEY_FILE
    try:
        return _read_key(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{KEY_FILE}.{os.getpid()}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as sink:
        sink.write(secrets.token_hex(SECRET_BYTES))
    try:
        os.link(temporary, path)  # the first process to create it wins; the others read its key
        log.info("created the GUI session key %s", path)
    except FileExistsError:
        pass
    finally:
        temporary.unlink()
    return _read_key(path)


def _read_key(path: Path) -> bytes:
    text = path.read_text().strip()
    if len(text) < 32:
        raise ValueError(f"{path}: the GUI session key is shorter than 32 characters")
    return text.encode()
