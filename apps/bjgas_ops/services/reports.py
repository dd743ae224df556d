"""Incident reports: counts and handling times per period or per group, and their summary.

Every figure is aggregated in the database, one GROUP BY query per report, over the
columns an incident keeps for the reports: `created_day` (the local day it was reported,
indexed), `resolved_at`, `handling_seconds`, `business_seconds` and `sla_met`. Periods
bucket on `created_day`, never on `created_at` with a zone conversion, so that a day,
week or month is the site's local one. The tier report reads the stored segments.

Scope applies before anything is counted: `incidents_for(user, ...)` starts from
`Incident.objects.visible_to(user)`; only the command line (user None) sees everything.

A report that counts every incident, without filters, for a user whose scope is all
incidents (or the command line) reads the daily roll-up instead (`IncidentDayFigures`,
see `report_rollup`): the same sums, added up per day in advance, recounted first for
any day whose incidents changed. Every other report counts the incidents themselves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from django.contrib.contenttypes.models import ContentType
from django.db.models import Count, F, Q, QuerySet, Sum, Value, Window
from django.db.models.functions import (
    ExtractIsoYear,
    ExtractMonth,
    ExtractQuarter,
    ExtractWeek,
    ExtractYear,
    RowNumber,
)
from django.utils import timezone, translation
from django.utils.text import capfirst
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from apps.bjgas_platform.choices import StateCategory, SupportTier
from apps.bjgas_platform.models import BusinessSystem, Company, User, WorkflowState
from apps.bjgas_platform.models.scope import scope_condition
from apps.bjgas_platform.services.errors import PlatformError

from ..choices import Priority
from ..models import (
    Channel,
    Incident,
    IncidentCategory,
    IncidentDayFigures,
    IncidentSegment,
    Severity,
)
from ..models.report_figures import ALL, TIER_TIME
from . import report_rollup

PERIODS = ("day", "week", "month", "quarter", "year")
GROUP_FIELDS = (
    "business_system",
    "company",
    "requester",
    "channel",
    "tier",
    "assignee",
    "priority",
    "severity",
    "sla",
    "category",
)
# The incident column each group field reads: the roll-up's dimensions, and the two it
# does not carry.
GROUP_COLUMNS = {
    **report_rollup.DIMENSIONS,
    "requester": "requester_id",
    "assignee": "assignee_id",
}
NOT_SET = ""  # the key of the row of incidents without a value in the grouped field
TOP_REPORTERS = 3
# Where a summary looks for the concentration of reports, in this order.
CONCENTRATION_FIELDS = ("business_system", "category", "company")
# Prefix of the aggregates' aliases, so that none shadows a field (sla_met is both).
SUM_PREFIX = "sum_"
IMPORTED = report_rollup.IMPORTED

PERIOD_TITLES = {
    "day": gettext_lazy("Incidents per day"),
    "week": gettext_lazy("Incidents per week"),
    "month": gettext_lazy("Incidents per month"),
    "quarter": gettext_lazy("Incidents per quarter"),
    "year": gettext_lazy("Incidents per year"),
}
GROUP_TITLES = {
    "business_system": gettext_lazy("Incidents by business system"),
    "company": gettext_lazy("Incidents by reporting company"),
    "requester": gettext_lazy("Incidents by reporter"),
    "channel": gettext_lazy("Incidents by channel"),
    "tier": gettext_lazy("Incidents by support tier"),
    "assignee": gettext_lazy("Incidents by engineer"),
    "priority": gettext_lazy("Incidents by priority"),
    "severity": gettext_lazy("Incidents by severity"),
    "sla": gettext_lazy("Incidents by SLA verdict"),
    "category": gettext_lazy("Incidents by category"),
}
TIER_TITLE = gettext_lazy("Time spent per support tier")
# The days a report may cover: outside them a bucket's neighbour would leave the calendar.
FIRST_DAY = date(1970, 1, 1)
LAST_DAY = date(2999, 12, 31)
# The most rows a period report makes; more would take minutes and read as nothing.
MAX_BUCKETS = 5000


class ReportError(PlatformError):
    """A report was asked for with options that make no sense; nothing was counted."""


@dataclass(frozen=True)
class ReportFilter:
    """Which incidents a report counts: reported from `start` to `end` (local days,
    both inclusive), optionally only some business systems, companies, priorities or
    channels, and only batch-imported (True) or only native (False) incidents."""

    start: date
    end: date
    business_systems: tuple[int, ...] = ()
    companies: tuple[int, ...] = ()
    priorities: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()
    imported: bool | None = None

    def __post_init__(self):
        for name, label in (("start", _("first day")), ("end", _("last day"))):
            day = getattr(self, name)
            if not FIRST_DAY <= day <= LAST_DAY:
                raise ReportError(
                    _(
                        "The %(field)s %(day)s is outside the days a report covers, "
                        "%(first)s to %(last)s."
                    )
                    % {
                        "field": label,
                        "day": day.isoformat(),
                        "first": FIRST_DAY.isoformat(),
                        "last": LAST_DAY.isoformat(),
                    },
                    code="bad_day",
                    field=name,
                )
        if self.end < self.start:
            raise ReportError(
                _("The report ends on %(end)s, before it starts on %(start)s.")
                % {"start": self.start.isoformat(), "end": self.end.isoformat()},
                code="bad_range",
                field="end",
            )


def incidents_for(
    user: User | None, flt: ReportFilter, start: date | None = None, end: date | None = None
) -> QuerySet:
    """Return the incidents `user` may see that `flt` selects; user None: every incident.

    `start` and `end` replace the filter's days (the bucket before the range, which may
    lie before the first day a filter accepts)."""
    incidents = Incident.objects.all() if user is None else Incident.objects.visible_to(user)
    incidents = incidents.filter(
        created_day__gte=start or flt.start, created_day__lte=end or flt.end
    )
    if flt.business_systems:
        incidents = incidents.filter(business_system_id__in=flt.business_systems)
    if flt.companies:
        incidents = incidents.filter(company_id__in=flt.companies)
    if flt.priorities:
        incidents = incidents.filter(priority__in=flt.priorities)
    if flt.channels:
        incidents = incidents.filter(channel__in=flt.channels)
    if flt.imported is True:
        incidents = incidents.filter(IMPORTED)
    elif flt.imported is False:
        incidents = incidents.exclude(IMPORTED)
    return incidents.order_by()


def reads_rollup(user: User | None, flt: ReportFilter) -> bool:
    """Whether a report for `user` with `flt` may read the daily roll-up: it counts every
    incident of the days (no filter, a scope of all incidents)."""
    if flt.business_systems or flt.companies or flt.priorities or flt.channels:
        return False
    if flt.imported is not None:
        return False
    if user is None:
        return True
    if not user.is_authenticated or not user.is_active:
        return False
    return user.is_superuser or scope_condition(Incident, user) is None


@dataclass
class Source:
    """What a report counts: incident rows or roll-up rows, the day column to bucket on,
    the column of a report dimension, and the aggregates that give `_Sums`."""

    rows: QuerySet
    rolled: bool
    day: str
    sums: dict

    def column(self, group_by: str) -> str:
        return "value" if self.rolled else GROUP_COLUMNS[group_by]

    def key(self, group_by: str, value) -> str:
        return value if self.rolled else _group_key(group_by, value)


def reads_fresh_rollup(
    user: User | None, flt: ReportFilter, start: date | None = None, end: date | None = None
) -> bool:
    """Whether a report reads the roll-up: it may (`reads_rollup`) and the stale days from
    `start` to `end` (default: the filter's) could be recounted at once. A report decides
    once and passes the answer to each `source()`, so a busy lock is waited for once."""
    if not reads_rollup(user, flt):
        return False
    return report_rollup.try_refresh_range(start or flt.start, end or flt.end)


def source(
    user: User | None,
    flt: ReportFilter,
    dimension: str = ALL,
    start: date | None = None,
    end: date | None = None,
    open_states: list[str] | None = None,
    rolled: bool | None = None,
) -> Source:
    """Return the rows a report counts: the roll-up's rows of `dimension` when `rolled`
    (None: `reads_fresh_rollup` decides), else the incidents the user may see."""
    start, end = start or flt.start, end or flt.end
    if open_states is None:
        open_states = open_state_codes()
    if rolled is None:
        rolled = reads_fresh_rollup(user, flt, start, end)
    if rolled:
        rows = IncidentDayFigures.objects.filter(
            dimension=dimension, day__gte=start, day__lte=end
        ).order_by()
        return Source(rows, True, "day", _rollup_sums(open_states))
    return Source(
        incidents_for(user, flt, start, end), False, "created_day", _incident_sums(open_states)
    )


# ------------------------------------------------------------------------------ figures


@dataclass
class Figures:
    """What a report says about one set of incidents.

    The rows of the tier report describe time spent in a tier, not incidents: they carry
    `count` and the means only, and leave the other counts None.
    """

    count: int = 0
    resolved: int | None = 0
    open: int | None = 0
    imported: int | None = 0
    mean_handling_seconds: float | None = None
    mean_business_seconds: float | None = None
    sla_met: int | None = 0
    sla_breached: int | None = 0
    sla_met_ratio: float | None = None

    def as_dict(self) -> dict:
        return {
            "count": self.count,
            "resolved": self.resolved,
            "open": self.open,
            "imported": self.imported,
            "mean_handling_seconds": self.mean_handling_seconds,
            "mean_business_seconds": self.mean_business_seconds,
            "sla_met": self.sla_met,
            "sla_breached": self.sla_breached,
            "sla_met_ratio": self.sla_met_ratio,
        }


def mean(total: float, count: int) -> float | None:
    """The mean in seconds to the millisecond: sums added in another order (per day in
    the roll-up, per row when counting) differ only far below that."""
    return round(float(total) / count, 3) if count else None


@dataclass
class _Sums:
    """Additive counts and sums of one group as the database returns them; the means are
    worked out only at the end so that groups add up to exact totals."""

    count: int = 0
    resolved: int = 0
    open: int = 0
    imported: int = 0
    handling_sum: float = 0.0
    handling_n: int = 0
    business_sum: float = 0.0
    business_n: int = 0
    sla_met: int = 0
    sla_breached: int = 0

    @classmethod
    def from_row(cls, row: dict) -> _Sums:
        # MariaDB returns the SUM of an integer column as a Decimal.
        return cls(
            **{
                name: (float if name.endswith("_sum") else int)(row[SUM_PREFIX + name] or 0)
                for name in cls.__dataclass_fields__
            }
        )

    def __add__(self, other: _Sums) -> _Sums:
        return _Sums(
            **{
                name: getattr(self, name) + getattr(other, name)
                for name in self.__dataclass_fields__
            }
        )

    def figures(self) -> Figures:
        verdicts = self.sla_met + self.sla_breached
        return Figures(
            count=self.count,
            resolved=self.resolved,
            open=self.open,
            imported=self.imported,
            mean_handling_seconds=mean(self.handling_sum, self.handling_n),
            mean_business_seconds=mean(self.business_sum, self.business_n),
            sla_met=self.sla_met,
            sla_breached=self.sla_breached,
            sla_met_ratio=self.sla_met / verdicts if verdicts else None,
        )


def open_state_codes() -> list[str]:
    """Return the codes of the incident workflows' states in which an incident is open."""
    return list(
        WorkflowState.objects.filter(
            workflow__model=ContentType.objects.get_for_model(Incident),
            category__in=(StateCategory.OPEN, StateCategory.WAITING),
        )
        .values_list("code", flat=True)
        .distinct()
    )


def _incident_sums(open_states: list[str]) -> dict:
    """The aggregates of `_Sums` over incident rows: the roll-up's measures, and `open`."""
    sums = {SUM_PREFIX + name: sum_ for name, sum_ in report_rollup.incident_measures().items()}
    open_filter = Q(state__in=open_states) if open_states else Q(pk__isnull=True)
    sums[SUM_PREFIX + "open"] = Count("pk", filter=open_filter)
    return sums


def _rollup_sums(open_states: list[str]) -> dict:
    """The aggregates of `_Sums` over roll-up rows (each row a day's group in one state)."""
    open_sum = Sum("count", filter=Q(state__in=open_states)) if open_states else Value(0)
    sums = {SUM_PREFIX + name: Sum(name) for name in report_rollup.MEASURES}
    sums[SUM_PREFIX + "open"] = open_sum
    return sums


# ------------------------------------------------------------------------------ reports


@dataclass
class ReportRow:
    """One line of a report: a period bucket or a group, with its figures."""

    key: str
    label: str
    figures: Figures
    previous: Figures | None = None
    extra: dict = field(default_factory=dict)
    start: date | None = None  # period rows: the bucket's first and last day
    end: date | None = None
    # Period rows: the range cuts this bucket (partial) or the one it is compared with
    # (previous_partial), so that a ratio of the two would compare unequal spans.
    partial: bool = False
    previous_partial: bool = False

    @property
    def count_change(self) -> int | None:
        if self.previous is None:
            return None
        return self.figures.count - self.previous.count

    @property
    def count_change_ratio(self) -> float | None:
        """The change against the previous bucket as a share of it; None where there is
        no previous count or either bucket is cut by the range (spans of unequal length)."""
        if self.previous is None or not self.previous.count:
            return None
        if self.partial or self.previous_partial:
            return None
        return self.count_change / self.previous.count

    @property
    def handling_change_seconds(self) -> float | None:
        now = self.figures.mean_handling_seconds
        before = self.previous.mean_handling_seconds if self.previous else None
        if now is None or before is None:
            return None
        return now - before


@dataclass
class Report:
    """A titled table of rows with a total, and the definitions of its time columns."""

    kind: str  # 'period' | 'group' | 'tier'
    title: str
    filter: ReportFilter
    dimension: str
    rows: list[ReportRow]
    total: Figures
    definitions: list[str]


def definitions(kind: str = "period") -> list[str]:
    """Return the sentences that define the time columns, written on every report."""
    sentences = [
        _(
            "Handling time: from when the incident was reported until it was resolved, in "
            "wall-clock time; the wait for the requester's confirmation after the resolution "
            "is not counted. Averaged over the resolved incidents."
        ),
        _(
            "Business time: the same span counted in the working hours of the SLA calendar, "
            "without the spans in which the SLA clock was paused (waiting for the requester "
            "or a vendor)."
        ),
    ]
    if kind == "tier":
        sentences.append(
            _(
                "Time in a tier: the time an incident spent with a group of that tier before "
                "it was resolved, added up per incident and averaged over the incidents that "
                "left the tier; an incident handled by several tiers counts in each of them. "
                "The total counts every incident once, with its whole handling time."
            )
        )
    return sentences


# ------------------------------------------------------------------------------ periods


@dataclass(frozen=True)
class Bucket:
    """One day, ISO week, month, quarter or year, from `start` to `end` inclusive."""

    period: str
    start: date

    @classmethod
    def of(cls, period: str, day: date) -> Bucket:
        """Return the bucket of `period` that `day` falls in."""
        if period == "week":
            day -= timedelta(days=day.weekday())
        elif period == "month":
            day = day.replace(day=1)
        elif period == "quarter":
            day = date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
        elif period == "year":
            day = date(day.year, 1, 1)
        return cls(period, day)

    def following(self) -> Bucket:
        start = self.start
        if self.period == "day":
            return Bucket(self.period, start + timedelta(days=1))
        if self.period == "week":
            return Bucket(self.period, start + timedelta(days=7))
        months = {"month": 1, "quarter": 3, "year": 12}[self.period]
        index = start.year * 12 + start.month - 1 + months
        return Bucket(self.period, date(index // 12, index % 12 + 1, 1))

    def preceding(self) -> Bucket:
        return Bucket.of(self.period, self.start - timedelta(days=1))

    @property
    def end(self) -> date:
        return self.following().start - timedelta(days=1)

    @property
    def key(self) -> str:
        return _bucket_key(self.period, _bucket_parts(self.period, self.start))

    @property
    def label(self) -> str:
        return period_label(self.period, _bucket_parts(self.period, self.start))


def _bucket_parts(period: str, day: date) -> tuple:
    """The numbers that name the bucket of `day`, as the database groups them."""
    if period == "day":
        return (day,)
    if period == "week":
        iso = day.isocalendar()
        return iso.year, iso.week
    if period == "month":
        return day.year, day.month
    if period == "quarter":
        return day.year, (day.month - 1) // 3 + 1
    return (day.year,)


def _bucket_key(period: str, parts: tuple) -> str:
    if period == "day":
        return parts[0].isoformat()
    year = int(parts[0])
    if period == "week":
        return f"{year}-W{int(parts[1]):02d}"
    if period == "month":
        return f"{year}-{int(parts[1]):02d}"
    if period == "quarter":
        return f"{year}-Q{int(parts[1])}"
    return str(year)


def period_label(period: str, parts: tuple) -> str:
    """Return the display name of a bucket in the active language ('2016年第9周')."""
    if period == "day":
        return day_label(parts[0])
    year, number = int(parts[0]), int(parts[-1])
    if period == "week":
        return _("%(year)d-W%(week)02d") % {"year": year, "week": number}
    if period == "month":
        return _("%(year)d-%(month)02d") % {"year": year, "month": number}
    if period == "quarter":
        return _("%(year)d Q%(quarter)d") % {"year": year, "quarter": number}
    return _("year %(year)d") % {"year": year}


def day_label(day: date) -> str:
    return _("%(year)d-%(month)02d-%(day)02d") % {
        "year": day.year,
        "month": day.month,
        "day": day.day,
    }


def _period_columns(period: str, day: str = "created_day") -> dict:
    """The expressions a period report groups by, all on the local day column `day`."""
    if period == "day":
        return {"p0": F(day)}
    if period == "week":
        # The ISO week-year, not the calendar year: 2027-01-01 is in 2026-W53.
        return {"p0": ExtractIsoYear(day), "p1": ExtractWeek(day)}
    if period == "month":
        return {"p0": ExtractYear(day), "p1": ExtractMonth(day)}
    if period == "quarter":
        return {"p0": ExtractYear(day), "p1": ExtractQuarter(day)}
    return {"p0": ExtractYear(day)}


def bucket_count(period: str, start: date, end: date) -> int:
    """Return how many buckets of `period` the days `start` to `end` touch, counted
    without walking them."""
    first, last = Bucket.of(period, start).start, Bucket.of(period, end).start
    if period == "day":
        return (last - first).days + 1
    if period == "week":
        return (last - first).days // 7 + 1
    months = (last.year - first.year) * 12 + last.month - first.month
    return months // {"month": 1, "quarter": 3, "year": 12}[period] + 1


def _check(value: str, allowed: tuple[str, ...], option: str) -> None:
    if value not in allowed:
        raise ReportError(
            _("Unknown %(option)s '%(value)s'; choose one of: %(allowed)s.")
            % {"option": option, "value": value, "allowed": ", ".join(allowed)},
            code="bad_option",
            field=option,
        )


def period_report(user: User | None, flt: ReportFilter, period: str) -> Report:
    """Count the incidents per period bucket, every bucket of the range in order.

    Each row carries the previous bucket's figures, the first row those of the bucket
    before the range. When the range starts on a bucket's first day, that earlier bucket
    is counted by the same query; otherwise by a second one.
    """
    _check(period, PERIODS, "period")
    first = Bucket.of(period, flt.start)
    buckets = bucket_count(period, flt.start, flt.end)
    if buckets > MAX_BUCKETS:
        raise ReportError(
            _(
                "The report would have %(buckets)d rows, more than %(most)d: choose a coarser "
                "period or a shorter range."
            )
            % {"buckets": buckets, "most": MAX_BUCKETS},
            code="too_many_buckets",
            field="period",
        )
    before = first.preceding()
    aligned = first.start == flt.start
    scope_start = before.start if aligned else flt.start
    open_states = open_state_codes()
    rolled = reads_fresh_rollup(user, flt, start=before.start)
    counted = source(user, flt, start=scope_start, open_states=open_states, rolled=rolled)
    columns = _period_columns(period, counted.day)
    rows = counted.rows.annotate(**columns).values(*columns).annotate(**counted.sums).order_by()
    sums = {
        _bucket_key(period, tuple(row[name] for name in columns)): _Sums.from_row(row)
        for row in rows
    }
    if aligned:
        previous_sums = sums.pop(before.key, _Sums())
    else:
        earlier = source(
            user, flt, start=before.start, end=before.end, open_states=open_states, rolled=rolled
        )
        previous_sums = _Sums.from_row(earlier.rows.aggregate(**earlier.sums))

    report_rows = []
    total = _Sums()
    previous = previous_sums.figures()
    previous_partial = False  # the bucket before the range is counted whole
    bucket = first
    while bucket.start <= flt.end:
        found = sums.get(bucket.key, _Sums())
        total += found
        figures = found.figures()
        partial = bucket.start < flt.start or bucket.end > flt.end
        report_rows.append(
            ReportRow(
                key=bucket.key,
                label=bucket.label,
                figures=figures,
                previous=previous,
                start=max(bucket.start, flt.start),
                end=min(bucket.end, flt.end),
                partial=partial,
                previous_partial=previous_partial,
            )
        )
        previous, previous_partial = figures, partial
        bucket = bucket.following()
    return Report(
        kind="period",
        title=str(PERIOD_TITLES[period]),
        filter=flt,
        dimension=period,
        rows=report_rows,
        total=total.figures(),
        definitions=definitions(),
    )


# ------------------------------------------------------------------------------ groups


def not_set_label() -> str:
    return _("Not set")


def _group_key(group_by: str, value) -> str:
    """The key of a group: 'met'/'breached' for SLA verdicts, '' (NOT_SET) for none."""
    return report_rollup.dimension_value(group_by, value)


def _group_labels(group_by: str, keys: list[str]) -> dict[str, str]:
    """Return the display label of each group key; '' is the row of unset values."""
    labels = {NOT_SET: not_set_label()}
    ids = [int(key) for key in keys if key and key.isdigit()]
    if group_by == "business_system":
        labels.update(
            (str(pk), name)
            for pk, name in BusinessSystem.objects.filter(pk__in=ids).values_list("pk", "name")
        )
    elif group_by == "company":
        labels.update(
            (str(pk), name)
            for pk, name in Company.objects.filter(pk__in=ids).values_list("pk", "name")
        )
    elif group_by in ("requester", "assignee"):
        labels.update(
            (str(user.pk), user.get_full_name())
            for user in User.objects.filter(pk__in=ids).only(
                "pk", "username", "full_name", "first_name", "last_name"
            )
        )
    elif group_by == "category":
        labels.update(
            (str(category.pk), str(category))
            for category in IncidentCategory.objects.filter(pk__in=ids).select_related("parent")
        )
    elif group_by == "sla":
        labels.update(
            {
                "met": _("Met the SLA"),
                "breached": _("Breached the SLA"),
                NOT_SET: _("No SLA verdict"),
            }
        )
    else:
        choices = {
            "channel": Channel,
            "priority": Priority,
            "severity": Severity,
            "tier": SupportTier,
        }[group_by]
        labels.update((str(value), str(label)) for value, label in choices.choices)
    return labels


def _sorted_rows(rows: list[ReportRow]) -> list[ReportRow]:
    """Largest group first; on a tie, the unset row last, then by label."""
    return sorted(rows, key=lambda row: (-row.figures.count, row.key == NOT_SET, row.label))


def group_report(user: User | None, flt: ReportFilter, group_by: str) -> Report:
    """Count the incidents per value of `group_by`, the largest group first.

    Incidents without a value make the row with key '' ('Not set'). Business system rows
    also name their top reporters (one more query, ranked in the database).
    """
    _check(group_by, GROUP_FIELDS, "group_by")
    rows, total = _group_rows(user, flt, group_by)
    if group_by == "business_system":
        reporters = top_reporters(incidents_for(user, flt))
        for row in rows:
            row.extra["top_reporters"] = reporters.get(row.key, [])
    return Report(
        kind="group",
        title=str(GROUP_TITLES[group_by]),
        filter=flt,
        dimension=group_by,
        rows=rows,
        total=total,
        definitions=definitions(),
    )


def _group_rows(
    user: User | None, flt: ReportFilter, group_by: str, rolled: bool | None = None
) -> tuple[list[ReportRow], Figures]:
    """Return the sorted rows of one GROUP BY query for `group_by`, and their total."""
    if group_by not in report_rollup.DIMENSIONS:
        rolled = False  # the roll-up does not carry reporters and engineers
    counted = source(user, flt, group_by, rolled=rolled)
    column = counted.column(group_by)
    found = counted.rows.values(column).annotate(**counted.sums).order_by()
    sums: dict[str, _Sums] = {}
    for row in found:
        key = counted.key(group_by, row[column])
        sums[key] = sums.get(key, _Sums()) + _Sums.from_row(row)
    labels = _group_labels(group_by, list(sums))
    rows = [
        ReportRow(key=key, label=labels.get(key, key), figures=group.figures())
        for key, group in sums.items()
    ]
    return _sorted_rows(rows), sum(sums.values(), _Sums()).figures()


def top_reporters(incidents: QuerySet, limit: int = TOP_REPORTERS) -> dict[str, list]:
    """Return, per business system key, its top reporters as [(name, count), ...].

    Ranked in the database (ROW_NUMBER over each system); ties go to the earlier user.
    """
    ranked = (
        incidents.values("business_system_id", "requester_id")
        .annotate(reported=Count("*"))
        # A second annotate(): ranking on the alias keeps the window out of the GROUP BY.
        .annotate(
            rank=Window(
                RowNumber(),
                partition_by=F("business_system_id"),
                order_by=(F("reported").desc(), F("requester_id").asc()),
            )
        )
        .filter(rank__lte=limit)
        .order_by()
    )
    found = list(ranked)
    names = _group_labels("requester", [str(row["requester_id"]) for row in found])
    result: dict[str, list] = {}
    for row in sorted(found, key=lambda row: (str(row["business_system_id"]), row["rank"])):
        requester = str(row["requester_id"])
        result.setdefault(_group_key("business_system", row["business_system_id"]), []).append(
            (names.get(requester, requester), row["reported"])
        )
    return result


# ------------------------------------------------------------------------------ tiers


def tier_report(user: User | None, flt: ReportFilter) -> Report:
    """Count per support tier the incidents handled in it and the time they spent there.

    Read from the segments of the incidents `flt` selects, leaving out the spans after
    the resolution (resolved, closed, cancelled), in one GROUP BY query. `count` is the
    incidents with a span in the tier; the means are the tier's seconds per incident that
    left the tier (a span still running counts no seconds yet). An incident handled by
    tiers 1 and 2 counts in both rows; the total is that of the incidents themselves
    (each once, with its whole handling time), from one more query on the incidents.
    """
    rolled = reads_fresh_rollup(user, flt)
    counted = source(user, flt, rolled=rolled)
    tiers = source(user, flt, TIER_TIME, open_states=[], rolled=rolled)
    if tiers.rolled:
        found = (
            tiers.rows.values(tier=F("value"))
            .annotate(
                handled=Sum("count"),
                timed=Sum("resolved"),
                wall=Sum("handling_sum"),
                business=Sum("business_sum"),
            )
            .order_by()
        )
    else:
        found = report_rollup.tier_time(IncidentSegment.objects.filter(incident__in=tiers.rows))
    figures = {tiers.key("tier", row["tier"]): _tier_figures(row) for row in found}
    labels = _group_labels("tier", list(figures))
    rows = [
        ReportRow(key=key, label=labels.get(key, key), figures=tier)
        for key, tier in sorted(figures.items(), key=lambda item: (item[0] == NOT_SET, item[0]))
    ]
    total = _Sums.from_row(counted.rows.aggregate(**counted.sums))
    return Report(
        kind="tier",
        title=str(TIER_TITLE),
        filter=flt,
        dimension="tier",
        rows=rows,
        total=total.figures(),
        definitions=definitions("tier"),
    )


def _tier_figures(row: dict) -> Figures:
    timed = int(row["timed"] or 0)
    return Figures(
        count=int(row["handled"]),
        resolved=None,
        open=None,
        imported=None,
        mean_handling_seconds=mean(row["wall"] or 0, timed),
        mean_business_seconds=mean(row["business"] or 0, timed),
        sla_met=None,
        sla_breached=None,
    )


# ------------------------------------------------------------------------------ text


def format_duration(seconds: float | None, language: str = "zh-hans", days: bool = True) -> str:
    """Write seconds as days, hours, minutes and seconds: 17713 → '4小时55分13秒'.

    days=False counts the hours past 24 instead of days (107497 → '29小时51分37秒'): for
    business time, whose hours are working hours, so that 24 of them are no day.
    """
    if seconds is None:
        return "—"
    total = round(seconds)
    sign = "-" if total < 0 else ""
    minutes, secs = divmod(abs(total), 60)
    hours, minutes = divmod(minutes, 60)
    whole_days, hours = divmod(hours, 24) if days else (0, hours)
    parts = {"days": whole_days, "hours": hours, "minutes": minutes, "seconds": secs}
    with translation.override(language):
        if whole_days:
            text = _("%(days)d d %(hours)d h %(minutes)d min %(seconds)d s") % parts
        elif hours:
            text = _("%(hours)d h %(minutes)d min %(seconds)d s") % parts
        elif minutes:
            text = _("%(minutes)d min %(seconds)d s") % parts
        else:
            text = _("%(seconds)d s") % parts
    return sign + text


def format_ratio(ratio: float) -> str:
    return f"{ratio * 100:.1f}%"


def describe_range(flt: ReportFilter, today: date | None = None) -> str:
    """Name the reported days in the active language: a week as '2016年第9周（2月29日至
    3月6日）', a whole month, quarter or year by its name, else the first and last day."""
    start, end = flt.start, flt.end
    if start == end:
        return day_label(start)
    for period in ("week", "month", "quarter", "year"):
        bucket = Bucket.of(period, start)
        if bucket.start == start and bucket.end == end:
            break
    else:
        return _("%(start)s to %(end)s") % {"start": day_label(start), "end": day_label(end)}
    if period != "week":
        return bucket.label
    days = {
        "week": bucket.label,
        "start": _short_day(start),
        "end": _short_day(end),
    }
    this_week = Bucket.of("week", today or timezone.localdate())
    if bucket == this_week.preceding():
        return _("last week (%(week)s, %(start)s to %(end)s)") % days
    return _("%(week)s (%(start)s to %(end)s)") % days


def _short_day(day: date) -> str:
    return _("%(month)d/%(day)d") % {"month": day.month, "day": day.day}


def narrative(user: User | None, flt: ReportFilter, language: str = "zh-hans") -> str:
    """Summarise the reported incidents in a few sentences built from the report figures.

    The numbers are the total of `group_report` for the same filter: reported, still
    open, batch-imported, mean handling (and business) time, the SLA ratio, and where the
    reports concentrated: the top business system, else category, else company.
    """
    rolled = reads_fresh_rollup(user, flt)
    with translation.override(language):
        rows, total = _group_rows(user, flt, CONCENTRATION_FIELDS[0], rolled)
        period = describe_range(flt)
        if not total.count:
            return capfirst(_("No incidents were reported in %(period)s.") % {"period": period})
        numbers = {
            "period": period,
            "count": total.count,
            "open": total.open,
            "imported": total.imported,
        }
        text = (
            ngettext(
                "%(period)s: %(count)d incident was reported",
                "%(period)s: %(count)d incidents were reported",
                total.count,
            )
            % numbers
        )
        text += _(", %(open)d still being handled, %(imported)d batch-imported") % numbers
        if total.mean_handling_seconds is None:
            text += _("; none has been resolved yet")
        else:
            text += _(
                "; the mean handling time was %(handling)s (%(business)s in business time)"
            ) % {
                "handling": format_duration(total.mean_handling_seconds, language),
                "business": format_duration(total.mean_business_seconds, language, days=False),
            }
        if total.sla_met_ratio is not None:
            text += _(", and %(ratio)s of those with an SLA verdict met it") % {
                "ratio": format_ratio(total.sla_met_ratio)
            }
        text = _("%(sentence)s.") % {"sentence": capfirst(text)}
        top = _concentration(user, flt, rows, rolled)
        if top is not None:
            text += _(" Most reports concerned %(name)s (%(count)d, %(share)s).") % {
                "name": top.label,
                "count": top.figures.count,
                "share": format_ratio(top.figures.count / total.count),
            }
        return text


def _concentration(
    user: User | None, flt: ReportFilter, rows: list[ReportRow], rolled: bool
) -> ReportRow | None:
    """Return the largest group with a value, in the first field where any has one;
    `rows` are those of the first field, already counted."""
    for group_by in CONCENTRATION_FIELDS:
        if group_by != CONCENTRATION_FIELDS[0]:
            rows, _total = _group_rows(user, flt, group_by, rolled)
        named = [row for row in rows if row.key != NOT_SET]
        if named:
            return named[0]
    return None
