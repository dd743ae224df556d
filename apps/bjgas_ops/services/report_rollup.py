"""Keep the daily roll-up of the incident reports (`IncidentDayFigures`) true to the data.

How it stays true:

- Triggers in the database (installed after every `migrate`, see `ensure_triggers`) add
  the reported day of every incident row inserted, updated or deleted, and of every
  segment row, to `ReportDirtyDay`. No code path can change an incident without them:
  workflow steps, imports, queryset updates and cascades all go through the table.
- `refresh(days)` recounts each dirty day in its own short transaction: it deletes the
  day's dirty mark first (waiting for any writer of that day to commit), then reads the
  day's incidents and replaces the day's rows. A writer that commits afterwards marks
  the day again. One day per transaction means the refresher never holds the lock of
  one day while waiting for another, so it cannot deadlock with a writer.
- The reports call `try_refresh_range(start, end)` before they read the roll-up, so they
  never show figures older than the data; the beat task recounts every minute in the
  background so that a report seldom has anything left to do. A report that cannot
  recount at once (another transaction holds the day, SQLite's single writer is busy)
  counts the incidents themselves instead of waiting.

Only reports that count every incident without a filter read the roll-up (the IT
manager's usual view): a report for a scoped user or with filters counts the incidents
themselves, because the roll-up does not carry the scope's columns.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from contextlib import contextmanager
from datetime import date

from django.db import OperationalError, connection, transaction
from django.db.models import Count, Q, Sum

from apps.bjgas_platform.choices import StateCategory
from apps.bjgas_platform.services.schedules import ensure_every_minute

from ..models import (
    Channel,
    Incident,
    IncidentDayFigures,
    IncidentSegment,
    ReportDirtyDay,
    ReportMarkPause,
)
from ..models.report_figures import ALL, TIER_TIME

logger = logging.getLogger(__name__)

# The report dimensions the roll-up carries, and the incident column of each; the
# reporter and engineer reports count the incidents themselves (too many values a day).
DIMENSIONS = {
    "business_system": "business_system_id",
    "company": "company_id",
    "channel": "channel",
    "tier": "tier",
    "priority": "priority",
    "severity": "severity",
    "sla": "sla_met",
    "category": "category_id",
}
FINISHED_CATEGORIES = (StateCategory.RESOLVED, StateCategory.CLOSED, StateCategory.CANCELLED)
IMPORTED = ~Q(source_system="") | Q(channel=Channel.IMPORT)
MEASURES = (
    "count",
    "resolved",
    "imported",
    "handling_sum",
    "handling_n",
    "business_sum",
    "business_n",
    "sla_met",
    "sla_breached",
)
REFRESH_TASK = "apps.bjgas_ops.tasks.refresh_report_figures"
REFRESH_SCHEDULE = "bjgas: recount the incident report figures of changed days"

INCIDENT_TABLE = Incident._meta.db_table
SEGMENT_TABLE = IncidentSegment._meta.db_table
DIRTY_TABLE = ReportDirtyDay._meta.db_table
PAUSE_TABLE = ReportMarkPause._meta.db_table
TRIGGER_PREFIX = "bjgas_report_dirty_"
# Part of each trigger's name: a new version of the statements replaces the old triggers.
TRIGGER_VERSION = "v3"
# MariaDB: the session variable an import sets to pause its own marks (a row of the pause
# table would be read with a shared lock, making every writer wait for the import).
PAUSE_VARIABLE = "@bjgas_report_marks_paused"


def dimension_value(dimension: str, value) -> str:
    """The roll-up's text for a value of a dimension; '' where the incident has none."""
    if value is None:
        return ""
    if dimension == "sla":
        return "met" if value else "breached"
    return str(value)


# ------------------------------------------------------------------------------ triggers


def _trigger_bodies(vendor: str) -> dict[str, tuple[str, str, str]]:
    """Return {trigger name: (event, table, statement)} for the database `vendor`.

    The names are ours, no value comes from outside: the statements are plain text.
    """
    verb = "INSERT OR IGNORE" if vendor == "sqlite" else "INSERT IGNORE"
    insert = f"{verb} INTO {DIRTY_TABLE} (day)"
    from_nothing = "" if vendor == "sqlite" else " FROM DUAL"  # MariaDB wants a FROM
    if vendor == "sqlite":
        unpaused = f"NOT EXISTS (SELECT 1 FROM {PAUSE_TABLE})"  # noqa: S608 (our names)
    else:
        unpaused = f"{PAUSE_VARIABLE} IS NULL"

    def day_of(row: str) -> str:
        return (
            f"{insert} SELECT {row}.created_day{from_nothing} "
            f"WHERE {row}.created_day IS NOT NULL AND {unpaused}"
        )

    def day_of_incident(row: str) -> str:
        return (
            f"{insert} SELECT created_day FROM {INCIDENT_TABLE} "  # noqa: S608 (our names)
            f"WHERE id = {row}.incident_id AND created_day IS NOT NULL AND {unpaused}"
        )

    both = (
        f"{insert} SELECT d FROM (SELECT NEW.created_day AS d UNION SELECT OLD.created_day) "  # noqa: S608
        f"AS changed WHERE d IS NOT NULL AND {unpaused}"
    )
    statements = {
        "incident_ins": ("INSERT", INCIDENT_TABLE, day_of("NEW")),
        "incident_upd": ("UPDATE", INCIDENT_TABLE, both),
        "incident_del": ("DELETE", INCIDENT_TABLE, day_of("OLD")),
        "segment_ins": ("INSERT", SEGMENT_TABLE, day_of_incident("NEW")),
        "segment_upd": ("UPDATE", SEGMENT_TABLE, day_of_incident("NEW")),
        "segment_del": ("DELETE", SEGMENT_TABLE, day_of_incident("OLD")),
    }
    return {f"{TRIGGER_PREFIX}{name}_{TRIGGER_VERSION}": body for name, body in statements.items()}


