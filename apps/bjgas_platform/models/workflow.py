"""The workflow engine's data: workflows, states, transitions, approvals and the log.

States and transitions refer to each other by state code, so that an administrator can
add a state and the transitions into it in one save of the workflow's page; the engine
checks the whole definition before it is saved (`services.workflow.validate_definition`).
"""

from django.conf import settings
from django.contrib.auth.models import Group
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from ..choices import ApprovalStatus, ApproverRelation, StateCategory, StateColor
from .org import code_validator

ANY_STATE = "*"


class Workflow(models.Model):
    """The states and transitions of one kind of process record."""

    code = models.CharField(_("code"), max_length=40, unique=True, validators=[code_validator])
    name = models.CharField(_("name"), max_length=100)
    model = models.ForeignKey(
        ContentType,
        models.PROTECT,
        related_name="+",
        verbose_name=_("process"),
        help_text=_("The kind of record this workflow drives."),
    )
    description = models.TextField(_("description"), blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    is_default = models.BooleanField(
        _("default for the process"),
        default=False,
        help_text=_("Used for new records when nothing else chooses a workflow."),
    )
    history = HistoricalRecords()

    class Meta:
        verbose_name = _("workflow")
        verbose_name_plural = _("workflows")
        ordering = ["code"]

    def __str__(self) -> str:
        return self.name

    def initial_state(self) -> "WorkflowState | None":
        return self.states.filter(is_initial=True).first()

    def state(self, code: str) -> "WorkflowState | None":
        return next((s for s in self.states.all() if s.code == code), None)


class WorkflowState(models.Model):
    """A state a record can be in, with what it means for SLA clocks and editing."""

    workflow = models.ForeignKey(
        Workflow, models.CASCADE, related_name="states", verbose_name=_("workflow")
    )
    code = models.CharField(_("code"), max_length=40, validators=[code_validator])
    name = models.CharField(_("name"), max_length=50)
    category = models.CharField(
        _("category"), max_length=20, choices=StateCategory.choices, default=StateCategory.OPEN
    )
    color = models.CharField(_("color"), max_length=10, choices=StateColor.choices, default="blue")
    is_initial = models.BooleanField(_("initial state"), default=False)
    sla_running = models.BooleanField(
        _("SLA clock runs"), default=True, help_text=_("Off for waiting states: the clock pauses.")
    )
    sla_milestone = models.CharField(
        _("SLA milestone"),
        max_length=20,
        blank=True,
        choices=[("dispatched", _("Dispatched")), ("accepted", _("Accepted"))],
        help_text=_(
            "Entering a dispatched state stops the dispatch clock and starts the acceptance "
            "clock; entering an accepted state stops the acceptance clock and counts as "
            "the first response."
        ),
    )
    read_only = models.BooleanField(
        _("read-only"), default=False, help_text=_("Nobody edits the record's fields in it.")
    )
    edit_roles = models.ManyToManyField(
        Group,
        blank=True,
        related_name="+",
        verbose_name=_("roles that may edit"),
        help_text=_("Empty: everyone with the change permission."),
    )
    order = models.PositiveSmallIntegerField(_("order"), default=0)
    history = HistoricalRecords(m2m_fields=[edit_roles])

    class Meta:
        verbose_name = _("state")
        verbose_name_plural = _("states")
        ordering = ["workflow", "order", "id"]
        constraints = [
            models.UniqueConstraint(fields=["workflow", "code"], name="workflow_state_unique_code")
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_final(self) -> bool:
        return self.category in (StateCategory.CLOSED, StateCategory.CANCELLED)


class WorkflowTransition(models.Model):
    """An action that moves a record from some states to another, for some roles."""

    workflow = models.ForeignKey(
        Workflow, models.CASCADE, related_name="transitions", verbose_name=_("workflow")
    )
    code = models.CharField(_("code"), max_length=40, validators=[code_validator])
    label = models.CharField(_("action label"), max_length=50)
    source_states = models.CharField(
        _("from states"),
        max_length=400,
        help_text=_("State codes separated by commas; '*' for every state that is not final."),
    )
    target_state = models.CharField(_("to state"), max_length=40)
    roles = models.ManyToManyField(
        Group,
        blank=True,
        related_name="+",
        verbose_name=_("allowed roles"),
        help_text=_("Empty: everyone who may change the record."),
    )
    condition = models.TextField(
        _("condition"),
        blank=True,
        help_text=_(
            "An expression over the record's fields, e.g. "
            "priority in ('P1', 'P2') and business_system.code == 'SCADA'. Empty: always."
        ),
    )
    condition_message = models.CharField(
        _("message when the condition fails"), max_length=200, blank=True
    )
    comment_required = models.BooleanField(_("comment required"), default=False)
    approvals_required = models.PositiveSmallIntegerField(
        _("approvals required"),
        default=0,
        help_text=_("0: no approval. 2 with three eligible approvers is a 2-of-3 quorum."),
    )
    approver_relation = models.CharField(
        _("approvers"),
        max_length=40,
        choices=ApproverRelation.choices,
        default=ApproverRelation.ROLE,
    )
    approver_role = models.ForeignKey(
        Group,
        models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("approver role"),
    )
    allow_self_approval = models.BooleanField(
        _("self-approval allowed"),
        default=False,
        help_text=_("Whether the person who asked may approve their own request."),
    )
    order = models.PositiveSmallIntegerField(_("order"), default=0)
    history = HistoricalRecords(m2m_fields=[roles])

    class Meta:
        verbose_name = _("transition")
        verbose_name_plural = _("transitions")
        ordering = ["workflow", "order", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["workflow", "code"], name="workflow_transition_unique_code"
            )
        ]

    def __str__(self) -> str:
        return self.label

    def source_codes(self) -> list[str]:
        return [c.strip() for c in self.source_states.split(",") if c.strip()]

    def leaves(self, state: "WorkflowState") -> bool:
        """Whether this transition may start from `state`."""
        codes = self.source_codes()
        if ANY_STATE in codes:
            return not state.is_final and state.code != self.target_state
        return state.code in codes


class RecordLinkMixin(models.Model):
    """A row that points at one process record of any kind."""

    content_type = models.ForeignKey(
        ContentType, models.CASCADE, related_name="+", verbose_name=_("kind of record")
    )
    object_id = models.PositiveBigIntegerField(_("record id"))
    record = GenericForeignKey("content_type", "object_id")

    class Meta:
        abstract = True
        indexes = [models.Index(fields=["content_type", "object_id"])]


class TransitionLog(RecordLinkMixin):
    """One state change of one record: who, when, from, to, why."""

    workflow = models.ForeignKey(
        Workflow, models.PROTECT, related_name="+", verbose_name=_("workflow")
    )
    transition = models.ForeignKey(
        WorkflowTransition,
        models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("transition"),
    )
    action = models.CharField(_("action"), max_length=50)
    from_state = models.CharField(_("from state"), max_length=40, blank=True)
    to_state = models.CharField(_("to state"), max_length=40)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("by"),
    )
    comment = models.TextField(_("comment"), blank=True)
    created_at = models.DateTimeField(_("at"), db_index=True)

    class Meta(RecordLinkMixin.Meta):
        verbose_name = _("state change")
        verbose_name_plural = _("state changes")
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.from_state or '∅'} → {self.to_state}"


