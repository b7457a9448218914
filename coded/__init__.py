"""The seed's codes, below every package: the root of every error that carries a status (coded.errors)
and the message status table (coded.statuses).

A leaf: it imports nothing of ours, so audio, tts, ivr, sms, store and api all import it without an
arrow pointing up (docs/DESIGN.md, decision log 2026-12-08, "One error root").
"""
