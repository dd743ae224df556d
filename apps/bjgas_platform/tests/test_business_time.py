"""Business-time arithmetic, with every expected value worked out by hand.

The standard calendar works Monday to Friday 08:30–12:00 and 13:00–17:30 (8 h a day).
"""

from datetime import date, datetime, time
from io import StringIO
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from apps.bjgas_platform.models import (
    BusinessCalendar,
    CalendarException,
    HolidayKind,
    PublicHoliday,
    WorkingPeriod,
)
from apps.bjgas_platform.services.business_time import (
    BusinessClock,
    CalendarError,
    parse_duration,
    seed_public_holidays,
    validate_periods,
)

pytestmark = pytest.mark.django_db
SH = ZoneInfo("Asia/Shanghai")
HOUR = 3600


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SH)


@pytest.fixture
def standard():
    calendar = BusinessCalendar.objects.create(code="STD", name="标准工作日")
    for weekday in range(5):
        WorkingPeriod.objects.create(
            calendar=calendar, weekday=weekday, start=time(8, 30), end=time(12)
        )
        WorkingPeriod.objects.create(
            calendar=calendar, weekday=weekday, start=time(13), end=time(17, 30)
        )
    seed_public_holidays(range(2026, 2027))
    return calendar


def clock(calendar) -> BusinessClock:
    return BusinessClock.for_calendar(calendar)


def test_created_outside_working_hours_starts_next_business_morning(standard):
    # Friday 2026-11-27 18:00: nothing left that day, weekend off, Monday 08:30 + 4 h:
    # 3.5 h until the lunch break, 0.5 h after it -> Monday 13:30.
    c = clock(standard)
    assert c.next_working_moment(at("2026-11-27T18:00")) == at("2026-11-30T08:30")
    assert c.add(at("2026-11-27T18:00"), 4 * HOUR) == at("2026-11-30T13:30")


def test_lunch_break_is_skipped(standard):
    # Monday 11:00 + 2 h: 1 h until 12:00, then 13:00 + 1 h.
    assert clock(standard).add(at("2026-11-30T11:00"), 2 * HOUR) == at("2026-11-30T14:00")
    # A limit that ends exactly at the lunch break falls due at 12:00, not after lunch.
    assert clock(standard).add(at("2026-11-30T11:00"), HOUR) == at("2026-11-30T12:00")


def test_holiday_block_then_make_up_saturday(standard):
    # National Day 2026: 1–7 October off, Saturday 10 October worked in exchange.
    # Wed 30 Sep 17:00 + 20 h: 0.5 h that day, Thu 8 Oct 8 h, Fri 9 Oct 8 h (16.5 h),
    # Sat 10 Oct 3.5 h more -> 12:00.
    make_up = PublicHoliday.objects.get(date=date(2026, 10, 10))
    assert (make_up.kind, make_up.name) == (HolidayKind.WORKDAY, "国庆节")
    assert clock(standard).add(at("2026-09-30T17:00"), 20 * HOUR) == at("2026-10-10T12:00")


def test_spring_festival_business_seconds(standard):
    # Fri 13 Feb 17:00 to Wed 25 Feb 10:00 in 2026: Fri 0.5 h, Sat 14 Feb (make-up) 8 h,
    # 15–23 Feb off, Tue 24 Feb 8 h, Wed 25 Feb 1.5 h = 18 h.
    seconds = clock(standard).seconds_between(at("2026-02-13T17:00"), at("2026-02-25T10:00"))
    assert seconds == 18 * HOUR


def test_weekend_between_two_moments(standard):
    # Fri 16:00 → Mon 10:00: Friday 1.5 h + Monday 1.5 h.
    assert clock(standard).seconds_between(at("2026-11-27T16:00"), at("2026-11-30T10:00")) == (
        3 * HOUR
    )
    assert clock(standard).seconds_between(at("2026-11-30T10:00"), at("2026-11-27T16:00")) == 0


def test_pause_over_a_weekend(standard):
    # Start Fri 27 Nov 16:00, limit 4 h; paused from Fri 17:00 to Tue 1 Dec 09:00.
    # Before the pause: 1 h. After it, 3 h from Tue 09:00: 09:00-12:00 -> Tue 12:00.
    due = clock(standard).add_with_pauses(
        at("2026-11-27T16:00"), 4 * HOUR, [(at("2026-11-27T17:00"), at("2026-12-01T09:00"))]
    )
    assert due == at("2026-12-01T12:00")


