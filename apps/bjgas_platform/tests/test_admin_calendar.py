"""Desk pages of business calendars and public holidays, and the calendar tester.

The standard calendar here works Monday to Friday 08:30–12:00 and 13:00–17:30 (8 h a
day) and observes China's public holidays; every expected time is worked out by hand.
"""

from datetime import date, time
from html import escape
from urllib.parse import urlencode

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.bjgas_platform import roles as r
from apps.bjgas_platform.admin.calendar import holiday_warning
from apps.bjgas_platform.models import (
    BusinessCalendar,
    CalendarException,
    HolidayKind,
    PublicHoliday,
    WorkingPeriod,
)
from apps.bjgas_platform.services.business_time import seed_public_holidays

from .factories import UserFactory

pytestmark = pytest.mark.django_db

WARNING_START = "The public holidays and make-up working days of {year} have not been entered"
NO_TIME = "The calendar has no working time: add working periods or mark it 7×24."


@pytest.fixture
def administrator(client):
    user = UserFactory(username="cal-admin", roles=[r.ADMINISTRATOR], is_staff=True)
    client.force_login(user)
    client.cookies["django_language"] = "en"  # the desk ignores Accept-Language
    return user


@pytest.fixture
def standard():
    calendar = BusinessCalendar.objects.create(code="T-STD", name="测试工作日")
    for weekday in range(5):
        for start, end in ((time(8, 30), time(12)), (time(13), time(17, 30))):
            WorkingPeriod.objects.create(calendar=calendar, weekday=weekday, start=start, end=end)
    seed_public_holidays(range(2026, 2027))
    return calendar


# ------------------------------------------------------------------ saving a calendar


def calendar_data(periods, exceptions=(), existing=(), **fields):
    """Return the POST data of a calendar page: its fields, periods and exceptions.

    `periods` are (weekday, "HH:MM", "HH:MM") rows; `existing` gives the saved periods'
    ids, in order, for the first rows; a row with a fourth item True is ticked for deletion.
    """
    data = {
        "code": "T-NEW",
        "name": "新日历",
        "makeup_day_weekday": "0",
        "observes_public_holidays": "on",
        "description": "",
        **fields,
    }
    data.update(
        {
            "periods-TOTAL_FORMS": str(len(periods)),
            "periods-INITIAL_FORMS": str(len(existing)),
            "periods-MIN_NUM_FORMS": "0",
            "periods-MAX_NUM_FORMS": "1000",
        }
    )
    for i, row in enumerate(periods):
        weekday, start, end = row[:3]
        data[f"periods-{i}-weekday"] = str(weekday)
        data[f"periods-{i}-start"] = start
        data[f"periods-{i}-end"] = end
        if i < len(existing):
            data[f"periods-{i}-id"] = str(existing[i])
        if len(row) > 3 and row[3]:
            data[f"periods-{i}-DELETE"] = "on"
    data.update(
        {
            "exceptions-TOTAL_FORMS": str(len(exceptions)),
            "exceptions-INITIAL_FORMS": "0",
            "exceptions-MIN_NUM_FORMS": "0",
            "exceptions-MAX_NUM_FORMS": "1000",
        }
    )
    for i, row in enumerate(exceptions):
        for name, value in row.items():
            data[f"exceptions-{i}-{name}"] = value
    return data


def refusals(response) -> list[str]:
    """Return the calendar-wide problems and the rows' own errors of a refused save."""
    found = []
    for inline in response.context["inline_admin_formsets"]:
        found += [str(e) for e in inline.formset.non_form_errors()]
        for errors in inline.formset.errors:
            for messages in errors.values():
                found += [str(m) for m in messages]
    return found


def test_a_sound_calendar_is_saved(client, administrator):
    data = calendar_data(
        [(0, "08:30", "12:00"), (0, "13:00", "17:30"), (1, "08:30", "17:30")],
        exceptions=[{"date": "2026-12-31", "is_working": "", "name": "年终盘点"}],
    )

    response = client.post(reverse("admin:bjgas_platform_businesscalendar_add"), data)

    assert response.status_code == 302
    calendar = BusinessCalendar.objects.get(code="T-NEW")
    assert [str(p) for p in calendar.periods.all()] == [
        "Monday 08:30–12:00",
        "Monday 13:00–17:30",
        "Tuesday 08:30–17:30",
    ]
    assert calendar.exceptions.get().date == date(2026, 12, 31)


