"""The desk (Django admin themed with unfold) for the service-management processes."""

from . import imports, incident, reports, task  # noqa: F401 (registers the admin classes)
