"""Incident reports: local-day buckets, ISO week-years, changes, averages, groups, tiers,
scope and the summary sentence. Every expected figure is worked out by hand from the
incidents below, whose figures are set directly (as the figures service would store them).

    name  reported (Beijing time)   bucket notes                 state     handling  business  SLA
    i0    2026-02-18 12:00          W08, Feb                     new       -         -         -
    i1    2026-02-27 10:00          W09, Feb                     new       -         -         -
    i2    2026-03-01 23:30 (15:30Z) W09 (Sunday), Mar            resolved  3600      1800      met
    i3    2026-03-02 00:30 (16:30Z) W10 (UTC: W09), Mar          resolved  7200      3600      no
    i4    2026-03-02 09:00          W10, Mar (by 'other')        new       -         -         -
    i5    2026-03-31 23:59          W14, Mar, Q1                 closed    17713     10000     met
    i6    2026-04-01 00:10 (03-31Z) W14, Apr, Q2                 cancelled -         -         -
    i7    2026-12-31 22:00          2026-W53, Q4 2026            new       -         -         -
    i8    2027-01-01 00:30 (2026Z)  2026-W53 (ISO), 2027-Q1      new       -         -         -
    i9    2027-01-04 09:00          2027-W01                     new       -         -         -

March: i2, i3, i5 by zhang (财务部 of HQ), i4 by 'other' (a branch); i2, i3, i4 on the
billing system, i5 on none; i3 came in through the import channel, i5 from ServiceNow.
"""

from datetime import UTC, date, timedelta

import pytest
from django.utils import translation

from apps.bjgas_ops.models import Incident, IncidentSegment
from apps.bjgas_ops.services import report_rollup, reports
from apps.bjgas_ops.services.reports import (
    Bucket,
    ReportError,
    ReportFilter,
    bucket_count,
    describe_range,
    format_duration,
    group_report,
    incidents_for,
    narrative,
    period_report,
    tier_report,
)
from apps.bjgas_platform import roles as r
from apps.bjgas_platform.tests.factories import (
    BusinessSystemFactory,
    ScopeRuleFactory,
    UserFactory,
)

from .incident_fixtures import *  # noqa: F403 (the fixtures clock and world)
from .incident_fixtures import local, report

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True, params=["rollup", "incidents"])
def counted_from(request, monkeypatch):
    """Run every test twice: reports read from the daily roll-up where they may, and
    reports that always count the incidents; both must give the same figures."""
    if request.param == "incidents":
        monkeypatch.setattr(reports, "reads_rollup", lambda user, flt: False)
    return request.param


def fresh(counted_from) -> int:
    """Recount the stale days first; return the queries a report over the roll-up adds
    (one look for stale days per range it reads)."""
    report_rollup.refresh()
    return 1 if counted_from == "rollup" else 0


MARCH = ReportFilter(date(2026, 3, 1), date(2026, 3, 31))
REPORTED = {
    "i0": local(2026, 2, 18, 12, 0),
    "i1": local(2026, 2, 27, 10, 0),
    "i2": local(2026, 3, 1, 23, 30),
    "i3": local(2026, 3, 2, 0, 30),
    "i4": local(2026, 3, 2, 9, 0),
    "i5": local(2026, 3, 31, 23, 59),
    "i6": local(2026, 4, 1, 0, 10),
    "i7": local(2026, 12, 31, 22, 0),
    "i8": local(2027, 1, 1, 0, 30),
    "i9": local(2027, 1, 4, 9, 0),
}


@pytest.fixture
def billing(db):
    return BusinessSystemFactory(code="BILLING", name="营收收费系统")


