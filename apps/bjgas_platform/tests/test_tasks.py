"""Platform tasks through a real Celery worker on the configured broker, and the cache."""

import logging
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.core.cache import cache
from django.utils import translation
from django.utils.translation import gettext

from apps.bjgas_ops.models import Task
from apps.bjgas_platform.models import Workflow, WorkflowState, WorkflowTransition
from apps.bjgas_platform.tasks import check_workflows


def broken_workflow(active: bool = True, code: str = "broken_task") -> Workflow:
    """A task workflow whose only transition leads nowhere and with an unreachable state."""
    workflow = Workflow.objects.create(
        code=code,
        name="坏流程",
        model=ContentType.objects.get_for_model(Task),
        is_active=active,
    )
    WorkflowState.objects.create(workflow=workflow, code="new", name="新建", is_initial=True)
    WorkflowState.objects.create(workflow=workflow, code="island", name="孤岛")
    WorkflowTransition.objects.create(
        workflow=workflow, code="go", label="前往", source_states="new", target_state="nowhere"
    )
    return workflow


def expected_problems() -> list[str]:
    """The two problems of `broken_workflow`, in the default language the worker speaks."""
    with translation.override(settings.LANGUAGE_CODE):
        return [
            gettext("Transition '%(label)s' leads to state '%(state)s', which does not exist.")
            % {"label": "前往", "state": "nowhere"},
            gettext("State '%(name)s' cannot be reached from the initial state.")
            % {"name": "孤岛"},
        ]


@pytest.mark.django_db(transaction=True)
def test_check_workflows_runs_in_a_real_worker(celery_worker):
    broken_workflow()
    broken_workflow(active=False, code="broken_but_off")
    assert Workflow.objects.filter(code="task_default", is_active=True).exists()

    with celery_worker(check_workflows) as worker:
        assert not worker.app.conf.task_always_eager
        assert worker.broker.split(":")[0] == ("redis" if settings.REDIS_URL else "filesystem")

        report = check_workflows.delay().get(timeout=30)
        # Safe to run twice: the same answer, nothing changed.
        again = check_workflows.delay().get(timeout=30)

    assert report == {"broken_task": expected_problems()}
    assert again == report
    assert Workflow.objects.filter(code="broken_task").count() == 1


@pytest.mark.django_db
def test_check_workflows_logs_each_broken_workflow(caplog):
    broken_workflow()
    broken_workflow(code="broken_too")

    with caplog.at_level(logging.WARNING, logger="apps.bjgas_platform.tasks"):
        report = check_workflows()

    assert sorted(report) == ["broken_task", "broken_too"]
    warnings = [rec.getMessage() for rec in caplog.records if rec.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert warnings[0].startswith("workflow broken_task is broken: ")
    assert warnings[1].startswith("workflow broken_too is broken: ")


@pytest.mark.django_db
def test_check_workflows_reports_nothing_for_sound_workflows():
    assert check_workflows() == {}


def test_cache_round_trip():
    key = f"roundtrip-{uuid.uuid4().hex}"
    value = {"站点": "亦庄", "n": [1, 2, 3]}

    cache.set(key, value, timeout=60)

    assert cache.get(key) == value
    if settings.REDIS_URL:
        from django_redis import get_redis_connection

        assert get_redis_connection("default").exists(cache.make_key(key)) == 1
    else:
        assert any(Path(settings.CACHES["default"]["LOCATION"]).glob("*.djcache"))
    cache.set(f"{key}-n", 1, timeout=60)
    assert cache.incr(f"{key}-n") == 2
    cache.delete_many([key, f"{key}-n"])
    assert cache.get(key) is None
