"""Importing a ServiceNow event log: incidents, state log, history, segments, clocks.

The file is a small hand-written log in ServiceNow's layout; every expected figure below
is worked out by hand from it. The standard calendar works 08:30–12:00 and 13:00–17:30;
1–3 March 2016 are a Tuesday to a Thursday with no holiday.
"""

from __future__ import annotations

import csv
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from django.contrib.contenttypes.models import ContentType
from django.core.management import CommandError, call_command

from apps.bjgas_ops.models import Incident
from apps.bjgas_ops.services.segments import rebuild_segments
from apps.bjgas_platform.models import (
    OutboxMessage,
    SlaClock,
    SlaEvent,
    SupportGroup,
    TransitionLog,
    User,
)
from apps.bjgas_platform.services.sla import reapply_policies, refresh_clocks, sweep
from apps.bjgas_platform.tests.factories import CompanyFactory

from .incident_fixtures import clock  # noqa: F401 (a fixture)

pytestmark = pytest.mark.django_db

SHANGHAI = ZoneInfo("Asia/Shanghai")
COLUMNS = [
    "number", "incident_state", "active", "reassignment_count", "reopen_count",
    "sys_mod_count", "made_sla", "caller_id", "opened_by", "opened_at", "sys_created_by",
    "sys_created_at", "sys_updated_by", "sys_updated_at", "contact_type", "location",
    "category", "subcategory", "u_symptom", "cmdb_ci", "impact", "urgency", "priority",
    "assignment_group", "assigned_to", "knowledge", "u_priority_confirmation", "notify",
    "problem_id", "rfc", "vendor", "caused_by", "closed_code", "resolved_by", "resolved_at",
    "closed_at",
]  # fmt: skip

A = dict(number="INC0000001", opened_at="1/3/2016 09:00", caller_id="Caller 7",
         opened_by="Opened by 3", contact_type="Email", priority="2 - High", made_sla="false",
         category="Category 5", subcategory="Subcategory 9", location="Location 1",
         resolved_at="1/3/2016 15:00", closed_at="6/3/2016 16:00",
         resolved_by="Resolved by 4")  # fmt: skip
B = dict(number="INC0000002", opened_at="2/3/2016 10:00", caller_id="Caller 7",
         opened_by="Opened by 3", contact_type="Phone", priority="3 - Moderate", made_sla="true",
         category="Category 5", resolved_at="?", closed_at="?")  # fmt: skip
C = dict(number="INC0000003", opened_at="3/3/2016 09:00", caller_id="Caller 8",
         opened_by="Opened by 3", contact_type="Phone", priority="4 - Low", made_sla="true",
         resolved_at="?", closed_at="?")  # fmt: skip

# (incident, mod count, state, updated at, group, assignee, overrides)
EVENTS = [
    (A, 0, "New", "1/3/2016 09:05", "Group 1", "?", {}),
    (A, 1, "Active", "1/3/2016 09:30", "Group 1", "Resolver 1", {}),
    (A, 2, "Awaiting User Info", "1/3/2016 10:00", "Group 1", "Resolver 1", {}),
    (A, 3, "Active", "1/3/2016 14:00", "Group 2", "Resolver 2", {"reassignment_count": "1"}),
    (A, 4, "Resolved", "1/3/2016 15:00", "Group 2", "Resolver 2", {"reassignment_count": "1"}),
    (A, 5, "Closed", "6/3/2016 16:00", "Group 2", "Resolver 2", {"reassignment_count": "1"}),
    (B, 0, "New", "2/3/2016 10:10", "Group 1", "?", {}),
    (B, 1, "Resolved", "2/3/2016 11:00", "Group 1", "Resolver 1", {}),
    (B, 2, "Active", "2/3/2016 12:00", "Group 1", "Resolver 1", {"reopen_count": "1"}),
    (B, 3, "Resolved", "2/3/2016 13:30", "Group 1", "Resolver 1", {"reopen_count": "1"}),
    # The same modification count twice: the later row gives the final attributes.
    (B, 3, "Resolved", "2/3/2016 13:30", "Group 1", "Resolver 1", {"priority": "4 - Low"}),
    (C, 0, "New", "3/3/2016 09:00", "?", "?", {}),
    (C, 1, "-100", "3/3/2016 09:10", "?", "?", {}),  # line 14 of the file: a bad row
]


