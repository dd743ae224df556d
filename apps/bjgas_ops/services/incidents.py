"""Incidents: report, prioritise, assign, comment, supplement, resolve and close by itself.

State changes go through the workflow engine; this module adds what an incident needs
around them. The engine calls `apply_state_change` (through `Incident.on_state_change`)
while it saves a new state, so the resolution, reopening and closing stamps are saved with
the state in one row and one history entry; `after_transition` runs in the same
transaction once the state change is logged (the `transition_applied` signal) and keeps
the derived rows current: the accepting engineer becomes the assignee, the requester is
asked to confirm a resolution, and the segments are rebuilt.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q, QuerySet
from django.utils import timezone
from django.utils.text import Truncator
from django.utils.translation import gettext as _

from apps.bjgas_platform.choices import StateCategory
from apps.bjgas_platform.models import (
    Attachment,
    Comment,
    CommentKind,
    SlaClock,
    SlaClockStatus,
    SupportGroup,
    TransitionLog,
    User,
    Vendor,
    Workflow,
    WorkflowState,
)
from apps.bjgas_platform.services.errors import PlatformError
from apps.bjgas_platform.services.notifications import notify
from apps.bjgas_platform.services.numbering import next_number
from apps.bjgas_platform.services.schedules import ensure_every_minute
from apps.bjgas_platform.services.sla import refresh_clocks
from apps.bjgas_platform.services.workflow import (
    WorkflowError,
    default_workflow,
    edit_refusal,
    stale_record_error,
    start_record,
    take_transition,
)

from ..models import Incident, Level, PriorityMatrix
from ..reference import ASSIGN_PERMISSION as ASSIGN_CODENAME
from ..reference import INTERNAL_NOTES_PERMISSION, SYSTEM_USERNAME
from .segments import rebuild_segments

logger = logging.getLogger(__name__)

DEFAULT_AUTO_CLOSE_MINUTES = 4320
AUTO_CLOSE = "auto_close"
ESCALATE = "escalate"
TRANSFER = "transfer"
# Transitions that hand the incident to another group or person: taken by `assign`.
REASSIGNING_TRANSITIONS = (ESCALATE, TRANSFER)
ASSIGN_PERMISSION = f"bjgas_ops.{ASSIGN_CODENAME}"
NOTES_PERMISSION = f"bjgas_ops.{INTERNAL_NOTES_PERMISSION}"
AUTO_CLOSE_SCHEDULE = "bjgas: close resolved incidents after their delay"
AUTO_CLOSE_TASK = "apps.bjgas_ops.tasks.auto_close_incidents"
# Fields an edit may change; priority and assignment have their own services.
EDITABLE_FIELDS = (
    "title",
    "description",
    "requester_phone",
    "requester_extension",
    "department",
    "region",
    "business_system",
    "catalog_item",
    "category",
    "resolution_code",
    "resolution_notes",
)
PRIORITY_FIELDS = ("urgency", "impact", "severity")
ASSIGNMENT_FIELDS = ("support_group", "assignee", "vendor")


class IncidentError(PlatformError):
    """An incident action was refused; nothing changed."""


# ------------------------------------------------------------------------------ create


def create_incident(actor: User, *, channel: str, files: Iterable = (), **fields) -> Incident:
    """Report an incident numbered INC-YYYYMMDD-NNNN, with its priority and defaults.

    The requester defaults to the actor; their phone, extension, company and department
    are copied; the catalog item gives the support group, business system and workflow;
    the priority comes from the urgency × impact matrix.
    """
    chosen = [name for name in ASSIGNMENT_FIELDS if fields.get(name) or fields.get(f"{name}_id")]
    if chosen and not actor.has_perm(ASSIGN_PERMISSION):
        raise IncidentError(
            _(
                "Only the service desk, engineers and team leads choose who handles an "
                "incident; leave '%(field)s' empty."
            )
            % {"field": Incident._meta.get_field(chosen[0]).verbose_name},
            code="permission_denied",
            field=chosen[0],
        )
    incident = Incident(channel=channel, **fields)
    incident.created_by = actor
    if not incident.requester_id:
        incident.requester = actor
    requester = incident.requester
    incident.requester_phone = incident.requester_phone or requester.phone
    incident.requester_extension = incident.requester_extension or requester.extension
    if not incident.company_id:
        if not requester.company_id:
            raise IncidentError(
                _("The requester belongs to no company: choose the reporting company."),
                code="company_required",
                field="company",
            )
        incident.company_id = requester.company_id
    if (
        not incident.department_id
        and requester.department_id
        and requester.company_id == incident.company_id
    ):
        incident.department_id = requester.department_id
    item = incident.catalog_item
    if item is not None:
        if not incident.support_group_id and item.default_support_group_id:
            incident.support_group_id = item.default_support_group_id
        if not incident.business_system_id and item.business_system_id:
            incident.business_system_id = item.business_system_id
    if incident.support_group_id:
        incident.tier = incident.support_group.tier
    if "created_at" not in fields:
        incident.created_at = timezone.now()
    incident.priority = priority_for(incident.urgency, incident.impact)
    workflow = _workflow_for(item)
    incident.full_clean(exclude=["number", "workflow", "state", "created_by"])
    with transaction.atomic():
        incident.number = next_number("INC")
        start_record(incident, actor, workflow)
        _attach(incident, actor, files, comment=None, public=True)
        notify(
            "incident.created",
            record=incident,
            actor=actor,
            key=f"incident:{incident.pk}:created",
        )
    return incident


def priority_for(urgency: int, impact: int) -> str:
    """Return the priority the matrix gives to an urgency and an impact."""
    cell = PriorityMatrix.objects.filter(urgency=urgency, impact=impact).first()
    if cell is None:
        raise IncidentError(
            _(
                "The priority matrix has no cell for urgency '%(urgency)s' and impact "
                "'%(impact)s'; an administrator must add it to the priority matrix."
            )
            % {"urgency": _level_label(urgency), "impact": _level_label(impact)},
            code="priority_matrix_incomplete",
            field="urgency",
        )
    return cell.priority


def _level_label(value) -> str:
    try:
        return str(Level(value).label)
    except ValueError:
        return str(value)


def _workflow_for(item) -> Workflow:
    """Return the catalog item's incident workflow, else the process default."""
    if item is not None and item.default_workflow_id:
        workflow = item.default_workflow
        incident_type = ContentType.objects.get_for_model(Incident)
        # An item may name a workflow of another process (its requests): not for incidents.
        if workflow.is_active and workflow.model_id == incident_type.pk:
            return workflow
    return default_workflow(Incident)


