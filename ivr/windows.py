"""Calling windows: when a call to a number may be placed, judged in the RECIPIENT's local time.

An instant is allowed in a zone when its local wall-clock date is a calling day (an allowed day of the
week, not a holiday) and its local time of day lies in the day's hours [start, end). That pointwise rule
is the definition; everything else follows from it, including daylight-saving changes:

- a window that starts at a local time that does not exist (spring forward) opens at the first instant
  whose wall clock shows a later time (the end of the gap);
- a local time that exists twice (fall back) opens the window at its FIRST occurrence, and the repeated
  hour is inside the window when its wall-clock times are; an end time that repeats closes the window
  at its first occurrence and may reopen it for the repeated part of the window.

The zone of a number is the recipient's explicit zone when given, else phonenumbers' time-zone data for
the E.164 number. When the data gives several zones (a number whose area spans zones, or a country with
only a country-level answer), the safe reading applies: the instant must be allowed in EVERY candidate
zone. A number with no known zone is refused (UnknownTimeZone): calling at an unknown local hour is the
one thing the rule exists to prevent, and a per-recipient zone settles it.

The rules always include the US TCPA default (08:00-21:00 local, every day); an account's rule set can
only narrow it: its days, hours and holidays, and those of every region entry (region code such as "US",
or country calling code such as "+44") that matches the number, are intersected.

Pure: `now` is an argument (an aware datetime), nothing here reads a clock.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
import zoneinfo
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone as phone_timezone

from ivr.errors import CampaignRuleError

MINUTES_PER_DAY: Final = 24 * 60
UNKNOWN_ZONE: Final = "Etc/Unknown"
"""What phonenumbers answers for a number whose zone it does not know."""
HORIZON_DAYS: Final = 400
"""How far ahead next_allowed looks for a window before deciding there is none."""
_SEARCH_CHUNK_DAYS: Final = 8
_DAY_NAMES: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FULL_DAY_NAMES: Final = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_HOURS_RE: Final = re.compile(r"([0-2][0-9]):([0-5][0-9])-([0-2][0-9]):([0-5][0-9])")
_UTC: Final = dt.UTC


class InvalidCallingRules(CampaignRuleError):
    """A calling-window rule set that cannot be read; the detail names the key and the value."""

    status_text = "ERROR: INVALID CALLING RULES"


class UnknownTimeZone(CampaignRuleError):
    """No time zone is known for the number (or the explicit zone is not a zone name)."""

    status_text = "ERROR: UNKNOWN TIME ZONE"


class NoCallingWindow(CampaignRuleError):
    """The rules leave no allowed instant within HORIZON_DAYS (e.g. candidate zones too far apart)."""

    status_text = "ERROR: NO CALLING WINDOW"


@dataclass(frozen=True)
class Hours:
    """Local hours of a calling day, in minutes after midnight: [start, end), end at most 24:00."""

    start: int
    end: int

    def __post_init__(self) -> None:
        if not 0 <= self.start < self.end <= MINUTES_PER_DAY:
            raise InvalidCallingRules(f"hours {self} must satisfy 00:00 <= start < end <= 24:00")

    def __str__(self) -> str:
        return f"{_hhmm(self.start)}-{_hhmm(self.end)}"

    def intersect(self, other: Hours) -> Hours | None:
        start, end = max(self.start, other.start), min(self.end, other.end)
        return Hours(start, end) if start < end else None


TCPA_HOURS: Final = Hours(8 * 60, 21 * 60)
ALL_DAYS: Final = frozenset(range(7))
"""Days of the week as date.weekday() numbers: 0 is Monday."""


@dataclass(frozen=True)
class DayRule:
    """One layer of restrictions; None hours means no restriction of the hours."""

    hours: Hours | None = None
    days: frozenset[int] = ALL_DAYS
    holidays: frozenset[dt.date] = frozenset()


@dataclass(frozen=True)
class EffectiveRule:
    """The intersection that applies to one number: hours (None when the layers share no hour)."""

    hours: Hours | None
    days: frozenset[int]
    holidays: frozenset[dt.date]

    def allows_date(self, day: dt.date) -> bool:
        return self.hours is not None and day.weekday() in self.days and day not in self.holidays

    def allows_local(self, local: dt.datetime) -> bool:
        """The pointwise definition: is this local wall-clock time inside a window?"""
        minute = local.hour * 60 + local.minute
        return self.allows_date(local.date()) and self.hours is not None and (
            self.hours.start <= minute < self.hours.end)


@dataclass(frozen=True)
class CallingRules:
    """An account's rule set: a base layer plus layers per region code ("US") or calling code ("+44")."""

    base: DayRule = DayRule()
    regions: Mapping[str, DayRule] = field(default_factory=dict)

    def for_number(self, region_code: str | None, calling_code: int) -> EffectiveRule:
        layers = [DayRule(TCPA_HOURS), self.base]
        layers += [rule for key, rule in self.regions.items() if key in (region_code, f"+{calling_code}")]
        hours: Hours | None = TCPA_HOURS
        days, holidays = ALL_DAYS, frozenset[dt.date]()
        for layer in layers:
            if hours is not None and layer.hours is not None:
                hours = hours.intersect(layer.hours)
            days &= layer.days
            holidays |= layer.holidays
        return EffectiveRule(hours, days, holidays)


