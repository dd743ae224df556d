"""Desk pages of the ticket-history import (批量导入): import jobs and column mappings.

"New import" uploads a file and queues a background job; the job's page polls a small
JSON view every two seconds for rows done, rate and time left while it runs, then shows
the counts, the first bad rows and the error report to download. A job is seen by whoever
started it and by holders of an all-records rule (`ImportJob.objects.visible_to`); its
file, progress and error report answer 404 to everyone else. Column mappings are edited
as JSON; a ROWS mapping offers the template with its own headers.
"""

from __future__ import annotations

import json
from pathlib import Path
from zoneinfo import available_timezones

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse, HttpResponseRedirect, JsonResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.http import content_disposition_header
from django.utils.text import capfirst
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from unfold.decorators import action
from unfold.widgets import (
    UnfoldAdminSelect2Widget,
    UnfoldAdminSelectWidget,
    UnfoldBooleanSwitchWidget,
)

from apps.bjgas_platform.admin.base import DeskAdmin, state_badge
from apps.bjgas_platform.models import Company

from ..importers.spreadsheet import (
    EVENT_FIELDS,
    FIELDS,
    StateInfo,
    check_mapping,
    template_workbook,
)
from ..models import ImportFormat, ImportJob, ImportMapping, ImportStatus
from ..services import import_jobs as service

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
STATUS_COLORS = {"queued": "gray", "running": "blue", "done": "green", "failed": "red"}
SHOWN_ERRORS = 20
UPLOAD_SUFFIXES = (".csv", ".zip", ".xlsx")


def nowrap(text: str):
    return format_html('<span style="white-space: nowrap">{}</span>', text)


def moment(value) -> str:
    return date_format(timezone.localtime(value), "Y-m-d H:i:s") if value else "-"


def xlsx_response(content: bytes, filename: str) -> HttpResponse:
    return HttpResponse(
        content,
        content_type=XLSX,
        headers={"Content-Disposition": content_disposition_header(True, filename)},
    )


def template_response(mapping: ImportMapping | None = None) -> HttpResponse:
    name = mapping.name if mapping else _("incidents")
    filename = _("%(name)s import template.xlsx") % {"name": name}
    return xlsx_response(template_workbook(mapping), filename)


# -------------------------------------------------------------------------- jobs


class ImportJobForm(forms.ModelForm):
    """A new import: the file, its layout and mapping, the zone of its times and options."""

    zone = forms.ChoiceField(
        widget=UnfoldAdminSelect2Widget,
        label=capfirst(gettext_lazy("time zone of the file's times")),
        help_text=gettext_lazy("Times without a zone in the file are read in this zone."),
    )
    company = forms.ModelChoiceField(
        queryset=Company.objects.none(),
        widget=UnfoldAdminSelectWidget,
        required=False,
        label=capfirst(gettext_lazy("company")),
        help_text=gettext_lazy(
            "Incidents whose row names no company belong to it; empty: the top company."
        ),
    )
    strict = forms.BooleanField(
        widget=UnfoldBooleanSwitchWidget,
        required=False,
        label=capfirst(gettext_lazy("all or nothing")),
        help_text=gettext_lazy("Import nothing if any row is bad."),
    )

    class Meta:
        model = ImportJob
        fields = ["file", "format", "mapping"]

    request_user = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["zone"].choices = [(z, z) for z in sorted(available_timezones())]
        self.fields["zone"].initial = settings.TIME_ZONE
        companies = Company.objects.filter(is_active=True)
        if hasattr(companies, "visible_to"):
            companies = companies.visible_to(self.request_user)
        self.fields["company"].queryset = companies
        self.fields["file"].help_text = _(
            "CSV (UTF-8 or GBK), Excel .xlsx, or a zip holding one CSV file."
        )
        self.fields["mapping"].help_text = _(
            "How the file's columns map to incident fields. Empty: the template's headers."
        )
        self.fields["format"].initial = ImportFormat.ROWS

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload and Path(upload.name).suffix.lower() not in UPLOAD_SUFFIXES:
            raise forms.ValidationError(_("Upload a .csv, .xlsx or .zip file."), code="file_type")
        return upload

    def clean(self):
        cleaned = super().clean()
        layout, mapping = cleaned.get("format"), cleaned.get("mapping")
        if mapping is not None and layout == ImportFormat.SERVICENOW:
            self.add_error("mapping", _("A ServiceNow export needs no column mapping."))
        elif mapping is not None and layout and mapping.format != layout:
            self.add_error(
                "mapping",
                _("This mapping is for the layout “%(layout)s”; choose another one.")
                % {"layout": mapping.get_format_display()},
            )
        return cleaned