# ------------------------------------------------------------------ priority and edits


def update_priority(
    incident: Incident,
    actor: User,
    urgency: int,
    impact: int,
    severity: str | None = None,
) -> Incident:
    """Set urgency, impact and (unless None) severity; the matrix gives the new priority."""
    with transaction.atomic():
        locked = _lock(incident, actor)
        _require_editable(locked, actor)
        _raise_version(locked)
        _set_priority(locked, actor, urgency, impact, severity)
    return locked


def _set_priority(
    locked: Incident, actor: User, urgency: int, impact: int, severity: str | None
) -> None:
    old = locked.priority
    locked.urgency, locked.impact = urgency, impact
    if severity is not None:
        locked.severity = severity
    locked.priority = priority_for(urgency, impact)
    locked.full_clean(
        exclude=[f.name for f in Incident._meta.fields if f.name not in PRIORITY_FIELDS],
        validate_unique=False,
        validate_constraints=False,
    )
    reason = _("Priority %(old)s → %(new)s (urgency %(urgency)s, impact %(impact)s)") % {
        "old": old,
        "new": locked.priority,
        "urgency": _level_label(urgency),
        "impact": _level_label(impact),
    }
    _save(locked, actor, [*PRIORITY_FIELDS, "priority"], reason=reason)
    _refresh_sla(locked)


