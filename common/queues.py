"""Celery queue names (docs/architecture.md "Queues and workers"). No Django import: `make run` and the test
fixtures name the worker's `-Q` list from the same function the settings route tasks with."""

KINDS = ("settlement", "stripe", "notify")


def celery_queues(base):
    """{kind: queue name} for the default queue `base` (CELERY_QUEUE) and the dedicated ones beside it. Derived from
    `base` so a test run's queues never meet a `make run` on the same Redis."""
    return {"default": base, **{kind: f"{base}.{kind}" for kind in KINDS}}


def worker_queue_arg(base):
    """The `-Q` argument for a worker that consumes every queue (`make run`, the tests, a one-worker deployment)."""
    return ",".join(celery_queues(base).values())
