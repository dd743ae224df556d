"""Desk pages of the incident reports (运维报表): per period, per group and per support tier.

Each page reads its filters from the query string, so that a report can be bookmarked or
sent on, and shows the summary sentence, a chart, the table and the definitions of its
time columns; `export=xlsx` in the same query string downloads the same report as an
Excel file. The figures come from `services.reports` for the requesting user, so scope
applies: a department head's page and workbook count only their department's incidents.

The pages join the admin site's URLs through unfold's `extra_urls` hook and are open to
whoever may view the incident reports (`bjgas_ops.view_incident_reports`: the service
desk, team leads, department heads, IT managers, auditors and administrators); everyone
else, requesters and engineers included, gets a 403.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, timedelta

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.http import content_disposition_header
from django.utils.text import capfirst
from django.utils.translation import get_language, gettext_lazy
from django.utils.translation import gettext as _
from unfold.widgets import (
    UnfoldAdminSelect2MultipleWidget,
    UnfoldAdminSelectWidget,
    UnfoldAdminTextInputWidget,
)

from apps.bjgas_platform.models import BusinessSystem, Company

from ..choices import Priority
from ..models import Channel
from ..services.report_export import workbook_bytes
from ..services.reports import (
    GROUP_FIELDS,
    NOT_SET,
    PERIODS,
    Figures,
    Report,
    ReportError,
    ReportFilter,
    ReportRow,
    definitions,
    format_duration,
    format_ratio,
    group_report,
    narrative,
    period_report,
    tier_report,
)

REPORT_PERMISSION = "bjgas_ops.view_incident_reports"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
SECONDS_PER_HOUR = 3600
GROUP_ROWS_SHOWN = 100  # the largest groups in the table; the workbook has them all
GROUP_BARS_SHOWN = 20
MAX_DAYS = 366  # rows of a report per day
BAR_COLOR = "var(--color-primary-500)"
LINE_COLOR = "#f59e0b"

PERIOD_NAMES = {
    "day": gettext_lazy("Day"),
    "week": gettext_lazy("ISO week"),
    "month": gettext_lazy("Month"),
    "quarter": gettext_lazy("Quarter"),
    "year": gettext_lazy("Year"),
}
GROUP_NAMES = {
    "business_system": gettext_lazy("Business system (with top reporters)"),
    "company": gettext_lazy("Reporting company"),
    "requester": gettext_lazy("Reporter"),
    "channel": gettext_lazy("Channel"),
    "tier": gettext_lazy("Support tier"),
    "assignee": gettext_lazy("Engineer"),
    "priority": gettext_lazy("Priority"),
    "severity": gettext_lazy("Severity"),
    "sla": gettext_lazy("SLA met or breached"),
    "category": gettext_lazy("Category"),
}
IMPORTED_CHOICES = (
    ("", gettext_lazy("All incidents")),
    ("yes", gettext_lazy("Only batch-imported")),
    ("no", gettext_lazy("Only reported here")),
)
DATE_ERRORS = {
    "required": gettext_lazy("Enter a date."),
    "invalid": gettext_lazy("This is not a date; write it as YYYY-MM-DD, e.g. 2016-03-01."),
}


def can_view_reports(request: HttpRequest) -> bool:
    return request.user.is_active and request.user.has_perm(REPORT_PERMISSION)


def last_full_week(today: date | None = None) -> tuple[date, date]:
    """Return the Monday and Sunday of the last ISO week that has ended."""
    today = today or timezone.localdate()
    monday = today - timedelta(days=today.weekday() + 7)
    return monday, monday + timedelta(days=6)


# ------------------------------------------------------------------------------ forms


class DateInput(UnfoldAdminTextInputWidget):
    input_type = "date"


class ReportFilterForm(forms.Form):
    """The filters every report page offers; bound to the query string."""

    start = forms.DateField(
        label=gettext_lazy("First day"), widget=DateInput, error_messages=DATE_ERRORS
    )
    end = forms.DateField(
        label=gettext_lazy("Last day"), widget=DateInput, error_messages=DATE_ERRORS
    )
    business_systems = forms.ModelMultipleChoiceField(
        label=capfirst(gettext_lazy("business systems")),
        queryset=BusinessSystem.objects.none(),
        required=False,
        widget=UnfoldAdminSelect2MultipleWidget,
    )
    companies = forms.ModelMultipleChoiceField(
        label=gettext_lazy("Reporting companies"),
        queryset=Company.objects.none(),
        required=False,
        widget=UnfoldAdminSelect2MultipleWidget,
    )
    priorities = forms.MultipleChoiceField(
        label=gettext_lazy("Priorities"),
        choices=Priority.choices,
        required=False,
        widget=UnfoldAdminSelect2MultipleWidget,
    )
    channels = forms.MultipleChoiceField(
        label=gettext_lazy("Reporting channels"),
        choices=Channel.choices,
        required=False,
        widget=UnfoldAdminSelect2MultipleWidget,
    )
    imported = forms.ChoiceField(
        label=gettext_lazy("Batch-imported"),
        choices=IMPORTED_CHOICES,
        required=False,
        widget=UnfoldAdminSelectWidget,
    )

    def __init__(self, user, data, **kwargs):
        super().__init__(data, **kwargs)
        # The lists offer only what the user may see; picking anything else is refused.
        self.fields["business_systems"].queryset = BusinessSystem.objects.visible_to(user)
        self.fields["companies"].queryset = Company.objects.visible_to(user)

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("start"), cleaned.get("end")
        if start and end:
            try:
                cleaned["filter"] = ReportFilter(
                    start=start,
                    end=end,
                    business_systems=tuple(s.pk for s in cleaned.get("business_systems", ())),
                    companies=tuple(c.pk for c in cleaned.get("companies", ())),
                    priorities=tuple(cleaned.get("priorities", ())),
                    channels=tuple(cleaned.get("channels", ())),
                    imported={"yes": True, "no": False}.get(cleaned.get("imported") or ""),
                )
            except ReportError as exc:
                self.add_error(exc.field if exc.field in self.fields else None, str(exc))
        return cleaned

    @property
    def filter_fields(self) -> list:
        return [self[name] for name in ReportFilterForm.base_fields]

    @property
    def choice_fields(self) -> list:
        return [self[name] for name in self.fields if name not in ReportFilterForm.base_fields]


class PeriodReportForm(ReportFilterForm):
    period = forms.ChoiceField(
        label=gettext_lazy("Count per"),
        choices=list(PERIOD_NAMES.items()),
        widget=UnfoldAdminSelectWidget,
        error_messages={
            "invalid_choice": gettext_lazy(
                "Unknown period “%(value)s”; choose a day, ISO week, month, quarter or year."
            ),
            "required": gettext_lazy("Choose a period."),
        },
    )

    def clean(self):
        cleaned = super().clean()
        flt = cleaned.get("filter")
        if flt and cleaned.get("period") == "day" and (flt.end - flt.start).days >= MAX_DAYS:
            self.add_error(
                "period",
                _(
                    "A report per day covers at most %(days)d days; count per week or month, "
                    "or choose a shorter range."
                )
                % {"days": MAX_DAYS},
            )
        return cleaned


class GroupReportForm(ReportFilterForm):
    group_by = forms.ChoiceField(
        label=gettext_lazy("Group by"),
        choices=[(name, GROUP_NAMES[name]) for name in GROUP_FIELDS],
        widget=UnfoldAdminSelectWidget,
        error_messages={
            "invalid_choice": gettext_lazy(
                "Unknown grouping “%(value)s”; choose one from the list."
            ),
            "required": gettext_lazy("Choose how to group the incidents."),
        },
    )


# ------------------------------------------------------------------------------ pages


class ReportPage:
    """One report page: its form, how it makes the report, and its table and chart."""

    name: str
    form_class: type[ReportFilterForm] = ReportFilterForm
    template = "bjgas_ops/admin/reports/report.html"
    defaults: dict[str, str] = {}

    def title(self) -> str:
        raise NotImplementedError

    def make(self, user, flt: ReportFilter, options: dict) -> Report:
        raise NotImplementedError

    def file_stem(self, report: Report) -> str:
        return report.dimension

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not can_view_reports(request):
            raise PermissionDenied
        data = request.GET.copy()
        if "start" not in data and "end" not in data:
            start, end = last_full_week()
            data.update({"start": start.isoformat(), "end": end.isoformat()})
        for key, value in self.defaults.items():
            data.setdefault(key, value)
        form = self.form_class(request.user, data)
        report = summary = None
        if form.is_valid():
            flt = form.cleaned_data["filter"]
            try:
                report = self.make(request.user, flt, form.cleaned_data)
            except ReportError as exc:  # e.g. too many rows for the period
                form.add_error(exc.field if exc.field in form.fields else None, str(exc))
        if report is not None:
            if request.GET.get("export") == "xlsx":
                return xlsx_download(report, self.file_stem(report))
            summary = narrative(request.user, flt, get_language())
        context = {
            **admin.site.each_context(request),
            "title": self.title(),
            "form": form,
            "errors": form_errors(form),
            "report": report,
            "summary": summary,
            "export_url": export_url(request),
            "report_links": report_links(),
            "active": self.name,
            "definitions": report.definitions if report else definitions(self.name),
        }
        if report is not None:
            context.update(self.presentation(report))
        request.current_app = admin.site.name
        return TemplateResponse(request, self.template, context)

    def presentation(self, report: Report) -> dict:
        """Return the table and chart of `report` for the template."""
        raise NotImplementedError


class PeriodPage(ReportPage):
    name = "period"
    form_class = PeriodReportForm
    defaults = {"period": "day"}

    def title(self) -> str:
        return _("Incidents per period")

    def make(self, user, flt, options):
        return period_report(user, flt, options["period"])

    def presentation(self, report):
        language = get_language()
        rows = [period_cells(row, language) for row in report.rows]
        return {
            "table_kind": "period",
            "label_header": _("Period"),
            "rows": rows,
            "total": figure_cells(report.total, language),
            "chart_data": to_json(counts_and_hours_chart(report, _("Mean handling time (h)"))),
            "chart_options": to_json(two_axis_options(_("Mean handling time (h)"))),
            "chart_height": 320,
            "handling_header": _("Mean handling time"),
            "business_header": _("Mean business time"),
        }


class GroupPage(ReportPage):
    name = "group"
    form_class = GroupReportForm
    defaults = {"group_by": "business_system"}

    def title(self) -> str:
        return _("Incidents by group")

    def make(self, user, flt, options):
        return group_report(user, flt, options["group_by"])

    def presentation(self, report):
        language = get_language()
        rows = [group_cells(row, report.total, language) for row in report.rows]
        bars = report.rows[:GROUP_BARS_SHOWN]
        chart = {
            "labels": [row.label for row in bars],
            "datasets": [
                {
                    "label": str(_("Incidents")),
                    "data": [row.figures.count for row in bars],
                    "backgroundColor": BAR_COLOR,
                    "borderRadius": 4,
                    "maxBarThickness": 22,
                }
            ],
        }
        return {
            "table_kind": "group",
            "label_header": (
                capfirst(_("business system"))
                if report.dimension == "business_system"
                else GROUP_NAMES[report.dimension]
            ),
            "rows": rows[:GROUP_ROWS_SHOWN],
            "hidden_rows": max(0, len(rows) - GROUP_ROWS_SHOWN),
            "bars_shown": len(bars),
            "total": figure_cells(report.total, language),
            "show_reporters": report.dimension == "business_system",
            "chart_data": to_json(chart),
            "chart_options": to_json(horizontal_bar_options()),
            "chart_height": max(160, 60 + 28 * len(bars)),
            "handling_header": _("Mean handling time"),
            "business_header": _("Mean business time"),
        }


class TierPage(ReportPage):
    name = "tier"

    def title(self) -> str:
        return _("Time spent per support tier")

    def make(self, user, flt, options):
        return tier_report(user, flt)

    def presentation(self, report):
        language = get_language()
        rows = [group_cells(row, report.total, language) for row in report.rows]
        return {
            "table_kind": "tier",
            "label_header": _("Tier"),
            "rows": rows,
            "total": figure_cells(report.total, language),
            "chart_data": to_json(counts_and_hours_chart(report, _("Mean time in the tier (h)"))),
            "chart_options": to_json(two_axis_options(_("Mean time in the tier (h)"))),
            "chart_height": 320,
            "handling_header": _("Mean time in the tier"),
            "business_header": _("Mean business time in the tier"),
            "total_note": _(
                "An incident handled by several tiers counts in each tier's row but once in "
                "the total."
            ),
        }


def reports_index(request: HttpRequest) -> HttpResponse:
    """List the reports, with the summary of last week."""
    if not can_view_reports(request):
        raise PermissionDenied
    start, end = last_full_week()
    context = {
        **admin.site.each_context(request),
        "title": _("Incident reports"),
        "report_links": report_links(),
        "active": "index",
        "definitions": definitions("tier"),
        "summary": narrative(request.user, ReportFilter(start, end), get_language()),
        "group_links": [
            (GROUP_NAMES[name], f"{reverse('admin:bjgas_ops_report_group')}?group_by={name}")
            for name in GROUP_FIELDS
        ],
        "period_links": [
            (PERIOD_NAMES[name], f"{reverse('admin:bjgas_ops_report_period')}?period={name}")
            for name in PERIODS
        ],
    }
    request.current_app = admin.site.name
    return TemplateResponse(request, "bjgas_ops/admin/reports/index.html", context)


# ------------------------------------------------------------------------------ cells


def _dash(value):
    """A count, or a dash where the report does not give one (the tier rows)."""
    return "—" if value is None else value


def figure_cells(figures: Figures, language: str) -> dict:
    """The figures of one row as the table shows them."""
    return {
        "count": figures.count,
        "resolved": _dash(figures.resolved),
        "open": _dash(figures.open),
        "imported": _dash(figures.imported),
        "handling": format_duration(figures.mean_handling_seconds, language),
        # Business time counts working hours: 24 of them are no day.
        "business": format_duration(figures.mean_business_seconds, language, days=False),
        "sla": "—" if figures.sla_met_ratio is None else format_ratio(figures.sla_met_ratio),
        "sla_counts": (figures.sla_met or 0, (figures.sla_met or 0) + (figures.sla_breached or 0)),
    }


def period_cells(row: ReportRow, language: str) -> dict:
    change, ratio = row.count_change, row.count_change_ratio
    return {
        "key": row.key,
        "label": row.label,
        "start": row.start,
        "end": row.end,
        "partial": row.partial,
        "change": "—" if change is None else (f"{change:+d}" if change else "0"),
        "change_ratio": "—" if ratio is None else (f"{ratio * 100:+.1f}%" if change else "0.0%"),
        "change_sign": 0 if not change else (1 if change > 0 else -1),
        "previous": None if row.previous is None else row.previous.count,
        **figure_cells(row.figures, language),
    }


def group_cells(row: ReportRow, total: Figures, language: str) -> dict:
    reporters = row.extra.get("top_reporters") or []
    return {
        "key": row.key,
        "label": row.label,
        "not_set": row.key == NOT_SET,
        "share": format_ratio(row.figures.count / total.count) if total.count else "—",
        "reporters": [
            _("%(name)s (%(count)d)") % {"name": name, "count": count} for name, count in reporters
        ],
        **figure_cells(row.figures, language),
    }


def form_errors(form: forms.Form) -> list[str]:
    """Every error of a bound form as one sentence naming its field."""
    if not form.is_bound or form.is_valid():
        return []
    messages = []
    for name, errors in form.errors.items():
        for error in errors:
            if name == forms.forms.NON_FIELD_ERRORS:
                messages.append(error)
            else:
                label = form.fields[name].label
                messages.append(_("%(field)s: %(error)s") % {"field": label, "error": error})
    return messages


# ------------------------------------------------------------------------------ charts


def to_json(value) -> str:
    return json.dumps(value, ensure_ascii=False)


def hours(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / SECONDS_PER_HOUR, 2)


def counts_and_hours_chart(report: Report, hours_label: str) -> dict:
    """Bars of the incident counts (left axis) and a line of mean hours (right axis)."""
    return {
        "labels": [row.label for row in report.rows],
        "datasets": [
            {
                "type": "line",
                "label": str(hours_label),
                "data": [hours(row.figures.mean_handling_seconds) for row in report.rows],
                "yAxisID": "y1",
                "borderColor": LINE_COLOR,
                "backgroundColor": LINE_COLOR,
                "borderWidth": 2,
                "pointRadius": 3,
                "spanGaps": True,
                "order": 1,
            },
            {
                "type": "bar",
                "label": str(_("Incidents")),
                "data": [row.figures.count for row in report.rows],
                "yAxisID": "y",
                "backgroundColor": BAR_COLOR,
                "borderRadius": 4,
                "maxBarThickness": 48,
                "order": 2,
            },
        ],
    }


def _axis_title(text: str) -> dict:
    return {"display": True, "text": str(text), "color": "#6b7280"}


def two_axis_options(hours_label: str) -> dict:
    """Chart.js options for counts on the left axis and hours on the right one."""
    return {
        "animation": False,
        "responsive": True,
        "maintainAspectRatio": False,
        "interaction": {"mode": "index", "intersect": False},
        "plugins": {
            "legend": {
                "display": True,
                "position": "top",
                "align": "end",
                "labels": {"usePointStyle": True, "boxWidth": 6, "boxHeight": 6},
            },
        },
        "scales": {
            "x": {"grid": {"display": False}, "ticks": {"color": "#6b7280"}},
            "y": {
                "beginAtZero": True,
                "title": _axis_title(_("Incidents")),
                "ticks": {"precision": 0, "color": "#6b7280"},
                "grid": {"color": "#e5e7eb"},
            },
            "y1": {
                "beginAtZero": True,
                "position": "right",
                "title": _axis_title(hours_label),
                "ticks": {"color": "#6b7280"},
                "grid": {"drawOnChartArea": False},
            },
        },
    }


def horizontal_bar_options() -> dict:
    return {
        "animation": False,
        "indexAxis": "y",
        "responsive": True,
        "maintainAspectRatio": False,
        "plugins": {"legend": {"display": False}},
        "scales": {
            "x": {
                "beginAtZero": True,
                "title": _axis_title(_("Incidents")),
                "ticks": {"precision": 0, "color": "#6b7280"},
                "grid": {"color": "#e5e7eb"},
            },
            "y": {"grid": {"display": False}, "ticks": {"autoSkip": False}},
        },
    }


# ------------------------------------------------------------------------------ helpers


def export_url(request: HttpRequest) -> str:
    query = request.GET.copy()
    query["export"] = "xlsx"
    return f"{request.path}?{query.urlencode()}"


def xlsx_download(report: Report, stem: str) -> HttpResponse:
    """Return the report's workbook as a download named after its kind and days."""
    flt = report.filter
    name = f"incident-report-{stem}-{flt.start.isoformat()}-{flt.end.isoformat()}.xlsx"
    return HttpResponse(
        workbook_bytes(report),
        content_type=XLSX,
        headers={"Content-Disposition": content_disposition_header(True, name)},
    )


