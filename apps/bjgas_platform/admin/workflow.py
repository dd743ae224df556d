"""Desk pages of the workflow engine: workflows edited without code, and their logs.

A workflow's states and transitions are edited as two tables on the workflow's page and
saved together. Before anything is saved, the whole definition as it would be after the
save goes through `validate_definition`; if it has problems the page is shown again with
them and nothing is written.
"""

from django.contrib import admin
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.utils.html import format_html_join
from django.utils.translation import gettext_lazy as _
from unfold.forms import PaginationInlineFormSet
from unfold.widgets import UnfoldAdminTextInputWidget

from ..models import (
    ApprovalRequest,
    ApprovalVote,
    TransitionLog,
    Workflow,
    WorkflowRecord,
    WorkflowState,
    WorkflowTransition,
)
from ..services.workflow import check_workflow, validate_definition
from .base import DeskAdmin, DeskTabularInline, HistoryDeskAdmin, state_badge


def kept_forms(formset):
    """Yield the forms of a validated formset that will exist after the save."""
    for form in formset.forms:
        data = getattr(form, "cleaned_data", None)
        if not data:
            continue  # an extra row left empty
        if formset.can_delete and data.get("DELETE"):
            continue
        yield form


def states_in_use(workflow: Workflow) -> set[str]:
    """Return the state codes the records driven by a saved workflow are in now."""
    if workflow.pk is None:
        return set()
    saved = Workflow.objects.select_related("model").get(pk=workflow.pk)
    model = saved.model.model_class()
    if model is None or not issubclass(model, WorkflowRecord):
        return set()
    return set(
        model._base_manager.filter(workflow=saved)
        .order_by()
        .values_list("state", flat=True)
        .distinct()
    )


def process_content_types():
    """Return the content types of the process models a workflow can drive."""
    ids = [
        ct.pk
        for ct in ContentType.objects.all()
        if (model := ct.model_class()) is not None and issubclass(model, WorkflowRecord)
    ]
    return ContentType.objects.filter(pk__in=ids)


class TransitionFormSet(PaginationInlineFormSet):
    """The transitions table; its clean() checks the definition with the states table."""

    states_formset = None

    def clean(self):
        super().clean()
        states_formset = self.states_formset
        if states_formset is None:
            return
        if not states_formset.is_valid() or any(form.errors for form in self.forms):
            return  # the rows' own errors come first
        workflow = self.instance
        model = workflow.model.model_class() if workflow.model_id else None
        problems = validate_definition(
            model,
            [form.instance for form in kept_forms(states_formset)],
            [form.instance for form in kept_forms(self)],
            states_in_use(workflow),
        )
        if problems:
            raise ValidationError(
                [ValidationError(message, code="invalid_workflow") for message in problems]
            )


class ColumnWidthsMixin:
    """Give the inputs of a wide tabular inline readable widths (the table scrolls)."""

    column_widths: dict[str, str] = {}

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name == "condition":
            kwargs["widget"] = UnfoldAdminTextInputWidget()
        formfield = super().formfield_for_dbfield(db_field, request, **kwargs)
        width = self.column_widths.get(db_field.name)
        if formfield is not None and width:
            widget = getattr(formfield.widget, "widget", formfield.widget)
            widget.attrs["style"] = f"width: {width}; min-width: {width}"
        return formfield


class WorkflowStateInline(ColumnWidthsMixin, DeskTabularInline):
    model = WorkflowState
    column_widths = {"order": "4.5rem", "code": "9rem", "name": "8rem", "category": "8rem"}
    fields = [
        "order",
        "code",
        "name",
        "category",
        "color",
        "is_initial",
        "sla_running",
        "read_only",
        "edit_roles",
    ]
    autocomplete_fields = ["edit_roles"]


class WorkflowTransitionInline(ColumnWidthsMixin, DeskTabularInline):
    model = WorkflowTransition
    formset = TransitionFormSet
    column_widths = {
        "order": "4.5rem",
        "code": "8rem",
        "label": "8rem",
        "source_states": "12rem",
        "target_state": "8rem",
        "condition": "18rem",
        "condition_message": "14rem",
        "approvals_required": "4.5rem",
    }
    fields = [
        "order",
        "code",
        "label",
        "source_states",
        "target_state",
        "roles",
        "condition",
        "condition_message",
        "comment_required",
        "approvals_required",
        "approver_relation",
        "approver_role",
        "allow_self_approval",
    ]
    autocomplete_fields = ["roles", "approver_role"]


