"""Desk pages of notifications: rules, group robots, the outbox, the bells and preferences.

Outbox messages and in-app notifications carry the subject and text of the records they
are about, for recipients chosen by scope; listed together they would show every record
to whoever reads the list. Their pages are therefore for administrators only (superusers
and the administrator role), whatever model permissions another role holds. A robot's
signing secret is never shown: the form takes a new one or keeps the stored one, and
people who may only view robots see neither the secret nor the webhook's address, which
carries the robot's token.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.template import Engine, Template, TemplateSyntaxError
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from unfold.widgets import (
    UnfoldAdminPasswordWidget,
    UnfoldAdminTextInputWidget,
    UnfoldBooleanSwitchWidget,
)

from .. import roles
from ..models import (
    InAppNotification,
    NotificationPreference,
    NotificationRule,
    OutboxMessage,
    OutboxStatus,
    RobotWebhook,
)
from ..models.notifications import PERSONAL_CHANNELS, ROBOT_CHANNELS
from ..services.notifications import RELATIONS, kick_delivery
from .base import DeskAdmin, HistoryDeskAdmin, ScopedRelatedFilter, state_badge
from .sla import clean_name_list, record_link, split_names
from .workflow import process_content_types

OUTBOX_COLORS = {
    OutboxStatus.PENDING: "yellow",
    OutboxStatus.SENT: "green",
    OutboxStatus.DEAD: "red",
}


def _date(moment) -> str:
    return date_format(timezone.localtime(moment), "Y-m-d H:i") if moment else "-"


def is_administrator(user) -> bool:
    """Whether `user` is a superuser or holds the administrator role."""
    if not user.is_active or not user.is_staff:
        return False
    if user.is_superuser:
        return True
    cached = getattr(user, "_bjgas_is_administrator", None)
    if cached is None:
        cached = user.groups.filter(role__code=roles.ADMINISTRATOR).exists()
        user._bjgas_is_administrator = cached
    return cached


class AdministratorsOnlyMixin:
    """Open a page only to administrators who also hold the model permission."""

    def has_module_permission(self, request):
        return is_administrator(request.user) and super().has_module_permission(request)

    def has_view_permission(self, request, obj=None):
        return is_administrator(request.user) and super().has_view_permission(request, obj)

    def has_add_permission(self, request, *args):
        return is_administrator(request.user) and super().has_add_permission(request, *args)

    def has_change_permission(self, request, obj=None):
        return is_administrator(request.user) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return is_administrator(request.user) and super().has_delete_permission(request, obj)


# ---------------------------------------------------------------------------- rules


def clean_template(text: str, label) -> str:
    """Return `text` if it compiles as a Django template; else raise a field error."""
    try:
        Template(text, engine=Engine.get_default())
    except TemplateSyntaxError as exc:
        raise forms.ValidationError(
            _("%(field)s: the template does not compile: %(error)s")
            % {"field": label, "error": exc},
            code="bad_template",
        ) from exc
    return text


class NotificationRuleForm(forms.ModelForm):
    """A rule's names, channels and templates are checked before it is saved."""

    class Meta:
        model = NotificationRule
        fields = [
            "code",
            "name",
            "event",
            "process",
            "is_active",
            "recipient_roles",
            "recipient_relations",
            "channels",
            "robots",
            "subject_template",
            "body_template",
        ]

    def _label(self, name: str):
        return NotificationRule._meta.get_field(name).verbose_name

    def clean_recipient_relations(self) -> str:
        return clean_name_list(
            self.cleaned_data.get("recipient_relations", ""),
            RELATIONS,
            self._label("recipient_relations"),
        )

    def clean_channels(self) -> str:
        text = self.cleaned_data.get("channels", "")
        robots = [name for name in split_names(text) if name in ROBOT_CHANNELS]
        if robots:
            raise forms.ValidationError(
                _(
                    "%(field)s: %(names)s is a group robot, not a personal channel; choose "
                    "the robot under “%(robots)s”."
                )
                % {
                    "field": self._label("channels"),
                    "names": "、".join(robots),
                    "robots": self._label("robots"),
                },
                code="robot_as_channel",
            )
        return clean_name_list(text, [str(c) for c in PERSONAL_CHANNELS], self._label("channels"))

    def clean_subject_template(self) -> str:
        return clean_template(
            self.cleaned_data.get("subject_template", ""), self._label("subject_template")
        )

    def clean_body_template(self) -> str:
        return clean_template(
            self.cleaned_data.get("body_template", ""), self._label("body_template")
        )

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        robots = data.get("robots")
        has_robots = robots is not None and robots.exists()
        has_people = bool(data.get("recipient_relations")) or (
            data.get("recipient_roles") is not None and data["recipient_roles"].exists()
        )
        if not has_people and not has_robots:
            raise forms.ValidationError(
                _("The rule names nobody: choose roles or people, or a group robot."),
                code="no_recipient",
            )
        return data


