"""A real HTTP receiver for outgoing-webhook tests: a threading http.server on 127.0.0.1 that records every request
(headers, body, arrival time) and answers by a script (e.g. fail the first k, then 200)."""

import http.server
import ssl
import threading
import time
from dataclasses import dataclass, field


@dataclass
class Received:
    headers: dict
    body: bytes
    at: float
    status: int


@dataclass
class Receiver:
    # (status, extra headers) for the n-th request (0-based) with these (lower-cased) headers; default 200
    script: callable = None
    requests: list = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: http.server.ThreadingHTTPServer = None
    on_request: callable = None

    tls: bool = False

    @property
    def url(self):
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.server.server_address[1]}/hooks"

    def port(self):
        return self.server.server_address[1]

    def by_id(self):
        out = {}
        for r in self.received():
            out.setdefault(r.headers["webhook-id"], []).append(r)
        return out

    def received(self):
        with self.lock:
            return list(self.requests)


def self_signed(directory, name):
    """A self-signed certificate for DNS name `name` (its own CA): (certfile, keyfile)."""
    from datetime import UTC, datetime, timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(minutes=1))
            .not_valid_after(now + timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    certfile, keyfile = directory / f"{name}.pem", directory / f"{name}.key"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    return str(certfile), str(keyfile)


def fail_first(k):
    """A script failing each message's first `k` attempts (500), then answering 200."""
    counts = {}

    def script(n, headers):
        msg_id = headers.get("webhook-id")
        counts[msg_id] = counts.get(msg_id, 0) + 1
        return (500, {}) if counts[msg_id] <= k else (200, {})

    return script


def start(script=None, on_request=None, tls=None):
    """`tls`: (certfile, keyfile) to serve https."""
    receiver = Receiver(script=script, on_request=on_request, tls=bool(tls))

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's naming)
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            headers = {k.lower(): v for k, v in self.headers.items()}
            with receiver.lock:
                n = len(receiver.requests)
                status, extra = (receiver.script(n, headers) if receiver.script else (200, {}))
                receiver.requests.append(Received(headers, body, time.monotonic(), status))
            if receiver.on_request:
                receiver.on_request(n)
            self.send_response(status)
            for name, value in extra.items():
                self.send_header(name, value)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    receiver.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if tls:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*tls)
        receiver.server.socket = context.wrap_socket(receiver.server.socket, server_side=True)
    threading.Thread(target=receiver.server.serve_forever, daemon=True).start()
    return receiver
