"""Two processes take a transition on one task at the same moment: one wins, one is told.

This runs on the real test database (MariaDB or the SQLite file), with committed data,
so that the two forked processes each use their own connection.
"""

import multiprocessing
import time

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connections

from apps.bjgas_ops.models import Task
from apps.bjgas_platform import roles as r
from apps.bjgas_platform.models import TransitionLog, User
from apps.bjgas_platform.services.workflow import WorkflowError, take_transition

from .factories import (
    CompanyFactory,
    ScopeRuleFactory,
    SupportGroupFactory,
    TaskFactory,
    UserFactory,
)

ROUNDS = 100
BASE_VERSION = 1000


def race(task_pk: int, user_pk: int, barrier, results, rounds: int) -> None:
    """In a child process: each round, read the version, wait for the other, then act."""
    try:
        actor = User.objects.get(pk=user_pk)
        for n in range(rounds):
            barrier.wait()  # the parent has reset the task
            task = Task.objects.get(pk=task_pk)
            seen = task.version
            barrier.wait()  # both have read the version: go
            try:
                take_transition(task, "accept", actor, expected_version=seen)
                results.put((n, user_pk, seen, "ok"))
            except WorkflowError as exc:
                results.put((n, user_pk, seen, exc.code))
            barrier.wait()  # round over
    except Exception as exc:  # report anything unexpected instead of hanging the parent
        results.put((-1, user_pk, None, repr(exc)))
        barrier.abort()
    finally:
        connections.close_all()


def log_count(task) -> int:
    return TransitionLog.objects.filter(
        content_type=ContentType.objects.get_for_model(Task), object_id=task.pk
    ).count()


@pytest.mark.django_db(transaction=True)
def test_two_processes_take_the_same_transition(capsys):
    hq = CompanyFactory(code="HQ", name="集团总部")
    engineers = [
        UserFactory(username=name, company=hq, roles=[r.ENGINEER_T1]) for name in ("eng_a", "eng_b")
    ]
    ScopeRuleFactory(name="一线：总部", role=r.role_group(r.ENGINEER_T1), companies=[hq])
    task = TaskFactory(
        title="并发接单", requester=engineers[0], support_group=SupportGroupFactory()
    )
    logs_before = log_count(task)

    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(3, timeout=60)
    results = context.Queue()
    connections.close_all()  # each child opens its own connection to the test database
    children = [
        context.Process(target=race, args=(task.pk, user.pk, barrier, results, ROUNDS))
        for user in engineers
    ]
    for child in children:
        child.start()

    new_logs_per_round = []
    started = time.perf_counter()
    try:
        for n in range(ROUNDS):
            Task.objects.filter(pk=task.pk).update(state="assigned", version=BASE_VERSION + n)
            before = log_count(task)
            barrier.wait()
            barrier.wait()
            barrier.wait()
            new_logs_per_round.append(log_count(task) - before)
        elapsed = time.perf_counter() - started
    finally:
        for child in children:
            child.join(timeout=30)
            if child.is_alive():
                child.terminate()
    outcomes = [results.get(timeout=10) for _ in range(2 * ROUNDS)]

    by_round: dict[int, list[str]] = {}
    for n, _, seen, outcome in outcomes:
        assert seen == BASE_VERSION + n, outcome
        by_round.setdefault(n, []).append(outcome)
    assert sorted(by_round) == list(range(ROUNDS))
    assert all(sorted(o) == ["ok", "stale_record"] for o in by_round.values()), by_round
    assert new_logs_per_round == [1] * ROUNDS
    assert log_count(task) - logs_before == ROUNDS
    final = Task.objects.get(pk=task.pk)
    assert (final.state, final.version) == ("in_progress", BASE_VERSION + ROUNDS)
    assert [child.exitcode for child in children] == [0, 0]
    wins = {u.pk: sum(o == "ok" for _, pk, _, o in outcomes if pk == u.pk) for u in engineers}
    with capsys.disabled():
        print(
            f"\n{ROUNDS} contested rounds on {connections['default'].vendor} in {elapsed:.2f} s; "
            f"wins per process: {sorted(wins.values())}"
        )
