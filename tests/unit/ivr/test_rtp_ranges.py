"""Per-process RTP ranges (issue 12, item 9): pjsua binds RTP on first + 2k while 2k <= its port range
(measured: with 8 ports taken and a range of 8 it bound the 9th and 10th), RTCP one above; each
process of a pool must stay inside its own block."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ivr.settings import MIN_RTP_BLOCK, rtp_block, rtp_ports, rtp_range


@given(first=st.integers(1024, 60000), per_process=st.integers(0, 400), processes=st.integers(1, 64))
def test_ranges_of_a_pool_never_overlap(first: int, per_process: int, processes: int) -> None:
    used: set[int] = set()
    for index in range(processes):
        start, port_range = rtp_range(first, per_process, index)
        ports = set(rtp_ports(start, port_range))
        assert start % 2 == 0 and port_range >= 2  # pjsua reads 0 as 'no limit'
        assert not ports & used, f"process {index} overlaps an earlier one"
        used |= ports
    assert min(used) >= first
    assert max(used) < first + first % 2 + processes * rtp_block(per_process)


@given(per_process=st.integers(0, 400))
def test_a_block_is_used_whole(per_process: int) -> None:
    start, port_range = rtp_range(20000, per_process, 0)
    block = rtp_block(per_process)
    assert list(rtp_ports(start, port_range)) == list(range(20000, 20000 + block))
    assert block >= MIN_RTP_BLOCK and block % 2 == 0 and block <= max(per_process, MIN_RTP_BLOCK)


def test_the_default_settings_give_twenty_calls_a_process() -> None:
    start, port_range = rtp_range(20000, 40, 1)
    assert (start, port_range) == (20040, 38)
    assert len(rtp_ports(start, port_range)) // 2 == 20
    # the old arithmetic let process 0 bind 20040/20041, process 1's first pair
    assert 20040 not in rtp_ports(*rtp_range(20000, 40, 0))