@pytest.fixture
def incidents(world, billing):
    made = {}
    for name, moment in REPORTED.items():
        actor = world.other if name == "i4" else world.zhang
        made[name] = report(world, actor=actor, title=f"事件 {name}", created_at=moment)
    by_pk = {name: incident.pk for name, incident in made.items()}

    def update(name, **fields):
        Incident.objects.filter(pk=by_pk[name]).update(**fields)

    update("i2", state="resolved", resolved_at=local(2026, 3, 2, 0, 30), handling_seconds=3600,
           business_seconds=1800, sla_met=True, priority="P1", business_system=billing,
           assignee=world.li, tier=2)  # fmt: skip
    update("i3", state="resolved", resolved_at=local(2026, 3, 2, 2, 30), handling_seconds=7200,
           business_seconds=3600, sla_met=False, priority="P2", business_system=billing,
           channel="import", severity="A")  # fmt: skip
    update("i4", priority="P3", business_system=billing, sla_met=None)
    update("i5", state="closed", resolved_at=local(2026, 4, 1, 4, 54), handling_seconds=17713,
           business_seconds=10000, sla_met=True, priority="P3", source_system="servicenow",
           source_key="INC1")  # fmt: skip
    update("i6", state="cancelled")
    for name in ("i0", "i1", "i4", "i6", "i7", "i8", "i9"):
        update(name, resolved_at=None, handling_seconds=None, business_seconds=None, sla_met=None)
    return {name: Incident.objects.get(pk=pk) for name, pk in by_pk.items()}


def counts(report):
    return [(row.key, row.figures.count) for row in report.rows]


# ------------------------------------------------------------------------------ buckets


def test_created_day_is_the_local_day_not_the_utc_one(incidents):
    i2, i3 = incidents["i2"], incidents["i3"]
    assert i2.created_at.astimezone(UTC).date() == date(2026, 3, 1)
    assert i3.created_at.astimezone(UTC).date() == date(2026, 3, 1)  # UTC says Sunday
    assert (i2.created_day, i3.created_day) == (date(2026, 3, 1), date(2026, 3, 2))

    days = period_report(None, ReportFilter(date(2026, 3, 1), date(2026, 3, 2)), "day")

    assert counts(days) == [("2026-03-01", 1), ("2026-03-02", 2)]
    assert days.rows[0].previous.count == 0  # 2026-02-28


def test_weeks_are_iso_weeks_starting_monday_with_the_change_against_the_previous(incidents):
    weeks = period_report(None, ReportFilter(date(2026, 2, 16), date(2026, 3, 8)), "week")

    assert counts(weeks) == [("2026-W08", 1), ("2026-W09", 2), ("2026-W10", 2)]
    assert [(row.start, row.end) for row in weeks.rows] == [
        (date(2026, 2, 16), date(2026, 2, 22)),
        (date(2026, 2, 23), date(2026, 3, 1)),
        (date(2026, 3, 2), date(2026, 3, 8)),
    ]
    w08, w09, w10 = weeks.rows
    assert (w08.previous.count, w08.count_change, w08.count_change_ratio) == (0, 1, None)
    assert (w09.previous.count, w09.count_change, w09.count_change_ratio) == (1, 1, 1.0)
    assert (w10.count_change, w10.count_change_ratio) == (0, 0.0)
    # W09 resolved only i2 (3600 s), W10 only i3 (7200 s).
    assert w09.figures.mean_handling_seconds == 3600
    assert w10.handling_change_seconds == 3600
    assert w08.handling_change_seconds is None
    assert weeks.total.count == 5


def test_week_labels_follow_the_language(incidents):
    flt = ReportFilter(date(2026, 2, 23), date(2026, 3, 1))
    with translation.override("en"):
        assert period_report(None, flt, "week").rows[0].label == "2026-W09"
    with translation.override("zh-hans"):
        assert period_report(None, flt, "week").rows[0].label == "2026年第9周"