def test_calendar_exception_overrides_the_weekday(standard):
    CalendarException.objects.create(
        calendar=standard, date=date(2026, 12, 1), is_working=False, name="机房搬迁"
    )
    CalendarException.objects.create(
        calendar=standard,
        date=date(2026, 12, 5),
        is_working=True,
        start=time(9),
        end=time(11),
        name="周六值守",
    )
    c = clock(standard)
    # Mon 30 Nov 17:00 + 8.5 h: Mon 0.5 h, Tue closed, Wed 2 Dec 8 h -> Wed 17:30.
    assert c.add(at("2026-11-30T17:00"), 8.5 * HOUR) == at("2026-12-02T17:30")
    # Fri 4 Dec 17:00 + 1 h: 0.5 h on Friday, Saturday 5 Dec opens 09:00 -> 09:30.
    assert c.add(at("2026-12-04T17:00"), HOUR) == at("2026-12-05T09:30")


def test_year_without_holidays_warns_and_does_not_crash(standard):
    c = clock(standard)
    # 1 Jan 2027 is a Friday; with no 2027 rows it counts as a plain working day.
    assert c.add(at("2026-12-31T17:00"), HOUR) == at("2027-01-01T09:00")
    assert any("2027" in w for w in c.warnings)


def test_seven_by_twenty_four(standard):
    calendar = BusinessCalendar.objects.get(code="24x7")  # shipped as reference data
    assert calendar.is_24x7
    c = clock(calendar)
    assert c.add(at("2026-10-01T23:00"), 2 * HOUR) == at("2026-10-02T01:00")
    assert c.seconds_between(at("2026-10-01T00:00"), at("2026-10-02T00:00")) == 24 * HOUR


def test_host_time_zone_does_not_matter(standard, monkeypatch):
    # Same instants given in UTC give the same answer as in Shanghai time.
    start_utc = at("2026-11-27T18:00").astimezone(ZoneInfo("UTC"))
    assert clock(standard).add(start_utc, 4 * HOUR) == at("2026-11-30T13:30")


def test_calendar_with_no_working_time_is_refused(standard):
    empty = BusinessCalendar.objects.create(code="EMPTY", name="空日历")
    with pytest.raises(CalendarError) as exc:
        clock(empty).add(at("2026-11-30T09:00"), HOUR)
    assert exc.value.code == "no_working_time"
    assert validate_periods(False, []) != []


def test_overlapping_and_reversed_periods_are_refused():
    calendar = BusinessCalendar(code="X", name="X")
    periods = [
        WorkingPeriod(calendar=calendar, weekday=0, start=time(8), end=time(12)),
        WorkingPeriod(calendar=calendar, weekday=0, start=time(11), end=time(14)),
        WorkingPeriod(calendar=calendar, weekday=1, start=time(15), end=time(9)),
    ]
    errors = validate_periods(False, periods)
    assert len(errors) == 2
    assert validate_periods(False, periods[:1]) == []


def test_parse_duration():
    assert parse_duration("4h") == 4 * HOUR
    assert parse_duration("1d2h30m") == 86400 + 2 * HOUR + 1800
    assert parse_duration("90") == 90
    with pytest.raises(CalendarError):
        parse_duration("four hours")


def test_sla_due_command(standard):
    out, err = StringIO(), StringIO()
    call_command(
        "sla_due",
        calendar="STD",
        start="2026-09-30 17:00",
        limit="20h",
        end="2026-10-09 17:30",
        stdout=out,
        stderr=err,
    )
    text = out.getvalue()
    assert "due:      2026-10-10 12:00:00" in text
    # 30 Sep 0.5 h + 8 Oct 8 h + 9 Oct 8 h = 16.5 h = 59400 s.
    assert "59400 s (16h30m)" in text
    with pytest.raises(CommandError):
        call_command("sla_due", calendar="NOPE", start="2026-09-30 17:00", limit="1h")
    with pytest.raises(CommandError):
        call_command("sla_due", calendar="STD", start="yesterday", limit="1h")


def test_long_spans_in_any_order(standard):
    c = clock(standard)
    # November and March 2026 have no public holidays: four whole weeks are 4 × 5 × 8 h.
    # The later span first, then an earlier one, then the later again: the running day
    # totals are begun again further back and must still agree.
    assert c.seconds_between(at("2026-11-02T08:30"), at("2026-11-30T08:30")) == 160 * HOUR
    assert c.seconds_between(at("2026-03-02T08:30"), at("2026-03-30T08:30")) == 160 * HOUR
    assert c.seconds_between(at("2026-11-02T08:30"), at("2026-11-30T08:30")) == 160 * HOUR
    # Mon 2 Mar 10:00 to Tue 31 Mar 09:00: 2 h + 4.5 h on the 2nd, then 20 whole days
    # (3-6, 9-13, 16-20, 23-27, 30 Mar) × 8 h, then 0.5 h on the 31st.
    assert (
        c.seconds_between(at("2026-03-02T10:00"), at("2026-03-31T09:00"))
        == (6.5 + 160 + 0.5) * HOUR
    )


