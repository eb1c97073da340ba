"""Settings, read from the environment. The README's configuration table lists every variable."""

import os
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

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
    )
}
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
CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                      "LOCATION": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")}}
RATE_LIMIT_NAMESPACE = os.environ.get("RATE_LIMIT_NAMESPACE", "tulpar")
RATE_LIMITS = {
    "api-key": (env_int("RATE_API_PER_MINUTE", 300), 60),  # every API request, per partner key
    "api-auth-failures": (env_int("RATE_API_AUTH_FAILURES_PER_HOUR", 20), 3600),  # bad API keys, per client IP
    "web-quote": (env_int("RATE_WEB_QUOTES_PER_HOUR", 60), 3600),  # quotes from the sender form, per IP
    "web-transfer": (env_int("RATE_WEB_TRANSFERS_PER_HOUR", 20), 3600),  # transfers (PaymentIntents), per IP
}

# Celery: settings for money (RELIABILITY.md): late acks, no prefetch, JSON only, time limits.
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("CELERY_QUEUE", "tulpar")
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
CELERY_BEAT_SCHEDULE = {
    "funding-poll": {"task": "payments.tasks.funding_poll", "schedule": timedelta(seconds=env_int("FUNDING_POLL_SECONDS", 20))},
    "transfers-sweep": {"task": "payments.tasks.transfers_sweep", "schedule": timedelta(seconds=10)},
    "settlement-build": {"task": "onchain.tasks.settlement_build",
                         "schedule": timedelta(milliseconds=env_int("SETTLEMENT_TRACK_MS", 500))},
    "settlement-track": {"task": "onchain.tasks.settlement_track",
                         "schedule": timedelta(milliseconds=env_int("SETTLEMENT_TRACK_MS", 500))},
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
CORRIDOR_DEFAULTS = {
    "RUB": {"fixed_fee": Decimal("50.00"), "percent_fee_bps": 100, "margin_bps": 150,
            "min_amount": Decimal("500.00"), "max_amount": Decimal("500000.00")},
    "USD": {"fixed_fee": Decimal("1.99"), "percent_fee_bps": 100, "margin_bps": 100,
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
CHAIN_CONFIRMATIONS = env_int("CHAIN_CONFIRMATIONS", 2)
PAYOUT_GAS_LIMIT = env_int("PAYOUT_GAS_LIMIT", 100_000)
# Batching: payouts wait at most BATCH_MAX_AGE_MS for company, at most BATCH_MAX_SIZE per transaction.
SETTLEMENT_BATCHING = env_bool("SETTLEMENT_BATCHING", True)
BATCH_MAX_SIZE = env_int("BATCH_MAX_SIZE", 200)
BATCH_MAX_AGE_MS = env_int("BATCH_MAX_AGE_MS", 1000)
BATCH_GAS_BASE = env_int("BATCH_GAS_BASE", 60_000)
BATCH_GAS_PER_PAYOUT = env_int("BATCH_GAS_PER_PAYOUT", 32_000)
# Replacements raise both fee fields by at least this much (geth needs 10%).
FEE_BUMP_PERMILLE = max(env_int("FEE_BUMP_PERMILLE", 125), 101)
PAYOUT_REBROADCAST_AFTER_SECONDS = env_int("PAYOUT_REBROADCAST_AFTER_SECONDS", 15)

LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"kv": {"format": "%(asctime)s level=%(levelname)s logger=%(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "kv"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"web3": {"level": "WARNING"}, "httpx": {"level": "WARNING"}, "stripe": {"level": "WARNING"}},
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
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "tulpar@localhost")
ALERT_EMAIL_FROM = os.environ.get("ALERT_EMAIL_FROM", DEFAULT_FROM_EMAIL)
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends." + (
    "console.EmailBackend" if DEBUG else "smtp.EmailBackend"))
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS")
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT_SECONDS", 10)
CELERY_BEAT_SCHEDULE["alerts-sweep"] = {"task": "onchain.alerts_sweep", "schedule": timedelta(minutes=1),
                                        "options": {"expires": 55}}

# History of values (django-simple-history) on pricing, limits, chains, tokens, wallets, partners and roles: who
# (HistoryRequestMiddleware: the admin user), why (the reason admin asks for) and the old and new values; read-only
# in admin (no revert). Secret fields are excluded from the history tables (each model's `excluded_fields`).
INSTALLED_APPS += ["simple_history"]
MIDDLEWARE += ["simple_history.middleware.HistoryRequestMiddleware"]
SIMPLE_HISTORY_REVERT_DISABLED = True
SIMPLE_HISTORY_HISTORY_CHANGE_REASON_USE_TEXT_FIELD = True
