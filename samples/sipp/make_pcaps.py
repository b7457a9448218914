"""Write the RTP captures the SIPp scenarios here play (into ./pcap/ by default).

    python make_pcaps.py [--pt 101] [--out pcap]

- pcap/dtmf_2833_<key>.pcap: Debian sip-tester's RFC 4733 captures with the telephone-event
  payload type set to --pt: the type ivrgate offers (`sip.telephone_event_pt`, 101 by default;
  pjsua's own choice, with telephone_event_pt = 0, is 120 for the default codecs), which the
  scenarios echo in their answer.
- pcap/dtmf_pt101_2833_<key>.pcap, pcap/dtmf_pt96_2833_<key>.pcap: the same events on payload
  type 101 (96) whatever --pt says, for callees that answer telephone-event with their own type (and
  send it) to an offer of another type.
- pcap/inband_<key>.pcap: G.711 mu-law RTP (payload type 0) carrying the key's DTMF tone
  pair (120 ms at -10 dBm0 per tone, 200 ms of silence before, 400 ms after), for trunks
  that send key presses only in the audio. Debian's SIPp 3.6.1 cannot stream WAV files, so
  the tone has to be in a capture.
- pcap/inband_alaw_<key>.pcap: the same tone in G.711 A-law (payload type 8), for calls switched
  to PCMA.

- pcap/g722_tone.pcap: G.722 RTP (payload type 9) of a 440 Hz sine, amplitude 8000 (-12.3 dBFS),
  2 s, encoded by ffmpeg (an encoder independent of pjmedia's), for the G.722 level test; written
  only when ffmpeg is installed.

Needs numpy and ivrgate's audio.g711 (pip install -e . from the repository root).
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np

from audio.g711 import alaw_encode, ulaw_encode

RATE = 8000
FRAME = 160
KEYS = "123A456B789C*0#D"
ROWS = (697.0, 770.0, 852.0, 941.0)
COLS = (1209.0, 1336.0, 1477.0, 1633.0)
SIPTESTER_DIR = "/usr/share/sip-tester"
FULL_SCALE_DBM0 = 3.14
CARRIER_PT = 101
"""The telephone-event payload type most carriers answer with and send, whatever was offered."""
FIXED_PTS = (CARRIER_PT, 96)
"""Types of the pcap/dtmf_pt<N>_2833_* copies, for callees that answer and send their own type."""
"""A full-scale mu-law sine is +3.14 dBm0."""


def rewrite_2833(src: Path, dst: Path, payload_type: int) -> int:
    """Copy one sip-tester RFC 4733 capture, setting its RTP payload type; returns the packet count."""
    data = bytearray(src.read_bytes())
    if struct.unpack("<I", data[:4])[0] != 0xA1B2C3D4:
        raise ValueError(f"{src}: not a little-endian pcap")
    link = struct.unpack("<I", data[20:24])[0]
    l2 = {1: 14, 113: 16}[link]
    off, n = 24, 0
    while off < len(data):
        incl = struct.unpack("<I", data[off + 8:off + 12])[0]
        ip = off + 16 + l2
        udp = ip + (data[ip] & 0x0F) * 4
        data[udp + 6:udp + 8] = b"\0\0"  # the checksum no longer holds: zero means none
        rtp = udp + 8
        data[rtp + 1] = (data[rtp + 1] & 0x80) | payload_type
        off += 16 + incl
        n += 1
    dst.write_bytes(bytes(data))
    return n


def tone(key: str, *, level_dbm0: float = -10.0, on_ms: int = 120, before_ms: int = 200,
         after_ms: int = 400) -> np.ndarray:
    """The DTMF tone pair of one key with silence around it, as int16 samples at 8 kHz."""
    i = KEYS.index(key.upper())
    amp = 32124 * 10 ** ((level_dbm0 - FULL_SCALE_DBM0) / 20)
    t = np.arange(RATE * on_ms // 1000) / RATE
    pair = amp * (np.sin(2 * np.pi * ROWS[i // 4] * t) + np.sin(2 * np.pi * COLS[i % 4] * t))
    pad = (np.zeros(RATE * before_ms // 1000), pair, np.zeros(RATE * after_ms // 1000))
    return np.round(np.concatenate(pad)).astype(np.int16)


def rtp_pcap(payloads: list[bytes], payload_type: int = 0, ssrc: int = 0x1D0C0DE) -> bytes:
    """A pcap (Ethernet link type) of one RTP packet per 20 ms payload, 127.0.0.1:6000 -> :6002."""
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    for seq, payload in enumerate(payloads):
        rtp = struct.pack("!BBHII", 0x80, payload_type, seq, seq * FRAME, ssrc) + payload
        udp = struct.pack("!HHHH", 6000, 6002, 8 + len(rtp), 0) + rtp
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), seq, 0, 64, 17, 0,
                         bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1])) + udp
        frame = b"\0" * 12 + b"\x08\x00" + ip
        usec = seq * 20_000
        out.append(struct.pack("<IIII", usec // 1_000_000, usec % 1_000_000, len(frame), len(frame)))
        out.append(frame)
    return b"".join(out)


def inband_pcap(key: str, alaw: bool = False) -> bytes:
    """A G.711 RTP capture carrying one key's tone: mu-law (payload type 0) or A-law (8)."""
    samples = tone(key)
    samples = np.pad(samples, (0, -len(samples) % FRAME))
    codes = (alaw_encode(samples) if alaw else ulaw_encode(samples)).tobytes()
    return rtp_pcap([codes[i:i + FRAME] for i in range(0, len(codes), FRAME)], 8 if alaw else 0)


