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