def test_a_7x24_calendar_needs_no_periods(client, administrator):
    data = calendar_data([], is_24x7="on")

    response = client.post(reverse("admin:bjgas_platform_businesscalendar_add"), data)

    assert response.status_code == 302
    assert BusinessCalendar.objects.get(code="T-NEW").is_24x7


@pytest.mark.parametrize(
    ("periods", "exceptions", "expected"),
    [
        pytest.param([], [], [NO_TIME], id="no-working-time"),
        pytest.param(
            [(0, "08:30", "12:00"), (0, "11:00", "13:00"), (1, "08:30", "12:00")],
            [],
            ["Monday 08:30–12:00 and Monday 11:00–13:00 overlap."],
            id="overlapping-periods",
        ),
        pytest.param(
            [(2, "17:30", "08:30")],
            [],
            ["A working period must end after it starts (same day)."],
            id="end-before-start",
        ),
        pytest.param(
            [(0, "08:30", "12:00")],
            [{"date": "2026-12-26", "is_working": "on", "name": "加班"}],
            ["A working exception needs its hours: fill in from and to."],
            id="working-exception-without-hours",
        ),
    ],
)
def test_an_unsound_calendar_is_refused(client, administrator, periods, exceptions, expected):
    data = calendar_data(periods, exceptions)

    response = client.post(reverse("admin:bjgas_platform_businesscalendar_add"), data)

    assert response.status_code == 200, "a refused save shows the page again"
    assert refusals(response) == expected
    content = response.content.decode()
    for message in expected:
        assert escape(message) in content
    assert not BusinessCalendar.objects.filter(code="T-NEW").exists()
    assert not WorkingPeriod.objects.filter(calendar__code="T-NEW").exists()


def test_calendar_wide_problems_are_listed_above_the_form(client, administrator):
    data = calendar_data([])

    response = client.post(reverse("admin:bjgas_platform_businesscalendar_add"), data)

    content = response.content.decode()
    banner = content.index("The calendar was not saved: its working periods have these problems.")
    assert content.index(escape(NO_TIME), banner) > banner


def test_removing_every_period_of_a_saved_calendar_is_refused(client, administrator, standard):
    saved = list(standard.periods.order_by("weekday", "start"))
    data = calendar_data(
        [(p.weekday, f"{p.start:%H:%M}", f"{p.end:%H:%M}", True) for p in saved],
        existing=[p.pk for p in saved],
        code=standard.code,
        name=standard.name,
    )

    response = client.post(
        reverse("admin:bjgas_platform_businesscalendar_change", args=[standard.pk]), data
    )

    assert response.status_code == 200
    assert refusals(response) == [NO_TIME]
    assert standard.periods.count() == 10


# -------------------------------------------------------------------------- the tester


def open_tester(client, calendar, **params):
    url = reverse("admin:bjgas_platform_businesscalendar_calendar_tester", args=[calendar.pk])
    return client.get(f"{url}?{urlencode(params)}" if params else url)


def rows(response) -> dict[str, str]:
    result = response.context["result"]
    assert result is not None, response.context["form"].errors
    return dict(result.rows())


def test_the_calendar_page_links_to_its_tester(client, administrator, standard):
    response = client.get(
        reverse("admin:bjgas_platform_businesscalendar_change", args=[standard.pk])
    )

    tester_url = reverse(
        "admin:bjgas_platform_businesscalendar_calendar_tester", args=[standard.pk]
    )
    assert response.status_code == 200
    assert f'href="{tester_url}"' in response.content.decode()


def test_tester_after_hours_on_friday_falls_due_monday_after_lunch(client, administrator, standard):
    # Friday 2026-11-27 18:00: nothing left that day, the weekend is off; Monday 08:30
    # + 4 h: 3.5 h until the lunch break, 0.5 h after it -> Monday 13:30.
    before = (BusinessCalendar.objects.count(), WorkingPeriod.objects.count())

    response = open_tester(client, standard, start="2026-11-27 18:00", limit="4h")

    assert response.status_code == 200
    assert rows(response) == {
        "Start": "2026-11-27 18:00 Friday",
        "The clock starts": "2026-11-30 08:30 Monday",
        "Limit": "4 h 00 min",
        "Falls due": "2026-11-30 13:30 Monday",
    }
    assert "2026-11-30 13:30 Monday" in response.content.decode()
    assert (BusinessCalendar.objects.count(), WorkingPeriod.objects.count()) == before