def update_incident(
    incident: Incident, actor: User, expected_version: int | None = None, **fields
) -> Incident:
    """Change an incident's descriptive fields where its state lets the actor edit.

    With `expected_version`, the edit is refused when the incident's version has moved on
    since the caller loaded it. An accepted edit raises the version by one.
    """
    for name in fields:
        if name in ASSIGNMENT_FIELDS:
            raise IncidentError(
                _("Change the support group, assignee or vendor with the assign action."),
                code="use_assign",
                field=name,
            )
        if name not in EDITABLE_FIELDS + PRIORITY_FIELDS:
            raise IncidentError(
                _("The field '%(field)s' cannot be changed here.") % {"field": name},
                code="not_editable",
                field=name,
            )
    priority = {name: fields.pop(name) for name in PRIORITY_FIELDS if name in fields}
    with transaction.atomic():
        locked = _lock(incident, actor)
        _require_editable(locked, actor)
        if expected_version is not None and locked.version != expected_version:
            raise stale_record_error(locked)
        priority_moves = any(getattr(locked, k) != v for k, v in priority.items())
        if fields or priority_moves:
            _raise_version(locked)
        if fields:
            for name, value in fields.items():
                setattr(locked, name, value)
            locked.full_clean(
                exclude=[f.name for f in Incident._meta.fields if f.name not in fields],
                validate_unique=False,
                validate_constraints=False,
            )
            _save(locked, actor, list(fields), reason=_("Edited"))
            if "catalog_item" in fields:
                _refresh_sla(locked)  # the item may bring another SLA policy
        if priority_moves:
            _set_priority(
                locked,
                actor,
                priority.get("urgency", locked.urgency),
                priority.get("impact", locked.impact),
                priority.get("severity"),
            )
    return locked


# ------------------------------------------------------------------------------ assign


def assign(
    incident: Incident,
    actor: User,
    support_group: SupportGroup,
    assignee: User | None = None,
    vendor: Vendor | None = None,
    comment: str = "",
) -> Incident:
    """Give the incident to a support group, person and vendor; the tier follows the group.

    The three are set as given: an assignee or vendor left out means none. Before dispatch
    this only fills in who will handle it. Afterwards a change of group or of the person
    handling it is a reassignment: it is counted, and taken as the workflow's escalation
    (to a higher tier: 一线 → 二线 → 三线) or transfer, both of which send the incident
    back to dispatched so that the new handler accepts it again.
    """
    if support_group is None:
        raise IncidentError(
            _("Choose the support group the incident goes to."),
            code="support_group_required",
            field="support_group",
        )
    with transaction.atomic():
        locked = _lock(incident, actor)
        if not actor.has_perm(ASSIGN_PERMISSION):
            raise IncidentError(
                _("You may not assign incidents: the service desk, engineers and team leads do."),
                code="permission_denied",
            )
        state = locked.current_state()
        if state is None or state.is_final:
            raise IncidentError(
                _("Incident %(number)s is %(state)s and can no longer be assigned.")
                % {"number": locked.number, "state": _state_name(locked)},
                code="incident_final",
            )
        _check_assignment(support_group, assignee, vendor)
        assignee_id = assignee.pk if assignee else None
        vendor_id = vendor.pk if vendor else None
        reassigned = locked.support_group_id != support_group.pk or (
            locked.assignee_id is not None and locked.assignee_id != assignee_id
        )
        person_changed = assignee_id is not None and locked.assignee_id != assignee_id
        if not reassigned and not person_changed and locked.vendor_id == vendor_id:
            return locked

        at = None
        if reassigned and not state.is_initial:
            code = ESCALATE if (support_group.tier or 0) > (locked.tier or 0) else TRANSFER
            result = take_transition(locked, code, actor, comment)
            if result.pending_approval:
                raise IncidentError(
                    _(
                        "'%(action)s' needs approval, which reassignment does not support; "
                        "an administrator must remove the approval from the workflow."
                    )
                    % {"action": result.approval.transition.label},
                    code="approval_not_supported",
                )
            locked, at = result.record, result.log.created_at
            locked.reassignment_count += 1
        locked.support_group = support_group
        locked.tier = support_group.tier
        locked.assignee = assignee
        locked.vendor = vendor
        reason = _("Assigned to %(group)s%(person)s") % {
            "group": support_group,
            "person": f" / {assignee}" if assignee else "",
        }
        _save(
            locked,
            actor,
            ["support_group", "tier", "assignee", "vendor", "reassignment_count"],
            reason=reason,
            at=at,
        )
        rebuild_segments(locked)
        if reassigned or person_changed:
            latest = locked.history.order_by("-history_id").values_list("history_id", flat=True)
            notify(
                "incident.assigned",
                record=locked,
                actor=actor,
                recipients=_handlers(locked),
                context={"text": comment},
                key=f"incident:{locked.pk}:assigned:{latest.first()}",
            )
    return locked


