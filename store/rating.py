"""Rates and prices: longest-prefix lookup, billing increments, and the rates CSV.

Prices are integers in micro-units (store.models.MICROS per currency unit). A call is billed per started
increment (60 s by default, 6 s optional), an answered call at least one increment; the product is rounded
up to a whole micro-unit. An SMS costs its rate per part.

The CSV has a header naming its columns: `prefix` and any of `sms`, `voice`, `tts`, `currency`,
`description`. Prices are decimal currency units (`0.0125`); an empty cell means "not offered".

    prefix,sms,voice,tts,currency,description
    1,0.0075,0.0130,0.0150,USD,North America
    44,0.0400,0.0200,0.0250,USD,United Kingdom
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import Connection, Row, bindparam, delete, select
from sqlalchemy.orm import Session

from store import ledger
from store.db import IN_LIST_MAX
from store.errors import InvalidRates, NoRate
from store.models import MICROS, Base, MessageKind, Rate

MAX_PREFIX = 16


def parse_price(text: str) -> int:
    """'0.0125' (currency units) -> 12500 micro-units; refuses negatives and sub-micro precision."""
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise ValueError(f"not a price: {text!r}") from None
    if not value.is_finite() or value < 0:
        raise ValueError(f"not a price: {text!r}")
    micros = value * MICROS
    if micros != micros.to_integral_value():
        raise ValueError(f"more than 6 decimals: {text!r}")
    return int(micros)


def format_price(micros: int, places: int = 4) -> str:
    """12500 -> '0.0125': currency units with at least `places` decimals, never losing precision."""
    value = (Decimal(micros) / MICROS).normalize()
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)
    return f"{value:.{max(places, -exponent)}f}"


def billable_seconds(duration_s: float, increment_s: int, answered: bool = True) -> int:
    """Seconds billed for a call: whole started increments of its exact duration, read to the millisecond
    (so 60.0000001 s is one minute, 60.001 s two); an answered call at least one increment (a 0 s answer
    too), an unanswered one nothing. The one billing rule: reservations and charges go through
    call_cost(). ValueError for an increment below 1 (or a bool) and a non-finite duration."""
    if isinstance(increment_s, bool) or increment_s < 1:
        raise ValueError(f"billing increment must be >= 1 second, got {increment_s!r}")
    if not math.isfinite(duration_s):
        raise ValueError(f"call duration must be finite, got {duration_s!r}")
    if not answered:
        return 0
    millis = round(duration_s * 1000)  # forgives float noise from subtracting clock readings
    increments = max(1, -(-millis // (increment_s * 1000)))
    return increments * increment_s


def call_cost(duration_s: float, rate_per_minute: int, increment_s: int, answered: bool = True) -> int:
    """Micro-units for a call of `duration_s` at `rate_per_minute`, rounded up to a micro-unit."""
    seconds = billable_seconds(duration_s, increment_s, answered)
    return -(-seconds * rate_per_minute // 60)


def sms_cost(parts: int, rate_per_part: int) -> int:
    return max(1, parts) * rate_per_part


def digits_of(phone: str) -> str:
    """'+1 250-606' -> '1250606': the digits a prefix is matched against."""
    return "".join(ch for ch in phone if ch.isdigit())


def _prefixes(phone: str) -> list[str]:
    """The prefixes a number can be rated by, longest first (the empty prefix matches every number)."""
    digits = digits_of(phone)
    return [digits[:n] for n in range(min(len(digits), MAX_PREFIX), -1, -1)]


def find_rate(session: Session, phone: str) -> Rate | None:
    """The rate whose prefix is the longest one the number starts with (the empty prefix matches all)."""
    rows = session.scalars(select(Rate).where(Rate.prefix.in_(_prefixes(phone)))).all()
    return max(rows, key=lambda rate: len(rate.prefix), default=None)


def unit_price(rate: Rate | Row[Any], kind: str) -> int | None:
    """The rate's price for a message kind: per SMS part, or per minute of voice or TTS call."""
    if kind == MessageKind.SMS:
        return rate.sms
    if kind == MessageKind.VOICE:
        return rate.voice_minute
    return rate.tts_minute


_RATES = Base.metadata.tables[Rate.__tablename__]
_RATES_OF_PREFIXES = select(_RATES).where(_RATES.c.prefix.in_(bindparam("prefixes", expanding=True)))
"""Built once: the submission path prices every recipient."""


def price_for(session: Session | Connection, phone: str, kind: str) -> tuple[int, str]:
    """(price per unit, currency) for sending `kind` to `phone`; NoRate (513) when nothing covers it."""
    return prices(session, [phone], kind)[phone]


