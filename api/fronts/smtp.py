"""The SMTP gateway (aiosmtpd): a text mail to the gateway address becomes the job the HTTP API makes.

    async with running_smtp(settings.smtp, gateway) as server:   # inside any running event loop
        print(server.port)

`ivrgate serve` runs it as a peer of its node (api.runtime.node.Node). A mail is read by
api.fronts.smtp_parse,
validated by the HTTP route's form model (credentials first, then the rest, in the HTTP API's order) and
submitted through the same Gateway call as the HTTP route. The answer is given inside the session, so the
sender's mail server bounces with the reason (docs/smtp.md):

    250 2.0.0 200 OK ID: 3f0c...                              one recipient queued
    550 5.7.8 505 USER NOT FOUND OR WRONG PASSWORD            a refusal: SMTP code, enhanced code, seed code
    451 4.3.0 508 DATABASE ERROR                              a store failure: the sender's server retries

Write first, answer after: the submission runs in a thread (argon2, the store, a voice URL fetch) while
the event loop serves other sessions, and the 250 is sent only after the store committed the messages.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiosmtpd.smtp import SMTP, Envelope, Session

from api.core.errors import StartupFailed, status_of
from api.core.jobs import Submitted
from api.core.phones import ParsedPhones
from api.core.service import Gateway
from api.core.settings import SmtpSettings
from api.core.throttle import LoginThrottled
from api.fronts.forms import MatrixForm, MatrixTtsForm
from api.fronts.smtp_parse import (
    HtmlOnlyMail,
    MailCharsetError,
    MailNotText,
    MailRequest,
    parse_mail,
)
from coded.errors import CodedError
from coded.statuses import OK, QUEUED

log = logging.getLogger(__name__)

SHUTDOWN_GRACE_S = 30.0
"""How long a stopping server waits for submissions in progress to commit and be answered."""
MAX_DETAIL_CHARS = 160
_CREDENTIAL_CODES = frozenset({404, 505, 510, 512})
_POLICY_CODES = frozenset({502, 503, 506})
_TRANSIENT_CODES = frozenset({504, 507, 508})
_QUIET_CODES = frozenset({404, 505, 506})
"""Refusals answered without their detail, which would tell a stranger about an account."""
_MEDIA_ERRORS = (HtmlOnlyMail, MailCharsetError, MailNotText)

REPLY_BAD_MAILBOX = "550 5.1.1 mailbox unknown: mail the gateway at {address}"
REPLY_ONE_RECIPIENT = "452 4.5.3 one recipient per mail: the gateway address"
REPLY_RECIPIENT_OK = "250 2.1.5 OK"
REPLY_BUG = "451 4.3.0 500 ERROR (the gateway failed; try again later)"
REPLY_THROTTLED = "451 4.7.1"
"""The login throttle holds the mail's username or the client's address (api.core.throttle)."""


def submit_mail(gateway: Gateway, request: MailRequest, source: str | None = None) -> list[Submitted]:
    """Submit a parsed mail exactly as the HTTP route of its kind would: credentials checked (510, 512),
    then logged in (505..., the login throttle counting per `source`, the client's address), then the
    route's form validated and the Gateway's submission made."""
    limits = gateway.settings.forms
    account = request.account(limits)
    caller = gateway.login(account.username, account.password, source=source)
    form = request.form(limits)
    phones = ParsedPhones(form.phones, limits.phones)  # validated by the form: not parsed again
    if isinstance(form, MatrixForm):
        return gateway.submit_sms(caller, phones=phones, group=form.group, text=form.txt,
                                  callerid=form.callerid, tts_fallback=form.tts)
    if isinstance(form, MatrixTtsForm):
        return gateway.submit_tts(caller, phones=phones, text=form.txt, language=form.language,
                                  gender=form.gender, repeat=form.repeat, response=form.response,
                                  callerid=form.callerid)
    return gateway.submit_voice_url(caller, phones=phones, url=form.voiceurl, response=form.response,
                                    repeat=form.repeat, callerid=form.callerid)


# --- replies (pure) ------------------------------------------------------------------------------------


def _clean(text: str) -> str:
    """Printable ASCII for a reply line (a detail may quote the mail)."""
    return "".join(ch if " " <= ch <= "~" else "?" for ch in text)[:MAX_DETAIL_CHARS]


def error_reply(exc: BaseException, with_detail: bool = True) -> str:
    """The SMTP reply to a refusal: `<5xx> <enhanced> <seed code> <status text> (<detail>)`.

    Store failures are transient (451: the sender's server tries again; nothing was written); anything
    without a status is a bug, answered 451 too so that no mail is lost to it."""
    if not isinstance(exc, CodedError):
        return REPLY_BUG
    code, text = exc.status
    if isinstance(exc, LoginThrottled):  # temporary: the sender's server may try again after the lock
        return f"{REPLY_THROTTLED} {code} {_clean(text)} (too many failed logins: try again in " \
               f"{exc.retry_after_s} s)"
    if code in _TRANSIENT_CODES:
        prefix = "451 4.3.0"
    elif code in _CREDENTIAL_CODES:
        prefix = "550 5.7.8"
    elif code in _POLICY_CODES:
        prefix = "550 5.7.1"
    elif isinstance(exc, _MEDIA_ERRORS):
        prefix = "550 5.6.1"
    else:
        prefix = "550 5.6.0"
    detail = exc.detail
    shown = f" ({_clean(detail)})" if with_detail and detail and detail != text else ""
    return f"{prefix} {code} {_clean(text)}{shown}"


def accepted_reply(submitted: list[Submitted]) -> str:
    """The reply once the store holds the mail's messages: 250 with each ID, one line per recipient.

    When no recipient was queued (all on a do-not-call list), the first refusal is answered 550 with
    its stored message's ID, so the sender learns why."""
    queued = [s for s in submitted if s.code == QUEUED[0]]
    if not queued:
        first = submitted[0]
        return f"550 5.7.1 {first.code} {_clean(first.text)} ID: {first.message_id}"
    if len(submitted) == 1:
        return f"250 2.0.0 200 OK ID: {queued[0].message_id}"
    lines = [_recipient_line(s) for s in submitted]
    lines.append(f"250 2.0.0 200 OK {len(queued)} of {len(submitted)} queued")
    return "\r\n".join(lines)


def _recipient_line(s: Submitted) -> str:
    code, text = OK if s.code == QUEUED[0] else (s.code, _clean(s.text))
    return f"250-2.0.0 {code} {text} ID: {s.message_id} PHONE: {s.phone}"


def same_address(given: str, gateway_address: str) -> bool:
    """Whether an envelope recipient is the gateway's mailbox (case-insensitive, angle brackets ignored)."""
    return given.strip().strip("<>").strip().lower() == gateway_address.strip().lower()


# --- the handler ---------------------------------------------------------------------------------------


@dataclass
class GatewayHandler:
    """aiosmtpd handler: RCPT must be the gateway address; DATA is parsed and submitted before the reply."""

    gateway: Gateway
    settings: SmtpSettings
    inflight: set[asyncio.Future[str]] = field(default_factory=set)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if not same_address(address, self.settings.address):
            return REPLY_BAD_MAILBOX.format(address=self.settings.address)
        if envelope.rcpt_tos:
            return REPLY_ONE_RECIPIENT
        envelope.rcpt_tos.append(address)
        return REPLY_RECIPIENT_OK

    async def handle_DATA(
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        content = envelope.original_content or b""
        peer = session.peer[0] if isinstance(session.peer, tuple) and session.peer else None
        work: asyncio.Future[str] = asyncio.ensure_future(asyncio.to_thread(self.process, content, peer))
        self.inflight.add(work)
        try:
            return await asyncio.shield(work)  # a dropped connection does not abandon a running write
        finally:
            if work.done():
                self.inflight.discard(work)
            else:
                work.add_done_callback(self.inflight.discard)

    def process(self, data: bytes, peer: str | None = None) -> str:
        """Parse and submit one mail from `peer` (runs in a worker thread); the SMTP reply to send."""
        try:
            request = parse_mail(data)
            submitted = submit_mail(self.gateway, request, peer)
        except Exception as exc:  # every refusal is answered in the session; a bug is logged, then 451
            status = status_of(exc)
            if status is None:
                log.exception("mail of %d bytes failed", len(data))
            else:
                log.info("mail refused: %s %s", status, exc)
            return error_reply(exc, with_detail=status is not None and status[0] not in _QUIET_CODES)
        log.info("mail accepted: %s", ", ".join(s.message_id for s in submitted))
        return accepted_reply(submitted)

    async def drain(self, timeout: float) -> None:
        """Wait for submissions in progress (called when the server stops)."""
        if self.inflight:
            await asyncio.wait(set(self.inflight), timeout=timeout)


def tls_context(settings: SmtpSettings) -> ssl.SSLContext | None:
    """The STARTTLS context of the configured certificate, or None without one."""
    if not settings.certfile:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(settings.certfile, settings.keyfile)
    return context


@dataclass
class SmtpServer:
    """A running SMTP gateway: where it listens."""

    host: str
    port: int
    handler: GatewayHandler


@asynccontextmanager
async def running_smtp(settings: SmtpSettings, gateway: Gateway) -> AsyncIterator[SmtpServer]:
    """Serve the SMTP gateway on the running loop until the block ends; then stop accepting, let
    submissions in progress commit and answer (up to SHUTDOWN_GRACE_S), and close."""
    handler = GatewayHandler(gateway, settings)
    context = tls_context(settings)
    loop = asyncio.get_running_loop()

    def factory() -> SMTP:
        return SMTP(handler, data_size_limit=settings.max_bytes, decode_data=False,
                    hostname=settings.hostname or None, ident="ivrgate SMTP gateway",
                    tls_context=context, require_starttls=settings.require_starttls, loop=loop)

    try:
        server = await loop.create_server(factory, host=settings.host, port=settings.port)
    except OSError as exc:
        raise StartupFailed.port_taken("smtp.port", settings.host, settings.port, "tcp", exc) from None
    port = int(server.sockets[0].getsockname()[1])
    log.info("SMTP gateway on %s:%d for %s", settings.host, port, settings.address)
    try:
        yield SmtpServer(settings.host, port, handler)
    finally:
        server.close()
        await handler.drain(SHUTDOWN_GRACE_S)
        await server.wait_closed()