@admin.register(ImportJob)
class ImportJobAdmin(DeskAdmin):
    list_display = [
        "original_name",
        "format",
        "status_badge",
        "progress_bar",
        "result",
        "created_by",
        "created_at",
    ]
    list_filter = ["status", "format"]
    list_select_related = ["created_by"]
    search_fields = ["original_name"]
    ordering = ["-created_at", "-id"]
    actions_list = ["download_template_list"]
    fieldsets = [
        (None, {"fields": ["file", "format", "mapping"]}),
        (gettext_lazy("Options"), {"fields": ["zone", "company", "strict"]}),
    ]
    add_form_template = "bjgas_ops/admin/imports/job_add.html"

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # a job is a record of what happened; nothing to edit

    def has_delete_permission(self, request, obj=None) -> bool:
        if obj is not None and obj.status == ImportStatus.RUNNING:
            return False  # its worker still writes to it
        return super().has_delete_permission(request, obj)

    def changelist_view(self, request, extra_context=None):
        service.fail_stalled_jobs()  # so a row never shows a dead job as running
        return super().changelist_view(request, extra_context)

    def get_form(self, request, obj=None, change=False, **kwargs):
        kwargs["form"] = ImportJobForm
        form = super().get_form(request, obj, change=change, **kwargs)
        return type(form)(form.__name__, (form,), {"request_user": request.user})

    # ------------------------------------------------------------------- columns

    @admin.display(description=gettext_lazy("status"), ordering="status")
    def status_badge(self, obj):
        return state_badge(obj.get_status_display(), STATUS_COLORS.get(obj.status, "gray"))

    @admin.display(description=gettext_lazy("progress"))
    def progress_bar(self, obj):
        percent = service.read_progress(obj)["percent"]
        color = "#dc2626" if obj.status == ImportStatus.FAILED else "#2563eb"
        return format_html(
            '<div style="display:flex;align-items:center;gap:6px">'
            '<div class="bjgas-import-bar" title="{}%" style="width:80px;height:6px;'
            'border-radius:3px;background:#e5e7eb;overflow:hidden">'
            '<div style="width:{}%;height:6px;background:{}"></div></div>'
            '<span style="font-size:12px;font-variant-numeric:tabular-nums">{}%</span></div>',
            percent,
            percent,
            color,
            percent,
        )

    @admin.display(description=gettext_lazy("result"))
    def result(self, obj) -> str:
        if obj.status not in (ImportStatus.DONE, ImportStatus.FAILED):
            return "-"
        return _("%(created)s created, %(updated)s updated, %(bad)s bad rows") % {
            "created": obj.created,
            "updated": obj.updated,
            "bad": len(obj.errors or []),
        }

    # --------------------------------------------------------------------- adding

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        job = service.create_import_job(
            request.user,
            data["file"],
            layout=data["format"],
            mapping=data.get("mapping"),
            zone=data.get("zone") or "",
            company=data.get("company"),
            strict=data.get("strict", False),
        )
        obj.pk = job.pk
        obj._state.adding = False
        obj._state.db = job._state.db

    def save_related(self, request, form, formsets, change):
        pass  # the job has no many-to-many fields; the service saved it

    def log_addition(self, request, obj, message):
        pass  # the job itself records who started it and when

    def response_add(self, request, obj, post_url_continue=None):
        self.message_user(
            request,
            _("The import is queued; this page shows its progress."),
            messages.SUCCESS,
        )
        return HttpResponseRedirect(reverse("admin:bjgas_ops_importjob_change", args=[obj.pk]))

    # ------------------------------------------------------------------ job page

    def change_view(self, request, object_id, form_url="", extra_context=None):
        job = self.require_object(request, object_id)
        if not self.has_view_permission(request, job):
            raise PermissionDenied
        options = job.options or {}
        company = (
            Company.objects.filter(pk=options.get("company")).first()
            if options.get("company")
            else None
        )
        errors = job.errors or []
        context = {
            **self.admin_site.each_context(request),
            "title": _("Import: %(name)s") % {"name": job.original_name},
            "opts": self.model._meta,
            "original": job,
            "has_view_permission": True,
            "job": job,
            "status_badge": self.status_badge(job),
            "progress": service.read_progress(job),
            "progress_url": reverse("admin:bjgas_ops_importjob_progress", args=[job.pk]),
            "report_url": reverse("admin:bjgas_ops_importjob_errors", args=[job.pk]),
            "list_url": reverse("admin:bjgas_ops_importjob_changelist"),
            "facts": [
                (_("file layout"), job.get_format_display()),
                (_("column mapping"), service.mapping_name(job) or "-"),
                (_("time zone of the file's times"), options.get("zone") or settings.TIME_ZONE),
                (_("company"), company or _("the top company")),
                (_("all or nothing"), _("yes") if options.get("strict") else _("no")),
                (_("started by"), job.created_by),
                (_("queued at"), moment(job.created_at)),
                (_("started at"), moment(job.started_at)),
                (_("finished at"), moment(job.finished_at)),
            ],
            "counts": [
                (_("rows read"), job.rows_done),
                (_("incidents created"), job.created),
                (_("incidents updated"), job.updated),
                (_("events written"), job.events),
                (_("bad rows"), len(errors)),
            ],
            "errors_table": {
                "headers": [_("Row"), _("Number"), _("Column"), _("Reason")],
                "rows": [
                    [
                        e.get("row"),
                        nowrap(e.get("number") or "-"),
                        nowrap(e.get("column") or "-"),
                        e.get("reason"),
                    ]
                    for e in errors[:SHOWN_ERRORS]
                ],
            },
            "more_errors": max(0, len(errors) - SHOWN_ERRORS),
            "poll_seconds": 2,
        }
        return TemplateResponse(request, "bjgas_ops/admin/imports/job.html", context)

    def get_urls(self):
        return [
            path(
                "<path:object_id>/progress/",
                self.admin_site.admin_view(self.progress_view),
                name="bjgas_ops_importjob_progress",
            ),
            path(
                "<path:object_id>/errors/",
                self.admin_site.admin_view(self.error_report_view),
                name="bjgas_ops_importjob_errors",
            ),
            *super().get_urls(),
        ]

    def _visible_job(self, request, object_id) -> ImportJob:
        job = self.require_object(request, object_id)
        if not self.has_view_permission(request, job):
            raise PermissionDenied
        return job

    def progress_view(self, request, object_id):
        """Answer the job page's poll: status, stage, rows done and total, rate, time left."""
        job = self._visible_job(request, object_id)
        data = service.read_progress(job)
        if data["finished"]:
            data["message"] = job.message
        return JsonResponse(data, json_dumps_params={"ensure_ascii": False})

    def error_report_view(self, request, object_id):
        """Download the job's bad rows as an Excel file."""
        job = self._visible_job(request, object_id)
        filename = _("%(name)s error report.xlsx") % {"name": Path(job.original_name).stem}
        return xlsx_response(service.error_report(job), filename)

    @action(
        description=gettext_lazy("Download template"),
        url_path="template",
        permissions=["add"],
        icon="download",
    )
    def download_template_list(self, request):
        """The ROWS template with the standard Chinese headers."""
        return template_response()


