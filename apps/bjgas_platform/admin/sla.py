"""Desk pages of the SLA engine: policies with their escalation levels, clocks and events.

A saved policy, calendar or public holiday changes the deadlines of records already open,
so after the save commits the desk asks a worker to derive their clocks again
(`tasks.reapply_sla`). When the task queue cannot be reached, the re-application runs at
once in the request instead: the periodic sweep fires what is due but never re-derives,
so a change queued nowhere would otherwise stay unapplied until each record moves again.
"""

from __future__ import annotations

import logging

from django import forms
from django.contrib import admin, messages
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext, pgettext_lazy
from unfold.forms import PaginationInlineFormSet

from ..models import (
    SlaClock,
    SlaClockStatus,
    SlaEscalationLevel,
    SlaEvent,
    SlaEventKind,
    SlaMetric,
    SlaPolicy,
    SlaRelation,
)
from ..tasks import reapply_sla
from .base import (
    DeskAdmin,
    DeskTabularInline,
    HistoryDeskAdmin,
    ScopedRelatedFilter,
    state_badge,
)
from .workflow import ColumnWidthsMixin, RecordLogAdmin, kept_forms, process_content_types

logger = logging.getLogger(__name__)

LIMIT_FIELDS = {
    SlaMetric.DISPATCH: "dispatch_minutes",
    SlaMetric.ACCEPT: "accept_minutes",
    SlaMetric.RESPONSE: "response_minutes",
    SlaMetric.RESOLUTION: "resolution_minutes",
}
# Short names of the limits for the policy list (a context keeps them apart from the
# same English words elsewhere, e.g. an incident's resolution notes).
SHORT_LABELS = {
    SlaMetric.DISPATCH: pgettext_lazy("SLA limit", "dispatch"),
    SlaMetric.ACCEPT: pgettext_lazy("SLA limit", "acceptance"),
    SlaMetric.RESPONSE: pgettext_lazy("SLA limit", "response"),
    SlaMetric.RESOLUTION: pgettext_lazy("SLA limit", "resolution"),
}
CLOCK_COLORS = {
    SlaClockStatus.RUNNING: "blue",
    SlaClockStatus.PAUSED: "orange",
    SlaClockStatus.MET: "green",
    SlaClockStatus.BREACHED: "red",
}


# ------------------------------------------------------------------ re-application


def reapply_after_commit(
    request, *, policy_id: int | None = None, calendar_id: int | None = None
) -> None:
    """Once the save commits, re-derive the clocks of the open records the change touches.

    With neither id every policy is re-applied (a public holiday, a deleted policy). One
    request queues each target once, however many rows it saved.
    """
    target = (policy_id, calendar_id)
    queued = request.__dict__.setdefault("_bjgas_sla_reapply", set())
    if target in queued or (None, None) in queued:
        return
    queued.add(target)
    transaction.on_commit(
        lambda: queue_reapply(request, policy_id=policy_id, calendar_id=calendar_id)
    )


def queue_reapply(request, *, policy_id: int | None, calendar_id: int | None) -> None:
    """Queue `reapply_sla`; if the broker cannot be reached, run it here and say so."""
    kwargs = {"policy_id": policy_id, "calendar_id": calendar_id}
    try:
        reapply_sla.delay(**kwargs)
    except Exception:
        logger.warning(
            "Could not queue the SLA re-application (policy %s, calendar %s); running it now.",
            policy_id,
            calendar_id,
            exc_info=True,
        )
    else:
        messages.info(
            request, _("The open records' deadlines are being recalculated in the background.")
        )
        return
    try:
        count = reapply_sla(**kwargs)
    except Exception:
        logger.exception(
            "The SLA re-application failed (policy %s, calendar %s).", policy_id, calendar_id
        )
        messages.error(
            request,
            _(
                "The change was saved, but the open records' deadlines could not be "
                "recalculated; save it again once the task queue is back."
            ),
        )
        return
    messages.warning(
        request,
        ngettext(
            "The task queue could not be reached, so the deadlines of %(count)s open record "
            "were recalculated now.",
            "The task queue could not be reached, so the deadlines of %(count)s open records "
            "were recalculated now.",
            count,
        )
        % {"count": count},
    )


