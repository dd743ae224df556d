"""The incident API: scoped like every record, urgency and overdue visible in the list,
comments without internal notes for requesters, supplements with files, assignment."""

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from apps.bjgas_ops.models import Incident
from apps.bjgas_ops.services.incidents import add_comment
from apps.bjgas_platform.models import Attachment, Comment

from .incident_fixtures import *  # noqa: F403 (the fixtures clock and world)
from .incident_fixtures import act, local, report

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("english")]


def client_for(user) -> APIClient:
    client = APIClient()
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"  # the API ignores Accept-Language
    client.force_authenticate(user)
    return client


def url(incident=None, action=""):
    base = "/api/v1/incidents/"
    if incident is None:
        return base
    return f"{base}{incident.pk}/{action + '/' if action else ''}"


def test_requester_reports_through_the_api_with_a_token(world, clock):
    token = (
        APIClient()
        .post("/api/v1/auth/token/", {"username": "zhang", "password": "test-pass-2026"})
        .json()["token"]
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")

    response = client.post(
        url(), {"title": "打印机卡纸", "catalog_item": world.pc.pk, "urgency": 2}, format="json"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["number"] == "INC-20260303-0001"
    assert (body["channel"], body["priority"], body["state"]) == ("portal", "P3", "new")
    assert (body["support_group"], body["tier"]) == (world.g1.pk, 1)
    assert (body["requester"], body["company"]) == (world.zhang.pk, world.hq.pk)

    mobile = client.post(url(), {"title": "VPN 连不上", "channel": "mobile"}, format="json")
    assert mobile.json()["channel"] == "mobile"

    # Priority is the matrix's, never the client's; the group is the desk's to choose.
    forced = client.post(url(), {"title": "x", "priority": "P1"}, format="json")
    assert forced.json()["priority"] == "P3"
    refused = client.post(url(), {"title": "x", "support_group": world.g3.pk}, format="json")
    assert refused.status_code == 400
    assert refused.json()["field"] == "support_group"


def test_list_shows_urgency_and_the_overdue_flag(world, clock):
    # Both reported Tuesday 09:00. The P1 one has 15 working minutes to be dispatched
    # (default policy INC-P1); the P4 one has 120 (INC-P4), due at 11:00.
    late = report(world, title="ERP 报错", urgency=1, impact=2, severity="A")
    fine = report(world, title="鼠标失灵", urgency=4, impact=4)
    clock.set(local(2026, 3, 3, 9, 31))

    results = client_for(world.desk).get(url(), {"ordering": "priority"}).json()["results"]
    listed = {
        row["title"]: (
            row["priority"],
            row["priority_display"],
            row["urgency"],
            row["urgency_display"],
            row["severity"],
            row["overdue"],
        )
        for row in results
    }
    assert listed == {
        "ERP 报错": ("P1", "P1 critical", 1, "1 - Critical", "A", True),
        "鼠标失灵": ("P4", "P4 low", 4, "4 - Low", "", False),
    }
    assert [row["title"] for row in results] == ["ERP 报错", "鼠标失灵"]

    # The clocks, read-only: the severity-A agreement sets the response limit (2 h on 7×24);
    # the P1 policy the others (working calendar, lunch 12:00-13:00 not counted).
    clocks = client_for(world.desk).get(url(late, "sla-clocks")).json()
    assert sorted((c["metric"], c["limit_seconds"], c["due_at"], c["status"]) for c in clocks) == [
        ("dispatch", 900, "2026-03-03T09:15:00+08:00", "running"),
        ("resolution", 14400, "2026-03-03T14:00:00+08:00", "running"),
        ("response", 7200, "2026-03-03T11:00:00+08:00", "running"),
    ]
    fine_clocks = client_for(world.desk).get(url(fine, "sla-clocks")).json()
    assert {c["metric"]: c["due_at"] for c in fine_clocks} == {
        "dispatch": "2026-03-03T11:00:00+08:00",
        "response": "2026-03-03T14:00:00+08:00",
        # 2400 min = five 8-hour days from Tuesday 09:00: 7.5 h Tuesday, 8 h Wednesday to
        # Friday and Monday, the last half hour on the next Tuesday from 08:30.
        "resolution": "2026-03-10T09:00:00+08:00",
    }


def test_list_and_detail_follow_scope(world, clock):
    mine = report(world)
    theirs = report(world, actor=world.other, title="城东电脑")
    zhang = client_for(world.zhang)
    assert [row["number"] for row in zhang.get(url()).json()["results"]] == [mine.number]
    hidden = zhang.get(url(theirs))
    assert hidden.status_code == 404
    assert zhang.get(url(theirs, "comments")).status_code == 404
    assert zhang.post(url(theirs, "supplement"), {"text": "x"}).status_code == 404


def test_requester_never_sees_internal_notes(world, clock):
    incident = report(world, catalog_item=world.pc)
    engineer = client_for(world.li)
    note_file = SimpleUploadedFile("备件报价.xlsx", b"quote")
    response = engineer.post(
        url(incident, "comments"),
        {"body": "主板需返厂，报价见附件", "kind": "note", "files": [note_file]},
        format="multipart",
    )
    assert response.status_code == 201, response.content
    reply = engineer.post(
        url(incident, "comments"), {"body": "正在处理，请稍候", "kind": "reply"}, format="json"
    )
    assert reply.status_code == 201, reply.content

    as_requester = client_for(world.zhang).get(url(incident, "comments")).json()
    assert [(c["kind"], c["body"]) for c in as_requester] == [("reply", "正在处理，请稍候")]
    files = client_for(world.zhang).get(url(incident, "attachments")).json()
    assert files == []

    as_desk = client_for(world.desk).get(url(incident, "comments")).json()
    assert [c["kind"] for c in as_desk] == ["note", "reply"]
    assert [a["name"] for a in as_desk[0]["attachments"]] == ["备件报价.xlsx"]

    # Requesters cannot write notes either.
    refused = client_for(world.zhang).post(
        url(incident, "comments"), {"body": "x", "kind": "note"}, format="json"
    )
    assert refused.status_code == 400
    assert refused.json()["code"] == "permission_denied"


def test_requester_supplements_with_files(world, clock):
    incident = report(world, catalog_item=world.pc)
    incident = act(incident, "dispatch", world.desk)
    incident = act(incident, "accept", world.li)
    zhang = client_for(world.zhang)

    response = zhang.post(
        url(incident, "supplement"),
        {
            "text": "补充：屏幕有裂痕",
            "files": [
                SimpleUploadedFile("photo1.jpg", b"a" * 10),
                SimpleUploadedFile("photo2.jpg", b"b" * 20),
            ],
        },
        format="multipart",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["kind"], body["body"]) == ("supplement", "补充：屏幕有裂痕")
    assert sorted((a["name"], a["size"]) for a in body["attachments"]) == [
        ("photo1.jpg", 10),
        ("photo2.jpg", 20),
    ]
    assert Attachment.objects.filter(object_id=incident.pk, comment__kind="supplement").count() == 2

    # The engineer sees it among the comments; the desk cannot add one in the requester's name.
    kinds = [c["kind"] for c in client_for(world.li).get(url(incident, "comments")).json()]
    assert kinds == ["supplement"]
    refused = client_for(world.desk).post(url(incident, "supplement"), {"text": "代补充"})
    assert refused.status_code == 400
    assert refused.json()["code"] == "not_requester"


def test_supplement_on_a_closed_incident_is_refused(world, clock):
    incident = act(report(world), "cancel", world.zhang, "误报")
    response = client_for(world.zhang).post(url(incident, "supplement"), {"text": "x"})
    assert response.status_code == 400
    assert response.json()["code"] == "incident_final"
    assert not Comment.objects.filter(kind="supplement").exists()


def test_transitions_and_assignment_through_the_api(world, clock):
    incident = report(world, catalog_item=world.pc)
    desk = client_for(world.desk)
    actions = {t["code"] for t in desk.get(url(incident, "transitions")).json()}
    assert actions == {"dispatch", "cancel"}
    clock.advance(minutes=1)
    assert desk.post(url(incident, "transition"), {"code": "dispatch"}).status_code == 200
    engineer = client_for(world.li)
    clock.advance(minutes=1)
    assert engineer.post(url(incident, "transition"), {"code": "accept"}).status_code == 200
    clock.advance(minutes=1)

    # Escalation needs the new group, so it goes through `assign`.
    refused = engineer.post(url(incident, "transition"), {"code": "escalate", "comment": "x"})
    assert refused.status_code == 400
    assert refused.json()["code"] == "use_assign"
    response = engineer.post(
        url(incident, "assign"),
        {"support_group": world.g2.pk, "assignee": world.wang.pk, "comment": "需要二线"},
        format="json",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["state"], body["tier"], body["assignee"]) == ("dispatched", 2, world.wang.pk)
    assert body["reassignment_count"] == 1
    history = desk.get(url(incident, "history")).json()
    assert [h["to_state"] for h in history] == ["new", "dispatched", "accepted", "dispatched"]
    segments = desk.get(url(incident, "segments")).json()
    assert [(s["state"], s["tier"]) for s in segments] == [
        ("new", 1),
        ("dispatched", 1),
        ("accepted", 1),
        ("dispatched", 2),
    ]


def test_edits_respect_the_state_and_route_priority_through_the_matrix(world, clock):
    incident = report(world, catalog_item=world.pc)
    zhang = client_for(world.zhang)
    changed = zhang.patch(
        url(incident), {"urgency": 1, "description": "全部门无法开机"}, format="json"
    )
    assert changed.status_code == 200, changed.content
    assert (changed.json()["priority"], changed.json()["description"]) == ("P2", "全部门无法开机")

    act(incident, "dispatch", world.desk)
    refused = zhang.patch(url(incident), {"description": "改一下"}, format="json")
    assert refused.status_code == 400
    assert refused.json()["code"] == "read_only_state"
    moved = client_for(world.desk).patch(url(incident), {"assignee": world.li.pk}, format="json")
    assert moved.status_code == 400
    assert moved.json()["code"] == "use_assign"


def test_auditor_reads_but_does_not_act(world, clock):
    from apps.bjgas_platform.models import ScopeRule

    incident = report(world)
    add_comment(incident, world.desk, "内部备注", "note")
    assert not ScopeRule.objects.filter(user=world.aud).exists()  # the role's rule: all records
    auditor = client_for(world.aud)
    assert auditor.get(url(incident)).status_code == 200
    assert [c["kind"] for c in auditor.get(url(incident, "comments")).json()] == ["note"]
    assert auditor.post(url(incident, "comments"), {"body": "x"}).status_code == 403
    assert auditor.post(url(incident, "transition"), {"code": "cancel"}).status_code == 403


def test_resolved_incident_shows_when_it_closes(world, clock):
    incident = report(world, catalog_item=world.pc)
    incident = act(incident, "dispatch", world.desk)
    incident = act(incident, "accept", world.li)
    incident = act(incident, "resolve", world.li, "ok")
    body = client_for(world.zhang).get(url(incident)).json()
    assert body["resolved_at"] == "2026-03-03T09:00:00+08:00"
    assert body["auto_close_at"] == "2026-03-03T09:01:00+08:00"
    assert local(2026, 3, 3, 9, 0) == incident.resolved_at


def test_edits_raise_the_version_once_and_refuse_a_stale_one(world, clock):
    incident = report(world, catalog_item=world.pc)
    zhang = client_for(world.zhang)

    described = zhang.patch(url(incident), {"description": "三台都坏", "version": 0}, format="json")
    both = zhang.patch(url(incident), {"title": "打印机全坏", "urgency": 1}, format="json")
    stale = zhang.patch(url(incident), {"urgency": 4, "version": 1}, format="json")

    assert described.status_code == 200, described.content
    assert described.json()["version"] == 1
    assert (both.json()["version"], both.json()["priority"]) == (2, "P2")
    assert stale.status_code == 409
    assert stale.json()["code"] == "stale_record"
    assert stale.json()["detail"] == (
        f"{incident.number} 打印机全坏 was changed by someone else meanwhile; "
        "reload it and redo your change."
    )
    incident.refresh_from_db()
    assert (incident.urgency, incident.priority, incident.version) == (1, "P2", 2)


def test_closed_incident_refuses_edits(world, clock):
    incident = report(world, catalog_item=world.pc)
    Incident.objects.filter(pk=incident.pk).update(state="closed")

    refused = client_for(world.desk).patch(url(incident), {"title": "改"}, format="json")

    assert refused.status_code == 400
    assert refused.json()["code"] == "read_only_state"
    assert "in which it cannot be edited" in refused.json()["detail"]
    incident.refresh_from_db()
    assert (incident.title, incident.version) == ("电脑无法开机", 0)