def test_a_range_starting_inside_a_week_compares_with_the_whole_previous_week(
    incidents, counted_from, django_assert_max_num_queries
):
    flt = ReportFilter(date(2026, 2, 28), date(2026, 3, 8))
    # content type, open states, rows, previous week
    with django_assert_max_num_queries(4 + 2 * fresh(counted_from)):
        weeks = period_report(None, flt, "week")

    assert counts(weeks) == [("2026-W09", 1), ("2026-W10", 2)]  # i1 (02-27) is before
    assert weeks.rows[0].start == date(2026, 2, 28)
    assert weeks.rows[0].previous.count == 1  # i0 in the whole of W08


def test_a_period_report_is_one_grouped_query_when_the_range_starts_a_bucket(
    incidents, counted_from, django_assert_max_num_queries
):
    # content type, open states, rows with W08
    with django_assert_max_num_queries(3 + fresh(counted_from)):
        period_report(None, ReportFilter(date(2026, 2, 23), date(2026, 3, 8)), "week")


def test_the_iso_week_year_differs_from_the_calendar_year(incidents):
    weeks = period_report(None, ReportFilter(date(2026, 12, 28), date(2027, 1, 10)), "week")

    # 2027-01-01 (Friday) belongs to ISO week 53 of 2026.
    assert counts(weeks) == [("2026-W53", 2), ("2027-W01", 1)]
    assert Bucket.of("week", date(2027, 1, 1)).key == "2026-W53"


def test_months_quarters_and_years_include_empty_buckets(incidents):
    months = period_report(None, ReportFilter(date(2026, 2, 1), date(2026, 4, 30)), "month")
    quarters = period_report(None, ReportFilter(date(2026, 1, 1), date(2027, 3, 31)), "quarter")
    years = period_report(None, ReportFilter(date(2026, 1, 1), date(2027, 12, 31)), "year")

    assert counts(months) == [("2026-02", 2), ("2026-03", 4), ("2026-04", 1)]
    assert months.rows[1].count_change == 2
    assert counts(quarters) == [
        ("2026-Q1", 6),
        ("2026-Q2", 1),
        ("2026-Q3", 0),
        ("2026-Q4", 1),
        ("2027-Q1", 2),
    ]
    assert counts(years) == [("2026", 8), ("2027", 2)]
    with translation.override("en"):
        assert Bucket.of("quarter", date(2026, 5, 1)).label == "2026 Q2"
    with translation.override("zh-hans"):
        assert Bucket.of("quarter", date(2026, 5, 1)).label == "2026年第2季度"
        assert Bucket.of("month", date(2026, 3, 9)).label == "2026年3月"


# ------------------------------------------------------------------------------ figures


def test_figures_of_a_month(incidents):
    march = period_report(None, MARCH, "month")

    (row,) = march.rows
    figures = row.figures
    assert (figures.count, figures.resolved, figures.open, figures.imported) == (4, 3, 1, 2)
    assert figures.mean_handling_seconds == pytest.approx((3600 + 7200 + 17713) / 3)
    assert figures.mean_business_seconds == pytest.approx((1800 + 3600 + 10000) / 3)
    assert (figures.sla_met, figures.sla_breached) == (2, 1)
    assert figures.sla_met_ratio == pytest.approx(2 / 3)
    assert march.total == figures
    assert row.previous.count == 2  # February: i0, i1
    assert figures.as_dict()["mean_handling_seconds"] == pytest.approx(9504.3333, abs=1e-3)


def test_the_filter_selects_imported_priorities_systems_and_companies(world, incidents, billing):
    def count(**options):
        return incidents_for(None, ReportFilter(MARCH.start, MARCH.end, **options)).count()

    assert count(imported=True) == 2  # i3 (import channel), i5 (ServiceNow)
    assert count(imported=False) == 2
    assert count(priorities=("P3",)) == 2
    assert count(business_systems=(billing.pk,)) == 3
    assert count(companies=(world.branch.pk,)) == 1
    assert count(channels=("import",)) == 1


def test_a_range_ending_before_it_starts_is_refused():
    with pytest.raises(ReportError):
        ReportFilter(date(2026, 3, 2), date(2026, 3, 1))


