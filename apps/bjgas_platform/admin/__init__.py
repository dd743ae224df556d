"""The desk (Django admin themed with unfold) for the platform's models."""

from . import (  # noqa: F401 (registers the admin classes)
    access,
    calendar,
    notifications,
    org,
    sla,
    workflow,
)
