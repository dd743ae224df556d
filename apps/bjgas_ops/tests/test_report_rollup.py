"""The daily roll-up of the incident reports: the triggers mark every change, whatever
wrote it; a recount gives the figures the incidents give; reports that read it say what
counting the incidents says; only unfiltered reports over all incidents read it."""

import random
import threading
import time
from datetime import date, timedelta

import pytest
from django.core.management import call_command
from django.db import connection, transaction

from apps.bjgas_ops.models import (
    Incident,
    IncidentDayFigures,
    IncidentSegment,
    ReportDirtyDay,
    ReportMarkPause,
)
from apps.bjgas_ops.models.report_figures import ALL, TIER_TIME
from apps.bjgas_ops.services import report_rollup, reports
from apps.bjgas_ops.services.reports import (
    GROUP_FIELDS,
    PERIODS,
    ReportFilter,
    group_report,
    narrative,
    period_report,
    reads_rollup,
    tier_report,
)
from apps.bjgas_platform import roles as r
from apps.bjgas_platform.tests.factories import BusinessSystemFactory, UserFactory

from .incident_fixtures import *  # noqa: F403 (the fixture world)
from .incident_fixtures import act, local, report

DAY = date(2026, 3, 2)


def dirty() -> set[date]:
    return set(ReportDirtyDay.objects.values_list("day", flat=True))


def figures_of(day: date, dimension: str = ALL) -> dict[tuple[str, str], dict]:
    return {
        (row.value, row.state): {
            "count": row.count,
            "resolved": row.resolved,
            "imported": row.imported,
            "handling_sum": row.handling_sum,
            "handling_n": row.handling_n,
            "sla_met": row.sla_met,
            "sla_breached": row.sla_breached,
        }
        for row in IncidentDayFigures.objects.filter(day=day, dimension=dimension)
    }


@pytest.mark.django_db
def test_migrate_installs_the_triggers():
    prefix, version = report_rollup.TRIGGER_PREFIX, report_rollup.TRIGGER_VERSION
    names = {f"{prefix}{kind}_{event}_{version}" for kind in ("incident", "segment")
             for event in ("ins", "upd", "del")}  # fmt: skip
    assert report_rollup.installed_triggers() == names
    assert report_rollup.ensure_triggers() is False  # nothing missing: nothing done


@pytest.mark.django_db(transaction=True)  # MariaDB commits around DROP/CREATE TRIGGER
def test_a_lost_trigger_is_put_back_and_every_day_recounted(world):
    one = report(world, created_at=local(2026, 3, 2, 9, 0))
    report(world, created_at=local(2026, 3, 5, 9, 0))
    report_rollup.refresh()
    assert dirty() == set()
    with connection.cursor() as cursor:
        version = report_rollup.TRIGGER_VERSION
        cursor.execute(f"DROP TRIGGER {report_rollup.TRIGGER_PREFIX}incident_upd_{version}")
    Incident.objects.filter(pk=one.pk).update(priority="P1")  # unnoticed
    assert dirty() == set()

    assert report_rollup.ensure_triggers() is True

    assert dirty() == {date(2026, 3, 2), date(2026, 3, 5)}
    report_rollup.refresh()
    assert figures_of(DAY, "priority")[("P1", one.state)]["count"] == 1


@pytest.mark.django_db
def test_every_way_of_writing_marks_the_day(world):
    incident = report(world, created_at=local(2026, 3, 2, 9, 0))  # insert
    assert dirty() == {DAY}
    report_rollup.refresh()
    assert dirty() == set()

    Incident.objects.filter(pk=incident.pk).update(priority="P1")  # no signal, no save()
    assert dirty() == {DAY}
    report_rollup.refresh()

    segment = IncidentSegment.objects.filter(incident=incident).first() or IncidentSegment(
        incident=incident, state="new", state_category="open", sla_running=True,
        channel="portal", started_at=incident.created_at,
    )  # fmt: skip
    segment.wall_seconds = 99
    segment.save()  # a segment's insert or update
    assert dirty() == {DAY}
    report_rollup.refresh()

    IncidentSegment.objects.filter(incident=incident).delete()
    assert dirty() == {DAY}
    report_rollup.refresh()

    incident.delete()
    assert dirty() == {DAY}
    report_rollup.refresh()
    assert not IncidentDayFigures.objects.filter(day=DAY).exists()


