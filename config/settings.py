"""Edgeflags settings, read from the environment (django-environ).

Every variable is listed with a comment in `.env.example`. Two run modes:
embedded (no REDIS_URL: SQLite file, local-memory cache, filesystem Celery broker
under `var/`) and production (DATABASE_URL + REDIS_URL: PostgreSQL and Redis).
"""

from __future__ import annotations

import os
import sys
from datetime import timedelta
from pathlib import Path

import django_stubs_ext
import environ
from csp.constants import NONE, SELF, UNSAFE_INLINE
from django.core.exceptions import ImproperlyConfigured

# Lets admin and DRF generics be subscripted at runtime (ModelAdmin[Model]) for type checks.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()


def env_float(name: str, default: float) -> float:
    """A float setting; django-environ's env.float drops letters, so "1e9" would read as 19."""
    raw = env.str(name, default="")
    try:
        return float(raw) if raw else default
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name}: {raw!r} is not a number") from exc


DEBUG = env.bool("DEBUG", default=False)

# Runtime state of the embedded mode (SQLite file, broker folders, generated secret).
VAR_DIR = Path(env.str("EDGEFLAGS_VAR_DIR", default=str(BASE_DIR / "var"))).resolve()

_DEV_SECRET_KEY = "insecure-dev-only-key-never-use-in-production"  # noqa: S105 - DEBUG only
_GENERATED_SECRET_KEY_FILE = VAR_DIR / "secret_key"
SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY and _GENERATED_SECRET_KEY_FILE.is_file():
    # `make run` generates this file once for the embedded mode (random, mode 0600).
    SECRET_KEY = _GENERATED_SECRET_KEY_FILE.read_text().strip()
if not SECRET_KEY:
    if not DEBUG:
        # A missing key outside DEBUG is a deployment error: refuse to start rather
        # than sign sessions and CSRF tokens with a guessable value.
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set the SECRET_KEY environment variable "
            "(any long random string), or set DEBUG=true for local development. "
            "`make run` generates one in var/secret_key for the embedded mode."
        )
    SECRET_KEY = _DEV_SECRET_KEY

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "knox",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "csp",
    "axes",
    "corsheaders",
    "django_celery_beat",
    "ops",
    "capability_probe",
    "segments",
    "rollout",
    "access",
    "telemetry",
    "backoffice",
    "interop",
    "api",
    "console",
    "demo",
]

MIDDLEWARE = [
    # First, so its durations include every other middleware.
    "ops.request_log.RequestLogMiddleware",
    # Before CommonMiddleware (it may answer first), as django-cors-headers asks.
    "api.cors.CorsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into its 429 page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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
            ],
        },
    },
]

# --- Database ---------------------------------------------------------------------------
if not env.str("DATABASE_URL", default=""):
    # The SQLite file, the broker's messages and the generated secret: the owner's only.
    VAR_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'edgeflags.sqlite3'}")
}
_db = DATABASES["default"]
if _db["ENGINE"] == "django.db.backends.sqlite3":
    # Web, worker and beat share one file: WAL lets readers run beside the writer, and
    # IMMEDIATE transactions take the write lock up front instead of failing mid-way.
    _db.setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
elif _db["ENGINE"] in ("django.db.backends.postgresql", "django.db.backends.postgresql_psycopg2"):
    _db.setdefault("OPTIONS", {}).setdefault("connect_timeout", 3)
    _db["CONN_MAX_AGE"] = env.int("EDGEFLAGS_DB_CONN_MAX_AGE", default=60)
    _db["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: cache, snapshot announcements, event buffer, Celery broker -----------------------
REDIS_URL = env.str("REDIS_URL", default="")
EDGEFLAGS_CACHE_PREFIX = env.str("EDGEFLAGS_CACHE_PREFIX", default="edgeflags")
EMBEDDED_MODE = not REDIS_URL

if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": EDGEFLAGS_CACHE_PREFIX,
            # Fail fast when Redis is away so health checks and requests do not hang.
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "edgeflags",
        }
    }

# --- Celery -----------------------------------------------------------------------------
BROKER_DIR = VAR_DIR / "broker"
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {
        "socket_connect_timeout": 2,
        "visibility_timeout": 3600,
    }