def installed_triggers() -> set[str]:
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        else:
            cursor.execute(
                "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS "
                "WHERE TRIGGER_SCHEMA = DATABASE()"
            )
        return {row[0] for row in cursor.fetchall() if row[0].startswith(TRIGGER_PREFIX)}


def ensure_triggers() -> bool:
    """Install the triggers that are missing (replacing an older version's); return True
    if any was.

    Run after every `migrate`: SQLite drops a table's triggers when a migration rebuilds
    the table. When a trigger was missing, changes may have gone unnoticed, so every day
    with incidents is marked for a recount.
    """
    bodies = _trigger_bodies(connection.vendor)
    installed = installed_triggers()
    missing = {name: body for name, body in bodies.items() if name not in installed}
    if not missing:
        return False
    # No transaction: MariaDB commits before and after each CREATE TRIGGER anyway.
    with connection.cursor() as cursor:
        for name in sorted(installed - set(bodies)):
            cursor.execute(f"DROP TRIGGER {name}")
        for name, (event, table, statement) in missing.items():
            header = f"CREATE TRIGGER {name} AFTER {event} ON {table} FOR EACH ROW"
            if connection.vendor == "sqlite":
                cursor.execute(f"{header} BEGIN {statement}; END")
            else:
                cursor.execute(f"{header} {statement}")
        mark_all_days()
    logger.info("Installed %d report triggers; every day will be recounted.", len(missing))
    return True


def mark_all_days() -> int:
    """Mark every day with incidents or figures for a recount; return how many."""
    days = set(
        Incident.objects.exclude(created_day=None).values_list("created_day", flat=True).distinct()
    )
    days |= set(IncidentDayFigures.objects.values_list("day", flat=True).distinct())
    mark_days(days)
    return len(days)


def mark_days(days) -> None:
    """Mark `days` for a recount (those marked already stay so)."""
    ReportDirtyDay.objects.bulk_create(
        [ReportDirtyDay(day=day) for day in sorted(days)], ignore_conflicts=True
    )


@contextmanager
def marks_paused(source_system: str):
    """Let a bulk import write without a trigger marking each row, inside its transaction.

    The days of the source's incidents are read before (the days they may leave) and
    marked with those after, in one statement at the end: no mark is held locked while
    the import works, so other writers of those days and the reports do not wait for
    it. The pause is this connection's own: on MariaDB a session variable, reset however
    the import ends; on SQLite a row that only this transaction sees (a rollback takes
    it away). Other writers keep marking meanwhile.
    """
    if not connection.in_atomic_block:
        raise RuntimeError("marks_paused() must run inside the import's transaction.")
    before = source_days(source_system)
    if connection.vendor == "sqlite":
        pause = ReportMarkPause.objects.create()  # SQLite has one writer: no one waits
        yield
        pause.delete()
    else:
        with connection.cursor() as cursor:
            cursor.execute(f"SET {PAUSE_VARIABLE} = 1")
        try:
            yield
        finally:
            _end_pause()
    mark_days(before | source_days(source_system))


def _end_pause() -> None:
    """Reset the MariaDB pause, through the driver.

    The session variable outlives the transaction, so it is reset even when the import
    failed; Django refuses any query in a transaction it marked for rollback (and would
    put its own error in place of the import's), hence the driver's cursor. A connection
    that died took the variable with it.
    """
    raw = connection.connection
    if raw is None:
        return
    try:
        cursor = raw.cursor()
        try:
            cursor.execute(f"SET {PAUSE_VARIABLE} = NULL")
        finally:
            cursor.close()
    except Exception:  # the import's own error is the one to report
        logger.warning("The report marks' pause could not be reset; closing the connection")
        connection.close()


def source_days(source_system: str) -> set[date]:
    """The days of the incidents imported from `source_system`."""
    return set(
        Incident.objects.filter(source_system=source_system)
        .exclude(created_day=None)
        .values_list("created_day", flat=True)
        .distinct()
    )


# ------------------------------------------------------------------------------ recount


def dirty_days(start: date | None = None, end: date | None = None) -> list[date]:
    days = ReportDirtyDay.objects.all()
    if start is not None:
        days = days.filter(day__gte=start)
    if end is not None:
        days = days.filter(day__lte=end)
    return sorted(days.values_list("day", flat=True))