def test_long_spans_agree_with_a_walk_over_their_days(standard):
    """Spans over the 2026 holidays and their make-up days, against a day-by-day sum."""
    import random

    c = clock(standard)
    reference = clock(standard)

    def walk(start: datetime, end: datetime) -> float:
        total, day = 0.0, start.date()
        while day <= end.date():
            for begin, finish in reference.day_intervals(day):
                overlap = (min(finish, end) - max(begin, start)).total_seconds()
                total += max(overlap, 0.0)
            day = date.fromordinal(day.toordinal() + 1)
        return total

    rng = random.Random(20261204)  # noqa: S311 (test data, not secrets)
    base = at("2026-01-01T00:00").timestamp()
    for _ in range(300):
        a, b = sorted(rng.uniform(0, 364 * 86400) for _ in range(2))
        start = datetime.fromtimestamp(base + a, SH)
        end = datetime.fromtimestamp(base + b, SH)
        assert c.seconds_between(start, end) == pytest.approx(walk(start, end), abs=1e-6)


def test_a_year_without_holidays_warns_on_every_clock_that_reads_it(standard):
    c = clock(standard)
    span = (at("2027-01-04T08:30"), at("2027-02-26T17:30"))
    c.seconds_between(*span)
    assert any("2027" in w for w in c.warnings)
    # An SLA clock clears the warnings before each derivation; the days are cached now.
    c.warnings.clear()
    c.seconds_between(*span)
    assert any("2027" in w for w in c.warnings)
    c.warnings.clear()
    c.seconds_between(at("2027-01-05T09:00"), at("2027-01-05T10:00"))
    assert any("2027" in w for w in c.warnings)
    c.warnings.clear()
    c.seconds_between(at("2026-06-01T09:00"), at("2026-06-01T10:00"))
    assert c.warnings == set()


def test_warnings_name_only_the_years_a_span_covers(standard):
    # Holiday rows exist from 2004 to 2026 (the chinese-calendar package). The running
    # totals also read days outside a span (to reach back, to extend): they must not warn.
    assert not PublicHoliday.objects.filter(date__year__in=[2000, 2002, 2027]).exists()
    c = clock(standard)
    c.seconds_between(at("2002-03-04T09:00"), at("2002-03-11T09:00"))
    c.warnings.clear()
    c.seconds_between(at("2000-03-01T09:00"), at("2000-03-10T09:00"))
    assert any("2000" in w for w in c.warnings) and not any("2002" in w for w in c.warnings)
    c.warnings.clear()
    c.seconds_between(at("2005-03-01T09:00"), at("2005-03-10T09:00"))  # between the two
    assert c.warnings == set()

    c = clock(standard)
    c.seconds_between(at("2027-03-01T09:00"), at("2027-03-10T09:00"))
    assert any("2027" in w for w in c.warnings)
    c.warnings.clear()
    c.seconds_between(at("2025-03-03T09:00"), at("2025-03-12T09:00"))
    assert c.warnings == set()
    c.seconds_between(at("2025-03-03T09:00"), at("2027-01-12T09:00"))  # into 2027
    assert [w for w in c.warnings if "2027" in w] and not [w for w in c.warnings if "2025" in w]
    c.warnings.clear()
    # A year's report, [1 Jan 2026, 1 Jan 2027): not one moment of 2027, so no warning.
    assert c.seconds_between(at("2026-12-28T09:00"), at("2027-01-01T00:00")) == 4 * 8 * HOUR - (
        0.5 * HOUR
    )
    assert c.warnings == set()


def test_a_calendar_exception_day_does_not_warn(standard):
    CalendarException.objects.create(
        calendar=standard, date=date(2027, 1, 5), is_working=False, name="停电检修"
    )
    c = clock(standard)
    c.seconds_between(at("2027-01-04T09:00"), at("2027-01-08T09:00"))  # reads the 5th
    c.warnings.clear()
    assert c.seconds_between(at("2027-01-05T09:00"), at("2027-01-05T17:00")) == 0
    assert c.warnings == set()


def test_spans_newest_first_rebuild_the_totals_a_few_times_not_once_per_span(standard):
    """Ten years of four-day spans, newest first: the running totals reach back in
    growing steps instead of being rebuilt for every span (counted, not timed)."""
    c = clock(standard)
    starts = set()
    first = date(2016, 1, 1).toordinal()
    for ordinal in range(first + 3650, first, -1):
        start = datetime.combine(date.fromordinal(ordinal), time(9), SH)
        end = datetime.combine(date.fromordinal(ordinal + 4), time(9), SH)
        # Four calendar days from 09:00: at most 4 × 8 h, whatever the holidays.
        assert 0 <= c.seconds_between(start, end) <= 32 * HOUR
        starts.add(c._first_day)
    assert len(starts) <= 8  # 1 + about log2(3650 / 366) reaches back
