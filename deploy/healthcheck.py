"""The image's HEALTHCHECK (Dockerfile): GET /healthz on this container's gunicorn, as the proxy would send it.

Standard library only, no Django import, so a check costs milliseconds. Django answers only for a host in
DJANGO_ALLOWED_HOSTS (else 400), and with DJANGO_BEHIND_PROXY it redirects plain http to https unless
X-Forwarded-Proto says https: so the check sends the first allowed host and that header, and a redirect is a failure
(it would otherwise follow it to the public name)."""

import os
import sys
import urllib.error
import urllib.request


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def allowed_host():
    hosts = [h.strip() for h in os.environ.get("DJANGO_ALLOWED_HOSTS", "").split(",") if h.strip() not in {"", "*"}]
    return hosts[0].lstrip(".") if hosts else "localhost"


def main():
    port = os.environ.get("TULPAR_HEALTHCHECK_PORT", "8000")
    request = urllib.request.Request(f"http://127.0.0.1:{port}/healthz",
                                     headers={"Host": allowed_host(), "X-Forwarded-Proto": "https"})
    try:
        with urllib.request.build_opener(_NoRedirect).open(request, timeout=4) as response:
            status = response.status
    except urllib.error.HTTPError as error:
        status = error.code
    except OSError as error:
        sys.stderr.write(f"healthz: {error}\n")
        return 1
    if status != 200:
        sys.stderr.write(f"healthz: HTTP {status}\n")
    return 0 if status == 200 else 1


if __name__ == "__main__":
    sys.exit(main())
