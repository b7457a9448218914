"""The pjmedia side of the SIP adapter: media ports, the WAV player, the pjsip log bridge, audio formats.

Ports here are called by pjmedia's clock thread (one frame every 20 ms per port). They never touch
the SIP user agent: they only put small tuples on the owner thread's media queue, so the clock
thread never blocks and never calls back into pjsua (docs/DESIGN.md, "The SIP engine").

In-band DTMF: `Tap` batches `INBAND_BATCH_FRAMES` received frames before handing them over, and the
owner thread runs `audio.dtmf` on the whole batch. The detector has a fixed numpy cost per call,
so one call per 100 ms instead of per 20 ms cuts its CPU several times over; the added latency
(up to 100 ms) does not matter for key presses.
"""

from __future__ import annotations

import logging
import queue
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pjsua2 as pj

RATE = 8000
"""Sample rate of every port here (the conference bridge runs at telephony rate)."""
FRAME_MS = 20
FRAME_BYTES = RATE * FRAME_MS // 1000 * 2
"""One 20 ms frame of 16-bit mono audio."""
INBAND_BATCH_FRAMES = 5
"""Received frames handed to the DTMF detector at once (100 ms)."""

MediaQueue = queue.SimpleQueue[tuple[str, str, Any]]
"""(kind, call ref, payload) from the clock thread to the owner thread: ('eof', ref, player) or
('frames', ref, pcm bytes)."""

log = logging.getLogger(__name__)
pj_log = logging.getLogger("ivr.sip.pjsip")
_PJ_LEVELS = {0: logging.CRITICAL, 1: logging.ERROR, 2: logging.WARNING, 3: logging.INFO}


def audio_format() -> Any:
    """pjmedia's format of one 8 kHz mono 16-bit port with 20 ms frames."""
    fmt = pj.MediaFormatAudio()
    fmt.init(pj.PJMEDIA_FORMAT_PCM, RATE, 1, FRAME_MS * 1000, 16)
    return fmt


def frames_of(pcm: bytes) -> Iterator[bytes]:
    """`pcm` cut into whole 20 ms frames, the last one padded with silence."""
    for i in range(0, len(pcm), FRAME_BYTES):
        yield pcm[i:i + FRAME_BYTES].ljust(FRAME_BYTES, b"\0")


class Player(pj.AudioMediaPlayer):  # type: ignore[misc]
    """A WAV player; its end-of-file callback runs on the clock thread and only reports."""

    def __init__(self, media_q: MediaQueue, ref: str, loop: bool) -> None:
        super().__init__()
        self.media_q, self.ref, self.loop = media_q, ref, loop

    def onEof2(self) -> None:
        if not self.loop:
            self.media_q.put(("eof", self.ref, self))


class Tap(pj.AudioMediaPort):  # type: ignore[misc]
    """Receives the far end's audio and hands it over in batches of `batch` frames (in-band DTMF)."""

    def __init__(self, media_q: MediaQueue, ref: str, batch: int = INBAND_BATCH_FRAMES) -> None:
        super().__init__()
        self.media_q, self.ref = media_q, ref
        self._limit = batch * FRAME_BYTES
        self._pending = bytearray()  # touched by the clock thread only

    def onFrameReceived(self, frame: Any) -> None:
        if frame.type != pj.PJMEDIA_FRAME_TYPE_AUDIO:
            return
        self._pending += bytes(frame.buf)
        if len(self._pending) >= self._limit:
            self.media_q.put(("frames", self.ref, bytes(self._pending)))
            self._pending.clear()

    def onFrameRequested(self, frame: Any) -> None:
        frame.type = pj.PJMEDIA_FRAME_TYPE_NONE


class ToneSource(pj.AudioMediaPort):  # type: ignore[misc]
    """Sends queued 20 ms frames (in-band DTMF tones) into the call, silence when none is queued."""

    def __init__(self) -> None:
        super().__init__()
        self.chunks: deque[bytes] = deque()

    def onFrameRequested(self, frame: Any) -> None:
        try:
            chunk = self.chunks.popleft()
        except IndexError:
            frame.type = pj.PJMEDIA_FRAME_TYPE_NONE
            return
        frame.type = pj.PJMEDIA_FRAME_TYPE_AUDIO
        frame.buf = pj.ByteVector(chunk)
        frame.size = len(chunk)

    def onFrameReceived(self, frame: Any) -> None:
        return None


