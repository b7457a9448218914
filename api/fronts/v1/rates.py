"""/v1/rates: the price list, and the price of one number."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter

from api.fronts.v1.deps import CallerDep, GatewayDep, StoreDep
from api.fronts.v1.problems import V1Route
from api.fronts.v1.schemas import RatePublic, RateQuote, money
from store import rating

router = APIRouter(prefix="/rates", tags=["rates"], route_class=V1Route)


@router.get("", response_model=list[RatePublic])
def list_rates(store: StoreDep, caller: CallerDep) -> list[RatePublic]:
    """Every rate prefix (the longest prefix of a number wins): per SMS part, per voice and TTS minute."""
    with store.read() as session:
        return [
            RatePublic(
                prefix=r.prefix,
                sms_micros=r.sms,
                voice_minute_micros=r.voice_minute,
                tts_minute_micros=r.tts_minute,
                currency=r.currency,
                description=r.description,
            )
            for r in rating.list_rates(session)
        ]


@router.get("/{phone}", response_model=RateQuote)
def rate(phone: str, gateway: GatewayDep, type: Literal["sms", "voice", "tts"] = "sms") -> RateQuote:
    """The unit price for one number (no account needed, like the seed's sms_rate)."""
    e164, price, currency = gateway.rate(phone, type)
    return RateQuote(phone=e164, type=type, rate_micros=price, rate=money(price), currency=currency)
