import os
import sys
from pathlib import Path

from celery import Celery

from gateway.dev import envfile


def _celery_command_line():
    """`celery -A gateway ...` or `python -m celery -A gateway ...`, not an import by Django, gunicorn or pytest."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    return (spec is not None and spec.name == "celery.__main__") or Path(sys.argv[0]).name == "celery"


if _celery_command_line():
    # Like manage.py: in a `make run` checkout, its secrets and service URLs from var/ (the real environment wins).
    envfile.load()
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway.settings")

app = Celery("gateway")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