else:
    CELERY_BROKER_URL = "filesystem://localhost//"
    for _folder in ("queue", "control", "processed"):
        (BROKER_DIR / _folder).mkdir(mode=0o700, parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "control_folder": str(BROKER_DIR / "control"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "store_processed": False,
    }
CELERY_TASK_DEFAULT_QUEUE = env.str("EDGEFLAGS_CELERY_QUEUE", default="edgeflags")
CELERY_TASK_IGNORE_RESULT = True
# A task is acknowledged after it ran, so a worker killed mid-task leaves it to be redone.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Tests may run tasks in-process; production never does.
CELERY_TASK_ALWAYS_EAGER = env.bool("EDGEFLAGS_CELERY_EAGER", default=False)

# --- Edgeflags knobs (documented in .env.example and README) ----------------------------------
# How often beat runs housekeeping, and how old its last run may be before /readyz says beat
# is failing (beat is reported but not required: web keeps serving without it).
EDGEFLAGS_HOUSEKEEPING_INTERVAL_S = env.int("EDGEFLAGS_HOUSEKEEPING_INTERVAL_S", default=300)
EDGEFLAGS_BEAT_STALE_AFTER_S = env.int("EDGEFLAGS_BEAT_STALE_AFTER_S", default=900)
# How often each API process checks for a newer snapshot (a change is served within this).
EDGEFLAGS_SNAPSHOT_CHECK_INTERVAL_S = env_float("EDGEFLAGS_SNAPSHOT_CHECK_INTERVAL_S", 0.5)
# The change stream (api/stream, the Procfile's `stream` process): where it listens, the
# public base URL that bulk evaluations advertise in `eventStreams` (empty: no push, clients
# poll), its per-process connection cap and per-address share of it, the heartbeat that keeps
# proxies from closing idle streams, the inactivity after which browsers close theirs, and how
# often it checks for a version an announcement did not bring (an announcement wakes it at once).
EDGEFLAGS_HOST = env.str("EDGEFLAGS_HOST", default="127.0.0.1")
EDGEFLAGS_PORT = env.int("EDGEFLAGS_PORT", default=8000)  # the web process's (demo artifact URLs)
EDGEFLAGS_STREAM_PORT = env.int("EDGEFLAGS_STREAM_PORT", default=8001)
EDGEFLAGS_STREAM_URL = env.str(
    "EDGEFLAGS_STREAM_URL", default=f"http://{EDGEFLAGS_HOST}:{EDGEFLAGS_STREAM_PORT}"
).rstrip("/")
EDGEFLAGS_STREAM_MAX_CONNECTIONS = env.int("EDGEFLAGS_STREAM_MAX_CONNECTIONS", default=10000)
EDGEFLAGS_STREAM_MAX_PER_ADDRESS = env.int("EDGEFLAGS_STREAM_MAX_PER_ADDRESS", default=1000)
EDGEFLAGS_STREAM_HEARTBEAT_S = env_float("EDGEFLAGS_STREAM_HEARTBEAT_S", 15.0)
EDGEFLAGS_STREAM_INACTIVITY_S = env.int("EDGEFLAGS_STREAM_INACTIVITY_S", default=120)
EDGEFLAGS_STREAM_CHECK_INTERVAL_S = env_float("EDGEFLAGS_STREAM_CHECK_INTERVAL_S", 0.25)
# Snapshot versions kept per environment (older ones are deleted by housekeeping).
EDGEFLAGS_SNAPSHOT_VERSIONS_KEPT = env.int("EDGEFLAGS_SNAPSHOT_VERSIONS_KEPT", default=200)
# How often beat retries a publish that failed (bad data written around the services) and
# announces versions Redis missed while it was away; /readyz shows `snapshot` degraded until.
EDGEFLAGS_SNAPSHOT_REPAIR_INTERVAL_S = env.int("EDGEFLAGS_SNAPSHOT_REPAIR_INTERVAL_S", default=60)
# Client API limits: request body size, and requests per second per process (api/rate_limits.py
# says why): per client (key, source address, targeting key) — the limit that bites, on a
# runaway client —, and per (key, address) and per key, abuse ceilings above what one process
# can serve (about 2,500–5,000 evaluate requests/s on 2 cores), since every installed app
# shares one client key. Buckets hold twice the rate as burst.
EDGEFLAGS_MAX_BODY_BYTES = env.int("EDGEFLAGS_MAX_BODY_BYTES", default=64 * 1024)
EDGEFLAGS_RATE_LIMIT_PER_CLIENT = env_float("EDGEFLAGS_RATE_LIMIT_PER_CLIENT", 50.0)
EDGEFLAGS_RATE_LIMIT_PER_ADDRESS = env_float("EDGEFLAGS_RATE_LIMIT_PER_ADDRESS", 20000.0)
EDGEFLAGS_RATE_LIMIT_PER_KEY = env_float("EDGEFLAGS_RATE_LIMIT_PER_KEY", 50000.0)
# Requests with an unknown API key (guesses) per second per source address, burst 10×: over
# it, that address is refused (429) whatever key it sends until the burst refills.
EDGEFLAGS_RATE_LIMIT_UNKNOWN_KEYS_PER_ADDRESS = env_float(
    "EDGEFLAGS_RATE_LIMIT_UNKNOWN_KEYS_PER_ADDRESS", 1.0
)
# Refused requests are logged as one summary line per this many seconds, not one line each.
EDGEFLAGS_RATE_LIMIT_LOG_S = env_float("EDGEFLAGS_RATE_LIMIT_LOG_S", 60.0)
# probe.js's downlink payloads (at most 1 MiB each, three per probe) per key and address.
EDGEFLAGS_NETWORK_DOWNLOADS_PER_ADDRESS = env_float("EDGEFLAGS_NETWORK_DOWNLOADS_PER_ADDRESS", 5.0)
# Reverse proxies in front that append to X-Forwarded-For (0: the peer address is the
# client's); the rate limits and identity caps read the client's address through them.
EDGEFLAGS_NUM_PROXIES = env.int("EDGEFLAGS_NUM_PROXIES", default=0)
# Secret for the keyed hash under which client ids are stored (derived from SECRET_KEY when
# unset; changing it orphans every stored profile).
EDGEFLAGS_PROFILE_SECRET = env.str("EDGEFLAGS_PROFILE_SECRET", default="") or (
    "edgeflags-profiles:" + SECRET_KEY
)
# Secret of the decision tokens (the MAC binding a served segment and arm to a flag and a
# client; derived from SECRET_KEY when unset; changing it refuses every token in flight, so
# clients' events are refused until they evaluate again), and how long a token is accepted
# in events: a day, like the oldest event accepted (clients re-evaluate every 30 s anyway).
EDGEFLAGS_DECISION_TOKEN_SECRET = env.str("EDGEFLAGS_DECISION_TOKEN_SECRET", default="") or (
    "edgeflags-decision-tokens:" + SECRET_KEY
)
EDGEFLAGS_DECISION_TOKEN_TTL_S = env.int("EDGEFLAGS_DECISION_TOKEN_TTL_S", default=24 * 3600)
# Days a capability profile is kept after its last probe (purged daily).
EDGEFLAGS_PROBE_RETENTION_DAYS = env.int("EDGEFLAGS_PROBE_RETENTION_DAYS", default=90)
# Segmentation: rows the model is fitted on (all rows are labelled), the fewest profiles
# worth segmenting, and after how long without a heartbeat a running job counts as dead.
EDGEFLAGS_SEGMENTATION_FIT_SAMPLE = env.int("EDGEFLAGS_SEGMENTATION_FIT_SAMPLE", default=1_000_000)
EDGEFLAGS_SEGMENTATION_MIN_PROFILES = env.int("EDGEFLAGS_SEGMENTATION_MIN_PROFILES", default=200)
EDGEFLAGS_SEGMENTATION_STALE_S = env.int("EDGEFLAGS_SEGMENTATION_STALE_S", default=1800)
# The demo page (/demo/, /demo/compose): off unless asked for (`make run` turns it on); it
# embeds the public client key of the separate `demo` environment.
EDGEFLAGS_DEMO = env.bool("EDGEFLAGS_DEMO", default=False)
# Synthetic capability profiles `load_demo` writes (then segments) on an empty installation.
EDGEFLAGS_DEMO_CLIENTS = env.int("EDGEFLAGS_DEMO_CLIENTS", default=20_000)
# Admin password used when `make run` creates the first admin user (generated when unset).
EDGEFLAGS_ADMIN_PASSWORD = env.str("EDGEFLAGS_ADMIN_PASSWORD", default="")
# Telemetry: Redis key prefix of the event buffer (default: under the cache prefix); how
# often the buffer is folded into the aggregates, in chunks of this many batches per
# transaction; how often each process writes its server-side exposure counts (0: no
# background writer, the caller flushes).
EDGEFLAGS_TELEMETRY_PREFIX = env.str(
    "EDGEFLAGS_TELEMETRY_PREFIX", default=f"{EDGEFLAGS_CACHE_PREFIX}:telemetry"
)
EDGEFLAGS_TELEMETRY_FOLD_INTERVAL_S = env.int("EDGEFLAGS_TELEMETRY_FOLD_INTERVAL_S", default=10)
EDGEFLAGS_TELEMETRY_FOLD_CHUNK = env.int("EDGEFLAGS_TELEMETRY_FOLD_CHUNK", default=200)
EDGEFLAGS_EXPOSURE_FLUSH_S = env_float("EDGEFLAGS_EXPOSURE_FLUSH_S", 5.0)
# A 1,000-event batch is about 125 KB of JSON: the events endpoint has its own body limit.
EDGEFLAGS_EVENTS_MAX_BODY_BYTES = env.int("EDGEFLAGS_EVENTS_MAX_BODY_BYTES", default=1_048_576)
# How long an accepted event id is remembered (a retry within it is a duplicate). Redis keeps
# one key per event: about 90 bytes × events/s × this window.
EDGEFLAGS_EVENT_DEDUPE_S = env.int("EDGEFLAGS_EVENT_DEDUPE_S", default=6 * 3600)
# New guardrail identities (targeting keys whose events count) per hour, per source address
# and per API key. Guardrails need a sample, not every client: a stage's burn-in and minimum
# sample are hundreds of clients per arm, so 50,000 an hour per key is ample, while a script
# minting targeting keys is held to 100 an hour per address (a NAT of 100 devices that all
# report in one hour still fills it). Events of identities over a cap are accepted, not counted.
EDGEFLAGS_IDENTITY_CAP_PER_ADDRESS = env.int("EDGEFLAGS_IDENTITY_CAP_PER_ADDRESS", default=100)
EDGEFLAGS_IDENTITY_CAP_PER_KEY = env.int("EDGEFLAGS_IDENTITY_CAP_PER_KEY", default=50_000)
# Days MetricBucket aggregates are kept (purged hourly with the telemetry bookkeeping): longer
# than any stage dwells, so the controller never loses evidence of a stage still running, and
# the console's charts keep a quarter of history.
EDGEFLAGS_METRIC_RETENTION_DAYS = env.int("EDGEFLAGS_METRIC_RETENTION_DAYS", default=90)
# Drift of on-device models (rollout/guardrails/drift.py, docs/edge-models.md): the reference
# window of a version in a segment, the client observations each window needs, the false-
# trigger budget of one watch over all its epochs, and how long one epoch's window grows.
EDGEFLAGS_DRIFT_REFERENCE_HOURS = env_float("EDGEFLAGS_DRIFT_REFERENCE_HOURS", 24.0)
EDGEFLAGS_DRIFT_MIN_CLIENTS = env.int("EDGEFLAGS_DRIFT_MIN_CLIENTS", default=200)
EDGEFLAGS_DRIFT_ALPHA = env_float("EDGEFLAGS_DRIFT_ALPHA", 0.01)
EDGEFLAGS_DRIFT_EPOCH_HOURS = env_float("EDGEFLAGS_DRIFT_EPOCH_HOURS", 7 * 24.0)
EDGEFLAGS_DRIFT_INTERVAL_S = env.int("EDGEFLAGS_DRIFT_INTERVAL_S", default=3600)
# Retraining requests are POSTed here (empty: none are sent), signed with the secret as
# X-Edgeflags-Signature: sha256=<hex HMAC-SHA256 of the raw body>, each attempt with this
# timeout, retried with doubling backoff from the first delay, given up after the attempts.
EDGEFLAGS_RETRAIN_WEBHOOK_URL = env.str("EDGEFLAGS_RETRAIN_WEBHOOK_URL", default="")
EDGEFLAGS_RETRAIN_WEBHOOK_SECRET = env.str("EDGEFLAGS_RETRAIN_WEBHOOK_SECRET", default="")
EDGEFLAGS_RETRAIN_WEBHOOK_TIMEOUT_S = env_float("EDGEFLAGS_RETRAIN_WEBHOOK_TIMEOUT_S", 5.0)
EDGEFLAGS_RETRAIN_WEBHOOK_ATTEMPTS = env.int("EDGEFLAGS_RETRAIN_WEBHOOK_ATTEMPTS", default=6)
EDGEFLAGS_RETRAIN_WEBHOOK_BACKOFF_S = env_float("EDGEFLAGS_RETRAIN_WEBHOOK_BACKOFF_S", 30.0)

# --- Auth, i18n, static -----------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env.str("EDGEFLAGS_STATIC_ROOT", default=str(VAR_DIR / "static")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Serve straight from the apps' static folders when collectstatic has not run (tests, dev).
WHITENOISE_USE_FINDERS = True

# --- HTTP hardening (README: Security model) --------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
EDGEFLAGS_HTTPS = env.bool("EDGEFLAGS_HTTPS", default=False)
if EDGEFLAGS_HTTPS:
    # Served over TLS (by a proxy that sets X-Forwarded-Proto): cookies never travel in
    # clear, plain http is redirected, and browsers are told to use https only (HSTS).
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("EDGEFLAGS_SSL_REDIRECT", default=True)
    # Health checks and scrapes come from inside, over plain http.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
    SECURE_HSTS_SECONDS = env.int("EDGEFLAGS_HSTS_SECONDS", default=365 * 24 * 3600)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("EDGEFLAGS_HSTS_INCLUDE_SUBDOMAINS", default=True)
    SECURE_HSTS_PRELOAD = env.bool("EDGEFLAGS_HSTS_PRELOAD", default=False)
    if not SECURE_HSTS_PRELOAD:
        # Preloading binds the whole domain into browsers for months: the domain owner's
        # decision (EDGEFLAGS_HSTS_PRELOAD=true), not a default, so its warning is silenced.
        SILENCED_SYSTEM_CHECKS = ["security.W021"]

# CORS (api/cors.py): the client API answers any origin, because client keys are public
# by design and the customer's own site is the normal caller; an environment narrows it
# with its allowed origins (admin), checked with the key. Never the admin, the console or
# the management API (session and token callers): only these paths carry CORS headers.
CORS_URLS_REGEX = (
    r"^/(api/v1/(evaluate|probes|events|privacy|network/ping|network/download)|ofrep/v1/.+)$"
)
CORS_ALLOW_ALL_ORIGINS = True
CORS_ALLOW_CREDENTIALS = False  # keys travel in headers, never in cookies
CORS_ALLOW_METHODS = ("GET", "POST", "OPTIONS")
CORS_ALLOW_HEADERS = ("authorization", "x-api-key", "content-type", "if-none-match")
CORS_EXPOSE_HEADERS = ("ETag", "Retry-After")
CORS_PREFLIGHT_MAX_AGE = 86400

# Content-Security-Policy on every page (admin, console, docs, demo): scripts only from this
# origin's static files, no inline script; inline styles are allowed (the admin and the
# console's charts set style attributes). The JSON APIs carry none (no document to protect,
# and the hot path stays lean).
_STREAM_ORIGIN = ["/".join(EDGEFLAGS_STREAM_URL.split("/")[:3])] if EDGEFLAGS_STREAM_URL else []
CONTENT_SECURITY_POLICY = {
    "EXCLUDE_URL_PREFIXES": ["/api/v1/", "/ofrep/"],
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF, UNSAFE_INLINE],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        # The demo page's edgeflags.js listens to the change stream, on its own port.
        "connect-src": [SELF, *_STREAM_ORIGIN],
        "object-src": [NONE],
        "base-uri": [NONE],
        "frame-ancestors": [NONE],
        "form-action": [SELF],
    },
}