@pytest.mark.django_db
def test_a_day_recount_gives_the_figures_worked_out_by_hand(world):
    """Three incidents on 2026-03-02: a resolved P1 (3600 s, SLA met), a resolved P2 of
    the import channel (7200 s, breached) and a new P3 without figures."""
    made = [report(world, created_at=local(2026, 3, 2, hour, 0)) for hour in (8, 9, 10)]
    Incident.objects.filter(pk=made[0].pk).update(
        state="resolved", resolved_at=local(2026, 3, 2, 9, 0), handling_seconds=3600,
        business_seconds=1800, sla_met=True, priority="P1",
    )  # fmt: skip
    Incident.objects.filter(pk=made[1].pk).update(
        state="resolved", resolved_at=local(2026, 3, 2, 11, 0), handling_seconds=7200,
        business_seconds=3600, sla_met=False, priority="P2", channel="import",
    )  # fmt: skip
    Incident.objects.filter(pk=made[2].pk).update(priority="P3", sla_met=None)
    new_state = Incident.objects.get(pk=made[2].pk).state

    assert report_rollup.refresh() == 1

    day = figures_of(DAY)
    assert day[("", "resolved")] == {"count": 2, "resolved": 2, "imported": 1,
        "handling_sum": 10800.0, "handling_n": 2, "sla_met": 1, "sla_breached": 1}  # fmt: skip
    assert day[("", new_state)]["count"] == 1
    assert day[("", new_state)]["handling_n"] == 0
    priorities = figures_of(DAY, "priority")
    assert priorities[("P1", "resolved")]["handling_sum"] == 3600
    assert priorities[("P2", "resolved")]["imported"] == 1
    assert priorities[("P3", new_state)]["count"] == 1
    sla = figures_of(DAY, "sla")
    assert sla[("met", "resolved")]["count"] == 1
    assert sla[("breached", "resolved")]["count"] == 1
    assert sla[("", new_state)]["count"] == 1


@pytest.mark.django_db
def test_a_workflow_step_shows_in_the_next_report(world):
    incident = report(world, created_at=local(2026, 3, 2, 9, 0))
    flt = ReportFilter(DAY, DAY)
    assert period_report(None, flt, "day").rows[0].figures.open == 1

    act(incident, "cancel", world.zhang, "报错了，不需要处理")

    # No background recount ran: the report recounts the stale day itself.
    assert dirty() == {DAY}
    figures = period_report(None, flt, "day").rows[0].figures
    assert (figures.count, figures.open) == (1, 0)
    assert dirty() == set()


@pytest.mark.django_db
def test_only_unfiltered_reports_over_all_incidents_read_the_rollup(world):
    flt = ReportFilter(DAY, DAY)
    manager = UserFactory(username="boss", roles=[r.IT_MANAGER])
    head = UserFactory(username="head", company=world.hq, department=world.fin,
                       roles=[r.DEPARTMENT_HEAD])  # fmt: skip
    assert reads_rollup(None, flt)
    assert reads_rollup(manager, flt)
    assert not reads_rollup(world.zhang, flt)
    assert not reads_rollup(head, flt)
    assert not reads_rollup(None, ReportFilter(DAY, DAY, priorities=("P1",)))
    assert not reads_rollup(None, ReportFilter(DAY, DAY, imported=True))


@pytest.mark.django_db(transaction=True)
def test_a_recount_waits_for_a_writer_of_the_day_and_sees_its_change(world):
    """A writer holds an uncommitted change of the day; the recount, started meanwhile,
    must not count the day without it and forget that it was stale."""
    incident = report(world, created_at=local(2026, 3, 2, 9, 0))
    report_rollup.refresh()
    changed, release = threading.Event(), threading.Event()

    def writer():
        try:
            with transaction.atomic():
                Incident.objects.filter(pk=incident.pk).update(priority="P1")
                changed.set()
                release.wait(10)
        finally:
            connection.close()

    thread = threading.Thread(target=writer)
    thread.start()
    assert changed.wait(10)
    recount = threading.Thread(target=lambda: (report_rollup.refresh(), connection.close()))
    recount.start()
    recount.join(1)  # it waits for the writer (row lock, or SQLite's write lock) ...
    release.set()
    thread.join(10)
    recount.join(30)
    report_rollup.refresh()  # ... or, had it gone first, the day is marked again

    assert dirty() == set()
    assert figures_of(DAY, "priority")[("P1", incident.state)]["count"] == 1


