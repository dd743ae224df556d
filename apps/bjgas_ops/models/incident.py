"""Incidents (事件): something broke or degraded; restore the service fast."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from apps.bjgas_platform.choices import SupportTier
from apps.bjgas_platform.models import (
    BusinessSystem,
    Company,
    Department,
    Region,
    ScopedManager,
    ServiceCatalogItem,
    SupportGroup,
    Vendor,
    WorkflowRecord,
)
from apps.bjgas_platform.models.org import TreeMixin, code_field
from apps.bjgas_platform.models.scope import RECORD_DIMENSIONS, RECORD_OWNERS

from ..choices import Priority


def local_day(moment):
    """The day a moment falls on in the site's zone (reports bucket by local days)."""
    return timezone.localtime(moment).date() if moment else None


class Channel(models.TextChoices):
    PORTAL = "portal", _("Self-service portal")
    PHONE = "phone", _("Phone")
    EMAIL = "email", _("E-mail")
    MONITORING = "monitoring", _("Monitoring alert")
    IMPORT = "import", _("Batch import")
    MOBILE = "mobile", _("Mobile app")
    DESK = "desk", _("Service desk")


class Level(models.IntegerChoices):
    """Urgency and impact share one four-step scale."""

    CRITICAL = 1, _("1 - Critical")
    HIGH = 2, _("2 - High")
    MEDIUM = 3, _("3 - Medium")
    LOW = 4, _("4 - Low")


class Severity(models.TextChoices):
    """The service agreement's severity: A answers within 2 h, B 4 h, C 8 h."""

    A = "A", _("A (answer within 2 h)")
    B = "B", _("B (answer within 4 h)")
    C = "C", _("C (answer within 8 h)")


class IncidentCategory(TreeMixin):
    """A category of incidents; subcategories sit below their category."""

    code = code_field()
    name = models.CharField(_("name"), max_length=100)
    parent = models.ForeignKey(
        "self",
        models.PROTECT,
        null=True,
        blank=True,
        related_name="children",
        verbose_name=_("parent category"),
    )
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("incident category")
        verbose_name_plural = _("incident categories")
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.parent.name} / {self.name}" if self.parent_id else self.name


class PriorityMatrix(models.Model):
    """One cell of the urgency × impact matrix that gives an incident's priority."""

    urgency = models.PositiveSmallIntegerField(_("urgency"), choices=Level.choices)
    impact = models.PositiveSmallIntegerField(_("impact"), choices=Level.choices)
    priority = models.CharField(_("priority"), max_length=2, choices=Priority.choices)
    history = HistoricalRecords()

    class Meta:
        verbose_name = _("priority matrix cell")
        verbose_name_plural = _("priority matrix")
        ordering = ["urgency", "impact"]
        constraints = [
            models.UniqueConstraint(fields=["urgency", "impact"], name="priority_matrix_cell_once")
        ]

    def __str__(self) -> str:
        return f"{self.get_urgency_display()} × {self.get_impact_display()} → {self.priority}"


# Derived columns the reports read; they are not the incident's history.
REPORT_FIGURES = ["created_day", "handling_seconds", "business_seconds", "sla_met"]


REPORT_INDEX = [
    "created_day",
    "state",
    "channel",
    "source_system",
    "sla_met",
    "handling_seconds",
    "business_seconds",
    "priority",
    "severity",
    "tier",
    "business_system",
    "company",
    "requester",
    "assignee",
    "department",
    "region",
    "vendor",
    "created_by",
]


