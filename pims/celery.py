import os

# The web process publishes only after a commit, inside the plug-in's request. Loading the
# Redis transport (kombu's, and redis-py with it) was most of the first publish, so the
# first POST on each new web worker paid it; loading it with the app moves that to startup.
import kombu.transport.redis  # noqa: F401
from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pims.settings")

app = Celery("pims")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
