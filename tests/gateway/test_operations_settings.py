"""Operational settings that keep secrets out of logs and settlement on its feet (gateway/settings.py)."""

import logging

from django.conf import settings


def test_beat_entries_expire_but_never_within_clock_skew():
    """Every beat entry expires (no pile-up behind a busy worker), never sooner than 10 s: Celery compares beat's
    clock with the worker's, and the 500-ms settlement ticks would all be discarded at a second of skew."""
    for name, entry in settings.CELERY_BEAT_SCHEDULE.items():
        expires = entry.get("options", {}).get("expires")
        assert expires is not None and expires >= 10, name


def test_urllib3_never_logs_the_urls_it_opens():
    """At DEBUG urllib3 names every URL: RPC URLs carrying keys, the alert webhook's secret path."""
    assert logging.getLogger("urllib3").getEffectiveLevel() >= logging.WARNING
    assert settings.LOGGING["loggers"]["urllib3"]["level"] == "WARNING"


def test_operator_alerts_and_notifications_go_to_the_notify_queue():
    """People-facing sends wait behind each other, never behind settlement or a list re-screening."""
    notify = settings.CELERY_TASK_ROUTES["payments.notification_send"]["queue"]
    for task in ("onchain.alert_deliver", "onchain.alerts_sweep", "payments.notifications_sweep",
                 "payments.tasks.claims_sweep", "payments.webhook_deliver"):
        assert settings.CELERY_TASK_ROUTES[task]["queue"] == notify, task
    assert notify.endswith(".notify")


def test_a_statement_run_five_times_on_a_kept_connection_is_prepared_on_the_server(db):
    """DATABASE_PREPARE_THRESHOLD (default 5): PostgreSQL then skips parsing and planning it (bench/README.md)."""
    from django.db import connection

    with connection.cursor() as cursor:
        for n in range(6):
            cursor.execute("SELECT %s::int + 40417", [n])
        cursor.execute("SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s", ["%+ 40417%"])
        assert cursor.fetchone()[0] == 1