# ---------------------------------------------------------------------- mappings


def field_table(fields) -> dict:
    """The fields a mapping may name, as a table for the mapping page."""
    return {
        "headers": [_("Field"), _("Template header"), _("Required"), _("Meaning")],
        "rows": [[f.name, f.header, _("required") if f.required else "", f.help] for f in fields],
    }


def state_names() -> dict[str, str]:
    return StateInfo.load().names


class PrettyJSONField(forms.JSONField):
    """A JSON field shown indented, with Chinese left readable."""

    def prepare_value(self, value):
        if isinstance(value, forms.fields.InvalidJSONInput):
            return value
        return json.dumps(value, ensure_ascii=False, indent=2)


class ImportMappingForm(forms.ModelForm):
    class Meta:
        model = ImportMapping
        fields = ["name", "format", "columns", "values", "time_format"]
        field_classes = {"columns": PrettyJSONField, "values": PrettyJSONField}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["columns"].help_text = _(
            'Our field → the column header in your file, e.g. {"key": "CaseID", '
            '"time": "Timestamp"}. The fields are listed below the form; a field left out '
            "is looked for under its template header."
        )
        self.fields["values"].help_text = _(
            "Per field, your values → ours, e.g. "
            '{"state": {"Open": "in_progress", "Solved": "resolved"}, "tier": {"L1": 1}}.'
        )
        for name in ("columns", "values"):
            self.fields[name].widget.attrs.update(
                {"rows": 10, "style": "font-family: monospace", "spellcheck": "false"}
            )

    def clean(self):
        cleaned = super().clean()
        layout = cleaned.get("format")
        if layout == ImportFormat.SERVICENOW:
            self.add_error("format", _("A ServiceNow export needs no column mapping."))
            return cleaned
        if layout and "columns" in cleaned and "values" in cleaned:
            for problem in check_mapping(layout, cleaned["columns"], cleaned["values"]):
                self.add_error(None, problem)
        return cleaned


