"""The browser fixtures (tests/browser.py) for every test here."""

from tests.browser import browser, page  # noqa: F401