def test_tester_skips_pauses(client, administrator, standard):
    # Monday 2026-11-30 08:00, 4 h, paused 09:00–10:00: the clock starts at 08:30, runs
    # 0.5 h until the pause, then 10:00–12:00 (2 h), then 13:00 + 1.5 h -> 14:30.
    response = open_tester(
        client,
        standard,
        start="2026-11-30 08:00",
        limit="4h",
        pauses="2026-11-30 09:00/2026-11-30 10:00",
    )

    assert rows(response)["The clock starts"] == "2026-11-30 08:30 Monday"
    assert rows(response)["Falls due"] == "2026-11-30 14:30 Monday"


def test_tester_counts_business_time_between_two_moments(client, administrator, standard):
    # Friday 2026-11-27 16:00 to Monday 2026-11-30 10:00: Friday 16:00–17:30 (1.5 h) and
    # Monday 08:30–10:00 (1.5 h) = 3 h. A pause Saturday 10:00 – Monday 09:00 takes out
    # Monday 08:30–09:00 only (0.5 h): 2.5 h count.
    response = open_tester(
        client,
        standard,
        start="2026-11-27 16:00",
        end="2026-11-30 10:00",
        pauses="2026-11-28 10:00/2026-11-30 09:00",
    )

    assert rows(response) == {
        "Start": "2026-11-27 16:00 Friday",
        "The clock starts": "2026-11-27 16:00 Friday",
        "End": "2026-11-30 10:00 Monday",
        "Business time from start to end": "3 h 00 min",
        "of which paused": "0 h 30 min",
        "Business time counted": "2 h 30 min",
    }


def test_tester_joins_overlapping_pauses(client, administrator, standard):
    # Monday 2026-11-30 08:30 to 17:30 is 8 h; pauses 09:00–10:00 and 09:30–11:00 cover
    # 09:00–11:00 once (2 h): 6 h count.
    response = open_tester(
        client,
        standard,
        start="2026-11-30 08:30",
        end="2026-11-30 17:30",
        pauses="2026-11-30 09:00/2026-11-30 10:00\n2026-11-30 09:30/2026-11-30 11:00",
    )

    assert rows(response)["Business time from start to end"] == "8 h 00 min"
    assert rows(response)["of which paused"] == "2 h 00 min"
    assert rows(response)["Business time counted"] == "6 h 00 min"


def test_tester_limit_in_days_is_twenty_four_business_hours(client, administrator, standard):
    # 1d2h = 26 h of business time from Monday 2026-11-30 08:30: Monday, Tuesday and
    # Wednesday give 24 h (until Wednesday 17:30); 2 h more on Thursday -> 10:30.
    response = open_tester(client, standard, start="2026-11-30 08:30", limit="1d2h")

    assert rows(response)["Limit"] == "26 h 00 min"
    assert rows(response)["Falls due"] == "2026-12-03 10:30 Thursday"


def test_tester_skips_the_national_day_block_and_works_the_make_up_saturday(
    client, administrator, standard
):
    # Wednesday 2026-09-30 17:00 + 20 h: 0.5 h that day; 1–7 October off; Thursday 8 and
    # Friday 9 October 8 h each (16.5 h); Saturday 10 October is a make-up working day
    # with Monday's periods: 3.5 h more -> 12:00.
    response = open_tester(client, standard, start="2026-09-30 17:00", limit="20h")

    assert rows(response)["Falls due"] == "2026-10-10 12:00 Saturday"
    assert response.context["result"].warnings == []


def test_tester_warns_about_a_year_without_holidays(client, administrator, standard):
    PublicHoliday.objects.filter(date__year=2027).delete()

    # Monday 2027-01-04 09:00 + 1 h, counted as a plain weekday.
    response = open_tester(client, standard, start="2027-01-04 09:00", limit="1h")

    assert rows(response)["Falls due"] == "2027-01-04 10:00 Monday"
    expected = "No public holidays are entered for 2027; its days are counted as plain weekdays."
    assert response.context["result"].warnings == [expected]
    assert escape(expected) in response.content.decode()


