"""The fronts (legacy HTTP, JSON v1, SMTP, GUI, CLI) and the one service path they all call."""
