"""The test set-up itself: static files without collectstatic, a private database file."""

from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.staticfiles.storage import StaticFilesStorage, staticfiles_storage
from django.core.files.storage import storages
from django.db import connection


def test_static_files_need_no_collectstatic(client):
    assert type(storages["staticfiles"]) is StaticFilesStorage
    assert staticfiles_storage.url("bjgas/desk.css") == "/static/bjgas/desk.css"

    response = client.get("/static/bjgas/desk.css")

    assert response.status_code == 200
    assert b"".join(response.streaming_content)


@pytest.mark.django_db
def test_desk_login_page_renders_with_its_styles(client):
    response = client.get("/desk/login/")

    assert response.status_code == 200
    assert "/static/bjgas/desk.css" in response.content.decode()


@pytest.mark.django_db
def test_sqlite_test_database_is_a_private_file(tmp_site_root):
    if connection.vendor != "sqlite":
        assert connection.settings_dict["NAME"].startswith("test_")
        return
    name = Path(connection.settings_dict["NAME"])

    assert name.parent == tmp_site_root
    assert name.exists()


def test_uploads_and_cache_stay_in_the_session_folder(tmp_site_root):
    assert Path(settings.MEDIA_ROOT).parent == tmp_site_root
    if not settings.REDIS_URL:
        assert Path(settings.CACHES["default"]["LOCATION"]).parent == tmp_site_root
