"""Benchmark of the incident reports on 1,000,000 incidents in MariaDB.

Run from a set-up checkout:

    .venv/bin/python bench/reports.py

It drops and creates the MariaDB database BENCH_DATABASE_URL (default
mysql://root@127.0.0.1:3306/bjgas_bench_reports; the name must contain "bench"),
migrates it, loads the demo organisation, imports the real ServiceNow event log
(../shared/datasets/, 20,769 incidents), then lets the database copy those incidents and
their segments 48 more times, each copy a few minutes later than the one before, so that
about 1,000,000 incidents fall within the same report range. The daily roll-up the
reports read is then recounted from scratch (`rollup_build_ms`). Each report is timed
through the service the desk and `incident_report` use (median of RUNS warm runs) and
against one hand-written SQL statement computing the same figures from the incident and
segment tables. The same service is also timed counting the incidents themselves, as it
does for a scoped user or a filtered report (`<report>_counted_ms`), and once more after
one incident changed, so that the report first recounts that day (`stale_day_ms`).
The benchmark database is dropped at the end. The last line printed is one JSON object
with `<report>_ms` and `<report>_hand_sql_ms` (and the figures above) for each report.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bjgas.datasets import dataset  # noqa: E402 (after the path is set)

DATASET = dataset("servicenow_incident_event_log.csv.zip")
URL = os.environ.get("BENCH_DATABASE_URL", "mysql://root@127.0.0.1:3306/bjgas_bench_reports")
os.environ["DATABASE_URL"] = URL
os.environ["REDIS_URL"] = ""
os.environ.setdefault("BJGAS_SITE_DIR", tempfile.mkdtemp(prefix="bjgas-bench-"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bjgas.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")

COPIES = 48  # 20,769 × 49 = 1,017,681 incidents
RUNS = 5
START, END = date(2016, 1, 1), date(2017, 12, 31)
INCIDENT = "bjgas_ops_incident"
SEGMENT = "bjgas_ops_incidentsegment"


def say(text: str) -> None:
    print(text, flush=True)


def recreate_database() -> None:
    drop_database(create_again=True)


def drop_database(create_again: bool = False) -> None:
    import environ
    import MySQLdb

    config = environ.Env.db_url_config(URL)
    if "mysql" not in config["ENGINE"]:
        sys.exit("The report benchmark needs MariaDB: set BENCH_DATABASE_URL=mysql://...")
    if "bench" not in config["NAME"]:
        sys.exit(f"Refusing to drop database {config['NAME']!r}: its name must contain 'bench'.")
    server = MySQLdb.connect(
        host=config["HOST"] or "127.0.0.1",
        port=int(config["PORT"] or 3306),
        user=config["USER"] or "root",
        password=config["PASSWORD"] or "",
    )
    cursor = server.cursor()
    cursor.execute(f"DROP DATABASE IF EXISTS `{config['NAME']}`")
    if create_again:
        cursor.execute(
            f"CREATE DATABASE `{config['NAME']}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
        )
    server.close()


def scale_up() -> int:
    """Copy the imported incidents and their segments COPIES times inside the database."""
    from django.db import connection

    from apps.bjgas_ops.models import Incident, IncidentSegment

    shifted = {"created_at", "resolved_at", "closed_at", "state_changed_at", "updated_at"}
    columns = [f.column for f in Incident._meta.concrete_fields if f.column != "id"]

    def incident_value(column: str) -> str:
        if column in ("number", "source_key"):
            return f"CONCAT(i.{column}, '-', s.seq)"
        if column in shifted:
            return f"i.{column} + INTERVAL s.seq MINUTE"
        if column == "created_day":
            return "DATE(i.created_at + INTERVAL s.seq MINUTE + INTERVAL 8 HOUR)"
        return f"i.{column}"

    segment_columns = [
        f.column for f in IncidentSegment._meta.concrete_fields if f.column not in ("id",)
    ]

    def segment_value(column: str) -> str:
        if column == "incident_id":
            return "m.new_id"
        if column in ("started_at", "ended_at"):
            return f"g.{column} + INTERVAL m.seq MINUTE"
        return f"g.{column}"

    with connection.cursor() as cursor:
        started = time.monotonic()
        cursor.execute(
            f"INSERT INTO {INCIDENT} ({', '.join(columns)}) "  # noqa: S608 (names are ours)
            f"SELECT {', '.join(incident_value(c) for c in columns)} "
            f"FROM {INCIDENT} i JOIN seq_1_to_{COPIES} s "
            "WHERE i.source_system = 'servicenow'"
        )
        say(f"  incidents copied in {time.monotonic() - started:.0f} s")
        started = time.monotonic()
        cursor.execute(
            "CREATE TEMPORARY TABLE copy_map (old_id bigint, seq int, new_id bigint, "
            "PRIMARY KEY (old_id, seq))"
        )
        cursor.execute(
            "INSERT INTO copy_map SELECT o.id, s.seq, c.id "  # noqa: S608
            f"FROM {INCIDENT} o JOIN seq_1_to_{COPIES} s "
            f"JOIN {INCIDENT} c ON c.source_system = o.source_system "
            "AND c.source_key = CONCAT(o.source_key, '-', s.seq) "
            "WHERE o.source_system = 'servicenow' AND o.source_key NOT LIKE '%-%'"
        )
        select = ", ".join(segment_value(c) for c in segment_columns)
        cursor.execute(
            f"INSERT INTO {SEGMENT} ({', '.join(segment_columns)}) "  # noqa: S608
            f"SELECT {select} FROM copy_map m JOIN {SEGMENT} g ON g.incident_id = m.old_id "
            "ORDER BY m.new_id"
        )
        say(f"  segments copied in {time.monotonic() - started:.0f} s")
        cursor.execute(f"ANALYZE TABLE {INCIDENT}, {SEGMENT}")
        cursor.fetchall()
        cursor.execute(f"SELECT COUNT(*) FROM {INCIDENT}")  # noqa: S608
        return cursor.fetchone()[0]


BUFFER_POOL = 2 * 1024**3


def larger_buffer_pool():
    """Give InnoDB 2 GiB of buffer pool for the run (a server holding a million incidents
    has at least that); return the size to restore, or None."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT @@GLOBAL.innodb_buffer_pool_size")
        size = cursor.fetchone()[0]
        if size >= BUFFER_POOL:
            return None
        cursor.execute(f"SET GLOBAL innodb_buffer_pool_size = {BUFFER_POOL}")
    say(f"  InnoDB buffer pool {size // 1024**2} MiB -> {BUFFER_POOL // 1024**2} MiB for the run")
    return size


