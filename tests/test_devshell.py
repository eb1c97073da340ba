"""Commands in a `make run` checkout: manage.py and celery read var/dev.env and var/run.env (gateway/dev/envfile.py);
the real environment always wins. No database, broker or chain is touched: only settings are read."""

import ast
import os
import re
import secrets
import stat
import subprocess
import sys

import pytest

from gateway.dev import envfile
from gateway.dev.services import REPO

DEV_ENV = {
    "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
    "STRIPE_SECRET_KEY": "sk_test_" + secrets.token_hex(12),
    "STRIPE_PUBLISHABLE_KEY": "pk_test_" + secrets.token_hex(12),
    "STRIPE_WEBHOOK_SECRET": "whsec_" + secrets.token_hex(16),
    "HOT_WALLET_PRIVATE_KEY": "0x" + secrets.token_hex(32),
    "DEV_ADMIN_PASSWORD": secrets.token_urlsafe(12),
}
RUN_ENV = {
    "REDIS_URL": "redis://127.0.0.1:16399/0",
    "CHAIN_RPC_URL": "http://127.0.0.1:18545",
    "STRIPE_API_BASE": "http://127.0.0.1:18420",
    "STRIPE_JS_URL": "http://127.0.0.1:18420/js.stripe.com/v3/",
    "PUBLIC_BASE_URL": "http://127.0.0.1:18000",
    "DJANGO_DEBUG": "1",
    "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost,devshell.test",
}
# What the child prints: only booleans and non-secret values, never a secret.
PROBE = """
import os
from django.conf import settings
print("secret_key_matches", settings.SECRET_KEY == os.environ["PROBE_SECRET_KEY"])
print("stripe_secret_matches", settings.STRIPE_SECRET_KEY == os.environ["PROBE_STRIPE_SECRET_KEY"])
print("hot_wallet_key_matches", os.environ.get("HOT_WALLET_PRIVATE_KEY") == os.environ["PROBE_HOT_WALLET_KEY"])
print("debug", settings.DEBUG)
print("allowed_hosts", ",".join(settings.ALLOWED_HOSTS))
print("redis_url", settings.REDIS_URL)
print("broker_url", settings.CELERY_BROKER_URL)
print("chain_rpc_url", settings.CHAIN_RPC_URL)
print("stripe_api_base", settings.STRIPE_API_BASE)
print("stripe_js_url", settings.STRIPE_JS_URL)
print("public_base_url", settings.PUBLIC_BASE_URL)
"""


def child_env(var_dir, **extra):
    """This process's environment (tests/bootstrap.py set most of the keys) without any key the var files hold."""
    env = {k: v for k, v in os.environ.items() if k not in DEV_ENV and k not in RUN_ENV}
    env["TULPAR_VAR_DIR"] = str(var_dir)
    env["PROBE_SECRET_KEY"] = DEV_ENV["DJANGO_SECRET_KEY"]
    env["PROBE_STRIPE_SECRET_KEY"] = DEV_ENV["STRIPE_SECRET_KEY"]
    env["PROBE_HOT_WALLET_KEY"] = DEV_ENV["HOT_WALLET_PRIVATE_KEY"]
    env.update(extra)
    return env


def run(args, env):
    return subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)


def probe(env):
    result = run(["manage.py", "shell", "-c", PROBE], env)
    assert result.returncode == 0, result.stderr[-3000:]
    return dict(line.split(" ", 1) for line in result.stdout.splitlines() if " " in line), result


def assert_no_secret_printed(result, values=DEV_ENV):
    output = result.stdout + result.stderr
    for name, value in values.items():
        assert value not in output, f"{name}'s value was printed"


@pytest.fixture
def var_dir(tmp_path):
    envfile.write(tmp_path / "dev.env", DEV_ENV)
    envfile.write(tmp_path / "run.env", RUN_ENV)
    return tmp_path