@admin.register(NotificationRule)
class NotificationRuleAdmin(HistoryDeskAdmin):
    form = NotificationRuleForm
    list_display = ["code", "name", "event", "process", "channels", "robot_list", "is_active"]
    list_display_links = ["code", "name"]
    list_filter = ["is_active", "event", ("process", ScopedRelatedFilter)]
    list_select_related = ["process"]
    search_fields = ["code", "name", "event", "subject_template"]
    autocomplete_fields = ["recipient_roles", "robots"]
    fieldsets = [
        (None, {"fields": ["code", "name", "event", "process", "is_active"]}),
        (gettext_lazy("Recipients"), {"fields": ["recipient_roles", "recipient_relations"]}),
        (gettext_lazy("Channels"), {"fields": ["channels", "robots"]}),
        (
            gettext_lazy("Message"),
            {
                "description": gettext_lazy(
                    "Django template syntax: {{ record }}, {{ actor }}, {{ event }} and the "
                    "record's fields, e.g. {{ record.number }}."
                ),
                "fields": ["subject_template", "body_template"],
            },
        ),
    ]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("robots")

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "process":
            kwargs["queryset"] = process_content_types()
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    @admin.display(description=gettext_lazy("group robots"))
    def robot_list(self, obj) -> str:
        return "、".join(robot.name for robot in obj.robots.all()) or "-"


# --------------------------------------------------------------------------- robots


def mask_url(url: str) -> str:
    """Return a webhook address without the token it carries: scheme and host only."""
    parts = urlsplit(url or "")
    if not parts.netloc:
        return "-"
    return f"{parts.scheme}://{parts.netloc}/…"