@admin.register(ImportMapping)
class ImportMappingAdmin(DeskAdmin):
    form = ImportMappingForm
    list_display = ["name", "format", "column_count", "time_format", "updated_at"]
    list_filter = ["format"]
    search_fields = ["name"]
    fields = ["name", "format", "columns", "values", "time_format"]
    actions_detail = ["download_template"]
    actions_list = ["download_standard_template"]
    change_form_after_template = "bjgas_ops/admin/imports/mapping_fields.html"

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        context["mapping_fields"] = [
            (ImportFormat.ROWS.label, field_table(FIELDS)),
            (ImportFormat.EVENT_LOG.label, field_table(EVENT_FIELDS)),
        ]
        context["mapping_values"] = [
            (_("state"), ", ".join(f"{name} ({code})" for code, name in state_names().items())),
            (_("priority"), "P1, P2, P3, P4"),
            (_("urgency") + " / " + _("impact"), "1, 2, 3, 4"),
            (_("severity"), "A, B, C"),
            (_("tier"), "1, 2, 3"),
            (_("SLA met"), "true, false"),
        ]
        return super().render_change_form(request, context, add, change, form_url, obj)

    @admin.display(description=gettext_lazy("columns"))
    def column_count(self, obj) -> str:
        return json.dumps(obj.columns, ensure_ascii=False)[:80] if obj.columns else "-"

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    @action(
        description=gettext_lazy("Download template"),
        url_path="template",
        permissions=["view"],
        icon="download",
    )
    def download_template(self, request, object_id):
        """The incident-list template with this mapping's column headers."""
        mapping = self.require_object(request, object_id)
        if mapping.format != ImportFormat.ROWS:
            self.message_user(
                request,
                _("Only a mapping of the incident-list layout has a template."),
                messages.WARNING,
            )
            return HttpResponseRedirect(
                reverse("admin:bjgas_ops_importmapping_change", args=[mapping.pk])
            )
        return template_response(mapping)

    @action(
        description=gettext_lazy("Download template"),
        url_path="standard-template",
        permissions=["view"],
        icon="download",
    )
    def download_standard_template(self, request):
        """The incident-list template with the standard Chinese headers."""
        return template_response()
