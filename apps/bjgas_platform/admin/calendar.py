"""Desk pages of business calendars and public holidays, and the calendar tester.

A calendar's working periods are checked as a whole before anything is saved (no
working time, overlapping periods); the page is shown again with the problems and
nothing is written. The tester on a calendar's page answers, without saving anything,
when a limit starting at a moment falls due and how much business time lies between two
moments, so that an administrator can check a calendar before a policy uses it.

Public holidays are rows: seeded from the chinese-calendar package for the years it
knows, entered by hand for the others. From December on, the desk warns while next
year's arrangement is missing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from unfold.contrib.filters.admin import DropdownFilter
from unfold.decorators import action
from unfold.forms import PaginationInlineFormSet
from unfold.widgets import UnfoldAdminTextareaWidget, UnfoldAdminTextInputWidget

from ..models import BusinessCalendar, CalendarException, PublicHoliday, WorkingPeriod
from ..models.calendar import Weekday
from ..services.business_time import (
    BusinessClock,
    CalendarError,
    missing_holiday_year,
    parse_duration,
    seed_public_holidays,
    validate_periods,
)
from .base import DeskTabularInline, HistoryDeskAdmin
from .sla import format_minutes, reapply_after_commit
from .workflow import kept_forms

# The desk's start page carries the missing-holidays warning (templatetags/bjgas_calendar).
admin.site.index_template = "bjgas_platform/admin/index.html"


def holiday_warning(user, today=None) -> str:
    """Return the warning about next year's missing holidays for `user`, or ''."""
    if user is None or not user.is_authenticated:
        return ""
    if not user.has_perm("bjgas_platform.view_publicholiday"):
        return ""  # nothing they could do about it
    year = missing_holiday_year(today or timezone.localdate())
    if year is None:
        return ""
    return _(
        "The public holidays and make-up working days of %(year)s have not been entered yet: "
        "deadlines in %(year)s count every weekday as a working day until they are. Enter them "
        "as soon as the State Council publishes the arrangement."
    ) % {"year": year}


# ------------------------------------------------------------------------ calendars


class PeriodFormSet(PaginationInlineFormSet):
    """The working-periods table; its clean() checks the periods of the whole calendar."""

    def clean(self):
        super().clean()
        if any(form.errors for form in self.forms):
            return  # the rows' own errors come first
        problems = validate_periods(
            self.instance.is_24x7, [form.instance for form in kept_forms(self)]
        )
        if problems:
            raise ValidationError(
                [ValidationError(message, code="invalid_calendar") for message in problems]
            )


class WorkingPeriodInline(DeskTabularInline):
    model = WorkingPeriod
    formset = PeriodFormSet
    fields = ["weekday", "start", "end"]


class CalendarExceptionInline(DeskTabularInline):
    model = CalendarException
    fields = ["date", "is_working", "start", "end", "name"]


@admin.register(BusinessCalendar)
class BusinessCalendarAdmin(HistoryDeskAdmin):
    list_display = [
        "code",
        "name",
        "is_24x7",
        "observes_public_holidays",
        "working_week_display",
        "policy_count",
    ]
    list_display_links = ["code", "name"]
    list_filter = ["is_24x7", "observes_public_holidays"]
    search_fields = ["code", "name"]
    inlines = [WorkingPeriodInline, CalendarExceptionInline]
    fields = [
        "code",
        "name",
        "is_24x7",
        "observes_public_holidays",
        "makeup_day_weekday",
        "description",
    ]
    actions_detail = ["calendar_tester"]
    change_form_template = "bjgas_platform/admin/calendar_change_form.html"
    change_list_template = "bjgas_platform/admin/holiday_warning_change_list.html"

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("periods", "policies")

    @admin.display(description=gettext_lazy("working week"))
    def working_week_display(self, obj) -> str:
        if obj.is_24x7:
            return _("every minute")
        minutes = sum(
            (datetime.combine(datetime.min, p.end) - datetime.combine(datetime.min, p.start))
            // timedelta(minutes=1)
            for p in obj.periods.all()
        )
        days = len({p.weekday for p in obj.periods.all()})
        return ngettext(
            "%(days)s day, %(hours)s a week", "%(days)s days, %(hours)s a week", days
        ) % {"days": days, "hours": format_minutes(minutes)}

    @admin.display(description=gettext_lazy("SLA policies"))
    def policy_count(self, obj) -> int:
        return len(obj.policies.all())

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        context["definition_problems"] = [
            str(error)
            for inline in context.get("inline_admin_formsets", [])
            if isinstance(inline.formset, PeriodFormSet)
            for error in inline.formset.non_form_errors()
        ]
        return super().render_change_form(request, context, add, change, form_url, obj)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        reapply_after_commit(request, calendar_id=form.instance.pk)

    # ------------------------------------------------------------------- the tester

    @action(
        description=gettext_lazy("Test this calendar"),
        url_path="tester",
        permissions=["view"],
        icon="schedule",
    )
    def calendar_tester(self, request, object_id):
        """Show when a limit falls due and the business time between two moments."""
        calendar = self.require_object(request, object_id)
        form = CalendarTesterForm(request.GET if "start" in request.GET else None)
        result = None
        if form.is_bound and form.is_valid():
            try:
                result = try_calendar(calendar, **form.cleaned_data)
            except CalendarError as exc:
                form.add_error(None, str(exc))
        opts = self.model._meta
        context = {
            **self.admin_site.each_context(request),
            "title": _("Calendar tester: %(name)s") % {"name": calendar.name},
            "opts": opts,
            "original": calendar,
            "has_view_permission": True,
            "form": form,
            "result": result,
            "week": week_summary(calendar),
            "change_url": reverse(
                f"admin:{opts.app_label}_{opts.model_name}_change", args=[calendar.pk]
            ),
        }
        return TemplateResponse(request, "bjgas_platform/admin/calendar_tester.html", context)