@pytest.mark.parametrize(
    "start, end, field",
    [
        (date(1, 1, 1), date(1, 1, 5), "start"),
        (date(1969, 12, 31), date(2026, 3, 1), "start"),
        (date(9999, 12, 25), date(9999, 12, 31), "start"),
        (date(2999, 12, 25), date(3000, 1, 1), "end"),
    ],
)
def test_days_outside_the_reported_years_are_refused(start, end, field):
    with translation.override("en"), pytest.raises(ReportError) as refused:
        ReportFilter(start, end)
    assert refused.value.field == field
    assert "is outside the days a report covers, 1970-01-01 to 2999-12-31" in str(refused.value)


def test_the_first_and_last_reported_days_make_reports(incidents):
    weeks = period_report(None, ReportFilter(date(1970, 1, 1), date(1970, 1, 5)), "week")
    # 1970-01-01 is a Thursday of 1970-W01 (12-29 to 01-04); 01-05 starts W02.
    assert counts(weeks) == [("1970-W01", 0), ("1970-W02", 0)]
    months = period_report(None, ReportFilter(date(2999, 12, 25), date(2999, 12, 31)), "month")
    assert counts(months) == [("2999-12", 0)]
    assert months.rows[0].partial


@pytest.mark.parametrize(
    "period, start, end, buckets",
    [
        ("day", date(2016, 1, 1), date(2016, 12, 31), 366),
        ("week", date(2016, 2, 29), date(2016, 3, 20), 3),
        ("week", date(2016, 3, 1), date(2016, 3, 21), 4),
        ("month", date(2016, 1, 15), date(2016, 3, 1), 3),
        ("quarter", date(2016, 2, 1), date(2017, 1, 1), 5),
        ("year", date(1970, 1, 1), date(2999, 12, 31), 1030),
    ],
)
def test_bucket_count(period, start, end, buckets):
    assert bucket_count(period, start, end) == buckets


def test_a_period_report_has_at_most_5000_rows(db, django_assert_max_num_queries):
    # 2000-01-01 + 4999 days: exactly 5000 days.
    flt = ReportFilter(date(2000, 1, 1), date(2000, 1, 1) + timedelta(days=4999))
    assert len(period_report(None, flt, "day").rows) == 5000
    longer = ReportFilter(flt.start, flt.end + timedelta(days=1))
    with (
        translation.override("en"),
        django_assert_max_num_queries(0),
        pytest.raises(ReportError) as refused,
    ):
        period_report(None, longer, "day")
    assert refused.value.field == "period"
    assert str(refused.value) == (
        "The report would have 5001 rows, more than 5000: choose a coarser period or a "
        "shorter range."
    )


def test_cut_buckets_are_partial_and_have_no_change_ratio(incidents):
    # W09 cut to 02-28..03-01 (i2; i1 on 02-27 is before) against the whole W08 (i0);
    # W10 whole (i3, i4) against the cut W09.
    w09, w10 = period_report(None, ReportFilter(date(2026, 2, 28), date(2026, 3, 8)), "week").rows
    assert (w09.partial, w09.figures.count, w09.previous.count) == (True, 1, 1)
    assert (w09.count_change, w09.count_change_ratio) == (0, None)
    assert (w10.partial, w10.previous_partial, w10.figures.count) == (False, True, 2)
    assert (w10.count_change, w10.count_change_ratio) == (1, None)

    # The last bucket cut at its end: W10 whole against the whole W09 (i2 and i1).
    w10, w11 = period_report(None, ReportFilter(date(2026, 3, 2), date(2026, 3, 10)), "week").rows
    assert (w10.partial, w10.previous.count, w10.count_change_ratio) == (False, 2, 0.0)
    assert (w11.partial, w11.end, w11.figures.count, w11.count_change_ratio) == (
        True,
        date(2026, 3, 10),
        0,
        None,
    )
    assert w11.count_change == -2


# ------------------------------------------------------------------------------ groups


def by_key(report):
    return {row.key: (row.label, row.figures.count) for row in report.rows}


