"""The architecture's rules hold on this tree, and each one fails on a deliberate violation (so the lint in
.ci/run is not a check that cannot fail). The rules are import-linter contracts in pyproject.toml."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.dev.services import REPO

PACKAGES = ["common", "gateway", "onchain", "payments", "staff"]
LINT = Path(sys.executable).with_name("lint-imports")


def lint(root, *contracts):
    args = [str(LINT), "--no-cache", "--no-logo", str(root / "pyproject.toml")]
    for contract in contracts:
        args += ["--contract", contract]
    return subprocess.run(args, cwd=root, env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """A copy of the root packages and the contracts, to break on purpose."""
    root = tmp_path_factory.mktemp("arch")
    shutil.copy(REPO / "pyproject.toml", root)
    for package in PACKAGES:
        shutil.copytree(REPO / package, root / package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "build"))
    return root


def test_the_tree_keeps_every_contract():
    result = lint(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 kept, 0 broken" in result.stdout


VIOLATIONS = [
    # (contract id, file to append to, the import that breaks the rule, what it does)
    ("layers", "onchain/services/payouts.py", "from payments.models import Transfer", "onchain imports payments"),
    ("layers", "common/money.py", "import gateway.settings", "the ground floor imports the project package"),
    ("one-door", "payments/pipeline.py", "from onchain.models import Payout", "payments reaches past onchain.api"),
    # payments.tasks imports payments.pipeline; a lazy import back closes the loop the seams issue removed.
    ("no-loops", "payments/pipeline.py", "def _later():\n    from payments import tasks", "a lazy import closes a loop"),
]


@pytest.mark.parametrize(("contract", "path", "line"), [v[:3] for v in VIOLATIONS], ids=[v[3] for v in VIOLATIONS])
def test_each_contract_fails_on_a_deliberate_violation(tree, contract, path, line):
    target = tree / path
    original = target.read_text()
    target.write_text(original + "\n\n" + line + "\n")
    try:
        result = lint(tree, contract)
    finally:
        target.write_text(original)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "BROKEN" in result.stdout
    assert lint(tree, contract).returncode == 0  # and the copy is whole again
