"""Platform tasks through a real Celery worker on the configured broker, and the cache."""

import logging
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest
from celery.contrib.testing.worker import start_worker
from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.core.cache import cache
from django.utils import translation
from django.utils.translation import gettext
from kombu import pools as kombu_pools

from apps.bjgas_ops.models import Task
from apps.bjgas_platform.models import Workflow, WorkflowState, WorkflowTransition
from apps.bjgas_platform.tasks import check_workflows
from bjgas.celery import app as celery_app

CONF_KEYS = ("result_backend", "task_routes", "broker_transport_options")


def reset_connections(app) -> None:
    """Drop the app's cached broker pools, routes and result backend after a conf change."""
    app._pool = None
    app.__dict__.pop("amqp", None)
    kombu_pools.reset()  # kombu keeps pools per connection; a closed one would come back
    app._backend_cache = None
    app._local.__dict__.pop("backend", None)


@pytest.fixture
def worker(tmp_path: Path):
    """Run a worker thread on the configured broker, on a queue of this test's own.

    Redis when REDIS_URL is set, with results in Redis too; otherwise the file-system
    broker in a private folder, with results in memory (the worker is a thread here).
    """
    queue = f"test-{uuid.uuid4().hex[:12]}"
    saved = {key: celery_app.conf[key] for key in CONF_KEYS}
    if settings.REDIS_URL:
        celery_app.conf.result_backend = settings.REDIS_URL
    else:
        folder = tmp_path / "broker"
        folder.mkdir()
        celery_app.conf.result_backend = "cache+memory://"
        celery_app.conf.broker_transport_options = {
            **(saved["broker_transport_options"] or {}),
            "data_folder_in": str(folder),
            "data_folder_out": str(folder),
            "processed_folder": str(folder),
        }
    celery_app.conf.task_routes = {check_workflows.name: {"queue": queue}}
    reset_connections(celery_app)
    try:
        with start_worker(
            celery_app, pool="solo", perform_ping_check=False, queues=[queue], shutdown_timeout=30
        ):
            yield SimpleNamespace(queue=queue, broker=celery_app.conf.broker_url)
    finally:
        celery_app.conf.update(saved)
        reset_connections(celery_app)


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
def test_check_workflows_runs_in_a_real_worker(worker):
    broken_workflow()
    broken_workflow(active=False, code="broken_but_off")
    assert Workflow.objects.filter(code="task_default", is_active=True).exists()

    assert not celery_app.conf.task_always_eager
    assert worker.broker.split(":")[0] == ("redis" if settings.REDIS_URL else "filesystem")

    result = check_workflows.delay()
    report = result.get(timeout=30)

    assert report == {"broken_task": expected_problems()}
    # Safe to run twice: the same answer, nothing changed.
    assert check_workflows.delay().get(timeout=30) == report
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
