"""ivr.events is the pjsua2-free half of the SIP engine: the parent process (API, dialer, pool) must be
able to import everything it needs without loading pjsua2."""

from __future__ import annotations

import subprocess
import sys
from typing import get_args

from ivr.engine import SIP_KINDS, decode_event, encode_event
from ivr.events import DigitSource, EventKind, SipEvent

PARENT_MODULES = ("ivr.events", "ivr.engine", "ivr.pool", "ivr.dialer")


def test_the_parent_side_never_loads_pjsua2() -> None:
    imports = ", ".join(PARENT_MODULES)
    code = f"import sys; import {imports}; print(sorted(m for m in sys.modules if 'pjsua' in m))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"


def test_the_control_check_sees_pjsua2_when_it_is_loaded() -> None:
    code = "import sys, ivr.sip; print('pjsua2' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip().splitlines()[-1] == "True"


def test_sip_re_exports_the_same_types() -> None:
    import ivr.sip

    assert ivr.sip.SipEvent is SipEvent and ivr.sip.EventKind is EventKind


def test_every_event_kind_crosses_the_engine_wire() -> None:
    assert set(get_args(EventKind)) == SIP_KINDS
    for kind in get_args(EventKind):
        event = SipEvent(ref="registration" if kind == "registration" else "c1", kind=kind, t=1.5,
                         sip_code=401, reason="Unauthorized")
        assert decode_event(encode_event(event)) == event
    assert set(get_args(DigitSource)) == {"rfc4733", "info", "inband", ""}
