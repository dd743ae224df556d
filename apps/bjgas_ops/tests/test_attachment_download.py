"""Attachments leave only through their record's scope: public files for the requester,
internal-note files for handlers, nothing for anyone outside the record's scope."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from apps.bjgas_ops.services.incidents import add_comment
from apps.bjgas_platform.models import Attachment, CommentKind

from .incident_fixtures import *  # noqa: F403
from .incident_fixtures import report

pytestmark = pytest.mark.django_db


@pytest.fixture
def files(world):
    incident = report(world, files=[SimpleUploadedFile("屏幕.png", b"public-bytes")])
    add_comment(
        incident,
        world.li,
        "查到是内存条松动",
        CommentKind.NOTE,
        files=[SimpleUploadedFile("内部日志.txt", b"internal-bytes")],
    )
    public = Attachment.objects.get(name="屏幕.png")
    internal = Attachment.objects.get(name="内部日志.txt")
    assert (public.is_public, internal.is_public) == (True, False)
    return public, internal


def fetch(client, user, attachment):
    client.force_login(user)
    return client.get(reverse("attachment-download", args=[attachment.pk]))


def body(response) -> bytes:
    return b"".join(response.streaming_content)


def test_requester_gets_public_file_only(client, world, files):
    public, internal = files
    assert body(fetch(client, world.zhang, public)) == b"public-bytes"
    assert fetch(client, world.zhang, internal).status_code == 404


def test_handler_gets_internal_file(client, world, files):
    _public, internal = files
    response = fetch(client, world.li, internal)
    assert response.status_code == 200
    assert body(response) == b"internal-bytes"


def test_outside_scope_gets_404_and_anonymous_is_sent_to_login(client, world, files):
    public, _internal = files
    # "other" is a requester of another company with no rule: the incident is not theirs.
    assert fetch(client, world.other, public).status_code == 404
    client.logout()
    response = client.get(reverse("attachment-download", args=[public.pk]))
    assert response.status_code == 302
    assert "/login/" in response["Location"]


def test_media_folder_is_not_served(client, world, files):
    public, _internal = files
    client.force_login(world.zhang)
    assert client.get("/media/" + public.file.name).status_code == 404
