"""Answering-machine detection on the received audio of a call (8 kHz mono int16, fed incrementally).

Who answered is told from the energy and cadence of the greeting: a person says a short "hello?" and
then waits in silence; a machine talks long and with few pauses, then usually beeps. The detector is a
state machine over 20 ms frames, in the spirit of Asterisk's AMD() application (whose parameter names
and defaults the settings below follow where they exist):

- no voice for `initial_silence_ms` -> unknown (dead air: nobody, or a machine that stays silent);
- a greeting (voice from its first word, short pauses included) longer than `greeting_ms`, more than
  `max_words` words, or one word longer than `max_word_ms` -> machine;
- after at least one word, silence of `after_greeting_silence_ms` -> human;
- a steady single tone of `min_beep_ms` or more (a beep) -> machine;
- `total_analysis_ms` without any of these -> unknown.

A frame is voice when its RMS level exceeds both `silence_threshold` and the tracked noise floor by
`voice_margin_db` (the floor follows quiet frames down at once and rises slowly, so a noisy line is
not mistaken for speech).

After a machine decision the detector waits for the moment to drop the voicemail: the end of a beep
(a Goertzel bank over 400-2000 Hz measures, per frame, how much of the power one frequency carries),
or, without a beep, the end of the greeting (`greeting_end_silence_ms` of silence after voice), or at
the latest `max_voicemail_wait_ms` after the decision.

All of it is pure: time is the count of samples fed, never a clock.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from audio.dtmf import RATE, dbm0_to_amplitude

logger = logging.getLogger(__name__)

FRAME = 160
"""Samples of one analysis frame (20 ms at 8 kHz)."""
FRAME_MS = 1000 * FRAME // RATE

Outcome = Literal["human", "machine", "unknown"]
Cause = Literal[
    "initial silence",
    "after-greeting silence",
    "long greeting",
    "max words",
    "max word length",
    "beep",
    "key press",
    "too long",
]
CueReason = Literal["beep", "end of greeting", "timeout"]


@dataclass(frozen=True)
class AmdSettings:
    """Thresholds of the detector, in milliseconds unless said otherwise."""

    initial_silence_ms: int = 2500
    """Longest silence before the greeting (Asterisk's initial_silence default, 2500)."""
    greeting_ms: int = 1500
    """Longest human greeting (Asterisk's greeting default, 1500)."""
    after_greeting_silence_ms: int = 800
    """Silence after a greeting that proves a person waiting (Asterisk's default, 800)."""
    total_analysis_ms: int = 5000
    """Longest analysis before giving up with unknown (Asterisk's total_analysis_time default, 5000)."""
    min_word_ms: int = 100
    """Shortest voice run counted as a word (Asterisk's min_word_length default, 100)."""
    between_words_silence_ms: int = 60
    """Shortest silence that ends a word (Asterisk: 50; rounded up to whole 20 ms frames)."""
    max_words: int = 4
    """More words than this in the greeting -> machine."""
    max_word_ms: int = 5000
    """Longest single voice run (Asterisk's maximum_word_length default, 5000)."""
    silence_threshold: float = 256.0
    """Frames whose RMS (int16 units) stays below this are silence (Asterisk's silence_threshold, 256)."""
    voice_margin_db: float = 6.0
    """A voice frame stands this far above the tracked noise floor."""
    max_flatness: float = 0.3
    """... or its spectrum is this far from flat (spectral flatness, 0-1; white noise measures about 0.5,
    voiced speech and music well under 0.2): a line whose level never dips, like music on hold."""
    floor_rise_db_per_s: float = 3.0
    """How fast the noise floor may rise during a loud stretch."""
    min_beep_ms: int = 100
    """Shortest steady tone taken as a beep."""
    beep_low_hz: float = 400.0
    beep_high_hz: float = 2000.0
    beep_step_hz: float = 25.0
    """The Goertzel bank: frequencies from beep_low_hz to beep_high_hz in this step."""
    beep_tone_ratio: float = 0.7
    """Share of a frame's power one bank frequency must carry."""
    beep_min_level_dbm0: float = -40.0
    """Weakest beep, per frame."""
    beep_max_drift_hz: float = 30.0
    """Largest change of the tone's frequency between frames of one beep."""
    greeting_end_silence_ms: int = 1500
    """After a machine decision without a beep: silence that ends the greeting."""
    max_voicemail_wait_ms: int = 30000
    """After a machine decision: longest wait for the beep or the end of the greeting."""

    def __post_init__(self) -> None:
        for name in (
            "initial_silence_ms",
            "greeting_ms",
            "after_greeting_silence_ms",
            "total_analysis_ms",
            "min_word_ms",
            "between_words_silence_ms",
            "max_word_ms",
            "min_beep_ms",
            "greeting_end_silence_ms",
            "max_voicemail_wait_ms",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"AmdSettings.{name} must be positive")
        if self.max_words < 1:
            raise ValueError("AmdSettings.max_words must be at least 1")
        if not 0 < self.beep_low_hz < self.beep_high_hz < RATE / 2 or self.beep_step_hz <= 0:
            raise ValueError("AmdSettings beep band must satisfy 0 < low < high < 4000 Hz, step > 0")
        if not 0 < self.beep_tone_ratio <= 1:
            raise ValueError("AmdSettings.beep_tone_ratio must be in (0, 1]")


@dataclass(frozen=True)
class AmdDecision:
    """Who answered, why, and when (stream seconds: samples fed before the deciding frame's end)."""

    outcome: Outcome
    cause: Cause
    time_s: float


@dataclass(frozen=True)
class Beep:
    """A steady tone: its frequency (bank resolution) and its start and end in stream seconds."""

    freq_hz: float
    start_s: float
    end_s: float


@dataclass(frozen=True)
class VoicemailCue:
    """The moment to start playing the voicemail, and what gave it."""

    time_s: float
    reason: CueReason
    beep: Beep | None = None


AmdEvent = AmdDecision | Beep | VoicemailCue


class _ToneBank:
    """Goertzel bank over one frame: per frame, the strongest bank frequency's share of the power.

    The bank is computed as the projection of the Hann-windowed frame on cosines and sines of every
    bank frequency (the vectorised Goertzel of audio.dtmf), with the window's gain undone.
    """

    def __init__(self, s: AmdSettings) -> None:
        self.freqs = np.arange(s.beep_low_hz, s.beep_high_hz + s.beep_step_hz / 2, s.beep_step_hz)
        t = np.arange(FRAME)
        w = 0.5 - 0.5 * np.cos(2.0 * np.pi * (t + 0.5) / FRAME)
        arg = np.outer(t, 2.0 * np.pi * self.freqs / RATE)
        self._basis = np.hstack([w[:, None] * np.cos(arg), w[:, None] * np.sin(arg)])
        self._k = len(self.freqs)
        self._gain = 2.0 / float(np.sum(w)) ** 2
        self._w2 = w * w / float(np.sum(w * w))

    def run(
        self, frames: npt.NDArray[np.float64]
    ) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """Per frame: index of the strongest frequency, its power, and its share of the frame's power."""
        proj = frames @ self._basis
        power = (proj[:, : self._k] ** 2 + proj[:, self._k :] ** 2) * self._gain
        best = np.argmax(power, axis=1)
        top = power[np.arange(len(frames)), best]
        mean = frames.mean(axis=1, keepdims=True)
        energy = np.maximum(((frames - mean) ** 2) @ self._w2, 1e-9)
        return best, top, top / energy


class AmdDetector:
    """Streaming answering-machine detector: feed int16 samples of any length, get events.

    Events, in time order: one AmdDecision; after a machine decision, every Beep and then one
    VoicemailCue. `decision` and `cue` hold them once known. `key_press()` records a DTMF key, which
    always proves a person. Samples fed after the cue are ignored.
    """

    def __init__(self, rate: int = RATE, settings: AmdSettings = AmdSettings()) -> None:
        if rate != RATE:
            raise ValueError(f"answering-machine detection needs {RATE} Hz audio, got {rate} Hz")
        self.rate = rate
        self.settings = settings
        self._bank = _ToneBank(settings)
        s = settings
        self._initial = _frames(s.initial_silence_ms)
        self._greeting = _frames(s.greeting_ms)
        self._after = _frames(s.after_greeting_silence_ms)
        self._total = _frames(s.total_analysis_ms)
        self._min_word = _frames(s.min_word_ms)
        self._gap = _frames(s.between_words_silence_ms)
        self._max_word = _frames(s.max_word_ms)
        self._min_beep = _frames(s.min_beep_ms)
        self._end_silence = _frames(s.greeting_end_silence_ms)
        self._max_wait = _frames(s.max_voicemail_wait_ms)
        self._rise = 10.0 ** (s.floor_rise_db_per_s * FRAME_MS / 1000.0 / 20.0)
        self._margin = 10.0 ** (s.voice_margin_db / 20.0)
        self._beep_power = dbm0_to_amplitude(s.beep_min_level_dbm0) ** 2 / 2.0
        self._window = np.hanning(FRAME)
        self._buf = np.zeros(0, dtype=np.float64)
        self._n = 0
        """Frames analysed so far."""
        self._floor = 0.0
        self._run_voice = 0
        self._run_silence = 0
        self._words = 0
        self._in_word = False
        self._first_voice: int | None = None
        self._beep_start: int | None = None
        self._beep_bin = -1
        self._beep_bins: list[int] = []
        self._beeps: list[Beep] = []
        self.decision: AmdDecision | None = None
        self.cue: VoicemailCue | None = None
        self._decided_at = 0

    @property
    def time_s(self) -> float:
        """Stream time of the audio analysed so far."""
        return self._n * FRAME / self.rate

    @property
    def done(self) -> bool:
        """Nothing more to learn: decided human or unknown, or decided machine and cued."""
        return self.cue is not None or (self.decision is not None and self.decision.outcome != "machine")

    def key_press(self) -> list[AmdEvent]:
        """A DTMF key was received now: a person is on the line.

        Before a decision this decides human (cause `key press`); after one it returns no event and
        the caller, which saw the key, treats the call as answered by a person whatever was decided.
        """
        if self.decision is not None:
            return []
        self.decision = AmdDecision("human", "key press", self.time_s)
        return [self.decision]

    def feed(self, frame: npt.NDArray[np.int16]) -> list[AmdEvent]:
        """Add samples; return the events their complete 20 ms frames give, in time order."""
        samples = np.asarray(frame).ravel()
        if self.done or samples.size == 0:
            return []
        samples = np.nan_to_num(samples.astype(np.float64), nan=0.0, posinf=32767.0, neginf=-32768.0)
        self._buf = np.concatenate([self._buf, np.clip(samples, -32768.0, 32767.0)])
        count = len(self._buf) // FRAME
        if count == 0:
            return []
        frames = self._buf[: count * FRAME].reshape(count, FRAME)
        self._buf = self._buf[count * FRAME :]
        rms = np.sqrt(np.mean((frames - frames.mean(axis=1, keepdims=True)) ** 2, axis=1))
        best, top, share = self._bank.run(frames)
        flat = _flatness(frames, self._window)
        events: list[AmdEvent] = []
        for i in range(count):
            tone = bool(share[i] >= self.settings.beep_tone_ratio and top[i] >= self._beep_power)
            self._step(float(rms[i]), float(flat[i]), int(best[i]) if tone else -1, events)
            if self.done:
                break
        return events

    # --- one frame ------------------------------------------------------------------------------------

    def _step(self, rms: float, flatness: float, tone_bin: int, events: list[AmdEvent]) -> None:
        self._n += 1
        voice = self._voice(rms, flatness)
        self._track_beep(tone_bin, events)
        if self.decision is None:
            self._cadence(voice, events)
        elif self.decision.outcome == "machine" and self.cue is None:
            self._await_cue(voice, events)

    def _voice(self, rms: float, flatness: float) -> bool:
        self._floor = rms if self._n == 1 else min(self._floor * self._rise, rms)
        s = self.settings
        return rms >= s.silence_threshold and (
            rms >= self._margin * max(self._floor, 1.0) or flatness <= s.max_flatness
        )

    def _cadence(self, voice: bool, events: list[AmdEvent]) -> None:
        if voice:
            self._run_voice += 1
            self._run_silence = 0
            if self._first_voice is None and self._run_voice >= self._min_word:
                self._first_voice = self._n - self._run_voice
            if not self._in_word and self._run_voice >= self._min_word:
                self._in_word = True
                self._words += 1
        else:
            self._run_silence += 1
            if self._run_silence >= self._gap:
                self._in_word = False
                self._run_voice = 0
        if self._first_voice is None:
            if self._n >= self._initial:
                self._decide("unknown", "initial silence", events)
        elif self._words > self.settings.max_words:
            self._decide("machine", "max words", events)
        elif self._run_voice >= self._max_word:
            self._decide("machine", "max word length", events)
        elif voice and self._n - self._first_voice > self._greeting:
            self._decide("machine", "long greeting", events)
        elif self._run_silence >= self._after:
            self._decide("human", "after-greeting silence", events)
        if self.decision is None and self._n >= self._total:
            self._decide("unknown", "too long", events)

    def _decide(self, outcome: Outcome, cause: Cause, events: list[AmdEvent]) -> None:
        self.decision = AmdDecision(outcome, cause, self.time_s)
        self._decided_at = self._n
        events.append(self.decision)
        logger.debug("amd: %s (%s) at %.2f s", outcome, cause, self.decision.time_s)
        if outcome == "machine":
            for beep in self._beeps:
                events.append(beep)

    def _await_cue(self, voice: bool, events: list[AmdEvent]) -> None:
        if self._n - self._decided_at >= self._max_wait:
            self._cue(VoicemailCue(self.time_s, "timeout"), events)
            return
        if self._beep_start is not None:
            return  # a tone is on: wait for it to end (or be rejected)
        self._run_silence = 0 if voice else self._run_silence + 1
        if self._run_silence >= self._end_silence:
            self._cue(VoicemailCue(self.time_s, "end of greeting"), events)

    def _cue(self, cue: VoicemailCue, events: list[AmdEvent]) -> None:
        self.cue = cue
        events.append(cue)

    def _track_beep(self, tone_bin: int, events: list[AmdEvent]) -> None:
        drift = max(1, round(self.settings.beep_max_drift_hz / self.settings.beep_step_hz))
        frame = self._n - 1
        if tone_bin >= 0 and self._beep_start is not None and abs(tone_bin - self._beep_bin) <= drift:
            self._beep_bin = tone_bin
            self._beep_bins.append(tone_bin)
            return
        if self._beep_start is not None:
            self._end_beep(frame, events)
        if tone_bin >= 0:
            self._beep_start, self._beep_bin, self._beep_bins = frame, tone_bin, [tone_bin]

    def _end_beep(self, end_frame: int, events: list[AmdEvent]) -> None:
        start = self._beep_start
        self._beep_start = None
        if start is None or end_frame - start < self._min_beep:
            return
        hz = float(self._bank.freqs[int(np.median(self._beep_bins))])
        beep = Beep(hz, start * FRAME / self.rate, end_frame * FRAME / self.rate)
        self._beeps.append(beep)
        if self.decision is None:
            self._decide("machine", "beep", events)
        elif self.decision.outcome == "machine":
            events.append(beep)
        if self.decision is not None and self.decision.outcome == "machine" and self.cue is None:
            self._cue(VoicemailCue(beep.end_s, "beep", beep), events)

    @property
    def beeps(self) -> list[Beep]:
        """Every beep found so far."""
        return list(self._beeps)


def _flatness(frames: npt.NDArray[np.float64], window: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Spectral flatness of each frame over 200-3400 Hz (clear of mains hum): geometric over arithmetic
    mean of the power."""
    spec = np.abs(np.fft.rfft(frames * window, axis=1)) ** 2
    band = spec[:, round(200 * FRAME / RATE) : round(3400 * FRAME / RATE) + 1] + 1e-3
    geo = np.exp(np.mean(np.log(band), axis=1))
    return np.asarray(geo / np.mean(band, axis=1), dtype=np.float64)


def _frames(ms: int) -> int:
    return max(1, -(-ms // FRAME_MS))


@dataclass(frozen=True)
class AmdResult:
    """The batch form's answer for a whole recording."""

    decision: AmdDecision
    cue: VoicemailCue | None
    beeps: tuple[Beep, ...]


def classify(
    pcm: npt.NDArray[np.int16], rate: int = RATE, settings: AmdSettings = AmdSettings(), frame: int = FRAME
) -> AmdResult:
    """Feed a whole recording in frames of `frame` samples; the end of the audio counts as silence up to
    the total analysis time (a recording that stops is a line that went quiet)."""
    det = AmdDetector(rate, settings)
    for i in range(0, len(pcm), frame):
        det.feed(pcm[i : i + frame])
        if det.done:
            break
    silence = np.zeros(FRAME, dtype=np.int16)
    while det.decision is None:
        det.feed(silence)
    decision = det.decision
    return AmdResult(decision, det.cue, tuple(det.beeps))
