"""The workflow engine: start a record, list and take transitions, decide approvals.

Taking a transition is one atomic step: lock the record's row, re-check everything
against the locked row, change the state, write the log row, and send the events after
the transaction commits. Two people acting on one record at once: the second waits for
the first's lock, then finds the record changed and is told so; nothing is half-applied.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import FieldDoesNotExist
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from ..choices import ApprovalStatus, ApproverRelation
from ..models import (
    ApprovalRequest,
    ApprovalVote,
    TransitionLog,
    User,
    Workflow,
    WorkflowRecord,
    WorkflowState,
    WorkflowTransition,
)
from ..models.workflow import ANY_STATE
from ..signals import (
    approval_decided,
    approval_requested,
    transition_applied,
    transition_completed,
)
from .conditions import ConditionSyntaxError, evaluate_condition, parse_condition
from .errors import PlatformError

logger = logging.getLogger(__name__)
audit = logging.getLogger("bjgas.audit")


class WorkflowError(PlatformError):
    """A transition or approval was refused; nothing changed."""


@dataclass
class TransitionResult:
    record: WorkflowRecord
    log: TransitionLog | None = None
    approval: ApprovalRequest | None = None

    @property
    def pending_approval(self) -> bool:
        return self.approval is not None and self.log is None


# ---------------------------------------------------------------------------- definition


def validate_definition(
    model,
    states: list[WorkflowState],
    transitions: list[WorkflowTransition],
    in_use: set[str] | None = None,
) -> list[str]:
    """Return the problems of a workflow definition as messages; empty when it is sound."""
    errors: list[str] = []
    codes = [s.code for s in states]
    for code in sorted({c for c in codes if codes.count(c) > 1}):
        errors.append(_("State code '%(code)s' is used twice.") % {"code": code})
    initial = [s for s in states if s.is_initial]
    if not initial:
        errors.append(_("The workflow has no initial state: mark exactly one state as initial."))
    elif len(initial) > 1:
        errors.append(
            _("Only one state may be initial; now %(names)s are.")
            % {"names": "、".join(s.name for s in initial)}
        )
    known = set(codes)
    final = {s.code for s in states if s.is_final}
    transition_codes = [t.code for t in transitions]
    for code in sorted({c for c in transition_codes if transition_codes.count(c) > 1}):
        errors.append(_("Transition code '%(code)s' is used twice.") % {"code": code})
    for t in transitions:
        if t.target_state not in known:
            errors.append(
                _("Transition '%(label)s' leads to state '%(state)s', which does not exist.")
                % {"label": t.label, "state": t.target_state}
            )
        sources = t.source_codes()
        if not sources:
            errors.append(_("Transition '%(label)s' has no from-state.") % {"label": t.label})
        for code in sources:
            if code != ANY_STATE and code not in known:
                errors.append(
                    _("Transition '%(label)s' starts from state '%(state)s', which does not exist.")
                    % {"label": t.label, "state": code}
                )
        try:
            parse_condition(t.condition, model)
        except ConditionSyntaxError as exc:
            errors.append(
                _("Condition of transition '%(label)s': %(error)s")
                % {"label": t.label, "error": exc}
            )
        if t.approvals_required and t.approver_relation == ApproverRelation.ROLE:
            if not t.approver_role_id:
                errors.append(
                    _("Transition '%(label)s' needs approvals: choose the approver role.")
                    % {"label": t.label}
                )
    if len(initial) == 1:
        reachable = _reachable(initial[0].code, transitions, known - final)
        for s in states:
            if s.code not in reachable:
                errors.append(
                    _("State '%(name)s' cannot be reached from the initial state.")
                    % {"name": s.name}
                )
    for code in sorted((in_use or set()) - known):
        errors.append(
            _("State '%(state)s' is still used by records; move them before removing it.")
            % {"state": code}
        )
    return errors


def _reachable(start: str, transitions: list[WorkflowTransition], non_final: set[str]) -> set[str]:
    seen, todo = {start}, [start]
    while todo:
        current = todo.pop()
        for t in transitions:
            sources = t.source_codes()
            leaves = current in sources or (ANY_STATE in sources and current in non_final)
            if leaves and t.target_state not in seen:
                seen.add(t.target_state)
                todo.append(t.target_state)
    return seen


def check_workflow(workflow: Workflow) -> list[str]:
    """Validate a saved workflow, including the states its records are in."""
    model = workflow.model.model_class()
    in_use = set()
    if model is not None and issubclass(model, WorkflowRecord):
        in_use = set(model._base_manager.filter(workflow=workflow).values_list("state", flat=True))
    return validate_definition(
        model, list(workflow.states.all()), list(workflow.transitions.all()), in_use
    )


def default_workflow(model) -> Workflow:
    """Return the active default workflow of a process model."""
    ct = ContentType.objects.get_for_model(model)
    workflow = (
        Workflow.objects.filter(model=ct, is_active=True).order_by("-is_default", "code").first()
    )
    if workflow is None:
        raise WorkflowError(
            _("No active workflow is defined for %(model)s; an administrator must add one.")
            % {"model": model._meta.verbose_name},
            code="no_workflow",
        )
    return workflow


# ------------------------------------------------------------------------------- running


def start_record(record: WorkflowRecord, actor: User | None, workflow: Workflow | None = None):
    """Put a new, unsaved record in its workflow's initial state; call inside the create."""
    workflow = workflow or (record.workflow if record.workflow_id else None)
    workflow = workflow or default_workflow(type(record))
    initial = workflow.initial_state()
    if initial is None:
        raise WorkflowError(
            _("Workflow '%(name)s' has no initial state.") % {"name": workflow.name},
            code="no_initial_state",
        )
    now = timezone.now()
    record.workflow = workflow
    record.state = initial.code
    record.state_changed_at = now
    record.version = 0
    if actor is not None:
        record._history_user = actor  # the record's history names who, outside requests too
    record.save()
    log = TransitionLog.objects.create(
        content_type=ContentType.objects.get_for_model(record),
        object_id=record.pk,
        workflow=workflow,
        action=_("Created"),
        from_state="",
        to_state=initial.code,
        actor=actor,
        created_at=now,
    )
    transition_applied.send(sender=type(record), record=record, log=log, actor=actor)
    _after_commit(transition_completed, record=record, log=log, actor=actor)
    return record


