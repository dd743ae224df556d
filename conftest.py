"""Test set-up shared by every app: database, static files, cache, broker and fixtures.

Tests run on the database DATABASE_URL names (MariaDB in CI), else on SQLite. The SQLite
test database is a file in a private temporary folder rather than Django's in-memory
default, so that tests which fork processes or start a worker thread see the same data.
The file cache, media files and the file-system broker's folders live in that temporary
folder too; Redis, when REDIS_URL is set, is used as configured (cache keys get a prefix).
"""

import contextlib
import shutil
import tempfile
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest

_tmp_root: Path | None = None


def pytest_configure(config: pytest.Config) -> None:
    """Adjust the loaded settings for tests before any database or storage is touched."""
    global _tmp_root
    from django.conf import settings
    from django.test.signals import storages_changed

    _tmp_root = Path(tempfile.mkdtemp(prefix="bjgas-tests-"))

    # Plain static storage: the manifest storage would need `collectstatic` first.
    settings.MEDIA_ROOT = _tmp_root / "media"
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    storages_changed(setting="STORAGES")
    settings.WHITENOISE_AUTOREFRESH = True
    settings.WHITENOISE_USE_FINDERS = True

    # The settings dict is shared with the connection handler: change it in place.
    db = settings.DATABASES["default"]
    if "sqlite" in db["ENGINE"]:
        db.setdefault("TEST", {})["NAME"] = str(_tmp_root / "test.sqlite3")
        # Test data need not survive a power cut: skip the fsyncs.
        db.setdefault("OPTIONS", {})["init_command"] = (
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=OFF;"
        )

    cache = settings.CACHES["default"]
    if cache["BACKEND"].endswith("FileBasedCache"):
        cache["LOCATION"] = str(_tmp_root / "cache")
    else:
        # A shared Redis: keep the tests' keys apart from the application's.
        cache["KEY_PREFIX"] = f"{cache.get('KEY_PREFIX', 'bjgas')}-test"

    # Messages sent to the file-system broker stay in the session's folder, not the site's.
    if settings.CELERY_BROKER_URL.startswith("filesystem"):
        folder = _tmp_root / "broker"
        (folder / "processed").mkdir(parents=True)
        settings.CELERY_BROKER_TRANSPORT_OPTIONS = {
            **settings.CELERY_BROKER_TRANSPORT_OPTIONS,
            "data_folder_in": str(folder),
            "data_folder_out": str(folder),
            "processed_folder": str(folder / "processed"),
        }
        from bjgas.celery import app

        app.conf.broker_transport_options = settings.CELERY_BROKER_TRANSPORT_OPTIONS

    # The password hasher is slow on purpose; tests log users in often.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def pytest_unconfigure(config: pytest.Config) -> None:
    if _tmp_root is not None:
        shutil.rmtree(_tmp_root, ignore_errors=True)


@pytest.fixture
def tmp_site_root() -> Path:
    """Return the session's private temporary folder (database file, cache, media)."""
    assert _tmp_root is not None
    return _tmp_root


@pytest.fixture
def english():
    """Run the test in English, so that messages can be compared with their msgids."""
    from django.utils import translation

    with translation.override("en"):
        yield


def reset_celery_connections(app) -> None:
    """Drop the Celery app's cached broker pools, routes and result backend after a conf
    change, so that the next message uses the new conf."""
    from kombu import pools

    app._pool = None
    app.__dict__.pop("amqp", None)
    pools.reset()  # kombu keeps pools per connection; a closed one would be handed out again
    app._backend_cache = None
    app._local.__dict__.pop("backend", None)


@pytest.fixture
def celery_worker(tmp_path: Path):
    """Return `start(*tasks)`, a context manager running a real worker thread for `tasks`.

    The worker uses the configured broker (Redis when REDIS_URL is set, else the file-system
    broker in a private folder) and consumes only a queue of the test's own, to which the
    given tasks are routed, so that `task.delay()` in the test reaches it and nothing else
    does. Results are kept in Redis, or in memory (the worker is a thread of the test).
    Use it in a `django_db(transaction=True)` test: the worker has its own connection.
    """
    from celery.contrib.testing.worker import start_worker
    from django.conf import settings

    from bjgas.celery import app

    @contextlib.contextmanager
    def start(*tasks):
        queue = f"test-{uuid.uuid4().hex[:12]}"
        keys = ("result_backend", "task_routes", "broker_transport_options")
        saved = {key: app.conf[key] for key in keys}
        if settings.REDIS_URL:
            app.conf.result_backend = settings.REDIS_URL
        else:
            folder = tmp_path / f"broker-{queue}"
            folder.mkdir()
            app.conf.result_backend = "cache+memory://"
            app.conf.broker_transport_options = {
                **(saved["broker_transport_options"] or {}),
                "data_folder_in": str(folder),
                "data_folder_out": str(folder),
                "processed_folder": str(folder),
            }
        app.conf.task_routes = {task.name: {"queue": queue} for task in tasks}
        reset_celery_connections(app)
        try:
            with start_worker(
                app, pool="solo", perform_ping_check=False, queues=[queue], shutdown_timeout=30
            ):
                yield SimpleNamespace(app=app, queue=queue, broker=app.conf.broker_url)
        finally:
            app.conf.update(saved)
            reset_celery_connections(app)

    return start
