"""Pure signal code: decoding, telephony conversion, prompt assembly, G.711 and DTMF.

`audio` imports nothing else of ivrgate (docs/DESIGN.md: arrows point one way).
"""

TELEPHONY_RATE = 8000
"""Samples per second of every prompt and of the audio the SIP engine exchanges."""

FRAME_MS = 20
"""Length of one media frame in milliseconds (pjmedia's default ptime)."""

SAMPLES_PER_FRAME = TELEPHONY_RATE * FRAME_MS // 1000