def _check_assignment(group: SupportGroup, assignee: User | None, vendor: Vendor | None) -> None:
    if not group.is_active:
        raise IncidentError(
            _("Support group '%(group)s' is inactive; choose another group.") % {"group": group},
            code="support_group_inactive",
            field="support_group",
        )
    if vendor is not None and not vendor.is_active:
        raise IncidentError(
            _("Vendor '%(vendor)s' is inactive; choose another vendor.") % {"vendor": vendor},
            code="vendor_inactive",
            field="vendor",
        )
    if assignee is None:
        return
    if not assignee.is_active:
        raise IncidentError(
            _("%(user)s has no active account; choose another assignee.") % {"user": assignee},
            code="assignee_inactive",
            field="assignee",
        )
    engineer = getattr(assignee, "vendor_engineer", None)
    if vendor is not None and engineer is not None and engineer.vendor_id == vendor.pk:
        return  # the vendor's own engineer works the incident for the group
    if group.members.exists() and not group.members.filter(pk=assignee.pk).exists():
        raise IncidentError(
            _("%(user)s is not a member of %(group)s; choose a member or another group.")
            % {"user": assignee, "group": group},
            code="assignee_not_member",
            field="assignee",
        )


def _handlers(incident: Incident) -> list[User]:
    """Return who handles the incident now: the assignee, else the group's lead or members."""
    if incident.assignee_id:
        return [incident.assignee]
    group = incident.support_group
    if group is None:
        return []
    if group.leader_id:
        return [group.leader]
    return list(group.members.filter(is_active=True))


# -------------------------------------------------------------- comments and supplements


def sees_internal_notes(user: User) -> bool:
    """Whether a user may read internal notes (内部备注): people who handle incidents."""
    return user.is_active and (user.is_superuser or user.has_perm(NOTES_PERMISSION))


def visible_comments(incident: Incident, user: User):
    """Return the incident's comments the user may read: requesters never see notes."""
    comments = Comment.objects.filter(
        content_type=ContentType.objects.get_for_model(Incident), object_id=incident.pk
    ).select_related("author")
    if not sees_internal_notes(user):
        comments = comments.exclude(kind=CommentKind.NOTE)
    return comments.order_by("created_at", "id")


def visible_attachments(incident: Incident, user: User):
    """Return the incident's attachments the user may download."""
    attachments = Attachment.objects.filter(
        content_type=ContentType.objects.get_for_model(Incident), object_id=incident.pk
    )
    if not sees_internal_notes(user):
        attachments = attachments.filter(is_public=True)
    return attachments.order_by("created_at", "id")


