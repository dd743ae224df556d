"""The desk (Django admin themed with unfold) for the platform's models."""

from . import access, org, workflow  # noqa: F401 (registers the admin classes)
