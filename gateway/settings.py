"""Settings, read from the environment. The README's configuration table lists every variable."""

import os
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured
from kombu import Exchange, Queue

from common.queues import celery_queues

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("TULPAR_VAR_DIR", BASE_DIR / "var"))


def env_bool(name, default=False):
    return os.environ.get(name, str(default)).strip().lower() in {"1", "true", "yes", "on"}


def env_int(name, default):
    return int(os.environ.get(name, default))


def env_list(name, default=""):
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def origin(url):
    """scheme://host[:port] of a URL: what CSP and Permissions-Policy name sources by."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


DEBUG = env_bool("DJANGO_DEBUG", False)
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    raise ImproperlyConfigured("DJANGO_SECRET_KEY is not set (make run generates one in var/dev.env)")
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", "")
# Absolute base of links we hand out (status pages, webhooks pointing at us).
PUBLIC_BASE_URL = os.environ.get("PUBLIC_BASE_URL", "http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_api_key",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "django_fsm",
    "csp",
    "onchain",
    "payments",
    # Last: its ready() undoes what the other apps' imports did to the interpreter (common/apps.py).
    "common",
]

MIDDLEWARE = [
    # Outermost: the request id for every log line below (common/logctx.py); then the probes, answered before host
    # checks, HTTPS redirects, sessions and the locale (gateway/health.py).
    "common.logctx.RequestIdMiddleware",
    "gateway.health.ProbeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Outside WhiteNoise and the body limit, so static files and refusals get the headers too.
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "common.http.PermissionsPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    # Before anything reads the body (CSRF reads form posts); after the locale, so its page is translated.
    "common.http.RequestBodyLimitMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "common.logctx.TransferIdMiddleware",
]

ROOT_URLCONF = "gateway.urls"
WSGI_APPLICATION = "gateway.wsgi.application"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'db.sqlite3'}",
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 0),
        # A kept connection the server closed meanwhile (a restart, a failover) is replaced before the request uses it.
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Parameters bound by the server and a statement prepared on its fifth run on a kept connection: PostgreSQL then
    # skips parsing and planning it (a card transfer's create: 6.4 -> 3.4 ms of the server's CPU, make bench-api).
    # DATABASE_PREPARE_THRESHOLD=0 turns preparing off (a transaction-pooling proxy in front of the server).
    _prepare = env_int("DATABASE_PREPARE_THRESHOLD", 5)
    DATABASES["default"]["OPTIONS"] = {"server_side_binding": True, "prepare_threshold": _prepare or None}
if os.environ.get("TEST_DATABASE_NAME"):
    DATABASES["default"]["TEST"] = {"NAME": os.environ["TEST_DATABASE_NAME"]}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several processes (web, worker, beat) share the file: wait for locks instead of failing.
    DATABASES["default"]["OPTIONS"] = {"timeout": 20, "transaction_mode": "IMMEDIATE"}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("ru", "Русский"), ("ky", "Кыргызча")]
TIME_ZONE = "UTC"
USE_I18N = True
LOCALE_PATHS = [BASE_DIR / "locale"]
# Our corrections to Django's number and date formats (Kyrgyz writes a decimal comma: gateway/formats/ky).
FORMAT_MODULE_PATH = ["gateway.formats"]
# Recipients are in Kyrgyzstan: their status page shows Bishkek time whatever the browser says.
RECIPIENT_TIME_ZONE = os.environ.get("RECIPIENT_TIME_ZONE", "Asia/Bishkek")
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]

# Security headers; production (DJANGO_DEBUG off) also forces HTTPS.
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# same-origin: with no-referrer, browsers send `Origin: null` on form posts and CSRF checks refuse them.
# Status pages (bearer-token URLs) set no-referrer themselves.
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", not DEBUG)
SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("DJANGO_BEHIND_PROXY") else None

# Request bodies (common/http.py, common/parsers.py). Ours are a few kB (forms, partner JSON, Stripe events):
# anything over the limit is refused with 413 before it is read; Django's own form-parsing limit matches it.
REQUEST_BODY_MAX_BYTES = env_int("REQUEST_BODY_MAX_BYTES", 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = REQUEST_BODY_MAX_BYTES
# JSON nested deeper than this is refused with 400 before parsing (our documents nest three levels).
JSON_MAX_DEPTH = env_int("JSON_MAX_DEPTH", 32)
# Paths whose refusals are RFC 9457 problem details; the rest (web forms, admin) get a page.
PROBLEM_DETAILS_PATH_PREFIXES = ["/api/", "/webhooks/"]

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["payments.api.auth.PartnerApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["payments.api.permissions.HasRequiredScopes"],
    "DEFAULT_PARSER_CLASSES": ["common.parsers.JSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.CursorPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "common.errors.problem_exception_handler",
    "DEFAULT_THROTTLE_CLASSES": ["payments.api.auth.PartnerKeyThrottle"],
    "DEFAULT_SCHEMA_CLASS": "common.openapi.ProblemAutoSchema",
    "COERCE_DECIMAL_TO_STRING": True,
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "tulpar partner API",
    "DESCRIPTION": "Quotes and transfers from RUB and USD to KGS, settled in KGST on-chain.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # The schema SDK generators and schemathesis read (docs/api.md, Integration guide): 3.1, request and response
    # components split so always-present response fields are `required`, every error a ProblemDetails.
    "OAS_VERSION": "3.1.0",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {"CurrencyEnum": "payments.models.SOURCE_CURRENCIES"},
    "TAGS": [
        {"name": "quotes", "description": "Prices for a transfer, valid until `expires_at`."},
        {"name": "transfers", "description": "Transfers made from a quote: create, read, list, cancel."},
        {"name": "balances", "description": "Your prefunded balances and their statements."},
    ],
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "common.openapi.finish_schema"],
}

# Rate limits (common/ratelimit.py): scope → (requests, seconds), counted in Redis so every process shares them.
CACHES = {"default": {"BACKEND": "common.cache.KeptClientRedisCache",
                      "LOCATION": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")}}
RATE_LIMIT_NAMESPACE = os.environ.get("RATE_LIMIT_NAMESPACE", "tulpar")
RATE_LIMITS = {
    "api-key": (env_int("RATE_API_PER_MINUTE", 300), 60),  # every API request, per partner key
    "api-auth-failures": (env_int("RATE_API_AUTH_FAILURES_PER_HOUR", 20), 3600),  # bad API keys, per client IP
    "web-quote": (env_int("RATE_WEB_QUOTES_PER_HOUR", 60), 3600),  # quotes from the sender form, per IP
    "web-transfer": (env_int("RATE_WEB_TRANSFERS_PER_HOUR", 20), 3600),  # transfers (PaymentIntents), per IP
    "claim-send": (env_int("RATE_CLAIM_CODES_PER_HOUR", 10), 3600),  # recipient claim: codes asked for, per IP
    "claim-verify": (env_int("RATE_CLAIM_VERIFY_PER_HOUR", 30), 3600),  # recipient claim: codes tried, per IP
}

# Celery: settings for money (RELIABILITY.md): late acks, no prefetch, JSON only, time limits.
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("CELERY_QUEUE", "tulpar")
# Queues (docs/architecture.md "Queues and workers"): settlement, Stripe calls and notifications each have their own,
# so a flood of one kind (webhook retries, a Stripe outage's retries) never waits in front of the others.
CELERY_QUEUES_BY_KIND = celery_queues(CELERY_TASK_DEFAULT_QUEUE)
_SETTLEMENT, _STRIPE, _NOTIFY = (CELERY_QUEUES_BY_KIND[k] for k in ("settlement", "stripe", "notify"))
# A worker started without -Q consumes all of them (one worker locally and in small deployments).
CELERY_TASK_QUEUES = [Queue(name, Exchange(name, type="direct"), routing_key=name)
                      for name in CELERY_QUEUES_BY_KIND.values()]
CELERY_TASK_ROUTES = {
    "onchain.tasks.*": {"queue": _SETTLEMENT},
    "payments.transfer_advance": {"queue": _SETTLEMENT},
    "payments.transfers_advance_due": {"queue": _SETTLEMENT},
    "payments.transfer_refund": {"queue": _STRIPE},
    "payments.transfer_funding_refuse": {"queue": _STRIPE},
    "payments.tasks.funding_poll": {"queue": _STRIPE},
    "payments.tasks.reconcile_card": {"queue": _STRIPE},
    "payments.webhook_deliver": {"queue": _NOTIFY},
    "payments.webhooks_sweep": {"queue": _NOTIFY},
    "payments.notification_send": {"queue": _NOTIFY},
    "payments.notifications_sweep": {"queue": _NOTIFY},
    "payments.tasks.claims_sweep": {"queue": _NOTIFY},
    "onchain.alert_deliver": {"queue": _NOTIFY},
    "onchain.alerts_sweep": {"queue": _NOTIFY},
}
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 120
CELERY_TASK_SOFT_TIME_LIMIT = 100
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# How often beat runs the batcher and the tracker (also what status pages add to their arrival estimate).
SETTLEMENT_TRACK_MS = env_int("SETTLEMENT_TRACK_MS", 500)
# The transfers sweeper re-sends a waiting refund's task at most once per this many seconds (common.ops_state.resend_claim).
SWEEP_RESEND_SECONDS = env_int("SWEEP_RESEND_SECONDS", 60)
CELERY_BEAT_SCHEDULE = {
    "funding-poll": {"task": "payments.tasks.funding_poll", "schedule": timedelta(seconds=env_int("FUNDING_POLL_SECONDS", 20))},
    "transfers-sweep": {"task": "payments.tasks.transfers_sweep", "schedule": timedelta(seconds=10)},
    "settlement-build": {"task": "onchain.tasks.settlement_build",
                         "schedule": timedelta(milliseconds=SETTLEMENT_TRACK_MS)},
    "settlement-track": {"task": "onchain.tasks.settlement_track",
                         "schedule": timedelta(milliseconds=SETTLEMENT_TRACK_MS)},
    "settlement-reconcile": {"task": "onchain.tasks.settlement_reconcile", "schedule": timedelta(seconds=30)},
    "treasury-check": {"task": "onchain.tasks.treasury_check", "schedule": timedelta(seconds=60)},
    # Reconciliation (payments/services/reconciliation.py): the ledger against Stripe, partners' statements, the chain.
    "reconcile-card": {"task": "payments.tasks.reconcile_card", "schedule": timedelta(hours=1)},
    "reconcile-partner-statements": {"task": "payments.tasks.reconcile_partner_statements",
                                     "schedule": timedelta(minutes=15)},
    "reconcile-treasury": {"task": "payments.tasks.reconcile_treasury", "schedule": timedelta(seconds=60)},
    "payouts-escalate": {"task": "payments.tasks.payouts_escalate", "schedule": timedelta(minutes=1)},
    "rates-refresh": {"task": "payments.tasks.rates_refresh",
                      "schedule": timedelta(minutes=env_int("RATES_REFRESH_MINUTES", 30))},
    # /readyz reports the age of the last one (common/tasks.py).
    "beat-heartbeat": {"task": "common.beat_heartbeat", "schedule": timedelta(seconds=10)},
}

# Outgoing webhooks to partners (payments/services/webhooks.py, docs/webhooks.md). In production (DEBUG off) endpoints
# must be https and resolve to public addresses only; `make run` and the tests relax both.
WEBHOOK_REQUIRE_HTTPS = env_bool("WEBHOOK_REQUIRE_HTTPS", not DEBUG)
WEBHOOK_ALLOW_PRIVATE = env_bool("WEBHOOK_ALLOW_PRIVATE", DEBUG)
# Fernet keys (comma-separated, the first encrypts) for the signing secrets at rest; empty: derived from SECRET_KEY.
WEBHOOK_ENCRYPTION_KEYS = os.environ.get("WEBHOOK_ENCRYPTION_KEYS", "")
# Seconds to wait before each retry: 5 s, 5 min, 30 min, 2 h, 5 h, then 10 h seven times (about 3 days in all).
WEBHOOK_RETRY_SCHEDULE = [float(x) for x in env_list("WEBHOOK_RETRY_SCHEDULE",
                                                     "5,300,1800,7200,18000" + ",36000" * 7)]
WEBHOOK_RETRY_JITTER = 0.1  # each wait is drawn within ±10%
WEBHOOK_RETRY_AFTER_MAX_SECONDS = env_int("WEBHOOK_RETRY_AFTER_MAX_SECONDS", 6 * 3600)
# A retry due this soon is scheduled on the task itself (countdown); later ones are found by the sweep.
WEBHOOK_RETRY_INLINE_MAX_SECONDS = 60
WEBHOOK_DISABLE_AFTER_SECONDS = env_int("WEBHOOK_DISABLE_AFTER_SECONDS", 3 * 24 * 3600)
WEBHOOK_SECRET_OVERLAP_SECONDS = env_int("WEBHOOK_SECRET_OVERLAP_SECONDS", 24 * 3600)
WEBHOOK_CONNECT_TIMEOUT_SECONDS = 5
WEBHOOK_TIMEOUT_SECONDS = env_int("WEBHOOK_TIMEOUT_SECONDS", 10)
WEBHOOK_RESPONSE_MAX_BYTES = 4096
WEBHOOK_LEASE_SECONDS = env_int("WEBHOOK_LEASE_SECONDS", 60)
# Certificate authorities trusted for webhook endpoints (a PEM file); empty: the system's.
WEBHOOK_CA_FILE = os.environ.get("WEBHOOK_CA_FILE", "")
CELERY_BEAT_SCHEDULE["webhooks-sweep"] = {"task": "payments.webhooks_sweep",
                                          "schedule": timedelta(seconds=env_int("WEBHOOK_SWEEP_SECONDS", 5))}
# Idempotency-Key records of the partner API (payments/services/idempotency.py): kept at least 24 hours (the IETF
# draft's and Stripe's window), then purged by beat. An in-flight record whose process died is taken over after the
# lease, longer than gunicorn's --timeout (30 s in the Dockerfile) so a live request never loses its key.
IDEMPOTENCY_KEY_TTL_HOURS = max(env_int("IDEMPOTENCY_KEY_TTL_HOURS", 24), 24)
IDEMPOTENCY_LEASE_SECONDS = max(env_int("IDEMPOTENCY_LEASE_SECONDS", 60), 1)
CELERY_BEAT_SCHEDULE["idempotency-purge"] = {"task": "payments.tasks.idempotency_purge",
                                             "schedule": timedelta(minutes=15)}
# Transfers one `POST /api/v1/transfers/bulk` may carry.
BULK_MAX_ITEMS = 100

# Card funding through Stripe (localstripe locally).
STRIPE_SECRET_KEY = os.environ.get("STRIPE_SECRET_KEY", "")
STRIPE_PUBLISHABLE_KEY = os.environ.get("STRIPE_PUBLISHABLE_KEY", "")
STRIPE_WEBHOOK_SECRET = os.environ.get("STRIPE_WEBHOOK_SECRET", "")
STRIPE_API_BASE = os.environ.get("STRIPE_API_BASE", "https://api.stripe.com")
STRIPE_JS_URL = os.environ.get("STRIPE_JS_URL", "https://js.stripe.com/v3/")
# Frames Stripe.js opens (the card element, 3-D Secure); Stripe's CSP guide adds hooks.stripe.com to js.stripe.com.
# A stand-in (localstripe) serves everything from the Stripe.js origin.
STRIPE_FRAME_ORIGINS = env_list("STRIPE_FRAME_ORIGINS", ",".join(
    [origin(STRIPE_JS_URL)] + (["https://hooks.stripe.com"] if origin(STRIPE_JS_URL) == "https://js.stripe.com" else [])))
STRIPE_TIMEOUT_SECONDS = env_int("STRIPE_TIMEOUT_SECONDS", 20)
STRIPE_WEBHOOK_TOLERANCE_SECONDS = 300
# Countries whose cards we refuse before charging (Russian-issued cards do not work abroad).
CARD_COUNTRIES_REFUSED = env_list("CARD_COUNTRIES_REFUSED", "RU")

# Content-Security-Policy on every response (django-csp): scripts from us and Stripe.js only, no inline code, frames
# only Stripe's, never framed ourselves. The API docs (gateway/urls.py) loosen styles and images for their own pages.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, origin(STRIPE_JS_URL)],
        "frame-src": STRIPE_FRAME_ORIGINS,
        "connect-src": [SELF, origin(STRIPE_API_BASE)],
        "img-src": [SELF],
        "style-src": [SELF],
        "font-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}
# Permissions-Policy (common/http.py): browser features no page of ours uses are off; the Payment Request API only
# for us and Stripe.js (wallet buttons).
PERMISSIONS_POLICY = {
    **{feature: [] for feature in (
        "accelerometer", "autoplay", "camera", "display-capture", "encrypted-media", "fullscreen", "geolocation",
        "gyroscope", "magnetometer", "microphone", "midi", "picture-in-picture", "publickey-credentials-get",
        "screen-wake-lock", "sync-xhr", "usb", "xr-spatial-tracking", "browsing-topics")},
    "payment": ["self", origin(STRIPE_JS_URL)],
}
# Card fraud controls (docs/architecture.md "Card funding"; README configuration table).
# The Stripe API version the installed `stripe` SDK pins (`stripe.api_version`): every call sends it, and the webhook
# endpoint must be set to it. `manage.py check` fails when an SDK upgrade changes the pin and this line was not.
STRIPE_API_VERSION = "2026-10-28.endive"
STRIPE_REQUEST_THREE_D_SECURE = os.environ.get("STRIPE_REQUEST_THREE_D_SECURE", "any")  # any | automatic | challenge
CARD_ATTEMPTS_PER_TRANSFER = env_int("CARD_ATTEMPTS_PER_TRANSFER", 3)
# "kind=count/seconds,count/seconds;…" for card (fingerprint), email, phone, wallet and ip (the pay page's client).
VELOCITY_LIMITS = {
    kind.strip(): [tuple(int(n) for n in w.split("/")) for w in windows.split(",") if w.strip()]
    for kind, _, windows in (part.partition("=") for part in os.environ.get("VELOCITY_LIMITS", (
        "card=3/3600,6/86400;email=5/3600,10/86400;phone=5/3600,10/86400;wallet=5/3600,10/86400;ip=10/3600")).split(";"))
    if kind.strip()
}
FIRST_TRANSFERS_COUNT = env_int("FIRST_TRANSFERS_COUNT", 2)
FIRST_TRANSFERS_PAYOUT_DELAY_SECONDS = env_int("FIRST_TRANSFERS_PAYOUT_DELAY_SECONDS", 3600)
LARGE_AMOUNT_KGS = Decimal(os.environ.get("LARGE_AMOUNT_KGS", "100000"))
LARGE_AMOUNT_PAYOUT_DELAY_SECONDS = env_int("LARGE_AMOUNT_PAYOUT_DELAY_SECONDS", 6 * 3600)
# US remittance rule (12 CFR 1005.34): a USD card sender may cancel this long after paying; the payout waits for it.
# Never below the rule's 30 minutes in production; tests and `make run` may shorten it.
US_CANCEL_WINDOW_SECONDS = env_int("US_CANCEL_WINDOW_SECONDS", 1800)
# Our contact, printed on the USD disclosure and receipt (the rule asks for the provider's contact).
SUPPORT_EMAIL = os.environ.get("SUPPORT_EMAIL", "support@tulpar.example")
SUPPORT_PHONE = os.environ.get("SUPPORT_PHONE", "+996 312 000 000")

# Quotes and the transfer lifecycle.
# A rotated partner key keeps working this long beside its successor (payments/services/api_keys.py).
API_KEY_ROTATION_OVERLAP_HOURS = min(max(env_int("API_KEY_ROTATION_OVERLAP_HOURS", 24), 0), 720)
QUOTE_TTL_SECONDS = min(max(env_int("QUOTE_TTL_SECONDS", 600), 60), 3600)
FUNDING_WINDOW_SECONDS = env_int("FUNDING_WINDOW_SECONDS", 1800)
FUNDING_POLL_AFTER_SECONDS = env_int("FUNDING_POLL_AFTER_SECONDS", 10)
# Card reconciliation looks at Stripe objects created in [now − LAG − WINDOW, now − LAG): the lag leaves payments whose
# webhook, poll or refund task is still under way to a later run; the window overlaps runs (items are not duplicated).
RECONCILIATION_WINDOW_HOURS = env_int("RECONCILIATION_WINDOW_HOURS", 48)
RECONCILIATION_LAG_SECONDS = env_int("RECONCILIATION_LAG_SECONDS", 900)
# The sweeper reads a pending refund again this often (its refund.updated webhook may be lost).
REFUND_POLL_SECONDS = 60
# A payout partner's payout not confirmed (or failed) this long after its KGST was final raises one operator alert.
PAYOUT_CONFIRM_ESCALATE_MINUTES = env_int("PAYOUT_CONFIRM_ESCALATE_MINUTES", 60)
# The operations dashboard (admin home) counts as stuck: a funded transfer not settling this long after its funding (or
# its payout delay), a settling one this long after it started paying out (its ETA), a batch not final this long.
DASHBOARD_FUNDED_STUCK_MINUTES = env_int("DASHBOARD_FUNDED_STUCK_MINUTES", 10)
DASHBOARD_SETTLING_ETA_MINUTES = env_int("DASHBOARD_SETTLING_ETA_MINUTES", 15)
DASHBOARD_BATCH_STUCK_MINUTES = env_int("DASHBOARD_BATCH_STUCK_MINUTES", 10)
# Official rates (payments/services/rates.py): RATES_SOURCE is `nbkr` (the live daily XML at NBKR_RATES_URL),
# `recorded` (the bundled recorded file taken as today's; `make run` without NBKR_RATES_URL) or `manual` (operators type
# rates in admin; nothing is fetched). Quotes stop when the rate in effect was set more than RATE_MAX_AGE_HOURS ago.
RATES_SOURCE = os.environ.get("RATES_SOURCE", "nbkr")
if RATES_SOURCE not in {"nbkr", "recorded", "manual"}:
    raise ImproperlyConfigured("RATES_SOURCE must be nbkr, recorded or manual")
NBKR_RATES_URL = os.environ.get("NBKR_RATES_URL", "https://www.nbkr.kg/XML/daily.xml")
NBKR_TIMEOUT_SECONDS = env_int("NBKR_TIMEOUT_SECONDS", 10)
NBKR_RECORDED_FILE = BASE_DIR / "payments" / "data" / "nbkr_daily.xml"
RATE_MAX_AGE_HOURS = env_int("RATE_MAX_AGE_HOURS", 96)
# A manual rate may differ from the last official NBKR rate by at most this fraction (a typo guard no confirmation
# overrides; a real devaluation past it needs the setting raised, deliberately).
MANUAL_RATE_MAX_DEVIATION = Decimal(os.environ.get("MANUAL_RATE_MAX_DEVIATION", "0.25"))
# Per-corridor pricing defaults; seed_rates writes them into the Corridor table, admin edits them.
# Seeded corridors, (source, target) → prices. The recipient receives som (KGS, paid as KGST on BNB Chain) or dollars
# (USD, paid as USDKG on Ethereum): RUB→USD converts at the cross of the NBKR rates, USD→USD not at all (fee only).
CORRIDOR_DEFAULTS = {
    ("RUB", "KGS"): {"fixed_fee": Decimal("50.00"), "percent_fee_bps": 100, "margin_bps": 150,
                     "min_amount": Decimal("500.00"), "max_amount": Decimal("500000.00")},
    ("USD", "KGS"): {"fixed_fee": Decimal("1.99"), "percent_fee_bps": 100, "margin_bps": 100,
                     "min_amount": Decimal("10.00"), "max_amount": Decimal("5000.00")},
    ("RUB", "USD"): {"fixed_fee": Decimal("50.00"), "percent_fee_bps": 100, "margin_bps": 150,
                     "min_amount": Decimal("500.00"), "max_amount": Decimal("500000.00")},
    ("USD", "USD"): {"fixed_fee": Decimal("1.99"), "percent_fee_bps": 100, "margin_bps": 0,
                     "min_amount": Decimal("10.00"), "max_amount": Decimal("5000.00")},
}
# Addresses never paid out to, beside the sanctions lists (A7A5's Ethereum and Tron contracts, PRODUCT.md); compared
# case-insensitively (payments/sanctions/lists.py).
WALLET_DENYLIST = [
    a.lower() for a in env_list("WALLET_DENYLIST", "0x6fa0be17e4bea2fcfa22ef89bf8ac9aab0ab0fc9,TLeVfrdym8RoJreJ23dAGyfJDygRtiWKBZ")
]
SANCTIONS_SAMPLE_FILE = os.environ.get("SANCTIONS_SAMPLE_FILE", str(BASE_DIR / "payments" / "data" / "sanctions_sample.json"))
# A name hit scoring at least this (0..1, docs/compliance.md "Matching") holds the transfer for review; names never
# reject on their own (wallet hits do).
SANCTIONS_HOLD_THRESHOLD = float(os.environ.get("SANCTIONS_HOLD_THRESHOLD", "0.88"))
if not 0.5 <= SANCTIONS_HOLD_THRESHOLD <= 1.0:
    raise ImproperlyConfigured("SANCTIONS_HOLD_THRESHOLD must be between 0.5 and 1.0")

# Chain and settlement.
CHAIN_RPC_URL = os.environ.get("CHAIN_RPC_URL", "http://127.0.0.1:8545")
# Several endpoints, tried in order (failover); CHAIN_RPC_URL alone when unset.
CHAIN_RPC_URLS = env_list("CHAIN_RPC_URLS", "")
CHAIN_RPC_TIMEOUT_SECONDS = env_int("CHAIN_RPC_TIMEOUT_SECONDS", 10)
# newHeads subscription of `manage.py chain_heads` (onchain/heads.py): empty = the first RPC URL as ws(s)://; "off" =
# poll eth_blockNumber instead.
CHAIN_WS_URL = os.environ.get("CHAIN_WS_URL", "")
# Per chain, when settlement runs on several (KGST on BNB Chain, USDKG on Ethereum): `<chain id>=<url>[,<url>…]` joined
# by `;`, e.g. `56=https://bsc.example/KEY;1=https://eth-a.example,https://eth-b.example`. A chain not named here uses
# CHAIN_RPC_URLS / CHAIN_RPC_URL. Environment only: a provider's URL carries its API key.


def _chain_rpcs(raw):
    rpcs = {}
    for part in filter(str.strip, raw.split(";")):
        chain_id, _, urls = part.partition("=")
        urls = [u.strip() for u in urls.split(",") if u.strip()]
        # Name the part by its chain id only: the URLs carry provider keys and would land in a start-up log.
        if not chain_id.strip().isdigit() or not urls or int(chain_id) in rpcs:
            raise ImproperlyConfigured(f"CHAIN_RPCS: each part is <chain id>=<url>[,<url>...], once per chain "
                                       f"(check the part starting {chain_id.strip()[:12]!r})")
        rpcs[int(chain_id)] = urls
    return rpcs


CHAIN_RPCS = _chain_rpcs(os.environ.get("CHAIN_RPCS", ""))
CHAIN_CONFIRMATIONS = env_int("CHAIN_CONFIRMATIONS", 2)
# The local chain's explorer link (`{tx_hash}` filled in) for devchain_bootstrap; real chains set theirs in admin.
DEV_CHAIN_EXPLORER_TX_URL = os.environ.get("DEV_CHAIN_EXPLORER_TX_URL", "")
PAYOUT_GAS_LIMIT = env_int("PAYOUT_GAS_LIMIT", 100_000)
# Batching: payouts wait at most BATCH_MAX_AGE_MS for company, at most BATCH_MAX_SIZE per transaction.
SETTLEMENT_BATCHING = env_bool("SETTLEMENT_BATCHING", True)
BATCH_MAX_SIZE = env_int("BATCH_MAX_SIZE", 200)
BATCH_MAX_AGE_MS = env_int("BATCH_MAX_AGE_MS", 1000)
# ... but only under load: while a wallet has fewer than this many batches not yet mined, a short queue goes out at once.
BATCH_MAX_IN_FLIGHT = env_int("BATCH_MAX_IN_FLIGHT", 4)
BATCH_GAS_BASE = env_int("BATCH_GAS_BASE", 60_000)
BATCH_GAS_PER_PAYOUT = env_int("BATCH_GAS_PER_PAYOUT", 32_000)
# Replacements raise both fee fields by at least this much (geth needs 10%).
FEE_BUMP_PERMILLE = max(env_int("FEE_BUMP_PERMILLE", 125), 101)
PAYOUT_REBROADCAST_AFTER_SECONDS = env_int("PAYOUT_REBROADCAST_AFTER_SECONDS", 15)

LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO")
# json (one object a line, for a log pipeline) or kv (key=value text, for a terminal); json unless DEBUG.
LOG_FORMAT = os.environ.get("LOG_FORMAT", "kv" if DEBUG else "json")
if LOG_FORMAT not in {"json", "kv"}:
    raise ImproperlyConfigured("LOG_FORMAT must be json or kv")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "common.logctx.ContextFilter"}},
    "formatters": {
        "kv": {"format": "%(asctime)s level=%(levelname)s logger=%(name)s request_id=%(request_id)s "
                         "transfer_id=%(transfer_id)s %(message)s"},
        "json": {"()": "pythonjsonlogger.json.JsonFormatter",
                 "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s %(transfer_id)s",
                 "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"}},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["context"]}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    # urllib3 names every URL it opens at DEBUG: RPC URLs with keys, the alert webhook's secret path.
    "loggers": {"web3": {"level": "WARNING"}, "httpx": {"level": "WARNING"}, "stripe": {"level": "WARNING"},
                "urllib3": {"level": "WARNING"}},
}

# Staff in admin (staff/, docs/runbook.md "Staff access"): roles, reasons and four-eyes on money actions, an
# append-only audit trail, two-factor (TOTP) login and a lockout after repeated failed logins (django-axes, counted
# in the database so every web process shares it).
INSTALLED_APPS += ["django_otp", "django_otp.plugins.otp_totp", "axes", "staff"]
MIDDLEWARE += ["django_otp.middleware.OTPMiddleware", "axes.middleware.AxesMiddleware"]
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = env_int("ADMIN_LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("ADMIN_LOCKOUT_MINUTES", 30))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "staff/lockout.html"
AXES_CLIENT_IP_CALLABLE = "staff.security.client_ip"
# Behind our proxy the client's address is the last X-Forwarded-For hop (the one the proxy appended).
STAFF_CLIENT_IP_FROM_PROXY = env_bool("DJANGO_BEHIND_PROXY")
OTP_TOTP_ISSUER = "tulpar"
OTP_ADMIN_HIDE_SENSITIVE_DATA = True

# Text messages (common/sms.py): console locally, in-memory in tests, a provider's JSON HTTP API in production.
SMS_BACKEND = os.environ.get("SMS_BACKEND", "common.sms.ConsoleBackend")
SMS_HTTP_URL = os.environ.get("SMS_HTTP_URL", "")
SMS_HTTP_TOKEN = os.environ.get("SMS_HTTP_TOKEN", "")
SMS_HTTP_TIMEOUT_S = env_int("SMS_HTTP_TIMEOUT_S", 10)

# Recipient claim (payments/services/claims.py): a transfer sent to a phone waits for its recipient to prove the phone
# with a one-time code and name a wallet or payout partner; reminders by SMS, then a full refund to the sender.
CLAIM_CODE_TTL_SECONDS = max(env_int("CLAIM_CODE_TTL_SECONDS", 600), 60)
CLAIM_CODE_MAX_ATTEMPTS = max(env_int("CLAIM_CODE_MAX_ATTEMPTS", 5), 1)  # wrong tries that lock a code
CLAIM_CODES_PER_DAY = max(env_int("CLAIM_CODES_PER_DAY", 5), 1)  # codes one transfer may send in 24 hours
CLAIM_CODE_RESEND_SECONDS = max(env_int("CLAIM_CODE_RESEND_SECONDS", 60), 0)  # between two codes of one transfer
CLAIM_REMINDER_HOURS = tuple(int(h) for h in os.environ.get("CLAIM_REMINDER_HOURS", "24,72").split(",") if h.strip())
CLAIM_SMS_LANGUAGE = os.environ.get("CLAIM_SMS_LANGUAGE", "ky")  # the reminders' language (en, ru or ky)
CLAIM_WINDOW_HOURS = max(env_int("CLAIM_WINDOW_HOURS", 168), 1)  # unclaimed this long after funding: refunded
CELERY_BEAT_SCHEDULE["claims-sweep"] = {"task": "payments.tasks.claims_sweep",
                                        "schedule": timedelta(seconds=env_int("CLAIM_SWEEP_SECONDS", 300))}
# Operator alerts delivered to people (onchain/services/alert_delivery.py, docs/runbook.md): e-mail to ALERT_EMAILS
# and a Slack-compatible `{"text": ...}` POST to ALERT_WEBHOOK_URL (a secret: env only, never logged), once when
# raised and again every ALERT_RESEND_MINUTES while open and unacknowledged (0: no reminders).
ALERT_EMAILS = env_list("ALERT_EMAILS", "")
ALERT_WEBHOOK_URL = os.environ.get("ALERT_WEBHOOK_URL", "")
ALERT_RESEND_MINUTES = env_int("ALERT_RESEND_MINUTES", 60)
ALERT_DELIVERY_ATTEMPTS = max(env_int("ALERT_DELIVERY_ATTEMPTS", 8), 1)
ALERT_WEBHOOK_TIMEOUT_SECONDS = env_int("ALERT_WEBHOOK_TIMEOUT_SECONDS", 10)
# A batch still unmined this long after signing (replacements included) raises a `stuck_batch` alert.
BATCH_STUCK_ALERT_MINUTES = env_int("BATCH_STUCK_ALERT_MINUTES", 15)
ALERT_EMAIL_FROM = os.environ.get("ALERT_EMAIL_FROM", "")  # empty: DEFAULT_FROM_EMAIL
# E-mail (Django's backends): the console locally, SMTP in production; the tests use the in-memory one.
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend" if DEBUG
                               else "django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10)
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "tulpar <noreply@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# Notifications to senders and recipients (payments/services/notifications.py, docs/notifications.md).
# Texts carry status links (whoever has one sees the transfer): outside debug, never to the console backend's stdout.
_SMS_TO_CONSOLE = SMS_BACKEND == "common.sms.ConsoleBackend" and not DEBUG
# The same for e-mail: a console backend outside debug would print every status link.
_EMAIL_TO_CONSOLE = EMAIL_BACKEND == "django.core.mail.backends.console.EmailBackend" and not DEBUG
NOTIFY_CHANNELS = [c for c in env_list("NOTIFY_CHANNELS", "email" if _SMS_TO_CONSOLE else "email,sms")
                   if c in ("email", "sms") and not (c == "email" and _EMAIL_TO_CONSOLE)]
NOTIFY_PARTNER_TRANSFERS = env_bool("NOTIFY_PARTNER_TRANSFERS", True)
# Seconds before each retry of a message whose provider failed in a way worth retrying; then it is failed.
NOTIFY_RETRY_SCHEDULE = [float(x) for x in env_list("NOTIFY_RETRY_SCHEDULE", "10,60,300,1800,7200")]
NOTIFY_RETRY_INLINE_MAX_SECONDS = 60  # sooner retries are scheduled on the task itself, later ones by the sweep
CELERY_BEAT_SCHEDULE["notifications-sweep"] = {"task": "payments.notifications_sweep",
                                               "schedule": timedelta(seconds=env_int("NOTIFY_SWEEP_SECONDS", 30))}
# Health and metrics (gateway/health.py, gateway/metrics.py, docs/runbook.md "Health and metrics").
# /readyz: each check gets READYZ_CHECK_TIMEOUT_SECONDS and the whole answer is bounded by it (checks run together).
READYZ_CHECK_TIMEOUT_SECONDS = float(os.environ.get("READYZ_CHECK_TIMEOUT_SECONDS", "1.5"))
READYZ_CHAIN_HEAD_MAX_AGE_SECONDS = env_int("READYZ_CHAIN_HEAD_MAX_AGE_SECONDS", 120)
READYZ_BEAT_MAX_AGE_SECONDS = env_int("READYZ_BEAT_MAX_AGE_SECONDS", 60)
# A queue deeper than this makes /readyz fail; 0 (the default) reports depths without judging them (a backlog is
# the workers' problem, and taking every web process out of the load balancer for it would make it an outage).
READYZ_QUEUE_MAX_DEPTH = env_int("READYZ_QUEUE_MAX_DEPTH", 0)
# One readiness computation serves every /readyz call of a process for this long (a hammered /readyz is one check).
READYZ_CACHE_SECONDS = float(os.environ.get("READYZ_CACHE_SECONDS", "2"))
# Status pages' arrival estimates share each corridor's recent median for this long (payments/services/eta.py).
ETA_CACHE_SECONDS = env_int("ETA_CACHE_SECONDS", 60)
# Bearer token for Prometheus at /metrics (staff with a verified admin session may read it too); empty: staff only.
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")
# Window of the distributions /metrics computes from the tables (latency, batch sizes, gas per payout).
METRICS_WINDOW_MINUTES = env_int("METRICS_WINDOW_MINUTES", 60)

CELERY_BEAT_SCHEDULE["alerts-sweep"] = {"task": "onchain.alerts_sweep", "schedule": timedelta(minutes=1),
                                        "options": {"expires": 55}}

# History of values (django-simple-history) on pricing, limits, chains, tokens, wallets, partners and roles: who
# (HistoryRequestMiddleware: the admin user), why (the reason admin asks for) and the old and new values; read-only
# in admin (no revert). Secret fields are excluded from the history tables (each model's `excluded_fields`).
INSTALLED_APPS += ["simple_history"]
MIDDLEWARE += ["simple_history.middleware.HistoryRequestMiddleware"]
SIMPLE_HISTORY_REVERT_DISABLED = True
SIMPLE_HISTORY_HISTORY_CHANGE_REASON_USE_TEXT_FIELD = True

# Beat entries expire after one interval, at least 10 s: a busy or stopped worker finds a few pending runs of each,
# not a pile of them, when it comes back. The floor because Celery turns `expires` into beat's clock time and the
# worker compares it with its own: a second of skew between hosts would discard every 500-ms settlement tick.
# Last, so entries added above all get it.
for _entry in CELERY_BEAT_SCHEDULE.values():
    _entry.setdefault("options", {}).setdefault("expires", max(_entry["schedule"].total_seconds(), 10.0))