class RobotWebhookForm(forms.ModelForm):
    """The secret is write-only: empty keeps the stored one, a tick removes it."""

    url = forms.URLField(
        label=gettext_lazy("webhook URL"),
        max_length=500,
        assume_scheme="https",
        widget=UnfoldAdminTextInputWidget(),
    )
    secret = forms.CharField(
        label=gettext_lazy("signing secret"),
        required=False,
        strip=True,
        widget=UnfoldAdminPasswordWidget(render_value=False, attrs={"autocomplete": "off"}),
    )
    clear_secret = forms.BooleanField(
        label=gettext_lazy("remove the stored secret"),
        required=False,
        widget=UnfoldBooleanSwitchWidget,
    )

    class Meta:
        model = RobotWebhook
        fields = ["code", "name", "channel", "url", "secret", "is_active"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        stored = bool(self.instance.pk and self.instance.secret)
        self.fields["secret"].help_text = (
            _("A secret is stored and never shown. Leave empty to keep it, or type a new one.")
            if stored
            else _("DingTalk and Feishu robots with signature security; push gateway token.")
        )
        if not stored:
            del self.fields["clear_secret"]

    def clean(self):
        data = super().clean()
        if data.get("clear_secret"):
            data["secret"] = ""
        elif not data.get("secret"):
            data["secret"] = self.instance.secret  # the stored one, before the form sets it
        return data


@admin.register(RobotWebhook)
class RobotWebhookAdmin(HistoryDeskAdmin):
    form = RobotWebhookForm
    list_display = ["code", "name", "channel", "url_display", "secret_display", "is_active"]
    list_display_links = ["code", "name"]
    list_filter = ["channel", "is_active"]
    search_fields = ["code", "name"]
    readonly_fields = ["url_display", "secret_display"]

    def get_fields(self, request, obj=None):
        if self.has_change_permission(request, obj):
            fields = ["code", "name", "channel", "url", "secret", "is_active"]
            if obj is not None and obj.secret:
                fields.insert(5, "clear_secret")
            return fields
        return ["code", "name", "channel", "url_display", "secret_display", "is_active"]

    def history_view(self, request, object_id, extra_context=None):
        # Past versions show the webhook address, which carries the robot's token.
        if not self.has_change_permission(request):
            raise PermissionDenied
        return super().history_view(request, object_id, extra_context)

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        if not self.has_change_permission(request):
            raise PermissionDenied
        return super().history_form_view(request, object_id, version_id, extra_context)

    @admin.display(description=gettext_lazy("webhook URL"))
    def url_display(self, obj) -> str:
        return mask_url(obj.url)

    @admin.display(description=gettext_lazy("signing secret"))
    def secret_display(self, obj) -> str:
        return _("stored") if obj.secret else "-"


# --------------------------------------------------------------------------- outbox


class ReadOnlyAdministratorsAdmin(AdministratorsOnlyMixin, DeskAdmin):
    """A list for administrators whose rows nobody adds or edits in the desk."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(OutboxMessage)
class OutboxMessageAdmin(ReadOnlyAdministratorsAdmin):
    list_display = [
        "created_at",
        "channel",
        "target_display",
        "subject",
        "record_display",
        "status_display",
        "attempts",
        "when_display",
        "error_display",
    ]
    list_filter = ["status", "channel", ("robot", ScopedRelatedFilter)]
    list_select_related = ["recipient", "robot"]
    search_fields = ["subject", "idempotency_key", "recipient__username", "recipient__full_name"]
    date_hierarchy = "created_at"
    ordering = ["-created_at", "-id"]
    actions = ["retry_now"]
    change_list_template = "bjgas_platform/admin/outbox_change_list.html"
    fields = [
        "idempotency_key",
        "channel",
        "recipient",
        "robot",
        "record_display",
        "url",
        "subject",
        "body",
        "status",
        "attempts",
        "next_attempt_at",
        "last_error",
        "created_at",
        "sent_at",
    ]
    readonly_fields = fields

    def has_change_permission(self, request, obj=None):
        # The rows are read-only; the list's "retry now" needs the change permission.
        return obj is None and super().has_change_permission(request, obj)

    @admin.display(description=gettext_lazy("sent to"))
    def target_display(self, obj) -> str:
        if obj.recipient_id:
            return str(obj.recipient)
        return str(obj.robot) if obj.robot_id else "-"

    @admin.display(description=gettext_lazy("record"))
    def record_display(self, obj):
        if obj.content_type_id is None or obj.object_id is None:
            return "-"
        return record_link(obj.content_type_id, obj.object_id)

    @admin.display(description=gettext_lazy("status"), ordering="status")
    def status_display(self, obj):
        return state_badge(obj.get_status_display(), OUTBOX_COLORS.get(obj.status, "gray"))

    @admin.display(description=gettext_lazy("sent at / next attempt"), ordering="next_attempt_at")
    def when_display(self, obj) -> str:
        if obj.status == OutboxStatus.SENT:
            return _date(obj.sent_at)
        if obj.status == OutboxStatus.PENDING:
            return _date(obj.next_attempt_at)
        return "-"

    @admin.display(description=gettext_lazy("last error"))
    def error_display(self, obj) -> str:
        error = obj.last_error or ""
        return error if len(error) <= 80 else error[:79] + "…"

    @admin.action(description=gettext_lazy("Retry now"), permissions=["change"])
    def retry_now(self, request, queryset):
        """Make the chosen pending and given-up messages due now; sent ones stay as they are.

        A given-up message starts its attempts afresh. A message a worker is sending at
        this very moment may go out a second time.
        """
        now = timezone.now()
        with transaction.atomic():
            waiting = queryset.filter(status=OutboxStatus.PENDING).update(next_attempt_at=now)
            revived = queryset.filter(status=OutboxStatus.DEAD).update(
                status=OutboxStatus.PENDING, attempts=0, next_attempt_at=now
            )
            transaction.on_commit(kick_delivery)
        sent = queryset.filter(status=OutboxStatus.SENT).count()
        count = waiting + revived
        self.message_user(
            request,
            ngettext(
                "%(count)s message will be sent again now.",
                "%(count)s messages will be sent again now.",
                count,
            )
            % {"count": count},
            messages.SUCCESS if count else messages.WARNING,
        )
        if sent:
            self.message_user(
                request,
                ngettext(
                    "%(count)s message was sent already and was left alone.",
                    "%(count)s messages were sent already and were left alone.",
                    sent,
                )
                % {"count": sent},
                messages.INFO,
            )


@admin.register(InAppNotification)
class InAppNotificationAdmin(ReadOnlyAdministratorsAdmin):
    list_display = ["created_at", "user", "title", "record_display", "read_at"]
    list_filter = [("read_at", admin.EmptyFieldListFilter)]
    list_select_related = ["user"]
    search_fields = ["title", "user__username", "user__full_name"]
    date_hierarchy = "created_at"
    ordering = ["-created_at", "-id"]
    fields = ["user", "title", "body", "url", "record_display", "created_at", "read_at"]
    readonly_fields = fields

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description=gettext_lazy("record"))
    def record_display(self, obj):
        if obj.content_type_id is None or obj.object_id is None:
            return "-"
        return record_link(obj.content_type_id, obj.object_id)


@admin.register(NotificationPreference)
class NotificationPreferenceAdmin(AdministratorsOnlyMixin, DeskAdmin):
    list_display = ["user", "in_app", "email", "push"]
    list_filter = ["in_app", "email", "push"]
    list_select_related = ["user"]
    search_fields = ["user__username", "user__full_name"]
    autocomplete_fields = ["user"]
    fields = ["user", "in_app", "email", "push"]