def add_comment(
    incident: Incident, actor: User, body: str, kind: str, files: Iterable = ()
) -> Comment:
    """Add a public reply or an internal note, with files attached to it."""
    body = (body or "").strip()
    if not body:
        raise IncidentError(_("Write the text of the comment."), code="text_required", field="body")
    if kind not in (CommentKind.REPLY, CommentKind.NOTE):
        raise IncidentError(
            _(
                "A comment is a public reply or an internal note; the requester's additions "
                "are supplements."
            ),
            code="bad_comment_kind",
            field="kind",
        )
    with transaction.atomic():
        locked = _lock(incident, actor)
        is_requester = locked.requester_id == actor.pk
        if kind == CommentKind.NOTE and not sees_internal_notes(actor):
            raise IncidentError(
                _("Only the people who handle incidents write internal notes."),
                code="permission_denied",
                field="kind",
            )
        if not is_requester and not actor.has_perm("bjgas_ops.change_incident"):
            raise IncidentError(
                _("You may read this incident but not reply to it."), code="permission_denied"
            )
        state = locked.current_state()
        if kind == CommentKind.REPLY and (state is None or state.is_final):
            raise IncidentError(
                _(
                    "Incident %(number)s is %(state)s; replies are closed. Report a new "
                    "incident if the problem is back."
                )
                % {"number": locked.number, "state": _state_name(locked)},
                code="incident_final",
            )
        now = timezone.now()
        comment = _comment(locked, actor, kind, body, now)
        _attach(locked, actor, files, comment=comment, public=kind == CommentKind.REPLY)
        if is_requester and _stop_auto_close(locked, _("the requester replied"), now):
            _save(locked, actor, ["auto_close_at"], reason=_("Requester replied"))
        if kind == CommentKind.REPLY:
            notify(
                "incident.commented",
                record=locked,
                actor=actor,
                recipients=_handlers(locked) if is_requester else [locked.requester],
                context={"text": body, "comment": comment},
                key=f"incident:{locked.pk}:comment:{comment.pk}",
            )
    return comment


def supplement_incident(
    incident: Incident, actor: User, text: str, files: Iterable = ()
) -> Comment:
    """Add the requester's supplement (补充说明) to an open incident; the handler is told."""
    text = (text or "").strip()
    if not text:
        raise IncidentError(
            _("Write the supplement: the text may not be empty."),
            code="text_required",
            field="text",
        )
    with transaction.atomic():
        locked = _lock(incident, actor)
        if locked.requester_id != actor.pk:
            raise IncidentError(
                _(
                    "Only the requester of %(number)s adds supplements; write a reply or an "
                    "internal note instead."
                )
                % {"number": locked.number},
                code="not_requester",
            )
        state = locked.current_state()
        if state is None or state.is_final:
            if state is not None and state.category == StateCategory.CANCELLED:
                message = _(
                    "Incident %(number)s was cancelled; a supplement can no longer be added. "
                    "Report a new incident if you still need help."
                )
            else:
                message = _(
                    "Incident %(number)s is closed; a supplement can no longer be added. "
                    "Report a new incident if the problem is back."
                )
            raise IncidentError(message % {"number": locked.number}, code="incident_final")
        now = timezone.now()
        comment = _comment(locked, actor, CommentKind.SUPPLEMENT, text, now)
        _attach(locked, actor, files, comment=comment, public=True)
        fields = []
        if _stop_auto_close(locked, _("the requester added a supplement"), now):
            fields.append("auto_close_at")
        reason = _("Requester's supplement: %(text)s") % {"text": Truncator(text).chars(80)}
        _save(locked, actor, fields, reason=reason)
        notify(
            "incident.supplemented",
            record=locked,
            actor=actor,
            recipients=_handlers(locked),
            context={"text": text, "comment": comment},
            key=f"incident:{locked.pk}:supplement:{comment.pk}",
        )
    return comment


def _comment(incident: Incident, author: User | None, kind: str, body: str, now) -> Comment:
    return Comment.objects.create(
        content_type=ContentType.objects.get_for_model(Incident),
        object_id=incident.pk,
        author=author,
        kind=kind,
        body=body,
        created_at=now,
    )


def _attach(incident: Incident, actor: User, files: Iterable, comment, public: bool) -> None:
    content_type = ContentType.objects.get_for_model(Incident)
    for upload in files:
        Attachment.objects.create(
            content_type=content_type,
            object_id=incident.pk,
            comment=comment,
            file=upload,
            name=os.path.basename(upload.name or "")[:200] or _("attachment"),
            size=upload.size or 0,
            is_public=public,
            uploaded_by=actor,
        )


