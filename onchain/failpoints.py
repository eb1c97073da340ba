"""Named points where a fault test may kill this process (SIGKILL: no cleanup, no rollback handlers), to prove
that a crash at any line between claim, sign, store, broadcast and commit loses and duplicates nothing.

Inactive unless TULPAR_FAILPOINTS is set, e.g. `batch.signed=0.2,send.after_broadcast=0.1` (name=probability).
"""

import functools
import os
import random
import signal


@functools.cache
def _parse(spec):
    points = {}
    for item in filter(None, (p.strip() for p in spec.split(","))):
        name, _, chance = item.partition("=")
        points[name] = float(chance or 1)
    return points


def failpoint(name):
    spec = os.environ.get("TULPAR_FAILPOINTS")
    if not spec:
        return
    chance = _parse(spec).get(name)
    if chance and random.random() < chance:  # noqa: S311 - fault injection, not security
        os.kill(os.getpid(), signal.SIGKILL)


POINTS = (
    "batch.claimed",           # nonce claimed under the wallet lock, nothing signed (transaction open)
    "batch.signed",            # signed and stored, not committed
    "batch.committed",         # committed, send task not yet enqueued
    "send.before_broadcast",   # about to hand the bytes to the node
    "send.after_broadcast",    # node has the bytes, our row does not say so
    "track.before_final",      # final batch recorded, transaction not committed
)
