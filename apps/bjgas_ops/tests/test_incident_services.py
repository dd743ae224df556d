"""Incident services: the priority matrix, creation defaults, the default workflow's paths,
assignment and escalation, comments and the requester's supplement."""

from datetime import timedelta

import pytest
from django.contrib.contenttypes.models import ContentType
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.bjgas_ops.models import Incident, PriorityMatrix
from apps.bjgas_ops.services.incidents import (
    IncidentError,
    add_comment,
    assign,
    create_incident,
    supplement_incident,
    update_priority,
    visible_comments,
)
from apps.bjgas_platform.models import (
    Attachment,
    Comment,
    OutboxMessage,
    Workflow,
    WorkflowState,
)
from apps.bjgas_platform.services.workflow import WorkflowError, take_transition

from .incident_fixtures import *  # noqa: F403 (the fixtures clock and world)
from .incident_fixtures import act, local, logs, report

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("english")]


def outbox(event_key: str, user) -> set[str]:
    """Return the channels of the outbox messages to `user` whose key contains `event_key`."""
    return set(
        OutboxMessage.objects.filter(
            recipient=user, idempotency_key__contains=event_key
        ).values_list("channel", flat=True)
    )


# ---------------------------------------------------------------------- priority matrix


def test_default_matrix_gives_priority_from_urgency_and_impact():
    # 1 critical .. 4 low on both axes; worked out from the sum of the two levels:
    # 2-3 → P1, 4 → P2, 5-6 → P3, 7-8 → P4.
    expected = {
        (1, 1): "P1", (1, 2): "P1", (2, 1): "P1",
        (1, 3): "P2", (2, 2): "P2", (3, 1): "P2",
        (1, 4): "P3", (2, 3): "P3", (3, 2): "P3", (4, 1): "P3",
        (2, 4): "P3", (3, 3): "P3", (4, 2): "P3",
        (3, 4): "P4", (4, 3): "P4", (4, 4): "P4",
    }  # fmt: skip
    cells = {(c.urgency, c.impact): c.priority for c in PriorityMatrix.objects.all()}
    assert cells == expected


def test_an_edited_matrix_cell_decides_new_incidents(world, clock):
    PriorityMatrix.objects.filter(urgency=2, impact=3).update(priority="P1")
    incident = report(world, urgency=2, impact=3)
    assert incident.priority == "P1"


def test_missing_matrix_cell_is_refused_with_a_clear_message(world, clock):
    PriorityMatrix.objects.filter(urgency=2, impact=3).delete()
    with pytest.raises(IncidentError) as refused:
        report(world, urgency=2, impact=3)
    assert refused.value.message == (
        "The priority matrix has no cell for urgency '2 - High' and impact '3 - Medium'; "
        "an administrator must add it to the priority matrix."
    )
    assert refused.value.field == "urgency"
    assert not Incident.objects.exists()


def test_priority_change_recomputes_and_is_in_the_history(world, clock):
    incident = report(world)
    assert incident.priority == "P3"
    updated = update_priority(incident, world.desk, urgency=1, impact=2, severity="A")
    assert (updated.priority, updated.severity) == ("P1", "A")
    latest = updated.history.order_by("-history_id").first()
    assert (
        latest.history_change_reason == "Priority P3 → P1 (urgency 1 - Critical, impact 2 - High)"
    )
    assert latest.history_user == world.desk


def test_requester_may_change_urgency_only_before_dispatch(world, clock):
    incident = report(world, catalog_item=world.pc)
    assert update_priority(incident, world.zhang, urgency=2, impact=3).priority == "P3"
    incident = act(incident, "dispatch", world.desk)
    with pytest.raises(IncidentError) as refused:
        update_priority(incident, world.zhang, urgency=1, impact=1)
    assert refused.value.code == "read_only_state"
    incident.refresh_from_db()
    assert incident.priority == "P3"


# ---------------------------------------------------------------------------- creation


def test_creation_fills_in_the_defaults(world, clock):
    incident = report(world, catalog_item=world.pc, severity="B")

    assert incident.number == "INC-20260303-0001"
    assert report(world).number == "INC-20260303-0002"
    assert incident.requester == world.zhang
    assert incident.created_by == world.zhang
    assert (incident.requester_phone, incident.requester_extension) == ("13800000001", "6021")
    assert (incident.company, incident.department) == (world.hq, world.fin)
    assert (incident.support_group, incident.tier) == (world.g1, 1)
    assert (incident.urgency, incident.impact, incident.priority) == (3, 3, "P3")
    assert incident.severity == "B"
    assert incident.channel == "portal"
    assert incident.workflow.code == "incident_default"
    assert incident.state == "new"
    assert incident.created_at == local(2026, 3, 3, 9, 0)
    assert logs(incident) == [("", "new", "Created")]
    # The service desk hears of every new incident in the bell.
    assert outbox(f"incident:{incident.pk}:created", world.desk) == {"in_app"}


