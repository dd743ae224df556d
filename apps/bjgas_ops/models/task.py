"""Tasks (任务): a unit of work assigned to a support group or engineer."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from apps.bjgas_platform.models import (
    BusinessSystem,
    Company,
    Department,
    Region,
    ScopedManager,
    SupportGroup,
    Vendor,
    WorkflowRecord,
)
from apps.bjgas_platform.models.scope import RECORD_DIMENSIONS, RECORD_OWNERS

from ..choices import Priority


class Task(WorkflowRecord):
    """A piece of work with a requester, an owner group and a workflow."""

    number = models.CharField(_("number"), max_length=30, unique=True, editable=False)
    title = models.CharField(_("title"), max_length=200)
    description = models.TextField(_("description"), blank=True)
    requester = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        models.PROTECT,
        related_name="requested_tasks",
        verbose_name=_("requester"),
    )
    company = models.ForeignKey(
        Company, models.PROTECT, related_name="+", verbose_name=_("company")
    )
    department = models.ForeignKey(
        Department,
        models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("department"),
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
    vendor = models.ForeignKey(
        Vendor, models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("vendor")
    )
    support_group = models.ForeignKey(
        SupportGroup,
        models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("support group"),
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        models.PROTECT,
        null=True,
        blank=True,
        related_name="assigned_tasks",
        verbose_name=_("assignee"),
    )
    priority = models.CharField(
        _("priority"), max_length=2, choices=Priority.choices, default=Priority.P3
    )
    due_date = models.DateField(_("due date"), null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.PROTECT, related_name="+", verbose_name=_("created by")
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    history = HistoricalRecords()

    objects = ScopedManager()
    scope_dimensions = RECORD_DIMENSIONS
    scope_owner_fields = RECORD_OWNERS

    class Meta:
        verbose_name = _("task")
        verbose_name_plural = _("tasks")
        ordering = ["-number"]

    def __str__(self) -> str:
        return f"{self.number} {self.title}"