class Incident(WorkflowRecord):
    """An incident reported by a person, a monitoring alert or an import."""

    number = models.CharField(_("number"), max_length=30, unique=True, editable=False)
    title = models.CharField(_("title"), max_length=200)
    description = models.TextField(_("description"), blank=True)
    requester = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        models.PROTECT,
        related_name="requested_incidents",
        verbose_name=_("requester"),
    )
    requester_phone = models.CharField(_("requester's phone"), max_length=30, blank=True)
    requester_extension = models.CharField(_("requester's extension"), max_length=20, blank=True)
    company = models.ForeignKey(
        Company, models.PROTECT, related_name="+", verbose_name=_("reporting company")
    )
    department = models.ForeignKey(
        Department,
        models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("reporting department"),
    )
    region = models.ForeignKey(
        Region,
        models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("region / site"),
    )
    business_system = models.ForeignKey(
        BusinessSystem,
        models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("business system"),
    )
    catalog_item = models.ForeignKey(
        ServiceCatalogItem,
        models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("service catalog item"),
    )
    category = models.ForeignKey(
        IncidentCategory,
        models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("category"),
    )
    channel = models.CharField(
        _("channel"), max_length=20, choices=Channel.choices, default=Channel.DESK
    )
    urgency = models.PositiveSmallIntegerField(
        _("urgency"), choices=Level.choices, default=Level.MEDIUM
    )
    impact = models.PositiveSmallIntegerField(
        _("impact"), choices=Level.choices, default=Level.MEDIUM
    )
    priority = models.CharField(
        _("priority"), max_length=2, choices=Priority.choices, default=Priority.P3, db_index=True
    )
    severity = models.CharField(_("severity"), max_length=1, choices=Severity.choices, blank=True)
    support_group = models.ForeignKey(
        SupportGroup,
        models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("support group"),
    )
    tier = models.PositiveSmallIntegerField(
        _("tier"), choices=SupportTier.choices, null=True, blank=True
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        models.PROTECT,
        null=True,
        blank=True,
        related_name="assigned_incidents",
        verbose_name=_("assignee"),
    )
    vendor = models.ForeignKey(
        Vendor, models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("vendor")
    )
    resolution_code = models.CharField(_("resolution code"), max_length=50, blank=True)
    resolution_notes = models.TextField(_("resolution"), blank=True)
    created_at = models.DateTimeField(_("reported at"), default=timezone.now, db_index=True)
    created_day = models.DateField(
        _("reported on"),
        null=True,
        editable=False,
        db_index=True,
        help_text=_("The local day of the report time; the reports bucket by it."),
    )
    resolved_at = models.DateTimeField(_("resolved at"), null=True, blank=True, db_index=True)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    auto_close_at = models.DateTimeField(
        _("closes by itself at"), null=True, blank=True, db_index=True
    )
    reassignment_count = models.PositiveIntegerField(_("reassignments"), default=0)
    reopen_count = models.PositiveIntegerField(_("reopened"), default=0)
    source_system = models.CharField(_("imported from"), max_length=30, blank=True)
    source_key = models.CharField(
        _("number in the source"),
        max_length=60,
        null=True,
        blank=True,
        help_text=_("Empty for incidents born here; the import's key otherwise."),
    )
    source_made_sla = models.BooleanField(_("SLA met (source's verdict)"), null=True, blank=True)
    imported_at = models.DateTimeField(
        _("imported at"),
        null=True,
        blank=True,
        editable=False,
        help_text=_("When an import last wrote it; what fell due before then is history."),
    )
    # Figures the reports aggregate, kept by `services.figures` whenever the state log,
    # the segments or the SLA clocks change.
    handling_seconds = models.FloatField(
        _("handling time (s)"),
        null=True,
        blank=True,
        editable=False,
        help_text=_("Reported → resolved, wall clock; empty while unresolved."),
    )
    business_seconds = models.FloatField(
        _("business handling time (s)"),
        null=True,
        blank=True,
        editable=False,
        help_text=_(
            "Reported → resolved in business time of the SLA calendar, waiting spans excluded."
        ),
    )
    sla_met = models.BooleanField(
        _("SLA met"),
        null=True,
        blank=True,
        editable=False,
        help_text=_("The resolution limit's verdict; for imported incidents the source system's."),
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("registered by"),
    )
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    history = HistoricalRecords(excluded_fields=REPORT_FIGURES)

    objects = ScopedManager()
    scope_dimensions = RECORD_DIMENSIONS
    scope_owner_fields = RECORD_OWNERS

    class Meta:
        verbose_name = _("incident")
        verbose_name_plural = _("incidents")
        ordering = ["-created_at", "-id"]
        permissions = [("view_incident_reports", "Can view incident reports")]
        constraints = [
            # NULL keys never collide, on MariaDB and SQLite alike.
            models.UniqueConstraint(
                fields=["source_system", "source_key"], name="incident_source_once"
            )
        ]
        indexes = [
            models.Index(fields=["state", "created_at"]),
            # Covers every report query (the figures, the groups, the scope's columns),
            # so a report over a million incidents reads this index, not the table.
            models.Index(fields=REPORT_INDEX, name="incident_report_cover"),
        ]

    def __str__(self) -> str:
        return f"{self.number} {self.title}"

    def save(self, *args, **kwargs) -> None:
        self.created_day = local_day(self.created_at)
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "created_at" in update_fields:
            kwargs["update_fields"] = {*update_fields, "created_day"}
        super().save(*args, **kwargs)

    @property
    def sla_history_until(self):
        """Before this moment the incident lived in another system: its SLA reminders,
        breaches and escalations due then are history and never fire here."""
        return self.imported_at

    def on_state_change(self, from_state: str, target, now) -> list[str]:
        """Stamp resolution, reopening and closing as the workflow engine saves a state."""
        from ..services.incidents import apply_state_change

        return apply_state_change(self, from_state, target, now)

    def clean(self) -> None:
        super().clean()
        if self.resolved_at and self.created_at and self.resolved_at < self.created_at:
            raise ValidationError(
                {"resolved_at": _("An incident cannot be resolved before it was reported.")},
                code="resolved_before_created",
            )


class IncidentSegment(models.Model):
    """A span of an incident's life with one state, group, tier, assignee and vendor."""

    incident = models.ForeignKey(
        Incident, models.CASCADE, related_name="segments", verbose_name=_("incident")
    )
    state = models.CharField(_("state"), max_length=40)
    state_category = models.CharField(_("state category"), max_length=20)
    sla_running = models.BooleanField(_("SLA clock runs"))
    support_group = models.ForeignKey(
        SupportGroup,
        models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("support group"),
    )
    tier = models.PositiveSmallIntegerField(_("tier"), null=True, blank=True)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("assignee"),
    )
    vendor = models.ForeignKey(
        Vendor, models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("vendor")
    )
    channel = models.CharField(_("channel"), max_length=20)
    started_at = models.DateTimeField(_("from"))
    ended_at = models.DateTimeField(_("to"), null=True, blank=True)
    wall_seconds = models.FloatField(_("wall-clock seconds"), default=0)
    business_seconds = models.FloatField(_("business seconds"), default=0)

    class Meta:
        verbose_name = _("incident segment")
        verbose_name_plural = _("incident segments")
        ordering = ["incident", "started_at", "id"]
        indexes = [
            models.Index(fields=["tier", "started_at"]),
            models.Index(fields=["assignee", "started_at"]),
            models.Index(fields=["vendor", "started_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.incident_id} {self.state} {self.started_at:%Y-%m-%d %H:%M}"