def _stop_auto_close(incident: Incident, why: str, now: datetime) -> bool:
    """Stop a pending auto-close and say why in a system message; tell whether it did."""
    state = incident.current_state()
    if state is None or state.category != StateCategory.RESOLVED or not incident.auto_close_at:
        return False
    incident.auto_close_at = None
    _comment(
        incident,
        None,
        CommentKind.SYSTEM,
        _(
            "Auto-close stopped: %(why)s at %(time)s. The incident stays resolved until the "
            "requester confirms or rejects the resolution, or the service desk closes it."
        )
        % {"why": why, "time": timezone.localtime(now).strftime("%Y-%m-%d %H:%M")},
        now,
    )
    return True


# ------------------------------------------------------------------- state-change hooks


def auto_close_minutes(incident: Incident) -> int:
    """Return how long a resolved incident waits for its requester before closing itself."""
    item = incident.catalog_item
    return item.auto_close_minutes if item is not None else DEFAULT_AUTO_CLOSE_MINUTES


def apply_state_change(
    incident: Incident, from_state: str, target: WorkflowState, now: datetime
) -> list[str]:
    """Stamp resolution, reopening and closing on the incident; return the changed fields.

    Resolution fixes `resolved_at` (handling time ends there) and the auto-close time; a
    rejected resolution clears both and counts a reopening; closing stamps `closed_at`.
    """
    # The history row of this change carries the engine's time, like its log row.
    incident._history_date = now
    source = incident.workflow.state(from_state) if from_state else None
    fields = ["updated_at"]
    if target.category == StateCategory.RESOLVED:
        incident.resolved_at = now
        incident.auto_close_at = now + timedelta(minutes=auto_close_minutes(incident))
        fields += ["resolved_at", "auto_close_at"]
    elif target.category in (StateCategory.CLOSED, StateCategory.CANCELLED):
        incident.closed_at = now
        incident.auto_close_at = None
        fields += ["closed_at", "auto_close_at"]
    elif source is not None and source.category == StateCategory.RESOLVED:
        incident.resolved_at = None
        incident.auto_close_at = None
        incident.reopen_count += 1
        fields += ["resolved_at", "auto_close_at", "reopen_count"]
    return fields


def after_transition(incident: Incident, log: TransitionLog, actor: User | None) -> None:
    """Update what follows from a logged state change; runs inside its transaction."""
    incident.__dict__.pop("_history_date", None)
    target = incident.workflow.state(log.to_state)
    code = log.transition.code if log.transition_id else ""
    fields = []
    if target is not None and target.sla_milestone == "accepted" and not incident.assignee_id:
        if actor is not None and actor.username != SYSTEM_USERNAME:
            incident.assignee = actor
            fields.append("assignee")
    if target is not None and target.category == StateCategory.RESOLVED:
        if log.comment and not incident.resolution_notes:
            incident.resolution_notes = log.comment
            fields.append("resolution_notes")
    if fields:
        _save(incident, actor, fields, reason=log.action, at=log.created_at)
    rebuild_segments(incident)
    if target is None:
        return
    if target.sla_milestone == "dispatched" and code and code not in REASSIGNING_TRANSITIONS:
        notify(
            "incident.assigned",
            record=incident,
            actor=actor,
            recipients=_handlers(incident),
            context={"text": log.comment},
            key=f"incident:{incident.pk}:dispatched:{log.pk}",
        )
    if target.category == StateCategory.RESOLVED:
        notify(
            "incident.resolved",
            record=incident,
            actor=actor,
            context={"text": log.comment},
            key=f"incident:{incident.pk}:resolved:{log.pk}",
        )


# ----------------------------------------------------------------------------- overdue


def overdue_clocks(now: datetime | None = None) -> QuerySet:
    """Return the incident clocks that make an incident overdue: breached, or running late."""
    now = now or timezone.now()
    return SlaClock.objects.filter(
        content_type=ContentType.objects.get_for_model(Incident),
    ).filter(Q(breached=True) | Q(status=SlaClockStatus.RUNNING, due_at__lt=now))


def with_overdue(incidents: QuerySet, now: datetime | None = None) -> QuerySet:
    """Annotate `is_overdue` on incidents from their SLA clocks, in the same query."""
    late = overdue_clocks(now).filter(object_id=OuterRef("pk"))
    return incidents.annotate(is_overdue=Exists(late))


