"""In-band DTMF: a streaming detector and a tone generator for 8 kHz int16 audio.

The detector targets ITU-T Q.24 (AT&T column): each frequency within +-1.5 %, -25 to 0 dBm0 per tone,
twist +4/-8 dB, tones and pauses of 40 ms or more, 15 dB S/N; it rejects tones off by 3.5 % or more,
shorter than 23 ms or weaker than -55 dBm0, and does not fire on speech or music.

How (measured in docs/dtmf.md): every `hop` samples a Hann-windowed block of `block` samples is
projected on the eight DTMF frequencies. A block names a digit when the strongest row and column tones
are loud enough, within the twist limits, well above their group neighbours, carry most of the block's
power (the talk-off guard), and their frequencies - measured from the phase advance between two
consecutive blocks, which is independent of level - lie within `max_freq_deviation` of nominal.
The tone's extent is then measured on short rectangular sub-blocks (one per hop), which gives the
start and end times and the duration rule (a digit must be on for `min_tone_ms`).

All of it is pure: time is the count of samples fed, never a clock.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

logger = logging.getLogger(__name__)

RATE = 8000
"""The only sample rate the detector accepts (telephony audio)."""

ROW_HZ = (697.0, 770.0, 852.0, 941.0)
COL_HZ = (1209.0, 1336.0, 1477.0, 1633.0)
KEYPAD = ("123A", "456B", "789C", "*0#D")
"""KEYPAD[row][col]: the digit a row and a column tone encode."""
DIGITS = "".join(KEYPAD)

MULAW_PEAK = 32124
"""Largest magnitude of a decoded mu-law sample in int16 units: the full-scale mu-law sine's amplitude."""
FULL_SCALE_DBM0 = 3.14
"""Level of that full-scale sine (ITU-T G.711 convention used by this project)."""

_FREQS = np.array(ROW_HZ + COL_HZ)
_CODE: dict[str, tuple[int, int]] = {d: (r, c) for r, row in enumerate(KEYPAD) for c, d in enumerate(row)}


def dbm0_to_amplitude(dbm0: float) -> float:
    """Peak amplitude, in int16 units, of a sine at `dbm0`.

    The reference is the mu-law decoder's largest sample, 32124 (not 32767): a sine of that amplitude is
    the full-scale mu-law sine, +3.14 dBm0, so 0 dBm0 is an amplitude of about 22,379.
    """
    return float(MULAW_PEAK * 10.0 ** ((dbm0 - FULL_SCALE_DBM0) / 20.0))


def power_to_dbm0(power: float) -> float:
    """Level in dBm0 of a sine whose mean power (int16 units squared) is `power`."""
    ref = dbm0_to_amplitude(0.0) ** 2 / 2.0
    return float(10.0 * np.log10(max(power, 1e-12) / ref))


@dataclass(frozen=True)
class DtmfEvent:
    """A digit starting or ending in the stream fed to a DtmfDetector."""

    digit: str
    """'0'-'9', '*', '#', 'A'-'D'."""
    kind: Literal["start", "end"]
    time_s: float
    """Stream time in seconds: samples fed before the event's edge divided by the rate."""


@dataclass(frozen=True)
class Digit:
    """One detected key press of a whole signal (the batch form)."""

    digit: str
    start_s: float
    end_s: float


@dataclass(frozen=True)
class DtmfSettings:
    """Thresholds of the detector; the defaults meet Q.24's AT&T column with the margins in docs/dtmf.md."""

    block: int = 160
    """Analysis block in samples (20 ms): long enough to part 697 from 770 Hz."""
    hop: int = 40
    """Samples between blocks (5 ms); also the sub-block that times tone edges. Must divide `block`."""
    min_level_dbm0: float = -36.0
    """Weakest tone accepted, per frequency."""
    max_reverse_twist_db: float = 6.0
    """How much the column (high) tone may exceed the row tone."""
    max_normal_twist_db: float = 10.0
    """How much the row (low) tone may exceed the column tone."""
    min_tone_ratio: float = 0.9
    """Share of the block's power the two tones must carry (rejects speech, music, noise)."""
    max_harmonic_db: float = -20.0
    """Largest power at the 2nd or 3rd harmonic of either tone, relative to the pair (rejects voices and
    instruments; a clipped 0 dBm0 pair measures -31 dB, white noise at 15 dB S/N about -32 dB)."""
    octave_guard: float = 0.01
    """Pairs whose measured frequencies are within this of a 2:1 ratio are a note and its octave
    (no DTMF pair within +-1.5 % comes closer than 1.3 % to it)."""
    min_relative_peak_db: float = 6.0
    """How far the strongest tone of a group must stand above the next one of the same group."""
    max_freq_deviation: float = 0.025
    """Largest relative frequency error accepted (Q.24 accepts 1.5 %, rejects 3.5 %)."""
    min_valid_blocks: int = 3
    """Blocks that must name the digit before it is reported."""
    min_tone_ms: float = 30.0
    """Shortest tone reported (Q.24: accept 40 ms, reject 23 ms)."""
    min_gap_ms: float = 15.0
    """Silence that ends a digit; shorter drop-outs are bridged."""
    on_ratio: float = 0.25
    """A sub-block is 'on' when its tone power reaches this share of the digit's block power."""
    min_dominance: float = 0.4
    """... and the two tones carry this share of the sub-block's power."""