class LogWriter(pj.LogWriter):  # type: ignore[misc]
    """pjsip's own log into `logging` (level 1 errors ... 5+ debug), logger `ivr.sip.pjsip`."""

    def write(self, entry: Any) -> None:
        pj_log.log(_PJ_LEVELS.get(entry.level, logging.DEBUG), "%s", str(entry.msg).rstrip())


class InbandDetector:
    """audio.dtmf's detector on batches of received audio; numpy is imported only when one is made."""

    def __init__(self) -> None:
        from audio.dtmf import DtmfDetector

        self._detector = DtmfDetector(rate=RATE)

    def feed(self, pcm: bytes) -> list[str]:
        """Feed int16 little-endian audio; the digits whose tone started in it."""
        import numpy as np

        events = self._detector.feed(np.frombuffer(pcm, dtype="<i2"))
        return [e.digit for e in events if e.kind == "start"]


def tone_frames(digits: str) -> list[bytes]:
    """20 ms frames of DTMF tones for `digits` (audio.dtmf's generator; imports numpy)."""
    from audio.dtmf import generate

    return list(frames_of(generate(digits, rate=RATE).astype("<i2").tobytes()))


def _stop_tx(src: Any, dst: Any) -> None:
    try:
        src.stopTransmit(dst)
    except pj.Error as exc:
        log.debug("stopTransmit: %s", exc.info())


class CallMedia:
    """The audio of one call and the ports attached to it (player, recorder, tap, tone source).

    Owner thread only. Ports taken off the call go to `released`, which the owner thread empties
    after the current pjsua callback has returned (a port destroyed inside it could be in use)."""

    def __init__(self, ref: str, stream: Any, media_q: MediaQueue, released: list[Any]) -> None:
        self.ref, self.stream = ref, stream
        self._media_q, self._released = media_q, released
        self.player: Player | None = None
        self.recorder: Any = None
        self.record_path: Path | None = None
        self.tap: Tap | None = None
        self.source: ToneSource | None = None
        self.detector: InbandDetector | None = None

    def play(self, wav: Path, loop: bool) -> None:
        """Replace the current playback by `wav` ('eof' on the media queue at its end unless looping)."""
        self.drop_player()
        player = Player(self._media_q, self.ref, loop)
        player.createPlayer(str(wav), 0 if loop else pj.PJMEDIA_FILE_NO_LOOP)
        player.startTransmit(self.stream)
        self.player = player

    def drop_player(self) -> None:
        """Stop the playback, if any."""
        if self.player is not None:
            _stop_tx(self.player, self.stream)
            self._released.append(self.player)
            self.player = None

    def record(self, path: Path) -> Path | None:
        """Record the far end to `path`; returns the path of a recording this closed, if any."""
        closed = self.close_recorder()
        recorder = pj.AudioMediaRecorder()
        recorder.createRecorder(str(path))
        self.stream.startTransmit(recorder)
        self.recorder, self.record_path = recorder, path
        return closed

    def close_recorder(self) -> Path | None:
        """Finish the recording (its WAV header is written when the recorder is destroyed); its path."""
        if self.recorder is None:
            return None
        _stop_tx(self.stream, self.recorder)
        self.recorder = None
        return self.record_path

    def send_tones(self, digits: str) -> None:
        """Queue DTMF tones for `digits` into the call (after any still playing)."""
        frames = tone_frames(digits)  # numpy only when in-band DTMF is used
        if self.source is None:
            self.source = ToneSource()
            self.source.createPort(f"tones-{self.ref}", audio_format())
            self.source.startTransmit(self.stream)
        self.source.chunks.extend(frames)

    def start_detection(self) -> None:
        """Tap the far end's audio for in-band DTMF ('frames' on the media queue)."""
        self.detector = InbandDetector()  # numpy only when in-band DTMF is used
        self.tap = Tap(self._media_q, self.ref)
        self.tap.createPort(f"tap-{self.ref}", audio_format())
        self.stream.startTransmit(self.tap)

    def detach(self) -> Path | None:
        """Take every port off the call (it is ending); returns the path of a recording it closed."""
        self.drop_player()
        closed = self.close_recorder()
        for port in (self.tap, self.source):
            if port is not None:
                self._released.append(port)
        self.tap = self.source = None
        return closed
