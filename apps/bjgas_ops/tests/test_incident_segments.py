"""Stored segments: an incident's life split by state and assignment, with wall-clock and
business seconds, so that handling time per tier, engineer, vendor and channel is a plain
aggregate query. Every expected value below is worked out by hand from the timeline."""

import pytest
from django.db.models import Sum

from apps.bjgas_ops.models import IncidentSegment
from apps.bjgas_ops.services.incidents import assign
from apps.bjgas_ops.services.segments import rebuild_segments

from .incident_fixtures import *  # noqa: F403 (the fixtures clock and world)
from .incident_fixtures import act, local, report

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("english")]


@pytest.fixture
def handled(world, clock):
    """Tuesday 2026-03-03 (a working day on the standard calendar 08:30-12:00, 13:00-17:30).

    09:00 reported (PC item: group G1, tier 1)     09:30 escalated to G2 / wang (tier 2)
    09:05 dispatched by the desk                  09:35 accepted by wang
    09:10 accepted by li                          09:40 started
    09:15 started                                 10:30 vendor HX joins; waiting for vendor
                                                  11:00 resumed
                                                  13:30 resolved (over the lunch break)
                                                  14:00 confirmed by the requester: closed
    """
    incident = report(world, catalog_item=world.pc)

    def at(hour, minute):
        clock.set(local(2026, 3, 3, hour, minute))

    at(9, 5)
    incident = act(incident, "dispatch", world.desk)
    at(9, 10)
    incident = act(incident, "accept", world.li)
    at(9, 15)
    incident = act(incident, "start", world.li)
    at(9, 30)
    incident = assign(incident, world.li, world.g2, assignee=world.wang, comment="应用问题")
    at(9, 35)
    incident = act(incident, "accept", world.wang)
    at(9, 40)
    incident = act(incident, "start", world.wang)
    at(10, 30)
    incident = assign(incident, world.wang, world.g2, assignee=world.wang, vendor=world.vendor)
    incident = act(incident, "wait_vendor", world.wang, "等待华信更换硬盘")
    at(11, 0)
    incident = act(incident, "resume", world.wang)
    at(13, 30)
    incident = act(incident, "resolve", world.wang, "已更换硬盘")
    at(14, 0)
    return act(incident, "confirm", world.zhang)


def rows(incident):
    return [
        (
            s.state,
            s.support_group.code if s.support_group else None,
            s.tier,
            s.assignee.username if s.assignee else None,
            s.vendor.code if s.vendor else None,
            s.started_at,
            s.ended_at,
            s.wall_seconds,
            s.business_seconds,
        )
        for s in IncidentSegment.objects.filter(incident=incident).order_by("started_at", "id")
    ]


def test_segments_follow_states_and_assignments(handled):
    t = lambda h, m: local(2026, 3, 3, h, m)  # noqa: E731
    assert rows(handled) == [
        ("new", "G1", 1, None, None, t(9, 0), t(9, 5), 300, 300),
        ("dispatched", "G1", 1, None, None, t(9, 5), t(9, 10), 300, 300),
        ("accepted", "G1", 1, "li", None, t(9, 10), t(9, 15), 300, 300),
        ("in_progress", "G1", 1, "li", None, t(9, 15), t(9, 30), 900, 900),
        ("dispatched", "G2", 2, "wang", None, t(9, 30), t(9, 35), 300, 300),
        ("accepted", "G2", 2, "wang", None, t(9, 35), t(9, 40), 300, 300),
        ("in_progress", "G2", 2, "wang", None, t(9, 40), t(10, 30), 3000, 3000),
        ("waiting_vendor", "G2", 2, "wang", "HX", t(10, 30), t(11, 0), 1800, 1800),
        # 11:00-13:30 is 2.5 h on the wall, 1.5 h of business time (lunch 12:00-13:00).
        ("in_progress", "G2", 2, "wang", "HX", t(11, 0), t(13, 30), 9000, 5400),
        ("resolved", "G2", 2, "wang", "HX", t(13, 30), t(14, 0), 1800, 1800),
    ]
    categories = list(
        IncidentSegment.objects.filter(incident=handled)
        .order_by("started_at")
        .values_list("state_category", "sla_running")
    )
    assert categories[7] == ("waiting", False)
    assert categories[9] == ("resolved", False)
    assert {s.channel for s in IncidentSegment.objects.filter(incident=handled)} == {"portal"}


def test_handling_time_per_tier_engineer_vendor_and_channel_are_plain_queries(handled):
    # Handling ends at the resolution: the pending-close span is left out.
    handling = IncidentSegment.objects.exclude(state_category="resolved")

    per_tier = {
        row["tier"]: (row["wall"], row["business"])
        for row in handling.values("tier").annotate(
            wall=Sum("wall_seconds"), business=Sum("business_seconds")
        )
    }
    # Tier 1: 09:00-09:30 = 30 min. Tier 2: 09:30-13:30 = 4 h on the wall, of which the
    # lunch hour is no business time: 3 h.
    assert per_tier == {1: (1800, 1800), 2: (14400, 10800)}

    # The clock runs only where the SLA runs: without the vendor wait, tier 2 had 3.5 h.
    running = handling.filter(sla_running=True).values("tier").annotate(w=Sum("wall_seconds"))
    assert {row["tier"]: row["w"] for row in running} == {1: 1800, 2: 12600}

    per_engineer = dict(
        handling.exclude(assignee=None)
        .values_list("assignee__username")
        .annotate(Sum("business_seconds"))
    )
    assert per_engineer == {"li": 1200, "wang": 10800}

    per_vendor = dict(
        handling.exclude(vendor=None).values_list("vendor__code").annotate(Sum("wall_seconds"))
    )
    assert per_vendor == {"HX": 10800}

    per_channel = dict(handling.values_list("channel").annotate(Sum("wall_seconds")))
    assert per_channel == {"portal": 16200}


def test_rebuilding_is_idempotent(handled):
    before = rows(handled)
    rebuild_segments(handled)
    rebuild_segments(handled)
    assert rows(handled) == before
    assert IncidentSegment.objects.filter(incident=handled).count() == 10


def test_the_current_segment_is_open_until_the_next_change(world, clock):
    incident = report(world, catalog_item=world.pc)
    clock.set(local(2026, 3, 3, 9, 20))
    incident = act(incident, "dispatch", world.desk)
    segments = list(IncidentSegment.objects.filter(incident=incident).order_by("started_at"))
    assert [(s.state, s.ended_at, s.wall_seconds) for s in segments] == [
        ("new", local(2026, 3, 3, 9, 20), 1200),
        ("dispatched", None, 0),
    ]


def test_time_outside_working_hours_is_no_business_time(world, clock):
    # Reported Friday 2026-03-06 17:00, dispatched Monday 2026-03-09 09:00:
    # business time 17:00-17:30 Friday and 08:30-09:00 Monday = 1 h.
    clock.set(local(2026, 3, 6, 17, 0))
    incident = report(world, catalog_item=world.pc)
    clock.set(local(2026, 3, 9, 9, 0))
    incident = act(incident, "dispatch", world.desk)
    first = IncidentSegment.objects.filter(incident=incident).order_by("started_at").first()
    assert (first.wall_seconds, first.business_seconds) == (64 * 3600, 3600)