# ------------------------------------------------------------------------ helpers


def split_names(text: str) -> list[str]:
    """Return the comma-separated names of `text`, stripped, without repeats, in order."""
    names: list[str] = []
    for part in (text or "").replace("，", ",").split(","):
        part = part.strip()
        if part and part not in names:
            names.append(part)
    return names


def clean_name_list(text: str, allowed, label) -> str:
    """Return `text` as 'a,b,c' if every name is in `allowed`; else raise a field error."""
    names = split_names(text)
    unknown = [name for name in names if name not in allowed]
    if unknown:
        raise ValidationError(
            ngettext(
                "%(field)s: %(names)s is not a known name; use some of: %(allowed)s.",
                "%(field)s: %(names)s are not known names; use some of: %(allowed)s.",
                len(unknown),
            )
            % {
                "field": label,
                "names": "、".join(f"“{name}”" for name in unknown),
                "allowed": ", ".join(allowed),
            },
            code="unknown_name",
        )
    return ",".join(names)


def format_minutes(minutes: int | None) -> str:
    """Return a limit in minutes as '30m', '2h' or '1h30m' ('-' when not set)."""
    if not minutes:
        return "-"
    hours, rest = divmod(minutes, 60)
    if not hours:
        return f"{rest}m"
    return f"{hours}h{rest}m" if rest else f"{hours}h"


def record_link(content_type_id: int, object_id: int, record=None):
    """Return a link to a record's desk page, or its name when it has none."""
    model = ContentType.objects.get_for_id(content_type_id).model_class()
    text = str(record) if record is not None else f"{model._meta.verbose_name} #{object_id}"
    try:
        url = reverse(
            f"admin:{model._meta.app_label}_{model._meta.model_name}_change", args=[object_id]
        )
    except NoReverseMatch:
        return text
    return format_html('<a href="{}" class="text-primary-600">{}</a>', url, text)


# ------------------------------------------------------------------------ policies


class SlaPolicyForm(forms.ModelForm):
    """The policy's own fields: at least one limit, reminder percentages that make sense."""

    class Meta:
        model = SlaPolicy
        fields = [
            "code",
            "name",
            "process",
            "is_active",
            "catalog_item",
            "priority",
            "severity",
            "calendar",
            *LIMIT_FIELDS.values(),
            "reminder_percents",
        ]

    def clean_reminder_percents(self) -> str:
        text = self.cleaned_data.get("reminder_percents", "")
        found: list[int] = []
        for part in split_names(text):
            number = part.rstrip("%").strip()
            if not number.isdigit() or not 0 < int(number) < 100:
                raise ValidationError(
                    _(
                        "%(field)s: “%(part)s” is not a whole percentage between 1 and 99; "
                        "write e.g. 50,75,90."
                    )
                    % {
                        "field": SlaPolicy._meta.get_field("reminder_percents").verbose_name,
                        "part": part,
                    },
                    code="bad_percent",
                )
            if int(number) not in found:
                found.append(int(number))
        return ",".join(str(n) for n in sorted(found))

    def clean(self):
        data = super().clean()
        names = LIMIT_FIELDS.values()
        if any(name in self.errors for name in names):
            return data  # a limit that is wrong is said so beside it
        if all(data.get(name) is None for name in names):
            raise ValidationError(
                _(
                    "Fill in at least one limit: dispatch, acceptance, first response or "
                    "resolution."
                ),
                code="no_limit",
            )
        return data


class EscalationLevelForm(forms.ModelForm):
    class Meta:
        model = SlaEscalationLevel
        fields = ["metric", "level", "after_minutes", "notify_roles", "notify_relations"]

    def clean_notify_relations(self) -> str:
        return clean_name_list(
            self.cleaned_data.get("notify_relations", ""),
            SlaRelation.values,
            SlaEscalationLevel._meta.get_field("notify_relations").verbose_name,
        )


