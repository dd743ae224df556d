"""Test set-up shared by every app: database, static files, cache, broker and fixtures.

Tests run on the database DATABASE_URL names (MariaDB in CI), else on SQLite. The SQLite
test database is a file in a private temporary folder rather than Django's in-memory
default, so that tests which fork processes or start a worker thread see the same data.
The file cache, media files and the file-system broker's folders live in that temporary
folder too; Redis, when REDIS_URL is set, is used as configured (cache keys get a prefix).
"""

import shutil
import tempfile
from pathlib import Path

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
