"""Production settings pass Django's deployment checklist."""

import os
import secrets
import subprocess
import sys

from gateway.dev.services import REPO


def test_check_deploy_is_clean_with_production_settings():
    """`manage.py check --deploy` reports nothing at WARNING level with DEBUG off and a real-length secret."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_SECURE", "DJANGO_DEBUG", "DJANGO_ALLOW_ASYNC"))}
    env.update(DJANGO_SECRET_KEY=secrets.token_urlsafe(50), DJANGO_DEBUG="0")
    result = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