class EscalationFormSet(PaginationInlineFormSet):
    """The escalation table; a level must belong to a limit the policy sets."""

    def clean(self):
        super().clean()
        if any(form.errors for form in self.forms):
            return
        policy = self.instance
        problems = []
        for form in kept_forms(self):
            level = form.instance
            metric = level.metric
            if metric in LIMIT_FIELDS and not getattr(policy, LIMIT_FIELDS[metric]):
                problems.append(
                    ValidationError(
                        _(
                            "Escalation level %(level)s of “%(metric)s”: the policy sets no such "
                            "limit; fill in the limit or remove the level."
                        )
                        % {"level": level.level, "metric": level.get_metric_display()},
                        code="escalation_without_limit",
                    )
                )
        if problems:
            raise ValidationError(problems)


class SlaEscalationLevelInline(ColumnWidthsMixin, DeskTabularInline):
    model = SlaEscalationLevel
    column_widths = {
        "metric": "9rem",
        "level": "4.5rem",
        "after_minutes": "6rem",
        "notify_relations": "22rem",
    }
    form = EscalationLevelForm
    formset = EscalationFormSet
    fields = ["metric", "level", "after_minutes", "notify_roles", "notify_relations"]
    autocomplete_fields = ["notify_roles"]


@admin.register(SlaPolicy)
class SlaPolicyAdmin(HistoryDeskAdmin):
    form = SlaPolicyForm
    list_display = [
        "code",
        "name",
        "process",
        "catalog_item",
        "priority",
        "severity",
        "calendar",
        "limits_display",
        "is_active",
    ]
    list_display_links = ["code", "name"]
    list_filter = [
        "is_active",
        ("process", ScopedRelatedFilter),
        ("calendar", ScopedRelatedFilter),
        "priority",
        "severity",
    ]
    list_select_related = ["process", "catalog_item", "calendar"]
    search_fields = ["code", "name", "catalog_item__name", "catalog_item__code"]
    autocomplete_fields = ["catalog_item", "calendar"]
    inlines = [SlaEscalationLevelInline]
    fieldsets = [
        (None, {"fields": ["code", "name", "process", "is_active"]}),
        (
            gettext_lazy("Applies to"),
            {
                "description": gettext_lazy(
                    "The most specific active policy wins: a catalog item beats its parent "
                    "and no item; a matching priority and severity beat an empty one."
                ),
                "fields": ["catalog_item", "priority", "severity"],
            },
        ),
        (
            gettext_lazy("Limits (business minutes on the calendar)"),
            {
                "fields": [
                    "calendar",
                    "dispatch_minutes",
                    "accept_minutes",
                    "response_minutes",
                    "resolution_minutes",
                    "reminder_percents",
                ]
            },
        ),
    ]

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "process":
            kwargs["queryset"] = process_content_types()
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    @admin.display(description=gettext_lazy("limits"))
    def limits_display(self, obj) -> str:
        parts = [
            f"{SHORT_LABELS[metric]} {format_minutes(getattr(obj, name))}"
            for metric, name in LIMIT_FIELDS.items()
            if getattr(obj, name)
        ]
        return " · ".join(parts) or "-"

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        reapply_after_commit(request, policy_id=form.instance.pk)

    def delete_model(self, request, obj):
        super().delete_model(request, obj)
        reapply_after_commit(request)  # the records it timed fall to another policy

    def delete_queryset(self, request, queryset):
        super().delete_queryset(request, queryset)
        reapply_after_commit(request)


# --------------------------------------------------------------------- clocks, events


