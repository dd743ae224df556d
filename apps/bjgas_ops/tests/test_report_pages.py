"""The desk's report pages: permissions, scope, the table, the chart, the Excel download
and refused filters. Every expected figure is worked out by hand from the incidents below,
whose figures are set directly (as the figures service would store them).

    name  department  reported (Beijing)  week  channel  priority  state     handling  business  SLA
    a1    财务部      2016-03-01 10:00    W09   phone    P1        resolved  3600      1800      met
    a2    财务部      2016-03-02 09:00    W09   portal   P3        resolved  7200      3600      no
    a3    财务部      2016-03-09 09:00    W10   portal   P3        new       -         -         -
    b0    信息中心    2016-02-25 09:00    W08   email    P3        resolved  600       600       met
    b1    信息中心    2016-03-01 15:00    W09   email    P1        resolved  17713     10000     met
    b2    信息中心    2016-03-15 09:00    W11   phone    P3        new       -         -         -

a1-a3 are reported by zhang (财务部), b0-b2 by the service desk's 'desk' (信息中心); b1 came
from ServiceNow. W09 runs from 2016-02-29 to 03-06, W10 to 03-13, W11 to 03-20.
"""

import io
import json
import re
from datetime import date, datetime
from html import unescape
from html.parser import HTMLParser

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from openpyxl import load_workbook

from apps.bjgas_ops.admin.reports import last_full_week
from apps.bjgas_ops.models import Incident, IncidentSegment
from apps.bjgas_ops.services import report_rollup
from apps.bjgas_platform import roles as r
from apps.bjgas_platform.tests.factories import ScopeRuleFactory, UserFactory

from .incident_fixtures import *  # noqa: F403 (the fixtures clock and world)
from .incident_fixtures import local, report

pytestmark = pytest.mark.django_db

PERIOD = reverse("admin:bjgas_ops_report_period")
GROUP = reverse("admin:bjgas_ops_report_group")
TIER = reverse("admin:bjgas_ops_report_tier")
INDEX = reverse("admin:bjgas_ops_reports")
WEEKS = {"start": "2016-02-29", "end": "2016-03-20", "period": "week"}
MARCH = {"start": "2016-03-01", "end": "2016-03-31"}
DEFINITIONS = (
    "Handling time: from when the incident was reported until it was resolved",
    "Business time: the same span counted in the working hours of the SLA calendar",
)


@pytest.fixture
def incidents(world):
    specs = {
        "a1": (world.zhang, local(2016, 3, 1, 10, 0), "phone"),
        "a2": (world.zhang, local(2016, 3, 2, 9, 0), "portal"),
        "a3": (world.zhang, local(2016, 3, 9, 9, 0), "portal"),
        "b0": (world.desk, local(2016, 2, 25, 9, 0), "email"),
        "b1": (world.desk, local(2016, 3, 1, 15, 0), "email"),
        "b2": (world.desk, local(2016, 3, 15, 9, 0), "phone"),
    }
    made = {
        name: report(world, actor=actor, title=f"事件 {name}", created_at=moment, channel=channel)
        for name, (actor, moment, channel) in specs.items()
    }

    def update(name, **fields):
        Incident.objects.filter(pk=made[name].pk).update(**fields)

    def resolved(name, handling, business, met, **extra):
        update(name, state="resolved", handling_seconds=handling, business_seconds=business,
               sla_met=met, resolved_at=specs[name][1], **extra)  # fmt: skip

    resolved("a1", 3600, 1800, True, priority="P1")
    resolved("a2", 7200, 3600, False, priority="P3")
    resolved("b0", 600, 600, True, priority="P3")
    resolved("b1", 17713, 10000, True, priority="P1", source_system="servicenow",
             source_key="INC1")  # fmt: skip
    for name in ("a3", "b2"):
        update(name, state="new", resolved_at=None, handling_seconds=None,
               business_seconds=None, sla_met=None, priority="P3")  # fmt: skip
    return {name: Incident.objects.get(pk=incident.pk) for name, incident in made.items()}