def write_log(path, events=EVENTS) -> str:
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        for base, mod, state, at, group, assignee, extra in events:
            row = dict.fromkeys(COLUMNS, "?")
            row.update(base)
            row.update(
                incident_state=state, sys_mod_count=str(mod), sys_updated_at=at,
                sys_updated_by="Updated by 1", assignment_group=group, assigned_to=assignee,
                reassignment_count="0", reopen_count="0", impact="2 - Medium",
                urgency="2 - Medium",
            )  # fmt: skip
            row.update(extra)
            writer.writerow(row)
    return str(path)


def local(*args, zone=SHANGHAI) -> datetime:
    return datetime(*args, tzinfo=zone)


@pytest.fixture
def company(db):
    return CompanyFactory(parent=None)


@pytest.fixture
def log_file(tmp_path):
    return write_log(tmp_path / "incidents.csv")


def run(*args) -> None:
    call_command("import_tickets", "--format", "servicenow", "--no-progress", *args)


def logs_of(incident) -> list[tuple]:
    return list(
        TransitionLog.objects.filter(
            content_type=ContentType.objects.get_for_model(Incident), object_id=incident.pk
        )
        .order_by("created_at", "id")
        .values_list("from_state", "to_state", "created_at")
    )


def test_state_history_times_and_figures(company, log_file, capsys):
    run(log_file)
    assert Incident.objects.count() == 3
    err = capsys.readouterr().err
    assert "14" in err and "INC0000003" in err and "-100" in err

    a = Incident.objects.get(number="INC0000001")
    assert a.state == "closed"
    assert logs_of(a) == [
        ("", "new", local(2016, 3, 1, 9, 0)),
        ("new", "dispatched", local(2016, 3, 1, 9, 5)),
        ("dispatched", "accepted", local(2016, 3, 1, 9, 30)),
        ("accepted", "waiting_requester", local(2016, 3, 1, 10, 0)),
        ("waiting_requester", "in_progress", local(2016, 3, 1, 14, 0)),
        ("in_progress", "resolved", local(2016, 3, 1, 15, 0)),
        ("resolved", "closed", local(2016, 3, 6, 16, 0)),
    ]
    assert (a.created_at, a.resolved_at, a.closed_at) == (
        local(2016, 3, 1, 9, 0), local(2016, 3, 1, 15, 0), local(2016, 3, 6, 16, 0)
    )  # fmt: skip
    assert a.created_day.isoformat() == "2016-03-01"
    assert (a.priority, a.channel, a.sla_met, a.source_made_sla) == ("P2", "email", False, False)
    assert a.reassignment_count == 1
    # 09:00 → 15:00 is 6 h; in business time 09:00–12:00 + 13:00–15:00 = 5 h, less the
    # wait for the user 10:00–12:00 + 13:00–14:00 = 3 h: 2 h.
    assert a.handling_seconds == 6 * 3600
    assert a.business_seconds == 2 * 3600
    assert str(a.category) == "Category 5 / Subcategory 9"
    assert a.region.name == "Location 1"
    assert a.requester.get_full_name() == "Caller 7"
    assert a.assignee.get_full_name() == "Resolver 2"
    assert (a.support_group.name, a.tier) == ("Group 2", 2)

    segments = list(a.segments.values_list("state", "support_group__name", "tier", "wall_seconds"))
    assert segments == [
        ("new", "Group 1", 1, 300.0),
        ("dispatched", "Group 1", 1, 1500.0),
        ("accepted", "Group 1", 1, 1800.0),
        ("waiting_requester", "Group 1", 1, 4 * 3600.0),
        ("in_progress", "Group 2", 2, 3600.0),
        ("resolved", "Group 2", 2, (5 * 24 + 1) * 3600.0),
    ]

    b = Incident.objects.get(number="INC0000002")
    # No resolved_at: the last move into Resolved (13:30) is the resolution.
    assert b.resolved_at == local(2016, 3, 2, 13, 30)
    assert b.priority == "P4"  # the later of the two rows with modification count 3
    assert b.handling_seconds == 3.5 * 3600
    # 10:00–12:00 + 13:00–13:30 = 2.5 h, less the first resolution's span 11:00–12:00.
    assert b.business_seconds == 1.5 * 3600
    assert b.state == "resolved"

    c = Incident.objects.get(number="INC0000003")
    assert (c.state, c.resolved_at, c.handling_seconds, c.support_group) == (
        "new",
        None,
        None,
        None,
    )

    # One account per person, none of which can log in; one support group per group.
    assert User.objects.filter(full_name="Caller 7").count() == 1
    assert not User.objects.get(full_name="Caller 7").is_active
    assert SupportGroup.objects.filter(name__in=["Group 1", "Group 2"]).count() == 2


