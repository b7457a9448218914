"""The pjmedia side of the SIP adapter: media ports, the WAV player, the pjsip log bridge, audio formats.

Ports here are called by pjmedia's clock thread (one frame every 20 ms per port). They never touch
the SIP user agent: they only put small tuples on the owner thread's media queue, so the clock
thread never blocks and never calls back into pjsua (docs/DESIGN.md, "The SIP engine").

In-band DTMF: `Tap` batches `INBAND_BATCH_FRAMES` received frames before handing them over, and the
owner thread runs `audio.dtmf` on the whole batch. The detector has a fixed numpy cost per call,
so one call per 100 ms instead of per 20 ms cuts its CPU several times over; the added latency
(up to 100 ms) does not matter for key presses.

numpy is never imported on the owner thread: `DTMF` (a `DtmfLoader`) imports `audio.dtmf` in a
background thread (started right after the engine is ready, or on the first in-band need), and a
call that needs the detector or the tone generator before that import has finished keeps its
received audio (the last `EARLY_AUDIO_S` seconds) and its tones to send until it has; the owner
thread never waits on the import lock.

Tear-down: pjmedia's conference bridge applies disconnections and port removals asynchronously, on
its clock thread's next tick, and pjsua2's `AudioMediaPort` destructor queues the removal of its
conference port and then frees the `pjmedia_port` embedded in it at once, so the bridge could call a
freed port or read its group lock afterwards (the segfaults and pjlib assertions of issue 3). So a
port taken off a call is never destroyed there: `PortReaper` stops its transmissions, removes its
conference slot itself, and lets the object go only once the bridge reports the slot empty (the
removal has run on the clock thread, which then never calls the port again). Only the owner thread
adds conference ports, so a slot seen empty there cannot be taken by another port before the
destructor's own (now harmless) removal of it.

Size: the media of one call (player, recorder, tone source, in-band tap) must be re-attached together on
every media update (re-INVITE, hold); the ports and that rule are kept in one module.
"""

from __future__ import annotations

import ctypes
import importlib
import itertools
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
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
EARLY_AUDIO_S = 2.0
"""Received audio kept per call while audio.dtmf is still being imported (older audio is dropped)."""

MediaQueue = queue.SimpleQueue[tuple[str, str, Any]]
"""(kind, call ref, payload) from the clock thread to the owner thread: ('eof', ref, player serial)
or ('frames', ref, pcm bytes)."""

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


_serials = itertools.count(1)


class Player(pj.AudioMediaPlayer):  # type: ignore[misc]
    """A WAV player; its end-of-file callback runs on the clock thread and only reports.

    The 'eof' item carries the player's `serial`, not the player: an item left on the queue must not
    keep a retired player alive past the moment `PortReaper` chose to destroy it."""

    media_q: MediaQueue | None = None
    ref = ""
    loop = True
    serial = 0

    def __init__(self, media_q: MediaQueue, ref: str, loop: bool) -> None:
        # attributes first: a callback must find them even while the object is half made or freed
        self.media_q, self.ref, self.loop, self.serial = media_q, ref, loop, next(_serials)
        super().__init__()

    def onEof2(self) -> None:
        media_q = self.media_q
        if not self.loop and media_q is not None:
            media_q.put(("eof", self.ref, self.serial))


class Tap(pj.AudioMediaPort):  # type: ignore[misc]
    """Receives the far end's audio and hands it over in batches of `batch` frames (in-band DTMF).

    Callbacks run on pjmedia's clock thread. They read only what the class defines too (so a
    half-initialised or half-destroyed object returns quietly instead of raising into C++), and
    do nothing once `close()` ran."""

    media_q: MediaQueue | None = None
    ref = ""
    _limit = INBAND_BATCH_FRAMES * FRAME_BYTES
    _pending: bytearray | None = None

    def __init__(self, media_q: MediaQueue, ref: str, batch: int = INBAND_BATCH_FRAMES) -> None:
        self.ref, self._limit = ref, batch * FRAME_BYTES
        self._pending = bytearray()  # touched by the clock thread only
        self.media_q = media_q  # last: the callback hands frames over only once this is set
        super().__init__()

    def close(self) -> None:
        """Hand nothing over any more (owner thread, when the call ends)."""
        self.media_q = None

    def onFrameReceived(self, frame: Any) -> None:
        media_q, pending = self.media_q, self._pending
        if media_q is None or pending is None or frame.type != pj.PJMEDIA_FRAME_TYPE_AUDIO:
            return
        pending += bytes(frame.buf)
        if len(pending) >= self._limit:
            media_q.put(("frames", self.ref, bytes(pending)))
            pending.clear()

    def onFrameRequested(self, frame: Any) -> None:
        frame.type = pj.PJMEDIA_FRAME_TYPE_NONE


