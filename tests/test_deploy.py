"""Production settings pass Django's deployment checklist; the image runs as a non-root user and checks its health."""

import http.server
import os
import secrets
import socket
import subprocess
import sys
import threading

import pytest

from gateway.dev.services import REPO


def test_check_deploy_is_clean_with_production_settings():
    """`manage.py check --deploy` reports nothing at WARNING level with DEBUG off and a real-length secret."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_SECURE", "DJANGO_DEBUG", "DJANGO_ALLOW_ASYNC"))}
    env.update(DJANGO_SECRET_KEY=secrets.token_urlsafe(50), DJANGO_DEBUG="0")
    result = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


# The image (Dockerfile) read as data: Docker is not available where the suite runs; deploy/image-smoke.sh builds
# and runs it under podman in CI.
DOCKERFILE = REPO / "Dockerfile"


def dockerfile_instructions():
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined and comments dropped."""
    logical, current = [], ""
    for line in DOCKERFILE.read_text().splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        current += line.rstrip().removesuffix("\\") + " "
        if not line.rstrip().endswith("\\"):
            logical.append(current.strip())
            current = ""
    return [(text.split(None, 1)[0].upper(), text.split(None, 1)[1] if " " in text else "") for text in logical]


def final_stage():
    instructions = dockerfile_instructions()
    last_from = max(i for i, (op, _) in enumerate(instructions) if op == "FROM")
    return instructions[last_from:]


def test_the_image_runs_as_a_non_root_user():
    """The final stage switches to a user that is not root (by name or id 0) before the command, and nothing after
    switches back: gunicorn, the worker and beat never run as root."""
    stage = final_stage()
    users = [(i, args.split(":")[0].strip()) for i, (op, args) in enumerate(stage) if op == "USER"]
    assert users, "the image sets no USER: it would run as root"
    index, user = users[-1]
    assert user not in {"root", "0"}, f"the image runs as {user}"
    cmd = max(i for i, (op, _) in enumerate(stage) if op in {"CMD", "ENTRYPOINT"})
    assert index < cmd


def test_the_image_checks_its_health_on_healthz():
    """A HEALTHCHECK runs deploy/healthcheck.py, which the image contains and which asks /healthz; and /healthz is a
    route that answers 200 (with the proxy's header, as the check sends it)."""
    checks = [args for op, args in final_stage() if op == "HEALTHCHECK"]
    assert len(checks) == 1 and "healthcheck.py" in checks[0], checks
    copied = " ".join(args for op, args in final_stage() if op == "COPY")
    assert "deploy/healthcheck.py" in copied
    assert "/healthz" in (REPO / "deploy" / "healthcheck.py").read_text()


def test_healthz_answers_200_behind_the_proxy(client, settings):
    """/healthz answers 200 with a JSON body (and to HEAD) for a request as the proxy forwards it
    (X-Forwarded-Proto: https) with the production redirect to https on, and without the header too (probes are
    answered before the redirect: gateway/health.py), while every other page still redirects."""
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    response = client.get("/healthz", HTTP_X_FORWARDED_PROTO="https")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert client.head("/healthz", HTTP_X_FORWARDED_PROTO="https").status_code == 200  # load balancers' HEAD too
    assert client.get("/healthz").status_code == 200
    assert client.get("/").status_code == 301


class _Recorder(http.server.BaseHTTPRequestHandler):
    status = 200
    seen = []

    def do_GET(self):  # noqa: N802 (http.server's name)
        self.seen.append((self.path, self.headers.get("Host"), self.headers.get("X-Forwarded-Proto")))
        self.send_response(self.status)
        if self.status == 301:
            self.send_header("Location", "https://tulpar.example/healthz")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def recorder(monkeypatch):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("TULPAR_HEALTHCHECK_PORT", str(server.server_address[1]))
    _Recorder.seen, _Recorder.status = [], 200
    yield _Recorder
    server.shutdown()
    server.server_close()


def run_healthcheck(env):
    return subprocess.run([sys.executable, str(REPO / "deploy" / "healthcheck.py")], env=env,
                          capture_output=True, text=True, timeout=30)


def test_healthcheck_sends_an_allowed_host_and_the_proxy_header(recorder):
    """The container check asks /healthz with the first concrete allowed host (a leading-dot wildcard trimmed, `*`
    skipped) and X-Forwarded-Proto https, and passes on 200."""
    env = dict(os.environ, DJANGO_ALLOWED_HOSTS="*, .tulpar.example,localhost")
    result = run_healthcheck(env)
    assert result.returncode == 0, result.stderr
    assert recorder.seen == [("/healthz", "tulpar.example", "https")]


def test_healthcheck_fails_on_a_redirect_or_no_server(recorder):
    """A redirect (the header not trusted) is a failure, not followed to the public name; so is nothing listening."""
    recorder.status = 301
    env = dict(os.environ, DJANGO_ALLOWED_HOSTS="tulpar.example")
    result = run_healthcheck(env)
    assert result.returncode == 1 and "301" in result.stderr
    assert len(recorder.seen) == 1
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free_port = probe.getsockname()[1]
    result = run_healthcheck(dict(env, TULPAR_HEALTHCHECK_PORT=str(free_port)))
    assert result.returncode == 1


def test_build_time_certificates_are_never_committed():
    """deploy/image-smoke.sh copies the machine's extra CAs into deploy/extra-ca/ for the build: git ignores them
    there, and the env files with secrets stay out of the build context."""
    ignored = subprocess.run(["git", "check-ignore", "-q", "deploy/extra-ca/machine.crt"], cwd=REPO, timeout=30)
    assert ignored.returncode == 0
    assert "*.env" in (REPO / ".dockerignore").read_text().split()


def test_the_image_writes_no_access_log_and_keeps_no_build_time_ca():
    """gunicorn's access log writes each request line, and status-page paths are bearer tokens: the image's web runs
    without it (our own request line logs the route pattern). The build machine's extra CAs, trusted for pip, are
    removed again in the same layer, so the running image does not trust a TLS-inspecting proxy."""
    dockerfile = (REPO / "Dockerfile").read_text()
    cmd = next(line for line in dockerfile.splitlines() if line.startswith("CMD "))
    assert "gunicorn" in cmd and "access-log" not in cmd
    assert "rm -f /usr/local/share/ca-certificates/extra/*.crt && update-ca-certificates --fresh" in dockerfile
