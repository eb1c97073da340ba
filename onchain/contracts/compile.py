"""Compile the Solidity sources in this directory into committed JSON artifacts.

Runtime code only ever calls :func:`load_artifact`, which reads the committed
``build/<Name>.json`` and needs no node/solc. Recompiling is a dev step::

    .venv/bin/python -m onchain.contracts.compile

Settings are pinned (and the metadata hash disabled) so a compile is
byte-for-byte reproducible; tests rely on that to prove the artifacts match
the sources.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

CONTRACTS_DIR = Path(__file__).resolve().parent
BUILD_DIR = CONTRACTS_DIR / "build"
REPO_ROOT = CONTRACTS_DIR.parents[1]
SOLC_JS_DIR = REPO_ROOT / "node_modules" / "solc"

SETTINGS: dict[str, Any] = {
    "optimizer": {"enabled": True, "runs": 200},
    # Supported by anvil's default hardfork and by BNB Chain.
    "evmVersion": "cancun",
    # No IPFS/Swarm hash of the metadata: it would change with comments/paths
    # and make the bytecode non-reproducible across machines.
    "metadata": {"bytecodeHash": "none"},
    "outputSelection": {
        "*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"]}
    },
}

# Calls solc-js's API directly instead of its CLI: `solc.js --standard-json`
# prints an SMT-solver notice on stdout ahead of the JSON, which would have to
# be scraped off.
_NODE_SCRIPT = """
const solc = require(process.argv[1]);
let input = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (c) => { input += c; });
process.stdin.on('end', () => {
  process.stdout.write(JSON.stringify({version: solc.version(), output: JSON.parse(solc.compile(input))}));
});
"""


class CompileError(RuntimeError):
    """Raised when the toolchain is missing or solc reports errors."""


def _sources() -> list[Path]:
    # bench/ holds reference contracts the benchmarks deploy beside ours (never the engine).
    return sorted(CONTRACTS_DIR.glob("*.sol")) + sorted(CONTRACTS_DIR.glob("bench/*.sol"))


def _run_solc(standard_input: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    node = shutil.which("node")
    if node is None:
        raise CompileError(
            "`node` not found on PATH; it is needed to run solc-js (npm package `solc`)."
        )
    if not (SOLC_JS_DIR / "package.json").is_file():
        raise CompileError(
            f"solc-js not found at {SOLC_JS_DIR}; run `npm install` in {REPO_ROOT}."
        )
    proc = subprocess.run(
        [node, "-e", _NODE_SCRIPT, str(SOLC_JS_DIR)],
        input=json.dumps(standard_input),
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise CompileError(
            f"solc-js exited with {proc.returncode}:\n{proc.stderr.strip()}"
        )
    result = json.loads(proc.stdout)
    return result["version"], result["output"]


def compile_sources() -> dict[str, dict[str, Any]]:
    """Compile every ``*.sol`` here; return ``{contractName: artifact}`` without writing."""
    paths = _sources()
    if not paths:
        raise CompileError(f"no .sol files in {CONTRACTS_DIR}")
    raw = {p.relative_to(CONTRACTS_DIR).as_posix(): p.read_bytes() for p in paths}
    # Keyed by the path under this directory so the output does not depend on the checkout path.
    standard_input = {
        "language": "Solidity",
        "sources": {
            name: {"content": data.decode("utf-8")} for name, data in raw.items()
        },
        "settings": SETTINGS,
    }
    version, output = _run_solc(standard_input)

    errors = [e for e in output.get("errors", []) if e.get("severity") == "error"]
    if errors:
        details = "\n".join(
            e.get("formattedMessage", e.get("message", "")) for e in errors
        )
        raise CompileError(f"solc reported {len(errors)} error(s):\n{details}")

    artifacts: dict[str, dict[str, Any]] = {}
    for source_name, contracts in sorted(output.get("contracts", {}).items()):
        for contract_name, out in sorted(contracts.items()):
            if contract_name in artifacts:
                raise CompileError(
                    f"contract name {contract_name!r} defined in more than one source"
                )
            artifacts[contract_name] = {
                "contractName": contract_name,
                "abi": out["abi"],
                "bytecode": "0x" + out["evm"]["bytecode"]["object"],
                "deployedBytecode": "0x" + out["evm"]["deployedBytecode"]["object"],
                "compiler": version,
                "settings": SETTINGS,
                "sourceSha256": hashlib.sha256(raw[source_name]).hexdigest(),
            }
    return artifacts


def write_artifacts() -> list[Path]:
    """Compile and write ``build/<Name>.json`` for every contract; return the paths."""
    BUILD_DIR.mkdir(exist_ok=True)
    written = []
    for name, artifact in compile_sources().items():
        path = BUILD_DIR / f"{name}.json"
        path.write_text(json.dumps(artifact, indent=2) + "\n", encoding="utf-8")
        written.append(path)
    return written


def load_artifact(name: str) -> dict[str, Any]:
    """Read the committed artifact for contract ``name`` (no node/solc needed)."""
    path = BUILD_DIR / f"{name}.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"no artifact {path}; run `python -m onchain.contracts.compile` to build it"
        )
    return json.loads(path.read_text(encoding="utf-8"))


if __name__ == "__main__":
    for written_path in write_artifacts():
        print(f"wrote {written_path.relative_to(REPO_ROOT)}")
