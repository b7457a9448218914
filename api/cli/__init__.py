"""The `ivrgate` command (main) and its sub-commands (commands/): each parses its options and hands over
to the runtime or the core. `python -m api` runs it too."""
