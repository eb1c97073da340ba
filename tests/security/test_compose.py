"""The deployment file gives each service only what it needs (RELIABILITY.md "hot-wallet key", ASVS 6.4 and 14):
only the services that sign (the worker; the new-heads runner, which builds and fee-bumps on each head) receive
HOT_WALLET_* variables, and they publish no port; and Django trusts X-Forwarded-Proto only where
its port is reachable solely through the reverse proxy that sets that header.

Docker is not available where the suite runs, so the file is read as data (PyYAML, with compose's `<<` merges):
the variables a service gets are its `environment` keys plus those listed in its env files' committed templates
(`<file>.example`: the real files hold secrets and are never committed)."""

import re
from pathlib import Path

import yaml

from gateway.dev.services import REPO

COMPOSE = REPO / "compose.yaml"
SIGNING = "HOT_WALLET_"
# The processes that sign batches: Celery's settlement worker, and `manage.py chain_heads` (onchain/heads.py builds
# and fee-bumps in its own process, so a payout does not wait behind the queue). Nothing else may hold the key.
SIGNERS = {"worker", "heads"}


def services():
    return yaml.safe_load(COMPOSE.read_text())["services"]


def env_files(service):
    declared = service.get("env_file", [])
    declared = [declared] if isinstance(declared, str | dict) else declared
    return [Path(item["path"] if isinstance(item, dict) else item) for item in declared]


def variables(service):
    """Every variable name the service is given: its environment (a mapping or KEY=value list) and, for each env
    file, the names in the committed template beside it."""
    environment = service.get("environment", {})
    names = set(environment) if isinstance(environment, dict) else {item.split("=", 1)[0] for item in environment}
    for path in env_files(service):
        template = REPO / f"{path}.example"
        assert template.exists(), f"{path} has no committed template {template.name} saying what goes in it"
        for line in template.read_text().splitlines():
            line = line.strip().removeprefix("export ").strip()
            if line and not line.startswith("#") and "=" in line:
                names.add(line.split("=", 1)[0].strip())
    return names


def published_ports(service):
    return [str(port.get("published", port) if isinstance(port, dict) else port) for port in service.get("ports", [])]


def test_only_the_signers_get_the_hot_wallet_key():
    """The signers alone get HOT_WALLET_* (key, keystore, password), and publish no port; web, beat, migrate and
    the rest get none, whether through `environment` or an env file."""
    all_services = services()
    found = {name: sorted(v for v in variables(service) if v.startswith(SIGNING)) for name, service in all_services.items()}
    for signer in SIGNERS:
        assert found.pop(signer), f"{signer} has no HOT_WALLET_PRIVATE_KEY to sign with"
        assert published_ports(all_services[signer]) == [], f"{signer} holds the key and must not be reachable"
    assert {name: names for name, names in found.items() if names} == {}


def test_env_files_holding_the_key_are_the_signers_alone():
    """An env file whose template lists a HOT_WALLET_* variable is referenced by the signers and nothing else
    (so adding it to another service later is caught even before a variable is counted)."""
    users = {}
    for name, service in services().items():
        for path in env_files(service):
            users.setdefault(path, set()).add(name)
    signing_files = {path for path in users
                     if any(line.strip().startswith(SIGNING) for line in (REPO / f"{path}.example").read_text().splitlines())}
    assert signing_files, "no env file carries the hot-wallet key"
    assert all(users[path] <= SIGNERS for path in signing_files), users


def _trusts_proxy(service):
    environment = service.get("environment", {})
    environment = environment if isinstance(environment, dict) else dict(i.split("=", 1) for i in environment if "=" in i)
    return str(environment.get("DJANGO_BEHIND_PROXY", "0")).lower() in {"1", "true", "yes", "on"}


def test_forwarded_proto_is_trusted_only_behind_the_proxy():
    """A service with DJANGO_BEHIND_PROXY publishes no port of its own (else anyone could send X-Forwarded-Proto
    straight to it); the published ports belong to a proxy that forwards to web."""
    all_services = services()
    for name, service in all_services.items():
        if _trusts_proxy(service):
            assert not published_ports(service), f"{name} trusts X-Forwarded-Proto but publishes {published_ports(service)}"
    web = all_services["web"]
    if _trusts_proxy(web):
        proxies = [name for name, service in all_services.items() if published_ports(service) and name != "web"]
        assert proxies, "web trusts a proxy, but no proxy is published"
        for name in proxies:
            depends = all_services[name].get("depends_on", {})
            assert "web" in depends, f"{name} publishes ports but does not front web"


def test_the_proxy_overwrites_forwarded_headers_and_limits_bodies():
    """The web port is published through Caddy, whose Caddyfile sets X-Forwarded-Proto itself (not passing a
    client's through) and refuses request bodies over the app's limit before they reach gunicorn."""
    proxy = next((s for s in services().values() if published_ports(s) and "caddy" in str(s.get("image", ""))), None)
    assert proxy is not None, "no Caddy proxy publishes the web port"
    mounted = [v.split(":")[0] for v in proxy.get("volumes", []) if isinstance(v, str) and "Caddyfile" in v]
    assert mounted, "the proxy does not mount a Caddyfile"
    caddyfile = (REPO / mounted[0]).read_text()
    assert "header_up X-Forwarded-Proto {scheme}" in caddyfile
    assert "max_size" in caddyfile and "reverse_proxy web:8000" in caddyfile


PUBLISHED = re.compile(r"^\$\{(?P<var>[A-Z_][A-Z0-9_]*):-(?P<default>\d+)\}:(?P<target>\d+)$")


def test_published_ports_are_configurable_and_leave_8000_free():
    """Every published port is `${VARIABLE:-default}:container`, so an operator (or the smoke test) can move it,
    and no default is 8000, which `make run` takes on a developer's machine."""
    published = [(name, port) for name, service in services().items() for port in published_ports(service)]
    assert published
    for name, port in published:
        match = PUBLISHED.match(port)
        assert match, f"{name} publishes {port!r}, not configurable from the environment"
        assert match["default"] != "8000", f"{name} publishes 8000 by default"


def test_app_services_run_one_image_with_a_health_check_that_fits_each():
    """migrate, web, worker and beat run the same image (built from the Dockerfile); web keeps the image's
    HEALTHCHECK (/healthz); the worker's asks itself for a ping (web's check cannot pass there); migrate and beat turn
    it off; the database and Redis have checks, which the start order waits on."""
    all_services = services()
    app = {name: all_services[name] for name in ("migrate", "web", "worker", "beat")}
    assert len({str(service.get("image")) for service in app.values()}) == 1
    assert all(service.get("build") for service in app.values())
    assert "healthcheck" not in app["web"]
    worker_check = " ".join(app["worker"]["healthcheck"]["test"])
    assert "inspect ping" in worker_check and "-d celery@" in worker_check
    for name in ("migrate", "beat"):
        assert app[name]["healthcheck"]["test"] == ["NONE"], name
    for name in ("db", "redis"):
        assert all_services[name]["healthcheck"]["test"], name
