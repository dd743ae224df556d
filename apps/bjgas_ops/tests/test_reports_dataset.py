"""The reports on the real ServiceNow event log, checked against the raw file read by
another route: plain `csv` over the zip, the import rules applied here by hand.

The dataset is imported once for the module, inside a transaction rolled back at the end.
Expected figures, per incident (its final row: the highest sys_mod_count, on a tie the
later row; rows with an unknown state such as '-100' are bad and skipped):
- reported at `opened_at`, read in the site's zone (Asia/Shanghai), so the opened month
  is the month as written;
- resolved at `resolved_at`, else at the last update that moved it into Resolved, else
  unresolved; handling time = resolution - opened_at, over resolved incidents;
- priority '1 - Critical' → P1 ... '4 - Low' → P4; contact_type Phone → phone,
  Email → email, Self service → portal, IVR → phone, anything else → import;
- SLA verdict: made_sla of the final row.
"""

import csv
import io
import zipfile
from collections import Counter, defaultdict
from datetime import date, datetime

import pytest
from django.db import transaction

from apps.bjgas_ops.importers.servicenow import import_servicenow
from apps.bjgas_ops.models import Incident
from apps.bjgas_ops.services.reports import (
    ReportFilter,
    format_duration,
    group_report,
    narrative,
    period_report,
)
from apps.bjgas_platform.tests.factories import CompanyFactory
from bjgas.datasets import dataset

DATASET = dataset("servicenow_incident_event_log.csv.zip")
TIME_FORMAT = "%d/%m/%Y %H:%M"
STATES = {"New", "Active", "Awaiting User Info", "Awaiting Vendor", "Awaiting Problem",
          "Awaiting Evidence", "Resolved", "Closed"}  # fmt: skip
PRIORITIES = {"1 - Critical": "P1", "2 - High": "P2", "3 - Moderate": "P3", "4 - Low": "P4"}
CHANNELS = {"Phone": "phone", "Email": "email", "Self service": "portal", "IVR": "phone"}
EVERYTHING = ReportFilter(date(2016, 1, 1), date(2017, 12, 31))
A_WEEK = ReportFilter(date(2016, 3, 7), date(2016, 3, 13))  # ISO 2016-W10

pytestmark = pytest.mark.django_db


def when(text: str) -> datetime:
    return datetime.strptime(text, TIME_FORMAT)


@pytest.fixture(scope="module")
def expected() -> dict[str, dict]:
    """Per incident number: opened, resolution, priority, channel and SLA verdict."""
    with zipfile.ZipFile(DATASET) as archive:
        (name,) = archive.namelist()
        text = archive.read(name).decode("utf-8")
    rows = [row for row in csv.DictReader(io.StringIO(text)) if row["incident_state"] in STATES]
    history = defaultdict(list)
    for line, row in enumerate(rows):
        history[row["number"]].append((when(row["sys_updated_at"]), int(row["sys_mod_count"]),
                                       line, row))  # fmt: skip
    incidents = {}
    for number, updates in history.items():
        final = max(updates, key=lambda update: (update[1], update[2]))[3]
        resolution = None if final["resolved_at"] == "?" else when(final["resolved_at"])
        if resolution is None:
            before = None
            for at, _mod, _line, row in sorted(updates, key=lambda update: update[:3]):
                if row["incident_state"] == "Resolved" and before != "Resolved":
                    resolution = at
                before = row["incident_state"]
        incidents[number] = {
            "opened": when(final["opened_at"]),
            "resolution": resolution,
            "priority": PRIORITIES[final["priority"]],
            "channel": CHANNELS.get(final["contact_type"], "import"),
            "made_sla": {"true": True, "false": False}[final["made_sla"]],
            "open": final["incident_state"] not in ("Resolved", "Closed"),
            "category": f"{final['category']} / {final['subcategory']}",
        }
    return incidents


@pytest.fixture(scope="module")
def imported(django_db_setup, django_db_blocker):
    """Import the whole dataset once; roll it back after the module's tests."""
    with django_db_blocker.unblock(), transaction.atomic():
        company = CompanyFactory(code="SN-IT", name="信息中心（历史工单）")
        summary = import_servicenow(DATASET, company=company)
        yield summary
        transaction.set_rollback(True)


def handling(incident: dict) -> float:
    return (incident["resolution"] - incident["opened"]).total_seconds()


def test_incident_and_resolved_counts(imported, expected):
    total = period_report(None, EVERYTHING, "year").total

    assert not imported.refused
    assert total.count == len(expected) == 20769
    assert Incident.objects.filter(source_system="servicenow").count() == len(expected)
    assert total.resolved == sum(1 for i in expected.values() if i["resolution"] is not None)
    assert total.imported == total.count  # every one is batch-imported


def test_counts_per_opened_month(imported, expected):
    months = period_report(None, EVERYTHING, "month")

    by_month = Counter(f"{i['opened']:%Y-%m}" for i in expected.values())
    found = {row.key: row.figures.count for row in months.rows if row.figures.count}
    assert found == dict(by_month)
    assert len(months.rows) == 24  # every month of 2016 and 2017, empty ones included


def test_counts_per_channel(imported, expected):
    channels = group_report(None, EVERYTHING, "channel")

    assert {row.key: row.figures.count for row in channels.rows} == dict(
        Counter(i["channel"] for i in expected.values())
    )


def test_mean_handling_time_and_sla_ratio_per_priority(imported, expected):
    priorities = group_report(None, EVERYTHING, "priority")

    found = {row.key: row.figures for row in priorities.rows}
    assert set(found) == {"P1", "P2", "P3", "P4"}
    for priority, figures in found.items():
        mine = [i for i in expected.values() if i["priority"] == priority]
        resolved = [handling(i) for i in mine if i["resolution"] is not None]
        met = sum(1 for i in mine if i["made_sla"])
        assert figures.count == len(mine)
        assert figures.resolved == len(resolved)
        assert figures.mean_handling_seconds == pytest.approx(sum(resolved) / len(resolved))
        assert figures.sla_met_ratio == pytest.approx(met / len(mine))


def test_narrative_of_a_real_week(imported, expected):
    week = [i for i in expected.values() if date(2016, 3, 7) <= i["opened"].date() <= A_WEEK.end]
    resolved = [handling(i) for i in week if i["resolution"] is not None]
    still_open = sum(1 for i in week if i["open"])
    met = sum(1 for i in week if i["made_sla"]) / len(week)
    (top, top_count), *_others = Counter(i["category"] for i in week).most_common()

    text = narrative(None, A_WEEK, "en")

    print(narrative(None, A_WEEK))  # the Chinese sentence, for the release note (pytest -s)
    assert text.startswith(
        f"2016-W10 (3/7 to 3/13): {len(week)} incidents were reported, {still_open} still "
        f"being handled, {len(week)} batch-imported; the mean handling time was "
        f"{format_duration(sum(resolved) / len(resolved), 'en')} ("
    )
    # No business system in the source: the reports concentrate on a category.
    assert text.endswith(
        f" in business time), and {met:.1%} of those with an SLA verdict met it. Most reports "
        f"concerned {top} ({top_count}, {top_count / len(week):.1%})."
    )
