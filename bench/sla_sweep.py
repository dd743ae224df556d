"""Benchmark of the SLA sweep: its cost must follow the due clocks, not the size of the table.

Run from a set-up checkout:

    .venv/bin/python bench/sla_sweep.py

It creates (or reuses) the MariaDB database BENCH_DATABASE_URL, else DATABASE_URL, else
mysql://root@127.0.0.1:3306/bjgas_bench_sla (the name must contain "bench": the tables
are emptied), migrates it, fills it with 1,000,000 incidents and one response clock each,
100 of them due, times the sweep (median of a few runs, the 100 due clocks reset between
runs), then does the same with 10,000 incidents. The rows are written by the database
itself (INSERT ... SELECT over MariaDB's sequence tables), not through the services.
The last line printed is one JSON object: {"sweep_ms_1m": ..., "sweep_ms_10k": ..., "ratio": ...}.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_URL = "mysql://root@127.0.0.1:3306/bjgas_bench_sla"
URL = os.environ.get("BENCH_DATABASE_URL") or os.environ.get("DATABASE_URL") or DEFAULT_URL
os.environ["DATABASE_URL"] = URL
# Keep the instance folder (secret key, broker files) out of the checkout's sites/.
os.environ.setdefault("BJGAS_SITE_DIR", tempfile.mkdtemp(prefix="bjgas-bench-"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bjgas.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")

DUE = 100
RUNS = 5
CHUNK = 100_000


def say(text: str) -> None:
    print(text, flush=True)


def create_database() -> None:
    """Create the benchmark database unless it exists."""
    import environ
    import MySQLdb

    config = environ.Env.db_url_config(URL)
    if "mysql" not in config["ENGINE"]:
        sys.exit("The SLA benchmark needs MariaDB: set BENCH_DATABASE_URL=mysql://...")
    name = config["NAME"]
    if "bench" not in name:
        sys.exit(f"Refusing to fill database {name!r}: its name must contain 'bench'.")
    server = MySQLdb.connect(
        host=config["HOST"] or "127.0.0.1",
        port=int(config["PORT"] or 3306),
        user=config["USER"],
        passwd=config["PASSWORD"] or "",
    )
    server.cursor().execute(
        f"CREATE DATABASE IF NOT EXISTS `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
    )
    server.close()
    say(f"database {name} on {config['HOST']}:{config['PORT']} ready")


def main() -> None:
    create_database()

    import django

    django.setup()
    from django.core.management import call_command

    started = time.perf_counter()
    call_command("migrate", interactive=False, verbosity=0)
    say(f"migrated in {time.perf_counter() - started:.1f} s")

    bench = Bench()
    sweep_ms_1m = bench.measure(1_000_000)
    sweep_ms_10k = bench.measure(10_000)
    print(
        json.dumps(
            {
                "sweep_ms_1m": round(sweep_ms_1m, 1),
                "sweep_ms_10k": round(sweep_ms_10k, 1),
                "ratio": round(sweep_ms_1m / sweep_ms_10k, 2),
            }
        ),
        flush=True,
    )


class Bench:
    """Fill the tables for one size and time the sweep on them."""

    def __init__(self) -> None:
        from django.contrib.contenttypes.models import ContentType
        from django.db import connection
        from django.utils import timezone

        from apps.bjgas_ops.models import Incident
        from apps.bjgas_platform.models import Company, User, Workflow
        from apps.bjgas_platform.services.sla import find_policy

        self.connection = connection
        connection.ensure_connection()
        self.now = timezone.now().replace(microsecond=0)
        self.incident_type = ContentType.objects.get_for_model(Incident)
        self.company, _ = Company.objects.get_or_create(
            code="BENCH", defaults={"name": "基准测试公司"}
        )
        self.requester, _ = User.objects.get_or_create(
            username="bench-requester", defaults={"company": self.company}
        )
        # The assignee is told of reminders and breaches: the sweep writes real messages.
        self.engineer, _ = User.objects.get_or_create(
            username="bench-engineer", defaults={"company": self.company, "email": "e@bench.test"}
        )
        workflow = (
            Workflow.objects.filter(model=self.incident_type, is_active=True)
            .order_by("-is_default", "code")
            .first()
        )
        if workflow is None:
            sys.exit("No incident workflow: the reference data did not load.")
        # An open state whose clock runs, not a milestone: a ticket being worked on.
        states = sorted(
            workflow.states.filter(category="open", sla_running=True, sla_milestone=""),
            key=lambda s: (s.is_initial, s.order),
        )
        self.workflow, self.state = workflow, states[0].code
        self.sample = Incident(
            workflow=workflow,
            state=self.state,
            requester=self.requester,
            assignee=self.engineer,
            company=self.company,
            priority="P3",
            severity="A",
            title="基准事件",
            number="BENCH-SAMPLE",
        )
        self.policy = find_policy(self.sample, "response")
        if self.policy is None:
            sys.exit("No SLA policy sets a response limit for a P3 / severity A incident.")
        levels = self.policy.escalations.filter(metric="response")
        say(
            f"incidents: workflow {workflow.code}, state {self.state}, priority P3, severity A, "
            "an assignee; "
            f"response policy {self.policy.code} ({self.policy.response_minutes} min on "
            f"{self.policy.calendar.code}), escalation levels (level, minutes after): "
            f"{list(levels.values_list('level', 'after_minutes'))}"
        )

    # ------------------------------------------------------------------------- filling

    def sql(self, statement: str, params=None) -> int:
        with self.connection.cursor() as cursor:
            cursor.execute(statement, params)
            return cursor.rowcount

    def literal(self, field, value) -> str:
        """Return the SQL literal the database driver would send for a field's value."""
        prepared = field.get_db_prep_save(value, self.connection)
        literal = self.connection.connection.literal(prepared)
        return literal.decode() if isinstance(literal, bytes) else str(literal)

    def empty(self) -> None:
        from apps.bjgas_ops.models import Incident, IncidentSegment
        from apps.bjgas_platform.models import (
            Comment,
            InAppNotification,
            OutboxMessage,
            SlaClock,
            SlaEvent,
            TransitionLog,
        )

        models = [
            SlaEvent,
            SlaClock,
            OutboxMessage,
            InAppNotification,
            TransitionLog,
            Comment,
            IncidentSegment,
            Incident.history.model,
            Incident,
        ]
        self.sql("SET SESSION foreign_key_checks = 0")
        for model in models:
            self.sql(f"TRUNCATE TABLE `{model._meta.db_table}`")
        self.sql("SET SESSION foreign_key_checks = 1")

    def fill(self, count: int) -> None:
        """Write `count` incidents and one response clock each; every `count/DUE`-th is due."""
        from apps.bjgas_ops.models import Incident
        from apps.bjgas_platform.models import SlaClock

        step = count // DUE
        now = self.now
        # The due ones were reported three days ago: limit, reminders and every level passed.
        due_created = now - timedelta(days=3)
        stamp = self.literal(Incident._meta.get_field("created_at"), now)
        due_stamp = self.literal(Incident._meta.get_field("created_at"), due_created)
        created = f"IF(seq % {step} = 0, {due_stamp}, TIMESTAMPADD(MINUTE, -(seq % 1440), {stamp}))"
        varying = {
            "id": "seq",
            "number": "CONCAT('BENCH-', LPAD(seq, 8, '0'))",
        }
        columns, values = [], []
        for field in Incident._meta.concrete_fields:
            columns.append(f"`{field.column}`")
            if field.attname in varying:
                values.append(varying[field.attname])
            elif field.get_internal_type() == "DateTimeField" and field.attname in (
                "created_at",
                "updated_at",
                "state_changed_at",
            ):
                values.append(created)
            elif getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
                values.append(stamp)
            else:
                values.append(self.literal(field, getattr(self.sample, field.attname)))
        # Every value is a driver-escaped literal or a number: no outside input reaches it.
        table = Incident._meta.db_table
        incident_sql = (
            f"INSERT INTO `{table}` ({', '.join(columns)}) "  # noqa: S608
            f"SELECT {', '.join(values)} FROM seq_{{low}}_to_{{high}}"
        )

        limit = self.policy.response_minutes * 60
        clock_field = SlaClock._meta.get_field("next_check_at")
        due_check = self.literal(clock_field, due_created + timedelta(seconds=limit * 0.75))
        now_literal = self.literal(clock_field, now)
        # The others: a quarter stopped (no check), the rest checked in the next 70 days.
        next_check = (
            f"IF(seq % {step} = 0, {due_check}, IF(seq % 4 = 1, NULL, "
            f"TIMESTAMPADD(MINUTE, 1 + seq % 100000, {now_literal})))"
        )
        table = SlaClock._meta.db_table
        clock_sql = (
            f"INSERT INTO `{table}` (content_type_id, object_id, metric, "  # noqa: S608
            "policy_id, limit_seconds, started_at, due_at, stopped_at, elapsed_seconds, "
            "paused_seconds, status, breached, next_check_at, warning, updated_at) "
            f"SELECT {self.incident_type.pk}, seq, 'response', {self.policy.pk}, {limit}, "
            f"{created}, TIMESTAMPADD(SECOND, {limit}, {created}), "
            "IF(seq % 4 = 1, TIMESTAMPADD(MINUTE, 30, " + created + "), NULL), 0, 0, "
            "IF(seq % 4 = 1, 'met', 'running'), 0, "
            f"{next_check}, '', {now_literal} FROM seq_{{low}}_to_{{high}}"
        )

        started = time.perf_counter()
        self.sql("SET SESSION foreign_key_checks = 0")
        self.sql("SET SESSION unique_checks = 0")
        for low in range(1, count + 1, CHUNK):
            high = min(low + CHUNK - 1, count)
            self.sql(incident_sql.format(low=low, high=high))
            self.sql(clock_sql.format(low=low, high=high))
            say(
                f"  {high:>9,} incidents and clocks written ({time.perf_counter() - started:.0f} s)"
            )
        self.sql("SET SESSION unique_checks = 1")
        self.sql("SET SESSION foreign_key_checks = 1")
        self.sql(f"ANALYZE TABLE `{SlaClock._meta.db_table}`")
        self.sql(f"ANALYZE TABLE `{Incident._meta.db_table}`")

    # ------------------------------------------------------------------------- timing

    def measure(self, count: int) -> float:
        """Fill the tables with `count` incidents and return the median sweep in ms."""
        from django.db import transaction

        from apps.bjgas_platform.models import OutboxMessage, SlaClock, SlaEvent
        from apps.bjgas_platform.services import sla

        say(f"\n== {count:,} incidents, {DUE} due ==")
        started = time.perf_counter()
        self.empty()
        self.fill(count)
        say(f"filled in {time.perf_counter() - started:.0f} s")

        total = SlaClock.objects.count()
        due = list(
            SlaClock.objects.filter(next_check_at__lte=self.now).values_list("pk", "next_check_at")
        )
        say(f"clocks: {total:,}; due now: {len(due)}")
        assert len(due) == DUE, f"expected {DUE} due clocks, found {len(due)}"

        with transaction.atomic():
            plan = sla._due_clocks(self.now, 500).explain()
        say("query plan of the sweep's selection (EXPLAIN):\n" + plan)
        index_used = "next_check_at" in plan and "range" in plan
        say(
            "-> range scan on the next_check_at index"
            if index_used
            else "-> WARNING: the selection does not use the next_check_at index"
        )

        selections = []
        for _n in range(20):
            with transaction.atomic():
                began = time.perf_counter()
                locked = len(list(sla._due_clocks(self.now, 500)))
                selections.append((time.perf_counter() - began) * 1000)
        say(
            f"selecting and locking the {locked} due clocks alone: "
            f"{statistics.median(selections):.2f} ms (median of 20)"
        )

        due_ids = [pk for pk, _check in due]
        due_check = due[0][1]
        outbox_mark = OutboxMessage.objects.order_by("-pk").values_list("pk", flat=True).first()

        def reset() -> None:
            SlaEvent.objects.filter(clock_id__in=due_ids).delete()
            OutboxMessage.objects.filter(pk__gt=outbox_mark or 0).delete()
            SlaClock.objects.filter(pk__in=due_ids).update(next_check_at=due_check)

        timings, fired = [], []
        for run in range(RUNS + 1):
            reset()
            began = time.perf_counter()
            fired.append(sla.sweep(now=self.now))
            elapsed = (time.perf_counter() - began) * 1000
            if run:  # the first run warms the caches and is not counted
                timings.append(elapsed)
            say(
                f"  sweep {'warm-up' if not run else run}: {elapsed:8.1f} ms, "
                f"{fired[-1]} events fired, "
                f"{OutboxMessage.objects.filter(pk__gt=outbox_mark or 0).count()} messages"
            )
        left = SlaClock.objects.filter(next_check_at__lte=self.now).count()
        say(f"due after the sweep: {left}")
        median = statistics.median(timings)
        say(f"median sweep with {count:,} incidents: {median:.1f} ms")
        return median


if __name__ == "__main__":
    main()