@pytest.fixture
def head(world):
    """The head of 财务部, who may view incidents and sees their department's only."""
    user = UserFactory(
        username="fin_head",
        company=world.hq,
        department=world.fin,
        roles=[r.DEPARTMENT_HEAD],
        is_staff=True,
    )
    ScopeRuleFactory(name="财务部负责人", user=user, departments=[world.fin])
    return user


@pytest.fixture
def boss(db):
    return UserFactory(username="boss", is_staff=True, is_superuser=True)


def client_for(client, user, language="en"):
    client.force_login(user)
    client.cookies["django_language"] = language
    return client


class ReportPageParser(HTMLParser):
    """Read the report table (cells by row key and column) and the chart's data."""

    def __init__(self):
        super().__init__()
        self.rows: dict[str, dict[str, str]] = {}
        self.charts: list[tuple[dict, dict]] = []
        self._row = None
        self._col = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "tr" and "data-key" in attrs:
            self._row = self.rows.setdefault(attrs["data-key"], {})
        elif tag == "td" and self._row is not None and "data-col" in attrs:
            self._col = attrs["data-col"]
            self._row[self._col] = ""
        elif self._col is not None:
            self._row[self._col] += " "  # a tag inside a cell separates words
        elif tag == "canvas" and "data-value" in attrs:
            self.charts.append((json.loads(attrs["data-value"]), json.loads(attrs["data-options"])))

    def handle_endtag(self, tag):
        if tag == "td":
            self._col = None
        elif tag == "tr":
            self._row = None

    def handle_data(self, data):
        if self._row is not None and self._col is not None:
            self._row[self._col] += data

    def cell(self, key, col):
        return " ".join(self.rows[key][col].split())


def parse(response) -> ReportPageParser:
    assert response.status_code == 200
    parser = ReportPageParser()
    parser.feed(response.content.decode())
    return parser


def text_of(response) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", response.content.decode())).split())


# ------------------------------------------------------------------------------ access


def test_only_users_who_may_view_incidents_reach_the_pages(client, world, head, incidents):
    pages = [INDEX, PERIOD, GROUP, TIER, f"{PERIOD}?export=xlsx"]
    for url in pages:
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("admin:login"))

    clerk = UserFactory(username="clerk", company=world.hq, is_staff=True)
    clerk.user_permissions.add(Permission.objects.get(codename="view_task"))
    client_for(client, clerk)
    for url in pages:
        assert client.get(url).status_code == 403
    assert (
        reverse("admin:bjgas_ops_reports")
        not in client.get(reverse("admin:index")).content.decode()
    )

    assert head.has_perm("bjgas_ops.view_incident_reports")
    client_for(client, head)
    for url in pages[:-1]:
        assert client.get(url).status_code == 200
    # The sidebar offers the reports to those who may open them.
    assert f'href="{INDEX}"' in client.get(reverse("admin:index")).content.decode()


REPORT_URLS = [
    INDEX,
    PERIOD,
    GROUP,
    TIER,
    f"{PERIOD}?export=xlsx",
    f"{GROUP}?export=xlsx",
    f"{TIER}?export=xlsx",
]


def test_requesters_and_engineers_may_not_open_the_reports(client, world, incidents):
    # They may view incidents (their own, their group's) but not the reports; staff, so
    # that the refusal is the reports' and not the desk's login.
    for user in (world.zhang, world.li, world.wang, world.sun):
        user.is_staff = True
        user.save()
        assert user.has_perm("bjgas_ops.view_incident")
        assert not user.has_perm("bjgas_ops.view_incident_reports")
        client_for(client, user)
        for url in REPORT_URLS:
            assert client.get(url).status_code == 403, (user.username, url)
    # The requester's sidebar has no link to the reports.
    client_for(client, world.zhang)
    index = client.get(reverse("admin:index"))
    assert index.status_code == 200
    assert INDEX not in index.content.decode()


