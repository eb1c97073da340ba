"""The `make run` state files in var/ (TULPAR_VAR_DIR): `dev.env` (generated secrets) and `run.env` (what the
running `make run` chose: service URLs, debug mode, ...). `manage.py` and the Celery command line load both, so
commands in a `make run` checkout reach the same stack without exporting anything.

Loading never overrides: a variable already in the environment wins (production sets everything there and has
no var/ files). Only the standard library here: manage.py and the Docker image (no honcho) import this module.
Values are secrets: nothing here prints or logs them.

Format: one KEY=VALUE a line; blank lines and lines starting with # are ignored; the value is everything after
the first `=`, taken literally (no quotes, no escapes, no expansion).
"""

import os
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEV_ENV = "dev.env"
RUN_ENV = "run.env"
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def var_dir(environ=None):
    """Where `make run` keeps its state: TULPAR_VAR_DIR, else var/ in the checkout (as gateway.settings)."""
    environ = os.environ if environ is None else environ
    return Path(environ.get("TULPAR_VAR_DIR", REPO / "var"))


def parse(text):
    """KEY=VALUE lines to a dict; blanks, comments and lines that are not an assignment are skipped."""
    values = {}
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#") or "=" not in stripped:
            continue
        name, value = line.split("=", 1)
        name = name.strip()
        if _NAME.match(name):
            values[name] = value
    return values


def read(path):
    """The file's assignments, or {} when it does not exist."""
    try:
        return parse(Path(path).read_text())
    except FileNotFoundError:
        return {}


def write(path, values):
    """Write KEY=VALUE lines readable by the owner only (mode 600 from creation, replaced atomically)."""
    path = Path(path)
    for name, value in values.items():
        if not _NAME.match(name) or "\n" in str(value) or "\r" in str(value):
            raise ValueError(f"cannot write {name!r} to {path.name}: bad name or a line break in its value")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            f.write("".join(f"{name}={value}\n" for name, value in values.items()))
        os.chmod(tmp, 0o600)  # O_CREAT's mode does not apply to a leftover file
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def load(environ=None):
    """Fill `environ` (os.environ by default) from var/dev.env, then var/run.env, never replacing a variable
    already set. Returns the names it set (never the values)."""
    environ = os.environ if environ is None else environ
    directory = var_dir(environ)
    loaded = []
    for name in (DEV_ENV, RUN_ENV):
        for key, value in read(directory / name).items():
            if key not in environ:
                environ[key] = value
                loaded.append(key)
    return loaded
