"""schemathesis against the schema the live server serves (issue 10: "0 failures, all checks"): examples, coverage
(negative and boundary values), fuzzing in positive and negative modes, and the stateful phase following the
schema's links from a quote to its transfer and on to reading and cancelling it. Every check schemathesis has
runs; the only setting changed is that a schema-valid request may also be refused by a business rule with 422
(an amount outside the corridor's limits, an expired quote). Bounded (examples per operation, fixed seed,
deterministic) so it takes a few minutes; `make test-schema-deep` runs it with many more examples."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "50"))
SEED = int(os.environ.get("SCHEMATHESIS_SEED", "20261129"))
CODEC = os.environ.get("SCHEMATHESIS_CODEC", "utf-8")
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
REPO = Path(__file__).resolve().parents[2]
BUDGET = max(840, EXAMPLES * 15)  # seconds: 50 examples take about 3 minutes here

# 422: a business rule refused schema-valid data (amount outside the corridor's limits, an expired quote, the
# travel rule's fields for a large amount). Lists: a cursor is an opaque token (any string fits its schema), so
# one that was not handed out is a 400 `invalid-cursor` there and only there.
CONFIG = """
hooks = "tests.payments.schemathesis_hooks"

[checks.positive_data_acceptance]
expected-statuses = ["2xx", "401", "403", "404", "409", "422", "429", "5xx"]

[[operations]]
include-operation-id-regex = "^(transfers_list|balances_statement|payouts_list|webhook_endpoints_list|webhook_events_list)$"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "403", "404", "409", "422", "429", "5xx"]
"""


@pytest.fixture
def open_limits(settings):
    """The run sends thousands of requests with one key and many with wrong keys on purpose (the auth checks):
    the per-key and per-address limits (tests/security/test_rate_limits.py pins them) would answer 429 instead."""
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "api-key": (10**9, 60), "api-auth-failures": (10**9, 3600)}


def _summary(ndjson):
    """(cases run, failures) from schemathesis's NDJSON event stream."""
    cases, failures = 0, []
    for line in ndjson.read_text().splitlines():
        event = json.loads(line)
        finished = event.get("EngineFinished") or event.get("engine_finished")
        if finished is not None:
            continue
        for name, payload in event.items():
            if not isinstance(payload, dict):
                continue
            if name in ("ScenarioFinished", "scenario_finished"):
                recorder = payload.get("recorder", {})
                cases += len(recorder.get("cases", {}))
                for check_list in recorder.get("checks", {}).values():
                    failures += [c for c in check_list if c.get("status") == "failure"]
    return cases, failures


@pytest.mark.timeout(BUDGET + 60)
def test_schemathesis_finds_nothing_against_the_live_schema(transactional_db, live_server, pricing, partner,
                                                            stripe_server, open_limits, tmp_path):
    """Every operation, every check (not_a_server_error, status_code_conformance, content_type_conformance,
    response_schema_conformance, response_headers_conformance, negative_data_rejection, positive_data_acceptance,
    missing_required_header, unsupported_method, ignored_auth, use_after_free, ensure_resource_availability, …):
    zero failures, and the run really sent requests in every phase."""
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    ndjson, junit = tmp_path / "events.ndjson", tmp_path / "junit.xml"
    command = [str(SCHEMATHESIS), "--config-file", str(config), "--no-color", "run",
               f"{live_server.url}/api/v1/schema/?format=json",
               "--checks", "all", "--mode", "all", "--phases", "examples,coverage,fuzzing,stateful",
               "--max-examples", str(EXAMPLES), "--seed", str(SEED), "--generation-deterministic",
               "--generation-codec", CODEC, "--workers", "1", "--request-timeout", "30",
               "--header", f"Authorization: Api-Key {partner.raw_key}",
               "--report", "junit,ndjson", "--report-junit-path", str(junit), "--report-ndjson-path", str(ndjson)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=BUDGET,  # noqa: S603 (our own argv)
                            cwd=tmp_path, env={**os.environ, "NO_COLOR": "1", "PYTHONPATH": str(REPO)})
    output = result.stdout + result.stderr
    print(output[-12000:])
    cases, failures = _summary(ndjson) if ndjson.exists() else (0, [])
    print(f"schemathesis: {cases} cases, {len(failures)} failures")
    assert result.returncode == 0, output[-20000:]
    assert "Stateful" in output and "Fuzzing" in output and "Coverage" in output
