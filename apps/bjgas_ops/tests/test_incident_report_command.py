"""`manage.py incident_report`: JSON parsed and checked, Excel written and read back (real
number and date cells, no formula from a name), scope with --user, and bad options.

    incident  reported (Beijing)  requester  system            state     handling  SLA
    a         2026-03-02 10:00    zhang      =HYPERLINK(...)   resolved  3600      met
    b         2026-03-03 11:00    zhang      =HYPERLINK(...)   resolved  7200      breached
    c         2026-03-09 09:00    other      -                 new       -         -
"""

import io
import json
import time
import zipfile
from datetime import date, datetime, timedelta

import openpyxl
import pytest
from django.core.management import CommandError, call_command

from apps.bjgas_ops.models import Incident
from apps.bjgas_platform import roles as r
from apps.bjgas_platform.tests.factories import (
    BusinessSystemFactory,
    ScopeRuleFactory,
    UserFactory,
)

from .incident_fixtures import *  # noqa: F403 (the fixtures clock and world)
from .incident_fixtures import local, report

pytestmark = pytest.mark.django_db

EVIL_NAME = '=HYPERLINK("http://x")'
MARCH = ["--from", "2026-03-01", "--to", "2026-03-31"]


@pytest.fixture
def incidents(world):
    system = BusinessSystemFactory(code="EVIL", name=EVIL_NAME)
    world.other.full_name = "@SUM(1)"
    world.other.save()
    a = report(world, title="a", created_at=local(2026, 3, 2, 10, 0))
    b = report(world, title="b", created_at=local(2026, 3, 3, 11, 0))
    c = report(world, actor=world.other, title="c", created_at=local(2026, 3, 9, 9, 0))
    Incident.objects.filter(pk=a.pk).update(
        state="resolved", resolved_at=local(2026, 3, 2, 11, 0), handling_seconds=3600,
        business_seconds=3000, sla_met=True, business_system=system, priority="P2",
    )  # fmt: skip
    Incident.objects.filter(pk=b.pk).update(
        state="closed", resolved_at=local(2026, 3, 3, 13, 0), handling_seconds=7200,
        business_seconds=5400, sla_met=False, business_system=system, priority="P2",
    )  # fmt: skip
    Incident.objects.filter(pk=c.pk).update(
        resolved_at=None, handling_seconds=None, business_seconds=None, sla_met=None,
        priority="P3",
    )  # fmt: skip
    return system


