"""SipSettings -> pjsua2 configuration: the endpoint, its transport, codecs, the account, call options.

Everything here runs on the SIP user agent's owner thread (it calls pjlib) and holds no state of
its own: `ivr.sip` keeps the objects it returns alive for as long as pjsua uses them.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import logging
import os
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pjsua2 as pj

from ivr.identity import DEFAULT_USER, caller_identity
from ivr.settings import SipSettings, rtp_range
from ivr.sip_media import RATE, LogWriter

log = logging.getLogger(__name__)

SIP_TIMEOUT_S = 32.0
"""pjsip's transaction timeout (64 x T1): a request without any response fails with 408 after it.
pjsua2 has no setting for it; pjsip_tsx_set_timers() changes T1 but not this timeout, which the
transaction layer fixes at build time (measured), so it stays 32 s."""
QUIET_LOG_LEVEL = 4
"""Below this pjsip log level, pjlib's start-up lines on stdout are suppressed."""


def error_text(exc: BaseException) -> str:
    """A non-empty one-line text for any exception; pjsua2's Error has an empty str() and keeps its
    text in `title` and `reason`."""
    if isinstance(exc, pj.Error):
        reason, title = str(exc.reason or ""), str(exc.title or "")
        text = f"{title}: {reason}" if title and reason and title not in reason else reason or title
        return text or f"pjsua2 error status {exc.status}"
    return str(exc) or type(exc).__name__


@contextlib.contextmanager
def stdout_silenced(silence: bool) -> Iterator[None]:
    """Point file descriptor 1 at /dev/null for the length of the block.

    libCreate prints its start-up lines with printf before any log writer can be installed (the
    writer only comes with libInit), so they would land in the process's stdout: the test phone's
    JSON lines, an engine's terminal. Python's own buffered stdout is flushed first so nothing of
    ours is lost, and fd 1 is restored afterwards.
    """
    if not silence:
        yield
        return
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def _native() -> ctypes.CDLL:
    """The wheel's extension module as a C library (pjproject and its OpenSSL are linked into it)."""
    return ctypes.CDLL(importlib.import_module("pjsua2._pjsua2").__file__)


def enable_digest_algorithms() -> None:
    """Register OpenSSL's digests so that pjsip can answer digest challenges.

    pjsip 2.15 computes MD5 digests through OpenSSL's EVP_get_digestbyname; the wheel's OpenSSL
    1.0.2 knows no digest by name until OpenSSL_add_all_digests() ran, which pjsip only does when it
    starts TLS. Without this every 401/407 fails with PJ_ENOTSUP ("The algorithm (MD5) referenced by
    algorithm_type is not supported") and registration or an authenticated INVITE never succeeds."""
    lib = _native()
    lib.EVP_get_digestbyname.restype = ctypes.c_void_p
    lib.EVP_get_digestbyname.argtypes = [ctypes.c_char_p]
    if not lib.EVP_get_digestbyname(b"MD5"):
        lib.OpenSSL_add_all_digests()


@dataclass
class Started:
    """What `start_endpoint` made: keep every field alive as long as the endpoint."""

    endpoint: Any
    writer: LogWriter
    transport_id: int
    local_port: int


def start_endpoint(s: SipSettings, *, port: int, max_calls: int) -> Started:
    """Create, initialise and start one Endpoint (no pjsua threads, null audio device), bind the SIP
    transport and set the codec priorities. Raises pj.Error (the endpoint is then destroyed again)."""
    ep = pj.Endpoint()
    started = Started(ep, LogWriter(), -1, 0)
    with stdout_silenced(s.log_level < QUIET_LOG_LEVEL):
        ep.libCreate()
    try:
        _init_endpoint(started, s, port=port, max_calls=max_calls)
    except BaseException:
        try:
            ep.libDestroy()
        except pj.Error as exc:
            log.warning("libDestroy after a failed start: %s", error_text(exc))
        raise
    return started


def _init_endpoint(started: Started, s: SipSettings, *, port: int, max_calls: int) -> None:
    ep = started.endpoint
    ep.libInit(endpoint_config(s, max_calls, started.writer))
    enable_digest_algorithms()
    tcfg = pj.TransportConfig()
    tcfg.port = port
    tcfg.boundAddress = s.bind_address
    tcfg.publicAddress = s.public_address
    kind = pj.PJSIP_TRANSPORT_TCP if s.transport.lower() == "tcp" else pj.PJSIP_TRANSPORT_UDP
    started.transport_id = ep.transportCreate(kind, tcfg)
    started.local_port = int(ep.transportGetInfo(started.transport_id).localName.rsplit(":", 1)[1])
    ep.libStart()
    ep.audDevManager().setNullDev()
    set_codecs(ep, s.codecs)
    set_g722_level()


def endpoint_config(s: SipSettings, max_calls: int, writer: LogWriter) -> Any:
    """EpConfig: pjsua runs no threads of its own (the owner thread polls), 8 kHz mono bridge.

    The null sound device is never auto-closed (sndAutoCloseTime -1): its clock drives the
    conference bridge, and only the bridge's ticks make a call's stream send RTP, RFC 4733
    telephone-events included. pjsua closes an idle device 1 s after the last call by default and
    reopens it only when a port is connected, so a later call that connects nothing (the test
    phone pressing keys) sent no RTP at all and its digits never left the process."""
    cfg = pj.EpConfig()
    cfg.uaConfig.threadCnt = 0
    cfg.uaConfig.mainThreadOnly = False
    cfg.uaConfig.maxCalls = max_calls
    cfg.uaConfig.userAgent = s.user_agent
    cfg.medConfig.threadCnt = 0
    cfg.medConfig.hasIoqueue = False
    cfg.medConfig.clockRate = RATE
    cfg.medConfig.sndClockRate = RATE
    cfg.medConfig.channelCount = 1
    cfg.medConfig.noVad = True
    cfg.medConfig.sndAutoCloseTime = -1
    cfg.logConfig.writer = writer
    cfg.logConfig.level = s.log_level
    cfg.logConfig.consoleLevel = s.log_level
    cfg.logConfig.decor = 0
    return cfg