@pytest.mark.django_db(transaction=True)
def test_an_import_pauses_only_its_own_marks_and_marks_its_days_itself(world):
    """While an import's transaction holds the pause, another writer's change is marked,
    even on a day of the import's source, and does not wait for the import; the import's
    own writes are not, until it marks the days of its source at the end."""
    imported = report(world, created_at=local(2026, 3, 5, 9, 0))
    Incident.objects.filter(pk=imported.pk).update(source_system="sheet-1", source_key="A1")
    other = report(world, created_at=local(2026, 3, 5, 10, 0))
    report_rollup.refresh()
    paused, finish = threading.Event(), threading.Event()

    def importer():
        try:
            with transaction.atomic(), report_rollup.marks_paused("sheet-1"):
                Incident.objects.filter(pk=imported.pk).update(
                    created_at=local(2026, 3, 7, 9, 0), created_day=date(2026, 3, 7)
                )
                # A new incident too, numbered by its source as imports do: its foreign
                # keys hold the workflow row (and the others) shared until the commit.
                new = Incident.objects.get(pk=imported.pk)
                new.pk, new.number, new.source_key = None, "SHEET-A2", "A2"
                new.save()
                paused.set()
                finish.wait(10)
        finally:
            connection.close()

    def writer():  # another user, meanwhile: an update, a new incident, a workflow step
        try:
            Incident.objects.filter(pk=other.pk).update(priority="P1")
            report(world, title="新报障", created_at=local(2026, 3, 6, 9, 0))
            act(other, "cancel", world.zhang, "重复报障")
        finally:
            connection.close()

    thread = threading.Thread(target=importer)
    thread.start()
    assert paused.wait(10)
    meanwhile = threading.Thread(target=writer)
    meanwhile.start()
    meanwhile.join(2)
    if connection.vendor != "sqlite":  # SQLite lets one writer at a time: it waits
        assert not meanwhile.is_alive()
        assert dirty() == {date(2026, 3, 5), date(2026, 3, 6)}
    finish.set()
    thread.join(10)
    meanwhile.join(30)

    # The import marked the day its incident left and the day it moved to.
    assert dirty() == {date(2026, 3, 5), date(2026, 3, 6), date(2026, 3, 7)}
    assert not ReportMarkPause.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_report_does_not_wait_for_an_import_holding_its_transaction(world):
    """A stale day and an import still writing: the report answers at once with the
    committed figures, recounting the day (MariaDB) or, while SQLite's one writer is
    busy, counting the incidents themselves."""
    stale = report(world, created_at=local(2026, 3, 5, 9, 0))
    imported = report(world, created_at=local(2026, 3, 5, 10, 0))
    Incident.objects.filter(pk=imported.pk).update(source_system="sheet-1", source_key="A1")
    report_rollup.refresh()
    Incident.objects.filter(pk=stale.pk).update(priority="P1")
    writing, finish = threading.Event(), threading.Event()

    def importer():
        try:
            with transaction.atomic(), report_rollup.marks_paused("sheet-1"):
                Incident.objects.filter(pk=imported.pk).update(priority="P1")
                writing.set()
                finish.wait(20)
        finally:
            connection.close()

    thread = threading.Thread(target=importer)
    thread.start()
    try:
        assert writing.wait(10)
        started = time.monotonic()
        priorities = group_report(
            None, ReportFilter(date(2026, 3, 5), date(2026, 3, 5)), "priority"
        )
        waited = time.monotonic() - started
    finally:
        finish.set()
        thread.join(20)

    assert waited < 5
    assert {row.key: row.figures.count for row in priorities.rows}["P1"] == 1  # not yet 2


