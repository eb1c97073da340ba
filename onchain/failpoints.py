"""Named points where a fault test may kill this process (SIGKILL: no cleanup, no rollback handlers), to prove
that a crash at any line between claim, sign, store, broadcast and commit loses and duplicates nothing.

Inactive unless TULPAR_FAILPOINTS is set: comma-separated `name=when` items, `name` one of POINTS and `when` one of

    1/4/9    kill on passes 1, 4 and 9 through that point (a single number: that pass only)
    every3   kill on every 3rd pass (passes 3, 6, 9, ...; every1 kills on every pass)
    p0.05    kill on a pass with probability 0.05, drawn as a pure function of (seed, name, pass number), the seed
             from TULPAR_FAILPOINTS_SEED (an integer, default 0): the same seed kills on the same passes every run

e.g. TULPAR_FAILPOINTS="batch.signed=1/4/9,send.after_broadcast=every3". Passes are counted from 1, per name, and
only for the names in the spec; a point not in the spec never kills and is not counted. A malformed spec (an
unknown or repeated name, no `=when`, pass 0, every0, a probability outside [0, 1], a bare probability such as
`0.2`) raises ValueError naming the item when it is parsed (`parse`, or the first pass through any point).

Counting is shared when TULPAR_FAILPOINTS_STATE names a directory: each point's count lives in a file there
(`<name>.passes`), incremented under an exclusive `fcntl.flock`, so every process of a run (workers, their prefork
pool processes, a worker restarted after a kill) draws from one sequence: a restarted worker carries on from the
pass that killed its predecessor instead of dying at the same pass forever. Each kill is appended to `kills` in
that directory (`name pass pid`) before the signal; `kills(directory)` and `passes(directory, name)` read them.
Without a state directory each process counts its own passes from 1.
"""

import collections
import fcntl
import functools
import hashlib
import os
import re
import signal
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

POINTS = (
    "batch.claimed",           # nonce claimed under the wallet lock, nothing signed (transaction open)
    "batch.signed",            # signed and stored, not committed
    "batch.committed",         # committed, send task not yet enqueued
    "send.before_broadcast",   # the send task (batch_send) is about to hand the bytes to the node
    "send.after_broadcast",    # the send task: node has the bytes, our row does not say so
    "track.before_broadcast",  # the tracker is about to rebroadcast (or send a fee-bumped replacement)
    "track.after_broadcast",   # the tracker: node has the bytes, our row does not say so
    "track.before_final",      # final batch recorded, transaction not committed
)
SPEC, STATE, SEED = "TULPAR_FAILPOINTS", "TULPAR_FAILPOINTS_STATE", "TULPAR_FAILPOINTS_SEED"
_SYNTAX = "name=when, when one of 1/4/9 (those passes), every3 (every 3rd pass), p0.05 (seeded probability)"
_PASSES = re.compile(r"\d+(/\d+)*")
_EVERY = re.compile(r"every(\d+)")
_CHANCE = re.compile(r"p(\d+(\.\d*)?|\.\d+)")


@dataclass(frozen=True)
class When:
    """When one point kills: on the listed passes, on every `every`-th pass, or with probability `chance`."""

    passes: frozenset = frozenset()
    every: int = 0
    chance: float | None = None

    def kills(self, name, n, seed=0):
        if n in self.passes or (self.every and n % self.every == 0):
            return True
        return self.chance is not None and draw(seed, name, n) < self.chance


