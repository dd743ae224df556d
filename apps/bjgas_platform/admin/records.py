"""Desk support for process records driven by a workflow (tasks, incidents, changes...).

A process admin mixes in `WorkflowRecordAdminMixin` to get: the state as a colored badge,
a state filter, editing (and deleting) only where the current state allows it
(`edit_refusal` of the engine, the API's rule too), a change form that carries the version
it was loaded with so that saving over someone else's change is refused, the actions the user may
take as buttons above the form (each one posts to `<pk>/transition/<code>/` with the
record's version, so a stale page is refused), approve/reject buttons on a pending
approval, and the record's state history under the form.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import Http404, HttpResponseRedirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST
from unfold.contrib.filters.admin import DropdownFilter

from ..models import ApprovalRequest, WorkflowState
from ..services.workflow import (
    WorkflowError,
    available_transitions,
    decide_approval,
    edit_refusal,
    eligible_approvers,
    lock_for_edit,
    pending_approval,
    record_history,
    role_group_ids,
    stale_record_error,
    take_transition,
    transition_refusal,
)
from .base import NOT_FOUND, state_badge

LOADED_VERSION = "loaded_version"


def may_edit_in_state(record, user) -> bool:
    """Whether `user` may edit `record`'s fields in its current workflow state."""
    return edit_refusal(record, user) is None


class RecordVersionFormMixin:
    """The change form of a record carries the version it was loaded with.

    Its clean() locks the record's row until the desk's save commits, and refuses the save
    when the row's version moved on since the page was loaded, or the state forbids it.
    """

    request_user = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields[LOADED_VERSION] = forms.IntegerField(
            widget=forms.HiddenInput, required=False, initial=self.instance.version
        )

    def clean(self):
        cleaned = super().clean()
        loaded = cleaned.get(LOADED_VERSION)
        try:
            if loaded is None:
                raise stale_record_error(self.instance)
            with transaction.atomic():
                lock_for_edit(self.instance, self.request_user, loaded)
        except WorkflowError as exc:
            raise ValidationError(exc.message, code=exc.code) from None
        return cleaned


class WorkflowStateFilter(DropdownFilter):
    """Filter process records by state, offering the state names of the model's workflows."""

    title = gettext_lazy("state")
    parameter_name = "state"

    def lookups(self, request, model_admin):
        content_type = ContentType.objects.get_for_model(model_admin.model)
        names: dict[str, str] = {}
        for state in WorkflowState.objects.filter(workflow__model=content_type).order_by(
            "-workflow__is_default", "workflow__code", "order", "id"
        ):
            names.setdefault(state.code, state.name)
        return list(names.items())

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(state=self.value())
        return queryset