def role_group_ids(user: User) -> set[int]:
    cache = getattr(user, "_role_group_ids", None)
    if cache is None:
        cache = set(user.groups.values_list("pk", flat=True))
        user._role_group_ids = cache
    return cache


def transition_refusal(
    record: WorkflowRecord,
    transition: WorkflowTransition,
    actor: User,
    comment: str = "",
    check_comment: bool = True,
) -> str | None:
    """Return why `actor` may not take `transition` on `record` now, or None if they may."""
    state = record.current_state()
    if state is None or not transition.leaves(state):
        return _("'%(action)s' cannot be taken in state '%(state)s'.") % {
            "action": transition.label,
            "state": state.name if state else record.state,
        }
    allowed_roles = {g.pk for g in transition.roles.all()}
    if allowed_roles and not actor.is_superuser and not (allowed_roles & role_group_ids(actor)):
        names = "、".join(sorted(g.name for g in transition.roles.all()))
        return _("Only %(roles)s may take '%(action)s'.") % {
            "roles": names,
            "action": transition.label,
        }
    if check_comment and transition.comment_required and not comment.strip():
        return _("'%(action)s' needs a comment: say why.") % {"action": transition.label}
    try:
        holds = evaluate_condition(transition.condition, record, actor)
    except ConditionSyntaxError as exc:
        return _("The condition of '%(action)s' is broken (%(error)s); tell an administrator.") % {
            "action": transition.label,
            "error": exc,
        }
    if not holds:
        return transition.condition_message or _(
            "The condition of '%(action)s' does not hold for this record: %(condition)s"
        ) % {"action": transition.label, "condition": transition.condition}
    return None


