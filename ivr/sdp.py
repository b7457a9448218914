"""Edits of our own SDP offers (pure: text in, text out; no pjsua2).

pjsua2 hands an offer to `Call.onCallSdpCreated` as text before it is sent and negotiated with,
and an edit there reaches the wire and pjsua's own view of the offer (docs/DESIGN.md, "SDP edits
reaching the wire")."""

from __future__ import annotations

import itertools
import re

TELEPHONE_EVENT = re.compile(r"^a=rtpmap:(\d+) telephone-event/8000\s*$", re.IGNORECASE)


def offer_telephone_event_pt(sdp: str, pt: int) -> str:
    """`sdp` (our offer) with its 8 kHz telephone-event moved to payload type `pt` in every audio
    section: the m= line's format list, the rtpmap and the fmtp. A section where `pt` already
    names another format is left alone, as is everything when `pt` is 0 (pjsua's own choice).

    pjsua takes the payload type it receives events on from its own offer, and most carriers answer
    and send 101 whatever was offered (RFC 3264 lets an answer name its own type for what it
    receives, and many senders use that type both ways), so offering 101 makes those events heard."""
    if not pt:
        return sdp
    newline = "\r\n" if "\r\n" in sdp else "\n"
    lines = sdp.split(newline)
    starts = [i for i, line in enumerate(lines) if line.startswith("m=")] + [len(lines)]
    for start, end in itertools.pairwise(starts):
        if lines[start].startswith("m=audio "):
            lines[start:end] = _move_event_pt(lines[start:end], pt)
    return newline.join(lines)


def _move_event_pt(section: list[str], pt: int) -> list[str]:
    old = next((m.group(1) for line in section if (m := TELEPHONE_EVENT.match(line))), None)
    fields = section[0].split(" ")
    formats = fields[3:]
    if old is None or old == str(pt) or str(pt) in formats:
        return section
    fields[3:] = [str(pt) if f == old else f for f in formats]
    out = [" ".join(fields)]
    for line in section[1:]:
        for prefix in ("a=rtpmap:", "a=fmtp:"):
            if line.startswith(f"{prefix}{old} "):
                line = f"{prefix}{pt} {line[len(prefix) + len(old) + 1:]}"
        out.append(line)
    return out