@pytest.mark.django_db(transaction=True)
def test_migrating_back_and_forth_keeps_writes_working_and_recounts_every_day(world):
    incident = report(world, created_at=local(2026, 3, 5, 9, 0))
    report_rollup.refresh()

    call_command("migrate", "bjgas_ops", "0006", verbosity=0)
    assert report_rollup.installed_triggers() == set()
    Incident.objects.filter(pk=incident.pk).update(priority="P1")  # no trigger to fail
    call_command("migrate", "bjgas_ops", verbosity=0)

    assert dirty() == {date(2026, 3, 5)}
    figures = group_report(None, ReportFilter(date(2026, 3, 5), date(2026, 3, 5)), "priority")
    assert [(row.key, row.figures.count) for row in figures.rows] == [("P1", 1)]


# ------------------------------------------------------------------------------ equality


@pytest.fixture
def random_incidents(world):
    """Sixty incidents over ten days with random figures, states and dimensions; about a
    third with segments in random tiers."""
    rng = random.Random(20261204)  # noqa: S311 (test data, not secrets)
    systems = [BusinessSystemFactory(code=f"S{n}", name=f"系统{n}") for n in range(3)] + [None]
    states = ["new", "in_progress", "resolved", "closed", "cancelled", "waiting_vendor"]
    for n in range(60):
        moment = local(2026, 3, 1, 8, 0) + timedelta(
            days=rng.randrange(10), hours=rng.randrange(14)
        )
        incident = report(world, title=f"事件 {n}", created_at=moment)
        resolved = rng.random() < 0.6
        Incident.objects.filter(pk=incident.pk).update(
            state=rng.choice(states), priority=rng.choice(["P1", "P2", "P3", "P4"]),
            severity=rng.choice(["A", "B", "C", ""]), business_system=rng.choice(systems),
            channel=rng.choice(["portal", "phone", "import"]), tier=rng.choice([1, 2, 3, None]),
            sla_met=rng.choice([True, False, None]),
            source_system=rng.choice(["", "", "servicenow"]),
            resolved_at=moment + timedelta(hours=2) if resolved else None,
            handling_seconds=rng.randrange(60, 90000) if resolved else None,
            business_seconds=rng.randrange(60, 30000) if resolved else None,
        )  # fmt: skip
        if rng.random() < 0.35:
            IncidentSegment.objects.filter(incident=incident).delete()
            start = moment
            for _ in range(rng.randrange(1, 4)):
                seconds = rng.randrange(60, 5000)
                ended = rng.random() < 0.8
                end = start + timedelta(seconds=seconds) if ended else None
                IncidentSegment.objects.create(
                    incident=incident, state="in_progress",
                    state_category=rng.choice(["open", "waiting", "resolved"]),
                    sla_running=True, tier=rng.choice([1, 2, 3, None]), channel="portal",
                    started_at=start, ended_at=end, wall_seconds=seconds if ended else 0,
                    business_seconds=seconds / 2 if ended else 0,
                )  # fmt: skip
                start += timedelta(seconds=seconds)


def both_ways(monkeypatch, make):
    """Return what `make()` gives from the roll-up and from the incidents."""
    rolled = make()
    with monkeypatch.context() as patch:
        patch.setattr(reports, "reads_rollup", lambda user, flt: False)
        counted = make()
    return rolled, counted


def table(report):
    return [(row.key, row.figures.as_dict(), row.previous and row.previous.as_dict())
            for row in report.rows], report.total.as_dict()  # fmt: skip


@pytest.mark.django_db
def test_reports_from_the_rollup_equal_those_counted_from_the_incidents(
    random_incidents, monkeypatch
):
    flt = ReportFilter(date(2026, 3, 2), date(2026, 3, 9))
    for period in PERIODS:
        rolled, counted = both_ways(monkeypatch, lambda p=period: period_report(None, flt, p))
        assert table(rolled) == table(counted), period
    for field in GROUP_FIELDS:
        rolled, counted = both_ways(monkeypatch, lambda f=field: group_report(None, flt, f))
        assert sorted(table(rolled)[0]) == sorted(table(counted)[0]), field
        assert table(rolled)[1] == pytest.approx(table(counted)[1]), field
    rolled, counted = both_ways(monkeypatch, lambda: tier_report(None, flt))
    assert table(rolled)[0] == table(counted)[0]
    assert [row.key for row in rolled.rows] != []
    rolled, counted = both_ways(monkeypatch, lambda: narrative(None, flt))
    assert rolled == counted
    assert IncidentDayFigures.objects.filter(dimension=TIER_TIME).exists()
