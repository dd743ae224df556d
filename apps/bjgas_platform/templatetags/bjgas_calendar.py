"""Template tags of the desk's business-calendar pages."""

from django import template

register = template.Library()


@register.simple_tag(takes_context=True)
def holiday_warning(context) -> str:
    """Return the warning about next year's missing public holidays for the user, or ''."""
    from ..admin.calendar import holiday_warning as warning_for

    request = context.get("request")
    return warning_for(getattr(request, "user", None))