@dataclass(frozen=True)
class Decision:
    """The answer for one recipient at one instant; `reason` is a line for the message timeline."""

    allowed: bool
    at: dt.datetime
    """`now` when allowed, else the UTC start of the next allowed window."""
    zones: tuple[str, ...]
    reason: str


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


# ---------------------------------------------------------------- loading rules from a dict / JSON


def _parse_hours(value: object, where: str) -> Hours:
    match = _HOURS_RE.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise InvalidCallingRules(f"{where}: {value!r} is not hours of the form 'HH:MM-HH:MM'")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if h1 > 23 or h2 > 24 or end > MINUTES_PER_DAY or start >= end:
        raise InvalidCallingRules(f"{where}: {value!r} must run forward within one day, 00:00 to 24:00")
    return Hours(start, end)


def _parse_days(value: object, where: str) -> frozenset[int]:
    if not isinstance(value, list) or not value:
        raise InvalidCallingRules(f"{where}: expected a non-empty list of days such as ['mon', 'tue']")
    days = set()
    for item in value:
        word = item.strip().lower() if isinstance(item, str) else ""
        name = word[:3]
        if name not in _DAY_NAMES or word not in (name, _FULL_DAY_NAMES[_DAY_NAMES.index(name)]):
            raise InvalidCallingRules(f"{where}: {item!r} is not a day (mon, tue, wed, thu, fri, sat, sun)")
        days.add(_DAY_NAMES.index(name))
    return frozenset(days)


def _parse_holidays(value: object, where: str) -> frozenset[dt.date]:
    if not isinstance(value, list):
        raise InvalidCallingRules(f"{where}: expected a list of dates 'YYYY-MM-DD'")
    dates = set()
    for item in value:
        try:
            if not isinstance(item, str) or len(item) != 10:
                raise ValueError(item)
            dates.add(dt.date.fromisoformat(item))
        except ValueError:
            raise InvalidCallingRules(f"{where}: {item!r} is not a date 'YYYY-MM-DD'") from None
    return frozenset(dates)


def _parse_layer(obj: object, where: str, allowed: frozenset[str]) -> DayRule:
    if not isinstance(obj, Mapping):
        raise InvalidCallingRules(f"{where}: expected an object")
    unknown = sorted(set(obj) - allowed, key=str)
    if unknown:
        known = ", ".join(sorted(allowed))
        raise InvalidCallingRules(f"{where}: unknown key {unknown[0]!r} (known: {known})")
    hours = _parse_hours(obj["hours"], f"{where}.hours") if "hours" in obj else None
    days = _parse_days(obj["days"], f"{where}.days") if "days" in obj else ALL_DAYS
    holidays = _parse_holidays(obj["holidays"], f"{where}.holidays") if "holidays" in obj else frozenset()
    return DayRule(hours, days, holidays)


def _region_key(key: object) -> str:
    if isinstance(key, str) and key in phonenumbers.SUPPORTED_REGIONS:
        return key
    if (isinstance(key, str) and key.startswith("+") and key[1:].isdigit()
            and phonenumbers.region_code_for_country_code(int(key[1:])) != phonenumbers.UNKNOWN_REGION):
        return f"+{int(key[1:])}"
    raise InvalidCallingRules(f"regions: {key!r} is neither a region code such as 'US' nor a calling code "
                              "such as '+44'")


