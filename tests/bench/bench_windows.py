"""Calling-window and merge-field figures: decisions per second for one-zone and many-zone numbers, and
renders per second of a reminder template (the worker asks once per dial, renders once per recipient).

.venv/bin/python -m tests.bench.bench_windows
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable

from ivr.merge import parse_template
from ivr.windows import decide, rules_from_dict

NUMBERS = {
    "one zone (+1 212, New York)": "+12125550123",
    "one zone, 45-minute offset (+977, Kathmandu)": "+9779851234567",
    "16 zones (+7 916 mobile)": "+79161234567",
    "42 zones (+1 800 toll-free)": "+18005550199",
}


def _per_second(action: Callable[[int], object], seconds: float = 0.5) -> float:
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        action(count)
        count += 1
    return count / (time.perf_counter() - start)


def main() -> None:
    rules = rules_from_dict({"days": ["mon", "tue", "wed", "thu", "fri"], "holidays": ["2026-12-25"]})
    base = dt.datetime(2026, 12, 7, tzinfo=dt.UTC)
    for label, number in NUMBERS.items():
        # `now` moves by 7 minutes 13 seconds a step so that allowed and waiting answers both occur
        rate = _per_second(lambda i, n=number: decide(base + dt.timedelta(seconds=433 * i), n, rules))
        print(f"decide, {label}: {rate:,.0f} per second")
    template = parse_template("Hello {name}, your appointment is on {date} at {time}. Press 1 to confirm.")
    values = {"name": "Ada Lovelace", "date": "Tuesday 8 December", "time": "10:30"}
    print(f"render, 3-field reminder: {_per_second(lambda i: template.render(values)):,.0f} per second")


if __name__ == "__main__":
    main()