@dataclass
class _Blocks:
    """Per-block results of one batch: digit index (-1: none), tone pair power, and the sub-block data."""

    digit: npt.NDArray[np.int64]
    power: npt.NDArray[np.float64]
    sub_power: npt.NDArray[np.float64]
    sub_energy: npt.NDArray[np.float64]


class _Analyzer:
    """Vectorised per-block analysis (pure numpy, no state besides the previous block's spectrum)."""

    def __init__(self, rate: int, s: DtmfSettings) -> None:
        n, h = s.block, s.hop
        t = np.arange(n)
        w = 0.5 - 0.5 * np.cos(2.0 * np.pi * t / n)
        omega = 2.0 * np.pi * _FREQS / rate
        arg = np.outer(t, omega)
        self._basis = np.hstack(
            [w[:, None] * np.cos(arg), w[:, None] * np.sin(arg), (w * w / np.sum(w * w))[:, None]]
        )
        self._w2 = w * w / np.sum(w * w)
        harmonics = [(i, m * f) for i, f in enumerate(_FREQS) for m in (2, 3) if m * f < rate / 2 - 200]
        h_arg = np.outer(t, [2.0 * np.pi * f / rate for _, f in harmonics])
        self._harm_basis = np.hstack([w[:, None] * np.cos(h_arg), w[:, None] * np.sin(h_arg)])
        # _harm_mask[digit, j]: 1 where harmonic column j belongs to one of the digit's tones and lies clear
        # of the other tone (2 x 770 Hz sits 63 Hz from 1477 Hz: there the tone itself would be measured).
        self._harm_mask = np.zeros((16, len(harmonics)))
        for code in range(16):
            lo, hi = divmod(code, 4)
            for j, (i, f) in enumerate(harmonics):
                other = _FREQS[hi + 4] if i == lo else _FREQS[lo]
                if i in (lo, hi + 4) and abs(f - other) > 2.2 * rate / n:
                    self._harm_mask[code, j] = 1.0
        self._gain = 2.0 / float(np.sum(w)) ** 2
        arg_h = np.outer(np.arange(h), omega)
        self._sub_basis = np.hstack([np.cos(arg_h), np.sin(arg_h)])
        self._advance = omega * h
        self._bins_per_hz = n / rate
        self._hz_per_rad = rate / (2.0 * np.pi * h)
        self._s = s
        self._min_power = dbm0_to_amplitude(s.min_level_dbm0) ** 2 / 2.0
        self._prev: npt.NDArray[np.complex128] | None = None

    def reset(self) -> None:
        self._prev = None

    def run(self, blocks: npt.NDArray[np.float64]) -> _Blocks:
        s = self._s
        proj = blocks @ self._basis
        spec = proj[:, :8] - 1j * proj[:, 8:16]
        mean = proj[:, 16]
        energy = np.maximum((blocks * blocks) @ self._w2 - mean * mean, 1e-9)
        prev = np.vstack([spec[:1] if self._prev is None else self._prev, spec[:-1]])
        self._prev = spec[-1:].copy()
        digit, power = self._decide(spec, prev, energy)
        digit = self._check_harmonics(blocks, digit, power)
        tail = blocks[:, s.block - s.hop :]
        sub = tail @ self._sub_basis
        sub_power = (sub[:, :8] ** 2 + sub[:, 8:] ** 2) * (2.0 / s.hop**2)
        sub_energy = np.mean(tail * tail, axis=1)
        return _Blocks(digit, power, sub_power, sub_energy)

    def _decide(
        self,
        spec: npt.NDArray[np.complex128],
        prev: npt.NDArray[np.complex128],
        energy: npt.NDArray[np.float64],
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        s = self._s
        raw = np.abs(spec) ** 2 * self._gain
        idx = np.arange(len(spec))
        lo = np.argmax(raw[:, :4], axis=1)
        hi = np.argmax(raw[:, 4:], axis=1) + 4
        p_lo = self._corrected(raw, spec, prev, lo, idx)
        p_hi = self._corrected(raw, spec, prev, hi, idx)
        dev_lo = self._deviation(spec, prev, lo, idx)
        dev_hi = self._deviation(spec, prev, hi, idx)
        ratio = _FREQS[hi] * (1 + dev_hi) / (_FREQS[lo] * (1 + dev_lo))
        dev_ok = (
            (np.abs(dev_lo) <= s.max_freq_deviation)
            & (np.abs(dev_hi) <= s.max_freq_deviation)
            & (np.abs(ratio - 2.0) > 2.0 * s.octave_guard)
        )
        twist = 10.0 * np.log10(np.maximum(p_hi, 1e-12) / np.maximum(p_lo, 1e-12))
        peak = 10.0 ** (s.min_relative_peak_db / 10.0)
        ok = (
            (p_lo >= self._min_power)
            & (p_hi >= self._min_power)
            & (twist <= s.max_reverse_twist_db)
            & (twist >= -s.max_normal_twist_db)
            & ((p_lo + p_hi) >= s.min_tone_ratio * energy)
            & (_second(raw[:, :4]) * peak <= raw[idx, lo])
            & (_second(raw[:, 4:]) * peak <= raw[idx, hi])
            & dev_ok
        )
        digit = np.where(ok, lo * 4 + hi - 4, -1)
        return digit.astype(np.int64), p_lo + p_hi

    def _check_harmonics(
        self, blocks: npt.NDArray[np.float64], digit: npt.NDArray[np.int64], power: npt.NDArray[np.float64]
    ) -> npt.NDArray[np.int64]:
        """Drop candidates with strong 2nd/3rd harmonics of either tone (only candidates are measured)."""
        rows = np.flatnonzero(digit >= 0)
        if len(rows) == 0:
            return digit
        proj = blocks[rows] @ self._harm_basis
        k = self._harm_basis.shape[1] // 2
        harm = (proj[:, :k] ** 2 + proj[:, k:] ** 2) * self._gain
        worst = np.max(harm * self._harm_mask[digit[rows]], axis=1)
        bad = worst > power[rows] * 10.0 ** (self._s.max_harmonic_db / 10.0)
        out = digit.copy()
        out[rows[bad]] = -1
        return out

    def _deviation(
        self,
        spec: npt.NDArray[np.complex128],
        prev: npt.NDArray[np.complex128],
        k: npt.NDArray[np.intp],
        idx: npt.NDArray[np.intp],
    ) -> npt.NDArray[np.float64]:
        """Relative frequency error of tone k per block, from the phase advance since the previous block."""
        turn = np.angle(spec[idx, k] * np.conj(prev[idx, k])) - self._advance[k]
        turn = (turn + np.pi) % (2.0 * np.pi) - np.pi
        return np.asarray(turn * self._hz_per_rad / _FREQS[k], dtype=np.float64)

    def _corrected(
        self,
        raw: npt.NDArray[np.float64],
        spec: npt.NDArray[np.complex128],
        prev: npt.NDArray[np.complex128],
        k: npt.NDArray[np.intp],
        idx: npt.NDArray[np.intp],
    ) -> npt.NDArray[np.float64]:
        """Tone power with the Hann window's loss at the measured frequency offset undone."""
        offset = self._deviation(spec, prev, k, idx) * _FREQS[k] * self._bins_per_hz
        d = np.clip(np.abs(offset), 1e-6, 0.9)
        gain = np.sin(np.pi * d) / (np.pi * d * (1.0 - d * d))
        return np.asarray(raw[idx, k] / (gain * gain), dtype=np.float64)


def _second(group: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Second largest value of each row."""
    return np.sort(group, axis=1)[:, -2]


@dataclass
class _Track:
    """A digit being followed: its tone pair, reference power and its sub-block envelope."""

    code: int
    power: float
    first: int
    """Global index of the sub-block env[0] describes."""
    env: list[tuple[float, float]] = field(default_factory=list)
    """(tone pair power, total power) of each sub-block from `first` on."""
    anchor: int = 0
    valid: int = 1
    last_on: int = 0
    off: int = 0
    started: bool = False


class DtmfDetector:
    """Streaming DTMF detector: feed int16 frames of any length, get digit start and end events.

    A start event comes about 35-45 ms after the tone begins (once `min_tone_ms` of it is in), an end
    event about `min_gap_ms` plus one block after it stops; both carry the tone's own edge times.
    Every start is followed by exactly one end (at the latest from flush()).
    """

    def __init__(self, rate: int = RATE, settings: DtmfSettings = DtmfSettings()) -> None:
        if rate != RATE:
            raise ValueError(f"DTMF detection needs {RATE} Hz audio, got {rate} Hz")
        if settings.block % settings.hop:
            raise ValueError("DtmfSettings.hop must divide DtmfSettings.block")
        self.rate = rate
        self.settings = settings
        self._an = _Analyzer(rate, settings)
        self._spb = settings.block // settings.hop
        self._min_on = int(np.ceil(settings.min_tone_ms * rate / 1000.0 / settings.hop))
        self._max_off = int(np.ceil(settings.min_gap_ms * rate / 1000.0 / settings.hop))
        self._base = 0
        self.reset()

    def reset(self) -> None:
        """Forget everything: the next sample fed is time 0."""
        self._base = 0
        self._restart()

    def _restart(self) -> None:
        # Silence before time 0, so that the last hop of block p is sub-block p, which starts at p * hop.
        self._buf = np.zeros(self.settings.block - self.settings.hop, dtype=np.float64)
        self._block0 = 0
        self._hist: list[tuple[int, npt.NDArray[np.float64], float]] = []
        self._track: _Track | None = None
        self._an.reset()

    def feed(self, frame: npt.NDArray[np.int16]) -> list[DtmfEvent]:
        """Add samples; return the events they complete, in time order."""
        s = self.settings
        self._buf = np.concatenate([self._buf, np.asarray(frame, dtype=np.float64).ravel()])
        count = (len(self._buf) - s.block) // s.hop + 1 if len(self._buf) >= s.block else 0
        if count <= 0:
            return []
        windows = np.lib.stride_tricks.sliding_window_view(self._buf, s.block)[:: s.hop][:count]
        events = self._consume(self._an.run(np.ascontiguousarray(windows)))
        self._buf = self._buf[count * s.hop :]
        self._block0 += count
        return events

    def flush(self) -> list[DtmfEvent]:
        """End the stream: analyse what is buffered (padded with silence) and end an open digit.

        Samples fed later continue the stream time but start a fresh analysis.
        """
        s = self.settings
        fed = self._base + self._block0 * s.hop + len(self._buf) - (s.block - s.hop)
        events = self.feed(np.zeros(self.settings.block, dtype=np.int16))
        if self._track is not None:
            self._close(self._track, events)
        self._restart()
        self._base = fed
        return events

    def _time(self, sub: int) -> float:
        return (self._base + sub * self.settings.hop) / self.rate

    def _consume(self, r: _Blocks) -> list[DtmfEvent]:
        events: list[DtmfEvent] = []
        n = len(r.digit)
        active = np.flatnonzero(r.digit >= 0)
        i = 0
        while i < n:
            if self._track is None:
                k = int(np.searchsorted(active, i))
                nxt = int(active[k]) if k < len(active) else n
                for j in range(max(i, nxt - 2 * self._spb), nxt):
                    self._remember(r, j)
                i = nxt
                if i >= n:
                    break
            self._step(r, i, events)
            i += 1
        return events

    def _remember(self, r: _Blocks, i: int) -> None:
        """Keep the newest sub-blocks: a digit found in a block may have begun a little before it."""
        self._hist.append((self._block0 + i, r.sub_power[i], float(r.sub_energy[i])))
        del self._hist[: -2 * self._spb]

    def _step(self, r: _Blocks, i: int, events: list[DtmfEvent]) -> None:
        code = int(r.digit[i])
        self._remember(r, i)
        track = self._track
        if track is not None and (code < 0 or code == track.code):
            self._extend(track, r, i, code)
            if track.off >= self._max_off:
                self._close(track, events)
            else:
                self._maybe_start(track, events)
            return
        if track is not None:
            self._close(track, events)
        if code >= 0:
            self._open(code, float(r.power[i]), self._block0 + i)

    def _open(self, code: int, power: float, newest: int) -> None:
        """A block names a digit: follow it, with an envelope rebuilt from the remembered sub-blocks."""
        lo, hi = _pair(code)
        track = _Track(code=code, power=power, first=self._hist[0][0])
        track.env = [(float(sub[lo] + sub[hi]), energy) for _, sub, energy in self._hist]
        oldest = max(newest - self._spb + 1, track.first)
        window = [track.env[q - track.first][0] for q in range(oldest, newest + 1)]
        track.anchor = oldest + int(np.argmax(window))
        track.last_on = track.anchor
        self._track = track
        self._walk_forward(track, newest)

    def _is_on(self, track: _Track, q: int) -> bool:
        k = q - track.first
        if k < 0 or k >= len(track.env):
            return False
        pair, energy = track.env[k]
        s = self.settings
        return pair >= s.on_ratio * track.power and pair >= s.min_dominance * energy

    def _extend(self, track: _Track, r: _Blocks, i: int, code: int) -> None:
        lo, hi = _pair(track.code)
        track.env.append((float(r.sub_power[i, lo] + r.sub_power[i, hi]), float(r.sub_energy[i])))
        if code == track.code:
            track.valid += 1
            track.power = max(track.power, float(r.power[i]))
        self._walk_forward(track, self._block0 + i)

    def _walk_forward(self, track: _Track, newest: int) -> None:
        q = track.last_on + track.off + 1
        while q <= newest:
            if self._is_on(track, q):
                track.last_on, track.off = q, 0
            else:
                track.off += 1
            q += 1

    def _maybe_start(self, track: _Track, events: list[DtmfEvent]) -> None:
        if track.started or track.valid < self.settings.min_valid_blocks:
            return
        onset = track.anchor
        while self._is_on(track, onset - 1):
            onset -= 1
        if track.last_on - onset + 1 >= self._min_on:
            track.started = True
            events.append(DtmfEvent(DIGITS[track.code], "start", self._time(onset)))

    def _close(self, track: _Track, events: list[DtmfEvent]) -> None:
        if track.started:
            events.append(DtmfEvent(DIGITS[track.code], "end", self._time(track.last_on + 1)))
        self._track = None


def _pair(code: int) -> tuple[int, int]:
    """Indices into the eight frequencies of a digit's row and column tones."""
    row, col = divmod(code, 4)
    return row, col + 4


def detect(
    pcm: npt.NDArray[np.int16], rate: int = RATE, settings: DtmfSettings = DtmfSettings()
) -> list[Digit]:
    """Every digit of a whole signal, with its start and end in seconds (the batch form of DtmfDetector)."""
    det = DtmfDetector(rate, settings)
    events = det.feed(pcm) + det.flush()
    digits: list[Digit] = []
    opened: DtmfEvent | None = None
    for ev in events:
        if ev.kind == "start":
            opened = ev
        elif opened is not None:
            digits.append(Digit(ev.digit, opened.time_s, ev.time_s))
            opened = None
    return digits


def generate(
    digits: str,
    *,
    rate: int = RATE,
    level_dbm0: float = -10.0,
    tone_ms: int = 100,
    pause_ms: int = 100,
    twist_db: float = 0.0,
    freq_error: float = 0.0,
) -> npt.NDArray[np.int16]:
    """DTMF tones for `digits`, each `tone_ms` long and followed by `pause_ms` of silence.

    `level_dbm0` is the row (low) tone's level, the column tone sits `twist_db` above it; both
    frequencies are scaled by (1 + freq_error). Samples beyond int16 are clipped (two tones at 0 dBm0
    each exceed the mu-law range, as they would on a line). Raises ValueError on an unknown digit.
    """
    n_tone = rate * tone_ms // 1000
    t = np.arange(n_tone) / rate
    low_amp = dbm0_to_amplitude(level_dbm0)
    high_amp = dbm0_to_amplitude(level_dbm0 + twist_db)
    parts: list[npt.NDArray[np.float64]] = []
    for d in digits.upper():
        if d not in _CODE:
            raise ValueError(f"not a DTMF digit: {d!r}")
        row, col = _CODE[d]
        f_lo, f_hi = ROW_HZ[row] * (1 + freq_error), COL_HZ[col] * (1 + freq_error)
        parts.append(low_amp * np.sin(2 * np.pi * f_lo * t) + high_amp * np.sin(2 * np.pi * f_hi * t))
        parts.append(np.zeros(rate * pause_ms // 1000))
    signal = np.concatenate(parts) if parts else np.zeros(0)
    return np.clip(np.round(signal), -32768, 32767).astype(np.int16)