def week_summary(calendar: BusinessCalendar) -> list[tuple[str, str]]:
    """Return (weekday, 'HH:MM–HH:MM, ...') for each day of a calendar's week."""
    if calendar.is_24x7:
        return []
    periods: dict[int, list[str]] = {}
    for p in calendar.periods.order_by("weekday", "start"):
        periods.setdefault(p.weekday, []).append(f"{p.start:%H:%M}–{p.end:%H:%M}")
    return [
        (str(label), "、".join(periods.get(value, [])) or _("closed"))
        for value, label in Weekday.choices
    ]


# ------------------------------------------------------------------ the tester's form


MOMENT_HELP = gettext_lazy("Local time, YYYY-MM-DD HH:MM.")


def parse_moment(text: str) -> datetime | None:
    """Return the aware moment `text` names in the site's time zone, or None."""
    try:
        value = parse_datetime(text.strip())
    except ValueError:
        return None  # well formed but impossible, e.g. month 13
    if value is None:
        return None
    if timezone.is_naive(value):
        value = timezone.make_aware(value)
    return value


class CalendarTesterForm(forms.Form):
    """What the tester asks: a start, a limit, pauses and an end moment."""

    start = forms.CharField(
        label=gettext_lazy("Start"),
        help_text=MOMENT_HELP,
        widget=UnfoldAdminTextInputWidget(attrs={"placeholder": "2026-11-27 18:00"}),
    )
    limit = forms.CharField(
        label=gettext_lazy("Limit"),
        required=False,
        help_text=gettext_lazy("Business time, e.g. 4h, 90m or 1d2h (1d is 24 business hours)."),
        widget=UnfoldAdminTextInputWidget(attrs={"placeholder": "4h"}),
    )
    pauses = forms.CharField(
        label=gettext_lazy("Pauses"),
        required=False,
        strip=False,  # keep leading blank lines, so that line numbers match the box
        help_text=gettext_lazy(
            "Spans in which the clock stops, one per line: START/END, "
            "e.g. 2026-11-30 09:00/2026-11-30 10:00."
        ),
        widget=UnfoldAdminTextareaWidget(attrs={"rows": 3}),
    )
    end = forms.CharField(
        label=gettext_lazy("End"),
        required=False,
        help_text=gettext_lazy(
            "Optional: show the business time from the start to this moment, YYYY-MM-DD HH:MM."
        ),
        widget=UnfoldAdminTextInputWidget(attrs={"placeholder": "2026-11-30 10:00"}),
    )

    def _moment(self, name: str) -> datetime | None:
        text = self.cleaned_data.get(name, "").strip()
        if not text:
            return None
        value = parse_moment(text)
        if value is None:
            raise ValidationError(
                _("%(field)s: “%(text)s” is not a time; write YYYY-MM-DD HH:MM.")
                % {"field": self.fields[name].label, "text": text},
                code="bad_moment",
            )
        return value

    def clean_start(self) -> datetime | None:
        return self._moment("start")

    def clean_end(self) -> datetime | None:
        return self._moment("end")

    def clean_limit(self) -> float | None:
        text = self.cleaned_data.get("limit", "").strip()
        if not text:
            return None
        label = self.fields["limit"].label
        try:
            seconds = parse_duration(text)
        except CalendarError as exc:
            raise ValidationError(
                _("%(field)s: %(error)s") % {"field": label, "error": exc.message},
                code="bad_duration",
            ) from exc
        if seconds <= 0:
            raise ValidationError(
                _("%(field)s: a limit must be more than zero.") % {"field": label},
                code="limit_not_positive",
            )
        return seconds

    def clean_pauses(self) -> list[tuple[datetime, datetime]]:
        label = self.fields["pauses"].label
        pauses = []
        for number, line in enumerate(self.cleaned_data.get("pauses", "").splitlines(), 1):
            line = line.strip()
            if not line:
                continue
            begin_text, sep, end_text = line.partition("/")
            begin, end = parse_moment(begin_text), parse_moment(end_text)
            if not sep or begin is None or end is None:
                raise ValidationError(
                    _(
                        "%(field)s, line %(line)s: “%(text)s” is not START/END; write e.g. "
                        "2026-11-30 09:00/2026-11-30 10:00."
                    )
                    % {"field": label, "line": number, "text": line},
                    code="bad_pause",
                )
            if end <= begin:
                raise ValidationError(
                    _("%(field)s, line %(line)s: the pause must end after it starts.")
                    % {"field": label, "line": number},
                    code="pause_order",
                )
            pauses.append((begin, end))
        return pauses

    def clean(self):
        data = super().clean()
        start, end = data.get("start"), data.get("end")
        if self.errors:
            return data
        if data.get("limit") is None and end is None:
            raise ValidationError(
                _("Fill in a limit, an end moment or both."), code="nothing_to_compute"
            )
        if end is not None and end <= start:
            self.add_error(
                "end",
                ValidationError(
                    _("%(field)s: the end must be after the start.")
                    % {"field": self.fields["end"].label},
                    code="end_before_start",
                ),
            )
        return data


