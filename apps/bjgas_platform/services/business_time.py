"""Business-time arithmetic on a business calendar.

A `BusinessClock` loads one calendar's working periods, exceptions and the public
holidays once, then answers in memory: when a limit that starts at a moment falls due,
and how much business time lies between two moments. Days are cut in the site's time
zone; datetimes in and out are aware.

Precedence for one date: the calendar's own exception; else, when the calendar observes
public holidays, a day off is closed and a make-up working day works the periods of
`makeup_day_weekday`; else the weekday's periods. A year with no public-holiday rows is
computed as plain weekdays and named in `warnings`, so a missing arrangement never
crashes a sweep but is visible.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils.translation import gettext as _

from ..models.calendar import BusinessCalendar, HolidayKind, PublicHoliday, WorkingPeriod
from .errors import PlatformError

# How far a search for working time goes before the calendar is declared empty.
MAX_SEARCH_DAYS = 3 * 366

Interval = tuple[datetime, datetime]


class CalendarError(PlatformError):
    """The calendar cannot answer: it has no working time, or its definition is wrong."""


@dataclass
class BusinessClock:
    calendar: BusinessCalendar
    tz: ZoneInfo
    periods: dict[int, list[tuple[time, time]]]
    exceptions: dict[date, tuple[time, time] | None]
    holidays: dict[date, str]
    holiday_years: set[int]
    warnings: set[str] = field(default_factory=set)
    # Per local date: its working intervals, their length in seconds, and the warning it
    # gives when read ('' or the one of a year without public holidays). The calendar's
    # rows do not change while a clock is in use.
    _days: dict[date, tuple[list[Interval], float, str]] = field(default_factory=dict, repr=False)
    # Running totals over the days from _first_day on: _totals[i] holds the business
    # seconds and _warned[i] the number of warning days before _first_day + i days. A long
    # span then costs two look-ups instead of a walk over its days.
    _first_day: date | None = field(default=None, repr=False)
    _totals: list[float] = field(default_factory=list, repr=False)
    _warned: list[int] = field(default_factory=list, repr=False)

    @classmethod
    def for_calendar(cls, calendar: BusinessCalendar) -> BusinessClock:
        """Load everything the calendar needs in three queries."""
        periods: dict[int, list[tuple[time, time]]] = {}
        for p in calendar.periods.order_by("weekday", "start"):
            periods.setdefault(p.weekday, []).append((p.start, p.end))
        exceptions = {
            e.date: (e.start, e.end) if e.is_working else None for e in calendar.exceptions.all()
        }
        holidays: dict[date, str] = {}
        if calendar.observes_public_holidays and not calendar.is_24x7:
            holidays = dict(PublicHoliday.objects.values_list("date", "kind"))
        return cls(
            calendar=calendar,
            tz=ZoneInfo(settings.TIME_ZONE),
            periods=periods,
            exceptions=exceptions,
            holidays=holidays,
            holiday_years={d.year for d in holidays},
        )

    # ---------------------------------------------------------------- one day

    def day_periods(self, day: date) -> list[tuple[time, time]]:
        """Return the working periods of one local date, in order (noting any warning)."""
        periods, warning = self._periods_of(day)
        if warning:
            self.warnings.add(warning)
        return periods

    def _periods_of(self, day: date) -> tuple[list[tuple[time, time]], str]:
        if day in self.exceptions:
            hours = self.exceptions[day]
            return ([hours] if hours else []), ""
        warning = ""
        if self.calendar.observes_public_holidays:
            if day.year not in self.holiday_years:
                warning = _year_warning(day.year)
            kind = self.holidays.get(day)
            if kind == HolidayKind.DAY_OFF:
                return [], warning
            if kind == HolidayKind.WORKDAY:
                return self.periods.get(self.calendar.makeup_day_weekday, []), warning
        return self.periods.get(day.weekday(), []), warning

    def day_intervals(self, day: date) -> list[Interval]:
        return self._day(day)[0]

    def _day(self, day: date) -> tuple[list[Interval], float]:
        """One day's intervals and seconds, for a span that includes the day: it warns."""
        intervals, seconds, warning = self._days.get(day) or self._read_day(day)
        if warning:
            self.warnings.add(warning)
        return intervals, seconds

    def _read_day(self, day: date) -> tuple[list[Interval], float, str]:
        """Work out one day and keep it, without warning (the day may lie outside the span)."""
        periods, warning = self._periods_of(day)
        intervals = [
            (datetime.combine(day, start, self.tz), _end_of(day, end, self.tz))
            for start, end in periods
        ]
        seconds = sum((end - begin).total_seconds() for begin, end in intervals)
        found = self._days[day] = (intervals, seconds, warning)
        return found

    # ------------------------------------------------------------- arithmetic

    def add(self, start: datetime, seconds: float) -> datetime:
        """Return the moment `seconds` of business time after `start`."""
        if seconds < 0:
            raise CalendarError(_("A limit must be positive."), code="negative_limit")
        if self.calendar.is_24x7:
            return start + timedelta(seconds=seconds)
        remaining = timedelta(seconds=seconds)
        local = start.astimezone(self.tz)
        day = local.date()
        for _offset in range(MAX_SEARCH_DAYS):
            for begin, end in self.day_intervals(day):
                begin = max(begin, local)
                if begin >= end:
                    continue
                if remaining <= end - begin:
                    return begin + remaining
                remaining -= end - begin
            day += timedelta(days=1)
        raise self._no_working_time()

    def add_with_pauses(self, start: datetime, seconds: float, pauses: list[Interval]) -> datetime:
        """Return when `seconds` of business time after `start` are used, skipping pauses."""
        cursor, remaining = start, seconds
        for pause_start, pause_end in sorted(pauses):
            if pause_end <= cursor:
                continue
            available = self.seconds_between(cursor, pause_start)
            if remaining <= available:
                break
            remaining -= available
            cursor = max(cursor, pause_end)
        return self.add(cursor, remaining)

    def next_working_moment(self, moment: datetime) -> datetime:
        """Return the first business moment at or after `moment`."""
        if self.calendar.is_24x7:
            return moment
        local = moment.astimezone(self.tz)
        day = local.date()
        for _offset in range(MAX_SEARCH_DAYS):
            for begin, end in self.day_intervals(day):
                if end > local:
                    return max(begin, local)
            day += timedelta(days=1)
        raise self._no_working_time()

    def seconds_between(self, start: datetime, end: datetime) -> float:
        """Return the business seconds in [start, end); 0 when end is not after start."""
        if end <= start:
            return 0.0
        if self.calendar.is_24x7:
            return (end - start).total_seconds()
        local_start, local_end = start.astimezone(self.tz), end.astimezone(self.tz)
        first, last = local_start.date(), local_end.date()
        total = self._part_of_day(first, local_start, local_end)
        if last > first:
            total += self._whole_days(first + timedelta(days=1), last)
            last_midnight = datetime.combine(last, time(0), self.tz)
            if local_end > last_midnight:  # else the span ends before the last day begins
                total += self._part_of_day(last, local_start, local_end)
        return total

    def _part_of_day(self, day: date, local_start: datetime, local_end: datetime) -> float:
        total = 0.0
        for begin, finish in self._day(day)[0]:
            overlap = (min(finish, local_end) - max(begin, local_start)).total_seconds()
            if overlap > 0:
                total += overlap
        return total

    def _whole_days(self, first: date, stop: date) -> float:
        """Return the business seconds of the whole days from `first` up to, not including,
        `stop`; note the warnings of those days."""
        if stop <= first:
            return 0.0
        self._cover(first, stop)
        start, end = (first - self._first_day).days, (stop - self._first_day).days
        if self._warned[end] > self._warned[start]:
            self._warn_between(first, stop)
        return self._totals[end] - self._totals[start]

    def _warn_between(self, first: date, stop: date) -> None:
        """Note the warning of each year that has a warning day in [first, stop)."""
        for year in range(first.year, (stop - timedelta(days=1)).year + 1):
            begin = max(first, date(year, 1, 1))
            end = min(stop, date(year + 1, 1, 1))
            i, j = (begin - self._first_day).days, (end - self._first_day).days
            if self._warned[j] > self._warned[i]:
                self.warnings.add(_year_warning(year))

    def _cover(self, first: date, stop: date) -> None:
        """Extend the running totals to cover the days from `first` to `stop`.

        Reaching back, they go at least as far again as they already reach (and a year),
        so spans that come newest first rebuild them a few times, not once per span.
        """
        if self._first_day is None:
            self._first_day, self._totals, self._warned = first, [0.0], [0]
        elif first < self._first_day:
            reach = max(len(self._totals), 366)
            new_first = min(first, self._first_day - timedelta(days=reach))
            totals, warned = self._running(new_first, self._first_day, 0.0, 0)
            self._totals = [0.0, *totals] + [totals[-1] + t for t in self._totals[1:]]
            self._warned = [0, *warned] + [warned[-1] + w for w in self._warned[1:]]
            self._first_day = new_first
        covered = self._first_day + timedelta(days=len(self._totals) - 1)
        if covered < stop:
            totals, warned = self._running(covered, stop, self._totals[-1], self._warned[-1])
            self._totals.extend(totals)
            self._warned.extend(warned)

    def _running(self, first: date, stop: date, seconds: float, warned: int):
        """Return the running seconds and warning-day counts after each day of [first, stop),
        starting from `seconds` and `warned`."""
        totals, counts = [], []
        day = first
        while day < stop:
            _intervals, day_seconds, warning = self._days.get(day) or self._read_day(day)
            seconds += day_seconds
            warned += bool(warning)
            totals.append(seconds)
            counts.append(warned)
            day += timedelta(days=1)
        return totals, counts

    def _no_working_time(self) -> CalendarError:
        return CalendarError(
            _("Calendar '%(name)s' has no working time within %(days)s days; check its periods.")
            % {"name": self.calendar.name, "days": MAX_SEARCH_DAYS},
            code="no_working_time",
        )