G722_TONE_HZ = 440.0
G722_TONE_AMPLITUDE = 8000
G722_TONE_S = 2.0


def g722_tone_pcap() -> bytes | None:
    """The G.722 tone capture (ffmpeg encodes 16 kHz PCM into 160-byte 20 ms payloads), or None
    without ffmpeg."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        return None
    t = np.arange(int(16000 * G722_TONE_S)) / 16000
    pcm = np.round(G722_TONE_AMPLITUDE * np.sin(2 * np.pi * G722_TONE_HZ * t)).astype("<i2")
    command = [ffmpeg, "-v", "error", "-f", "s16le", "-ar", "16000", "-ac", "1", "-i", "pipe:",
               "-f", "g722", "pipe:"]
    encoded = subprocess.run(command, input=pcm.tobytes(), capture_output=True, check=True).stdout
    return rtp_pcap([encoded[i:i + FRAME] for i in range(0, len(encoded), FRAME)], 9)


def write_all(out_dir: Path, payload_type: int = CARRIER_PT) -> list[Path]:
    """Write every capture into out_dir; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for src in sorted(glob.glob(os.path.join(SIPTESTER_DIR, "dtmf_2833_*.pcap"))):
        dst = out_dir / os.path.basename(src)
        rewrite_2833(Path(src), dst, payload_type)
        written.append(dst)
        for fixed in FIXED_PTS:
            dst = out_dir / os.path.basename(src).replace("dtmf_", f"dtmf_pt{fixed}_")
            rewrite_2833(Path(src), dst, fixed)
            written.append(dst)
    for key in "0123456789":
        for name, alaw in ((f"inband_{key}.pcap", False), (f"inband_alaw_{key}.pcap", True)):
            dst = out_dir / name
            dst.write_bytes(inband_pcap(key, alaw))
            written.append(dst)
    g722 = g722_tone_pcap()
    if g722 is not None:
        dst = out_dir / "g722_tone.pcap"
        dst.write_bytes(g722)
        written.append(dst)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pt", type=int, default=CARRIER_PT,
                        help=f"telephone-event payload type (default {CARRIER_PT})")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("pcap"))
    args = parser.parse_args(argv)
    for path in write_all(args.out, args.pt):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
