"""The bodies of the seed's answers (docs/DESIGN.md, "Legacy answers"; docs/api-legacy.md).

Plain text is `KEY: value` lines, each ended by LF, keys in a fixed order; the `.json` variant of a route
carries the same keys and values in one JSON object (default separators, ASCII-escaped, no trailing
newline). Every answer is sent with HTTP 200.

No value can break the line format: every run of control characters (C0, DEL, C1) and Unicode line or
paragraph separators inside a value becomes one space, in text and JSON alike, so both carry the same
value. Money is a Decimal with fixed decimals, rendered as a string in JSON too (a float would lose them).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Context, Decimal
from typing import Final, Literal

from api.core.carrier import CarrierInfo
from coded.errors import CodedError
from coded.statuses import OK, is_success

TEXT_MEDIA_TYPE: Final = "text/plain; charset=utf-8"
JSON_MEDIA_TYPE: Final = "application/json"
TIMEZONE: Final = "UTC"
BALANCE_DECIMALS: Final = 4
"""A balance is shown rounded down (never more money than the account has), to the 4 decimals rates are
priced in, so that every charge shows: 9.9925 after one 0.0075 SMS, not 9.99."""
RATE_DECIMALS: Final = 4
"""A rate is shown rounded up: never less than what is charged."""

Value = str | int
Fields = Sequence[tuple[str, Value]]
RateType = Literal["sms", "voice", "tts"]

_BREAKING = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


@dataclass(frozen=True)
class RecipientResult:
    """What one recipient of a submission got: message ID (empty when none was stored) and status."""

    id: str
    phone: str
    code: int
    text: str


def clean(value: Value) -> Value:
    """A value safe on one line: each run of control or line-breaking characters becomes one space."""
    if isinstance(value, str):
        return _BREAKING.sub(" ", value)
    return value


def render_text(blocks: Sequence[Fields]) -> str:
    """`KEY: value` lines ended by LF; blocks separated by one empty line."""
    return "\n".join("".join(f"{key}: {clean(value)}\n" for key, value in block) for block in blocks)


def render_json(fields: Fields, messages: Sequence[Fields] | None = None) -> str:
    """One JSON object of `fields`, with a MESSAGES list of objects first when `messages` is given."""
    body: dict[str, object] = {}
    if messages is not None:
        body["MESSAGES"] = [{key: clean(value) for key, value in block} for block in messages]
    body.update((key, clean(value)) for key, value in fields)
    return json.dumps(body)


def _render(fields: Fields, as_json: bool) -> str:
    return render_json(fields) if as_json else render_text([fields])


def format_money(amount: Decimal | int, decimals: int, *, round_up: bool) -> str:
    """`amount` with exactly `decimals` decimals (no exponent), rounded up or down as asked."""
    if not isinstance(amount, Decimal | int) or isinstance(amount, bool):
        raise TypeError(f"money must be Decimal or int, not {type(amount).__name__}")
    value = Decimal(amount)
    if not value.is_finite():
        raise ValueError(f"money must be finite, not {value}")
    quantum = Decimal(1).scaleb(-decimals)
    rounding = ROUND_CEILING if round_up else ROUND_FLOOR
    context = Context(prec=max(value.adjusted(), 0) + decimals + 2, rounding=rounding)
    shown = value.quantize(quantum, context=context)
    return f"{shown.copy_abs() if shown.is_zero() else shown:f}"


def _stamp(timestamp: int) -> int:
    if isinstance(timestamp, bool) or not isinstance(timestamp, int):
        raise TypeError(f"timestamp must be int UNIX seconds, not {timestamp!r}")
    return timestamp


def overall_status(results: Sequence[RecipientResult]) -> tuple[int, str]:
    """The top-level code of a several-recipient JSON answer: that of the first recipient that succeeded
    (0-399), else that of the first recipient."""
    if not results:
        raise ValueError("a submission answer needs at least one recipient")
    chosen = next((r for r in results if is_success(r.code)), results[0])
    return chosen.code, chosen.text


def render_submission(results: Sequence[RecipientResult], timestamp: int, *, as_json: bool = False) -> str:
    """The answer of matrix, matrix_tts, matrix_voice, matrix_voicew and matrix_vtts."""
    stamp = _stamp(timestamp)
    if len(results) == 1:
        only = results[0]
        fields: Fields = [
            ("ID", only.id),
            ("STATUSCODE", only.code),
            ("STATUSTXT", only.text),
            ("TIMESTAMP", stamp),
        ]
        return _render(fields, as_json)
    blocks: list[Fields] = [
        [
            ("ID", r.id),
            ("PHONE", r.phone),
            ("STATUSCODE", r.code),
            ("STATUSTXT", r.text),
            ("TIMESTAMP", stamp),
        ]
        for r in results
    ]
    if not as_json:
        return render_text(blocks)
    code, text = overall_status(results)
    return render_json([("STATUSCODE", code), ("STATUSTXT", text), ("TIMESTAMP", stamp)], blocks)


def render_status(
    message_id: str, code: int, text: str, response: str | None, timestamp: int, *, as_json: bool = False
) -> str:
    """matrix_status: the message's status, the digit pressed (empty when none), and when it was set."""
    fields: Fields = [
        ("ID", message_id),
        ("STATUSCODE", code),
        ("STATUSTXT", text),
        ("RESPONSE", response or ""),
        ("TIMESTAMP", _stamp(timestamp)),
        ("TIMEZONE", TIMEZONE),
    ]
    return _render(fields, as_json)


def render_balance(balance: Decimal | int, currency: str, *, as_json: bool = False) -> str:
    """balance: the account's balance (rounded down to BALANCE_DECIMALS) and its currency."""
    amount = format_money(balance, BALANCE_DECIMALS, round_up=False)
    return _render([("BALANCE", amount), ("CURRENCY", currency)], as_json)


def render_rate(
    phone: str, rate_type: RateType, rate: Decimal | int, currency: str, *, as_json: bool = False
) -> str:
    """sms_rate: the price of one message (or one minute, for voice and tts) to `phone`."""
    amount = format_money(rate, RATE_DECIMALS, round_up=True)
    return _render([("PHONE", phone), ("TYPE", rate_type), ("RATE", amount), ("CURRENCY", currency)], as_json)


def render_carrier(info: CarrierInfo, *, as_json: bool = False) -> str:
    """carrier: E.164, ISO country code, carrier name (may be empty) and line type."""
    fields: Fields = [
        ("PHONE", info.phone),
        ("COUNTRY", info.country.code),
        ("CARRIER", info.carrier),
        ("LINETYPE", info.line_type.value),
    ]
    return _render(fields, as_json)


def render_error(code: int, text: str, timestamp: int, *, as_json: bool = False) -> str:
    """The answer to a refused request: its code and exact status text, never the detail."""
    return _render([("STATUSCODE", code), ("STATUSTXT", text), ("TIMESTAMP", _stamp(timestamp))], as_json)


def render_exception(exc: BaseException, timestamp: int, *, as_json: bool = False) -> str | None:
    """The error answer of any coded error, or None for anything else (a bug)."""
    if not isinstance(exc, CodedError):
        return None
    return render_error(exc.code, exc.status_text, timestamp, as_json=as_json)


def ok_result(message_id: str, phone: str) -> RecipientResult:
    """An accepted recipient: 200 OK."""
    return RecipientResult(message_id, phone, *OK)
