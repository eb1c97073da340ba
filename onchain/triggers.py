"""Run the batcher now instead of at beat's next pass: when a payout is queued, and when a new head may have freed
a wallet or made a waiting payout due. Beat's passes stay the sweeper; a lost trigger costs one pass, never a payout.

Single-flight per token: a trigger enqueues a build task only when none is pending (a Redis key set NX, cleared by
the task as it starts), so a burst of 200 payouts enqueues one or two builds, not 200. A payout committed after the
task cleared the key triggers again; one committed before is in the table the task then reads.
"""

import logging

import redis
from celery import current_app
from django.conf import settings
from django.db import transaction
from kombu.exceptions import OperationalError as BrokerError

from onchain.locks import redis_client

log = logging.getLogger(__name__)
BUILD_TASK = "onchain.tasks.settlement_build_token"
PENDING_TTL = 5  # seconds: a pending mark whose task was lost lapses by itself (beat builds meanwhile)


def _pending_key(token_id):
    return f"tulpar:build-pending:{settings.CELERY_TASK_DEFAULT_QUEUE}:{token_id}"


def build_soon(token_id):
    """After the caller's transaction commits (at once outside one), have a worker build for this token."""
    transaction.on_commit(lambda: build_kick(token_id), robust=True)


def build_kick(token_id):
    """Enqueue one build task unless one is already pending. Never raises: beat is the fallback."""
    try:
        if redis_client().set(_pending_key(token_id), "1", nx=True, ex=PENDING_TTL):
            # By name: onchain.tasks imports the services that call this (no import cycle); routed as onchain.tasks.*
            current_app.send_task(BUILD_TASK, args=[token_id])
            return True
    except (redis.RedisError, BrokerError) as exc:
        log.warning("build_kick_failed token=%s error=%s", token_id, exc)
    return False


def build_taken(token_id):
    """The build task starts: later payouts must trigger again."""
    try:
        redis_client().delete(_pending_key(token_id))
    except redis.RedisError as exc:
        log.warning("build_pending_clear_failed token=%s error=%s", token_id, exc)
