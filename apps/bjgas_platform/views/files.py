"""Attachment downloads: a file leaves only through its record's scope rules."""

from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404

from ..models import Attachment


def internal_notes_permission(model) -> str:
    """Return the permission that lets a user read a process's internal notes and files."""
    return f"{model._meta.app_label}.view_internal_notes"


def may_download(user, attachment: Attachment) -> bool:
    """Whether `user` may fetch the file: they see its record, and it is public or they
    may read internal notes."""
    model = attachment.content_type.model_class()
    if model is None or not hasattr(model.objects, "visible_to"):
        return user.is_superuser
    if not model.objects.visible_to(user).filter(pk=attachment.object_id).exists():
        return False
    return attachment.is_public or user.has_perm(internal_notes_permission(model))


@login_required
def download_attachment(request, pk: int):
    """Send an attachment's file; anything the user may not see answers 404."""
    attachment = get_object_or_404(Attachment.objects.select_related("content_type"), pk=pk)
    if not may_download(request.user, attachment):
        raise Http404
    try:
        handle = attachment.file.open("rb")
    except FileNotFoundError as exc:
        raise Http404 from exc
    return FileResponse(handle, as_attachment=True, filename=attachment.name)
