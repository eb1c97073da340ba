"""CHAIN_RPCS (`<chain id>=<url>[,<url>...]` joined by `;`) is read at start-up: a malformed value stops the process
with a message naming the rule and the bad part by its chain id only (the URLs carry provider keys)."""

import os
import subprocess
import sys

import pytest

from gateway.dev.services import REPO

READ = "import django; django.setup(); from django.conf import settings; print(sorted(settings.CHAIN_RPCS.items()))"


def start(value):
    env = dict(os.environ, CHAIN_RPCS=value, DJANGO_SETTINGS_MODULE="gateway.settings", DJANGO_SECRET_KEY="t")
    return subprocess.run([sys.executable, "-c", READ], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)


def test_chains_and_their_urls_in_order():
    done = start(" 56=https://a.example/KEY , https://b.example ;1=https://c.example;")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[(1, ['https://c.example']), (56, ['https://a.example/KEY', 'https://b.example'])]"


@pytest.mark.parametrize("value", ["bsc=https://a.example/KEY", "56=", "56=https://a.example/KEY;56=https://b.example",
                                   "https://a.example/KEY"])
def test_a_malformed_value_stops_start_up_without_echoing_urls(value):
    done = start(value)
    assert done.returncode != 0
    assert "ImproperlyConfigured: CHAIN_RPCS: each part is <chain id>=<url>" in done.stderr
    assert "KEY" not in done.stderr.splitlines()[-1]
