"""gateway/gunicorn.py: what every web worker does once it has loaded the application, and that every way we start
gunicorn uses it (the image, the benchmarks, the tests' servers)."""

import gc
import re

from gateway import gunicorn as settings_module
from gateway.dev.services import REPO


def test_a_loaded_worker_freezes_its_objects_out_of_the_collector():
    assert gc.get_freeze_count() == 0
    try:
        settings_module.post_worker_init(worker=None)
        assert gc.get_freeze_count() > 10_000  # the loaded app (Django, DRF, web3 ...): a full collection skips them
    finally:
        gc.unfreeze()


def test_every_gunicorn_we_start_reads_these_settings():
    starts = {"Dockerfile": REPO / "Dockerfile", "benchmarks": REPO / "bench" / "quotes.py",
              "tests": REPO / "tests" / "gunicorn.py", "security tests": REPO / "tests" / "security" / "conftest.py"}
    for name, path in starts.items():
        text = path.read_text()
        assert re.search(r'"gateway\.wsgi:application",\s*"-c",\s*"python:gateway\.gunicorn"', text), name