def test_tester_on_a_calendar_without_working_time_says_so(client, administrator):
    empty = BusinessCalendar.objects.create(code="T-EMPTY", name="空日历")

    response = open_tester(client, empty, start="2026-11-30 09:00", limit="1h")

    assert response.context["result"] is None
    assert response.context["form"].non_field_errors() == [
        "Calendar '空日历' has no working time within 1098 days; check its periods."
    ]


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        pytest.param(
            {"start": "2026-13-01 09:00", "limit": "4h"},
            "start",
            "Start: “2026-13-01 09:00” is not a time; write YYYY-MM-DD HH:MM.",
            id="impossible-start",
        ),
        pytest.param(
            {"start": "tomorrow", "limit": "4h"},
            "start",
            "Start: “tomorrow” is not a time; write YYYY-MM-DD HH:MM.",
            id="start-not-a-time",
        ),
        pytest.param(
            {"start": "", "limit": "4h"},
            "start",
            "This field is required.",
            id="no-start",
        ),
        pytest.param(
            {"start": "2026-11-30 09:00", "limit": "4 hours"},
            "limit",
            "Limit: '4 hours' is not a duration; write e.g. 4h, 90m or 1d2h.",
            id="limit-not-a-duration",
        ),
        pytest.param(
            {"start": "2026-11-30 09:00", "limit": "0m"},
            "limit",
            "Limit: a limit must be more than zero.",
            id="zero-limit",
        ),
        pytest.param(
            {"start": "2026-11-30 09:00", "limit": "1h", "pauses": "\n2026-11-30 10:00"},
            "pauses",
            "Pauses, line 2: “2026-11-30 10:00” is not START/END; "
            "write e.g. 2026-11-30 09:00/2026-11-30 10:00.",
            id="pause-without-end",
        ),
        pytest.param(
            {
                "start": "2026-11-30 09:00",
                "limit": "1h",
                "pauses": "2026-11-30 11:00/2026-11-30 10:00",
            },
            "pauses",
            "Pauses, line 1: the pause must end after it starts.",
            id="pause-ends-before-it-starts",
        ),
        pytest.param(
            {"start": "2026-11-30 09:00", "end": "2026-11-30 08:00"},
            "end",
            "End: the end must be after the start.",
            id="end-before-start",
        ),
        pytest.param(
            {"start": "2026-11-30 09:00"},
            None,
            "Fill in a limit, an end moment or both.",
            id="nothing-to-compute",
        ),
    ],
)
def test_tester_names_the_field_of_bad_input(
    client, administrator, standard, params, field, message
):
    response = open_tester(client, standard, **params)

    assert response.status_code == 200
    assert response.context["result"] is None
    form = response.context["form"]
    errors = form.non_field_errors() if field is None else form.errors[field]
    assert list(errors) == [message]
    assert escape(message) in response.content.decode()


def test_tester_of_a_7x24_calendar_counts_wall_time(client, administrator):
    always = BusinessCalendar.objects.create(code="T-247", name="全天候", is_24x7=True)

    # Saturday 2026-11-28 22:00 + 4 h -> Sunday 02:00; to Monday 22:00 is 48 h.
    response = open_tester(
        client, always, start="2026-11-28 22:00", limit="4h", end="2026-11-30 22:00"
    )

    assert rows(response)["Falls due"] == "2026-11-29 02:00 Sunday"
    assert rows(response)["Business time from start to end"] == "48 h 00 min"


def test_tester_needs_the_view_permission(client, standard):
    requester = UserFactory(username="cal-req", roles=[r.REQUESTER], is_staff=True)
    client.force_login(requester)

    response = open_tester(client, standard, start="2026-11-27 18:00", limit="4h")

    assert response.status_code == 403


# ---------------------------------------------------------------------- public holidays


def test_holiday_list_filters_by_year(client, administrator, standard):
    url = reverse("admin:bjgas_platform_publicholiday_changelist")

    response = client.get(url, {"year": "2026", "kind": HolidayKind.WORKDAY})

    assert response.status_code == 200
    listed = {h.date for h in response.context["cl"].result_list}
    # 2026's make-up working days: 4 January, 14 and 28 February, 9 May, 20 September,
    # 10 October.
    assert listed == {
        date(2026, 1, 4),
        date(2026, 2, 14),
        date(2026, 2, 28),
        date(2026, 5, 9),
        date(2026, 9, 20),
        date(2026, 10, 10),
    }


