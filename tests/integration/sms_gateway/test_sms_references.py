"""Concatenation references through the whole gateway: 300 two-part messages to one handset via `matrix`,
the SMS sender and the node SMSC; the references are read back from the octets the SMSC received."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sms import gsm
from tests.integration.sms.conftest import smsc  # noqa: F401  (fixture)
from tests.integration.sms.peer import Smsc
from tests.integration.sms_gateway.conftest import PASSWORD, USER, Gw, Receiver, receiver, wait_for  # noqa: F401
from tests.integration.sms_gateway.running import running_gateway

pytestmark = pytest.mark.integration

HANDSET = "+12505553000"
MESSAGES = 300
WINDOW = 256


def text_of(n: int) -> str:
    """Two GSM-7 parts, numbered at both ends so every part names its message."""
    body = "Disk usage on web-3 is above ninety percent; cleaning up old logs. " * 3
    return f"#{n:03d} {body}#{n:03d}"


@pytest.fixture(params=[8, 16], ids=["8-bit", "16-bit"])
def gw_bits(request: pytest.FixtureRequest, tmp_path: Path, smsc: Smsc,  # noqa: F811
            receiver: Receiver) -> Iterator[Gw]:  # noqa: F811
    smsc.configure(dlr=False)  # receipts are not what this is about
    with running_gateway(tmp_path, smsc, receiver, concat_ref_bits=request.param, window=64) as gw:
        yield gw


def submit(gw: Gw, count: int) -> None:
    for n in range(count):
        answer = gw.client.get("/matrix", params={"username": USER, "password": PASSWORD, "phone": HANDSET,
                                                  "txt": text_of(n)})
        assert "STATUSCODE: 200" in answer.text, answer.text


def parts_received(gw: Gw) -> list[dict[str, Any]]:
    return [s for s in gw.smsc.state()["submits"] if s["destination"] == HANDSET.lstrip("+")]


def test_no_reference_reused_within_a_window_and_the_udh_has_the_chosen_width(gw_bits: Gw) -> None:
    bits = gw_bits.settings.sms.concat_ref_bits
    submit(gw_bits, MESSAGES)
    wait_for(lambda: len(parts_received(gw_bits)) >= 2 * MESSAGES, timeout_s=120.0, what="every part")
    by_message: dict[int, list[tuple[gsm.Concat, bytes]]] = {}
    order: list[int] = []  # messages in the order their first part reached the SMSC
    for submit_sm in parts_received(gw_bits):
        octets = bytes.fromhex(submit_sm["sm_hex"])
        text, concat = gsm.decode(octets, submit_sm["data_coding"], submit_sm["esm_class"])
        assert concat is not None and concat.total == 2
        number = int(text[1:4]) if concat.seq == 1 else int(text[-3:])
        if number not in by_message:
            order.append(number)
        by_message.setdefault(number, []).append((concat, octets))
    assert sorted(by_message) == list(range(MESSAGES))
    header = bytes.fromhex("050003") if bits == 8 else bytes.fromhex("060804")  # IEI 0x00 / IEI 0x08
    for parts in by_message.values():
        assert sorted(c.seq for c, _ in parts) == [1, 2]
        assert len({c.reference for c, _ in parts}) == 1  # both parts of a message carry one reference
        assert all(octets[:3] == header for _, octets in parts)
    references = [by_message[n][0][0].reference for n in order]
    for start in range(len(references) - WINDOW + 1):
        window = references[start : start + WINDOW]
        assert len(set(window)) == WINDOW, f"a reference reused within messages {start}-{start + WINDOW - 1}"
    assert max(references) < (1 << bits)
    if bits == 16:
        assert len(set(references)) == MESSAGES  # 16 bits: no reuse at all in 300
