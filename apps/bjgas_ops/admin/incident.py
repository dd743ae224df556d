"""The desk's incident pages: the tracking list with colored priority and urgency and an
overdue marker from the SLA clocks, creation through the service, workflow buttons,
assignment (escalation, transfer), comments, the requester's supplement and history."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST
from unfold.contrib.filters.admin import RelatedDropdownFilter

from apps.bjgas_platform.admin.base import HistoryDeskAdmin, ScopedRelatedFilter, state_badge
from apps.bjgas_platform.admin.records import (
    LOADED_VERSION,
    WorkflowRecordAdminMixin,
    WorkflowStateFilter,
)
from apps.bjgas_platform.models import SlaClock, SupportGroup, User, Vendor
from apps.bjgas_platform.services.errors import PlatformError
from apps.bjgas_platform.services.workflow import WorkflowError, default_workflow

from ..models import Channel, Incident
from ..services import incidents as service

PRIORITY_COLORS = {"P1": "red", "P2": "orange", "P3": "yellow", "P4": "gray"}
LEVEL_COLORS = {1: "red", 2: "orange", 3: "blue", 4: "gray"}
SEVERITY_COLORS = {"A": "red", "B": "orange", "C": "blue"}
KIND_COLORS = {"reply": "blue", "note": "purple", "supplement": "orange", "system": "gray"}

ADD_FIELDSETS_BASE = [
    (
        None,
        {"fields": ["title", "description", "catalog_item", "category", "business_system"]},
    ),
    (gettext_lazy("Urgency"), {"fields": ["urgency", "impact", "severity", "channel"]}),
    (
        gettext_lazy("Requester"),
        {
            "fields": [
                "requester",
                "requester_phone",
                "requester_extension",
                "company",
                "department",
                "region",
            ]
        },
    ),
]
ADD_HANDLING = (gettext_lazy("Handling"), {"fields": ["support_group", "assignee", "vendor"]})
CHANGE_FIELDSETS = [
    (
        None,
        {
            "fields": [
                "number",
                "title",
                "description",
                "catalog_item",
                "category",
                "business_system",
            ]
        },
    ),
    (
        gettext_lazy("Urgency"),
        {"fields": ["urgency", "impact", "priority_badge", "severity", "overdue_marker"]},
    ),
    (
        gettext_lazy("Handling"),
        {
            "fields": [
                "support_group",
                "tier",
                "assignee",
                "vendor",
                "reassignment_count",
                "reopen_count",
            ]
        },
    ),
    (
        gettext_lazy("Resolution"),
        {
            "fields": [
                "resolution_code",
                "resolution_notes",
                "resolved_at",
                "auto_close_at",
                "closed_at",
            ]
        },
    ),
    (
        gettext_lazy("Requester"),
        {
            "fields": [
                "requester",
                "requester_phone",
                "requester_extension",
                "company",
                "department",
                "region",
                "channel",
            ]
        },
    ),
    (
        gettext_lazy("Workflow"),
        {
            "fields": [
                "workflow",
                "state_display",
                "version",
                "created_by",
                "created_at",
                "updated_at",
            ]
        },
    ),
]
CHANGE_READONLY = [
    "number",
    "priority_badge",
    "overdue_marker",
    "support_group",
    "tier",
    "assignee",
    "vendor",
    "reassignment_count",
    "reopen_count",
    "resolved_at",
    "auto_close_at",
    "closed_at",
    "requester",
    "company",
    "channel",
    "workflow",
    "state_display",
    "version",
    "created_by",
    "created_at",
    "updated_at",
]


def badge(text, color: str):
    return state_badge(str(text), color)


class OverdueFilter(admin.SimpleListFilter):
    """Incidents with a breached or late running SLA clock, or none."""

    title = gettext_lazy("overdue")
    parameter_name = "overdue"

    def lookups(self, request, model_admin):
        return [("yes", gettext_lazy("Overdue")), ("no", gettext_lazy("On time"))]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(is_overdue=True)
        if self.value() == "no":
            return queryset.filter(is_overdue=False)
        return queryset


class IncidentFormMixin:
    """Requester and company default from the user; the matrix must give a priority."""

    request_user = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name, help_text in (
            ("requester", gettext_lazy("Empty: you.")),
            ("company", gettext_lazy("Empty: the requester's company.")),
        ):
            if name in self.fields:
                self.fields[name].required = False
                self.fields[name].help_text = help_text
        if "channel" in self.fields:
            self.fields["channel"].initial = Channel.DESK

    def clean(self):
        cleaned = super().clean()
        if "requester" in self.fields:
            requester = cleaned.get("requester") or self.request_user
            cleaned["requester"] = requester
            if not cleaned.get("company") and not (requester and requester.company_id):
                self.add_error(
                    "company",
                    _("Choose the company: the requester does not belong to any company."),
                )
            try:
                default_workflow(Incident)
            except WorkflowError as exc:
                raise forms.ValidationError(exc.message, code=exc.code) from None
        urgency, impact = cleaned.get("urgency"), cleaned.get("impact")
        if urgency and impact:
            try:
                service.priority_for(urgency, impact)
            except PlatformError as exc:
                self.add_error("urgency", exc.message)
        return cleaned


@admin.register(Incident)
class IncidentAdmin(WorkflowRecordAdminMixin, HistoryDeskAdmin):
    change_form_template = "bjgas_ops/admin/incident_change_form.html"
    list_display = [
        "number",
        "title",
        "state_display",
        "priority_badge",
        "urgency_badge",
        "severity_badge",
        "overdue_marker",
        "requester",
        "support_group",
        "tier",
        "assignee",
        "created_at",
    ]
    list_display_links = ["number", "title"]
    list_filter = [
        WorkflowStateFilter,
        OverdueFilter,
        "priority",
        "urgency",
        "severity",
        "tier",
        "channel",
        ("support_group", RelatedDropdownFilter),
        ("business_system", ScopedRelatedFilter),
        ("company", ScopedRelatedFilter),
    ]
    list_filter_submit = True
    list_select_related = ["workflow", "requester", "support_group", "assignee"]
    search_fields = ["number", "title", "requester__full_name", "requester__username"]
    autocomplete_fields = ["requester", "department"]
    ordering = ["-created_at", "-id"]

    def get_queryset(self, request):
        return service.with_overdue(super().get_queryset(request))

    def get_fieldsets(self, request, obj=None):
        if obj is not None:
            return CHANGE_FIELDSETS
        if request.user.has_perm(service.ASSIGN_PERMISSION):
            return [*ADD_FIELDSETS_BASE, ADD_HANDLING]
        return ADD_FIELDSETS_BASE

    def get_readonly_fields(self, request, obj=None):
        return CHANGE_READONLY if obj is not None else []

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        return type(form)(form.__name__, (IncidentFormMixin, form), {"request_user": request.user})

    # ------------------------------------------------------------------------ columns

    @admin.display(description=gettext_lazy("priority"), ordering="priority")
    def priority_badge(self, obj):
        return badge(obj.get_priority_display(), PRIORITY_COLORS.get(obj.priority, "gray"))

    @admin.display(description=gettext_lazy("urgency"), ordering="urgency")
    def urgency_badge(self, obj):
        return badge(obj.get_urgency_display(), LEVEL_COLORS.get(obj.urgency, "gray"))

    @admin.display(description=gettext_lazy("severity"), ordering="severity")
    def severity_badge(self, obj):
        if not obj.severity:
            return "-"
        return badge(obj.severity, SEVERITY_COLORS.get(obj.severity, "gray"))

    @admin.display(description=gettext_lazy("overdue"), ordering="is_overdue")
    def overdue_marker(self, obj):
        if service.is_overdue(obj):
            return badge(_("Overdue"), "red")
        return "-"

    # ---------------------------------------------------------------------------- save

    def save_model(self, request, obj, form, change):
        names = {f.name for f in Incident._meta.concrete_fields}
        if change:
            fields = {
                name: form.cleaned_data[name]
                for name in form.changed_data
                if name in service.EDITABLE_FIELDS + service.PRIORITY_FIELDS
            }
            # The form's clean() has locked the row and checked the loaded version.
            saved = (
                service.update_incident(
                    obj, request.user, expected_version=form.cleaned_data[LOADED_VERSION], **fields
                )
                if fields
                else obj
            )
        else:
            fields = {k: v for k, v in form.cleaned_data.items() if k in names and v is not None}
            channel = fields.pop("channel", None) or Channel.DESK
            saved = service.create_incident(request.user, channel=channel, **fields)
        for field in Incident._meta.concrete_fields:
            setattr(obj, field.attname, getattr(saved, field.attname))
        obj._state.adding = False
        obj._state.db = saved._state.db

    # -------------------------------------------------------------------- workflow panel

    def workflow_panel(self, request, obj) -> dict:
        panel = super().workflow_panel(request, obj)
        # Escalation and transfer need the new group: the assignment form takes them.
        panel["actions"] = [
            a for a in panel["actions"] if a["code"] not in service.REASSIGNING_TRANSITIONS
        ]
        return panel

    def _transition(self, request, object_id, code):
        if code in service.REASSIGNING_TRANSITIONS:
            obj = self.require_object(request, object_id)
            self.message_user(
                request,
                _("Escalation and transfer need the new support group: use the assignment form."),
                messages.ERROR,
            )
            return HttpResponseRedirect(self._change_url(obj))
        return super()._transition(request, object_id, code)

    # ------------------------------------------------- assignment, comments, supplement

    def get_urls(self):
        prefix = "bjgas_ops_incident"
        return [
            path(
                "<path:object_id>/assign/",
                self.admin_site.admin_view(require_POST(self.assign_view)),
                name=f"{prefix}_assign",
            ),
            path(
                "<path:object_id>/comment/",
                self.admin_site.admin_view(require_POST(self.comment_view)),
                name=f"{prefix}_comment",
            ),
            path(
                "<path:object_id>/supplement/",
                self.admin_site.admin_view(require_POST(self.supplement_view)),
                name=f"{prefix}_supplement",
            ),
            *super().get_urls(),
        ]

    def assign_view(self, request, object_id):
        """Give the incident to a group, person and vendor; may escalate or transfer it."""
        obj = self.require_object(request, object_id)
        if not self.may_act(request):
            raise PermissionDenied
        group = SupportGroup.objects.filter(pk=request.POST.get("support_group") or None).first()
        assignee = User.objects.filter(pk=request.POST.get("assignee") or None).first()
        vendor = Vendor.objects.filter(pk=request.POST.get("vendor") or None).first()
        comment = request.POST.get("comment", "").strip()
        return self._run(
            request,
            obj,
            lambda: service.assign(obj, request.user, group, assignee, vendor, comment),
            _("Assigned to %(group)s.") % {"group": group},
        )

    def comment_view(self, request, object_id):
        """Add a public reply or an internal note, with files."""
        obj = self.require_object(request, object_id)
        return self._run(
            request,
            obj,
            lambda: service.add_comment(
                obj,
                request.user,
                request.POST.get("body", ""),
                request.POST.get("kind", "reply"),
                request.FILES.getlist("files"),
            ),
            _("Your comment was added."),
        )

    def supplement_view(self, request, object_id):
        """Add the requester's supplement, with files."""
        obj = self.require_object(request, object_id)
        return self._run(
            request,
            obj,
            lambda: service.supplement_incident(
                obj, request.user, request.POST.get("text", ""), request.FILES.getlist("files")
            ),
            _("Your supplement was added; the engineer has been told."),
        )

    def _run(self, request, obj, action, success: str):
        try:
            action()
        except PlatformError as exc:
            self.message_user(request, exc.message, messages.ERROR)
        else:
            self.message_user(request, success, messages.SUCCESS)
        return HttpResponseRedirect(self._change_url(obj))

    # ------------------------------------------------------------------------ the page

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None and obj.pk is not None:
            context["incident_panel"] = self.incident_panel(request, obj)
        return super().render_change_form(request, context, add, change, form_url, obj)

    def incident_panel(self, request, obj) -> dict:
        """Return what the page shows besides the form: clocks, comments, forms."""
        user = request.user
        state = obj.current_state()
        final = state is None or state.is_final
        notes = service.sees_internal_notes(user)
        comments = [
            {
                "kind": badge(c.get_kind_display(), KIND_COLORS.get(c.kind, "gray")),
                "author": str(c.author) if c.author else _("System"),
                "at": date_format(timezone.localtime(c.created_at), "Y-m-d H:i"),
                "body": c.body,
                "files": [a for a in c.attachments.all() if a.is_public or notes],
            }
            for c in service.visible_comments(obj, user).prefetch_related("attachments")
        ]
        may_assign = (
            not final and self.may_act(request) and user.has_perm(service.ASSIGN_PERMISSION)
        )
        panel = {
            "clocks": self._clock_table(obj),
            "comments": comments,
            "may_reply": not final
            and (obj.requester_id == user.pk or user.has_perm("bjgas_ops.change_incident")),
            "may_note": notes,
            "may_supplement": not final and obj.requester_id == user.pk,
            "comment_url": reverse("admin:bjgas_ops_incident_comment", args=[obj.pk]),
            "supplement_url": reverse("admin:bjgas_ops_incident_supplement", args=[obj.pk]),
            "auto_close_at": obj.auto_close_at,
        }
        if may_assign:
            panel["assign"] = {
                "url": reverse("admin:bjgas_ops_incident_assign", args=[obj.pk]),
                "groups": SupportGroup.objects.filter(is_active=True).order_by("tier", "code"),
                "people": User.objects.filter(is_active=True, support_groups__is_active=True)
                .distinct()
                .order_by("username"),
                "vendors": Vendor.objects.filter(is_active=True),
                "current": obj,
            }
        return panel

    @staticmethod
    def _clock_table(obj) -> dict:
        clocks = SlaClock.objects.filter(
            content_type=ContentType.objects.get_for_model(Incident), object_id=obj.pk
        ).select_related("policy")
        now = timezone.now()
        rows = []
        for clock in clocks.order_by("pk"):
            late = clock.breached or (
                clock.status == "running" and clock.due_at is not None and clock.due_at < now
            )
            rows.append(
                [
                    clock.get_metric_display(),
                    str(clock.policy) if clock.policy else "-",
                    _("%(minutes)s min") % {"minutes": clock.limit_seconds // 60},
                    date_format(timezone.localtime(clock.due_at), "Y-m-d H:i")
                    if clock.due_at
                    else "-",
                    badge(clock.get_status_display(), "red" if late else "blue"),
                    clock.warning or "-",
                ]
            )
        return {
            "headers": [_("Clock"), _("Policy"), _("Limit"), _("Due at"), _("Status"), _("Note")],
            "rows": rows,
        }
