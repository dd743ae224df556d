"""Notifications: rules, each user's channels, robot webhooks, the outbox and the bell."""

from django.conf import settings
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from .org import code_validator


class Channel(models.TextChoices):
    IN_APP = "in_app", _("In-app (bell)")
    EMAIL = "email", _("E-mail")
    WECOM = "wecom", _("WeCom group robot")
    DINGTALK = "dingtalk", _("DingTalk group robot")
    FEISHU = "feishu", _("Feishu group robot")
    PUSH = "push", _("Mobile-app push gateway")


PERSONAL_CHANNELS = (Channel.IN_APP, Channel.EMAIL, Channel.PUSH)
ROBOT_CHANNELS = (Channel.WECOM, Channel.DINGTALK, Channel.FEISHU)


class RobotWebhook(models.Model):
    """A group robot (WeCom, DingTalk, Feishu) or the push gateway's endpoint."""

    code = models.CharField(_("code"), max_length=40, unique=True, validators=[code_validator])
    name = models.CharField(_("name"), max_length=100)
    channel = models.CharField(_("kind"), max_length=20, choices=Channel.choices)
    url = models.URLField(_("webhook URL"), max_length=500)
    secret = models.CharField(
        _("signing secret"),
        max_length=200,
        blank=True,
        help_text=_("DingTalk and Feishu robots with signature security; push gateway token."),
    )
    is_active = models.BooleanField(_("active"), default=True)
    history = HistoricalRecords(excluded_fields=["secret"])

    class Meta:
        verbose_name = _("robot webhook")
        verbose_name_plural = _("robot webhooks")
        ordering = ["code"]

    def __str__(self) -> str:
        return self.name


class NotificationRule(models.Model):
    """On an event of a process, tell these people and robots through these channels."""

    code = models.CharField(_("code"), max_length=40, unique=True, validators=[code_validator])
    name = models.CharField(_("name"), max_length=100)
    event = models.CharField(
        _("event"),
        max_length=60,
        db_index=True,
        help_text=_("e.g. incident.created, incident.supplemented, sla.reminder, sla.escalation"),
    )
    process = models.ForeignKey(
        ContentType,
        models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("process"),
        help_text=_("Empty: every process."),
    )
    recipient_roles = models.ManyToManyField(
        Group, blank=True, related_name="+", verbose_name=_("roles")
    )
    recipient_relations = models.CharField(
        _("people"),
        max_length=300,
        blank=True,
        help_text=_(
            "Comma-separated relations: requester, assignee, support_group_members, "
            "support_group_leader, requester_department_head, vendor_contact, "
            "and the event's own recipients: event_recipients."
        ),
    )
    channels = models.CharField(
        _("personal channels"),
        max_length=100,
        default="in_app,email",
        help_text=_("Comma-separated: in_app, email, push. Each person's own switches apply."),
    )
    robots = models.ManyToManyField(
        RobotWebhook, blank=True, related_name="rules", verbose_name=_("group robots")
    )
    subject_template = models.CharField(_("subject"), max_length=200)
    body_template = models.TextField(_("text"))
    is_active = models.BooleanField(_("active"), default=True)
    history = HistoricalRecords(m2m_fields=[recipient_roles, robots])

    class Meta:
        verbose_name = _("notification rule")
        verbose_name_plural = _("notification rules")
        ordering = ["event", "code"]

    def __str__(self) -> str:
        return self.name


class NotificationPreference(models.Model):
    """A user's own channel switches; missing means every channel is on."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        models.CASCADE,
        related_name="notification_preference",
        verbose_name=_("user"),
    )
    in_app = models.BooleanField(_("in-app"), default=True)
    email = models.BooleanField(_("e-mail"), default=True)
    push = models.BooleanField(_("mobile push"), default=True)

    class Meta:
        verbose_name = _("notification preference")
        verbose_name_plural = _("notification preferences")

    def __str__(self) -> str:
        return str(self.user)


class OutboxStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    SENT = "sent", _("Sent")
    DEAD = "dead", _("Given up")


class OutboxMessage(models.Model):
    """One message to deliver, written in the transaction of the change that caused it."""

    idempotency_key = models.CharField(_("idempotency key"), max_length=200, unique=True)
    channel = models.CharField(_("channel"), max_length=20, choices=Channel.choices)
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("recipient"),
    )
    robot = models.ForeignKey(
        RobotWebhook,
        models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("robot"),
    )
    content_type = models.ForeignKey(
        ContentType,
        models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("kind of record"),
    )
    object_id = models.PositiveBigIntegerField(_("record id"), null=True, blank=True)
    subject = models.CharField(_("subject"), max_length=200)
    body = models.TextField(_("text"))
    url = models.CharField(_("link"), max_length=300, blank=True)
    status = models.CharField(
        _("status"), max_length=10, choices=OutboxStatus.choices, default=OutboxStatus.PENDING
    )
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt"), db_index=True)
    last_error = models.TextField(_("last error"), blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)

    class Meta:
        verbose_name = _("outbox message")
        verbose_name_plural = _("outbox")
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "next_attempt_at"])]

    def __str__(self) -> str:
        return f"{self.get_channel_display()}: {self.subject}"


class InAppNotification(models.Model):
    """A message in a user's bell, usually about one record."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        models.CASCADE,
        related_name="notifications",
        verbose_name=_("user"),
    )
    content_type = models.ForeignKey(
        ContentType,
        models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("kind of record"),
    )
    object_id = models.PositiveBigIntegerField(_("record id"), null=True, blank=True)
    title = models.CharField(_("title"), max_length=200)
    body = models.TextField(_("text"), blank=True)
    url = models.CharField(_("link"), max_length=300, blank=True)
    created_at = models.DateTimeField(_("at"), auto_now_add=True)
    read_at = models.DateTimeField(_("read at"), null=True, blank=True)

    class Meta:
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["user", "read_at"])]

    def __str__(self) -> str:
        return self.title
