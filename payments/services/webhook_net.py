"""Where a webhook may go (SSRF): https only and public addresses only, unless WEBHOOK_REQUIRE_HTTPS /
WEBHOOK_ALLOW_PRIVATE relax it (tests and `make run`). The name is resolved, every address checked, and the request
sent to the checked address with the Host header and TLS server name kept, so a DNS answer that changes between
the check and the connection (rebinding) cannot send it inside."""

import functools
import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import httpx
from django.conf import settings

from payments.errors_webhooks import WebhookUrlRefused


@dataclass(frozen=True)
class Target:
    url: str  # the URL as given
    connect_url: str  # the same, with the host replaced by the checked address
    host: str  # the Host header
    server_name: str  # the TLS server name
    address: str


def _refused_reason(ip):
    # IPv4 carried inside IPv6 (mapped, 6to4, Teredo's client) is judged as that IPv4: 2002:a9fe:a9fe:: is
    # 169.254.169.254.
    if ip.version == 6:
        ip = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None) or ip
    if ip.version == 6 and ip.is_site_local:
        return "site-local"
    for flag in ("is_private", "is_loopback", "is_link_local", "is_multicast", "is_reserved", "is_unspecified"):
        if getattr(ip, flag):
            return flag.removeprefix("is_").replace("_", "-")
    if not ip.is_global:
        return "not public"
    return None


def url_check(url, *, resolve=True):
    """The URL's form, then (with `resolve`) its addresses: returns the Target to connect to, or raises
    WebhookUrlRefused saying why."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise WebhookUrlRefused("The URL is not valid.") from None
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise WebhookUrlRefused("The URL must be an absolute https URL.")
    if parts.scheme != "https" and settings.WEBHOOK_REQUIRE_HTTPS:
        raise WebhookUrlRefused("The URL must use https.")
    if parts.username or parts.password:
        raise WebhookUrlRefused("The URL must not carry credentials.")
    host = parts.hostname
    port = port or (443 if parts.scheme == "https" else 80)
    if not resolve:
        return None
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise WebhookUrlRefused(f"The host {host!r} does not resolve.") from None
    addresses = sorted({info[4][0] for info in infos})
    if not settings.WEBHOOK_ALLOW_PRIVATE:
        for address in addresses:
            reason = _refused_reason(ipaddress.ip_address(address.split("%")[0]))
            if reason:
                raise WebhookUrlRefused(f"The host {host!r} resolves to a {reason} address ({address}): webhooks "
                                        f"go to public addresses only.")
    address = addresses[0]
    netloc = f"[{address}]" if ":" in address else address
    if parts.port:
        netloc += f":{parts.port}"
    connect_url = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
    host_header = host if not parts.port else f"{host}:{parts.port}"
    if ":" in host:
        host_header = f"[{host}]" + (f":{parts.port}" if parts.port else "")
    return Target(url=url, connect_url=connect_url, host=host_header, server_name=host, address=address)


@functools.lru_cache(maxsize=4)
def _tls_context(cafile):
    return ssl.create_default_context(cafile=cafile)


@dataclass(frozen=True)
class Answer:
    status_code: int | None
    body: str
    headers: dict
    error: str
    duration_ms: int


def post(url, *, body, headers):
    """POST `body` to `url` after url_check, to the checked address; never follows redirects; reads at most
    WEBHOOK_RESPONSE_MAX_BYTES of the answer; gives up after WEBHOOK_TIMEOUT_SECONDS in all."""
    started = time.monotonic()
    try:
        target = url_check(url)
    except WebhookUrlRefused as refused:
        return Answer(None, "", {}, f"refused: {refused.detail}", 0)
    total = settings.WEBHOOK_TIMEOUT_SECONDS
    timeout = httpx.Timeout(total, connect=settings.WEBHOOK_CONNECT_TIMEOUT_SECONDS)
    extensions = {"sni_hostname": target.server_name} if target.connect_url.startswith("https") else {}
    try:
        # The certificate is checked against the URL's host name (sni_hostname), not the address connected to.
        verify = _tls_context(settings.WEBHOOK_CA_FILE or None)
        with httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False, verify=verify) as client:
            # Identity encoding and raw reads: the size cap counts bytes on the wire, not a decompressed bomb.
            request = client.build_request("POST", target.connect_url, content=body,
                                           headers={**headers, "Host": target.host, "Accept-Encoding": "identity"},
                                           extensions=extensions)
            response = client.send(request, stream=True)
            try:
                chunks, size = [], 0
                for chunk in response.iter_raw():
                    chunks.append(chunk)
                    size += len(chunk)
                    if size >= settings.WEBHOOK_RESPONSE_MAX_BYTES or time.monotonic() - started > total:
                        break
            finally:
                response.close()
            text = b"".join(chunks)[:settings.WEBHOOK_RESPONSE_MAX_BYTES].decode("utf-8", "replace")
            return Answer(response.status_code, text, dict(response.headers), "",
                          int((time.monotonic() - started) * 1000))
    except httpx.HTTPError as error:
        return Answer(None, "", {}, f"{type(error).__name__}: {error}"[:300], int((time.monotonic() - started) * 1000))
