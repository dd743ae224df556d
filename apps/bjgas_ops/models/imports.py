"""Import jobs run from the desk, and the column mappings saved per source."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from apps.bjgas_platform.models import ScopedManager


class ImportFormat(models.TextChoices):
    SERVICENOW = "servicenow", _("ServiceNow incident event log")
    ROWS = "rows", _("Incident list (Excel/CSV, one row per incident)")
    EVENT_LOG = "event_log", _("Event log of another tool (one row per update)")


class ImportMapping(models.Model):
    """How the columns of one source's files map onto incident fields, saved for reuse.

    `columns` maps a field of ours (see `importers.spreadsheet.FIELDS`) to the source's
    column header; `values` maps, per field, the source's values to ours (e.g. state
    'Awaiting Vendor' → 'waiting_vendor').
    """

    name = models.CharField(_("source name"), max_length=100, unique=True)
    format = models.CharField(
        _("file layout"), max_length=20, choices=ImportFormat.choices, default=ImportFormat.ROWS
    )
    columns = models.JSONField(_("columns"), default=dict, blank=True)
    values = models.JSONField(_("value translations"), default=dict, blank=True)
    time_format = models.CharField(
        _("time format"),
        max_length=40,
        blank=True,
        help_text=_("strptime format of the time columns, e.g. %d/%m/%Y %H:%M; empty: ISO."),
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("import column mapping")
        verbose_name_plural = _("import column mappings")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ImportStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", pgettext_lazy("import status", "Running")
    DONE = "done", _("Done")
    FAILED = "failed", _("Failed")


def import_file_path(job: "ImportJob", filename: str) -> str:
    return f"imports/{job.created_at:%Y/%m}/{filename}"


class ImportJob(models.Model):
    """One file imported in the background, with its progress and its bad rows."""

    format = models.CharField(_("file layout"), max_length=20, choices=ImportFormat.choices)
    file = models.FileField(_("file"), upload_to="imports/%Y/%m/", max_length=300)
    original_name = models.CharField(_("file name"), max_length=200)
    mapping = models.ForeignKey(
        ImportMapping,
        models.SET_NULL,
        null=True,
        blank=True,
        related_name="jobs",
        verbose_name=_("column mapping"),
    )
    options = models.JSONField(_("options"), default=dict, blank=True)
    status = models.CharField(
        _("status"), max_length=20, choices=ImportStatus.choices, default=ImportStatus.QUEUED
    )
    rows_total = models.PositiveIntegerField(_("rows"), default=0)
    rows_done = models.PositiveIntegerField(_("rows read"), default=0)
    created = models.PositiveIntegerField(_("incidents created"), default=0)
    updated = models.PositiveIntegerField(_("incidents updated"), default=0)
    events = models.PositiveIntegerField(_("events written"), default=0)
    errors = models.JSONField(_("bad rows"), default=list, blank=True)
    message = models.TextField(_("message"), blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        models.PROTECT,
        related_name="+",
        verbose_name=_("started by"),
    )
    created_at = models.DateTimeField(_("queued at"), auto_now_add=True)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    objects = ScopedManager()
    scope_dimensions: dict = {}
    scope_owner_fields = ("created_by",)

    class Meta:
        verbose_name = _("import job")
        verbose_name_plural = _("import jobs")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.original_name} ({self.get_status_display()})"

    @property
    def percent(self) -> int:
        if not self.rows_total:
            return 100 if self.status == ImportStatus.DONE else 0
        return min(100, round(100 * self.rows_done / self.rows_total))
