"""Caller-ID modes through Kamailio (Debian) set up the usual way (issue 12, item 6): it challenges
INVITEs (407) and refuses a From user that is not the authenticated user (403), as `auth_check(...,
"1")` does. `callerid_mode = "from"` with a caller ID is refused; `pai` passes, and Kamailio reads the
number from P-Asserted-Identity (it adds `X-Presented: <number>` for the test to see). SIPp behind
Kamailio answers and records what arrived. Skipped when kamailio is not installed."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ivr.settings import SipSettings
from tests.procfs import ports_free

from .conftest import Agent, Sipp, free_udp_port
from .test_settings import header, received, traced

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60),
              pytest.mark.skipif(shutil.which("kamailio") is None, reason="kamailio is not installed")]
MODULES = "/usr/lib/x86_64-linux-gnu/kamailio/modules/"
PASSWORD = "s3cret"

CONFIG = """#!KAMAILIO
debug=2
log_stderror=yes
fork=yes
children=1
disable_tcp=yes
disable_sctp=yes
auto_aliases=no
dns=no
rev_dns=no
listen=udp:127.0.0.1:{port}
mpath="{modules}"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "auth.so"
loadmodule "textops.so"
loadmodule "xlog.so"
loadmodule "maxfwd.so"
loadmodule "siputils.so"

request_route {{
    if (!mf_process_maxfwd_header("10")) {{ sl_send_reply("483", "Too Many Hops"); exit; }}
    if (has_totag()) {{ loose_route(); t_relay(); exit; }}
    if (is_method("CANCEL")) {{ t_relay(); exit; }}
    if (is_method("INVITE")) {{
        if (!pv_proxy_authenticate("$fd", "{password}", "0")) {{ proxy_challenge("$fd", "0"); exit; }}
        if ($au != $fU) {{
            xlog("L_NOTICE", "From user $fU is not the auth user $au\\n");
            sl_send_reply("403", "From user is not the auth user");
            exit;
        }}
        consume_credentials();
        if (is_present_hf("P-Asserted-Identity")) {{ append_hf("X-Presented: $(ai{{uri.user}})\\r\\n"); }}
        record_route();
    }}
    t_relay();
}}
"""


@pytest.fixture
def kamailio(tmp_path: Path) -> Iterator[Callable[[], int]]:
    """Start Kamailio on a free UDP port of 127.0.0.1 (in the foreground, ended by its PID)."""
    started: list[subprocess.Popen[str]] = []

    def start() -> int:
        port = free_udp_port()
        cfg = tmp_path / "kamailio.cfg"
        cfg.write_text(CONFIG.format(port=port, modules=MODULES, password=PASSWORD))
        log = (tmp_path / "kamailio.log").open("w")
        proc = subprocess.Popen(["kamailio", "-DD", "-E", "-f", str(cfg), "-m", "32", "-M", "8",
                                 "-Y", str(tmp_path), "-P", str(tmp_path / "kamailio.pid")],
                                stdout=log, stderr=subprocess.STDOUT, text=True)
        started.append(proc)
        deadline = time.monotonic() + 20
        while ports_free([port]) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)  # bound once its UDP socket exists
        assert proc.poll() is None and not ports_free([port]), (tmp_path / "kamailio.log").read_text()
        return port

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def through(kam_port: int, mode: str) -> SipSettings:
    return SipSettings(outbound_proxy=f"127.0.0.1:{kam_port}", trunk_host=f"127.0.0.1:{kam_port}",
                       username="gateway", password=PASSWORD, callerid_mode=mode)


def test_from_mode_is_refused_when_the_from_user_is_not_the_auth_user(
        make_ua: Callable[..., Agent], kamailio: Callable[[], int], sipp: Callable[..., Sipp]) -> None:
    kam = kamailio()
    peer = sipp("uas_no_key.xml")
    agent = make_ua(through(kam, "from"))
    agent.ua.call("c1", peer.uri, caller_id="+12505550123")
    (end,) = agent.log.wait("c1", "disconnected")
    assert end.sip_code == 403 and agent.log.of("c1", "answered") == []


def test_pai_mode_passes_and_the_number_is_asserted(make_ua: Callable[..., Agent],
                                                    kamailio: Callable[[], int],
                                                    sipp: Callable[..., Sipp], tmp_path: Path) -> None:
    kam = kamailio()
    peer, trace = traced(sipp, "uas_no_key.xml", tmp_path)
    agent = make_ua(through(kam, "pai"))
    agent.ua.call("c1", peer.uri, caller_id="+12505550123")
    agent.log.wait("c1", "answered")
    agent.ua.hangup("c1")
    assert agent.log.wait("c1", "disconnected")[0].sip_code == 200
    assert peer.wait() == 0, peer.errors()
    (invite,) = received(trace, "INVITE")
    assert re.match(r"<sip:gateway@127\.0\.0\.1>", header(invite, "From"))
    assert header(invite, "P-Asserted-Identity") == "<sip:+12505550123@127.0.0.1>"
    assert header(invite, "X-Presented") == "+12505550123"  # what Kamailio read from it
    assert not re.search(r"^Proxy-Authorization:", invite, re.MULTILINE)  # consumed by Kamailio