def restore_buffer_pool(size) -> None:
    """Give the buffer pool its size back. InnoDB refuses to shrink while the pages cannot
    be freed yet ('change aborted'): try again for a while, then say so."""
    from django.db import OperationalError, connection

    if size is None:
        return
    for _attempt in range(6):
        try:
            with connection.cursor() as cursor:
                cursor.execute(f"SET GLOBAL innodb_buffer_pool_size = {size}")
            say(f"  InnoDB buffer pool back to {size // 1024**2} MiB")
            return
        except OperationalError as exc:
            error = exc
            time.sleep(5)
    say(f"  The buffer pool stays larger ({error}): set it to {size} bytes by hand.")


def median_ms(action) -> float:
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        action()
        times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times), 1)


def hand_sql(open_codes: list[str]) -> dict[str, str]:
    """One statement per report, written by hand, giving the same figures."""
    states = ", ".join(f"'{code}'" for code in open_codes)
    sums = (
        f"COUNT(*), COUNT(resolved_at), SUM(state IN ({states})), "
        "SUM(source_system <> '' OR channel = 'import'), SUM(handling_seconds), "
        "COUNT(handling_seconds), SUM(business_seconds), COUNT(business_seconds), "
        "SUM(sla_met = 1), SUM(sla_met = 0)"
    )
    where = f"WHERE created_day BETWEEN '{START}' AND '{END}'"

    def grouped(expression: str) -> str:
        return f"SELECT {expression}, {sums} FROM {INCIDENT} {where} GROUP BY {expression}"  # noqa: S608

    queries = {
        "period_day": grouped("created_day"),
        "period_week": grouped("YEARWEEK(created_day, 3)"),
        "period_month": grouped("EXTRACT(YEAR_MONTH FROM created_day)"),
        "period_quarter": grouped("YEAR(created_day), QUARTER(created_day)"),
        "period_year": grouped("YEAR(created_day)"),
    }
    for field, column in (
        ("business_system", "business_system_id"),
        ("company", "company_id"),
        ("requester", "requester_id"),
        ("channel", "channel"),
        ("tier", "tier"),
        ("assignee", "assignee_id"),
        ("priority", "priority"),
        ("severity", "severity"),
        ("sla", "sla_met"),
        ("category", "category_id"),
    ):
        queries[f"group_{field}"] = grouped(column)
    queries["tier"] = (
        "SELECT g.tier, COUNT(DISTINCT g.incident_id), "  # noqa: S608
        "SUM(g.wall_seconds * (g.ended_at IS NOT NULL)), "
        "SUM(g.business_seconds * (g.ended_at IS NOT NULL)) "
        f"FROM {SEGMENT} g JOIN {INCIDENT} i ON i.id = g.incident_id "
        f"WHERE i.created_day BETWEEN '{START}' AND '{END}' "
        "AND g.state_category NOT IN ('resolved', 'closed', 'cancelled') GROUP BY g.tier"
    )
    return queries