# Admin login throttling (django-axes): after EDGEFLAGS_LOGIN_FAILURE_LIMIT wrong passwords
# for one username from one address, that pair is locked out for the cool-off (a 429), even
# with the right password; a success resets the count. Locking the pair, not the username
# alone, keeps a stranger from locking a release manager out from elsewhere. Unlock early
# with `manage.py axes_reset_username <user>`.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("EDGEFLAGS_LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("EDGEFLAGS_LOGIN_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# Lockouts are operated with axes' commands; its admin pages would be a door around the audit.
AXES_ENABLE_ADMIN = False
AXES_IPWARE_PROXY_COUNT = EDGEFLAGS_NUM_PROXIES or None
AXES_IPWARE_META_PRECEDENCE_ORDER = (
    ["HTTP_X_FORWARDED_FOR", "REMOTE_ADDR"] if EDGEFLAGS_NUM_PROXIES else ["REMOTE_ADDR"]
)

# Management-API tokens (django-rest-knox; access/management_tokens.py): stored as digests,
# expiring after this many days unless created with another lifetime.
EDGEFLAGS_TOKEN_TTL_DAYS = env_float("EDGEFLAGS_TOKEN_TTL_DAYS", 30.0)
REST_KNOX = {"TOKEN_TTL": timedelta(days=EDGEFLAGS_TOKEN_TTL_DAYS), "AUTH_HEADER_PREFIX": "Token"}