class ClockRecordScopeMixin:
    """Show rows about a record only when the user may see the record."""

    record_path = ""  # the path to the row's content_type / object_id, e.g. "clock__"

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        user = request.user
        if user.is_superuser:
            return queryset
        ct_field, id_field = f"{self.record_path}content_type", f"{self.record_path}object_id"
        allowed = Q(pk__in=[])
        type_ids = queryset.order_by().values_list(ct_field, flat=True).distinct()
        for type_id in type_ids:
            model = ContentType.objects.get_for_id(type_id).model_class()
            if model is None:
                continue
            manager = model._default_manager
            if hasattr(manager, "visible_to"):
                visible = manager.visible_to(user).values("pk")
                allowed |= Q(**{ct_field: type_id, f"{id_field}__in": visible})
            elif user.has_perm(f"{model._meta.app_label}.view_{model._meta.model_name}"):
                allowed |= Q(**{ct_field: type_id})
        return queryset.filter(allowed)


class WarningFilter(admin.SimpleListFilter):
    title = gettext_lazy("warning")
    parameter_name = "has_warning"

    def lookups(self, request, model_admin):
        return [("yes", _("With a warning")), ("no", _("Without"))]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.exclude(warning="")
        if self.value() == "no":
            return queryset.filter(warning="")
        return queryset


@admin.register(SlaClock)
class SlaClockAdmin(RecordLogAdmin):
    list_display = [
        "record_link_display",
        "metric",
        "status_display",
        "started_at",
        "due_at",
        "breached",
        "used_display",
        "policy",
        "warning",
    ]
    list_filter = [
        "metric",
        "status",
        "breached",
        WarningFilter,
        ("policy", ScopedRelatedFilter),
        ("content_type", ScopedRelatedFilter),
    ]
    list_select_related = ["policy", "content_type"]
    search_fields = ["warning", "policy__name", "policy__code"]
    date_hierarchy = "due_at"
    ordering = ["due_at", "id"]
    fields = [
        "record_link_display",
        "metric",
        "policy",
        "status_display",
        "breached",
        "limit_seconds",
        "started_at",
        "due_at",
        "stopped_at",
        "elapsed_seconds",
        "paused_seconds",
        "next_check_at",
        "warning",
        "updated_at",
    ]
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("record")

    @admin.display(description=gettext_lazy("record"))
    def record_link_display(self, obj):
        return record_link(obj.content_type_id, obj.object_id, obj.record)

    @admin.display(description=gettext_lazy("status"), ordering="status")
    def status_display(self, obj):
        return state_badge(obj.get_status_display(), CLOCK_COLORS.get(obj.status, "gray"))

    @admin.display(description=gettext_lazy("used / limit"))
    def used_display(self, obj) -> str:
        used = format_minutes(int(obj.elapsed_seconds // 60)) if obj.elapsed_seconds >= 60 else "0m"
        return f"{used} / {format_minutes(obj.limit_seconds // 60)}"


@admin.register(SlaEvent)
class SlaEventAdmin(ClockRecordScopeMixin, DeskAdmin):
    record_path = "clock__"
    list_display = [
        "fired_at",
        "kind",
        "level_display",
        "metric_display",
        "record_link_display",
        "due_at",
        "fire_at",
    ]
    list_filter = ["kind", "clock__metric"]
    list_select_related = ["clock"]
    date_hierarchy = "fired_at"
    ordering = ["-fired_at", "-id"]
    fields = [
        "record_link_display",
        "metric_display",
        "kind",
        "level",
        "due_at",
        "fire_at",
        "fired_at",
    ]
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("clock__record")

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=gettext_lazy("record"))
    def record_link_display(self, obj):
        clock = obj.clock
        return record_link(clock.content_type_id, clock.object_id, clock.record)

    @admin.display(description=gettext_lazy("limit"), ordering="clock__metric")
    def metric_display(self, obj) -> str:
        return obj.clock.get_metric_display()

    @admin.display(description=gettext_lazy("level"), ordering="level")
    def level_display(self, obj) -> str:
        if obj.kind == SlaEventKind.REMINDER:
            return f"{obj.level}%"
        if obj.kind == SlaEventKind.ESCALATION:
            return f"L{obj.level}"
        return "-"