def test_parse_skips_blanks_comments_and_non_assignments():
    text = "\n# a comment\n   # indented comment\nA=1\n  B = two words \nC=x=y==\nnot an assignment\n9BAD=1\nD=\n"
    assert envfile.parse(text) == {"A": "1", "B": " two words ", "C": "x=y==", "D": ""}


def test_write_is_owner_only_and_round_trips(tmp_path):
    path = tmp_path / "sub" / "x.env"
    envfile.write(path, {"A": "1", "B": "a=b#c"})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert envfile.read(path) == {"A": "1", "B": "a=b#c"}
    path.chmod(0o644)
    envfile.write(path, {"A": "2"})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert envfile.read(path) == {"A": "2"}
    assert [p.name for p in path.parent.iterdir()] == ["x.env"]


def test_write_refuses_a_line_break_without_showing_the_value(tmp_path):
    with pytest.raises(ValueError) as excinfo:
        envfile.write(tmp_path / "x.env", {"A": "top\nsecret"})
    assert "A" in str(excinfo.value) and "secret" not in str(excinfo.value)
    assert not (tmp_path / "x.env").exists()


def test_load_sets_only_what_is_missing_dev_env_first(tmp_path):
    envfile.write(tmp_path / "dev.env", {"A": "dev", "B": "dev"})
    envfile.write(tmp_path / "run.env", {"B": "run", "C": "run", "D": "run"})
    environ = {"TULPAR_VAR_DIR": str(tmp_path), "D": "real"}
    assert sorted(envfile.load(environ)) == ["A", "B", "C"]
    assert environ == {"TULPAR_VAR_DIR": str(tmp_path), "A": "dev", "B": "dev", "C": "run", "D": "real"}


def test_load_without_files_changes_nothing(tmp_path):
    environ = {"TULPAR_VAR_DIR": str(tmp_path / "absent")}
    assert envfile.load(environ) == []
    assert environ == {"TULPAR_VAR_DIR": str(tmp_path / "absent")}


def test_loader_imports_only_the_standard_library():
    """manage.py imports it before Django, and the Docker image (no honcho) runs manage.py and celery."""
    tree = ast.parse((REPO / "gateway" / "dev" / "envfile.py").read_text())
    modules = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    modules |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert modules <= sys.stdlib_module_names, modules - sys.stdlib_module_names


def test_manage_py_reads_secrets_and_runtime_values_from_var(var_dir):
    seen, result = probe(child_env(var_dir))
    assert seen["secret_key_matches"] == "True"
    assert seen["stripe_secret_matches"] == "True"
    assert seen["hot_wallet_key_matches"] == "True"
    assert seen["debug"] == "True"
    assert seen["allowed_hosts"] == RUN_ENV["DJANGO_ALLOWED_HOSTS"]
    assert seen["redis_url"] == seen["broker_url"] == RUN_ENV["REDIS_URL"]
    assert seen["chain_rpc_url"] == RUN_ENV["CHAIN_RPC_URL"]
    assert seen["stripe_api_base"] == RUN_ENV["STRIPE_API_BASE"]
    assert seen["stripe_js_url"] == RUN_ENV["STRIPE_JS_URL"]
    assert seen["public_base_url"] == RUN_ENV["PUBLIC_BASE_URL"]
    assert_no_secret_printed(result)


def test_the_real_environment_wins_over_the_files(var_dir):
    env = child_env(var_dir, DJANGO_SECRET_KEY=secrets.token_urlsafe(50), CHAIN_RPC_URL="http://127.0.0.1:1",
                    DJANGO_DEBUG="0", DJANGO_SECURE_SSL_REDIRECT="0", DJANGO_SECURE_COOKIES="0")
    seen, result = probe(env)
    assert seen["secret_key_matches"] == "False"
    assert seen["chain_rpc_url"] == "http://127.0.0.1:1"
    assert seen["debug"] == "False"
    # What the environment does not set still comes from the files.
    assert seen["stripe_secret_matches"] == "True"
    assert seen["redis_url"] == RUN_ENV["REDIS_URL"]
    assert_no_secret_printed(result, {**DEV_ENV, "real DJANGO_SECRET_KEY": env["DJANGO_SECRET_KEY"]})