@dataclass
class TesterResult:
    """What the tester found; durations are business seconds."""

    start: datetime
    clock_starts: datetime
    limit: float | None = None
    due: datetime | None = None
    end: datetime | None = None
    between: float | None = None
    paused: float | None = None
    pauses: list[tuple[datetime, datetime]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def counted(self) -> float | None:
        if self.between is None:
            return None
        return self.between - (self.paused or 0)

    def rows(self) -> list[tuple[str, str]]:
        """Return the result as (label, value) rows for the page."""
        rows = [
            (_("Start"), show_moment(self.start)),
            (_("The clock starts"), show_moment(self.clock_starts)),
        ]
        if self.limit is not None:
            rows.append((_("Limit"), show_duration(self.limit)))
            rows.append((_("Falls due"), show_moment(self.due)))
        if self.end is not None:
            rows.append((_("End"), show_moment(self.end)))
            rows.append((_("Business time from start to end"), show_duration(self.between)))
            if self.pauses:
                rows.append((_("of which paused"), show_duration(self.paused)))
                rows.append((_("Business time counted"), show_duration(self.counted)))
        return rows


def try_calendar(
    calendar: BusinessCalendar,
    *,
    start: datetime,
    limit: float | None = None,
    pauses: list[tuple[datetime, datetime]] = (),
    end: datetime | None = None,
) -> TesterResult:
    """Work out the tester's answers on a calendar; raise CalendarError when it cannot."""
    clock = BusinessClock.for_calendar(calendar)
    result = TesterResult(start=start, clock_starts=clock.next_working_moment(start))
    result.pauses = sorted(pauses)
    if limit is not None:
        result.limit = limit
        result.due = clock.add_with_pauses(start, limit, result.pauses)
    if end is not None:
        result.end = end
        result.between = clock.seconds_between(start, end)
        result.paused = sum(
            clock.seconds_between(begin, finish)
            for begin, finish in merged_spans(result.pauses, start, end)
        )
    result.warnings = sorted(clock.warnings)
    return result


def merged_spans(spans, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """Return `spans` cut to [start, end) with overlapping ones joined, in order."""
    merged: list[tuple[datetime, datetime]] = []
    for begin, finish in sorted(spans):
        begin, finish = max(begin, start), min(finish, end)
        if finish <= begin:
            continue
        if merged and begin <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], finish))
        else:
            merged.append((begin, finish))
    return merged