def test_figures_equal_those_derived_for_live_incidents(company, log_file):
    run(log_file)
    ct = ContentType.objects.get_for_model(Incident)
    for incident in Incident.objects.all():
        imported_segments = list(incident.segments.values_list(
            "state", "support_group_id", "tier", "assignee_id", "started_at", "ended_at",
            "wall_seconds", "business_seconds"))  # fmt: skip
        imported_clocks = {
            c.metric: (c.started_at, c.due_at, c.stopped_at, c.elapsed_seconds, c.breached)
            for c in SlaClock.objects.filter(content_type=ct, object_id=incident.pk)
        }
        assert all(
            c.next_check_at is None
            for c in SlaClock.objects.filter(content_type=ct, object_id=incident.pk)
        ), "past reminders and breaches must never fire"
        live = refresh_clocks(incident)
        rebuild_segments(incident)
        assert imported_clocks == {
            m: (c.started_at, c.due_at, c.stopped_at, c.elapsed_seconds, c.breached)
            for m, c in live.items()
        }
        assert imported_segments == list(incident.segments.values_list(
            "state", "support_group_id", "tier", "assignee_id", "started_at", "ended_at",
            "wall_seconds", "business_seconds"))  # fmt: skip
    a = Incident.objects.get(number="INC0000001")
    assert len(imported_clocks) >= 1 and a.history.count() == 7


def test_rerun_updates_and_never_duplicates(company, log_file, tmp_path):
    run(log_file)
    first = {i.number: i.pk for i in Incident.objects.all()}
    counts = (TransitionLog.objects.count(), Incident.history.count(), SlaClock.objects.count())
    changed = [
        (base | {"caller_id": "Caller 9"} if base is C else base, *rest) for base, *rest in EVENTS
    ]
    run(write_log(tmp_path / "again.csv", changed))
    assert {i.number: i.pk for i in Incident.objects.all()} == first
    assert counts == (
        TransitionLog.objects.count(),
        Incident.history.count(),
        SlaClock.objects.count(),
    )
    assert Incident.objects.get(number="INC0000003").requester.get_full_name() == "Caller 9"


def test_strict_imports_nothing_when_a_row_is_bad(company, log_file):
    with pytest.raises(CommandError, match="1"):
        run(log_file, "--strict")
    assert Incident.objects.count() == 0
    assert TransitionLog.objects.count() == 0


def test_times_are_read_in_the_given_zone(company, log_file):
    run(log_file, "--tz", "UTC")
    a = Incident.objects.get(number="INC0000001")
    assert a.created_at == local(2016, 3, 1, 9, 0, zone=ZoneInfo("UTC"))
    assert a.created_day.isoformat() == "2016-03-01"  # 17:00 in Beijing, same day


def test_bad_options_are_named(company, log_file, tmp_path):
    with pytest.raises(CommandError, match="--tz"):
        run(log_file, "--tz", "Mars/Base")
    with pytest.raises(CommandError, match="--company"):
        run(log_file, "--company", "NOPE")
    with pytest.raises(CommandError):
        run(str(tmp_path / "missing.csv"))
    assert Incident.objects.count() == 0