def report_links() -> list[tuple[str, str, str]]:
    """(name, title, url) of the index and each report page, for the page tabs."""
    return [
        ("index", _("Overview"), reverse("admin:bjgas_ops_reports")),
        ("period", _("Per period"), reverse("admin:bjgas_ops_report_period")),
        ("group", _("By group"), reverse("admin:bjgas_ops_report_group")),
        ("tier", _("By support tier"), reverse("admin:bjgas_ops_report_tier")),
    ]


def sidebar_navigation(request: HttpRequest) -> list[dict]:
    """The desk's sidebar: the reports first, then every application as Django lists it.

    Unfold shows either its navigation or the application list; this keeps the list and
    puts the reports above it.
    """
    groups = [
        {
            "title": _("Reports"),
            "items": [
                {
                    "title": _("Incident reports"),
                    "icon": "monitoring",
                    "link": reverse("admin:bjgas_ops_reports"),
                    "permission": can_view_reports,
                }
            ],
        }
    ]
    for app in admin.site.get_app_list(request):
        items = [
            {"title": model["name"], "link": model["admin_url"]}
            for model in app["models"]
            if model.get("admin_url")
        ]
        if items:
            groups.append({"title": app["name"], "items": items})
    return groups


def report_urls() -> list:
    site = admin.site
    return [
        path("reports/", site.admin_view(reports_index), name="bjgas_ops_reports"),
        path("reports/period/", site.admin_view(PeriodPage()), name="bjgas_ops_report_period"),
        path("reports/group/", site.admin_view(GroupPage()), name="bjgas_ops_report_group"),
        path("reports/tier/", site.admin_view(TierPage()), name="bjgas_ops_report_tier"),
    ]


def _with_report_urls(previous: Callable | None) -> Callable:
    def extra_urls() -> list:
        return [*report_urls(), *(previous() if previous else [])]

    return extra_urls


admin.site.extra_urls = _with_report_urls(getattr(admin.site, "extra_urls", None))