def available_transitions(record: WorkflowRecord, actor: User) -> list[WorkflowTransition]:
    """Return the transitions `actor` may take on `record` now (comment not yet asked).

    While an approval request is pending, transitions needing approval are left out: a
    record waits for one decision at a time.
    """
    transitions = record.workflow.transitions.prefetch_related("roles").order_by("order", "id")
    waiting = pending_approval(record) is not None
    return [
        t
        for t in transitions
        if not (waiting and t.approvals_required)
        and transition_refusal(record, t, actor, check_comment=False) is None
    ]


# ---------------------------------------------------------------------------- field edits


def edit_refusal(record: WorkflowRecord, user: User) -> str | None:
    """Return why `user` may not edit `record`'s fields in its current state, or None."""
    state = record.current_state()
    if state is None:
        return None
    if state.read_only:
        return _(
            "%(record)s is in state '%(state)s', in which it cannot be edited; only workflow "
            "actions may change it."
        ) % {"record": record, "state": state.name}
    roles = list(state.edit_roles.all())
    if not roles or user.is_superuser or {g.pk for g in roles} & role_group_ids(user):
        return None
    return _("In state '%(state)s' only %(roles)s may edit %(record)s.") % {
        "state": state.name,
        "roles": "、".join(sorted(g.name for g in roles)),
        "record": record,
    }


def stale_record_error(record: WorkflowRecord) -> WorkflowError:
    """Return the refusal of an edit made on a page or copy older than the record's row."""
    return WorkflowError(
        _("%(record)s was changed by someone else meanwhile; reload it and redo your change.")
        % {"record": record},
        code="stale_record",
        field="version",
    )


def lock_for_edit(
    record: WorkflowRecord, actor: User, expected_version: int | None = None
) -> WorkflowRecord:
    """Lock `record`'s row for a field edit by `actor` and return it; call in a transaction.

    Refused (code `read_only_state`) when the current state keeps `actor` from editing,
    and (code `stale_record`) when `expected_version` is given and the row has another.
    """
    locked = _lock(type(record), record.pk, actor)
    refusal = edit_refusal(locked, actor)
    if refusal:
        raise WorkflowError(refusal, code="read_only_state")
    if expected_version is not None and locked.version != expected_version:
        raise stale_record_error(locked)
    return locked


def save_record_fields(
    record: WorkflowRecord,
    actor: User,
    fields: list[str],
    expected_version: int | None = None,
    reason: str = "",
) -> WorkflowRecord:
    """Save the named fields of `record` as `actor`'s edit and raise its version by one.

    Only the named fields are copied onto the locked row, so that a workflow action taken
    since `record` was loaded keeps its state. Refused as `lock_for_edit` refuses.
    """
    with transaction.atomic():
        locked = lock_for_edit(record, actor, expected_version)
        for name in fields:
            attname = record._meta.get_field(name).attname
            setattr(locked, attname, getattr(record, attname))
        locked.version += 1
        locked._history_user = actor
        if reason:
            locked._change_reason = reason
        locked.save(update_fields=list(dict.fromkeys([*fields, "version", *_stamp(locked)])))
    for name in ("version", *_stamp(locked)):
        setattr(record, name, getattr(locked, name))
    return locked


def take_transition(
    record: WorkflowRecord,
    code: str,
    actor: User,
    comment: str = "",
    expected_version: int | None = None,
) -> TransitionResult:
    """Take transition `code` on `record` as `actor`, or open its approval request."""
    model = type(record)
    with transaction.atomic():
        locked = _lock(model, record.pk, actor)
        if expected_version is not None and locked.version != expected_version:
            raise WorkflowError(
                _(
                    "The record was changed by someone else meanwhile (it is now in state "
                    "'%(state)s'); reload it and try again."
                )
                % {"state": _state_name(locked)},
                code="stale_record",
            )
        transition = _transition(locked, code)
        refusal = transition_refusal(locked, transition, actor, comment)
        if refusal:
            raise WorkflowError(refusal, code="transition_refused")
        if transition.approvals_required:
            request = _open_approval(locked, transition, actor, comment)
            return TransitionResult(record=locked, approval=request)
        log = _apply(locked, transition, actor, comment)
    return TransitionResult(record=locked, log=log)


