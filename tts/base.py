"""The contract every TTS engine meets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

Language = Literal["us", "es"]
Gender = Literal["male", "female"]
LANGUAGES: tuple[Language, ...] = ("us", "es")
GENDERS: tuple[Gender, ...] = ("male", "female")


@dataclass(frozen=True)
class Voice:
    """Who speaks: the seed's `language` (us | es) and `gender` (female by default)."""

    language: Language = "us"
    gender: Gender = "female"


@dataclass(frozen=True)
class Speech:
    """Rendered speech: mono int16 samples and their sample rate in Hz."""

    pcm: npt.NDArray[np.int16]
    rate: int

    @property
    def seconds(self) -> float:
        return len(self.pcm) / self.rate if self.rate else 0.0


@runtime_checkable
class Engine(Protocol):
    """A TTS engine. Engines are cheap to call repeatedly; implementations serialise what must be."""

    name: str

    def synthesize(self, text: str, voice: Voice) -> Speech:
        """Render already-normalised text. Raises tts.errors.TTSError subclasses."""
        ...

    def cache_key(self, voice: Voice) -> str:
        """Everything besides the text that changes the output (engine version, voice id, rate, pitch)."""
        ...
