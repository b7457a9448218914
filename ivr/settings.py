"""Settings of the IVR layer (prompt rendering, URL fetching)."""

from __future__ import annotations

from dataclasses import dataclass, field

from audio import TELEPHONY_RATE


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
class PromptSettings:
    """Limits of rendered prompts (docs/prompts.md, "Limits")."""

    max_seconds: float = 600.0
    """Longest prompt: checked from its texts (and known audio) before rendering, and after assembly."""
    cache_max_bytes: int = 1024 * 1024 * 1024
    """Size cap of <cache_dir>/prompts; least recently used prompts are evicted past it."""
    listen_per_minute: float = 30.0
    """Listen renders a user may ask for per minute (each HTTP process), after a burst of listen_burst."""
    listen_burst: int = 10

    def __post_init__(self) -> None:
        if self.max_seconds <= 0:
            raise ValueError("prompt.max_seconds must be > 0")
        if self.listen_per_minute <= 0 or self.listen_burst < 1:
            raise ValueError("prompt.listen_per_minute must be > 0 and prompt.listen_burst >= 1")
        longest = int(self.max_seconds * TELEPHONY_RATE) * 2 + 44
        if self.cache_max_bytes < longest:
            raise ValueError(f"prompt.cache_max_bytes must hold the longest prompt: at least {longest}")


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
    """Ports of each process's RTP range (rounded down to an even number, at least 4): an RTP/RTCP
    pair per call, so 8 carry the 4 calls of one process; `rtp_range` gives each process its range."""
    trunk_host: str = ""
    """Where calls go: `sip:{number}@{trunk_host}` by uri_template. Empty: numbers must be SIP URIs."""
    uri_template: str = "sip:{number}@{host}"
    registrar: str = ""
    """sip:registrar.example; empty: no registration (calling a proxy or an IP directly)."""
    register_wait_s: float = 15.0
    """With a registrar: how long a call waits for the first REGISTER to succeed before it fails with
    `Call failed (registration)`; a failed registration fails calls at once (docs/sip.md)."""
    username: str = ""
    password: str = ""
    realm: str = "*"
    outbound_proxy: str = ""
    caller_id: str = ""
    """From user part (a number); the job's callerid overrides it."""
    display_name: str = ""
    p_asserted_identity: bool = False
    """`from` mode: also send the caller ID as P-Asserted-Identity."""
    callerid_mode: str = "from"
    """from: the caller ID is the From user (From domain: registrar, else trunk, else our address);
    pai: From is the auth user and the caller ID goes in P-Asserted-Identity (ivr.identity)."""
    callerid_privacy: bool = False
    """Add `Privacy: id` (the callee's network hides the asserted number)."""
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

    def __post_init__(self) -> None:
        if self.callerid_mode not in ("from", "pai"):
            raise ValueError(f"callerid_mode must be from or pai, not {self.callerid_mode!r}")
        if self.register_wait_s < 0:
            raise ValueError(f"register_wait_s must be >= 0, not {self.register_wait_s!r}")
        if self.telephone_event_pt and not 96 <= self.telephone_event_pt <= 127:
            raise ValueError(f"telephone_event_pt must be 0 or 96-127, not {self.telephone_event_pt}")
        from ivr.identity import check_caller_id  # ivr.identity imports this module

        check_caller_id(self.caller_id)


@dataclass(frozen=True)
class DialerSettings:
    """How voice jobs are dialled (ivr/dialer.py, applied by the voice worker)."""

    max_concurrent: int = 16
    """Calls one node holds at once (with the engine pool's capacity); also each account's limit of
    calls at once, over every node, unless the account sets its own (accounts.max_concurrent_calls)."""
    calls_per_second: float = 20.0
    """Each account's call attempts per second, over every node, unless the account sets its own
    (accounts.calls_per_second)."""
    retries: int = 0
    """Extra attempts for busy and unanswered calls."""
    retry_delay_s: float = 300.0
    response_timeout_s: float = 8.0
    """How long to wait for a key after the last play (the seed's response=1)."""
    max_call_s: float = 300.0
    hangup_grace_s: float = 10.0
    """After our hang-up, how long to wait for the engine's 'disconnected' before giving up."""


MIN_RTP_BLOCK = 4
"""The smallest RTP range of one process: pjsua reads a port range of 0 as 'no limit'."""


def rtp_block(ports_per_process: int) -> int:
    """The ports each process's RTP range really spans: even (RTP on even ports, RTCP on the next odd
    one, so every range starts on an even port), at least MIN_RTP_BLOCK."""
    return max(MIN_RTP_BLOCK, ports_per_process - ports_per_process % 2)


def rtp_range(first_port: int, ports_per_process: int, index: int) -> tuple[int, int]:
    """(first RTP port, pjsua port range) of process `index` of a pool whose ranges start at
    `first_port` (rounded up to even).

    pjsua binds RTP on first + 2k while first + 2k <= first + port range, and RTCP one above it, so a
    range of `block` ports needs a pjsua port range of block - 2: with the block itself the last RTP
    port was the next process's first one, and its RTCP the next one's second (issue 12, item 9)."""
    block = rtp_block(ports_per_process)
    base = first_port + first_port % 2
    return base + index * block, block - 2


def rtp_ports(first: int, port_range: int) -> range:
    """Every port pjsua may bind for RTP and RTCP given `rtp_range`'s answer (the rule above)."""
    return range(first, first + port_range + 2)