def rules_from_dict(obj: object) -> CallingRules:
    """Read a rule set such as

        {"hours": "09:00-20:00", "days": ["mon", "tue", "wed", "thu", "fri", "sat"],
         "holidays": ["2026-12-25"], "regions": {"+44": {"hours": "10:00-18:00"}, "CA": {"days": ["mon"]}}}

    Every key is optional; an empty object is the TCPA default. Refuses anything else with
    InvalidCallingRules naming the key. A layer whose days and hours leave nothing is refused too."""
    base = _parse_layer(obj, "rules", frozenset({"hours", "days", "holidays", "regions"}))
    assert isinstance(obj, Mapping)
    regions_obj = obj.get("regions", {})
    if not isinstance(regions_obj, Mapping):
        raise InvalidCallingRules("rules.regions: expected an object of region -> rules")
    regions = {}
    for key, layer in regions_obj.items():
        name = _region_key(key)
        regions[name] = _parse_layer(layer, f"rules.regions.{key}", frozenset({"hours", "days", "holidays"}))
    rules = CallingRules(base, regions)
    for name in ["", *regions]:
        effective = rules.for_number(name or None, -1)
        if effective.hours is None or not effective.days:
            where = f"rules.regions.{name}" if name else "rules"
            raise InvalidCallingRules(f"{where}: with the 08:00-21:00 default and the account's rules no "
                                      "calling hour or day is left")
    return rules


def rules_from_json(text: str) -> CallingRules:
    """rules_from_dict() of a JSON text; text that is not JSON is refused with InvalidCallingRules too."""
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise InvalidCallingRules(f"rules: not JSON ({exc})") from None
    return rules_from_dict(obj)


# ---------------------------------------------------------------- zones of a number


@functools.cache
def _zone_names() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def recipient_zone(name: str) -> ZoneInfo:
    """A recipient's explicit zone: an IANA zone name such as 'America/Denver' (UnknownTimeZone if not);
    an upload calls it to refuse a bad zone before anything is queued."""
    if name not in _zone_names():
        raise UnknownTimeZone(f"{name[:60]!r} is not a time zone name (such as 'America/Denver')")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise UnknownTimeZone(f"{name!r} is not a usable time zone") from exc


def zones_for(number: str, zone_override: str | None = None) -> tuple[ZoneInfo, ...]:
    """The candidate zones of an E.164 number (as api.core.phones keeps them), or the explicit zone."""
    if zone_override is not None:
        return (recipient_zone(zone_override),)
    names = phone_timezone.time_zones_for_number(_parse(number))
    zones = []
    for name in sorted(set(names)):
        if name == UNKNOWN_ZONE:
            continue
        try:
            zones.append(ZoneInfo(name))
        except ZoneInfoNotFoundError:
            continue
    if not zones:
        raise UnknownTimeZone(f"no time zone is known for {number}; give the recipient's zone")
    return tuple(zones)


def _parse(number: str) -> phonenumbers.PhoneNumber:
    try:
        return phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException as exc:
        raise UnknownTimeZone(f"{number!r} is not an E.164 number") from exc


def effective_rule(number: str, rules: CallingRules) -> EffectiveRule:
    parsed = _parse(number)
    return rules.for_number(phonenumbers.region_code_for_number(parsed), parsed.country_code or -1)


# ---------------------------------------------------------------- windows as UTC intervals

Interval = tuple[dt.datetime, dt.datetime]


def allowed_at(instant: dt.datetime, zone: ZoneInfo, rule: EffectiveRule) -> bool:
    """The pointwise rule: the instant's local wall clock in `zone` is inside a window."""
    return rule.allows_local(instant.astimezone(zone))


def _offset(instant: dt.datetime, zone: ZoneInfo) -> dt.timedelta:
    offset = instant.astimezone(zone).utcoffset()
    assert offset is not None
    return offset


def _same_offset_pieces(start: dt.datetime, end: dt.datetime, zone: ZoneInfo) -> list[Interval]:
    """Split [start, end) where the zone's offset changes (found by bisection to the second). A span of at
    most a day is assumed not to change the offset and change it back (no zone does)."""
    pieces = []
    while start < end:
        first = _offset(start, zone)
        if _offset(end - dt.timedelta(seconds=1), zone) == first:
            pieces.append((start, end))
            break
        low, high = start, end - dt.timedelta(seconds=1)  # offset(low) == first != offset(high)
        while high - low > dt.timedelta(seconds=1):
            mid = low + (high - low) // 2
            mid = mid.replace(microsecond=0)
            if _offset(mid, zone) == first:
                low = mid
            else:
                high = mid
        pieces.append((start, high))
        start = high
    return pieces


def day_intervals(day: dt.date, zone: ZoneInfo, hours: Hours) -> list[Interval]:
    """The UTC instants whose wall clock in `zone` shows `day` within `hours`, as intervals."""
    wall_start = dt.datetime.combine(day, dt.time()) + dt.timedelta(minutes=hours.start)
    wall_end = dt.datetime.combine(day, dt.time()) + dt.timedelta(minutes=hours.end)
    offsets = set()
    for wall in (wall_start, wall_end):
        for fold in (0, 1):
            offset = wall.replace(tzinfo=zone, fold=fold).utcoffset()
            assert offset is not None
            offsets.add(offset)
    found = []
    for offset in offsets:
        start = (wall_start - offset).replace(tzinfo=_UTC)
        end = (wall_end - offset).replace(tzinfo=_UTC)
        pieces = _same_offset_pieces(start, end, zone)
        found += [piece for piece in pieces if _offset(piece[0], zone) == offset]
    return _merged(found)


