"""onchain.failpoints on its own: passes counted in a state directory shared by several processes kill exactly on
the listed passes; without one each process counts its own; a point not in the spec never kills (nor is
counted); a malformed spec is refused with a clear error when it is parsed."""

import os
import signal
import subprocess
import sys

import pytest

from gateway.dev.services import REPO
from onchain import failpoints

CALLER = """
import sys
from onchain.failpoints import failpoint
for name in sys.argv[2:]:
    for _ in range(int(sys.argv[1])):
        failpoint(name)
        print("ok", flush=True)
"""


def caller_env(spec, state=None, **extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TULPAR_FAILPOINTS")}
    env["TULPAR_FAILPOINTS"] = spec
    if state is not None:
        env["TULPAR_FAILPOINTS_STATE"] = str(state)
    return dict(env, **extra)


def start(env, times, *names):
    return subprocess.Popen([sys.executable, "-c", CALLER, str(times), *names], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc):
    out, err = proc.communicate(timeout=60)
    assert proc.returncode in (0, -signal.SIGKILL), err
    return out.count("ok\n"), proc.returncode == -signal.SIGKILL


def test_two_processes_sharing_a_state_dir_are_killed_exactly_on_the_listed_passes(tmp_path):
    """Two processes at a time pass `batch.signed`, each with a quota of 6 passes; a killed one is replaced by a
    process with what is left of its quota (as a supervisor restarts a worker). 12 passes in all, whichever process
    makes which: kills exactly at passes 1, 4 and 9, each of a different process, and the count is 12."""
    env = caller_env("batch.signed=1/4/9", tmp_path)
    left, oks, dead = [6, 6], 0, 0
    while any(left):
        running = [(slot, start(env, left[slot], "batch.signed")) for slot in (0, 1) if left[slot]]
        for slot, proc in running:
            done, killed = finish(proc)
            oks, dead = oks + done, dead + killed
            left[slot] -= done + killed  # the pass that killed it was counted too
    assert left == [0, 0]
    assert failpoints.passes(tmp_path, "batch.signed") == 12
    kills = failpoints.kills(tmp_path)
    assert [(name, n) for name, n, _ in kills] == [("batch.signed", 1), ("batch.signed", 4), ("batch.signed", 9)]
    assert len({pid for *_, pid in kills}) == 3
    assert (oks, dead) == (9, 3)


def test_passes_from_concurrent_processes_are_never_lost(tmp_path):
    """Four processes pass `batch.claimed` 150 times each at once: the shared count is exactly 600 (the flock), and
    `every1000` never fired."""
    env = caller_env("batch.claimed=every1000", tmp_path)
    procs = [start(env, 150, "batch.claimed") for _ in range(4)]
    assert [finish(p) for p in procs] == [(150, False)] * 4
    assert failpoints.passes(tmp_path, "batch.claimed") == 600
    assert failpoints.kills(tmp_path) == []


def test_without_a_state_dir_each_process_counts_its_own_passes():
    """`batch.signed=2` and no state directory: a process passing once lives, one passing three times dies at its
    second pass, and the next process starts from pass 1 again."""
    env = caller_env("batch.signed=2")
    assert finish(start(env, 1, "batch.signed")) == (1, False)
    assert finish(start(env, 3, "batch.signed")) == (1, True)
    assert finish(start(env, 1, "batch.signed")) == (1, False)


def test_points_not_in_the_spec_never_kill_and_are_not_counted(tmp_path):
    """With `batch.signed=every1` (kill on every pass), passing names that are not in the spec, a known point and
    an unknown name alike (a `via` nobody armed), kills nothing and counts nothing."""
    env = caller_env("batch.signed=every1", tmp_path)
    assert finish(start(env, 5, "send.before_broadcast", "track.after_broadcast", "no.such.point")) == (15, False)
    assert sorted(os.listdir(tmp_path)) == []


def test_counted_and_seeded_schedules():
    """Which passes kill is a function of the spec (and, for a probability, of the seed) alone."""
    points = failpoints.parse(" batch.signed=1/4/9, send.after_broadcast=every3 ,track.before_final=p0.25")
    assert set(points) == {"batch.signed", "send.after_broadcast", "track.before_final"}

    def killing(name, upto=12, seed=0):
        return [n for n in range(1, upto + 1) if points[name].kills(name, n, seed)]

    assert killing("batch.signed") == [1, 4, 9]
    assert killing("send.after_broadcast") == [3, 6, 9, 12]
    drawn = killing("track.before_final", upto=1000, seed=7)
    assert drawn == killing("track.before_final", upto=1000, seed=7)
    assert drawn != killing("track.before_final", upto=1000, seed=8)
    assert 200 <= len(drawn) <= 300
    assert failpoints.parse("batch.signed=p0")["batch.signed"].kills("batch.signed", 1) is False
    assert failpoints.parse("batch.signed=p1")["batch.signed"].kills("batch.signed", 1) is True
    assert failpoints.parse("batch.signed=every1")["batch.signed"].kills("batch.signed", 5) is True


@pytest.mark.parametrize(("spec", "message"), [
    ("batch.signed", "expected name=when"),
    ("batch.signed=", "expected name=when"),
    ("=1", "expected name=when"),
    ("batch.sgned=1", "unknown failpoint 'batch.sgned'"),
    ("batch.signed=1,batch.signed=4", "named twice"),
    ("batch.signed=0", "counted from 1"),
    ("batch.signed=1/0/3", "counted from 1"),
    ("batch.signed=1//4", "not a schedule"),
    ("batch.signed=-1", "not a schedule"),
    ("batch.signed=every0", "every0 is not a schedule"),
    ("batch.signed=every", "not a schedule"),
    ("batch.signed=sometimes", "not a schedule"),
    ("batch.signed=0.2", r"a probability is written p0\.2"),
    ("batch.signed=p1.5", "between 0 and 1"),
    ("batch.signed=p", "not a schedule"),
])
def test_a_malformed_spec_is_refused_when_parsed(spec, message):
    with pytest.raises(ValueError, match=message) as caught:
        failpoints.parse(spec)
    assert "TULPAR_FAILPOINTS item" in str(caught.value)


def test_a_malformed_spec_fails_the_first_pass_instead_of_never_killing(monkeypatch, tmp_path):
    monkeypatch.setenv("TULPAR_FAILPOINTS", "batch.signed=0.5")
    monkeypatch.setenv("TULPAR_FAILPOINTS_STATE", str(tmp_path))
    with pytest.raises(ValueError, match="p0.5"):
        failpoints.failpoint("batch.claimed")
    monkeypatch.setenv("TULPAR_FAILPOINTS", "batch.signed=p0.5")
    monkeypatch.setenv("TULPAR_FAILPOINTS_SEED", "seven")
    with pytest.raises(ValueError, match="TULPAR_FAILPOINTS_SEED='seven': expected an integer"):
        failpoints.failpoint("batch.signed")
