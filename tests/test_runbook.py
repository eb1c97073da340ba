"""docs/runbook.md tells operators what every alert means and what to do: each kind an operator alert can have
(onchain.models.OperatorAlert.Kind, including the kinds payments raises) has its own section, so a new kind added
without one fails here."""

import re
from pathlib import Path

from django.conf import settings

from onchain.models import OperatorAlert

RUNBOOK = Path(settings.BASE_DIR) / "docs" / "runbook.md"


def _sections():
    """{kind: section text} for the `### \\`kind\\`` headings of the runbook's alert chapter."""
    text = RUNBOOK.read_text()
    chapter = text[text.index("## Operator alerts: every kind"):]
    parts = re.split(r"^### `([a-z_]+)`\s*$", chapter, flags=re.M)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts) - 1, 2)}


def test_every_alert_kind_has_a_runbook_section_saying_what_it_means_and_what_to_do():
    """Each OperatorAlert kind has a `### \\`kind\\`` section with a **Means** and a **Do** paragraph."""
    sections = _sections()
    missing = [kind for kind in OperatorAlert.Kind.values if kind not in sections]
    assert not missing, f"docs/runbook.md has no section for alert kinds {missing}"
    for kind in OperatorAlert.Kind.values:
        assert "**Means**" in sections[kind] and "**Do**" in sections[kind], kind


def test_the_runbook_names_no_alert_kind_the_code_does_not_have():
    """A section for a kind that does not exist (renamed, removed) would mislead: every section names a real kind."""
    assert set(_sections()) <= set(OperatorAlert.Kind.values)