def show_moment(moment: datetime | None) -> str:
    """Return a moment as local 'YYYY-MM-DD HH:MM weekday'."""
    if moment is None:
        return "-"
    local = timezone.localtime(moment)
    text = date_format(local, "Y-m-d H:i")
    if local.second:
        text = date_format(local, "Y-m-d H:i:s")
    return f"{text} {date_format(local, 'l')}"


def show_duration(seconds: float | None) -> str:
    """Return business seconds as 'H h MM min', with the seconds when not whole minutes."""
    if seconds is None:
        return "-"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    text = _("%(hours)s h %(minutes)02d min") % {"hours": hours, "minutes": minutes}
    if secs:
        text += " " + _("%(seconds)s s") % {"seconds": secs}
    return text


# ------------------------------------------------------------------- public holidays


class YearFilter(DropdownFilter):
    title = gettext_lazy("year")
    parameter_name = "year"

    def lookups(self, request, model_admin):
        years = PublicHoliday.objects.dates("date", "year", order="DESC")
        return [(str(day.year), str(day.year)) for day in years]

    def queryset(self, request, queryset):
        if self.value() and self.value().isdigit():
            return queryset.filter(date__year=int(self.value()))
        return queryset


SOURCES = {
    "chinese_calendar": gettext_lazy("chinese-calendar package"),
    "manual": gettext_lazy("entered by hand"),
}


class SourceFilter(DropdownFilter):
    title = gettext_lazy("source")
    parameter_name = "source"

    def lookups(self, request, model_admin):
        found = PublicHoliday.objects.order_by("source").values_list("source", flat=True).distinct()
        return [(value, str(SOURCES.get(value, value))) for value in found]

    def queryset(self, request, queryset):
        return queryset.filter(source=self.value()) if self.value() else queryset


@admin.register(PublicHoliday)
class PublicHolidayAdmin(HistoryDeskAdmin):
    list_display = ["date", "weekday_display", "kind", "name", "source_display"]
    list_editable = ["kind", "name"]
    list_filter = [YearFilter, "kind", SourceFilter]
    list_filter_submit = True
    search_fields = ["name"]
    ordering = ["-date"]
    fields = ["date", "kind", "name", "source_display"]
    readonly_fields = ["source_display"]
    actions_list = ["seed_holidays"]
    change_list_template = "bjgas_platform/admin/holiday_warning_change_list.html"

    @admin.display(description=gettext_lazy("source"), ordering="source")
    def source_display(self, obj) -> str:
        return str(SOURCES.get(obj.source, obj.source))

    @admin.display(description=gettext_lazy("weekday"), ordering="date")
    def weekday_display(self, obj) -> str:
        return date_format(obj.date, "l")

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        reapply_after_commit(request)  # every calendar that observes public holidays

    def delete_model(self, request, obj):
        super().delete_model(request, obj)
        reapply_after_commit(request)

    def delete_queryset(self, request, queryset):
        super().delete_queryset(request, queryset)
        reapply_after_commit(request)

    @action(
        description=gettext_lazy("Seed from the chinese-calendar package"),
        url_path="seed",
        permissions=["add"],
        icon="download",
    )
    def seed_holidays(self, request):
        """Confirm, then copy the days the package knows that are not entered yet."""
        list_url = reverse("admin:bjgas_platform_publicholiday_changelist")
        if request.method == "POST":
            if not self.has_add_permission(request):
                raise PermissionDenied
            with transaction.atomic():
                added = seed_public_holidays()
                if added:
                    reapply_after_commit(request)
            if added:
                self.message_user(
                    request,
                    ngettext(
                        "Added %(count)s day from the chinese-calendar package.",
                        "Added %(count)s days from the chinese-calendar package.",
                        added,
                    )
                    % {"count": added},
                    messages.SUCCESS,
                )
            else:
                self.message_user(
                    request,
                    _("Nothing to add: every day the package knows is entered already."),
                    messages.INFO,
                )
            return HttpResponseRedirect(list_url)
        first, last = package_years()
        context = {
            **self.admin_site.each_context(request),
            "title": _("Seed public holidays"),
            "opts": self.model._meta,
            "first_year": first,
            "last_year": last,
            "list_url": list_url,
        }
        return TemplateResponse(request, "bjgas_platform/admin/holiday_seed.html", context)


def package_years() -> tuple[int, int]:
    """Return the first and last year the chinese-calendar package has data for."""
    from chinese_calendar.constants import holidays

    years = {day.year for day in holidays}
    return min(years), max(years)
