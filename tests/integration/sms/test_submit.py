"""Submitting to the node SMSC: alphabets, concatenation, receipts, refusals, binds and enquire_link.

The SMSC decodes every short_message with node-smpp's own GSM 03.38 and UCS-2 coders, so the texts it
records are an independent check of sms.gsm.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from sms import gsm
from sms.smpp import OutgoingPart
from tests.integration.sms.conftest import Recorder, settings_for, wait_until
from tests.integration.sms.peer import Smsc

pytestmark = pytest.mark.integration


def parts_of(key: str, text: str, reference: int = 1, *, registered: bool = True,
             source: str = "+12505550100", **options: Any) -> list[OutgoingPart]:
    encoded = gsm.encode(text, reference=reference, **options)
    return [OutgoingPart(f"{key}:{i}", source, "+12505550199", part, encoded.data_coding, encoded.esm_class,
                         registered) for i, part in enumerate(encoded.parts)]


async def send_all(smsc: Smsc, parts: list[OutgoingPart], rec: Recorder | None = None,
                   **overrides: Any) -> Recorder:
    rec = rec or Recorder()
    esme = rec.esme(settings_for(smsc, **overrides))
    await esme.start()
    for part in parts:
        await esme.submit(part)
    await wait_until(lambda: len(rec.accepted) + len(rec.refused) >= len(parts), what="all outcomes")
    await esme.stop()
    return rec


def node_text(submits: list[dict[str, Any]]) -> str:
    return "".join(s["text"] for s in submits)


def test_gsm7_single_part_exact_octets(smsc: Smsc) -> None:
    text = "Hello @ £5, ¿ok? Ñandu {braces} [x] ~€|"
    parts = parts_of("m1", text)
    rec = asyncio.run(send_all(smsc, parts))
    (sub,) = smsc.state()["submits"]
    assert sub["data_coding"] == 0 and sub["esm_class"] == 0
    assert bytes.fromhex(sub["sm_hex"]) == parts[0].short_message
    assert sub["text"] == text
    assert sub["source"] == "12505550100" and sub["source_ton"] == 1 and sub["destination"] == "12505550199"
    assert rec.accepted == {"m1:0": [sub["id"]]}


@pytest.mark.parametrize("text", ["你好，世界！今天天气很好。", "¿Cómo está? Sí, mañana a las ocho. Adiós."])
def test_ucs2_chinese_and_spanish(smsc: Smsc, text: str) -> None:
    asyncio.run(send_all(smsc, parts_of("u", text)))
    (sub,) = smsc.state()["submits"]
    assert sub["data_coding"] == 8
    assert sub["text"] == text
    assert bytes.fromhex(sub["sm_hex"]) == text.encode("utf-16-be")


def test_300_characters_concatenated(smsc: Smsc) -> None:
    text = "".join(chr(ord("a") + i % 26) for i in range(300))
    asyncio.run(send_all(smsc, parts_of("long", text, reference=77)))
    submits = smsc.state()["submits"]
    assert [s["udh_hex"] for s in submits] == ["00034d0201", "00034d0202"]  # node lists the IEs
    assert [s["sm_hex"][:12] for s in submits] == ["0500034d0201", "0500034d0202"]
    assert all(s["esm_class"] & 0x40 for s in submits)
    assert [len(bytes.fromhex(s["sm_hex"])) for s in submits] == [6 + 153, 6 + 147]
    assert node_text(submits) == text


def test_ucs2_concatenated(smsc: Smsc) -> None:
    text = "短信网关测试" * 25
    asyncio.run(send_all(smsc, parts_of("zh", text, reference=9)))
    submits = smsc.state()["submits"]
    assert len(submits) == 3 and all(s["data_coding"] == 8 for s in submits)
    assert node_text(submits) == text


def test_extended_character_at_part_boundary(smsc: Smsc) -> None:
    text = "x" * 152 + "€" + "y" * 20
    asyncio.run(send_all(smsc, parts_of("edge", text)))
    first, second = smsc.state()["submits"]
    assert len(bytes.fromhex(first["sm_hex"])) == 6 + 152
    assert first["text"] == "x" * 152 and second["text"] == "€" + "y" * 20


@pytest.mark.parametrize("setting", [True, False])
def test_message_payload(smsc: Smsc, setting: bool) -> None:
    """Always with the setting; without it, for a text longer than one SMS that has no UDH."""
    text = "payload " * 40
    parts = parts_of("p", text, use_payload=True)
    asyncio.run(send_all(smsc, parts, use_message_payload=setting))
    (sub,) = smsc.state()["submits"]
    assert sub["sm_hex"] == "" and sub["payload"] == text


def test_alphanumeric_sender(smsc: Smsc) -> None:
    asyncio.run(send_all(smsc, parts_of("a", "hi", source="IVRGATE")))
    (sub,) = smsc.state()["submits"]
    assert (sub["source"], sub["source_ton"], sub["source_npi"]) == ("IVRGATE", 5, 0)


def test_receipts_correlated_with_submissions(smsc: Smsc) -> None:
    parts = [p for i in range(10) for p in parts_of(f"r{i}", f"receipt test {i} " * (1 + 12 * (i % 2)))]
    rec = asyncio.run(_with_receipts(smsc, parts))
    ids = {ids[0]: key for key, ids in rec.accepted.items()}
    assert len(ids) == len(parts) == 15
    assert sorted(ids[r.smsc_id] for r in rec.receipts) == sorted(p.key for p in parts)
    assert {r.state for r in rec.receipts} == {"DELIVRD"}
    assert all(r.done_at is not None and r.error == "000" for r in rec.receipts)
    assert smsc.state()["stats"]["deliver_ok"] == 15


async def _with_receipts(smsc: Smsc, parts: list[OutgoingPart], **overrides: Any) -> Recorder:
    rec = Recorder()
    esme = rec.esme(settings_for(smsc, **overrides))
    await esme.start()
    for part in parts:
        await esme.submit(part)
    await wait_until(lambda: len(rec.receipts) >= len(parts), what="every receipt")
    await esme.stop()
    return rec


def test_text_form_receipt_undeliverable(smsc: Smsc) -> None:
    smsc.configure(dlr_tlv=False, dlr_state="UNDELIV", dlr_err="011")
    rec = asyncio.run(_with_receipts(smsc, parts_of("x", "will fail")))
    (receipt,) = rec.receipts
    assert receipt.smsc_id == rec.accepted["x:0"][0]
    assert (receipt.state, receipt.error) == ("UNDELIV", "011")
    assert "stat:UNDELIV" in receipt.text


def test_no_receipt_when_not_requested(smsc: Smsc) -> None:
    asyncio.run(send_all(smsc, parts_of("n", "no receipt please", registered=False)))
    state = smsc.state()
    assert state["submits"][0]["registered_delivery"] == 0 and state["stats"]["dlr_sent"] == 0


def test_refusal_is_final_and_reported(smsc: Smsc) -> None:
    smsc.configure(refuse_next=1, refuse_status=0x0B)
    rec = asyncio.run(send_all(smsc, parts_of("bad", "first") + parts_of("good", "second")))
    assert rec.refused == [("bad:0", 0x0B, "ESME_RINVDSTADR")]
    assert list(rec.accepted) == ["good:0"]
    assert smsc.state()["stats"]["received"] == 2


def test_transmitter_and_receiver_pair(smsc: Smsc) -> None:
    async def scenario() -> Recorder:
        rec = Recorder()
        esme = rec.esme(settings_for(smsc, bind="transmitter+receiver"))
        await esme.start()
        await esme.submit(parts_of("t", "two binds")[0])
        await wait_until(lambda: len(rec.receipts) == 1, what="receipt on the receiver")
        smsc.send_mo("+12505550123", "+12505550100", "reply on the receiver")
        await wait_until(lambda: len(rec.incoming) == 1, what="MO on the receiver")
        await esme.stop()
        return rec

    rec = asyncio.run(scenario())
    assert rec.receipts[0].smsc_id == rec.accepted["t:0"][0]
    assert (rec.incoming[0].source, rec.incoming[0].text) == ("+12505550123", "reply on the receiver")
    assert smsc.state()["stats"]["binds"] == 2


def test_bind_refused_then_retried(smsc: Smsc) -> None:
    async def scenario() -> bool:
        esme = Recorder().esme(settings_for(smsc, password="wrong"))
        await esme.start()
        await wait_until(lambda: smsc.state()["stats"]["bind_failures"] >= 2, what="a second bind attempt")
        connected = esme.connected
        await esme.stop(timeout_s=0.1)
        return connected

    assert asyncio.run(scenario()) is False


def test_enquire_link_sent(smsc: Smsc) -> None:
    async def scenario() -> None:
        esme = Recorder().esme(settings_for(smsc, enquire_link_s=0.1))
        await esme.start()
        await wait_until(lambda: smsc.state()["stats"]["enquire_links"] >= 2, what="enquire_link")
        assert esme.connected
        await esme.stop()

    asyncio.run(scenario())
    assert smsc.state()["stats"]["unbinds"] == 1
