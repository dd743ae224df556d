from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PlatformConfig(AppConfig):
    name = "apps.bjgas_platform"
    label = "bjgas_platform"
    verbose_name = _("Platform")

    def ready(self) -> None:
        from . import signals  # noqa: F401
        from .services import sla  # noqa: F401  (connects the SLA clocks to state changes)
