"""Text messages through a provider interface, shaped like Django's e-mail backends: `SMS_BACKEND` names a class with
`send(message) -> provider_id`. Console locally, in-memory in tests, a provider's HTTP API in production.

Callers pass an idempotency key (one per transfer, event and channel, or per one-time code): the HTTP backend sends
it as `Idempotency-Key`, so a retry after a lost answer is one message at a provider that honours it, and callers
record the send before they return so their own retries skip it."""

import logging
import re
import sys
import threading
from dataclasses import dataclass

import httpx
from django.conf import settings
from django.utils.module_loading import import_string

log = logging.getLogger(__name__)

_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")


class SMSError(Exception):
    """The provider did not take the message; `retryable` says whether the same message may be tried again."""

    def __init__(self, message, *, retryable=True):
        super().__init__(message)
        self.retryable = retryable


@dataclass(frozen=True)
class SMSMessage:
    to: str  # E.164
    body: str
    idempotency_key: str

    def __post_init__(self):
        if not _E164.match(self.to or ""):
            raise SMSError("the phone number is not in E.164 form", retryable=False)
        if not self.body or len(self.body) > 1600:
            raise SMSError("the message is empty or longer than 1600 characters", retryable=False)
        if not self.idempotency_key or len(self.idempotency_key) > 255:
            raise SMSError("an idempotency key of 1 to 255 characters is required", retryable=False)


def masked(phone):
    """A phone number as logs may show it: country code and the last two digits."""
    return f"{phone[:3]}…{phone[-2:]}" if phone and len(phone) > 6 else "…"


class ConsoleBackend:
    """Writes the message to stdout, for `make run` (a developer reads one-time codes there, like Django's console
    e-mail backend). Refuses to send outside DEBUG: a one-time code or a claim link in a production log would let
    whoever reads the logs claim a recipient's money."""

    def send(self, message):
        if not settings.DEBUG:
            raise SMSError("the console SMS backend sends nothing outside DEBUG: set SMS_BACKEND to a provider",
                           retryable=False)
        sys.stdout.write(f"SMS to {message.to} [{message.idempotency_key}]: {message.body}\n")
        sys.stdout.flush()
        return f"console-{message.idempotency_key}"


outbox = []
_outbox_lock = threading.Lock()


class LocmemBackend:
    """Keeps messages in `common.sms.outbox` (tests read codes from it); one message per idempotency key, as a
    provider that honours the key would."""

    def send(self, message):
        with _outbox_lock:
            for sent in outbox:
                if sent.idempotency_key == message.idempotency_key:
                    return f"locmem-{message.idempotency_key}"
            outbox.append(message)
        return f"locmem-{message.idempotency_key}"


class HTTPBackend:
    """A provider's JSON HTTP API: POST {to, body} to SMS_HTTP_URL with a bearer token and an Idempotency-Key.
    2xx is sent (the answer's `id` is the provider's id); 4xx other than 408/429 is final; the rest is retried."""

    def send(self, message):
        url = settings.SMS_HTTP_URL
        token = settings.SMS_HTTP_TOKEN
        if not url or not token:
            raise SMSError("SMS_HTTP_URL and SMS_HTTP_TOKEN must be set for the HTTP SMS backend", retryable=False)
        try:
            response = httpx.post(
                url, json={"to": message.to, "body": message.body},
                headers={"Authorization": f"Bearer {token}", "Idempotency-Key": message.idempotency_key},
                timeout=settings.SMS_HTTP_TIMEOUT_S, follow_redirects=False)
        except httpx.HTTPError as exc:
            raise SMSError(f"SMS provider unreachable: {type(exc).__name__}") from None
        if 200 <= response.status_code < 300:
            try:
                provider_id = str((response.json() or {}).get("id") or "")
            except ValueError:
                provider_id = ""
            return provider_id[:100] or f"http-{message.idempotency_key}"
        retryable = response.status_code in (408, 429) or response.status_code >= 500
        raise SMSError(f"SMS provider answered {response.status_code}", retryable=retryable)


def backend():
    return import_string(settings.SMS_BACKEND)()


def send_sms(to, body, *, idempotency_key):
    """Sends one text message; returns the provider's id. Raises SMSError (see `retryable`)."""
    message = SMSMessage(to=to, body=body, idempotency_key=idempotency_key)
    provider_id = backend().send(message)
    log.info("sms sent to %s key=%s", masked(to), idempotency_key)
    return provider_id