def test_a_vendor_engineer_may_not_open_the_reports(client, world):
    engineer = UserFactory(
        username="vendor_eng", company=world.hq, roles=[r.VENDOR_ENGINEER], is_staff=True
    )
    client_for(client, engineer)
    for url in REPORT_URLS:
        assert client.get(url).status_code == 403, url


def test_the_report_roles_open_the_reports(client, world, head, incidents):
    manager = UserFactory(username="manager", company=world.hq, roles=[r.IT_MANAGER], is_staff=True)
    for user in (head, manager, world.desk, world.lead, world.aud):
        user.is_staff = True
        user.save()
        client_for(client, user)
        for url in REPORT_URLS:
            assert client.get(url).status_code == 200, (user.username, url)
        assert f'href="{INDEX}"' in client.get(reverse("admin:index")).content.decode()


def test_the_report_permission_is_granted_once_to_existing_roles(db):
    from apps.bjgas_ops.reference import load_ops_reference

    report_roles = {
        r.SERVICE_DESK,
        r.TEAM_LEAD,
        r.DEPARTMENT_HEAD,
        r.IT_MANAGER,
        r.AUDITOR,
        r.ADMINISTRATOR,
    }
    permission = Permission.objects.get(codename="view_incident_reports")
    holders = {group.role.code for group in permission.group_set.all()}
    assert holders == report_roles

    # An administrator takes it from the team lead: the next migrate leaves that alone.
    permission.group_set.remove(r.role_group(r.TEAM_LEAD))
    load_ops_reference(set())
    assert {group.role.code for group in permission.group_set.all()} == report_roles - {r.TEAM_LEAD}

    # Before the permission came (no group holds it), every report role gets it.
    permission.group_set.clear()
    load_ops_reference(set())
    assert {group.role.code for group in permission.group_set.all()} == report_roles


# ------------------------------------------------------------------------------ period


def test_the_period_page_by_week(client, boss, incidents):
    page = parse(client_for(client, boss).get(PERIOD, WEEKS))

    assert [key for key in page.rows if key != "total"] == ["2016-W09", "2016-W10", "2016-W11"]
    counts = {key: page.cell(key, "count") for key in page.rows}
    assert counts == {"2016-W09": "3", "2016-W10": "1", "2016-W11": "1", "total": "5"}
    # W08 had b0 only.
    assert [page.cell(key, "change") for key in ("2016-W09", "2016-W10", "2016-W11")] == [
        "+2",
        "-2",
        "0",
    ]
    assert [page.cell(key, "change_ratio") for key in ("2016-W09", "2016-W10", "2016-W11")] == [
        "+200.0%",
        "-66.7%",
        "0.0%",
    ]
    w09 = page.rows["2016-W09"]
    assert (w09["resolved"], w09["open"], w09["imported"]) == ("3", "0", "1")
    # (3600 + 7200 + 17713) / 3 = 9504.33 s; (1800 + 3600 + 10000) / 3 = 5133.33 s.
    assert page.cell("2016-W09", "handling") == "2 h 38 min 24 s"
    assert page.cell("2016-W09", "business") == "1 h 25 min 33 s"
    assert page.cell("2016-W09", "sla") == "66.7%"
    assert page.cell("2016-W10", "handling") == "—"
    assert (page.cell("2016-W10", "open"), page.cell("2016-W11", "open")) == ("1", "1")
    assert page.cell("total", "handling") == "2 h 38 min 24 s"


def test_the_period_page_shows_durations_in_chinese(client, boss, incidents):
    page = parse(client_for(client, boss, "zh-hans").get(PERIOD, {**MARCH, "period": "month"}))

    # March: a1, a2, b1 resolved; a3, b2 open.
    assert page.cell("2016-03", "count") == "5"
    assert page.cell("2016-03", "handling") == "2小时38分24秒"
    assert page.cell("2016-03", "business") == "1小时25分33秒"