def test_by_business_system_with_top_reporters(world, incidents, billing):
    with translation.override("zh-hans"):
        systems = group_report(None, MARCH, "business_system")

    assert [(row.key, row.label, row.figures.count) for row in systems.rows] == [
        (str(billing.pk), "营收收费系统", 3),
        ("", "未指定", 1),
    ]
    billing_row = systems.rows[0]
    assert billing_row.extra["top_reporters"] == [("张会计", 2), ("other", 1)]
    assert systems.rows[1].extra["top_reporters"] == [("张会计", 1)]
    assert billing_row.figures.mean_handling_seconds == pytest.approx((3600 + 7200) / 2)
    assert systems.total.count == 4


def test_by_company_requester_channel_engineer_tier_and_severity(world, incidents):
    with translation.override("en"):
        assert by_key(group_report(None, MARCH, "company")) == {
            str(world.hq.pk): ("集团总部", 3),
            str(world.branch.pk): ("城东分公司", 1),
        }
        assert by_key(group_report(None, MARCH, "requester")) == {
            str(world.zhang.pk): ("张会计", 3),
            str(world.other.pk): ("other", 1),
        }
        assert by_key(group_report(None, MARCH, "channel")) == {
            "portal": ("Self-service portal", 3),
            "import": ("Batch import", 1),
        }
        assert by_key(group_report(None, MARCH, "assignee")) == {
            "": ("Not set", 3),
            str(world.li.pk): (world.li.get_full_name(), 1),
        }
        assert by_key(group_report(None, MARCH, "tier")) == {
            "": ("Not set", 3),
            "2": ("Tier 2", 1),
        }
        assert by_key(group_report(None, MARCH, "severity")) == {
            "": ("Not set", 3),
            "A": ("A (answer within 2 h)", 1),
        }


def test_by_priority_largest_group_first(incidents):
    with translation.override("en"):
        priorities = group_report(None, MARCH, "priority")

    assert priorities.rows[0].key == "P3"
    assert by_key(priorities) == {
        "P3": ("P3 medium", 2),
        "P1": ("P1 critical", 1),
        "P2": ("P2 high", 1),
    }
    p3 = priorities.rows[0].figures
    assert (p3.resolved, p3.open, p3.mean_handling_seconds) == (1, 1, 17713)


def test_by_sla_verdict(incidents):
    with translation.override("zh-hans"):
        verdicts = group_report(None, MARCH, "sla")

    assert by_key(verdicts) == {"met": ("达标", 2), "breached": ("未达标", 1), "": ("无结论", 1)}


def test_an_unknown_group_is_refused(incidents):
    with pytest.raises(ReportError) as refused:
        group_report(None, MARCH, "colour")
    assert refused.value.field == "group_by"


# ------------------------------------------------------------------------------ tiers


@pytest.fixture
def segments(incidents):
    """Spans by hand (seconds after the report): see each row's comment."""
    IncidentSegment.objects.all().delete()

    def span(name, tier, state, category, start, end, business):
        incident = incidents[name]
        begin = incident.created_at
        IncidentSegment.objects.create(
            incident=incident,
            state=state,
            state_category=category,
            sla_running=category == "open",
            tier=tier,
            channel="portal",
            started_at=begin + timedelta(seconds=start),
            ended_at=None if end is None else begin + timedelta(seconds=end),
            wall_seconds=0 if end is None else end - start,
            business_seconds=business,
        )

    span("i2", 1, "new", "open", 0, 600, 500)
    span("i2", 1, "in_progress", "open", 600, 1800, 1000)
    span("i2", 2, "in_progress", "open", 1800, 3600, 1800)
    span("i2", 2, "resolved", "resolved", 3600, 8000, 0)  # after the resolution: left out
    span("i3", 1, "in_progress", "open", 0, 600, 600)
    span("i3", 2, "waiting_vendor", "waiting", 600, 7200, 0)  # waiting counts as tier time
    span("i3", 2, "resolved", "resolved", 7200, 9000, 0)
    span("i4", None, "new", "open", 0, None, 0)  # still running: counted, no seconds yet
    span("i5", 3, "in_progress", "open", 0, 17713, 10000)
    span("i1", 1, "in_progress", "open", 0, 999, 999)  # February: outside the range