def codec_priorities(available: list[str], wanted: tuple[str, ...]) -> dict[str, int]:
    """Priority per pjsua codec ID ('PCMU/8000/1'): 255, 254 ... in `wanted` order (matched by
    prefix, case-insensitive); 0 (disabled) for codecs not wanted."""
    lowered = [w.lower() for w in wanted]
    out: dict[str, int] = {}
    for cid in available:
        rank = next((i for i, w in enumerate(lowered) if cid.lower().startswith(w)), None)
        out[cid] = 0 if rank is None else 255 - rank
    return out


def set_codecs(ep: Any, wanted: tuple[str, ...]) -> None:
    """Apply `codec_priorities` to the endpoint: the SDP offer lists codecs in that order."""
    for cid, priority in codec_priorities([str(c.codecId) for c in ep.codecEnum2()], wanted).items():
        ep.codecSetPriority(cid, priority)


G722_PCM_SHIFT = 1
"""Bits pjmedia's G.722 codec shifts 16-bit PCM by: right before encoding, left after decoding.
pjmedia's default, 2, treats 16-bit audio as G.722's 14-bit input; other implementations (ffmpeg's,
and the spandsp-derived ones in common PBXs) take 16-bit PCM at full level, so what we sent decoded
6.0 dB quieter than the same prompt on G.711 there, and what they sent us decoded 6 dB louder.
Measured with ffmpeg's decoder (self-consistent to 0.01 dB from -18 to -1 dBFS): docs/sip.md."""


def set_g722_level(shift: int = G722_PCM_SHIFT) -> None:
    """Set pjmedia's G.722 level shift (applies to G.722 streams opened afterwards; pjsua2 has no
    setting for it, the wheel exports pjmedia_codec_g722_set_pcm_shift)."""
    lib = _native()
    lib.pjmedia_codec_g722_set_pcm_shift.argtypes = [ctypes.c_uint]
    lib.pjmedia_codec_g722_set_pcm_shift.restype = ctypes.c_int
    status = lib.pjmedia_codec_g722_set_pcm_shift(shift)
    if status != 0:
        log.warning("pjmedia_codec_g722_set_pcm_shift(%d): status %d", shift, status)


def proxy_uri(proxy: str) -> str:
    """The outbound proxy as a loose-routing SIP URI: 'host:port' gets 'sip:', and ';lr' is added.

    Without ';lr' pjsip treats the proxy as a strict router and puts the proxy's own URI in the
    request line, where the callee belongs."""
    uri = proxy if proxy.lower().startswith(("sip:", "sips:")) else f"sip:{proxy}"
    params = [p.strip().lower() for p in uri.split(";")[1:]]
    return uri if "lr" in params or any(p.startswith("lr=") for p in params) else f"{uri};lr"


def auth_credentials(s: SipSettings) -> Any:
    """Digest credentials for `s.username` in `s.realm` ('*': any realm) with a plain password."""
    # algoType stays NOT_SET: pjsip then answers with the challenge's own algorithm (MD5, SHA-256)
    return pj.AuthCredInfo("digest", s.realm, s.username, pj.PJSIP_CRED_DATA_PLAIN_PASSWD, s.password)


def account_config(s: SipSettings, *, transport_id: int, local_port: int, rtp_port: int) -> Any:
    """AccountConfig: identity, optional registration and credentials, proxy, RTP port range."""
    acfg = pj.AccountConfig()
    host = s.public_address or s.bind_address
    own = "" if s.callerid_mode == "pai" else s.caller_id  # pai: the account is the auth user
    user = own or s.username or DEFAULT_USER
    acfg.idUri = f"sip:{user}@{host}:{local_port}"
    if s.registrar:
        acfg.idUri = f"sip:{s.username or user}@{s.registrar.removeprefix('sip:')}"
        acfg.regConfig.registrarUri = s.registrar
    if s.username:
        acfg.sipConfig.authCreds.append(auth_credentials(s))
    if s.outbound_proxy:
        acfg.sipConfig.proxies.append(proxy_uri(s.outbound_proxy))
    acfg.sipConfig.transportId = transport_id
    # the range starting at rtp_port that rtp_range() gave this process (index 0 of its own pool)
    first, port_range = rtp_range(rtp_port, s.rtp_ports_per_process, 0)
    acfg.mediaConfig.transportConfig.port = first
    acfg.mediaConfig.transportConfig.portRange = port_range
    acfg.mediaConfig.transportConfig.boundAddress = s.bind_address
    acfg.mediaConfig.transportConfig.publicAddress = s.public_address
    return acfg


def call_param(s: SipSettings, caller_id: str, display_name: str, headers: Mapping[str, str]) -> Any:
    """CallOpParam of an outgoing call: From, P-Asserted-Identity, Privacy (ivr.identity) and extra
    headers. Raises ivr.identity.InvalidCallerId for a caller ID that is not a number."""
    prm = pj.CallOpParam(True)
    identity = caller_identity(s, caller_id, display_name)
    if identity.from_header:
        prm.txOption.localUri = identity.from_header
    for name, value in {**identity.headers, **headers}.items():
        hdr = pj.SipHeader()
        hdr.hName, hdr.hValue = name, value
        prm.txOption.headers.append(hdr)
    return prm
