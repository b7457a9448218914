"""Join telephony segments (TTS sentences, uploaded files) into one prompt.

Segments are 8 kHz mono int16, as `to_telephony` makes them. Each gets a short raised-cosine fade at
both edges, because a segment may start or stop in the middle of a waveform and the jump would click;
the gaps between them, and the lead and tail, are digital silence.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from audio import TELEPHONY_RATE
from audio.settings import AssembleSettings

DEFAULT_ASSEMBLE = AssembleSettings()


def _samples(ms: float) -> int:
    if ms < 0:
        raise ValueError(f"durations must not be negative, got {ms} ms")
    return round(ms * TELEPHONY_RATE / 1000)


def fade_edges(segment: npt.NDArray[np.int16], fade_samples: int) -> npt.NDArray[np.int16]:
    """A copy of `segment` faded in and out over `fade_samples` each (shortened for short segments)."""
    length = min(fade_samples, segment.size // 2)
    if length == 0:
        return segment.copy()
    # Half a raised cosine from just above 0 to just below 1: no sample is zeroed, none is left as is.
    ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(length) + 0.5) / length)
    faded = segment.astype(np.float64)
    faded[:length] *= ramp
    faded[-length:] *= ramp[::-1]
    return np.rint(faded).astype(np.int16)


def assemble(
    segments: Sequence[npt.NDArray[np.int16]], settings: AssembleSettings = DEFAULT_ASSEMBLE
) -> npt.NDArray[np.int16]:
    """One prompt: lead silence, the segments with gap silence between them, tail silence.

    Empty segments are skipped (they add no gap). Raises TypeError for a segment that is not 1-D int16.
    """
    for segment in segments:
        if segment.dtype != np.int16 or segment.ndim != 1:
            raise TypeError(f"segments must be 1-D int16, got {segment.dtype} with shape {segment.shape}")
    fade = _samples(settings.fade_ms)
    gap = np.zeros(_samples(settings.gap_ms), dtype=np.int16)
    parts: list[npt.NDArray[np.int16]] = [np.zeros(_samples(settings.lead_ms), dtype=np.int16)]
    for index, segment in enumerate(s for s in segments if s.size):
        if index:
            parts.append(gap)
        parts.append(fade_edges(segment, fade))
    parts.append(np.zeros(_samples(settings.tail_ms), dtype=np.int16))
    return np.concatenate(parts)
