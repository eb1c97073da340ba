"""The product's settings (gateway.settings, from the environment as always) plus the bare POST's app and URL."""

from gateway.settings import *  # noqa: F403

INSTALLED_APPS = [*INSTALLED_APPS, "bench.bare.apps.BareConfig"]  # noqa: F405
ROOT_URLCONF = "bench.bare.urls"