def refresh(days: list[date] | None = None) -> int:
    """Recount the given dirty days (default: all); return how many were recounted."""
    done = 0
    for day in dirty_days() if days is None else days:
        done += refresh_day(day)
    return done


def try_refresh_range(start: date, end: date) -> bool:
    """Recount the dirty days from `start` to `end` without waiting more than a moment
    for a lock; return False if a day could not be recounted now (the report then counts
    the incidents themselves). A report calls it before it reads the roll-up."""
    days = dirty_days(start, end)
    if not days:
        return True
    try:
        with _short_lock_wait():
            refresh(days)
    except OperationalError as exc:
        logger.info("Report figures not recounted now (%s); counting the incidents.", exc)
        return False
    return True


@contextmanager
def _short_lock_wait(seconds: int = 1):
    """Wait at most `seconds` for a lock (SQLite: the write lock; MariaDB: a row lock)."""
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("PRAGMA busy_timeout")
            before = cursor.fetchone()[0]
            cursor.execute(f"PRAGMA busy_timeout = {int(seconds * 1000)}")
            restore = f"PRAGMA busy_timeout = {int(before)}"
        else:
            cursor.execute("SELECT @@SESSION.innodb_lock_wait_timeout")
            before = cursor.fetchone()[0]
            cursor.execute(f"SET SESSION innodb_lock_wait_timeout = {int(seconds)}")
            restore = f"SET SESSION innodb_lock_wait_timeout = {int(before)}"
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(restore)


def refresh_day(day: date) -> bool:
    """Recount one day if it is still dirty; False when another process already did."""
    with transaction.atomic():
        # Deleting the mark takes its row lock: a writer of this day that has not yet
        # committed holds it, and the recount below then sees its change.
        if not ReportDirtyDay.objects.filter(day=day).delete()[0]:
            return False
        IncidentDayFigures.objects.filter(day=day).delete()
        IncidentDayFigures.objects.bulk_create(day_rows(day))
    return True


def incident_measures() -> dict:
    """The aggregates of MEASURES over incident rows.

    `handling_seconds` and `business_seconds` are NULL while an incident is unresolved,
    so their plain SUM and COUNT run over the resolved incidents only.
    """
    return {
        "count": Count("*"),
        "resolved": Count("resolved_at"),
        "imported": Count("pk", filter=IMPORTED),
        "handling_sum": Sum("handling_seconds"),
        "handling_n": Count("handling_seconds"),
        "business_sum": Sum("business_seconds"),
        "business_n": Count("business_seconds"),
        "sla_met": Count("pk", filter=Q(sla_met=True)),
        "sla_breached": Count("pk", filter=Q(sla_met=False)),
    }


def tier_time(segments) -> list[dict]:
    """Per tier, from `segments`: the incidents handled in it, those that left it and
    their wall-clock and business seconds in it. The spans after the resolution (resolved,
    closed, cancelled) do not count; a span still running counts no seconds yet."""
    ended = Q(ended_at__isnull=False)
    return list(
        segments.exclude(state_category__in=FINISHED_CATEGORIES)
        .values("tier")
        .annotate(
            handled=Count("incident_id", distinct=True),
            timed=Count("incident_id", distinct=True, filter=ended),
            wall=Sum("wall_seconds", filter=ended),
            business=Sum("business_seconds", filter=ended),
        )
        .order_by()
    )


def day_rows(day: date) -> list[IncidentDayFigures]:
    """Return the roll-up rows of one day, counted from its incidents and segments."""
    columns = list(DIMENSIONS.values())
    groups = (
        Incident.objects.filter(created_day=day)
        .values("state", *columns)
        # Prefixed aliases: `sla_met` is also a column of the incident.
        .annotate(**{f"m_{name}": measure for name, measure in incident_measures().items()})
        .order_by()
    )
    sums: dict[tuple[str, str, str], dict] = defaultdict(lambda: dict.fromkeys(MEASURES, 0))
    for group in groups:
        keys = [(ALL, "")] + [
            (dimension, dimension_value(dimension, group[column]))
            for dimension, column in DIMENSIONS.items()
        ]
        for dimension, value in keys:
            row = sums[(dimension, value, group["state"])]
            for measure in MEASURES:
                row[measure] += group[f"m_{measure}"] or 0
    for tier in tier_time(IncidentSegment.objects.filter(incident__created_day=day)):
        sums[(TIER_TIME, dimension_value("tier", tier["tier"]), "")].update(
            count=tier["handled"],
            resolved=tier["timed"],
            handling_sum=tier["wall"] or 0,
            business_sum=tier["business"] or 0,
        )
    return [
        IncidentDayFigures(day=day, dimension=dimension, value=value, state=state, **measures)
        for (dimension, value, state), measures in sums.items()
    ]


def ensure_refresh_schedule() -> None:
    """Schedule the background recount every minute in the beat database, once."""
    ensure_every_minute(REFRESH_SCHEDULE, REFRESH_TASK)