def test_error_report_file(company, log_file, tmp_path):
    report = tmp_path / "errors.csv"
    run(log_file, "--errors", str(report))
    rows = list(csv.reader(report.open(encoding="utf-8-sig")))
    assert rows[1][:2] == ["14", "INC0000003"]


def test_an_open_imported_incident_never_fires_its_past(company, log_file):
    """INC0000003 is still New in the source: its response and resolution limits passed in
    March 2016, before the import. Re-deriving its clocks (an SLA policy edited, a step
    taken on it) and sweeping must not send ten-year-old reminders and escalations."""
    run(log_file)
    c = Incident.objects.get(number="INC0000003")
    ct = ContentType.objects.get_for_model(Incident)
    clocks = SlaClock.objects.filter(content_type=ct, object_id=c.pk)
    assert clocks.exists() and all(row.breached for row in clocks)

    assert reapply_policies() >= 1
    refresh_clocks(c)
    assert all(row.next_check_at is None for row in clocks.all())
    assert sweep() == 0
    # Even a clock due for a check (as a sweep after an outage would find it) fires nothing.
    clocks.update(next_check_at=local(2016, 3, 3, 9, 0))
    assert sweep() == 0
    assert not SlaEvent.objects.filter(clock__in=clocks).exists()
    assert not OutboxMessage.objects.exists()
    assert all(row.next_check_at is None for row in clocks.all())


@pytest.mark.usefixtures("clock")
def test_an_open_imported_incident_fires_what_falls_due_after_the_import(company, tmp_path):
    """Imported at 09:00 on Tue 3 Mar 2026, still New since 08:35. Its P2 dispatch limit is
    30 business minutes with a reminder at 75%: the reminder was due at 08:57:30, before
    the import (history, never sent), the breach at 09:05, after it (sent like any)."""
    d = dict(number="INC0000009", opened_at="3/3/2026 08:35", caller_id="Caller 9",
             opened_by="Opened by 3", contact_type="Phone", priority="2 - High",
             made_sla="true", resolved_at="?", closed_at="?")  # fmt: skip
    run(write_log(tmp_path / "open.csv", [(d, 0, "New", "3/3/2026 08:35", "?", "?", {})]))
    incident = Incident.objects.get(number="INC0000009")
    assert incident.imported_at == local(2026, 3, 3, 9, 0)
    dispatch = SlaClock.objects.get(object_id=incident.pk, metric="dispatch")
    assert dispatch.due_at == local(2026, 3, 3, 9, 5)
    assert dispatch.next_check_at == local(2026, 3, 3, 9, 5)

    assert sweep(local(2026, 3, 3, 9, 4)) == 0
    sweep(local(2026, 3, 3, 9, 6))
    assert list(SlaEvent.objects.filter(clock=dispatch).values_list("kind", "due_at")) == [
        ("breach", local(2026, 3, 3, 9, 5))
    ]


@pytest.mark.django_db(transaction=True)
def test_incidents_imported_before_the_horizon_existed_get_one(company, log_file):
    run(log_file)
    call_command("migrate", "bjgas_ops", "0007", verbosity=0)  # the column goes
    call_command("migrate", "bjgas_ops", verbosity=0)  # it comes back, filled in
    imported = list(Incident.objects.values_list("imported_at", "updated_at"))
    assert len(imported) == 3
    assert all(at is not None and at == updated for at, updated in imported)