# --- REST framework and OpenAPI ----------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "knox.auth.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "EXCEPTION_HANDLER": "api.errors.exception_handler",
    # Staff read; release managers and superusers change (api/permissions.py).
    "DEFAULT_PERMISSION_CLASSES": ["api.permissions.ReadOrOperate"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # JSON only, and strict: a lone surrogate, a control character or nesting past
    # ops.json_input.MAX_JSON_DEPTH is a 400 naming the field, never a row that later
    # fails every publish of its environment (api/parsers.py).
    "DEFAULT_PARSER_CLASSES": ["api.parsers.StrictJSONParser"],
}
# /api/schema/ and /api/docs/: public, or staff only (admin session or management token).
EDGEFLAGS_API_DOCS_PUBLIC = env.bool("EDGEFLAGS_API_DOCS_PUBLIC", default=DEBUG)
SPECTACULAR_SETTINGS = {
    "TITLE": "Edgeflags API",
    "DESCRIPTION": "Adaptive feature flags and progressive rollouts for edge AI features.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": [
        "rest_framework.permissions.AllowAny"
        if EDGEFLAGS_API_DOCS_PUBLIC
        else "rest_framework.permissions.IsAdminUser"
    ],
    "SERVE_AUTHENTICATION": [
        "rest_framework.authentication.SessionAuthentication",
        "knox.auth.TokenAuthentication",
    ],
    # Swagger UI and ReDoc from the drf-spectacular-sidecar package (pinned), not a CDN: the
    # docs work offline and run no third-party script on the admin's origin.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "api.openapi.add_client_paths",
    ],
}