def test_desk_registers_for_a_requester_by_phone(world, clock):
    incident = report(world, actor=world.desk, requester=world.zhang, channel="phone")
    assert (incident.requester, incident.created_by) == (world.zhang, world.desk)
    assert (incident.company, incident.department) == (world.hq, world.fin)
    assert incident.channel == "phone"


def test_requester_without_company_must_name_one(world, clock):
    world.zhang.company = world.zhang.department = None
    world.zhang.save()
    with pytest.raises(IncidentError) as refused:
        report(world)
    assert refused.value.field == "company"
    assert refused.value.message == (
        "The requester belongs to no company: choose the reporting company."
    )


def test_requester_may_not_choose_who_handles_it(world, clock):
    with pytest.raises(IncidentError) as refused:
        report(world, support_group=world.g2)
    assert refused.value.field == "support_group"
    assert not Incident.objects.exists()


def test_catalog_item_workflow_is_used_only_when_it_drives_incidents(world, clock):
    world.pc.default_workflow = Workflow.objects.get(code="task_default")
    world.pc.save()
    assert report(world, catalog_item=world.pc).workflow.code == "incident_default"

    quick = Workflow.objects.create(
        code="incident_quick",
        name="快速事件",
        model=ContentType.objects.get_for_model(Incident),
    )
    WorkflowState.objects.create(workflow=quick, code="open", name="受理", is_initial=True)
    world.pc.default_workflow = quick
    world.pc.save()
    incident = report(world, catalog_item=world.pc)
    assert (incident.workflow, incident.state) == (quick, "open")


def test_creation_attaches_files(world, clock):
    photo = SimpleUploadedFile("黑屏.png", b"\x89PNG fake", content_type="image/png")
    incident = create_incident(world.zhang, channel="mobile", title="黑屏", files=[photo])
    attachment = Attachment.objects.get(object_id=incident.pk)
    assert (attachment.name, attachment.size, attachment.is_public) == ("黑屏.png", 9, True)
    assert attachment.uploaded_by == world.zhang


# ---------------------------------------------------------------------------- workflow


def test_whole_path_from_report_to_confirmation(world, clock):
    incident = report(world, catalog_item=world.erp, title="ERP 凭证无法过账")
    assert (incident.support_group, incident.tier) == (world.g2, 2)

    clock.advance(minutes=5)
    incident = act(incident, "dispatch", world.desk)
    clock.advance(minutes=5)
    incident = act(incident, "accept", world.wang)
    assert incident.assignee == world.wang  # the engineer who accepts takes it
    clock.advance(minutes=1)
    incident = act(incident, "start", world.wang)
    clock.advance(minutes=10)
    incident = act(incident, "wait_requester", world.wang, "请提供报错截图")
    clock.advance(minutes=20)
    incident = act(incident, "resume", world.wang)
    clock.advance(minutes=30)
    resolved_at = clock.now
    incident = act(incident, "resolve", world.wang, "重建凭证索引后恢复")

    assert incident.state == "resolved"
    assert incident.resolved_at == resolved_at == local(2026, 3, 3, 10, 11)
    # No auto-close delay on the ERP item: the default of 4320 minutes (three days).
    assert incident.auto_close_at == resolved_at + timedelta(minutes=4320)
    assert incident.resolution_notes == "重建凭证索引后恢复"
    assert outbox(f"incident:{incident.pk}:resolved", world.zhang) == {"in_app", "email", "push"}

    clock.advance(hours=2)
    incident = act(incident, "confirm", world.zhang)
    assert incident.state == "closed"
    assert incident.closed_at == local(2026, 3, 3, 12, 11)
    assert incident.resolved_at == resolved_at
    assert incident.auto_close_at is None
    assert [to for _from, to, _action in logs(incident)] == [
        "new", "dispatched", "accepted", "in_progress", "waiting_requester", "in_progress",
        "resolved", "closed",
    ]  # fmt: skip


def test_requester_rejects_a_resolution(world, clock):
    incident = report(world, catalog_item=world.pc)
    incident = act(incident, "dispatch", world.desk)
    incident = act(incident, "accept", world.li)
    incident = act(incident, "resolve", world.li, "已重启")
    assert incident.auto_close_at is not None

    with pytest.raises(WorkflowError) as refused:
        take_transition(incident, "reject", world.zhang)
    assert refused.value.message == "'驳回解决' needs a comment: say why."
    with pytest.raises(WorkflowError) as refused:
        take_transition(incident, "reject", world.li, "不行")
    assert refused.value.code == "transition_refused"

    clock.advance(minutes=10)
    incident = act(incident, "reject", world.zhang, "重启后还是蓝屏")
    assert incident.state == "in_progress"
    assert (incident.resolved_at, incident.auto_close_at) == (None, None)
    assert incident.reopen_count == 1

    clock.advance(minutes=10)
    incident = act(incident, "resolve", world.li, "更换内存条")
    assert incident.resolved_at == local(2026, 3, 3, 9, 20)
    assert incident.reopen_count == 1


