"""The desk's incident pages: colored urgency and the overdue marker in the tracking list,
creation, workflow buttons, assignment, comments without notes for requesters, supplement."""

import pytest
from django.conf import settings
from django.contrib.messages import get_messages
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from apps.bjgas_ops.models import Incident
from apps.bjgas_ops.services.incidents import add_comment
from apps.bjgas_platform.models import Comment

from .incident_fixtures import *  # noqa: F403 (the fixtures clock and world)
from .incident_fixtures import act, local, report

pytestmark = pytest.mark.django_db

LIST = "/desk/bjgas_ops/incident/"


def login(client, user):
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    client.force_login(user)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"  # the desk ignores Accept-Language
    return client


def change_url(incident):
    return reverse("admin:bjgas_ops_incident_change", args=[incident.pk])


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_tracking_list_colors_urgency_and_marks_overdue(client, world, clock):
    # Reported 09:00; at 09:31 the P1 incident is past its 15-minute dispatch limit.
    report(world, title="调度系统宕机", urgency=1, impact=1)
    report(world, title="换鼠标", urgency=4, impact=4)
    clock.set(local(2026, 3, 3, 9, 31))
    login(client, world.desk)

    page = client.get(LIST).content.decode()
    assert '<span class="bjgas-state bjgas-state-red">P1 critical</span>' in page
    assert '<span class="bjgas-state bjgas-state-red">1 - Critical</span>' in page
    assert '<span class="bjgas-state bjgas-state-gray">P4 low</span>' in page
    assert '<span class="bjgas-state bjgas-state-gray">4 - Low</span>' in page
    assert page.count('<span class="bjgas-state bjgas-state-red">Overdue</span>') == 1

    overdue = client.get(LIST, {"overdue": "yes"}).content.decode()
    assert "调度系统宕机" in overdue
    assert "换鼠标" not in overdue


def test_list_queries_do_not_grow_with_rows(client, world, clock):
    login(client, world.desk)
    report(world)
    with CaptureQueriesContext(connection) as few:
        client.get(LIST)
    for n in range(5):
        report(world, title=f"事件{n}", catalog_item=world.pc)
    with CaptureQueriesContext(connection) as many:
        assert client.get(LIST).status_code == 200
    assert len(many) == len(few)


def test_desk_registers_an_incident(client, world, clock):
    login(client, world.desk)
    form = client.get(reverse("admin:bjgas_ops_incident_add")).content.decode()
    assert 'name="support_group"' in form
    requester_form = login(client, world.zhang).get(reverse("admin:bjgas_ops_incident_add"))
    assert 'name="support_group"' not in requester_form.content.decode()
    login(client, world.desk)
    response = client.post(
        reverse("admin:bjgas_ops_incident_add"),
        {
            "title": "财务系统登录慢",
            "requester": world.zhang.pk,
            "urgency": 2,
            "impact": 2,
            "channel": "phone",
            "support_group": world.g2.pk,
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    incident = Incident.objects.get()
    assert incident.number == "INC-20260303-0001"
    assert (incident.requester, incident.created_by) == (world.zhang, world.desk)
    assert (incident.priority, incident.channel, incident.tier) == ("P2", "phone", 2)
    assert incident.state == "new"


def test_page_offers_actions_but_escalation_only_through_assignment(client, world, clock):
    incident = act(report(world, catalog_item=world.pc), "dispatch", world.desk)
    incident = act(incident, "accept", world.li)
    login(client, world.li)

    page = client.get(change_url(incident)).content.decode()
    assert 'data-transition="start"' in page
    assert 'data-transition="escalate"' not in page
    assert 'id="incident-assign"' in page

    refused = client.post(
        reverse("admin:bjgas_ops_incident_transition", args=[incident.pk, "escalate"]),
        {"comment": "x", "expected_version": incident.version},
    )
    assert messages_of(refused) == [
        "Escalation and transfer need the new support group: use the assignment form."
    ]
    response = client.post(
        reverse("admin:bjgas_ops_incident_assign", args=[incident.pk]),
        {"support_group": world.g2.pk, "assignee": world.wang.pk, "comment": "需二线"},
    )
    assert messages_of(response)[-1] == "Assigned to 应用运维二线."
    incident.refresh_from_db()
    assert (incident.state, incident.tier, incident.assignee) == ("dispatched", 2, world.wang)


def test_requester_page_hides_notes_and_takes_a_supplement(client, world, clock):
    incident = act(report(world, catalog_item=world.pc), "dispatch", world.desk)
    add_comment(incident, world.li, "请重启后再试", "reply")
    add_comment(incident, world.li, "疑似硬盘坏道", "note")
    login(client, world.zhang)

    page = client.get(change_url(incident)).content.decode()
    assert "请重启后再试" in page
    assert "疑似硬盘坏道" not in page
    assert 'value="note"' not in page
    assert 'id="incident-assign"' not in page

    response = client.post(
        reverse("admin:bjgas_ops_incident_supplement", args=[incident.pk]),
        {"text": "重启后依然无法开机"},
    )
    assert messages_of(response) == ["Your supplement was added; the engineer has been told."]
    assert Comment.objects.filter(kind="supplement", body="重启后依然无法开机").exists()

    staff_page = login(client, world.desk).get(change_url(incident)).content.decode()
    assert "疑似硬盘坏道" in staff_page
    assert "重启后依然无法开机" in staff_page


def form_data(page) -> dict:
    """Return what the change page's form would post as it was loaded."""
    form = page.context["adminform"].form
    data = {}
    for name in form.fields:
        value = form[name].value()
        data[name] = "" if value is None else value
    return data


def test_second_of_two_simultaneous_desk_edits_is_refused(world, clock):
    incident = report(world, catalog_item=world.pc)
    first, second = login(Client(), world.desk), login(Client(), world.lead)
    first_data = form_data(first.get(change_url(incident)))
    second_data = form_data(second.get(change_url(incident)))
    first_data["title"] = "打印机全坏"
    second_data["description"] = "只有一台"

    saved = first.post(change_url(incident), first_data)
    refused = second.post(change_url(incident), second_data)

    assert saved.status_code == 302
    assert refused.status_code == 200
    assert refused.context["adminform"].form.non_field_errors() == [
        f"{incident.number} 打印机全坏 was changed by someone else meanwhile; "
        "reload it and redo your change."
    ]
    incident.refresh_from_db()
    assert (incident.title, incident.description, incident.version) == (
        "打印机全坏",
        "",
        1,
    )
