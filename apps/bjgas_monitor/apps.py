from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MonitorConfig(AppConfig):
    name = "apps.bjgas_monitor"
    label = "bjgas_monitor"
    verbose_name = _("Monitoring")