def _merged(intervals: list[Interval]) -> list[Interval]:
    out: list[Interval] = []
    for start, end in sorted(intervals):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def _zone_intervals(zone: ZoneInfo, rule: EffectiveRule, first: dt.date, days: int) -> list[Interval]:
    assert rule.hours is not None
    found: list[Interval] = []
    for n in range(days):
        day = first + dt.timedelta(days=n)
        if rule.allows_date(day):
            found += day_intervals(day, zone, rule.hours)
    return _merged(found)


def _intersect(a: Sequence[Interval], b: Sequence[Interval]) -> list[Interval]:
    out, i, j = [], 0, 0
    while i < len(a) and j < len(b):
        start, end = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if start < end:
            out.append((start, end))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out


def next_instant(now: dt.datetime, zones: Sequence[ZoneInfo], rule: EffectiveRule) -> dt.datetime:
    if rule.hours is None or not rule.days:
        raise NoCallingWindow("the rules that apply to this number leave no calling hour or day")
    # Local dates start a day early (the date line: a zone may still be on yesterday's date) and chunks
    # overlap by two days so that a window crossing a chunk's edge is seen whole.
    first = now.astimezone(_UTC).date() - dt.timedelta(days=2)
    for chunk in range(0, HORIZON_DAYS, _SEARCH_CHUNK_DAYS):
        start = first + dt.timedelta(days=chunk)
        common: list[Interval] | None = None
        for zone in zones:
            intervals = _zone_intervals(zone, rule, start, _SEARCH_CHUNK_DAYS + 2)
            common = intervals if common is None else _intersect(common, intervals)
        for low, high in common or []:
            if high > now:
                return max(low, now)
    raise NoCallingWindow(f"no instant within {HORIZON_DAYS} days is inside the calling hours of every zone "
                          f"({', '.join(str(z) for z in zones)})")


# ---------------------------------------------------------------- the API


def _utc(now: dt.datetime) -> dt.datetime:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be an aware datetime")
    return now.astimezone(_UTC)


def next_allowed(now: dt.datetime, number: str, rules: CallingRules,
                 zone_override: str | None = None) -> dt.datetime:
    """`now` (in UTC) when a call to `number` is allowed now, else the UTC start of its next window."""
    return decide(now, number, rules, zone_override).at


def decide(now: dt.datetime, number: str, rules: CallingRules, zone_override: str | None = None) -> Decision:
    """The decision for a call to `number` at `now`, with a reason for the message timeline."""
    now = _utc(now)
    zones = zones_for(number, zone_override)
    rule = effective_rule(number, rules)
    at = next_instant(now, zones, rule)
    names = tuple(str(zone) for zone in zones)
    if at == now:
        local = now.astimezone(zones[0])
        where = f"{zones[0]}" if len(zones) == 1 else f"all {len(zones)} candidate zones, e.g. {zones[0]}"
        return Decision(True, now, names, f"inside calling hours in {where} ({local:%H:%M} local)")
    blocking = next((zone for zone in zones if not allowed_at(now, zone, rule)), zones[0])
    reason = _why(now, at, blocking, rule)
    if len(zones) > 1:
        reason += f"; the number has {len(zones)} candidate zones and the window must hold in all of them"
    return Decision(False, at, names, reason)


def _why(now: dt.datetime, at: dt.datetime, zone: ZoneInfo, rule: EffectiveRule) -> str:
    local, opens = now.astimezone(zone), at.astimezone(zone)
    if local.date() in rule.holidays:
        why = f"a holiday in {zone} ({local:%Y-%m-%d} local, {local:%H:%M})"
    elif local.weekday() not in rule.days:
        why = f"not a calling day in {zone} ({local:%A %H:%M} local)"
    else:
        why = f"outside calling hours in {zone} ({local:%H:%M} local)"
    when = f"{opens:%H:%M} local" if opens.date() == local.date() else f"{opens:%a %Y-%m-%d %H:%M} local"
    if opens.utcoffset() != local.utcoffset() or opens.date() != local.date():
        when += f" ({at:%Y-%m-%d %H:%M} UTC)"
    return f"{why}; next window {when}"
