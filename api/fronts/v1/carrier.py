"""/v1/carrier/{phone}: country, carrier and line type of a number."""

from __future__ import annotations

from fastapi import APIRouter

from api.fronts.v1.deps import CallerDep, GatewayDep
from api.fronts.v1.problems import V1Route
from api.fronts.v1.schemas import CarrierPublic

router = APIRouter(prefix="/carrier", tags=["carrier"], route_class=V1Route)


@router.get("/{phone}", response_model=CarrierPublic)
def carrier(phone: str, gateway: GatewayDep, caller: CallerDep) -> CarrierPublic:
    """What the carrier provider knows of one number (the carrier is empty for North America)."""
    info = gateway.carrier(caller, phone)
    return CarrierPublic(
        phone=info.phone,
        country_code=info.country.code,
        country=info.country.name,
        carrier=info.carrier,
        line_type=info.line_type.value,
        valid=info.valid,
    )