def test_the_summary_and_definitions_are_on_the_page(client, boss, incidents):
    response = client_for(client, boss).get(PERIOD, {**MARCH, "period": "month"})
    text = text_of(response)

    assert (
        "2016-03: 5 incidents were reported, 2 still being handled, 1 batch-imported; the "
        "mean handling time was 2 h 38 min 24 s (1 h 25 min 33 s in business time)"
    ) in text
    for sentence in DEFINITIONS:
        assert sentence in text


def test_the_chart_shows_the_table_figures(client, boss, incidents):
    page = parse(client_for(client, boss).get(PERIOD, WEEKS))

    ((data, options),) = page.charts
    bars = next(d for d in data["datasets"] if d["type"] == "bar")
    line = next(d for d in data["datasets"] if d["type"] == "line")
    keys = ["2016-W09", "2016-W10", "2016-W11"]
    assert data["labels"] == keys
    assert all(page.cell(key, "label").startswith(key) for key in keys)
    assert bars["data"] == [int(page.cell(key, "count")) for key in keys] == [3, 1, 1]
    assert line["data"] == [round(9504.333 / 3600, 2), None, None]
    assert line["yAxisID"] == "y1" and "y1" in options["scales"]


def test_the_period_rows_name_their_days(client, boss, incidents):
    page = parse(client_for(client, boss).get(PERIOD, {**WEEKS, "start": "2016-03-01"}))

    # The range starts on a Tuesday: the first week is cut to the range, and says so.
    assert page.rows["2016-W09"]["label"].split() == [
        "2016-W09",
        "2016-03-01",
        "–",
        "2016-03-06",
        "partial",
        "period",
    ]
    assert page.rows["2016-W10"]["label"].split() == ["2016-W10", "2016-03-07", "–", "2016-03-13"]


def test_a_cut_week_has_no_change_ratio(client, boss, incidents):
    page = parse(client_for(client, boss).get(PERIOD, {**WEEKS, "start": "2016-03-01"}))

    # W09 cut to 03-01..03-06 (a1, a2, b1) against the whole W08 (b0): +2, no ratio;
    # W10 (a3) against the cut W09: -2, no ratio; W11 (b2) against the whole W10: 0, 0.0%.
    assert [page.cell(key, "count") for key in ("2016-W09", "2016-W10", "2016-W11")] == [
        "3",
        "1",
        "1",
    ]
    assert [page.cell(key, "change") for key in ("2016-W09", "2016-W10", "2016-W11")] == [
        "+2",
        "-2",
        "0",
    ]
    assert [page.cell(key, "change_ratio") for key in ("2016-W09", "2016-W10", "2016-W11")] == [
        "—",
        "—",
        "0.0%",
    ]


def test_a_cut_week_in_the_excel_export(client, boss, incidents):
    response = client_for(client, boss).get(
        PERIOD, {**WEEKS, "start": "2016-03-01", "end": "2016-03-16", "export": "xlsx"}
    )
    sheet = load_workbook(io.BytesIO(response.content)).active
    header = [cell.value for cell in sheet[4]]
    rows = {
        row[0]: dict(zip(header, row, strict=False))
        for row in sheet.iter_rows(min_row=5, max_row=7, values_only=True)
    }
    # W09 is cut at its start (03-01), W11 at its end (03-16).
    assert list(rows) == [
        "2016-W09 (partial period)",
        "2016-W10",
        "2016-W11 (partial period)",
    ]
    assert [row["Change ratio"] for row in rows.values()] == [None, None, None]
    assert [row["Change"] for row in rows.values()] == [2, -2, 0]
    assert rows["2016-W11 (partial period)"]["Last day"].date() == date(2016, 3, 16)