def test_dispatch_needs_a_group_and_the_desk(world, clock):
    incident = report(world)
    with pytest.raises(WorkflowError) as refused:
        take_transition(incident, "dispatch", world.zhang)
    assert refused.value.code == "transition_refused"
    with pytest.raises(WorkflowError) as refused:
        take_transition(incident, "dispatch", world.desk)
    assert refused.value.message == "派单前请先选择处理组。"

    assign(incident, world.desk, world.g1)
    incident = act(incident, "dispatch", world.desk)
    assert incident.state == "dispatched"
    # The group has no lead: its members are told to pick it up.
    key = f"incident:{incident.pk}:dispatched"
    assert outbox(key, world.li) == outbox(key, world.zhou) == {"in_app", "push"}


def test_cancel_needs_a_reason_and_ends_the_incident(world, clock):
    incident = report(world)
    with pytest.raises(WorkflowError):
        take_transition(incident, "cancel", world.zhang)
    clock.advance(minutes=3)
    incident = act(incident, "cancel", world.zhang, "已自行解决")
    assert incident.state == "cancelled"
    assert incident.closed_at == local(2026, 3, 3, 9, 3)


def test_waiting_states_pause_the_sla_and_resolved_is_pending_close():
    states = {
        s.code: (s.category, s.sla_running, s.sla_milestone)
        for s in WorkflowState.objects.filter(workflow__code="incident_default")
    }
    assert states == {
        "new": ("open", True, ""),
        "dispatched": ("open", True, "dispatched"),
        "accepted": ("open", True, "accepted"),
        "in_progress": ("open", True, ""),
        "waiting_requester": ("waiting", False, ""),
        "waiting_vendor": ("waiting", False, ""),
        "resolved": ("resolved", False, ""),
        "closed": ("closed", False, ""),
        "cancelled": ("cancelled", False, ""),
    }


# -------------------------------------------------------------------------- assignment


def test_assignment_before_dispatch_is_not_a_reassignment(world, clock):
    incident = report(world)
    incident = assign(incident, world.desk, world.g1, assignee=world.li)
    incident = assign(incident, world.desk, world.g2, assignee=world.wang)
    assert (incident.support_group, incident.tier, incident.assignee) == (world.g2, 2, world.wang)
    assert incident.reassignment_count == 0
    assert incident.state == "new"
    assert logs(incident) == [("", "new", "Created")]


def test_escalation_to_a_higher_tier_restarts_acceptance(world, clock):
    incident = report(world, catalog_item=world.pc)
    incident = act(incident, "dispatch", world.desk)
    incident = act(incident, "accept", world.li)
    incident = act(incident, "start", world.li)

    incident = assign(incident, world.li, world.g2, assignee=world.wang, comment="需要应用组")
    assert (incident.state, incident.support_group, incident.tier) == ("dispatched", world.g2, 2)
    assert (incident.assignee, incident.reassignment_count) == (world.wang, 1)
    assert logs(incident)[-1] == ("in_progress", "dispatched", "升级转派（一线→二线→三线）")
    assert outbox(f"incident:{incident.pk}:assigned", world.wang) == {"in_app", "push"}

    incident = act(incident, "accept", world.wang)
    # Another tier-2 group: a transfer, not an escalation.
    incident = assign(incident, world.wang, world.g2b, assignee=world.chen, comment="网络问题")
    assert logs(incident)[-1] == ("accepted", "dispatched", "转派")
    assert (incident.tier, incident.reassignment_count) == (2, 2)

    # To tier 3, where the group's lead is told (no person chosen yet).
    incident = assign(incident, world.chen, world.g3, comment="需要研发")
    assert logs(incident)[-1][2] == "升级转派（一线→二线→三线）"
    assert (incident.tier, incident.assignee, incident.reassignment_count) == (3, None, 3)
    assert outbox(f"incident:{incident.pk}:assigned", world.lead) == {"in_app", "push"}


def test_escalation_needs_a_comment_and_a_member(world, clock):
    incident = report(world, catalog_item=world.pc)
    incident = act(incident, "dispatch", world.desk)
    with pytest.raises(WorkflowError) as refused:
        assign(incident, world.desk, world.g2)
    assert refused.value.message == "'升级转派（一线→二线→三线）' needs a comment: say why."
    with pytest.raises(IncidentError) as refused:
        assign(incident, world.desk, world.g2, assignee=world.li, comment="x")
    assert refused.value.field == "assignee"
    incident.refresh_from_db()
    assert (incident.support_group, incident.reassignment_count) == (world.g1, 0)


