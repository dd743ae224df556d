"""The desk's task pages: list with state badges, creation through the service, actions."""

from django import forms
from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from apps.bjgas_platform.admin.base import HistoryDeskAdmin, ScopedRelatedFilter
from apps.bjgas_platform.admin.records import (
    LOADED_VERSION,
    WorkflowRecordAdminMixin,
    WorkflowStateFilter,
)
from apps.bjgas_platform.services.workflow import (
    WorkflowError,
    default_workflow,
    save_record_fields,
)

from ..models import Task
from ..services.tasks import create_task

HANDLING_FIELDS = ["priority", "support_group", "assignee", "business_system", "due_date"]
REQUESTER_FIELDS = ["requester", "company", "department", "region", "vendor"]


class NewTaskFormMixin:
    """The add form: requester and company may be left empty and default from the user."""

    request_user = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name, help_text in (
            ("requester", _("Empty: you.")),
            ("company", _("Empty: the requester's company.")),
        ):
            if name in self.fields:
                self.fields[name].required = False
                self.fields[name].help_text = help_text

    def clean(self):
        cleaned = super().clean()
        requester = cleaned.get("requester") or self.request_user
        cleaned["requester"] = requester
        if not cleaned.get("company"):
            if requester is not None and requester.company_id:
                cleaned["company"] = requester.company
            else:
                self.add_error(
                    "company",
                    _("Choose the company: the requester does not belong to any company."),
                )
        try:
            default_workflow(Task)
        except WorkflowError as exc:
            raise forms.ValidationError(exc.message, code=exc.code) from None
        return cleaned


@admin.register(Task)
class TaskAdmin(WorkflowRecordAdminMixin, HistoryDeskAdmin):
    list_display = [
        "number",
        "title",
        "state_display",
        "priority",
        "requester",
        "support_group",
        "assignee",
        "business_system",
        "created_at",
    ]
    list_display_links = ["number", "title"]
    list_filter = [
        WorkflowStateFilter,
        "priority",
        ("business_system", ScopedRelatedFilter),
        ("company", ScopedRelatedFilter),
    ]
    list_filter_submit = True
    list_select_related = [
        "workflow",
        "requester",
        "support_group",
        "assignee",
        "business_system",
    ]
    search_fields = ["number", "title", "requester__full_name", "requester__username"]
    autocomplete_fields = ["requester", "assignee", "department"]
    readonly_fields = [
        "number",
        "workflow",
        "state_display",
        "version",
        "created_by",
        "created_at",
        "updated_at",
    ]
    fieldsets = [
        (None, {"fields": ["number", "title", "description"]}),
        (_("Handling"), {"fields": HANDLING_FIELDS}),
        (_("Requester"), {"fields": REQUESTER_FIELDS}),
        (
            _("Workflow"),
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
    add_fieldsets = [
        (None, {"fields": ["title", "description"]}),
        (_("Handling"), {"fields": HANDLING_FIELDS}),
        (_("Requester"), {"fields": REQUESTER_FIELDS}),
    ]

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        if obj is None:
            form = type(form)(
                form.__name__, (NewTaskFormMixin, form), {"request_user": request.user}
            )
        return form

    def save_model(self, request, obj, form, change):
        if change:
            # The form's clean() has locked the row and checked the loaded version.
            names = {f.name for f in Task._meta.concrete_fields}
            save_record_fields(
                obj,
                request.user,
                [n for n in form.cleaned_data if n in names],
                expected_version=form.cleaned_data[LOADED_VERSION],
            )
            return
        fields = {
            name: value
            for name, value in form.cleaned_data.items()
            if name in {f.name for f in Task._meta.concrete_fields}
        }
        task = create_task(request.user, **fields)
        for field in Task._meta.concrete_fields:
            setattr(obj, field.attname, getattr(task, field.attname))
        obj._state.adding = False
        obj._state.db = task._state.db