def test_business_time_is_written_in_hours_not_days(client, boss, incidents):
    # P1: a1 (3600 s handling, 1800 s business) and b1. With b1 at 211394 s and 213194 s
    # both means are (3600 + 211394) / 2 = (1800 + 213194) / 2 = 107497 s = 29 h 51 min 37 s.
    Incident.objects.filter(pk=incidents["b1"].pk).update(
        handling_seconds=211394, business_seconds=213194
    )
    query = {**MARCH, "period": "month", "priorities": ["P1"]}
    page = parse(client_for(client, boss).get(PERIOD, query))
    assert page.cell("2016-03", "handling") == "1 d 5 h 51 min 37 s"
    assert page.cell("2016-03", "business") == "29 h 51 min 37 s"
    assert page.cell("total", "business") == "29 h 51 min 37 s"
    assert "(29 h 51 min 37 s in business time)" in text_of(client.get(PERIOD, query))

    page = parse(client_for(client, boss, "zh-hans").get(PERIOD, query))
    assert page.cell("2016-03", "handling") == "1天5小时51分37秒"
    assert page.cell("2016-03", "business") == "29小时51分37秒"

    group = parse(client.get(GROUP, {**MARCH, "group_by": "priority"}))
    assert group.cell("P1", "business") == "29小时51分37秒"


def test_the_default_range_is_the_last_full_iso_week(client, boss, clock):
    # The clock stands on Tuesday 2026-03-03: the last full week is 02-23 to 03-01.
    assert last_full_week() == (date(2026, 2, 23), date(2026, 3, 1))
    response = client_for(client, boss).get(PERIOD)
    page = parse(response)

    assert [key for key in page.rows if key != "total"] == [
        f"2026-02-{day}" for day in range(23, 29)
    ] + ["2026-03-01"]
    assert page.cell("total", "count") == "0"
    assert 'value="2026-02-23"' in response.content.decode()


# ------------------------------------------------------------------------------ filters


def test_the_filters_select_incidents(client, boss, world, incidents):
    client_for(client, boss)

    def total(**query):
        return parse(client.get(PERIOD, {**MARCH, "period": "month", **query})).cell(
            "total", "count"
        )

    assert total() == "5"
    assert total(channels=["phone"]) == "2"  # a1, b2
    assert total(channels=["phone", "email"]) == "3"
    assert total(imported="yes") == "1"  # b1
    assert total(imported="no") == "4"
    assert total(companies=[world.hq.pk]) == "5"
    assert total(companies=[world.branch.pk]) == "0"
    assert total(priorities=["P1"]) == "2"  # a1, b1
    assert total(priorities=["P1", "P3"]) == "5"


@pytest.mark.parametrize(
    "query, message",
    [
        ({"start": "2016-03-31", "end": "2016-03-01"}, "before it starts on 2016-03-31"),
        ({"start": "2016-13-45", "end": "2016-03-31"}, "First day: This is not a date"),
        ({"start": "", "end": "2016-03-31"}, "First day: Enter a date."),
        ({"period": "fortnight"}, "Unknown period “fortnight”"),
        (
            {"start": "2015-01-01", "end": "2016-03-31", "period": "day"},
            "Count per: A report per day covers at most 366 days",
        ),
        (
            {"start": "0001-01-01", "end": "0001-01-05", "period": "week"},
            "First day: The first day 0001-01-01 is outside the days a report covers, "
            "1970-01-01 to 2999-12-31.",
        ),
        (
            {"start": "9999-12-25", "end": "9999-12-31", "period": "month"},
            "First day: The first day 9999-12-25 is outside the days a report covers",
        ),
        (
            {"start": "2999-12-25", "end": "3000-01-31", "period": "month"},
            "Last day: The last day 3000-01-31 is outside the days a report covers",
        ),
        (
            # 1030 years of 12 months.
            {"start": "1970-01-01", "end": "2999-12-31", "period": "month"},
            "Count per: The report would have 12360 rows, more than 5000: choose a coarser "
            "period or a shorter range.",
        ),
    ],
)
def test_bad_filters_are_explained_on_the_page(client, boss, incidents, query, message):
    response = client_for(client, boss).get(PERIOD, {**WEEKS, **query, "export": "xlsx"})

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")  # no workbook of a bad report
    text = text_of(response)
    assert message in text
    assert 'id="report-table"' not in response.content.decode()
    for sentence in DEFINITIONS:
        assert sentence in text