def test_rerun_rewrites_every_changed_column_and_keeps_what_was_added_here(
    company, log_file, tmp_path
):
    from django.utils import timezone

    from apps.bjgas_platform.models import Comment, CommentKind

    run(log_file)
    a = Incident.objects.get(number="INC0000001")
    note = Comment.objects.create(
        content_type=ContentType.objects.get_for_model(Incident),
        object_id=a.pk,
        kind=CommentKind.NOTE,
        body="现场已核实",
        created_at=timezone.now(),
    )
    changed = [
        (base | {"priority": "1 - Critical", "contact_type": "Phone", "closed_at": "?"}
         if base is A else base, mod, state, at, group, assignee, extra)
        for base, mod, state, at, group, assignee, extra in EVENTS
        if not (base is A and state == "Closed")
    ]  # fmt: skip
    run(write_log(tmp_path / "again.csv", changed))

    again = Incident.objects.get(pk=a.pk)
    assert (again.number, again.priority, again.channel) == ("INC0000001", "P1", "phone")
    assert (again.state, again.closed_at) == ("resolved", None)  # no longer closed
    assert again.handling_seconds == 6 * 3600  # 09:00 → 15:00, as before
    assert again.imported_at >= a.imported_at
    assert Comment.objects.filter(pk=note.pk, object_id=a.pk).exists()
    assert Incident.objects.count() == 3


@pytest.mark.django_db(transaction=True)
def test_a_database_error_in_a_later_batch_is_reported_as_itself(company, tmp_path, monkeypatch):
    """The second thread's failure surfaces in the next batch's first query: the import
    must end with the database's own error, change nothing, and leave the connection's
    report marks working."""
    from django.db import DatabaseError, connection
    from django.db.transaction import TransactionManagementError

    from apps.bjgas_ops.importers import writer
    from apps.bjgas_ops.importers.servicenow import import_servicenow
    from apps.bjgas_ops.models import IncidentSegment, ReportDirtyDay

    # Two incidents of one priority: the second batch needs no policy query, so the first
    # query it sends is the delete of the first import's rows (inside Django's atomic).
    twin = A | {"number": "INC0000011"}
    log_file = write_log(
        tmp_path / "twins.csv",
        [row for row in EVENTS if row[0] is A]
        + [(twin, *row[1:]) for row in EVENTS if row[0] is A],
    )
    run(log_file)
    before = (TransitionLog.objects.count(), IncidentSegment.objects.count())
    monkeypatch.setattr(writer, "BATCH", 1)  # one batch per incident
    table = IncidentSegment._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(
                f"CREATE TRIGGER break_segments BEFORE INSERT ON {table} "
                "BEGIN SELECT RAISE(ABORT, 'segment store is down'); END"
            )
        else:
            cursor.execute(
                f"CREATE TRIGGER break_segments BEFORE INSERT ON {table} FOR EACH ROW "
                "SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'segment store is down'"
            )
    try:
        with pytest.raises(DatabaseError, match="segment store is down") as raised:
            import_servicenow(log_file)
        assert not isinstance(raised.value, TransactionManagementError)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TRIGGER break_segments")
    assert (TransitionLog.objects.count(), IncidentSegment.objects.count()) == before
    # A live change after the failed import still marks its day for the reports.
    ReportDirtyDay.objects.all().delete()
    Incident.objects.filter(number="INC0000001").update(priority="P4")
    assert set(ReportDirtyDay.objects.values_list("day", flat=True)) == {local(2016, 3, 1).date()}


def test_text_with_backslashes_and_quotes_is_stored_as_written_or_refused(company, tmp_path):
    """The MariaDB statements escape with backslashes: a session that reads backslashes
    literally (NO_BACKSLASH_ESCAPES) is refused before anything is written."""
    from django.db import connection

    awkward = dict(A, number="INC0000042", caller_id='Caller \\\' 7 "北京" \\\\')
    path = write_log(
        tmp_path / "awkward.csv", [(awkward, 0, "New", "1/3/2016 09:05", "?", "?", {})]
    )
    if connection.vendor == "mysql":
        with connection.cursor() as cursor:
            cursor.execute("SET SESSION sql_mode = CONCAT(@@sql_mode, ',NO_BACKSLASH_ESCAPES')")
        try:
            with pytest.raises(CommandError, match="NO_BACKSLASH_ESCAPES"):
                run(path)
            assert not Incident.objects.exists()
        finally:
            with connection.cursor() as cursor:
                cursor.execute("SET SESSION sql_mode = 'STRICT_TRANS_TABLES'")
    run(path)
    incident = Incident.objects.get(number="INC0000042")
    assert incident.requester.get_full_name() == 'Caller \\\' 7 "北京" \\\\'
