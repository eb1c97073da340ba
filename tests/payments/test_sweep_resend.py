"""The transfers sweeper re-sends a waiting transfer's task at most once per SWEEP_RESEND_SECONDS (common.ops_state
.resend_claim): behind a screening backlog, a copy per sweep (every 10 s) per transfer fed the backlog it came from."""

import uuid

from common import ops_state


def test_a_row_is_resent_once_per_window_and_again_after_it(settings):
    """Two sweeps inside the window re-send each id once; ids new to the second sweep go out at once; after the
    window (its Redis mark expired) the same id goes out again."""
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    assert ops_state.resend_claim("advance", [first], 60) == [first]
    assert ops_state.resend_claim("advance", [first, second], 60) == [second]
    assert ops_state.resend_claim("refund", [first], 60) == [first]  # each kind of task has its own window
    ops_state.client().delete(f"{settings.CELERY_TASK_DEFAULT_QUEUE}:ops:resent:advance:{first}")  # the window ends
    assert ops_state.resend_claim("advance", [first, second], 60) == [first]


def test_without_redis_every_row_is_resent(settings):
    """Redis not answering: every id is re-sent (a duplicate task is harmless, a lost one is not)."""
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    ids = [str(uuid.uuid4()) for _ in range(3)]
    assert ops_state.resend_claim("advance", ids, 60) == ids