class ToneSource(pj.AudioMediaPort):  # type: ignore[misc]
    """Sends queued 20 ms frames (in-band DTMF tones) into the call, silence when none is queued."""

    chunks: deque[bytes] | None = None

    def __init__(self) -> None:
        self.chunks = deque()
        super().__init__()

    def close(self) -> None:
        """Send nothing more (owner thread, when the call ends)."""
        self.chunks = None

    def onFrameRequested(self, frame: Any) -> None:
        chunks = self.chunks
        if not chunks:
            frame.type = pj.PJMEDIA_FRAME_TYPE_NONE
            return
        try:
            chunk = chunks.popleft()
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


class DtmfLoader:
    """Imports audio.dtmf (and numpy, ~0.2-0.3 s) once, in a background thread.

    Why: the import on the owner thread stalled every SIP event of the engine (issue 3). The
    thread touches no pjlib. The owner thread only reads `ready` and the references kept here; it
    never imports audio.dtmf itself, so it never waits on the import lock."""

    def __init__(self, module: str = "audio.dtmf") -> None:
        self._module = module
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._done = threading.Event()
        self.detector_class: Callable[..., Any] | None = None
        self.generate: Callable[..., Any] | None = None
        self.frombuffer: Callable[..., Any] | None = None
        self.error = ""
        """Why the import failed ('' when it did not)."""
        self.seconds = 0.0
        """How long the import took."""

    @property
    def ready(self) -> bool:
        """True once the import finished and succeeded (never blocks)."""
        return self._done.is_set() and not self.error

    @property
    def failed(self) -> bool:
        """True once the import finished and failed."""
        return self._done.is_set() and bool(self.error)

    def start(self) -> None:
        """Start the import in a daemon thread, once; returns at once."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._load, name="dtmf-import", daemon=True)
                self._thread.start()

    def wait(self, timeout_s: float | None = None) -> bool:
        """Wait for the import to finish (tests and tools; never on the owner thread); `ready`."""
        self.start()
        self._done.wait(timeout_s)
        return self.ready

    def _load(self) -> None:
        started = time.perf_counter()
        try:
            dtmf = importlib.import_module(self._module)
            numpy = importlib.import_module("numpy")
            self.detector_class, self.generate = dtmf.DtmfDetector, dtmf.generate
            self.frombuffer = numpy.frombuffer
        except Exception as exc:  # any failure is reported; detection stays off
            self.error = f"{type(exc).__name__}: {exc}"
            log.error("in-band DTMF unavailable: importing %s failed: %s", self._module, self.error)
        finally:
            self.seconds = time.perf_counter() - started
            self._done.set()
        log.debug("%s imported in %.0f ms", self._module, self.seconds * 1000)


DTMF = DtmfLoader()
"""The process's loader of audio.dtmf (one per process, like the Endpoint)."""


class InbandDetector:
    """audio.dtmf's detector on batches of received audio (made once `DTMF` is ready)."""

    def __init__(self, loader: DtmfLoader) -> None:
        assert loader.detector_class is not None and loader.frombuffer is not None
        self._detector = loader.detector_class(rate=RATE)
        self._frombuffer = loader.frombuffer

    def feed(self, pcm: bytes) -> list[str]:
        """Feed int16 little-endian audio; the digits whose tone started in it."""
        events = self._detector.feed(self._frombuffer(pcm, dtype="<i2"))
        return [e.digit for e in events if e.kind == "start"]


def tone_frames(digits: str, loader: DtmfLoader = DTMF) -> list[bytes]:
    """20 ms frames of DTMF tones for `digits` (audio.dtmf's generator; the loader must be ready)."""
    assert loader.generate is not None
    return list(frames_of(loader.generate(digits, rate=RATE).astype("<i2").tobytes()))


def _stop_tx(src: Any, dst: Any) -> None:
    try:
        src.stopTransmit(dst)
    except pj.Error as exc:
        log.debug("stopTransmit: %s", exc.info())