def main() -> None:
    if not DATASET.exists():
        sys.exit(f"The dataset is missing: {DATASET}")
    say(f"Database {URL}: recreate, migrate, demo organisation ...")
    recreate_database()
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from apps.bjgas_ops.importers.servicenow import import_servicenow
    from apps.bjgas_ops.services import reports

    call_command("migrate", verbosity=0)
    call_command("load_demo_data", verbosity=0)
    restore = larger_buffer_pool()
    try:
        figures = run(reports, connection, import_servicenow)
    finally:
        say("Dropping the benchmark database ...")
        connection.close()
        drop_database()
        restore_buffer_pool(restore)
    print(json.dumps(figures))


def run(reports, connection, import_servicenow) -> dict:
    say(f"Importing {DATASET.name} ...")
    summary = import_servicenow(DATASET)
    say(f"  {summary.created} incidents in {summary.seconds:.0f} s")
    say(f"Copying them {COPIES} times inside the database ...")
    total = scale_up()
    from apps.bjgas_ops.services import report_rollup

    started = time.perf_counter()
    days = report_rollup.refresh()
    build_ms = round((time.perf_counter() - started) * 1000, 1)
    say(f"{total} incidents; the roll-up of {days} days recounted in {build_ms / 1000:.1f} s")
    from django.db.models import Count

    from apps.bjgas_ops.models import IncidentDayFigures

    sizes = dict(
        IncidentDayFigures.objects.values_list("dimension").annotate(rows=Count("*")).order_by()
    )
    say(f"  roll-up rows per dimension: {sizes}")
    say(f"Timing each report, median of {RUNS} runs after a warm-up:")

    flt = reports.ReportFilter(start=START, end=END)
    services = {
        f"period_{p}": (lambda p=p: reports.period_report(None, flt, p)) for p in reports.PERIODS
    }
    for field in reports.GROUP_FIELDS:
        services[f"group_{field}"] = lambda f=field: reports.group_report(None, flt, f)
    services["tier"] = lambda: reports.tier_report(None, flt)
    queries = hand_sql(reports.open_state_codes())

    def run_sql(sql: str):
        with connection.cursor() as cursor:
            cursor.execute(sql)
            return cursor.fetchall()

    figures: dict[str, float | int] = {
        "incidents": total,
        "rollup_build_ms": build_ms,
        "rollup_rows": sum(sizes.values()),
    }
    read_rollup = reports.reads_rollup
    for name, service in services.items():
        service()  # warm-up: caches, buffer pool
        run_sql(queries[name])
        figures[f"{name}_ms"] = median_ms(service)
        figures[f"{name}_hand_sql_ms"] = median_ms(lambda q=queries[name]: run_sql(q))
        reports.reads_rollup = lambda user, flt: False
        try:
            service()
            figures[f"{name}_counted_ms"] = median_ms(service)
        finally:
            reports.reads_rollup = read_rollup
        say(
            f"  {name:<24} service {figures[f'{name}_ms']:>8.1f} ms   "
            f"hand SQL {figures[f'{name}_hand_sql_ms']:>8.1f} ms   "
            f"ratio {figures[f'{name}_ms'] / max(figures[f'{name}_hand_sql_ms'], 0.1):.2f}   "
            f"counting the incidents {figures[f'{name}_counted_ms']:>8.1f} ms"
        )
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT MIN(id) FROM {INCIDENT} WHERE created_day = '2016-04-01'")  # noqa: S608
        changed = cursor.fetchone()[0]
        cursor.execute(f"UPDATE {INCIDENT} SET priority = 'P1' WHERE id = %s", [changed])  # noqa: S608
    assert report_rollup.dirty_days() == [date(2016, 4, 1)]
    started = time.perf_counter()
    reports.period_report(None, flt, "month")
    figures["stale_day_ms"] = round((time.perf_counter() - started) * 1000, 1)
    say(f"  period_month after one incident changed (recounts a day): {figures['stale_day_ms']} ms")
    reports.narrative(None, flt)
    figures["narrative_ms"] = median_ms(lambda: reports.narrative(None, flt))
    say(f"  narrative                service {figures['narrative_ms']:>8.1f} ms")
    return figures


if __name__ == "__main__":
    main()
