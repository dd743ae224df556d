"""Template tags of the desk header's notification bell."""

from django import template

from ..views.notifications import unread

register = template.Library()


@register.simple_tag(takes_context=True)
def unread_notification_count(context) -> int:
    """Return the logged-in user's unread notification count (0 for anonymous visitors)."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return 0
    return unread(user)
