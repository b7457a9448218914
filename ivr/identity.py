"""Who a call says it is from: the From header, P-Asserted-Identity and Privacy (docs/sip.md, 'Caller ID').

Pure (no pjsua2): the dialer checks a caller ID with it before anything is dialled, and the engine
(`ivr.sip_setup.call_param`) builds the headers with it.

Two modes (`SipSettings.callerid_mode`):
- `from`: the caller ID is the From user; the From domain stays our SIP domain (the registrar's, else
  the trunk's, else our own address), so a PBX that checks the From domain still knows the call.
- `pai`: From is the account itself (the auth user at our domain) and the caller ID goes in
  P-Asserted-Identity: for PBXs and trunks that refuse a From user other than the authenticated one
  (Kamailio's usual `auth_check(..., 1)` answers 403/407 otherwise), and carriers that take the
  presented number from P-Asserted-Identity.
`callerid_privacy` adds `Privacy: id` (RFC 3325: hide the asserted identity from the callee).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ivr.errors import IvrError
from ivr.settings import SipSettings

CALLERID_MODES = ("from", "pai")
DEFAULT_USER = "ivrgate"
"""Our From user when neither a caller ID nor a username is set."""
_CALLER_ID = re.compile(r"\+?[0-9]{1,32}")


class InvalidCallerId(IvrError, ValueError):
    """A caller ID that is not a number a SIP From or P-Asserted-Identity user can carry (a ValueError
    too, so a bad `sip.caller_id` setting is reported like any other bad setting)."""

    code = 500
    status_text = "ERROR: INVALID CALLERID"


def check_caller_id(text: str) -> str:
    """`text` unchanged when it is empty or a number (`+` and 1-32 digits); else InvalidCallerId, the
    seed's 500 `ERROR: INVALID CALLERID` (docs/api-legacy.md)."""
    if text and not _CALLER_ID.fullmatch(text):
        shown = text if len(text) <= 40 else text[:40] + "..."
        raise InvalidCallerId(f"a caller ID must be a number (+ and digits), not {shown!r}")
    return text


def sip_domain(s: SipSettings) -> str:
    """The host of our identity, without a port (pjsip drops a From URI's port, measured): the
    registrar's, else the trunk's, else the address we are reached at (public_address, else
    bind_address)."""
    for uri in (s.registrar, s.trunk_host):
        host = uri.split(":", 1)[1] if uri.lower().startswith(("sip:", "sips:")) else uri
        host = host.split(";", 1)[0].split("@")[-1].strip()
        if host.startswith("["):
            host = host.split("]", 1)[0] + "]"
        elif host.count(":") == 1:
            host = host.split(":", 1)[0]
        if host:
            return host
    return s.public_address or s.bind_address


def _name_addr(uri: str, name: str) -> str:
    if not name:
        return f"<{uri}>"
    escaped = name.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}" <{uri}>'


@dataclass(frozen=True)
class CallerIdentity:
    """The From value of one call ('' keeps the account's own) and the headers the mode adds."""

    from_header: str = ""
    headers: dict[str, str] = field(default_factory=dict)


def caller_identity(s: SipSettings, caller_id: str = "", display_name: str = "") -> CallerIdentity:
    """From, P-Asserted-Identity and Privacy of one call; the call's own caller ID and display name
    override the settings'. Raises InvalidCallerId for a caller ID that is not a number."""
    number = check_caller_id(caller_id or s.caller_id)
    name = display_name or s.display_name
    domain = sip_domain(s)
    headers: dict[str, str] = {}
    if s.callerid_privacy:
        headers["Privacy"] = "id"
    if s.callerid_mode == "pai":
        account = f"sip:{s.username or DEFAULT_USER}@{domain}"
        if number:
            headers["P-Asserted-Identity"] = f"<sip:{number}@{domain}>"
        return CallerIdentity(_name_addr(account, name), headers)
    if not (number or name):
        return CallerIdentity("", headers)
    uri = f"sip:{number or s.username or DEFAULT_USER}@{domain}"
    if s.p_asserted_identity and number:
        headers["P-Asserted-Identity"] = f"<{uri}>"
    return CallerIdentity(_name_addr(uri, name), headers)