def prices(session: Session | Connection, phones: Sequence[str], kind: str) -> dict[str, tuple[int, str]]:
    """price_for() of every number of `phones` in one statement: the longest prefix wins; NoRate (513)
    names the first number no rate covers."""
    found = lookup_prices(session, phones, kind)
    return {phone: covered(found, phone, kind) for phone in found}


def covered(found: dict[str, tuple[int, str] | None], phone: str, kind: str) -> tuple[int, str]:
    """`phone`'s (price, currency) in a lookup_prices() answer; NoRate (513) when no rate covers it."""
    price = found[phone]
    if price is None:
        raise NoRate(f"no {kind} rate for {phone}")
    return price


def lookup_prices(
    session: Session | Connection, phones: Sequence[str], kind: str
) -> dict[str, tuple[int, str] | None]:
    """(price per unit, currency) of every number of `phones` in one statement, None where no rate
    covers it (a batch of submissions refuses only the jobs holding such a number)."""
    candidates = {phone: _prefixes(phone) for phone in phones}
    wanted = sorted({prefix for prefixes in candidates.values() for prefix in prefixes})
    conn = ledger.core(session)
    rows: dict[str, Row[Any]] = {}
    for start in range(0, len(wanted), IN_LIST_MAX):  # drivers bound the parameters of one statement
        found = conn.execute(_RATES_OF_PREFIXES, {"prefixes": wanted[start:start + IN_LIST_MAX]})
        rows.update((row.prefix, row) for row in found)
    out: dict[str, tuple[int, str] | None] = {}
    for phone, prefixes in candidates.items():
        rate = next((rows[prefix] for prefix in prefixes if prefix in rows), None)
        price = unit_price(rate, kind) if rate is not None else None
        out[phone] = None if rate is None or price is None else (int(price), str(rate.currency))
    return out


@dataclass(frozen=True)
class RateRow:
    """One line of a rates CSV, prices in micro-units."""

    prefix: str
    sms: int | None
    voice_minute: int | None
    tts_minute: int | None
    currency: str
    description: str = ""


_PRICE_COLUMNS = {"sms": "sms", "voice": "voice_minute", "tts": "tts_minute"}


def parse_rates_csv(text: str, default_currency: str = "USD") -> list[RateRow]:
    """Read a rates CSV (see the module docstring); InvalidRates names the first bad line."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [name.strip().lower() for name in reader.fieldnames or []]
    if "prefix" not in header or not set(header) & set(_PRICE_COLUMNS):
        raise InvalidRates("the header must name 'prefix' and at least one of sms, voice, tts")
    reader.fieldnames = header
    rows: dict[str, RateRow] = {}
    for line, record in enumerate(reader, start=2):
        try:
            row = _rate_row(record, default_currency)
        except ValueError as exc:
            raise InvalidRates(f"line {line}: {exc}") from None
        if row.prefix in rows:
            raise InvalidRates(f"line {line}: prefix {row.prefix!r} given twice")
        rows[row.prefix] = row
    return list(rows.values())


def _rate_row(record: dict[str, str | None], default_currency: str) -> RateRow:
    prefix = (record.get("prefix") or "").strip().removeprefix("+")
    if len(prefix) > MAX_PREFIX or not (prefix.isdigit() or prefix == "") or not prefix.isascii():
        raise ValueError(f"bad prefix {prefix!r}")
    prices = {
        field: parse_price(cell) if (cell := (record.get(column) or "").strip()) else None
        for column, field in _PRICE_COLUMNS.items()
    }
    currency = (record.get("currency") or "").strip().upper() or default_currency
    if len(currency) != 3 or not currency.isalpha() or not currency.isascii():
        raise ValueError(f"bad currency {currency!r}")
    description = (record.get("description") or "").strip()[:200]
    return RateRow(prefix, prices["sms"], prices["voice_minute"], prices["tts_minute"], currency, description)


def import_rates(session: Session, rows: Iterable[RateRow], replace_all: bool = False) -> int:
    """Insert or update rates by prefix (all in the caller's transaction); `replace_all` first deletes
    every prefix not in `rows`. Returns how many rows were written."""
    rows = list(rows)
    if replace_all:
        session.execute(delete(Rate).where(Rate.prefix.not_in([row.prefix for row in rows])))
    existing = {rate.prefix: rate for rate in session.scalars(select(Rate))}
    for row in rows:
        rate = existing.get(row.prefix) or Rate(prefix=row.prefix)
        rate.sms, rate.voice_minute, rate.tts_minute = row.sms, row.voice_minute, row.tts_minute
        rate.currency, rate.description = row.currency, row.description
        session.add(rate)
    session.flush()
    return len(rows)


def list_rates(session: Session) -> Sequence[Rate]:
    return session.scalars(select(Rate).order_by(Rate.prefix)).all()
