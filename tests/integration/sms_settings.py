"""Settings of a process that accepts SMS while another process of the deployment sends them."""

from __future__ import annotations

from api.core.settings import Settings, SmsSettings
from sms.smpp import SmppSettings


def smsc_elsewhere(settings: Settings) -> Settings:
    """`settings` with an SMSC configured (so SMS are accepted: api.core.settings.sms_configured) and the SMS
    node off in this process (`sms_service.enabled = false`): an API-only node, no bind from tests that
    only check what is accepted and stored."""
    return settings.model_copy(update={"sms": SmppSettings(system_id="ivrgate"),
                                       "sms_service": SmsSettings(enabled=False)})