# --- Metrics: Prometheus, scraped at /metrics ------------------------------------------------
# Every process (granian workers, Celery worker and beat) writes its samples to files in one
# directory and /metrics adds them up: prometheus-client's multiprocess mode, which reads this
# environment variable when its first metric is made, so it is set here, before any import of
# ops.metrics. Processes that should be scraped together share it; clear it when the service
# starts (`make run` does).
METRICS_DIR = Path(env.str("PROMETHEUS_MULTIPROC_DIR", default=str(VAR_DIR / "metrics"))).resolve()
try:
    if METRICS_DIR.is_relative_to(VAR_DIR):
        VAR_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)  # the owner's only, as above
    METRICS_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
except OSError as exc:
    raise ImproperlyConfigured(
        f"metrics directory {METRICS_DIR}: {exc.strerror}; set PROMETHEUS_MULTIPROC_DIR "
        "to a writable directory shared by the web and worker processes"
    ) from exc
os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(METRICS_DIR)
# A scraper presents it as `Authorization: Bearer <token>`. Unset outside DEBUG, /metrics is
# refused (403); `make run` generates one in var/metrics_token for the embedded mode.
_GENERATED_METRICS_TOKEN_FILE = VAR_DIR / "metrics_token"
EDGEFLAGS_METRICS_TOKEN = env.str("EDGEFLAGS_METRICS_TOKEN", default="")
if not EDGEFLAGS_METRICS_TOKEN and _GENERATED_METRICS_TOKEN_FILE.is_file():
    EDGEFLAGS_METRICS_TOKEN = _GENERATED_METRICS_TOKEN_FILE.read_text().strip()

# --- Logging: to stderr, one line per record; secrets are never passed to loggers. ---------
LOG_LEVEL = env.str("EDGEFLAGS_LOG_LEVEL", default="INFO")
# One JSON line per API request (route, status, duration; never a path, address or id). Off:
# each process writes request counts once per EDGEFLAGS_REQUEST_LOG_INTERVAL_S instead.
EDGEFLAGS_ACCESS_LOG = env.bool("EDGEFLAGS_ACCESS_LOG", default=False)
EDGEFLAGS_REQUEST_LOG_INTERVAL_S = env_float("EDGEFLAGS_REQUEST_LOG_INTERVAL_S", 60.0)
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "filters": {"api_paths_redacted": {"()": "ops.request_log.ApiPathsRedacted"}},
    "handlers": {
        "stderr": {"class": "logging.StreamHandler", "stream": sys.stderr, "formatter": "plain"}
    },
    "loggers": {
        # Its 4xx lines carry the raw path (a client id in DELETE /api/v1/probes/{clientId}).
        "django.request": {"filters": ["api_paths_redacted"]},
    },
    "root": {"handlers": ["stderr"], "level": LOG_LEVEL},
}
