"""The request id and transfer id on every log line, in web requests and in Celery tasks.

Both live in context variables: the web middleware sets the request id (the client's X-Request-ID when it is
sensible, else a new one) and echoes it; a task published while one is set carries it in a message header, and the
worker sets it again around the task (or the task's own id when none came). Tasks that handle one transfer set its
id (`transfer_context`). `ContextFilter`, on the log handler, copies both onto every record."""

import contextlib
import contextvars
import logging
import re
import time
import uuid

request_id_var = contextvars.ContextVar("request_id", default=None)
transfer_id_var = contextvars.ContextVar("transfer_id", default=None)

access_log = logging.getLogger("tulpar.http")
HEADER = "X-Request-ID"
# Probes polled every few seconds: logged only when they fail.
QUIET_PATHS = {"/healthz", "/readyz"}
TASK_HEADER = "request_id"
# A client's id is echoed into our logs and response headers: only short, plain tokens are taken as they are.
_ACCEPTABLE = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def request_id_from(value):
    """The client's X-Request-ID when it is a plain token of at most 128 characters, else a new one."""
    if value and _ACCEPTABLE.fullmatch(value):
        return value
    return uuid.uuid4().hex


@contextlib.contextmanager
def transfer_context(transfer_id):
    """Log lines inside carry `transfer_id`."""
    token = transfer_id_var.set(str(transfer_id) if transfer_id else None)
    try:
        yield
    finally:
        transfer_id_var.reset(token)


class ContextFilter(logging.Filter):
    """Puts request_id and transfer_id (None when unknown) on every record the handler emits."""

    def filter(self, record):
        record.request_id = request_id_var.get()
        record.transfer_id = transfer_id_var.get()
        return True


class RequestIdMiddleware:
    """Outermost: sets the request id for everything below, echoes it in the response's X-Request-ID and logs one
    line per request. TransferIdMiddleware, further in, adds the transfer id of a transfer's own URL."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        rid = request_id_from(request.META.get("HTTP_X_REQUEST_ID"))
        request.request_id = rid
        token = request_id_var.set(rid)
        transfer_token = transfer_id_var.set(None)
        started = time.monotonic()
        try:
            response = self.get_response(request)
            # One line per request, carrying both ids. The URL pattern, never the path: status-page paths are
            # bearer tokens.
            match = getattr(request, "resolver_match", None)
            if request.path_info not in QUIET_PATHS or response.status_code != 200:
                access_log.info("http_request method=%s route=%s status=%s duration_ms=%d", request.method,
                                match.route if match is not None else "-", response.status_code,
                                (time.monotonic() - started) * 1000)
        finally:
            transfer_id_var.reset(transfer_token)
            request_id_var.reset(token)
        response[HEADER] = rid
        return response


class TransferIdMiddleware:
    """After URL resolution: a transfer's own URL puts its id on the request's log lines."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        match = request.resolver_match
        if match is not None and match.url_name and match.url_name.startswith("api-transfer-") and "pk" in view_kwargs:
            transfer_id_var.set(str(view_kwargs["pk"]))
        return None


# Celery: the request id travels in a message header; tasks about one transfer say which. ----------------------------

# Tasks whose first argument is a transfer id.
TRANSFER_TASKS = {"payments.transfer_advance", "payments.transfer_refund", "payments.transfer_funding_refuse"}
_task_tokens = {}


def _before_publish(headers=None, **_):
    rid = request_id_var.get()
    if rid and headers is not None and TASK_HEADER not in headers:
        headers[TASK_HEADER] = rid


def _task_prerun(task_id=None, task=None, args=None, kwargs=None, **_):
    rid = getattr(task.request, TASK_HEADER, None) if task is not None else None
    tid = (kwargs or {}).get("transfer_id")
    if tid is None and task is not None and task.name in TRANSFER_TASKS and args:
        tid = args[0]
    _task_tokens[task_id] = (request_id_var.set(rid if isinstance(rid, str) else f"task-{task_id}"),
                             transfer_id_var.set(str(tid) if tid else None))


def _task_postrun(task_id=None, **_):
    tokens = _task_tokens.pop(task_id, None)
    if tokens:
        transfer_id_var.reset(tokens[1])
        request_id_var.reset(tokens[0])


def connect_celery_signals():
    from celery import signals

    signals.before_task_publish.connect(_before_publish, weak=False)
    signals.task_prerun.connect(_task_prerun, weak=False)
    signals.task_postrun.connect(_task_postrun, weak=False)