def run(*args) -> str:
    out = io.StringIO()
    call_command("incident_report", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_json_per_week(incidents):
    document = json.loads(run(*MARCH, "--period", "week", "--language", "en"))

    assert (document["from"], document["to"], document["period"]) == (
        "2026-03-01",
        "2026-03-31",
        "week",
    )
    assert len(document["definitions"]) == 2
    groups = {group["key"]: group for group in document["groups"]}
    assert list(groups) == ["2026-W09", "2026-W10", "2026-W11", "2026-W12", "2026-W13", "2026-W14"]
    w10, w11 = groups["2026-W10"], groups["2026-W11"]
    assert (w10["count"], w10["resolved"], w10["open"]) == (2, 2, 0)
    assert w10["mean_handling_seconds"] == 5400.0
    assert w10["mean_business_seconds"] == 4200.0
    assert w10["sla_met_ratio"] == 0.5
    assert (w10["previous"]["count"], w10["count_change"]) == (0, 2)
    assert (w11["count"], w11["open"], w11["mean_handling_seconds"]) == (1, 1, None)
    assert (w11["count_change"], w11["count_change_ratio"]) == (-1, -0.5)
    assert w11["handling_change_seconds"] is None
    assert (w10["start"], w10["end"]) == ("2026-03-02", "2026-03-08")
    assert groups["2026-W09"]["start"] == "2026-03-01"  # the range starts on the Sunday
    assert document["total"]["count"] == 3
    assert document["total"]["sla_met_ratio"] == 0.5
    assert document["narrative"].startswith("2026-03: 3 incidents were reported, 1 still")


def test_json_by_business_system_names_the_top_reporters(incidents, world):
    document = json.loads(run(*MARCH, "--group-by", "business_system", "--language", "en"))

    assert document["group_by"] == "business_system"
    first, unset = document["groups"]
    assert (first["key"], first["label"], first["count"]) == (str(incidents.pk), EVIL_NAME, 2)
    assert first["top_reporters"] == [{"name": "张会计", "count": 2}]
    assert (unset["key"], unset["label"], unset["count"]) == ("", "Not set", 1)


def test_json_per_tier(incidents):
    document = json.loads(run(*MARCH, "--tiers", "--language", "en"))

    assert document["report"] == "tiers"
    assert len(document["definitions"]) == 3


def test_user_scope(incidents, world):
    head = UserFactory(
        username="fin_head", company=world.hq, department=world.fin, roles=[r.DEPARTMENT_HEAD]
    )
    ScopeRuleFactory(name="财务部", user=head, departments=[world.fin])

    mine = json.loads(run(*MARCH, "--group-by", "priority", "--user", "fin_head"))
    everything = json.loads(run(*MARCH, "--group-by", "priority"))

    assert mine["user"] == "fin_head"
    assert [(g["key"], g["count"]) for g in mine["groups"]] == [("P2", 2)]  # not other's c
    assert [(g["key"], g["count"]) for g in everything["groups"]] == [("P2", 2), ("P3", 1)]


def sheet_rows(path):
    book = openpyxl.load_workbook(path)
    sheet = book.active
    header = [cell.value for cell in sheet[4]]
    return sheet, header


def test_xlsx_has_number_cells_and_no_formula(incidents, tmp_path):
    path = tmp_path / "systems.xlsx"
    run(*MARCH, "--group-by", "business_system", "--format", "xlsx", "--output", str(path),
        "--language", "en")  # fmt: skip

    sheet, header = sheet_rows(path)
    assert header[:5] == ["Group", "Incidents", "Resolved", "Still open", "Batch-imported"]
    row = {title: cell for title, cell in zip(header, sheet[5], strict=True)}
    label = row["Group"]
    assert label.value == EVIL_NAME
    assert label.data_type == "s"  # read back as text, not as a formula
    assert row["Incidents"].value == 2 and isinstance(row["Incidents"].value, int)
    assert row["Mean handling time (s)"].value == 5400
    # A duration: a number of days (0.0625) that openpyxl reads back as a timedelta.
    assert row["Mean handling time"].value == timedelta(seconds=5400)
    assert row["Mean handling time"].number_format == "[h]:mm:ss"
    assert row["Mean business time (s)"].value == 4200
    assert row["SLA met ratio"].value == 0.5
    assert row["SLA met ratio"].number_format == "0.0%"
    assert row["Top reporters"].value == "张会计 (2)"
    unset = {title: cell for title, cell in zip(header, sheet[6], strict=True)}
    assert unset["Top reporters"].value == "@SUM(1) (1)"
    assert unset["Top reporters"].data_type == "s"
    total = {title: cell.value for title, cell in zip(header, sheet[7], strict=True)}
    assert (total["Group"], total["Incidents"], total["Still open"]) == ("Total", 3, 1)
    texts = [cell.value for cell in sheet["A"] if isinstance(cell.value, str)]
    assert any(text.startswith("Handling time:") for text in texts)

    # In the file itself: no formula element anywhere, the name stored as a string marked text.
    with zipfile.ZipFile(path) as archive:
        xml = archive.read("xl/worksheets/sheet1.xml").decode()
        styles = archive.read("xl/styles.xml").decode()
    assert "<f>" not in xml and "<f " not in xml
    assert "HYPERLINK" in xml  # as an inline string
    assert "<v>0.0625</v>" in xml  # 5400 s as a fraction of a day
    assert 'quotePrefix="1"' in styles


def test_xlsx_per_day_has_date_cells(incidents, tmp_path):
    path = tmp_path / "days.xlsx"
    run("--from", "2026-03-01", "--to", "2026-03-03", "--period", "day", "--format", "xlsx",
        "--output", str(path), "--language", "en")  # fmt: skip

    sheet, header = sheet_rows(path)
    assert header[:4] == ["Period", "First day", "Last day", "Incidents"]
    rows = [[cell for cell in row] for row in sheet.iter_rows(min_row=5, max_row=7)]
    assert [row[0].value for row in rows] == ["2026-03-01", "2026-03-02", "2026-03-03"]
    assert [row[1].value for row in rows] == [datetime(2026, 3, day) for day in (1, 2, 3)]
    assert all(row[1].is_date for row in rows)
    assert [row[3].value for row in rows] == [0, 1, 1]
    assert sheet.cell(8, 1).value == "Total"
    assert sheet.cell(8, 2).value.date() == date(2026, 3, 1)


def test_xlsx_per_tier_has_only_the_tier_columns(incidents, tmp_path):
    path = tmp_path / "tiers.xlsx"
    run(*MARCH, "--tiers", "--format", "xlsx", "--output", str(path), "--language", "en")

    sheet, header = sheet_rows(path)
    assert header == [
        "Tier",
        "Incidents",
        "Mean time in the tier",
        "Mean time in the tier (s)",
        "Mean business time in the tier",
        "Mean business time in the tier (s)",
    ]
    texts = [cell.value for cell in sheet["A"] if isinstance(cell.value, str)]
    assert any(text.startswith("Time in a tier:") for text in texts)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--from", "2026-13-01", "--to", "2026-03-31", "--period", "week"],
         "--from: '2026-13-01' is not a date; write it as YYYY-MM-DD, e.g. 2016-03-01."),
        (["--from", "2026-03-01", "--to", "31/03/2026", "--period", "week"],
         "--to: '31/03/2026' is not a date"),
        (["--from", "2026-03-31", "--to", "2026-03-01", "--period", "week"],
         "--to 2026-03-01 is before --from 2026-03-31."),
        ([*MARCH, "--period", "fortnight"],
         "--period: unknown value 'fortnight'; choose one of: day, week, month, quarter, year."),
        ([*MARCH, "--group-by", "colour"], "--group-by: unknown value 'colour'"),
        ([*MARCH, "--period", "week", "--group-by", "priority"],
         "Choose exactly one of --period, --group-by and --tiers (given: --period, --group-by)."),
        (MARCH, "Choose exactly one of --period, --group-by and --tiers (given: -)."),
        ([*MARCH, "--period", "week", "--format", "xlsx"],
         "--format xlsx writes a file: give its path with --output."),
        ([*MARCH, "--period", "week", "--format", "csv"], "--format: unknown value 'csv'"),
        ([*MARCH, "--period", "week", "--user", "nobody"], "--user: no user is called 'nobody'."),
        ([*MARCH, "--period", "week", "--priority", "P9"], "--priority: unknown value 'P9'"),
        ([*MARCH, "--period", "week", "--company", "NOPE"],
         "--company: nothing has the code 'NOPE'."),
    ],
)  # fmt: skip
def test_bad_options_are_named(db, args, message):
    with pytest.raises(CommandError) as refused:
        run(*args, "--language", "en")
    assert message in str(refused.value)


