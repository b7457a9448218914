"""Text-to-speech: the Engine protocol, a registry chosen by settings, engines and a segment cache."""
