"""Settings of the audio layer (plain dataclasses; api.core.settings fills them from the environment and
TOML)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DecodeLimits:
    """What decode() accepts: input size in bytes, duration in seconds and decoded samples."""

    max_bytes: int = 10 * 1024 * 1024
    max_seconds: float = 300.0
    max_samples: int = 300 * 48000 * 2
    """Decoded samples (frames x channels, that is rate x channels x seconds): 300 s of 48 kHz stereo.
    A few KB of FLAC can announce hours of 8 channels at 384 kHz; this refuses them from the header."""


@dataclass(frozen=True)
class TelephonySettings:
    """How any audio becomes telephony audio (8 kHz mono int16)."""

    normalize: bool = True
    """Normalise loudness to target_lufs; off for analysis that needs absolute levels (DTMF in dBm0)."""
    target_lufs: float = -19.0
    """Integrated loudness target (ITU-R BS.1770); -19 LUFS sits well for narrow-band voice."""
    peak_ceiling_dbfs: float = -1.0
    """Sample peak never exceeds this after normalisation: gain is reduced rather than clipping."""
    max_gain_db: float = 40.0
    """Largest loudness gain: near-silent input (noise, out-of-band residue) is not blown up to the target."""
    trim_silence: bool = False
    silence_threshold_dbfs: float = -50.0
    keep_silence_ms: int = 100
    """Silence left at each end when trimming."""


@dataclass(frozen=True)
class AssembleSettings:
    """How segments (TTS sentences, uploaded files) are joined into one prompt."""

    gap_ms: int = 400
    """Silence between segments of one prompt."""
    lead_ms: int = 0
    """Silence before the first segment."""
    tail_ms: int = 200
    """Silence after the last segment."""
    fade_ms: float = 4.0
    """Raised-cosine fade at both edges of every segment, so cuts inside a waveform do not click."""