def test_tier_report_from_segments(segments, counted_from, django_assert_max_num_queries):
    with translation.override("zh-hans"):
        # content type, open states, tiers, total
        with django_assert_max_num_queries(4 + 2 * fresh(counted_from)):
            tiers = tier_report(None, MARCH)

    rows = {row.key: row for row in tiers.rows}
    assert [(row.key, row.label) for row in tiers.rows] == [
        ("1", "一线"),
        ("2", "二线"),
        ("3", "三线"),
        ("", "未指定"),
    ]
    assert rows["1"].figures.count == 2
    assert rows["1"].figures.mean_handling_seconds == (600 + 1200 + 600) / 2
    assert rows["1"].figures.mean_business_seconds == (500 + 1000 + 600) / 2
    assert rows["2"].figures.count == 2
    assert rows["2"].figures.mean_handling_seconds == (1800 + 6600) / 2
    assert rows["2"].figures.mean_business_seconds == (1800 + 0) / 2
    assert rows["3"].figures.mean_handling_seconds == 17713
    assert rows[""].figures.count == 1
    assert rows[""].figures.mean_handling_seconds is None
    # Tier rows count incidents and time only; the total is that of the incidents.
    assert rows["1"].figures.resolved is None and rows["1"].figures.sla_met_ratio is None
    assert (tiers.total.count, tiers.total.resolved, tiers.total.open) == (4, 3, 1)
    assert tiers.total.mean_handling_seconds == pytest.approx((3600 + 7200 + 17713) / 3)
    assert len(tiers.definitions) == 3


# ------------------------------------------------------------------------------ scope


@pytest.fixture
def head(world):
    """The head of the finance department: sees that department's incidents only."""
    user = UserFactory(
        username="fin_head", company=world.hq, department=world.fin, roles=[r.DEPARTMENT_HEAD]
    )
    ScopeRuleFactory(name="财务部负责人", user=user, departments=[world.fin])
    return user


def test_a_department_head_counts_only_their_department(head, world, incidents, segments):
    month = period_report(head, MARCH, "month")
    companies = group_report(head, MARCH, "company")
    tiers = tier_report(head, MARCH)

    # i2, i3, i5 were reported in 财务部; i4 by the branch's 'other' is not theirs.
    assert month.total.count == 3
    assert month.rows[0].previous.count == 2  # i0, i1 by zhang in February
    assert by_key(companies) == {str(world.hq.pk): ("集团总部", 3)}
    assert {row.key for row in tiers.rows} == {"1", "2", "3"}
    assert tiers.total.count == 3
    with translation.override("en"):
        assert narrative(head, MARCH, "en").startswith("2026-03: 3 incidents were reported")
    assert period_report(world.other, MARCH, "month").total.count == 1  # their own


# ------------------------------------------------------------------------------ text


def test_format_duration():
    assert format_duration(17713) == "4小时55分13秒"
    assert format_duration(17713, "en") == "4 h 55 min 13 s"
    assert format_duration(93605) == "1天2小时0分5秒"
    assert format_duration(93605, "en") == "1 d 2 h 0 min 5 s"
    assert format_duration(59.6) == "1分0秒"
    assert format_duration(5, "en") == "5 s"
    assert format_duration(None) == "—"


def test_format_duration_of_business_time_has_no_days():
    # 107497 s = 29 * 3600 + 51 * 60 + 37: working hours, so no '1 day'.
    assert format_duration(107497, days=False) == "29小时51分37秒"
    assert format_duration(107497, "en", days=False) == "29 h 51 min 37 s"
    assert format_duration(107497) == "1天5小时51分37秒"
    assert format_duration(-90000, "en", days=False) == "-25 h 0 min 0 s"
    assert format_duration(59.6, days=False) == "1分0秒"


