"""Settings of the IVR layer (prompt rendering, URL fetching)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class FetchSettings:
    """How voice URLs are fetched (http and https only)."""

    connect_timeout_s: float = 5.0
    total_timeout_s: float = 20.0
    max_bytes: int = 10 * 1024 * 1024
    max_redirects: int = 5
    allow_private: bool = False
    """Allow private, loopback and link-local addresses (tests; a LAN media server)."""
    allowed_networks: tuple[str, ...] = field(default_factory=tuple)
    """CIDRs allowed even when private addresses are refused, e.g. ('127.0.0.1/32',)."""
    user_agent: str = "ivrgate/0.1"


@dataclass(frozen=True)
class SipSettings:
    """How the SIP engine reaches the network and the trunk (docs/sip.md)."""

    bind_address: str = "127.0.0.1"
    port: int = 5080
    """SIP port of the first engine process; process i listens on port + i."""
    transport: str = "udp"
    """udp | tcp (for TLS toward a trunk, put a local Kamailio in front: docs/sip.md)."""
    public_address: str = ""
    """Address written into Contact/SDP when behind NAT; empty: the bound address."""
    rtp_port: int = 20000
    """First RTP port; each engine process gets its own range of rtp_ports_per_process."""
    rtp_ports_per_process: int = 40
    trunk_host: str = ""
    """Where calls go: `sip:{number}@{trunk_host}` by uri_template. Empty: numbers must be SIP URIs."""
    uri_template: str = "sip:{number}@{host}"
    registrar: str = ""
    """sip:registrar.example; empty: no registration (calling a proxy or an IP directly)."""
    username: str = ""
    password: str = ""
    realm: str = "*"
    outbound_proxy: str = ""
    caller_id: str = ""
    """From user part (a number); the job's callerid overrides it."""
    display_name: str = ""
    p_asserted_identity: bool = False
    codecs: tuple[str, ...] = ("PCMU/8000", "PCMA/8000", "G722/16000")
    """Codec priorities, highest first; codecs not listed are disabled (speex is off by default)."""
    user_agent: str = "ivrgate/0.1"
    calls_per_process: int = 4
    """pjsua2 wheels are built with PJSUA_MAX_CALLS = 4: more than 4 is refused."""
    processes: int = 2
    ring_timeout_s: float = 45.0
    rtp_timeout_s: float = 30.0
    """Hang up an answered call after this long without RTP from the far end (0: never)."""
    inband_dtmf: str = "auto"
    """auto (when no telephone-event was negotiated) | always | never."""
    inband_fallback: bool = False
    """With inband_dtmf auto: detect in-band tones even when telephone-event was negotiated, until the
    call's first RFC 4733 digit (for trunks that negotiate telephone-event and never send it)."""
    telephone_event_pt: int = 101
    """Payload type our offer gives telephone-event (RFC 4733): 101, what most carriers use; 96-127,
    or 0 for pjsua's own choice (120 with the default codecs)."""
    telephone_event_realign: bool = False
    """When an answer names another telephone-event type than our offer, re-INVITE once offering the
    answer's type (for trunks that send events on the type of their answer, against RFC 3264)."""
    log_level: int = 1
    """pjsip's own log level (0-6) into our logging."""


@dataclass(frozen=True)
class DialerSettings:
    """How voice jobs are dialled (ivr/dialer.py)."""

    max_concurrent: int = 16
    calls_per_second: float = 20.0
    retries: int = 0
    """Extra attempts for busy and unanswered calls."""
    retry_delay_s: float = 300.0
    response_timeout_s: float = 8.0
    """How long to wait for a key after the last play (the seed's response=1)."""
    max_call_s: float = 300.0
    hangup_grace_s: float = 10.0
    """After our hang-up, how long to wait for the engine's 'disconnected' before giving up."""
