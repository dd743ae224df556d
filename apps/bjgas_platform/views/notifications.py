"""The bell: a user's in-app notifications, their read marks and their channel switches."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import F
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST
from unfold.widgets import UnfoldBooleanWidget

from ..models import InAppNotification, NotificationPreference

PAGE_SIZE = 30
LATEST = 10


class PreferenceForm(forms.ModelForm):
    """A user's own channel switches."""

    class Meta:
        model = NotificationPreference
        fields = ["in_app", "email", "push"]
        widgets = {name: UnfoldBooleanWidget for name in fields}


def unread(user) -> int:
    """Return how many of the user's notifications are unread."""
    return InAppNotification.objects.filter(user=user, read_at__isnull=True).count()


@login_required
@require_GET
def notification_list(request: HttpRequest) -> HttpResponse:
    """List the user's notifications, unread first, with their channel switches."""
    notifications = InAppNotification.objects.filter(user=request.user).order_by(
        F("read_at").asc(nulls_first=True), "-created_at", "-pk"
    )
    page = Paginator(notifications, PAGE_SIZE).get_page(request.GET.get("page"))
    preference = NotificationPreference.objects.filter(user=request.user).first()
    context = {
        **admin.site.each_context(request),
        "title": _("Notifications"),
        "page": page,
        "unread_count": unread(request.user),
        "form": PreferenceForm(instance=preference),
    }
    return render(request, "bjgas_platform/notifications/list.html", context)


@login_required
@require_POST
def mark_read(request: HttpRequest, pk: int) -> HttpResponse:
    """Mark one of the user's notifications read, then go to `next` (its record) or back."""
    notification = get_object_or_404(InAppNotification, pk=pk, user=request.user)
    if notification.read_at is None:
        notification.read_at = timezone.now()
        notification.save(update_fields=["read_at"])
    return redirect(_next_url(request))


@login_required
@require_POST
def mark_all_read(request: HttpRequest) -> HttpResponse:
    """Mark every unread notification of the user read."""
    count = InAppNotification.objects.filter(user=request.user, read_at__isnull=True).update(
        read_at=timezone.now()
    )
    messages.success(request, _("%(count)d notifications marked as read.") % {"count": count})
    return redirect(_next_url(request))


@login_required
@require_POST
def save_preferences(request: HttpRequest) -> HttpResponse:
    """Save the user's channel switches."""
    preference = NotificationPreference.objects.filter(user=request.user).first()
    form = PreferenceForm(request.POST, instance=preference)
    if form.is_valid():
        form.instance.user = request.user
        form.save()
        messages.success(request, _("Your notification channels were saved."))
    else:
        messages.error(request, _("Your notification channels were not saved; try again."))
    return redirect("notifications:list")


@require_GET
def unread_json(request: HttpRequest) -> JsonResponse:
    """Return the unread count and the latest unread notifications for the desk's bell."""
    if not request.user.is_authenticated:
        return JsonResponse({"detail": _("Log in to see your notifications.")}, status=401)
    latest = InAppNotification.objects.filter(user=request.user, read_at__isnull=True).order_by(
        "-created_at", "-pk"
    )[:LATEST]
    return JsonResponse(
        {
            "count": unread(request.user),
            "items": [
                {
                    "id": n.pk,
                    "title": n.title,
                    "body": n.body,
                    "url": n.url,
                    "created_at": n.created_at.isoformat(),
                    "read_url": reverse("notifications:read", args=[n.pk]),
                }
                for n in latest
            ],
        }
    )


def _next_url(request: HttpRequest) -> str:
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return reverse("notifications:list")
