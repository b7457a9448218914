"""The SMS node of `ivrgate serve` and `ivrgate worker`: the ESME, the SMS sender and the incoming-SMS
handler on one loop.

    async with running_sms(settings, gateway) as node:    # binds to settings.sms, claims queued SMS
        wake_targets.append(node.sender.wake)              # a submission wakes the sender at once

A node (api.runtime.node.Node) runs it as one of its peers whenever `runs_sms_node(settings)` holds (an SMPP
system_id is set and `sms_service.enabled`). Whether SMS are accepted at all is `sms_configured(settings)`
(api.core.settings), a rule on the settings only.

The sender's `tts=1` fallback is the Gateway's own `submit_tts`, so a fallback call passes the same
do-not-call check, pricing and reservation as any submission. The fallback applies to numbers whose line
type is ambiguous (api.core.carrier.can_take_sms is None); mobile numbers keep their undeliverable SMS, and
fixed lines were turned into calls at submission already.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from api.core.carrier import can_take_sms
from api.core.errors import GatewayError
from api.core.jobs import Caller
from api.core.phones import smpp_e164
from api.core.service import Gateway
from api.core.settings import Settings
from coded.statuses import QUEUED
from sms.inbound import InboundHandler, InboundOptions
from sms.sender import FallbackRequest, SenderOptions, SmsSender, TtsFallback
from sms.smpp import Esme
from store.errors import AccountNotActive, AccountNotFound
from store.models import Account

log = logging.getLogger(__name__)

class FallbackRefused(GatewayError):
    """The service refused the fallback TTS call of an undeliverable SMS (its text is the refusal's)."""

    def __init__(self, code: int, status_text: str) -> None:
        super().__init__(status_text)
        self.code, self.status_text = code, status_text


__all__ = ["SmsNode", "running_sms"]


def caller_of(gateway: Gateway, user_id: int) -> Caller:
    """The Caller that submitted an SMS, so its fallback call is submitted (and paid) as that login."""
    with gateway.db.read() as session:
        account = session.get(Account, user_id)
        if account is None:
            raise AccountNotFound(f"account {user_id} is gone")
        if not account.active:
            raise AccountNotActive(account.username)
        return Caller(account.id, account.owner_id, account.username, account.role)


def tts_fallback(gateway: Gateway) -> TtsFallback:
    """The sender's fallback: a new TTS message of an undeliverable SMS to an ambiguous number."""

    def fallback(request: FallbackRequest) -> str | None:
        caller = caller_of(gateway, request.user_id)
        if can_take_sms(gateway.carrier(caller, request.phone)) is not None:
            return None
        callerid = request.callerid if request.callerid.startswith("+") else None
        (result,) = gateway.submit_tts(caller, phones=request.phone, text=request.text, callerid=callerid,
                                       callback_url=request.callback_url or None)
        if result.code != QUEUED[0]:
            raise FallbackRefused(result.code, result.text)
        return result.message_id

    return fallback


def _worker_id(settings: Settings) -> str:
    return settings.sms_service.worker_id or f"{socket.gethostname()}:{os.getpid()}:sms"


@dataclass
class SmsNode:
    """A running ESME, SMS sender and incoming-SMS handler."""

    esme: Esme
    sender: SmsSender
    inbound: InboundHandler


@asynccontextmanager
async def running_sms(settings: Settings, gateway: Gateway) -> AsyncIterator[SmsNode]:
    """Start the ESME and the sender on this loop; on exit stop the sender (its messages in flight get
    their answers first), then the ESME."""
    service, smpp = settings.sms_service, settings.sms
    options = SenderOptions(
        worker_id=_worker_id(settings), lease_s=service.lease_s, batch=service.batch,
        max_in_flight=service.max_in_flight, poll_interval_s=service.poll_interval_s,
        max_parts=smpp.max_parts, use_payload=smpp.use_message_payload, default_source=service.default_source,
        receipt_grace_s=service.receipt_grace_s, receipt_timeout_s=service.receipt_timeout_s,
        packed_gsm=smpp.gsm_packed, concat_ref_bits=smpp.concat_ref_bits)
    sender = SmsSender(gateway.db, options, fallback=tts_fallback(gateway), now=gateway.now)
    host = socket.getfqdn()
    replies = service.replies(host)
    if not service.brand.strip():
        log.warning("sms_service.brand is not set: STOP, START and HELP answers name %r instead",
                    service.orgserver.strip() or host)
    inbound = InboundHandler(gateway.db, InboundOptions(
        orgserver=service.orgserver or host, help_text=replies.help,
        stop_reply=replies.stop, start_reply=replies.start, max_parts=smpp.max_parts,
        mo_timeout_s=smpp.mo_timeout_s),
        number=functools.partial(smpp_e164, region=settings.phones.default_region),
        wake=sender.wake, now=gateway.now)
    esme = Esme(smpp, on_accepted=sender.on_accepted, on_refused=sender.on_refused,
                on_receipt=sender.on_receipt, on_incoming=inbound.on_incoming, on_mo_part=inbound.on_mo_part)
    sender.attach(esme)
    await esme.start()
    task = asyncio.create_task(sender.run(), name="sms-sender")
    sweeps = asyncio.create_task(inbound.run_sweeps(), name="sms-mo-sweeps")
    loop = type(asyncio.get_running_loop())
    log.info("SMS node up: SMSC %s:%d as %s (event loop %s.%s)", smpp.host, smpp.port, smpp.system_id,
             loop.__module__, loop.__qualname__)
    try:
        yield SmsNode(esme, sender, inbound)
    finally:
        sweeps.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sweeps
        try:
            await sender.stop(service.shutdown_timeout_s)
            await task
        finally:
            await esme.stop(service.shutdown_timeout_s)