def test_the_narrative_writes_business_time_in_hours(incidents):
    # March: i2, i3, i5 resolved; business (1800 + 3600 + 316091) / 3 = 107163.67 s.
    Incident.objects.filter(pk=incidents["i5"].pk).update(business_seconds=316091)
    text = narrative(None, MARCH, "en")
    assert "the mean handling time was 2 h 38 min 24 s (29 h 46 min 4 s in business time)" in (text)


def test_describe_range():
    with translation.override("zh-hans"):
        week = ReportFilter(date(2016, 2, 29), date(2016, 3, 6))
        assert describe_range(week, today=date(2026, 3, 3)) == "2016年第9周（2月29日至3月6日）"
        assert (
            describe_range(week, today=date(2016, 3, 9)) == "上周（2016年第9周，2月29日至3月6日）"
        )
        assert describe_range(ReportFilter(date(2016, 3, 1), date(2016, 3, 31))) == "2016年3月"
        assert describe_range(ReportFilter(date(2016, 3, 2), date(2016, 3, 9))) == (
            "2016年3月2日至2016年3月9日"
        )
    with translation.override("en"):
        assert describe_range(week, today=date(2026, 3, 3)) == "2016-W09 (2/29 to 3/6)"


def test_narrative_in_chinese(incidents):
    assert narrative(None, MARCH) == (
        "2026年3月共提报事件4项，1项事件还在处理中，批量导入2项，"
        "事件的平均处理时间为2小时38分24秒（按工作时间计1小时25分33秒），SLA达标率为66.7%。"
        "报障主要集中在营收收费系统（3项，占75.0%）。"
    )


def test_narrative_in_english(incidents):
    assert narrative(None, MARCH, "en") == (
        "2026-03: 4 incidents were reported, 1 still being handled, 2 batch-imported; the "
        "mean handling time was 2 h 38 min 24 s (1 h 25 min 33 s in business time), and "
        "66.7% of those with an SLA verdict met it. Most reports concerned 营收收费系统 (3, 75.0%)."
    )


def test_narrative_of_last_week(incidents, clock):
    # The clock stands on Tuesday 2026-03-03: W09 (02-23 to 03-01) is last week.
    week = ReportFilter(date(2026, 2, 23), date(2026, 3, 1))
    assert narrative(None, week) == (
        "上周（2026年第9周，2月23日至3月1日）共提报事件2项，1项事件还在处理中，批量导入0项，"
        "事件的平均处理时间为1小时0分0秒（按工作时间计30分0秒），SLA达标率为100.0%。"
        "报障主要集中在营收收费系统（1项，占50.0%）。"
    )


def test_narrative_numbers_are_the_tables_numbers(incidents):
    for flt in (MARCH, ReportFilter(date(2026, 2, 16), date(2026, 3, 8))):
        total = period_report(None, flt, "week").total
        text = narrative(None, flt, "en")
        assert (
            f": {total.count} incidents were reported, {total.open} still being handled, "
            f"{total.imported} batch-imported; the mean handling time was "
            f"{format_duration(total.mean_handling_seconds, 'en')}"
        ) in text


def test_narrative_falls_back_to_the_company_without_business_systems(incidents):
    with translation.override("en"):
        text = narrative(None, ReportFilter(date(2026, 12, 28), date(2027, 1, 10)), "en")
    assert text == (
        "2026-12-28 to 2027-01-10: 3 incidents were reported, 3 still being handled, "
        "0 batch-imported; none has been resolved yet. Most reports concerned 集团总部 (3, 100.0%)."
    )


def test_narrative_of_a_quiet_period(db):
    assert (
        narrative(None, ReportFilter(date(2030, 1, 1), date(2030, 1, 31)))
        == "2030年1月未提报事件。"
    )
