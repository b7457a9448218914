"""Settings of the TTS layer."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class TTSSettings:
    engine: str = "espeak"
    """espeak (default, offline) | flite | festival | gtts (online, optional extra)."""
    rate_wpm: int = 160
    """Speaking rate in words per minute (espeak-ng's scale; other engines map it)."""
    pitch: int = 50
    """espeak-ng pitch, 0-99."""
    max_text_chars: int = 2000
    gtts_timeout_s: float = 10.0
    cache_dir: Path | None = None
    """Where rendered segments are kept; None means no cache."""
    cache_max_bytes: int = 512 * 1024 * 1024
    voices: dict[str, str] = field(default_factory=dict)
    """Optional overrides of engine voice names, keyed 'us-female', 'es-male', ..."""
    subprocess_timeout_s: float = 30.0
    """Longest a flite or festival process may run for one segment before it is killed."""
    gtts_backoff_s: float = 30.0
    """After gTTS fails to reach its server, further requests fail at once for this long."""
