"""The IVR: prompt rendering, the call flow state machine, the SIP engine, the dialer and a test phone."""