def _year_warning(year: int) -> str:
    return _(
        "No public holidays are entered for %(year)s; its days are counted as plain weekdays."
    ) % {"year": year}


def _end_of(day: date, end: time, tz: ZoneInfo) -> datetime:
    """Return the end of a period; 23:59:59 or later counts as midnight of the next day."""
    if end >= time(23, 59, 59):
        return datetime.combine(day + timedelta(days=1), time(0), tz)
    return datetime.combine(day, end, tz)


def validate_periods(is_24x7: bool, periods: list[WorkingPeriod]) -> list[str]:
    """Return what is wrong with a calendar's working periods; empty when sound."""
    errors: list[str] = []
    if is_24x7:
        return errors
    if not periods:
        errors.append(_("The calendar has no working time: add working periods or mark it 7×24."))
    by_day: dict[int, list[WorkingPeriod]] = {}
    for p in periods:
        if p.start is None or p.end is None:
            continue
        if p.end <= p.start:
            errors.append(_("%(period)s ends before it starts.") % {"period": str(p)})
        by_day.setdefault(p.weekday, []).append(p)
    for day_periods in by_day.values():
        day_periods.sort(key=lambda p: p.start)
        for before, after in itertools.pairwise(day_periods):
            if after.start < before.end:
                errors.append(_("%(a)s and %(b)s overlap.") % {"a": str(before), "b": str(after)})
    return errors


DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([dhms])", re.IGNORECASE)
UNIT_SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


def parse_duration(text: str) -> float:
    """Parse '4h', '1d2h30m', '90m' or plain seconds into seconds of business time."""
    text = text.strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    parts = DURATION_PART.findall(text)
    if not parts or DURATION_PART.sub("", text).strip():
        raise CalendarError(
            _("'%(text)s' is not a duration; write e.g. 4h, 90m or 1d2h.") % {"text": text},
            code="bad_duration",
        )
    return sum(float(n) * UNIT_SECONDS[u.lower()] for n, u in parts)


# The package names holidays in English; the rows are data shown as entered, in Chinese.
HOLIDAY_NAMES = {
    "New Year's Day": "元旦",
    "Spring Festival": "春节",
    "Tomb-sweeping Day": "清明节",
    "Labour Day": "劳动节",
    "Dragon Boat Festival": "端午节",
    "Mid-autumn Festival": "中秋节",
    "National Day": "国庆节",
    "Anti-Fascist 70th Day": "中国人民抗日战争胜利70周年纪念日",
}


def seed_public_holidays(years: range | None = None) -> int:
    """Copy the holidays and make-up days the chinese-calendar package knows; keep edits."""
    from chinese_calendar.constants import holidays, workdays

    existing = set(PublicHoliday.objects.values_list("date", flat=True))
    rows = [
        PublicHoliday(
            date=day,
            kind=kind,
            name=HOLIDAY_NAMES.get(str(name), str(name)),
            source="chinese_calendar",
        )
        for kind, table in ((HolidayKind.DAY_OFF, holidays), (HolidayKind.WORKDAY, workdays))
        for day, name in table.items()
        if day not in existing and (years is None or day.year in years)
    ]
    PublicHoliday.objects.bulk_create(rows, ignore_conflicts=True)
    return len(rows)


def ensure_default_calendars() -> None:
    """Create the standard working-day calendar and the 7×24 calendar if missing."""
    standard, created = BusinessCalendar.objects.get_or_create(
        code="standard", defaults={"name": "标准工作日（08:30–12:00，13:00–17:30）"}
    )
    if created:
        WorkingPeriod.objects.bulk_create(
            WorkingPeriod(calendar=standard, weekday=day, start=start, end=end)
            for day in range(5)
            for start, end in ((time(8, 30), time(12)), (time(13), time(17, 30)))
        )
    BusinessCalendar.objects.get_or_create(
        code="24x7", defaults={"name": "7×24 全天候", "is_24x7": True}
    )


def missing_holiday_year(today: date) -> int | None:
    """Return next year when it is December and next year has no holidays entered."""
    if today.month == 12 and not PublicHoliday.objects.filter(date__year=today.year + 1).exists():
        return today.year + 1
    return None
