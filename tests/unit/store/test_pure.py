"""Pure parts of the store: prices, the rates CSV, usernames, backoff, URLs (billing: test_billing.py)."""

from __future__ import annotations

import datetime as dt
import re
import time
import uuid
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from store import outbox, rating
from store.accounts import normalise_username
from store.db import resolve_url
from store.errors import InvalidRates, InvalidUsername
from store.models import UtcDateTime
from store.queue import new_message_id, time_ordered_id


@pytest.mark.parametrize(
    ("text", "micros"),
    [("0", 0), ("0.0125", 12_500), ("1", 1_000_000), ("0.000001", 1), (" 2.5 ", 2_500_000)],
)
def test_parse_price(text: str, micros: int) -> None:
    assert rating.parse_price(text) == micros


@pytest.mark.parametrize("text", ["-1", "0.0000001", "abc", "", "NaN", "inf"])
def test_parse_price_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        rating.parse_price(text)


@given(st.integers(min_value=0, max_value=10**12))
def test_price_round_trips(micros: int) -> None:
    assert rating.parse_price(rating.format_price(micros)) == micros


def test_format_price() -> None:
    assert rating.format_price(12_500) == "0.0125"
    assert rating.format_price(1_000_000) == "1.0000"
    assert rating.format_price(1) == "0.000001"


def test_parse_rates_csv() -> None:
    rows = rating.parse_rates_csv("\ufeffPrefix,SMS,Voice\n+1,0.01,\n44,,0.02\n", default_currency="CAD")
    assert rows == [
        rating.RateRow("1", 10_000, None, None, "CAD"),
        rating.RateRow("44", None, 20_000, None, "CAD"),
    ]


@pytest.mark.parametrize(
    "text",
    [
        "phone,sms\n1,0.01\n",
        "prefix,description\n1,x\n",
        "prefix,sms\n1a,0.01\n",
        "prefix,sms\n1,0.01\n1,0.02\n",
        "prefix,sms,currency\n1,0.01,DOLLARS\n",
        "prefix,sms\n12345678901234567,0.01\n",
        "prefix,sms\n١٢,0.01\n",
    ],
)
def test_parse_rates_csv_refuses(text: str) -> None:
    with pytest.raises(InvalidRates):
        rating.parse_rates_csv(text)


def test_usernames() -> None:
    assert normalise_username("  User888@Yahoo.CA ") == "user888@yahoo.ca"
    for bad in ("user", "@yahoo.ca", "user@localhost", "us er@yahoo.ca", "a" * 250 + "@x.ca"):
        with pytest.raises(InvalidUsername):
            normalise_username(bad)


def test_backoff() -> None:
    assert [outbox.backoff(n).total_seconds() for n in (1, 2, 3, 20)] == [30, 60, 120, 3600]


def test_resolve_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IVRGATE_DATABASE_URL", raising=False)
    assert resolve_url("", tmp_path) == f"sqlite:///{tmp_path / 'ivrgate.db'}"
    monkeypatch.setenv("IVRGATE_DATABASE_URL", "postgresql://u:p@127.0.0.1/ivr")
    assert resolve_url("", tmp_path) == "postgresql+psycopg://u:p@127.0.0.1/ivr"
    assert resolve_url("sqlite:///x.db", tmp_path) == "sqlite:///x.db"


def test_utc_datetime_refuses_naive_and_normalises() -> None:
    column = UtcDateTime()
    with pytest.raises(ValueError):
        column.process_bind_param(dt.datetime(2026, 1, 1), None)  # type: ignore[arg-type]
    later = dt.datetime(2026, 1, 1, 12, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert column.process_bind_param(later, None) == dt.datetime(2026, 1, 1, 10)  # type: ignore[arg-type]


def test_message_ids() -> None:
    ids = [new_message_id() for _ in range(100)]
    assert len(set(ids)) == 100 and all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    assert all(uuid.UUID(i).version == 7 and uuid.UUID(i).variant == uuid.RFC_4122 for i in ids)
    stamps = [int(i[:12], 16) for i in ids]  # the millisecond clock leads: IDs sort by creation time
    assert stamps == sorted(stamps) and abs(stamps[-1] - time.time() * 1000) < 60_000


def test_time_ordered_id_layout() -> None:
    assert time_ordered_id(0, 0) == "00000000000070008000000000000000"
    assert time_ordered_id((1 << 48) - 1, (1 << 74) - 1) == "ffffffffffff7fffbfffffffffffffff"
    assert time_ordered_id(1, 1 << 74) == time_ordered_id(1, 0)  # only 74 random bits count
    one = time_ordered_id(0x0123456789AB, 0xABC << 62 | 0x2AAA_AAAA_AAAA_AAAA)
    assert one == "0123456789ab7abcaaaaaaaaaaaaaaaa"
    assert uuid.UUID(one).version == 7
    for bad in (-1, 1 << 48):
        with pytest.raises(ValueError):
            time_ordered_id(bad, 0)