def test_requester_may_not_assign(world, clock):
    incident = report(world)
    with pytest.raises(IncidentError) as refused:
        assign(incident, world.zhang, world.g1)
    assert refused.value.code == "permission_denied"


def test_vendor_engineer_may_work_for_the_group(world, clock):
    from apps.bjgas_platform.models import VendorEngineer

    from .incident_fixtures import UserFactory

    account = UserFactory(username="hx1")
    VendorEngineer.objects.create(vendor=world.vendor, name="张工", user=account)
    incident = report(world)
    incident = assign(incident, world.desk, world.g1, assignee=account, vendor=world.vendor)
    assert (incident.assignee, incident.vendor) == (account, world.vendor)


# ------------------------------------------------------------------ comments, supplement


def test_supplement_is_stored_attached_notified_and_in_the_history(world, clock):
    incident = report(world, catalog_item=world.pc)
    incident = act(incident, "dispatch", world.desk)
    incident = act(incident, "accept", world.li)
    clock.advance(minutes=7)
    log_file = SimpleUploadedFile("error.log", b"line 1\nline 2\n")

    comment = supplement_incident(incident, world.zhang, "  开机后有三声长鸣  ", [log_file])

    assert (comment.kind, comment.body, comment.author) == (
        "supplement",
        "开机后有三声长鸣",
        world.zhang,
    )
    assert comment.created_at == local(2026, 3, 3, 9, 7)
    assert [(a.name, a.size, a.is_public) for a in comment.attachments.all()] == [
        ("error.log", 14, True)
    ]
    # The engineer handling it is told once on each of the rule's channels.
    assert outbox(f"incident:{incident.pk}:supplement:{comment.pk}", world.li) == {
        "in_app", "email", "push",
    }  # fmt: skip
    message = OutboxMessage.objects.filter(recipient=world.li, channel="email").get(
        idempotency_key__contains="supplement"
    )
    assert "开机后有三声长鸣" in message.body
    latest = incident.history.order_by("-history_id").first()
    assert latest.history_change_reason == "Requester's supplement: 开机后有三声长鸣"
    assert latest.history_user == world.zhang
    assert latest.history_date == local(2026, 3, 3, 9, 7)


def test_supplement_is_refused_on_closed_and_cancelled_incidents(world, clock):
    closed = report(world, catalog_item=world.pc)
    closed = act(closed, "dispatch", world.desk)
    closed = act(closed, "accept", world.li)
    closed = act(closed, "resolve", world.li, "ok")
    closed = act(closed, "confirm", world.zhang)
    with pytest.raises(IncidentError) as refused:
        supplement_incident(closed, world.zhang, "又坏了")
    assert refused.value.message == (
        f"Incident {closed.number} is closed; a supplement can no longer be added. "
        "Report a new incident if the problem is back."
    )

    cancelled = act(report(world), "cancel", world.zhang, "误报")
    with pytest.raises(IncidentError) as refused:
        supplement_incident(cancelled, world.zhang, "补充")
    assert refused.value.code == "incident_final"
    assert "was cancelled" in refused.value.message
    assert not Comment.objects.filter(kind="supplement").exists()


def test_only_the_requester_supplements_and_text_is_needed(world, clock):
    incident = report(world)
    with pytest.raises(IncidentError) as refused:
        supplement_incident(incident, world.desk, "代为补充")
    assert refused.value.code == "not_requester"
    with pytest.raises(IncidentError) as refused:
        supplement_incident(incident, world.zhang, "   ")
    assert refused.value.field == "text"
    # Another requester does not even see the incident.
    with pytest.raises(IncidentError) as refused:
        supplement_incident(incident, world.other, "x")
    assert refused.value.code == "not_found"


def test_internal_notes_are_hidden_from_the_requester(world, clock):
    incident = report(world, catalog_item=world.pc)
    incident = act(incident, "dispatch", world.desk)
    add_comment(incident, world.li, "请问是哪台电脑？", "reply")
    add_comment(incident, world.li, "怀疑主板故障，待备件", "note")
    supplement_incident(incident, world.zhang, "工位 3F-12")

    def kinds(user):
        return [c.kind for c in visible_comments(incident, user)]

    assert kinds(world.zhang) == ["reply", "supplement"]
    assert kinds(world.desk) == ["reply", "note", "supplement"]
    assert kinds(world.aud) == ["reply", "note", "supplement"]
    with pytest.raises(IncidentError) as refused:
        add_comment(incident, world.zhang, "我也写个备注", "note")
    assert refused.value.code == "permission_denied"
    # The engineer's reply reached the requester; notes tell nobody.
    assert (
        OutboxMessage.objects.filter(
            recipient=world.zhang, idempotency_key__contains=":comment:"
        ).count()
        == 2
    )  # in-app and push
