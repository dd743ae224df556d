"""The ServiceNow event-log reader, checked against the raw file read by another route."""

import csv
import io
import zipfile
from collections import Counter
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from apps.bjgas_ops.importers.servicenow import open_rows, read_event_log
from bjgas.datasets import dataset

DATASET = dataset("servicenow_incident_event_log.csv.zip")
ZONE = ZoneInfo("Asia/Shanghai")


@pytest.fixture(scope="module")
def raw_rows() -> list[dict[str, str]]:
    with zipfile.ZipFile(DATASET) as archive:
        (name,) = archive.namelist()
        text = archive.read(name).decode("utf-8")
    return list(csv.DictReader(io.StringIO(text)))


@pytest.fixture(scope="module")
def result():
    return read_event_log(open_rows(DATASET), ZONE)


def final_rows(rows):
    """Independent route: per incident, the last row after a stable sort on mod count."""
    indexed = sorted(
        enumerate(rows), key=lambda p: (p[1]["number"], int(p[1]["sys_mod_count"]), p[0])
    )
    last = {}
    for _index, row in indexed:
        last[row["number"]] = row
    return last


def good(rows):
    states = {"New", "Active", "Awaiting User Info", "Awaiting Vendor", "Awaiting Problem",
              "Awaiting Evidence", "Resolved", "Closed"}  # fmt: skip
    return [r for r in rows if r["incident_state"] in states]


def test_every_row_is_read_and_bad_rows_are_named(raw_rows, result):
    assert result.rows == len(raw_rows) == 119998
    bad = [(i + 2, r["number"]) for i, r in enumerate(raw_rows) if r["incident_state"] == "-100"]
    assert [(e.row, e.number) for e in result.errors] == bad
    assert all("-100" in e.reason for e in result.errors)


def test_incident_count(raw_rows, result):
    assert len(result.incidents) == len({r["number"] for r in good(raw_rows)})


def test_resolved_count_and_rule(raw_rows, result):
    rows = good(raw_rows)
    last = final_rows(rows)
    by_number = {}
    for r in rows:
        by_number.setdefault(r["number"], []).append(r)
    expected_resolved = 0
    for number, row in last.items():
        if row["resolved_at"] != "?":
            expected_resolved += 1
        elif any(r["incident_state"] == "Resolved" for r in by_number[number]):
            expected_resolved += 1
    assert sum(i.is_resolved for i in result.incidents) == expected_resolved


def test_counts_per_opened_month_and_channel(raw_rows, result):
    last = final_rows(good(raw_rows))
    months = Counter(
        datetime.strptime(r["opened_at"], "%d/%m/%Y %H:%M").strftime("%Y-%m") for r in last.values()
    )
    channels = Counter(r["contact_type"] for r in last.values())
    assert Counter(i.opened_at.strftime("%Y-%m") for i in result.incidents) == months
    assert Counter(i.value("contact_type") for i in result.incidents) == channels


def test_tie_on_mod_count_takes_the_later_row_and_times_are_in_the_given_zone(tmp_path):
    header = (
        "number,incident_state,sys_mod_count,opened_at,sys_updated_at,resolved_at,contact_type\n"
    )
    path = Path(tmp_path) / "log.csv"
    path.write_text(
        header
        + "INC1,New,0,29/2/2016 01:16,29/2/2016 01:23,?,Phone\n"
        + "INC1,Resolved,1,29/2/2016 01:16,29/2/2016 08:53,?,Phone\n"
        + "INC1,Active,1,29/2/2016 01:16,29/2/2016 09:00,?,Email\n"
        + "INC2,Active,0,1/3/2016 9:5,bad time,?,Phone\n",
        encoding="utf-8",
    )
    read = read_event_log(open_rows(path), ZoneInfo("UTC"))
    (incident,) = read.incidents
    assert incident.value("contact_type") == "Email"  # the later of the two mod-count-1 rows
    assert incident.opened_at == datetime(2016, 2, 29, 1, 16, tzinfo=ZoneInfo("UTC"))
    # No resolved_at: the update that moved it into Resolved gives the resolution time.
    assert incident.resolved_at == datetime(2016, 2, 29, 8, 53, tzinfo=ZoneInfo("UTC"))
    assert [(e.row, e.number) for e in read.errors] == [(5, "INC2")]