class WorkflowRecordAdminMixin:
    """Workflow actions, approvals, history and state-dependent editing on a record admin."""

    change_form_template = "bjgas_platform/admin/record_change_form.html"
    workflow_readonly_fields = ("workflow", "state_display", "version")

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("workflow__states")

    def has_change_permission(self, request, obj=None):
        if not super().has_change_permission(request, obj):
            return False
        return obj is None or may_edit_in_state(obj, request.user)

    def has_delete_permission(self, request, obj=None):
        if not super().has_delete_permission(request, obj):
            return False
        return obj is None or may_edit_in_state(obj, request.user)

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        if obj is None:
            return form
        return type(form)(
            form.__name__, (RecordVersionFormMixin, form), {"request_user": request.user}
        )

    def may_act(self, request) -> bool:
        """Whether the user may take workflow actions on this kind of record at all."""
        return super().has_change_permission(request)

    @admin.display(description=gettext_lazy("state"), ordering="state")
    def state_display(self, obj):
        state = obj.current_state() if obj.workflow_id else None
        if state is None:
            return obj.state or "-"
        return state_badge(state.name, state.color)

    # -------------------------------------------------------------------- urls and views

    def get_urls(self):
        opts = self.model._meta
        prefix = f"{opts.app_label}_{opts.model_name}"
        return [
            path(
                "<path:object_id>/transition/<str:code>/",
                self.admin_site.admin_view(self.transition_view),
                name=f"{prefix}_transition",
            ),
            path(
                "<path:object_id>/approval/<int:request_id>/<str:decision>/",
                self.admin_site.admin_view(self.approval_view),
                name=f"{prefix}_approval",
            ),
            *super().get_urls(),
        ]

    def _change_url(self, obj) -> str:
        opts = self.model._meta
        return reverse(
            f"admin:{opts.app_label}_{opts.model_name}_change",
            args=[obj.pk],
            current_app=self.admin_site.name,
        )

    @staticmethod
    def _expected_version(request) -> int | None:
        try:
            return int(request.POST["expected_version"])
        except (KeyError, ValueError):
            return None

    def transition_view(self, request, object_id, code):
        """Take one workflow action on a record and come back to its page."""
        return require_POST(self._transition)(request, object_id, code)

    def _transition(self, request, object_id, code):
        obj = self.require_object(request, object_id)
        if not self.may_act(request):
            raise PermissionDenied
        comment = request.POST.get("comment", "").strip()
        try:
            result = take_transition(
                obj, code, request.user, comment, self._expected_version(request)
            )
        except WorkflowError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return HttpResponseRedirect(self._change_url(obj))
        if result.pending_approval:
            message = _("'%(action)s' needs approval; the request went to the approvers.") % {
                "action": result.approval.transition.label
            }
        else:
            record = result.record
            state = record.current_state()
            message = _("%(action)s: %(record)s is now '%(state)s'.") % {
                "action": result.log.action,
                "record": record,
                "state": state.name if state else record.state,
            }
        self.message_user(request, message, messages.SUCCESS)
        return HttpResponseRedirect(self._change_url(obj))

    def approval_view(self, request, object_id, request_id, decision):
        """Approve or reject a pending approval request of a record."""
        return require_POST(self._approval)(request, object_id, request_id, decision)

    def _approval(self, request, object_id, request_id, decision):
        obj = self.require_object(request, object_id)
        if decision not in ("approve", "reject"):
            raise Http404(NOT_FOUND)
        approval = ApprovalRequest.objects.filter(
            pk=request_id,
            content_type=ContentType.objects.get_for_model(obj),
            object_id=obj.pk,
        ).first()
        if approval is None:
            raise Http404(NOT_FOUND)
        approve = decision == "approve"
        comment = request.POST.get("comment", "").strip()
        try:
            decided = decide_approval(approval.pk, request.user, approve, comment)
        except WorkflowError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return HttpResponseRedirect(self._change_url(obj))
        if approve:
            message = _("You approved '%(action)s'; the request is now %(status)s.")
        else:
            message = _("You rejected '%(action)s'; the request is now %(status)s.")
        self.message_user(
            request,
            message % {"action": decided.transition.label, "status": decided.get_status_display()},
            messages.SUCCESS,
        )
        return HttpResponseRedirect(self._change_url(obj))

    # ------------------------------------------------------------------------ the page

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None and obj.pk is not None and obj.workflow_id:
            context["workflow_panel"] = self.workflow_panel(request, obj)
        return super().render_change_form(request, context, add, change, form_url, obj)

    def workflow_panel(self, request, obj) -> dict:
        """Return what the page shows about the record's workflow."""
        opts = self.model._meta
        prefix = f"admin:{opts.app_label}_{opts.model_name}"
        user = request.user
        states = {s.code: s for s in obj.workflow.states.all()}
        approval = pending_approval(obj)
        actions = []
        if self.may_act(request):
            for transition in available_transitions(obj, user):
                url = reverse(f"{prefix}_transition", args=[obj.pk, transition.code])
                hints = []
                if transition.comment_required:
                    hints.append(_("needs a comment"))
                if transition.approvals_required:
                    hints.append(_("needs approval"))
                actions.append(
                    {
                        "label": transition.label,
                        "code": transition.code,
                        "hint": "、".join(hints),
                        "attrs": {"formaction": url, "data-transition": transition.code},
                    }
                )
        return {
            "state": self.state_display(obj),
            "version": obj.version,
            "actions": actions,
            "blocked": self._blocked_actions(request, obj, {a["code"] for a in actions}),
            "approval": self._approval_panel(request, obj, approval, prefix),
            "history": self._history_table(obj, states),
        }

    def _blocked_actions(self, request, obj, open_codes: set[str]) -> list[dict]:
        """Return the actions of the user's roles that the record's data holds back, and why."""
        if not self.may_act(request):
            return []
        user = request.user
        state = obj.current_state()
        blocked = []
        for transition in obj.workflow.transitions.prefetch_related("roles"):
            if transition.code in open_codes or state is None or not transition.leaves(state):
                continue
            roles = {g.pk for g in transition.roles.all()}
            if roles and not user.is_superuser and not roles & role_group_ids(user):
                continue
            reason = transition_refusal(obj, transition, user, check_comment=False)
            if reason:
                blocked.append({"label": transition.label, "reason": reason})
        return blocked

    def _approval_panel(self, request, obj, approval, prefix: str) -> dict | None:
        if approval is None:
            return None
        votes = list(approval.votes.select_related("approver"))
        approvers = eligible_approvers(approval, obj)
        voted = {v.approver_id for v in votes}
        can_vote = request.user.pk in {u.pk for u in approvers} and request.user.pk not in voted
        return {
            "request": approval,
            "yes": sum(1 for v in votes if v.approved),
            "votes": votes,
            "approvers": "、".join(str(u) for u in approvers) or "-",
            "can_vote": can_vote,
            "approve_attrs": {
                "formaction": reverse(f"{prefix}_approval", args=[obj.pk, approval.pk, "approve"])
            },
            "reject_attrs": {
                "formaction": reverse(f"{prefix}_approval", args=[obj.pk, approval.pk, "reject"])
            },
        }

    def _history_table(self, obj, states: dict) -> dict:
        def badge(code: str):
            if not code:
                return "-"
            state = states.get(code)
            return state_badge(state.name, state.color) if state else code

        rows = [
            [
                date_format(timezone.localtime(log.created_at), "Y-m-d H:i"),
                log.action,
                format_html("{} → {}", badge(log.from_state), badge(log.to_state)),
                str(log.actor) if log.actor else "-",
                log.comment or "-",
            ]
            for log in record_history(obj)
        ]
        return {
            "headers": [_("Time"), _("Action"), _("State"), _("By"), _("Comment")],
            "rows": rows,
        }
