"""Beat's heartbeat: a tiny task on the default queue every few seconds; /readyz reports its age (a stopped beat, or
a default queue nobody consumes, shows as a growing age)."""

from celery import shared_task

from common import ops_state


@shared_task(name="common.beat_heartbeat")
def beat_heartbeat():
    ops_state.beat_heartbeat_record()