def test_an_unknown_grouping_is_explained(client, boss, incidents):
    response = client_for(client, boss).get(GROUP, {**MARCH, "group_by": "colour"})
    assert "Unknown grouping “colour”" in text_of(response)


# ------------------------------------------------------------------------------ groups


def test_the_group_page_by_channel(client, boss, incidents):
    page = parse(client_for(client, boss).get(GROUP, {**MARCH, "group_by": "channel"}))

    # March: a1 phone, a2 portal, a3 portal, b1 email, b2 phone.
    assert {key: page.cell(key, "count") for key in page.rows} == {
        "phone": "2",
        "portal": "2",
        "email": "1",
        "total": "5",
    }
    assert page.cell("email", "label") == "E-mail"
    assert page.cell("email", "share") == "20.0%"
    assert page.cell("email", "handling") == "4 h 55 min 13 s"
    ((data, options),) = page.charts
    assert options["indexAxis"] == "y"
    shown = dict(zip(data["labels"], data["datasets"][0]["data"], strict=True))
    assert shown == {page.cell(key, "label"): int(page.cell(key, "count")) for key in page.rows
                     if key != "total"}  # fmt: skip


def test_the_group_page_by_business_system_names_top_reporters(client, boss, world, incidents):
    page = parse(client_for(client, boss).get(GROUP, {**MARCH, "group_by": "business_system"}))

    # No incident has a business system: one row, zhang reported 3, desk 2.
    assert page.cell("", "count") == "5"
    assert page.cell("", "reporters") == (
        f"{world.zhang.get_full_name()} (3) {world.desk.get_full_name()} (2)"
    )


def test_the_tier_page(client, boss, incidents):
    IncidentSegment.objects.all().delete()

    def span(name, tier, seconds):
        incident = incidents[name]
        IncidentSegment.objects.create(
            incident=incident, state="in_progress", state_category="open", sla_running=True,
            tier=tier, channel=incident.channel, started_at=incident.created_at,
            ended_at=incident.created_at, wall_seconds=seconds, business_seconds=seconds // 2,
        )  # fmt: skip

    span("a1", 1, 3600)
    span("a2", 1, 1200)
    span("a2", 2, 6000)
    span("b1", 2, 17713)
    page = parse(client_for(client, boss).get(TIER, MARCH))

    assert {key: page.cell(key, "count") for key in page.rows} == {
        "1": "2",
        "2": "2",
        # The total counts each incident of the range once, with or without a tier span.
        "total": "5",
    }
    assert page.cell("1", "handling") == "40 min 0 s"  # (3600 + 1200) / 2
    assert page.cell("2", "handling") == "3 h 17 min 36 s"  # (6000 + 17713) / 2
    ((data, _options),) = page.charts
    assert data["labels"] == ["Tier 1", "Tier 2"]
    bars = next(d for d in data["datasets"] if d["type"] == "bar")
    assert bars["data"] == [2, 2]
    assert "Time in a tier:" in text_of(client.get(TIER, MARCH))


# ------------------------------------------------------------------------------ scope


def test_a_department_head_sees_only_their_department(client, head, boss, incidents):
    head_page = parse(client_for(client, head).get(PERIOD, WEEKS))
    # W09: a1, a2 (b1 is 信息中心's); W08 had nothing of 财务部; W10: a3; W11: none.
    assert {key: head_page.cell(key, "count") for key in head_page.rows} == {
        "2016-W09": "2",
        "2016-W10": "1",
        "2016-W11": "0",
        "total": "3",
    }
    assert head_page.cell("2016-W09", "change") == "+2"
    assert head_page.cell("2016-W09", "change_ratio") == "—"
    groups = parse(client.get(GROUP, {**MARCH, "group_by": "channel"}))
    assert {key: groups.cell(key, "count") for key in groups.rows} == {
        "phone": "1",
        "portal": "2",
        "total": "3",
    }
    assert "3 incidents were reported" in text_of(client.get(PERIOD, {**MARCH, "period": "month"}))

    boss_page = parse(client_for(client, boss).get(PERIOD, WEEKS))
    assert boss_page.cell("total", "count") == "5"