def test_holiday_warning_in_december_without_next_year(standard, administrator):
    PublicHoliday.objects.filter(date__year=2027).delete()

    warning = holiday_warning(administrator, today=date(2026, 12, 1))

    assert warning.startswith(WARNING_START.format(year=2027))
    assert holiday_warning(administrator, today=date(2026, 11, 30)) == ""
    PublicHoliday.objects.create(date=date(2027, 1, 1), kind=HolidayKind.DAY_OFF, name="元旦")
    assert holiday_warning(administrator, today=date(2026, 12, 1)) == ""


def test_holiday_warning_is_only_for_people_who_keep_the_calendars(standard):
    PublicHoliday.objects.filter(date__year=2027).delete()
    requester = UserFactory(username="cal-req2", roles=[r.REQUESTER], is_staff=True)

    assert holiday_warning(requester, today=date(2026, 12, 1)) == ""


@pytest.mark.parametrize(
    "url_name",
    [
        "admin:index",
        "admin:bjgas_platform_publicholiday_changelist",
        "admin:bjgas_platform_businesscalendar_changelist",
    ],
)
def test_desk_pages_show_the_holiday_warning(client, administrator, standard, url_name):
    today = timezone.localdate()
    PublicHoliday.objects.filter(date__year=today.year + 1).delete()

    response = client.get(reverse(url_name))

    assert response.status_code == 200
    shown = WARNING_START.format(year=today.year + 1) in response.content.decode()
    assert shown == (today.month == 12), "the warning shows in December only"


def test_seeding_adds_the_missing_days_and_keeps_edits(client, administrator, standard):
    # National Day 2026: 1–7 October off, Saturday 10 October worked in exchange.
    PublicHoliday.objects.filter(date__range=(date(2026, 10, 1), date(2026, 10, 7))).delete()
    PublicHoliday.objects.filter(date=date(2026, 10, 10)).update(name="改过的名字")
    url = reverse("admin:bjgas_platform_publicholiday_seed_holidays")

    page = client.get(url)
    assert page.status_code == 200
    assert "from 2004 to 2026" in page.content.decode()
    assert PublicHoliday.objects.filter(date__month=10, date__year=2026).count() == 1

    response = client.post(url, follow=True)

    assert response.redirect_chain[-1][0] == reverse(
        "admin:bjgas_platform_publicholiday_changelist"
    )
    october = PublicHoliday.objects.filter(date__year=2026, date__month=10)
    assert sorted(h.date.day for h in october.filter(kind=HolidayKind.DAY_OFF)) == list(range(1, 8))
    assert october.get(date=date(2026, 10, 10)).name == "改过的名字"
    assert "Added 7 days from the chinese-calendar package." in response.content.decode()

    again = client.post(url, follow=True)
    assert "Nothing to add: every day the package knows is entered already." in (
        again.content.decode()
    )


def test_seeding_needs_the_add_permission(client, standard):
    auditor = UserFactory(username="cal-aud", roles=[r.AUDITOR], is_staff=True)
    client.force_login(auditor)  # may view the holidays, not add them
    PublicHoliday.objects.filter(date=date(2026, 10, 1)).delete()

    response = client.post(reverse("admin:bjgas_platform_publicholiday_seed_holidays"))

    assert response.status_code == 403
    assert not PublicHoliday.objects.filter(date=date(2026, 10, 1)).exists()


def test_an_edited_holiday_is_saved_from_the_list(client, administrator, standard):
    holiday = PublicHoliday.objects.get(date=date(2026, 10, 10))
    url = reverse("admin:bjgas_platform_publicholiday_changelist")
    data = {
        "form-TOTAL_FORMS": "1",
        "form-INITIAL_FORMS": "1",
        "form-MIN_NUM_FORMS": "0",
        "form-MAX_NUM_FORMS": "1000",
        "form-0-id": str(holiday.pk),
        "form-0-kind": HolidayKind.DAY_OFF,
        "form-0-name": "改为休息",
        "_save": "Save",
    }

    response = client.post(f"{url}?year=2026&q=", data)

    assert response.status_code == 302
    holiday.refresh_from_db()
    assert (holiday.kind, holiday.name) == (HolidayKind.DAY_OFF, "改为休息")


def test_calendar_exception_closes_a_day(client, administrator, standard):
    CalendarException.objects.create(calendar=standard, date=date(2026, 11, 30), name="停电")

    # Monday 2026-11-30 is closed: Friday 18:00 + 4 h -> Tuesday 13:30.
    response = open_tester(client, standard, start="2026-11-27 18:00", limit="4h")

    assert rows(response)["Falls due"] == "2026-12-01 13:30 Tuesday"
