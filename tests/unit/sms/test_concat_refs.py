"""Concatenation references of long SMS: 16-bit UDHs (sms.gsm), and the sender's per-destination
allocation from the store's counter, kept across a new claim of the same message."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sms import gsm
from sms.sender import SenderOptions, SmsSender
from store import queue
from store.clock import utc_now
from tests.unit.sms.conftest import Store
from tests.unit.sms.stand_in import StandInEsme, add_sms, read, run_until

GSM_CHARS = "@£$¥èé\nØø !\"#%&'()*+,-./0123456789:;<=>?ABCZÄÖÑÜ§¿azäöñüà^{}\\[~]|€"
TWO_PARTS = "Server down again, restarting the pool now; next report in ten minutes. " * 3
OTHER = "+12505550999"


def options(**overrides: object) -> SenderOptions:
    given: dict[str, object] = {"worker_id": "test:1", "poll_interval_s": 0.05, **overrides}
    return SenderOptions(**given)  # type: ignore[arg-type]


def test_sixteen_bit_udh_on_the_wire() -> None:
    encoded = gsm.encode("a" * 200, reference=0x1234, reference_bits=16)
    assert encoded.parts[0][:7] == bytes.fromhex("06080412340201")
    assert encoded.parts[1][:7] == bytes.fromhex("06080412340202")
    assert gsm.decode(encoded.parts[0], encoded.data_coding, encoded.esm_class)[1] == gsm.Concat(0x1234, 2, 1)


@pytest.mark.parametrize(("text", "eight", "sixteen"), [
    ("a" * 306, 2, 3),  # 2 x 153 septets, but 152 behind the longer header
    ("a" * 304, 2, 2),
    ("你" * 134, 2, 3),  # 2 x 67 units, 66 behind the longer header
    ("a" * 160, 1, 1),  # one SMS has no header at all
])
def test_parts_are_one_character_shorter_with_sixteen_bits(text: str, eight: int, sixteen: int) -> None:
    assert gsm.count_parts(text, 10) == eight
    assert gsm.count_parts(text, 10, reference_bits=16) == sixteen
    assert len(gsm.encode(text, reference=1, max_parts=10, reference_bits=16).parts) == sixteen


def test_reference_width_is_8_or_16() -> None:
    with pytest.raises(ValueError, match="8 or 16"):
        gsm.encode("a" * 200, reference=1, reference_bits=12)
    with pytest.raises(ValueError, match="8 or 16"):
        options(concat_ref_bits=9)


@given(st.text(alphabet=GSM_CHARS, max_size=900) | st.text(max_size=400), st.integers(0, 0xFFFF))
@settings(max_examples=200)
def test_sixteen_bit_round_trip_and_air_size(text: str, reference: int) -> None:
    encoded = gsm.encode(text, reference=reference, max_parts=20, reference_bits=16)
    texts = []
    for part in encoded.parts:
        assert gsm.air_octets(part, encoded.data_coding, encoded.esm_class) <= gsm.AIR_OCTETS
        decoded, concat = gsm.decode(part, encoded.data_coding, encoded.esm_class)
        assert (concat is None) == (len(encoded.parts) == 1)
        assert concat is None or concat.reference == reference
        texts.append(decoded)
    assert gsm.join_parts(texts) == text
    assert len(encoded.parts) == gsm.count_parts(text, 20, reference_bits=16)


def references(esme: StandInEsme) -> dict[str, set[int]]:
    """message id -> the references its parts carried."""
    found: dict[str, set[int]] = {}
    for part in esme.parts:
        _, concat = gsm.decode(part.short_message, part.data_coding, part.esm_class)
        if concat is not None:
            found.setdefault(part.key.rsplit(":", 1)[0], set()).add(concat.reference)
    return found


@pytest.mark.parametrize("bits", [8, 16])
def test_references_count_per_destination_across_rounds(store: Store, bits: int) -> None:
    first = [add_sms(store, TWO_PARTS) for _ in range(3)]
    short = add_sms(store, "short")
    other = add_sms(store, TWO_PARTS, phone=OTHER)
    later = add_sms(store, TWO_PARTS)
    sender = SmsSender(store.db, options(concat_ref_bits=bits, batch=2), now=utc_now)  # 3 claim rounds
    esme = StandInEsme(sender)
    done = [*first, short, other, later]
    asyncio.run(run_until(sender, esme, lambda: all(read(store.db, m).finished_at for m in done)))
    refs = references(esme)
    assert [refs[m] for m in [*first, later]] == [{0}, {1}, {2}, {3}]
    assert refs[other] == {0} and short not in refs
    assert all(gsm.air_octets(p.short_message, p.data_coding, p.esm_class) <= gsm.AIR_OCTETS
               for p in esme.parts)
    if bits == 16:
        assert all(p.short_message[:3] == bytes.fromhex("060804") for p in esme.parts if p.esm_class)


def test_a_message_claimed_again_keeps_its_reference(store: Store) -> None:
    message_id = add_sms(store, TWO_PARTS)
    sender = SmsSender(store.db, options(), now=utc_now)
    with store.db.transaction() as session:  # a sender claims it, then dies before sending
        (claimed,) = sender._claim(session, 10)
    assert claimed.reference == 0
    add_sms(store, TWO_PARTS)  # counter 1 goes to another message meanwhile
    with store.db.transaction() as session:  # the lease ran out: back in the queue
        message = queue.get_message(session, message_id)
        message.lease_expires_at = message.lease_expires_at - dt.timedelta(hours=1)
    again = SmsSender(store.db, options(worker_id="test:2"), now=utc_now)
    with store.db.transaction() as session:
        claims = {c.id: c.reference for c in again._claim(session, 10)}
    assert claims[message_id] == 0 and sorted(claims.values()) == [0, 1]
