"""Celery application: Redis as broker when REDIS_URL is set, else a file-system broker."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bjgas.settings")

app = Celery("bjgas")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