def eligible_approvers(request: ApprovalRequest, record: WorkflowRecord) -> list[User]:
    """Return who may vote on an approval request."""
    transition = request.transition
    relation = transition.approver_relation
    users: list[User] = []
    if relation == ApproverRelation.ROLE and transition.approver_role_id:
        users = list(User.objects.filter(groups=transition.approver_role_id, is_active=True))
    elif relation == ApproverRelation.REQUESTER_DEPARTMENT_HEAD:
        requester = getattr(record, "requester", None)
        head = requester.department.head if requester and requester.department else None
        users = [head] if head else []
    elif relation == ApproverRelation.BUSINESS_SYSTEM_OWNER:
        system = getattr(record, "business_system", None)
        users = [system.owner] if system and system.owner else []
    elif relation == ApproverRelation.SUPPORT_GROUP_LEADER:
        group = getattr(record, "support_group", None)
        users = [group.leader] if group and group.leader else []
    if not transition.allow_self_approval:
        users = [u for u in users if u.pk != request.requested_by_id]
    return users


def decide_approval(
    request_id: int, actor: User, approve: bool, comment: str = ""
) -> ApprovalRequest:
    """Record `actor`'s vote; take the transition when the quorum is reached."""
    with transaction.atomic():
        request = ApprovalRequest.objects.select_related("transition").get(pk=request_id)
        model = request.content_type.model_class()
        locked = _lock(model, request.object_id, actor)
        request = (
            ApprovalRequest.objects.select_for_update()
            .select_related("transition")
            .get(pk=request_id)
        )
        if request.status != ApprovalStatus.PENDING:
            raise WorkflowError(
                _("This approval request is already %(status)s.")
                % {"status": request.get_status_display()},
                code="approval_closed",
            )
        approvers = eligible_approvers(request, locked)
        if actor.pk not in {u.pk for u in approvers}:
            if actor.pk == request.requested_by_id and not request.transition.allow_self_approval:
                message = _("You asked for this approval and may not approve it yourself.")
            else:
                message = _("You are not one of the approvers of this request.")
            raise WorkflowError(message, code="not_an_approver")
        if not approve and not comment.strip():
            raise WorkflowError(_("Say why you reject the request."), code="comment_required")
        try:
            with transaction.atomic():
                ApprovalVote.objects.create(
                    request=request, approver=actor, approved=approve, comment=comment
                )
        except IntegrityError as exc:
            raise WorkflowError(
                _("You have already voted on this request."), code="already_voted"
            ) from exc
        votes = list(request.votes.values_list("approved", flat=True))
        yes, no = votes.count(True), votes.count(False)
        if yes >= request.approvals_required:
            if locked.state != request.from_state:
                request.status = ApprovalStatus.WITHDRAWN
            else:
                request.status = ApprovalStatus.APPROVED
                _apply(
                    locked,
                    request.transition,
                    request.requested_by,
                    request.comment,
                    approved_by=actor,
                )
        elif len(approvers) - no < request.approvals_required:
            request.status = ApprovalStatus.REJECTED
        if request.status != ApprovalStatus.PENDING:
            request.decided_at = timezone.now()
        request.save(update_fields=["status", "decided_at"])
        _after_commit(approval_decided, request=request, actor=actor)
    return request


def pending_approval(record: WorkflowRecord) -> ApprovalRequest | None:
    return ApprovalRequest.objects.filter(
        content_type=ContentType.objects.get_for_model(record),
        object_id=record.pk,
        status=ApprovalStatus.PENDING,
    ).first()


def record_history(record: WorkflowRecord):
    """Return the state changes of a record, oldest first."""
    return TransitionLog.objects.filter(
        content_type=ContentType.objects.get_for_model(record), object_id=record.pk
    ).select_related("actor")


# ------------------------------------------------------------------------------- helpers


def _lock(model, pk: int, actor: User) -> WorkflowRecord:
    try:
        # No select_related: FOR UPDATE would lock the joined workflow row too, and wait
        # for any transaction holding it shared (an import's foreign-key checks).
        return model.objects.visible_to(actor).select_for_update().get(pk=pk)
    except model.DoesNotExist as exc:
        raise WorkflowError(
            _("%(model)s %(pk)s does not exist or is outside your scope.")
            % {"model": model._meta.verbose_name, "pk": pk},
            code="not_found",
        ) from exc


