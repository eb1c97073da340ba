"""The SMS provider interface (common/sms.py): messages are checked before any backend sees them, the in-memory
backend sends once per idempotency key, and the HTTP backend speaks to a provider over real HTTP: bearer token and
Idempotency-Key sent, 2xx taken, 4xx final, 5xx and 429 retryable, an unreachable provider retryable."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from common import sms


@pytest.fixture
def provider():
    """A local HTTP server playing the provider: answers with the status the test queues, records each request."""
    state = {"answers": [], "requests": []}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's name)
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state["requests"].append({"headers": dict(self.headers), "json": json.loads(body)})
            status, payload = state["answers"].pop(0) if state["answers"] else (200, {"id": "msg_1"})
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    state["url"] = f"http://127.0.0.1:{server.server_address[1]}/messages"
    yield state
    server.shutdown()


@pytest.fixture
def http_backend(settings, provider):
    settings.SMS_BACKEND = "common.sms.HTTPBackend"
    settings.SMS_HTTP_URL = provider["url"]
    settings.SMS_HTTP_TOKEN = "sms-test-token"
    settings.SMS_HTTP_TIMEOUT_S = 5
    return provider


@pytest.mark.parametrize("to,body,key", [
    ("996700123456", "hi", "k"),          # no leading +
    ("+99670012", "", "k"),                # empty body
    ("+996700123456", "x" * 1601, "k"),    # too long
    ("+996700123456", "hi", ""),           # no idempotency key
])
def test_a_malformed_message_is_refused_before_any_backend(settings, to, body, key):
    """A bad number, body or key is a final SMSError and nothing reaches the outbox."""
    settings.SMS_BACKEND = "common.sms.LocmemBackend"
    sms.outbox.clear()
    with pytest.raises(sms.SMSError) as raised:
        sms.send_sms(to, body, idempotency_key=key)
    assert raised.value.retryable is False
    assert sms.outbox == []


def test_locmem_sends_once_per_idempotency_key(settings):
    """Two sends with one key are one message, as at a provider that honours the key."""
    settings.SMS_BACKEND = "common.sms.LocmemBackend"
    sms.outbox.clear()
    sms.send_sms("+996700123456", "code 1", idempotency_key="otp:1")
    sms.send_sms("+996700123456", "code 1", idempotency_key="otp:1")
    sms.send_sms("+996700123456", "code 2", idempotency_key="otp:2")
    assert [m.body for m in sms.outbox] == ["code 1", "code 2"]


def test_http_backend_sends_token_and_key_and_returns_the_provider_id(http_backend):
    """The provider gets the bearer token, the Idempotency-Key and {to, body}; its id comes back."""
    assert sms.send_sms("+996700123456", "hello", idempotency_key="t1:funded:sms") == "msg_1"
    request = http_backend["requests"][0]
    assert request["headers"]["Authorization"] == "Bearer sms-test-token"
    assert request["headers"]["Idempotency-Key"] == "t1:funded:sms"
    assert request["json"] == {"to": "+996700123456", "body": "hello"}


@pytest.mark.parametrize("status,retryable", [(400, False), (401, False), (408, True), (429, True), (500, True),
                                              (503, True)])
def test_http_backend_says_whether_a_refusal_may_be_retried(http_backend, status, retryable):
    http_backend["answers"].append((status, {"error": "x"}))
    with pytest.raises(sms.SMSError) as raised:
        sms.send_sms("+996700123456", "hello", idempotency_key="k")
    assert raised.value.retryable is retryable


def test_an_unreachable_provider_is_retryable(settings):
    settings.SMS_BACKEND = "common.sms.HTTPBackend"
    settings.SMS_HTTP_URL = "http://127.0.0.1:9/messages"  # discard port: nothing listens
    settings.SMS_HTTP_TOKEN = "t"
    with pytest.raises(sms.SMSError) as raised:
        sms.send_sms("+996700123456", "hello", idempotency_key="k")
    assert raised.value.retryable is True


def test_logs_show_only_a_masked_number(settings, caplog):
    """A log line names the country code and last two digits, never the whole number or the body."""
    settings.SMS_BACKEND = "common.sms.LocmemBackend"
    with caplog.at_level("INFO", logger="common.sms"):
        sms.send_sms("+996700123456", "your code is 123456", idempotency_key="otp:9")
    assert "+996700123456" not in caplog.text and "123456" not in caplog.text.replace("otp:9", "")
    assert "+99…56" in caplog.text


def test_the_console_backend_sends_nothing_outside_debug(settings, capsys):
    """In production a code or a claim link written to stdout would reach the logs: the console backend refuses (a
    final error, nothing written); under DEBUG (`make run`) it writes the message."""
    settings.SMS_BACKEND = "common.sms.ConsoleBackend"
    settings.DEBUG = False
    with pytest.raises(sms.SMSError) as raised:
        sms.send_sms("+996700123456", "your code is 482913", idempotency_key="otp:c")
    assert raised.value.retryable is False
    assert "482913" not in capsys.readouterr().out
    settings.DEBUG = True
    sms.send_sms("+996700123456", "your code is 482913", idempotency_key="otp:d")
    assert "482913" in capsys.readouterr().out
