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


def _observability_signals():
    """Request and transfer ids on task log lines (common/logctx.py), and task failures counted in Redis for
    /metrics (common/ops_state.py): the worker's pool processes and the web processes share one count."""
    import logging

    from celery import signals

    from common import logctx

    logctx.connect_celery_signals()

    def _count_failure(sender=None, **_):
        from common import ops_state

        try:
            ops_state.task_failure_record(getattr(sender, "name", None))
        except Exception:  # a Redis outage must not turn a failed task into a crashed worker
            logging.getLogger(__name__).warning("task_failure_not_counted", exc_info=True)

    signals.task_failure.connect(_count_failure, weak=False)


_observability_signals()


def _survive_redis_loss_with_unacked_messages():
    """kombu 5.7's Redis channel, closed after the broker connection dropped while a message was unacknowledged,
    tries to restore that message through a connection that is already gone and dies on an AttributeError
    (`'NoneType' object has no attribute 'hostname'`), which takes the whole worker down ("Unrecoverable error").
    Raise the connection error it is instead: the consumer's clean-up ignores those and reconnects. The message
    stays in the unacked set (restored after the visibility timeout); every step is re-derived from the tables by
    beat's sweepers anyway (tests/onchain/test_faults.py, Redis flushed and restarted)."""
    import redis
    from kombu.transport import redis as kombu_redis

    original = kombu_redis.Channel._connparams

    def _connparams(self, asynchronous=False):
        if self.connection.client is None:
            raise redis.exceptions.ConnectionError("the broker connection is already closed")
        return original(self, asynchronous=asynchronous)

    kombu_redis.Channel._connparams = _connparams


_survive_redis_loss_with_unacked_messages()