@admin.register(Workflow)
class WorkflowAdmin(HistoryDeskAdmin):
    list_display = ["code", "name", "model", "is_default", "is_active", "state_list"]
    list_display_links = ["code", "name"]
    list_filter = ["model", "is_active"]
    list_select_related = ["model"]
    search_fields = ["code", "name", "description"]
    inlines = [WorkflowStateInline, WorkflowTransitionInline]
    fields = ["code", "name", "model", "description", "is_active", "is_default", "problems"]
    readonly_fields = ["problems"]

    change_form_template = "bjgas_platform/admin/workflow_change_form.html"

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("states")

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        context["definition_problems"] = [
            str(error)
            for inline in context.get("inline_admin_formsets", [])
            if isinstance(inline.formset, TransitionFormSet)
            for error in inline.formset.non_form_errors()
        ]
        return super().render_change_form(request, context, add, change, form_url, obj)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "model":
            kwargs["queryset"] = process_content_types()
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def _create_formsets(self, request, obj, change):
        formsets, inline_instances = super()._create_formsets(request, obj, change)
        states = next(
            (
                fs
                for fs, inline in zip(formsets, inline_instances, strict=True)
                if isinstance(inline, WorkflowStateInline)
            ),
            None,
        )
        for formset, inline in zip(formsets, inline_instances, strict=True):
            if isinstance(inline, WorkflowTransitionInline):
                formset.states_formset = states
        return formsets, inline_instances

    @admin.display(description=_("states"))
    def state_list(self, obj):
        return format_html_join(
            " ", "{}", ((state_badge(s.name, s.color),) for s in obj.states.all())
        )

    @admin.display(description=_("check of the saved definition"))
    def problems(self, obj) -> str:
        if obj is None or obj.pk is None:
            return "-"
        found = check_workflow(obj)
        return "；".join(found) if found else _("No problems found.")


class RecordLogAdmin(DeskAdmin):
    """Read-only log rows about process records, shown only for records in scope."""

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        user = request.user
        if user.is_superuser:
            return queryset
        allowed = Q(pk__in=[])
        type_ids = queryset.order_by().values_list("content_type", flat=True).distinct()
        for type_id in type_ids:
            model = ContentType.objects.get_for_id(type_id).model_class()
            if model is None:
                continue
            manager = model._default_manager
            if hasattr(manager, "visible_to"):
                visible = manager.visible_to(user).values("pk")
                allowed |= Q(content_type_id=type_id, object_id__in=visible)
            elif user.has_perm(f"{model._meta.app_label}.view_{model._meta.model_name}"):
                allowed |= Q(content_type_id=type_id)
        return queryset.filter(allowed)

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=_("record"))
    def record_display(self, obj) -> str:
        return str(obj.record) if obj.record is not None else f"#{obj.object_id}"


@admin.register(TransitionLog)
class TransitionLogAdmin(RecordLogAdmin):
    list_display = ["created_at", "record_display", "action", "states_display", "actor", "comment"]
    list_filter = ["workflow", "content_type"]
    list_select_related = ["actor", "workflow"]
    search_fields = ["action", "comment", "actor__full_name", "actor__username"]
    date_hierarchy = "created_at"
    ordering = ["-created_at", "-id"]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("record", "workflow__states")

    @admin.display(description=_("from → to"))
    def states_display(self, obj):
        names = {s.code: s for s in obj.workflow.states.all()}

        def badge(code):
            state = names.get(code)
            return state_badge(state.name, state.color) if state else (code or "-")

        return format_html_join(" → ", "{}", ((badge(obj.from_state),), (badge(obj.to_state),)))


class ApprovalVoteInline(DeskTabularInline):
    model = ApprovalVote
    fields = ["approver", "approved", "comment", "created_at"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ApprovalRequest)
class ApprovalRequestAdmin(RecordLogAdmin):
    list_display = [
        "created_at",
        "record_display",
        "transition",
        "status",
        "requested_by",
        "approvals_required",
        "decided_at",
    ]
    list_filter = ["status"]
    list_select_related = ["transition", "requested_by"]
    search_fields = ["transition__label", "comment", "requested_by__full_name"]
    inlines = [ApprovalVoteInline]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("record")