def _transition(record: WorkflowRecord, code: str) -> WorkflowTransition:
    try:
        return record.workflow.transitions.prefetch_related("roles").get(code=code)
    except WorkflowTransition.DoesNotExist as exc:
        raise WorkflowError(
            _("Workflow '%(workflow)s' has no action '%(code)s'.")
            % {"workflow": record.workflow.name, "code": code},
            code="unknown_transition",
        ) from exc


def _state_name(record: WorkflowRecord) -> str:
    state = record.current_state()
    return state.name if state else record.state


def _open_approval(
    record: WorkflowRecord, transition: WorkflowTransition, actor: User, comment: str
) -> ApprovalRequest:
    ct = ContentType.objects.get_for_model(record)
    if ApprovalRequest.objects.filter(
        content_type=ct, object_id=record.pk, status=ApprovalStatus.PENDING
    ).exists():
        raise WorkflowError(
            _("An approval request is already open on this record; wait for its decision."),
            code="approval_pending",
        )
    request = ApprovalRequest(
        content_type=ct,
        object_id=record.pk,
        transition=transition,
        from_state=record.state,
        requested_by=actor,
        comment=comment,
        approvals_required=transition.approvals_required,
    )
    approvers = eligible_approvers(request, record)
    if len(approvers) < transition.approvals_required:
        raise WorkflowError(
            _(
                "'%(action)s' needs %(needed)s approvals but only %(found)s people may approve "
                "it; tell an administrator."
            )
            % {
                "action": transition.label,
                "needed": transition.approvals_required,
                "found": len(approvers),
            },
            code="too_few_approvers",
        )
    request.save()
    # The version moves so that a screen opened before the request is told it is stale.
    type(record).objects.filter(pk=record.pk).update(version=record.version + 1)
    record.version += 1
    _after_commit(approval_requested, request=request, actor=actor)
    return request


def _apply(
    record: WorkflowRecord,
    transition: WorkflowTransition,
    actor: User,
    comment: str,
    approved_by: User | None = None,
) -> TransitionLog:
    now = timezone.now()
    from_state = record.state
    record.state = transition.target_state
    record.version += 1
    record.state_changed_at = now
    update_fields = ["state", "version", "state_changed_at"]
    for name in _stamp(record):
        setattr(record, name, now)
        update_fields.append(name)
    target = record.workflow.state(transition.target_state)
    if hasattr(record, "on_state_change"):
        update_fields += record.on_state_change(from_state, target, now) or []
    record._change_reason = transition.label
    if actor is not None:
        record._history_user = actor
    record.save(update_fields=list(dict.fromkeys(update_fields)))
    log = TransitionLog.objects.create(
        content_type=ContentType.objects.get_for_model(record),
        object_id=record.pk,
        workflow=record.workflow,
        transition=transition,
        action=transition.label,
        from_state=from_state,
        to_state=transition.target_state,
        actor=actor,
        comment=comment,
        created_at=now,
    )
    audit.info(
        "transition %s on %s %s: %s -> %s by %s%s",
        transition.code,
        record._meta.label,
        record.pk,
        from_state,
        transition.target_state,
        actor.pk if actor else None,
        f" approved by {approved_by.pk}" if approved_by else "",
    )
    transition_applied.send(sender=type(record), record=record, log=log, actor=actor)
    _after_commit(transition_completed, record=record, log=log, actor=actor)
    return log


def _stamp(record: WorkflowRecord) -> list[str]:
    """Return `updated_at` when the record's model keeps that time of its last change."""
    try:
        field = record._meta.get_field("updated_at")
    except FieldDoesNotExist:
        return []
    return ["updated_at"] if getattr(field, "auto_now", False) else []


def _after_commit(signal, **kwargs) -> None:
    transaction.on_commit(lambda: signal.send(sender=WorkflowRecord, **kwargs), robust=True)