def is_overdue(incident: Incident, now: datetime | None = None) -> bool:
    """Tell whether one incident has a breached or late running SLA clock."""
    if hasattr(incident, "is_overdue"):
        return bool(incident.is_overdue)
    return overdue_clocks(now).filter(object_id=incident.pk).exists()


# -------------------------------------------------------------------------- auto-close


def system_user() -> User:
    """Return the account scheduled jobs act as (created with the reference data)."""
    user = User.objects.filter(username=SYSTEM_USERNAME).first()
    if user is None:
        from ..reference import ensure_system_user

        user = ensure_system_user()
    return user


def auto_close_due_incidents(now: datetime | None = None) -> int:
    """Close the resolved incidents whose auto-close time has come; return how many.

    Each one is closed through the workflow as the system account, expecting the version
    read here: an incident changed meanwhile (reopened, closed by a person or another run
    of this job) is left alone, and one whose auto-close was stopped fails the transition's
    condition. Running it twice, or twice at once, closes each incident once.
    """
    now = now or timezone.now()
    actor = system_user()
    due = list(
        Incident.objects.filter(auto_close_at__lte=now)
        .order_by("auto_close_at", "pk")
        .values_list("pk", "version")
    )
    closed = 0
    for pk, version in due:
        incident = Incident.objects.filter(pk=pk).first()
        if incident is None:
            continue
        try:
            take_transition(
                incident,
                AUTO_CLOSE,
                actor,
                _("Closed automatically: the resolution was not answered before its deadline."),
                expected_version=version,
            )
        except WorkflowError as exc:
            logger.info("Incident %s was not closed automatically: %s", pk, exc.message)
            continue
        closed += 1
    return closed


def ensure_auto_close_schedule() -> None:
    """Schedule `auto_close_incidents` every minute in the beat database, once."""
    ensure_every_minute(AUTO_CLOSE_SCHEDULE, AUTO_CLOSE_TASK)


# ----------------------------------------------------------------------------- helpers


def _lock(incident: Incident, actor: User) -> Incident:
    try:
        # Without select_related: FOR UPDATE would lock the workflow row as well.
        return Incident.objects.visible_to(actor).select_for_update().get(pk=incident.pk)
    except Incident.DoesNotExist as exc:
        raise IncidentError(
            _("Incident %(pk)s does not exist or is outside your scope.") % {"pk": incident.pk},
            code="not_found",
        ) from exc


def may_edit(incident: Incident, actor: User) -> bool:
    """Whether the actor may edit the incident's fields in its current state."""
    return actor.has_perm("bjgas_ops.change_incident") and edit_refusal(incident, actor) is None


def _require_editable(incident: Incident, actor: User) -> None:
    if not actor.has_perm("bjgas_ops.change_incident"):
        raise IncidentError(
            _("You may not edit incident %(number)s: your roles do not allow changing incidents.")
            % {"number": incident.number},
            code="not_editable",
        )
    refusal = edit_refusal(incident, actor)
    if refusal:
        raise IncidentError(refusal, code="read_only_state")


def _raise_version(locked: Incident) -> None:
    """Raise the locked incident's version by one: an edit makes older copies stale."""
    Incident.objects.filter(pk=locked.pk).update(version=F("version") + 1)
    locked.version += 1


def _state_name(incident: Incident) -> str:
    state = incident.current_state()
    return state.name if state else incident.state


def _save(
    incident: Incident,
    actor: User | None,
    fields: list[str],
    reason: str = "",
    at: datetime | None = None,
) -> None:
    """Save some fields with one history row naming who, why and (if given) when."""
    if at is not None:
        incident._history_date = at
    if actor is not None:
        incident._history_user = actor
    incident._change_reason = reason
    try:
        incident.save(update_fields=list(dict.fromkeys([*fields, "updated_at"])))
    finally:
        incident.__dict__.pop("_history_date", None)


def _refresh_sla(incident: Incident) -> None:
    """Derive the SLA clocks again after a change that is neither a transition nor a reply."""
    refresh_clocks(incident)
