"""Service-level policies, the clocks they run on each record, and the events they fire.

A clock's figures are always derived from the record's state history and comments
(`services.sla.refresh_clocks`), so an imported record with a past history and a live one
get the same figures, and a changed policy or calendar can be re-applied at any time.
"""

from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.core.validators import MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from .calendar import BusinessCalendar
from .org import ServiceCatalogItem, code_validator
from .workflow import RecordLinkMixin


class SlaMetric(models.TextChoices):
    DISPATCH = "dispatch", _("Dispatch (created → dispatched)")
    ACCEPT = "accept", _("Acceptance (dispatched → accepted)")
    RESPONSE = "response", _("First response")
    RESOLUTION = "resolution", _("Resolution")


class SlaRelation(models.TextChoices):
    """People an escalation can name by their relation to the record."""

    ASSIGNEE = "assignee", _("The assignee")
    SUPPORT_GROUP_LEADER = "support_group_leader", _("The support group's team lead")
    REQUESTER_DEPARTMENT_HEAD = "requester_department_head", _("The requester's department head")
    VENDOR_CONTACT = "vendor_contact", _("The vendor's contact")


minutes_validator = MinValueValidator(1, _("A limit must be at least one minute."))


class SlaPolicy(models.Model):
    """Time limits for one process, optionally one catalog item, priority or severity.

    The most specific active policy wins: a catalog-item match beats none, and each of
    priority and severity that is set and matches beats one left empty.
    """

    code = models.CharField(_("code"), max_length=40, unique=True, validators=[code_validator])
    name = models.CharField(_("name"), max_length=100)
    process = models.ForeignKey(
        ContentType, models.PROTECT, related_name="+", verbose_name=_("process")
    )
    catalog_item = models.ForeignKey(
        ServiceCatalogItem,
        models.CASCADE,
        null=True,
        blank=True,
        related_name="sla_policies",
        verbose_name=_("service catalog item"),
        help_text=_("Empty: every item."),
    )
    priority = models.CharField(
        _("priority"), max_length=10, blank=True, help_text=_("Empty: every priority.")
    )
    severity = models.CharField(
        _("severity"), max_length=10, blank=True, help_text=_("Empty: every severity.")
    )
    calendar = models.ForeignKey(
        BusinessCalendar, models.PROTECT, related_name="policies", verbose_name=_("calendar")
    )
    dispatch_minutes = models.PositiveIntegerField(
        _("dispatch limit (min)"), null=True, blank=True, validators=[minutes_validator]
    )
    accept_minutes = models.PositiveIntegerField(
        _("acceptance limit (min)"), null=True, blank=True, validators=[minutes_validator]
    )
    response_minutes = models.PositiveIntegerField(
        _("first-response limit (min)"), null=True, blank=True, validators=[minutes_validator]
    )
    resolution_minutes = models.PositiveIntegerField(
        _("resolution limit (min)"), null=True, blank=True, validators=[minutes_validator]
    )
    reminder_percents = models.CharField(
        # xgettext:no-python-format
        _("reminders at (% of the limit)"),
        max_length=50,
        blank=True,
        default="75",
        help_text=_("Comma-separated percentages, e.g. 50,75,90."),
    )
    is_active = models.BooleanField(_("active"), default=True)
    history = HistoricalRecords()

    class Meta:
        verbose_name = _("SLA policy")
        verbose_name_plural = _("SLA policies")
        ordering = ["code"]

    def __str__(self) -> str:
        return self.name

    def limit_minutes(self, metric: str) -> int | None:
        return getattr(self, f"{metric}_minutes")


class SlaEscalationLevel(models.Model):
    """Whom to notify when a limit has been breached for a given time."""

    policy = models.ForeignKey(
        SlaPolicy, models.CASCADE, related_name="escalations", verbose_name=_("policy")
    )
    metric = models.CharField(_("limit"), max_length=20, choices=SlaMetric.choices)
    level = models.PositiveSmallIntegerField(_("level"), validators=[MinValueValidator(1)])
    after_minutes = models.PositiveIntegerField(
        _("minutes after the breach"),
        default=0,
        help_text=_("Business minutes on the policy's calendar."),
    )
    notify_roles = models.ManyToManyField(
        Group, blank=True, related_name="+", verbose_name=_("notify roles")
    )
    notify_relations = models.CharField(
        _("notify people"),
        max_length=200,
        blank=True,
        help_text=_(
            "Comma-separated: assignee, support_group_leader, "
            "requester_department_head, vendor_contact."
        ),
    )

    class Meta:
        verbose_name = _("escalation level")
        verbose_name_plural = _("escalation levels")
        ordering = ["policy", "metric", "level"]
        constraints = [
            models.UniqueConstraint(
                fields=["policy", "metric", "level"], name="sla_escalation_level_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_metric_display()} L{self.level} +{self.after_minutes}min"


class SlaClockStatus(models.TextChoices):
    RUNNING = "running", _("Running")
    PAUSED = "paused", _("Paused")
    MET = "met", _("Met")
    BREACHED = "breached", _("Breached")


class SlaClock(RecordLinkMixin):
    """One limit of one record: when it started, is due, stopped; how much time it used."""

    metric = models.CharField(_("limit"), max_length=20, choices=SlaMetric.choices)
    policy = models.ForeignKey(
        SlaPolicy, models.SET_NULL, null=True, related_name="+", verbose_name=_("policy")
    )
    limit_seconds = models.PositiveIntegerField(_("limit (s)"))
    started_at = models.DateTimeField(_("started at"))
    due_at = models.DateTimeField(_("due at"), null=True, blank=True)
    stopped_at = models.DateTimeField(_("stopped at"), null=True, blank=True)
    elapsed_seconds = models.FloatField(_("business time used (s)"), default=0)
    paused_seconds = models.FloatField(_("business time paused (s)"), default=0)
    status = models.CharField(
        _("status"), max_length=20, choices=SlaClockStatus.choices, default=SlaClockStatus.RUNNING
    )
    breached = models.BooleanField(_("breached"), default=False)
    next_check_at = models.DateTimeField(_("next check"), null=True, blank=True, db_index=True)
    warning = models.CharField(_("warning"), max_length=300, blank=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta(RecordLinkMixin.Meta):
        verbose_name = _("SLA clock")
        verbose_name_plural = _("SLA clocks")
        constraints = [
            models.UniqueConstraint(
                fields=["content_type", "object_id", "metric"], name="sla_clock_once_per_metric"
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_metric_display()}: {self.get_status_display()}"


class SlaEventKind(models.TextChoices):
    REMINDER = "reminder", _("Reminder")
    BREACH = "breach", _("Breach")
    ESCALATION = "escalation", _("Escalation")


class SlaEvent(models.Model):
    """A reminder or escalation that fired; unique per clock, kind, level and deadline."""

    clock = models.ForeignKey(
        SlaClock, models.CASCADE, related_name="events", verbose_name=_("SLA clock")
    )
    kind = models.CharField(_("kind"), max_length=20, choices=SlaEventKind.choices)
    level = models.PositiveSmallIntegerField(_("level or percent"))
    due_at = models.DateTimeField(_("deadline"))
    fire_at = models.DateTimeField(_("planned for"))
    fired_at = models.DateTimeField(_("fired at"), auto_now_add=True)

    class Meta:
        verbose_name = _("SLA event")
        verbose_name_plural = _("SLA events")
        ordering = ["fire_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["clock", "kind", "level", "due_at"], name="sla_event_once_per_deadline"
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.level} @ {self.fire_at:%Y-%m-%d %H:%M}"