class _Conf:
    """The two pjsua conference calls pjsua2 does not expose: remove a slot, and ask whether a slot is
    empty without pjsua2 logging an error for it (the wheel's extension module exports both)."""

    _INFO_BYTES = 16384
    """More than sizeof(pjsua_conf_port_info) (about 1.1 KiB with 254 listener slots)."""

    def __init__(self) -> None:
        lib = ctypes.CDLL(importlib.import_module("pjsua2._pjsua2").__file__)
        self._remove = lib.pjsua_conf_remove_port
        self._remove.argtypes, self._remove.restype = [ctypes.c_int], ctypes.c_int
        self._info = lib.pjsua_conf_get_port_info
        self._info.argtypes, self._info.restype = [ctypes.c_int, ctypes.c_void_p], ctypes.c_int
        self._buf = ctypes.create_string_buffer(self._INFO_BYTES)

    def remove(self, slot: int) -> int:
        """Queue the removal of `slot` (applied on the clock thread's next tick); pj_status_t."""
        return int(self._remove(slot))

    def occupied(self, slot: int) -> bool:
        """True while the bridge still has a port in `slot` (never asks about a negative slot: pjlib
        asserts on it)."""
        return slot >= 0 and int(self._info(slot, self._buf)) == 0


class PortReaper:
    """Destroys media ports taken off calls only once pjmedia can no longer call them (owner thread).

    `retire(port)` stops nothing by itself (the caller stops transmissions first) but queues the
    removal of the port's conference slot; `collect()`, run once per owner-loop pass, drops the
    ports whose slot the bridge reports empty, which runs their destructors right there. A port still
    parked at shutdown after `abandon()` is never destroyed (its C++ object is leaked on purpose)."""

    def __init__(self) -> None:
        self._conf: _Conf | None = None
        self._parked: list[tuple[Any, int]] = []
        self._abandoned: list[Any] = []

    def __len__(self) -> int:
        return len(self._parked)

    def _bridge(self) -> _Conf:
        if self._conf is None:
            self._conf = _Conf()
        return self._conf

    def stop_transmit(self, src: Any, dst: Any) -> None:
        """`src.stopTransmit(dst)`, unless either port has left the bridge already (pjsua removes a
        call's stream before DISCONNECTED reaches us; pjsua2 would log that as an error)."""
        bridge = self._bridge()
        if bridge.occupied(int(src.getPortId())) and bridge.occupied(int(dst.getPortId())):
            _stop_tx(src, dst)

    def retire(self, port: Any) -> None:
        """Take `port` (player, tap, tone source) out of service; it is destroyed by a later collect()."""
        slot = int(port.getPortId())
        if slot >= 0:
            status = self._bridge().remove(slot)
            if status != 0:
                log.debug("removing conference slot %d: status %d", slot, status)
        self._parked.append((port, slot))

    def collect(self) -> int:
        """Destroy the parked ports the bridge no longer holds; how many are still parked."""
        if not self._parked:
            return 0
        conf = self._conf
        assert conf is not None
        keep = [(port, slot) for port, slot in self._parked if slot >= 0 and conf.occupied(slot)]
        self._parked = keep  # the others lose their last reference here, on the owner thread
        return len(keep)

    def abandon(self) -> None:
        """Give up waiting (shutdown): keep the remaining ports alive for the life of the process,
        with their C++ destructors disabled, rather than free memory the bridge may still use."""
        for port, slot in self._parked:
            log.warning("media port in conference slot %d not released by the bridge; leaking it", slot)
            port.thisown = False
            self._abandoned.append(port)
        self._parked = []


@dataclass
class AudioState:
    """A call's audio after a negotiation, as pjsua reports it."""

    status: int
    """pjsua's media status: PJSUA_CALL_MEDIA_ACTIVE, _REMOTE_HOLD, _LOCAL_HOLD, _NONE, _ERROR."""
    direction: int
    """pjmedia_dir of the stream: ENCODING (we send), DECODING (we receive), both, or NONE."""
    stream: Any
    """The stream's AudioMedia in the bridge; None when there is no stream (a=inactive, port 0)."""
    rx_event_pt: int = -1
    """Payload type pjmedia receives telephone-events on (our offer's; -1: none)."""
    tx_event_pt: int = -1
    """Payload type it sends them with (the answer's; -1: none)."""

    @property
    def telephone_event(self) -> bool:
        """RFC 4733 telephone-event was negotiated."""
        return self.rx_event_pt > 0 or self.tx_event_pt > 0

    @property
    def sending(self) -> bool:
        return bool(self.direction & pj.PJMEDIA_DIR_ENCODING) and self.stream is not None

    @property
    def receiving(self) -> bool:
        return bool(self.direction & pj.PJMEDIA_DIR_DECODING) and self.stream is not None

    def describe(self) -> str:
        """'' for sendrecv, else what is missing: 'hold (receive only)', 'send only', 'inactive'."""
        if self.sending and self.receiving:
            return "" if self.status == pj.PJSUA_CALL_MEDIA_ACTIVE else "hold"
        if self.receiving:
            return "hold (receive only)"
        return "send only" if self.sending else "inactive"


