"""The test phone's front (ivr.phone_front.FrontRouter): a stateless SIP proxy in front of several
phone processes. Pure: datagrams and clock readings in, datagrams out."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ivr.phone_front import BRANCH_PREFIX, FORGET_S, FrontRouter, parse_message, via_branch

CALLER = ("127.0.0.1", 5080)
ME = ("127.0.0.1", 5070)
KIDS = [("127.0.0.1", 6001), ("127.0.0.1", 6002)]


def request(method: str, call_id: str, *, branch: str = "z9hG4bK-a", cseq: int = 1,
            body: bytes = b"") -> bytes:
    head = (f"{method} sip:1000@127.0.0.1:5070 SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:5080;rport;branch={branch}\r\n"
            "Max-Forwards: 70\r\n"
            "From: <sip:ivrgate@127.0.0.1>;tag=f1\r\n"
            "To: <sip:1000@127.0.0.1>\r\n"
            f"Call-ID: {call_id}\r\n"
            f"CSeq: {cseq} {method}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")
    return head.encode() + body


def response_to(forwarded: bytes, code: int, text: str = "X") -> bytes:
    """What a child answers: the request's Via lines (ours on top), Call-ID and CSeq."""
    msg = parse_message(forwarded)
    assert msg is not None
    lines = [f"SIP/2.0 {code} {text}"]
    lines += [f"{k}: {v}" for k, v in msg.headers if k in ("Via", "From", "To", "Call-ID", "CSeq")]
    return ("\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n").encode()


def test_invites_go_to_the_least_loaded_child_with_our_via_on_top() -> None:
    router = FrontRouter(KIDS, ME, capacity=4)
    sdp = b"v=0\r\nm=audio 4000 RTP/AVP 0\r\n"
    targets = []
    for i in range(4):
        ((data, to),) = router.route(request("INVITE", f"call-{i}", body=sdp), CALLER, 0.0)
        targets.append(to)
        msg = parse_message(data)
        assert msg is not None and msg.body == sdp
        assert msg.headers[0][0] == "Via" and f"{ME[0]}:{ME[1]}" in msg.headers[0][1]
        assert via_branch(msg.headers[0][1]).startswith(BRANCH_PREFIX)
        assert msg.get("max-forwards") == "69"
        assert [k for k, _ in msg.headers].count("Via") == 2
    assert targets == [KIDS[0], KIDS[1], KIDS[0], KIDS[1]]
    assert router.load() == [2, 2]


def test_responses_lose_our_via_and_go_back_to_the_caller() -> None:
    router = FrontRouter(KIDS, ME)
    ((fwd, child),) = router.route(request("INVITE", "c1"), CALLER, 0.0)
    ((back, to),) = router.route(response_to(fwd, 180, "Ringing"), child, 0.1)
    msg = parse_message(back)
    assert to == CALLER and msg is not None and msg.status == 180
    assert [v for k, v in msg.headers if k == "Via"] == ["SIP/2.0/UDP 127.0.0.1:5080;rport;branch=z9hG4bK-a"]


def test_cancel_and_retransmissions_follow_the_invite() -> None:
    router = FrontRouter(KIDS, ME)
    router.route(request("INVITE", "other"), CALLER, 0.0)
    ((first, child),) = router.route(request("INVITE", "c1"), CALLER, 0.0)
    ((again, child2),) = router.route(request("INVITE", "c1"), CALLER, 0.5)
    ((cancel, child3),) = router.route(request("CANCEL", "c1"), CALLER, 0.6)
    assert child == child2 == child3 == KIDS[1] and first == again
    def top(d: bytes) -> str:
        m = parse_message(d)
        assert m is not None
        return m.headers[0][1]
    assert via_branch(top(cancel)) == via_branch(top(first))  # RFC 3261: CANCEL matches its INVITE
    assert router.load() == [1, 1]  # a retransmission is not a second call


def test_a_failed_invite_frees_its_slot_and_its_ack_reaches_the_same_child() -> None:
    router = FrontRouter(KIDS[:1], ME, capacity=1)
    ((fwd, child),) = router.route(request("INVITE", "c1"), CALLER, 0.0)
    router.route(response_to(fwd, 486, "Busy Here"), child, 0.1)
    assert router.load() == [0]
    ((_, to),) = router.route(request("ACK", "c1"), CALLER, 0.2)
    assert to == child


def test_when_every_child_is_full_the_front_refuses_with_486_and_logs(
        caplog: pytest.LogCaptureFixture) -> None:
    router = FrontRouter(KIDS, ME, capacity=1)
    router.route(request("INVITE", "c1"), CALLER, 0.0)
    router.route(request("INVITE", "c2"), CALLER, 0.0)
    with caplog.at_level(logging.WARNING, logger="ivr.phone_front"):
        ((data, to),) = router.route(request("INVITE", "c3"), CALLER, 0.0)
    msg = parse_message(data)
    assert to == CALLER and msg is not None and msg.status == 486
    assert msg.get("call-id") == "c3" and ";tag=" in msg.get("to") and msg.get("cseq") == "1 INVITE"
    assert router.refused == 1 and "refused call c3 with 486" in caplog.text
    router.ended("c1", 5.0)  # the child reported the call over
    ((_, to),) = router.route(request("INVITE", "c4"), CALLER, 5.0)
    assert to == KIDS[0]


def test_finished_calls_are_forgotten() -> None:
    router = FrontRouter(KIDS, ME)
    router.route(request("INVITE", "c1"), CALLER, 0.0)
    router.ended("c1", 1.0)
    router.route(request("OPTIONS", "ping"), CALLER, 1.0 + FORGET_S + 1)
    assert router.calls == {} and router.branches == {}


def test_stray_requests_and_junk() -> None:
    router = FrontRouter(KIDS, ME)
    assert router.route(b"\r\n\r\n", CALLER, 0.0) == []
    assert router.route(request("ACK", "nobody"), CALLER, 0.0) == []
    ((bye, _),) = router.route(request("BYE", "nobody"), CALLER, 0.0)
    assert bye.startswith(b"SIP/2.0 481 ")
    assert router.route(request("INVITE", "x"), KIDS[0], 0.0) == []  # requests from a child are not ours
    assert router.route(response_to(request("INVITE", "y"), 200), KIDS[0], 0.0) == []  # not through us


@given(st.binary(max_size=400))
def test_any_datagram_is_handled_without_raising(data: bytes) -> None:
    FrontRouter(KIDS, ME).route(data, CALLER, 0.0)
