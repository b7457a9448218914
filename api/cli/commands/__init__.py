"""Command implementations of the `ivrgate` CLI, one module per command."""