def test_the_excel_export_respects_scope(client, head, boss, incidents):
    def workbook_total(user):
        response = client_for(client, user).get(PERIOD, {**WEEKS, "export": "xlsx"})
        sheet = load_workbook(io.BytesIO(response.content)).active
        headers = [cell.value for cell in sheet[4]]
        total_row = next(row for row in sheet.iter_rows(min_row=5) if row[0].value == "Total")
        return total_row[headers.index("Incidents")].value

    assert workbook_total(head) == 3
    assert workbook_total(boss) == 5


# ------------------------------------------------------------------------------ excel


def test_the_excel_export_has_number_and_date_cells(client, boss, incidents):
    response = client_for(client, boss).get(PERIOD, {**WEEKS, "export": "xlsx"})

    assert response.status_code == 200
    assert response["Content-Type"] == (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    assert response["Content-Disposition"] == (
        'attachment; filename="incident-report-week-2016-02-29-2016-03-20.xlsx"'
    )
    sheet = load_workbook(io.BytesIO(response.content)).active
    headers = [cell.value for cell in sheet[4]]
    rows = {
        row[0].value: dict(zip(headers, [cell.value for cell in row], strict=False))
        for row in sheet.iter_rows(min_row=5, max_row=8)
    }
    assert list(rows) == ["2016-W09", "2016-W10", "2016-W11", "Total"]
    w09 = rows["2016-W09"]
    assert (w09["Incidents"], w09["Resolved"], w09["Still open"]) == (3, 3, 0)
    assert isinstance(w09["Incidents"], int)
    assert w09["First day"] == datetime(2016, 2, 29)
    assert w09["Last day"] == datetime(2016, 3, 6)
    assert w09["Mean handling time (s)"] == pytest.approx(28513 / 3)
    assert w09["Mean business time (s)"] == pytest.approx(15400 / 3)
    assert w09["SLA met ratio"] == pytest.approx(2 / 3)
    assert (w09["Previous period"], w09["Change"]) == (1, 2)
    assert rows["Total"]["Incidents"] == 5


def test_the_group_export_is_named_after_its_grouping(client, boss, incidents):
    response = client_for(client, boss).get(
        GROUP, {**MARCH, "group_by": "channel", "export": "xlsx"}
    )

    assert response["Content-Disposition"] == (
        'attachment; filename="incident-report-channel-2016-03-01-2016-03-31.xlsx"'
    )
    sheet = load_workbook(io.BytesIO(response.content)).active
    counts = {row[0].value: row[1].value for row in sheet.iter_rows(min_row=5, max_row=8)}
    assert counts == {"Phone": 2, "Self-service portal": 2, "E-mail": 1, "Total": 5}


def test_the_index_lists_the_reports(client, boss):
    response = client_for(client, boss).get(INDEX)
    content = response.content.decode()

    for url in (PERIOD, GROUP, TIER):
        assert f'href="{url}' in content
    for sentence in DEFINITIONS:
        assert sentence in text_of(response)


PAGES = [
    (PERIOD, WEEKS),
    (GROUP, {**MARCH, "group_by": "business_system"}),
    (GROUP, {**MARCH, "group_by": "requester"}),
    (TIER, MARCH),
]


def test_the_pages_run_as_many_queries_for_more_rows(client, boss, world, incidents):
    client_for(client, boss)

    def queries():
        report_rollup.refresh()  # as the beat task does every minute
        counts = []
        for url, query in PAGES:
            with CaptureQueriesContext(connection) as captured:
                assert client.get(url, query).status_code == 200
            counts.append(len(captured))
        return counts

    before = queries()
    for day, user in enumerate([world.li, world.wang, world.chen, world.sun], start=3):
        report(world, actor=user, title="又一个事件", created_at=local(2016, 3, day * 4, 9, 0))
    after = queries()

    assert after == before
    # session, user, scope rules, open states, a look for stale days per range read, the
    # report, its labels, the summary
    assert max(after) <= 20