def audio_state(call: Any) -> AudioState | None:
    """The call's first audio media now (owner thread); None when the call has no audio line."""
    try:
        info = call.getInfo()  # keep it alive: its media vector is a view into it
        index, media = next((i, m) for i, m in enumerate(info.media) if m.type == pj.PJMEDIA_TYPE_AUDIO)
        status, direction = int(media.status), int(media.dir)
        if int(media.audioConfSlot) < 0 or direction == pj.PJMEDIA_DIR_NONE:
            return AudioState(status, pj.PJMEDIA_DIR_NONE, None)
        stream = call.getAudioMedia(index)
        stream_info = call.getStreamInfo(index)
    except (pj.Error, StopIteration):
        return None
    rx_pt, tx_pt = int(stream_info.audRxEventPt), int(stream_info.audTxEventPt)
    log.debug("audio: %s, status %d, dir %d, telephone-event rx %d tx %d", stream_info.codecName,
              status, direction, rx_pt, tx_pt)
    return AudioState(status, direction, stream, rx_pt, tx_pt)


class CallMedia:
    """The audio of one call and the ports attached to it (player, recorder, tap, tone source).

    Owner thread only. Ports taken off the call go to the `PortReaper`, which destroys each one only
    once pjmedia's bridge has let go of it. In-band detection and tone sending wait for `loader`
    (audio.dtmf imported in the background): see `feed` and `advance`."""

    def __init__(self, ref: str, stream: Any, media_q: MediaQueue, reaper: PortReaper,
                 loader: DtmfLoader = DTMF) -> None:
        self.ref = ref
        self.stream: Any = stream
        """The call's audio stream in the bridge; None while the call has none (held with a=inactive)."""
        self.sending = True
        """The negotiated direction lets us send: the player and the tone source are connected only
        then, so a prompt pauses at its position while the far end holds the call."""
        self._media_q, self._reaper, self._loader = media_q, reaper, loader
        self.player: Player | None = None
        self.recorder: Any = None
        self.record_path: Path | None = None
        self.tap: Tap | None = None
        self.source: ToneSource | None = None
        self.detector: InbandDetector | None = None
        self.detecting = False
        """In-band detection is on for this call (`detector` exists once audio.dtmf is loaded)."""
        self._early = bytearray()
        self._tones = ""

    @property
    def waiting(self) -> bool:
        """True while received audio or tones to send wait for audio.dtmf's import."""
        return (self.detecting and self.detector is None) or bool(self._tones)

    def play(self, wav: Path, loop: bool) -> None:
        """Replace the current playback by `wav` ('eof' on the media queue at its end unless looping)."""
        self.drop_player()
        player = Player(self._media_q, self.ref, loop)
        player.createPlayer(str(wav), 0 if loop else pj.PJMEDIA_FILE_NO_LOOP)
        self.player = player
        if self.sending and self.stream is not None:
            player.startTransmit(self.stream)

    def plays(self, serial: object) -> bool:
        """True when `serial` (an 'eof' payload) is the current player's."""
        return self.player is not None and serial == self.player.serial

    def drop_player(self) -> None:
        """Stop the playback, if any."""
        if self.player is not None:
            if self.stream is not None:
                self._reaper.stop_transmit(self.player, self.stream)
            self._reaper.retire(self.player)
            self.player = None

    def record(self, path: Path) -> Path | None:
        """Record the far end to `path`; returns the path of a recording this closed, if any."""
        closed = self.close_recorder()
        recorder = pj.AudioMediaRecorder()
        recorder.createRecorder(str(path))
        if self.stream is not None:
            self.stream.startTransmit(recorder)
        self.recorder, self.record_path = recorder, path
        return closed

    def close_recorder(self) -> Path | None:
        """Finish the recording (its WAV header is written when the recorder is destroyed); its path."""
        if self.recorder is None:
            return None
        if self.stream is not None:
            self._reaper.stop_transmit(self.stream, self.recorder)
        self.recorder = None
        return self.record_path

    def send_tones(self, digits: str) -> None:
        """Queue DTMF tones for `digits` into the call (after any still playing; once audio.dtmf is
        loaded if it is not yet)."""
        self._tones += digits
        self._loader.start()
        self._send_tones()

    def _send_tones(self) -> None:
        if not self._tones or not self._loader.ready:
            return
        frames, self._tones = tone_frames(self._tones, self._loader), ""
        if self.source is None:
            self.source = ToneSource()
            self.source.createPort(f"tones-{self.ref}", audio_format())
            if self.sending and self.stream is not None:
                self.source.startTransmit(self.stream)
        if self.source.chunks is not None:
            self.source.chunks.extend(frames)

    def start_detection(self) -> None:
        """Tap the far end's audio for in-band DTMF ('frames' on the media queue)."""
        self.detecting = True
        self._loader.start()
        self.tap = Tap(self._media_q, self.ref)
        self.tap.createPort(f"tap-{self.ref}", audio_format())
        if self.stream is not None:
            self.stream.startTransmit(self.tap)
        self.advance()

    def feed(self, pcm: bytes) -> list[str]:
        """Digits whose tone started in a batch of received audio. Before audio.dtmf is loaded the
        audio is kept instead (the last `EARLY_AUDIO_S` seconds) and `advance` detects in it later."""
        if self.detector is not None:
            return self.detector.feed(pcm)
        if self.detecting:
            self._early += pcm
            excess = len(self._early) - int(EARLY_AUDIO_S * RATE) * 2
            if excess > 0:
                del self._early[:excess]
        return []

    def advance(self) -> list[str]:
        """Once audio.dtmf is loaded, start what waited for it: queued tones, and the detector, fed
        the audio kept meanwhile. Returns the digits found in that audio. Never blocks."""
        if not self.waiting or not self._loader.ready:
            return []
        self._send_tones()
        if not self.detecting or self.detector is not None:
            return []
        self.detector = InbandDetector(self._loader)
        early, self._early = bytes(self._early), bytearray()
        return self.detector.feed(early) if early else []

    def attach(self, stream: Any, *, sending: bool) -> None:
        """Follow a renegotiated stream (a re-INVITE or UPDATE: hold, resume, another codec, another
        address). pjsua rebuilds the stream in a new conference slot when the media changed, and the
        old slot's connections go with it, so every port is connected again to `stream` (None: the
        call has no stream now, e.g. a=inactive). Connecting an existing connection again changes
        nothing, so this is safe when nothing changed. The player is connected only while `sending`:
        on hold it is not read, so the prompt goes on from where it stopped when the call resumes."""
        self.stream = stream
        if stream is None:
            self.sending = False
            return
        if self.player is not None:
            if sending:
                self.player.startTransmit(stream)
            elif self.sending:
                self._reaper.stop_transmit(self.player, stream)
        if self.source is not None:
            if sending:
                self.source.startTransmit(stream)
            elif self.sending:
                self._reaper.stop_transmit(self.source, stream)
        self.sending = sending
        if self.tap is not None:
            stream.startTransmit(self.tap)
        if self.recorder is not None:
            stream.startTransmit(self.recorder)

    def detach(self) -> Path | None:
        """Take every port off the call (it is ending); returns the path of a recording it closed.

        Transmissions are stopped first, then each port is closed (its callbacks do nothing more)
        and retired to the reaper, which destroys it once the bridge has removed it."""
        self.drop_player()
        closed = self.close_recorder()
        self.stop_detection()
        if self.source is not None:
            if self.stream is not None:
                self._reaper.stop_transmit(self.source, self.stream)
            self.source.close()
            self._reaper.retire(self.source)
        self.source = None
        self._tones = ""
        return closed

    def stop_detection(self) -> None:
        """Stop tapping the far end's audio for in-band DTMF (the tap goes to the reaper)."""
        if self.tap is not None:
            if self.stream is not None:
                self._reaper.stop_transmit(self.stream, self.tap)
            self.tap.close()
            self._reaper.retire(self.tap)
        self.tap = None
        self.detector, self.detecting, self._early = None, False, bytearray()
