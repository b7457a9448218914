"""ivr.windows: calling windows in the recipient's local time."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coded.errors import CodedError
from ivr.errors import CampaignRuleError, IvrError
from ivr.windows import (
    ALL_DAYS,
    CallingRules,
    EffectiveRule,
    Hours,
    InvalidCallingRules,
    NoCallingWindow,
    UnknownTimeZone,
    allowed_at,
    day_intervals,
    decide,
    effective_rule,
    next_allowed,
    next_instant,
    rules_from_dict,
    rules_from_json,
    zones_for,
)
from tests.unit.ivr.doc_examples import example_output

UTC = dt.UTC
LA_NUMBER = "+12135550123"
NY_NUMBER = "+12125550123"
UK_NUMBER = "+442079460000"
NZ_NUMBER = "+6435550123"
DEFAULT = rules_from_dict({})
NY = ZoneInfo("America/New_York")


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def rule(start: str, end: str, days: frozenset[int] = ALL_DAYS,
         holidays: frozenset[dt.date] = frozenset()) -> EffectiveRule:
    (h1, m1), (h2, m2) = (map(int, start.split(":")), map(int, end.split(":")))
    return EffectiveRule(Hours(h1 * 60 + m1, h2 * 60 + m2), days, holidays)


# ---------------------------------------------------------------- the TCPA default


def test_before_eight_local_waits_for_eight_local_with_the_reason() -> None:
    decision = decide(utc(2026, 12, 8, 15, 12), LA_NUMBER, DEFAULT)
    assert not decision.allowed
    assert decision.at == utc(2026, 12, 8, 16, 0)
    assert decision.zones == ("America/Los_Angeles",)
    assert decision.reason == ("outside calling hours in America/Los_Angeles (07:12 local); "
                               "next window 08:00 local")


def test_inside_the_window_is_now() -> None:
    now = utc(2026, 12, 8, 15, 12, 30)
    decision = decide(now, NY_NUMBER, DEFAULT)
    assert decision.allowed and decision.at == now
    assert decision.reason == "inside calling hours in America/New_York (10:12 local)"
    assert next_allowed(now, NY_NUMBER, DEFAULT) == now


def test_now_in_another_zone_is_converted_to_utc() -> None:
    now = dt.datetime(2026, 12, 8, 10, 12, tzinfo=NY)
    answer = next_allowed(now, NY_NUMBER, DEFAULT)
    assert answer == now and answer.tzinfo == UTC


def test_naive_now_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        next_allowed(dt.datetime(2026, 12, 8, 10), NY_NUMBER, DEFAULT)


def test_twenty_one_hundred_is_outside_and_the_next_window_is_tomorrow() -> None:
    assert decide(utc(2026, 12, 9, 1, 59, 59), NY_NUMBER, DEFAULT).allowed  # 20:59:59 EST
    decision = decide(utc(2026, 12, 9, 2, 0), NY_NUMBER, DEFAULT)  # 21:00 EST
    assert decision.at == utc(2026, 12, 9, 13, 0)
    assert decision.reason == ("outside calling hours in America/New_York (21:00 local); "
                               "next window Wed 2026-12-09 08:00 local (2026-12-09 13:00 UTC)")


def test_the_same_utc_instant_differs_per_recipient_zone() -> None:
    now = utc(2026, 12, 8, 15, 12)
    assert decide(now, UK_NUMBER, DEFAULT).allowed
    assert next_allowed(now, NZ_NUMBER, DEFAULT) == utc(2026, 12, 8, 19, 0)  # 08:00 NZDT


# ---------------------------------------------------------------- account rules


def test_days_of_the_week_skip_to_the_next_calling_day() -> None:
    rules = rules_from_dict({"days": ["mon", "tue", "wed", "thu", "fri"]})
    decision = decide(utc(2026, 12, 12, 17, 0), NY_NUMBER, rules)  # Saturday 12:00 EST
    assert decision.at == utc(2026, 12, 14, 13, 0)  # Monday 08:00
    assert decision.reason.startswith("not a calling day in America/New_York (Saturday 12:00 local)")


def test_holidays_are_local_dates() -> None:
    rules = rules_from_dict({"holidays": ["2026-12-25"]})
    # 2026-12-24 20:00 UTC is already the 25th, 09:00, in Auckland: a holiday there, not in New York
    now = utc(2026, 12, 24, 20, 0)
    assert decide(now, NY_NUMBER, rules).allowed
    decision = decide(now, NZ_NUMBER, rules)
    assert decision.at == utc(2026, 12, 25, 19, 0)  # the 26th, 08:00 NZDT
    assert decision.reason.startswith("a holiday in Pacific/Auckland (2026-12-25 local, 09:00)")


def test_stricter_rules_win_and_region_entries_apply_only_to_their_numbers() -> None:
    rules = rules_from_dict({"hours": "07:00-20:00", "regions": {"+44": {"hours": "10:00-22:00"},
                                                                 "US": {"hours": "09:00-23:00"}}})
    assert next_allowed(utc(2026, 12, 8, 9, 0), UK_NUMBER, rules) == utc(2026, 12, 8, 10, 0)
    assert next_allowed(utc(2026, 12, 8, 20, 0), UK_NUMBER, rules) == utc(2026, 12, 9, 10, 0)
    assert next_allowed(utc(2026, 12, 8, 13, 30), NY_NUMBER, rules) == utc(2026, 12, 8, 14, 0)
    assert next_allowed(utc(2026, 12, 9, 1, 0), NY_NUMBER, rules) == utc(2026, 12, 9, 14, 0)


def test_the_tcpa_default_cannot_be_widened() -> None:
    rules = rules_from_dict({"hours": "00:00-24:00"})
    assert next_allowed(utc(2026, 12, 8, 12, 0), NY_NUMBER, rules) == utc(2026, 12, 8, 13, 0)


def test_a_region_and_a_calling_code_entry_both_apply() -> None:
    rules = rules_from_dict({"regions": {"US": {"hours": "08:00-12:00"}, "+1": {"hours": "11:00-20:00"}}})
    assert next_allowed(utc(2026, 12, 8, 13, 0), NY_NUMBER, rules) == utc(2026, 12, 8, 16, 0)
    rules = rules_from_dict({"regions": {"US": {"hours": "08:00-10:00"}, "+1": {"hours": "11:00-20:00"}}})
    with pytest.raises(NoCallingWindow):
        next_allowed(utc(2026, 12, 8, 13, 0), NY_NUMBER, rules)


@pytest.mark.parametrize(("obj", "fragment"), [
    ([], "rules: expected an object"),
    ({"hour": "09:00-17:00"}, "unknown key 'hour'"),
    ({"hours": "9-17"}, "rules.hours: '9-17' is not hours"),
    ({"hours": 9}, "rules.hours: 9 is not hours"),
    ({"hours": "17:00-09:00"}, "must run forward"),
    ({"hours": "24:00-24:30"}, "must run forward"),
    ({"hours": "22:00-23:00"}, "no calling hour or day is left"),
    ({"days": []}, "rules.days: expected a non-empty list"),
    ({"days": ["mon", "funday"]}, "rules.days: 'funday' is not a day"),
    ({"days": [1]}, "rules.days: 1 is not a day"),
    ({"days": ["monkey"]}, "rules.days: 'monkey' is not a day"),
    ({"days": ["Thurs"]}, "rules.days: 'Thurs' is not a day"),
    ({"holidays": "2026-12-25"}, "rules.holidays: expected a list"),
    ({"holidays": ["2026-13-01"]}, "rules.holidays: '2026-13-01' is not a date"),
    ({"holidays": ["20261225"]}, "is not a date"),
    ({"regions": []}, "rules.regions: expected an object"),
    ({"regions": {"XX": {}}}, "'XX' is neither a region code"),
    ({"regions": {"+999": {}}}, "'+999' is neither"),
    ({"regions": {"US": "09:00-17:00"}}, "rules.regions.US: expected an object"),
    ({"regions": {"US": {"regions": {}}}}, "rules.regions.US: unknown key 'regions'"),
    ({"regions": {"+44": {"hours": "21:30-23:00"}}}, "rules.regions.+44: with the 08:00-21:00 default"),
])
def test_bad_rules_are_refused_with_the_key_named(obj: object, fragment: str) -> None:
    with pytest.raises(InvalidCallingRules) as caught:
        rules_from_dict(obj)
    assert fragment in caught.value.detail
    assert isinstance(caught.value, CampaignRuleError) and isinstance(caught.value, IvrError)
    assert isinstance(caught.value, CodedError)
    assert caught.value.status_text == "ERROR: INVALID CALLING RULES"


def test_rules_from_json_text() -> None:
    assert rules_from_json('{"hours": "09:00-17:00"}').base.hours == Hours(540, 1020)
    with pytest.raises(InvalidCallingRules, match="rules: not JSON"):
        rules_from_json('{"hours": ')
    with pytest.raises(InvalidCallingRules, match="rules: expected an object"):
        rules_from_json("[1, 2]")


def test_rules_read_day_names_and_regions() -> None:
    rules = rules_from_dict({"days": ["Monday", " SAT ", "sunday"], "holidays": ["2026-01-01"],
                             "regions": {"+044": {"hours": "10:00-18:00"}, "CA": {"days": ["mon"]}}})
    assert rules.base.days == frozenset({0, 5, 6})
    assert rules.base.holidays == frozenset({dt.date(2026, 1, 1)})
    assert set(rules.regions) == {"+44", "CA"}
    assert rules.regions["+44"].hours == Hours(600, 1080)
    assert isinstance(rules, CallingRules)


# ---------------------------------------------------------------- zones of a number


def test_zone_override_wins_and_half_and_quarter_hour_offsets_work() -> None:
    now = utc(2026, 12, 8, 2, 0)
    assert next_allowed(now, NY_NUMBER, DEFAULT, zone_override="Asia/Kolkata") == utc(2026, 12, 8, 2, 30)
    assert next_allowed(now, NY_NUMBER, DEFAULT, zone_override="Asia/Kathmandu") == utc(2026, 12, 8, 2, 15)
    # Chatham Islands: +13:45 in December
    assert next_allowed(utc(2026, 12, 8, 17, 0), NZ_NUMBER, DEFAULT,
                        zone_override="Pacific/Chatham") == utc(2026, 12, 8, 18, 15)


def test_unknown_zones_are_refused() -> None:
    for bad in ("Mars/Olympus", "", "America", "right/UTC", "zone.tab", "../etc/passwd", "utc"):
        with pytest.raises(UnknownTimeZone, match="not a time zone name"):
            zones_for(NY_NUMBER, bad)
    assert zones_for(NY_NUMBER, "America/Denver") == (ZoneInfo("America/Denver"),)
    with pytest.raises(UnknownTimeZone, match="no time zone is known for \\+80012345678"):
        decide(utc(2026, 12, 8, 15, 0), "+80012345678", DEFAULT)
    with pytest.raises(UnknownTimeZone, match=r"not an E\.164 number"):
        decide(utc(2026, 12, 8, 15, 0), "2125550123", DEFAULT)
    # an explicit zone settles a number the data does not place
    assert decide(utc(2026, 12, 8, 15, 0), "+80012345678", DEFAULT, zone_override="Europe/Paris").allowed


def test_a_number_with_several_zones_must_be_inside_every_window() -> None:
    zones = zones_for("+18005550199")
    assert len(zones) > 10 and ZoneInfo("Pacific/Honolulu") in zones
    now = utc(2026, 12, 8, 15, 12)  # 10:12 in New York, 05:12 in Honolulu
    decision = decide(now, "+18005550199", DEFAULT)
    assert not decision.allowed
    assert decision.reason == (
        "outside calling hours in America/Adak (05:12 local); next window 12:00 local; the number has "
        f"{len(zones)} candidate zones and the window must hold in all of them")
    assert decide(decision.at, "+18005550199", DEFAULT).reason == (
        f"inside calling hours in all {len(zones)} candidate zones, e.g. America/Adak (12:00 local)")
    assert all(allowed_at(decision.at, zone, rule("08:00", "21:00")) for zone in zones)
    assert not all(allowed_at(decision.at - dt.timedelta(seconds=1), zone, rule("08:00", "21:00"))
                   for zone in zones)


def test_zones_a_day_apart_across_the_date_line_can_share_no_window() -> None:
    monday_only = rule("08:00", "09:00", days=frozenset({0}))
    kiritimati, pago = ZoneInfo("Pacific/Kiritimati"), ZoneInfo("Pacific/Pago_Pago")  # +14 and -11
    with pytest.raises(NoCallingWindow, match="Pacific/Kiritimati, Pacific/Pago_Pago"):
        next_instant(utc(2026, 12, 8, 0, 0), (kiritimati, pago), monday_only)
    # every day: Kiritimati's 08:00 is Pago Pago's 07:00 of the day before, so 08:00-09:00 overlaps
    assert next_instant(utc(2026, 12, 8, 0, 0), (kiritimati, pago), rule("07:00", "09:00")) == \
        utc(2026, 12, 8, 18, 0)


# ---------------------------------------------------------------- DST and odd days


def test_us_dst_changes_move_the_utc_start() -> None:
    assert next_allowed(utc(2026, 3, 7, 6, 0), NY_NUMBER, DEFAULT) == utc(2026, 3, 7, 13, 0)  # EST
    assert next_allowed(utc(2026, 3, 8, 6, 0), NY_NUMBER, DEFAULT) == utc(2026, 3, 8, 12, 0)  # EDT
    assert next_allowed(utc(2026, 11, 1, 6, 0), NY_NUMBER, DEFAULT) == utc(2026, 11, 1, 13, 0)  # EST again


def test_eu_dst_changes_move_the_utc_start() -> None:
    berlin = "+4915112345678"
    assert next_allowed(utc(2026, 3, 29, 1, 0), berlin, DEFAULT) == utc(2026, 3, 29, 6, 0)  # CEST
    assert next_allowed(utc(2026, 10, 25, 1, 0), berlin, DEFAULT) == utc(2026, 10, 25, 7, 0)  # CET
    # the evening end too: 21:00 CEST on the last summer day is 19:00 UTC
    assert not decide(utc(2026, 10, 24, 19, 0), berlin, DEFAULT).allowed


def test_a_start_in_the_spring_gap_opens_at_the_end_of_the_gap() -> None:
    # 2026-03-08 02:00 EST jumps to 03:00 EDT: 02:30 does not exist
    assert day_intervals(dt.date(2026, 3, 8), NY, Hours(150, 300)) == [(utc(2026, 3, 8, 7, 0),
                                                                         utc(2026, 3, 8, 9, 0))]


def test_a_repeated_start_opens_at_its_first_occurrence() -> None:
    # 2026-11-01 02:00 EDT falls back to 01:00 EST: 01:30 happens at 05:30 and at 06:30 UTC; the wall
    # clock shows 01:00-01:30 again between 06:00 and 06:30 UTC, outside [01:30, 03:00)
    assert day_intervals(dt.date(2026, 11, 1), NY, Hours(90, 180)) == [
        (utc(2026, 11, 1, 5, 30), utc(2026, 11, 1, 6, 0)), (utc(2026, 11, 1, 6, 30), utc(2026, 11, 1, 8, 0))]


def test_a_repeated_end_closes_and_reopens_for_the_repeated_part() -> None:
    assert day_intervals(dt.date(2026, 11, 1), NY, Hours(0, 90)) == [
        (utc(2026, 11, 1, 4, 0), utc(2026, 11, 1, 5, 30)), (utc(2026, 11, 1, 6, 0), utc(2026, 11, 1, 6, 30))]


@pytest.mark.parametrize(("zone", "day", "start"), [
    ("America/Havana", dt.date(2026, 3, 8), utc(2026, 3, 8, 5, 0)),  # midnight becomes 01:00
    ("America/Santiago", dt.date(2026, 9, 6), utc(2026, 9, 6, 4, 0)),
])
def test_a_day_that_starts_in_a_gap_opens_at_one(zone: str, day: dt.date, start: dt.datetime) -> None:
    assert day_intervals(day, ZoneInfo(zone), Hours(0, 120)) == [(start, start + dt.timedelta(hours=1))]


def test_a_day_skipped_at_the_date_line_has_no_window() -> None:
    # Samoa went from 2011-12-29 (-10:00) straight to 2011-12-31 (+14:00); 08:00 UTC on the 30th is 22:00
    # on the 29th, and the next 08:00 local is the 31st's, 18:00 UTC on the 30th
    apia = ZoneInfo("Pacific/Apia")
    assert day_intervals(dt.date(2011, 12, 30), apia, Hours(0, 1440)) == []
    assert next_instant(utc(2011, 12, 30, 8, 0), (apia,), rule("08:00", "21:00")) == utc(2011, 12, 30, 18, 0)


def test_lord_howe_half_hour_dst() -> None:
    lord_howe = ZoneInfo("Australia/Lord_Howe")  # +10:30 standard, +11:00 summer
    tcpa = rule("08:00", "21:00")
    assert next_instant(utc(2026, 6, 1, 12, 0), (lord_howe,), tcpa) == utc(2026, 6, 1, 21, 30)
    assert next_instant(utc(2026, 12, 1, 12, 0), (lord_howe,), tcpa) == utc(2026, 12, 1, 21, 0)


# ---------------------------------------------------------------- properties

ZONES = [ZoneInfo(name) for name in (
    "America/New_York", "America/Los_Angeles", "Europe/Berlin", "Europe/London", "Asia/Kolkata",
    "Asia/Kathmandu", "Pacific/Chatham", "Australia/Adelaide", "Australia/Lord_Howe", "Pacific/Apia",
    "Pacific/Kiritimati", "Pacific/Pago_Pago", "America/Santiago", "America/Havana", "Asia/Tehran",
    "America/St_Johns", "Pacific/Auckland", "UTC")]
GRID = dt.timedelta(minutes=15)
STEP_LIMIT = dt.timedelta(days=12)


@st.composite
def effective_rules(draw: st.DrawFn) -> EffectiveRule:
    start = draw(st.integers(0, 95)) * 15
    end = draw(st.integers(start // 15 + 1, 96)) * 15
    days = draw(st.frozensets(st.integers(0, 6), min_size=1))
    holidays = draw(st.frozensets(st.dates(dt.date(2026, 1, 1), dt.date(2026, 1, 20)), max_size=6))
    return EffectiveRule(Hours(start, end), days, holidays)


nows = st.datetimes(dt.datetime(1995, 1, 1), dt.datetime(2036, 12, 31), timezones=st.just(UTC)).map(
    lambda t: t.replace(microsecond=0))
near_holidays = st.datetimes(dt.datetime(2025, 12, 28), dt.datetime(2026, 1, 22), timezones=st.just(UTC)).map(
    lambda t: t.replace(microsecond=0))


def _allowed_everywhere(instant: dt.datetime, zones: list[ZoneInfo], rule_: EffectiveRule) -> bool:
    return all(allowed_at(instant, zone, rule_) for zone in zones)


@settings(max_examples=100)
@given(now=st.one_of(nows, near_holidays), zones=st.lists(st.sampled_from(ZONES), min_size=1, max_size=3,
                                                            unique=True), rule_=effective_rules())
def test_next_instant_is_the_first_allowed_instant(now: dt.datetime, zones: list[ZoneInfo],
                                                   rule_: EffectiveRule) -> None:
    try:
        found = next_instant(now, zones, rule_)
    except NoCallingWindow:
        found = None
    if found is not None:
        assert found >= now
        assert _allowed_everywhere(found, zones, rule_)
        if found > now:  # the start of a window: the second before it is not allowed
            assert not _allowed_everywhere(found - dt.timedelta(seconds=1), zones, rule_)
    # no allowed instant between now and the answer: window edges lie on the 15-minute UTC grid (hours
    # on a 15-minute grid, offsets in whole quarter hours), so stepping on that grid sees every window
    assert found == now or not _allowed_everywhere(now, zones, rule_)
    limit = now + STEP_LIMIT if found is None else min(found, now + STEP_LIMIT)
    step = now.replace(minute=now.minute - now.minute % 15, second=0) + GRID
    while step < limit:
        assert not _allowed_everywhere(step, zones, rule_), step
        step += GRID


NUMBERS = [NY_NUMBER, LA_NUMBER, UK_NUMBER, NZ_NUMBER, "+9779851234567", "+79161234567", "+18005550199",
           "+61255501234", "+5511987654321"]
ACCOUNT_RULES = rules_from_dict({
    "days": ["mon", "tue", "wed", "thu", "fri", "sat"], "holidays": ["2026-01-01"],
    "regions": {"+44": {"hours": "10:00-18:00"}, "AU": {"hours": "09:00-17:00"}}})


@settings(max_examples=60)
@given(now=st.one_of(nows, near_holidays), number=st.sampled_from(NUMBERS))
def test_decide_on_real_numbers_answers_a_time_allowed_in_every_zone(now: dt.datetime, number: str) -> None:
    decision = decide(now, number, ACCOUNT_RULES)
    zones = list(zones_for(number))
    assert decision.zones == tuple(str(zone) for zone in zones)
    applied = effective_rule(number, ACCOUNT_RULES)
    assert decision.at >= now and _allowed_everywhere(decision.at, zones, applied)
    assert decision.allowed == (decision.at == now) == _allowed_everywhere(now, zones, applied)
    assert ("inside calling hours in " if decision.allowed else "; next window ") in decision.reason
    assert (len(zones) > 1) == ("candidate zones" in decision.reason)
    if not decision.allowed:
        assert not _allowed_everywhere(decision.at - dt.timedelta(seconds=1), zones, applied)


@settings(max_examples=100)
@given(now=nows, zone=st.sampled_from(ZONES), rule_=effective_rules())
def test_day_intervals_are_exactly_the_pointwise_rule(now: dt.datetime, zone: ZoneInfo,
                                                      rule_: EffectiveRule) -> None:
    assert rule_.hours is not None
    day = now.astimezone(zone).date()
    intervals = day_intervals(day, zone, rule_.hours)
    for start, end in intervals:
        assert start < end
        assert start.astimezone(zone).date() == day
        assert (end - dt.timedelta(seconds=1)).astimezone(zone).date() == day
    low = dt.datetime.combine(day, dt.time(), tzinfo=UTC) - dt.timedelta(hours=15)
    step = low
    while step < low + dt.timedelta(hours=54):
        local = step.astimezone(zone)
        minute = local.hour * 60 + local.minute
        expected = local.date() == day and rule_.hours.start <= minute < rule_.hours.end
        assert any(start <= step < end for start, end in intervals) == expected, (step, intervals)
        step += GRID


@settings(max_examples=50)
@given(obj=st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(
        st.sampled_from(["hours", "days", "holidays", "regions", "US", "+44", "x"]), children, max_size=4),
    max_leaves=10))
def test_rules_from_anything_either_load_or_raise_the_coded_error(obj: object) -> None:
    try:
        rules = rules_from_dict(obj)
    except InvalidCallingRules:
        return
    assert isinstance(rules, CallingRules)


def test_the_documented_example_prints_what_the_doc_says() -> None:
    got, shown = example_output("Calling windows")
    assert got == shown


@settings(max_examples=60)
@given(name=st.text(max_size=30) | st.sampled_from(sorted(zoneinfo.available_timezones())))
def test_any_zone_override_is_a_zone_or_the_coded_refusal(name: str) -> None:
    try:
        zones = zones_for(NY_NUMBER, name)
    except UnknownTimeZone:
        return
    assert zones == (ZoneInfo(name),)