def test_without_var_files_manage_py_behaves_as_before(tmp_path):
    result = run(["manage.py", "check"], child_env(tmp_path))
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is not set" in result.stderr

    env = child_env(tmp_path, DJANGO_SECRET_KEY=DEV_ENV["DJANGO_SECRET_KEY"],
                    DJANGO_SECURE_SSL_REDIRECT="0", DJANGO_SECURE_COOKIES="0")
    seen, result = probe(env)
    assert seen["secret_key_matches"] == "True"
    assert seen["stripe_secret_matches"] == "False"
    assert seen["debug"] == "False"
    assert seen["chain_rpc_url"] == "http://127.0.0.1:8545"
    assert seen["stripe_api_base"] == "https://api.stripe.com"
    assert seen["redis_url"] == "redis://127.0.0.1:6379/0"
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_celery_command_line_reads_var_too(var_dir):
    """`python -m celery -A gateway report` prints the settings (secrets masked) without reaching the broker."""
    result = run(["-m", "celery", "-A", "gateway", "report"], child_env(var_dir))
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"CELERY_BROKER_URL: '{RUN_ENV['REDIS_URL']}'" in result.stdout
    assert f"CHAIN_RPC_URL: '{RUN_ENV['CHAIN_RPC_URL']}'" in result.stdout
    assert_no_secret_printed(result)


def test_make_run_records_its_runtime_values_without_secrets(tmp_path, monkeypatch):
    from gateway.dev import run as dev_run

    monkeypatch.setattr(dev_run, "VAR", tmp_path)
    secret_values = dev_run.dev_secrets()
    assert stat.S_IMODE((tmp_path / "dev.env").stat().st_mode) == 0o600
    assert dev_run.dev_secrets() == secret_values == envfile.read(tmp_path / "dev.env")  # generated once

    children_env = {"PATH": "/usr/bin", "HOME": "/root", "PORT": "8001", **secret_values, **RUN_ENV,
                    "DATABASE_URL": "postgres://dev@127.0.0.1:5432/tulpar", "CELERY_QUEUE": "mine"}
    recorded = dev_run.record_runtime(children_env, secret_values)
    assert stat.S_IMODE((tmp_path / "run.env").stat().st_mode) == 0o600
    assert envfile.read(tmp_path / "run.env") == recorded
    assert recorded == {**RUN_ENV, "DATABASE_URL": "postgres://dev@127.0.0.1:5432/tulpar", "CELERY_QUEUE": "mine"}


def test_every_setting_is_recorded_or_deliberately_not():
    """A new environment variable in settings.py must be added to RUNTIME_VARS (or to the exceptions here)."""
    from gateway.dev import run as dev_run

    source = (REPO / "gateway" / "settings.py").read_text()
    names = set(re.findall(r"""(?:os\.environ\.get|os\.environ\[|env_bool|env_int|env_list)\(?\s*["']([A-Z_0-9]+)["']""",
                           source))
    assert {"DJANGO_SECRET_KEY", "CHAIN_RPC_URL", "DATABASE_URL", "SETTLEMENT_TRACK_MS"} <= names  # the pattern works
    in_dev_env = {"DJANGO_SECRET_KEY", "STRIPE_SECRET_KEY", "STRIPE_PUBLISHABLE_KEY", "STRIPE_WEBHOOK_SECRET",
                  "METRICS_TOKEN"}
    not_recorded = {"TULPAR_VAR_DIR": "says where the files are", "TEST_DATABASE_NAME": "tests only",
                    "SMS_HTTP_TOKEN": "a provider's secret: the operator's environment only, never a file we write",
                    "EMAIL_HOST_PASSWORD": "the SMTP password: the operator's environment only, never a file we write",
                    "ALERT_WEBHOOK_URL": "its path is the chat's secret: the operator's environment only"}
    assert names - set(dev_run.RUNTIME_VARS) - in_dev_env - set(not_recorded) == set()