class ApprovalRequest(RecordLinkMixin):
    """A transition waiting for approvers; taken when enough of them approve."""

    transition = models.ForeignKey(
        WorkflowTransition,
        models.CASCADE,
        related_name="approval_requests",
        verbose_name=_("transition"),
    )
    from_state = models.CharField(_("from state"), max_length=40)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.PROTECT, related_name="+", verbose_name=_("asked by")
    )
    comment = models.TextField(_("comment"), blank=True)
    status = models.CharField(
        _("status"), max_length=20, choices=ApprovalStatus.choices, default=ApprovalStatus.PENDING
    )
    approvals_required = models.PositiveSmallIntegerField(_("approvals required"))
    created_at = models.DateTimeField(_("asked at"), auto_now_add=True)
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)

    class Meta(RecordLinkMixin.Meta):
        verbose_name = _("approval request")
        verbose_name_plural = _("approval requests")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.transition.label} ({self.get_status_display()})"


class ApprovalVote(models.Model):
    """One approver's decision on an approval request."""

    request = models.ForeignKey(
        ApprovalRequest, models.CASCADE, related_name="votes", verbose_name=_("request")
    )
    approver = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.PROTECT, related_name="+", verbose_name=_("approver")
    )
    approved = models.BooleanField(_("approved"))
    comment = models.TextField(_("comment"), blank=True)
    created_at = models.DateTimeField(_("at"), auto_now_add=True)

    class Meta:
        verbose_name = _("approval vote")
        verbose_name_plural = _("approval votes")
        constraints = [
            models.UniqueConstraint(fields=["request", "approver"], name="approval_one_vote_each")
        ]

    def __str__(self) -> str:
        return f"{self.approver}: {'✓' if self.approved else '✗'}"


class WorkflowRecord(models.Model):
    """Abstract base of every process record that a workflow drives."""

    workflow = models.ForeignKey(
        Workflow, models.PROTECT, related_name="+", verbose_name=_("workflow")
    )
    state = models.CharField(_("state"), max_length=40, db_index=True)
    version = models.PositiveIntegerField(
        _("version"), default=0, help_text=_("Raised by every state change; guards races.")
    )
    state_changed_at = models.DateTimeField(_("state changed at"), null=True, blank=True)

    class Meta:
        abstract = True

    def current_state(self) -> WorkflowState | None:
        return self.workflow.state(self.state)