def test_cut_weeks_are_marked_partial_in_json(incidents):
    # W10 (03-02..03-08) cut to 03-03..03-08 holds b; W11 cut to 03-09..03-10 holds c.
    document = json.loads(
        run("--from", "2026-03-03", "--to", "2026-03-10", "--period", "week", "--language", "en")
    )
    w10, w11 = document["groups"]
    assert (w10["key"], w10["partial"], w10["count"], w10["start"]) == (
        "2026-W10",
        True,
        1,
        "2026-03-03",
    )
    assert (w11["key"], w11["partial"], w11["count"], w11["end"]) == (
        "2026-W11",
        True,
        1,
        "2026-03-10",
    )
    # 1 against 1 would be 0.0, but the spans differ: no ratio.
    assert (w11["count_change"], w11["count_change_ratio"]) == (0, None)

    whole = json.loads(run("--from", "2026-03-02", "--to", "2026-03-15", "--period", "week"))
    assert [row["partial"] for row in whole["groups"]] == [False, False]
    # W11 (c) against the whole W10 (a, b): -1 of 2.
    assert whole["groups"][1]["count_change_ratio"] == -0.5


def test_a_range_too_long_fails_fast(db):
    started = time.monotonic()
    with pytest.raises(CommandError) as refused:
        run("--from", "1970-01-01", "--to", "2999-12-31", "--period", "day", "--language", "en")
    assert time.monotonic() - started < 5
    message = str(refused.value)
    assert message.startswith("--period: The report would have ")
    assert message.endswith("rows, more than 5000: choose a coarser period or a shorter range.")


@pytest.mark.parametrize(
    "args, message",
    [
        (["--from", "1000-01-01", "--to", "9000-12-31", "--period", "day"],
         "--from: The first day 1000-01-01 is outside the days a report covers, "
         "1970-01-01 to 2999-12-31."),
        (["--from", "2016-01-01", "--to", "9000-12-31", "--group-by", "priority"],
         "--to: The last day 9000-12-31 is outside the days a report covers"),
    ],
)  # fmt: skip
def test_days_outside_the_reported_years_are_named(db, args, message):
    with pytest.raises(CommandError) as refused:
        run(*args, "--language", "en")
    assert message in str(refused.value)


@pytest.mark.parametrize("output_format", ["xlsx", "json"])
def test_an_output_that_cannot_be_written_is_named(incidents, output_format):
    path = "/nonexistent/dir/x." + output_format
    with pytest.raises(CommandError) as refused:
        run(*MARCH, "--period", "week", "--format", output_format, "--output", path,
            "--language", "en")  # fmt: skip
    assert str(refused.value).startswith(f"--output: cannot write {path} (")


def test_bad_options_in_chinese_by_default(db):
    with pytest.raises(CommandError) as refused:
        run("--from", "2026-13-01", "--to", "2026-03-31", "--period", "week")
    assert (
        str(refused.value) == "--from：“2026-13-01”不是日期，请写成 YYYY-MM-DD，例如 2016-03-01。"
    )


def test_bad_language(db):
    with pytest.raises(CommandError) as refused:
        run(*MARCH, "--period", "week", "--language", "fr")
    assert "--language" in str(refused.value)
