from django.apps import AppConfig


class CommonConfig(AppConfig):
    """Listed last in INSTALLED_APPS, so its ready() runs after every other app's models and ready() are imported:
    whatever those imports did to the interpreter is undone here, in every process that sets Django up (gunicorn's
    gateway.wsgi, manage.py, the Celery worker through Celery's Django fix-up, and the pool processes it forks)."""

    name = "common"
    verbose_name = "Common"

    def ready(self):
        from common import lookups  # noqa: F401 - registers `__any` on every field
        from common.runtime import recursion_limit_restore

        recursion_limit_restore()