def draw(seed, name, n):
    """A number in [0, 1) that depends on (seed, name, pass number) only."""
    digest = hashlib.sha256(f"{seed}:{name}:{n}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _when(item, when):
    if _PASSES.fullmatch(when):
        passes = frozenset(int(p) for p in when.split("/"))
        if 0 in passes:
            raise ValueError(f"{SPEC} item {item!r}: passes are counted from 1")
        return When(passes=passes)
    if m := _EVERY.fullmatch(when):
        if int(m.group(1)) == 0:
            raise ValueError(f"{SPEC} item {item!r}: every0 is not a schedule (every1 kills on every pass)")
        return When(every=int(m.group(1)))
    if m := _CHANCE.fullmatch(when):
        chance = float(m.group(1))
        if not 0 <= chance <= 1:
            raise ValueError(f"{SPEC} item {item!r}: a probability is between 0 and 1")
        return When(chance=chance)
    hint = f" (a probability is written p{when})" if re.fullmatch(r"\d*\.\d+", when) else ""
    raise ValueError(f"{SPEC} item {item!r}: {when!r} is not a schedule{hint}; expected {_SYNTAX}")


@functools.cache
def parse(spec):
    """{name: When} for a TULPAR_FAILPOINTS value; ValueError, naming the item, when it is malformed."""
    points = {}
    for item in filter(None, (p.strip() for p in spec.split(","))):
        name, eq, when = (s.strip() for s in item.partition("="))
        if not (name and eq and when):
            raise ValueError(f"{SPEC} item {item!r}: expected {_SYNTAX}")
        if name not in POINTS:
            raise ValueError(f"{SPEC} item {item!r}: unknown failpoint {name!r}; known: {', '.join(POINTS)}")
        if name in points:
            raise ValueError(f"{SPEC} item {item!r}: {name} is named twice")
        points[name] = _when(item, when)
    return points


def seed():
    value = os.environ.get(SEED, "0")
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{SEED}={value!r}: expected an integer") from None


_local_counts = collections.Counter()
_local_lock = threading.Lock()


def _next_pass(name, kills):
    """(this pass's number, whether it kills: `kills(n)`); a kill is recorded before the count's lock is released, so
    the `kills` file lists a point's kills in pass order even when another process passes meanwhile."""
    state = os.environ.get(STATE)
    if not state:
        with _local_lock:
            _local_counts[name] += 1
            n = _local_counts[name]
        if kills(n):
            _record_kill(name, n)
            return n, True
        return n, False
    os.makedirs(state, exist_ok=True)
    fd = os.open(Path(state) / f"{name}.passes", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # released when fd is closed, or when a killed holder's process is gone
        n = int(os.pread(fd, 32, 0) or b"0") + 1
        # One write, no truncate first: n has at least as many digits as n - 1, and a process killed from
        # outside (a supervisor's SIGKILL) between a truncate and the write would have reset the count.
        os.pwrite(fd, str(n).encode(), 0)
        if kills(n):
            _record_kill(name, n)
            return n, True
        return n, False
    finally:
        os.close(fd)


def _record_kill(name, n):
    sys.stderr.write(f"failpoint {name} pass {n}: SIGKILL pid {os.getpid()}\n")
    sys.stderr.flush()
    state = os.environ.get(STATE)
    if state:
        fd = os.open(Path(state) / "kills", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, f"{name} {n} {os.getpid()}\n".encode())  # one O_APPEND write: lines never interleave
        finally:
            os.close(fd)


def failpoint(name):
    spec = os.environ.get(SPEC)
    if not spec:
        return
    when = parse(spec).get(name)
    if when is None:
        return
    _n, kill = _next_pass(name, lambda n: when.kills(name, n, seed() if when.chance is not None else 0))
    if kill:
        os.kill(os.getpid(), signal.SIGKILL)


def kills(directory):
    """[(name, pass, pid), ...] of the kills recorded in a state directory, in the order they happened."""
    path = Path(directory) / "kills"
    text = path.read_text() if path.exists() else ""
    complete = text[:text.rfind("\n") + 1]  # a line still being written is read next time
    return [(name, int(n), int(pid)) for name, n, pid in (line.split() for line in complete.splitlines())]


def passes(directory, name):
    """How many passes through `name` a state directory has counted."""
    path = Path(directory) / f"{name}.passes"
    if not path.exists():
        return 0
    with open(path, "rb") as f:
        fcntl.flock(f, fcntl.LOCK_SH)
        return int(f.read() or b"0")
