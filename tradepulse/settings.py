"""TradePulse settings: one file, every production difference an environment variable.

Zero configuration runs the embedded mode (SQLite under var/, in-process Celery broker and
worker, in-memory channel layer). Production sets DATABASE_URL, REDIS_URL, SECRET_KEY and
DEBUG=0 (see docker-compose.yml). Every variable is listed in README.md.
"""
from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path

import dj_database_url
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

from csp.constants import NONCE, NONE, SELF, UNSAFE_INLINE

from tradepulse.core.env import env_bool, env_choice, env_int, env_json, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"
VAR_DIR.mkdir(exist_ok=True)

# --- Core -------------------------------------------------------------------------------------
DEBUG = env_bool("DEBUG", True)
_DEV_SECRET_KEY = "insecure-dev-key-do-not-use-in-production"  # noqa: S105 - dev only, flagged in UI
SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY: must be set when DEBUG is off")
    SECRET_KEY = _DEV_SECRET_KEY
elif not DEBUG and (len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5 or SECRET_KEY == _DEV_SECRET_KEY
                    or SECRET_KEY.startswith("django-insecure-")):
    # The same bar as Django's deploy check (security.W009), enforced: sessions, CSRF tokens and
    # password-reset links are only as strong as this key.
    raise ImproperlyConfigured(
        f"SECRET_KEY: too weak for DEBUG=0 ({len(SECRET_KEY)} characters, {len(set(SECRET_KEY))} distinct): use at "
        "least 50 random characters, e.g. python -c 'import secrets; print(secrets.token_urlsafe(50))'")
USING_DEV_SECRET_KEY = SECRET_KEY == _DEV_SECRET_KEY

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
TESTING = "pytest" in sys.modules or env_bool("TRADEPULSE_TESTING", False)

INSTALLED_APPS = [
    "daphne",  # must precede staticfiles: its runserver serves ASGI
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "knox",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "guardian",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_celery_beat",
    "channels",
    "csp",
    "apps.accounts",
    "apps.audit",
    "apps.marketdata",
    "apps.strategies",
    "apps.backtests",
    "apps.training",
    "apps.graduation",
    "apps.risk",
    "apps.trading",
    "apps.alerts",
    "apps.ops",
    "apps.dashboard",
]

MIDDLEWARE = [
    "apps.audit.middleware.RequestIdMiddleware",
    "apps.dashboard.metrics.RequestMetricsMiddleware",  # inside the request id: 5xx rows carry it
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "apps.accounts.middleware.UserContextMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "tradepulse.urls"
ASGI_APPLICATION = "tradepulse.asgi.application"

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
                "apps.dashboard.context_processors.platform",
            ],
        },
    },
]

# --- Database ---------------------------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'tradepulse.sqlite3'}")
try:
    _db = dj_database_url.parse(DATABASE_URL, conn_max_age=0, conn_health_checks=True)
except ValueError as exc:
    raise ImproperlyConfigured(f"DATABASE_URL: {exc}") from None
if _db["ENGINE"] == "django.db.backends.sqlite3":
    # WAL + IMMEDIATE let the embedded worker threads and the web server write side by side.
    _db["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
DATABASES = {"default": _db}
# knox's own AuthToken is swapped for accounts.ApiToken; its migrations would still create an
# unused table (that even blocks test-database flushes), so they are switched off.
MIGRATION_MODULES = {"knox": None}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis, cache, channels, Celery -------------------------------------------------------------
REDIS_URL = env_str("REDIS_URL")
EMBEDDED = REDIS_URL is None  # one process: in-memory broker, worker threads, channel layer

if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
    # Each websocket consumer waits on a blocking read of channels_redis (BZPOPMIN, 5 s). Since
    # redis-py 8, sockets time out after 5 s by default, which killed every idle connection with
    # 1011 after ~5 s. The socket timeout must exceed the blocking read; it stays finite so a
    # Redis that stops answering is still noticed.
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [{"address": REDIS_URL, "socket_timeout": 15, "socket_connect_timeout": 5,
                           "health_check_interval": 30}],
                "prefix": env_str("TRADEPULSE_CHANNEL_PREFIX", "asgi"),
            },
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = None  # results live in our Job rows, not in the broker
CELERY_TASK_ALWAYS_EAGER = env_bool("TRADEPULSE_CELERY_EAGER", False)
CELERY_TASK_EAGER_PROPAGATES = True
# Crash policy. A task is acknowledged when it ends, so a worker killed mid-way leaves its
# message unacknowledged and the broker hands it out again; tasks claim their Job row with a
# conditional UPDATE, so a second delivery of a live job does nothing. A pool child that dies is
# rejected back to the queue at once (reject_on_worker_lost). A whole worker lost with its
# messages is seen by the Job heartbeat: beat re-queues or fails its jobs within
# TRADEPULSE_JOB_STALE_AFTER_S (+ the recovery period); the broker's own redelivery of an
# unacknowledged Redis message (visibility_timeout) is only the backstop for a message that died
# before its job was claimed. It must exceed every countdown/ETA we use (none today).
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env_int("TRADEPULSE_BROKER_VISIBILITY_TIMEOUT_S", 900, minimum=60),
}
TRADEPULSE_JOB_HEARTBEAT_S = env_int("TRADEPULSE_JOB_HEARTBEAT_S", 10, minimum=1)
TRADEPULSE_JOB_STALE_AFTER_S = env_int("TRADEPULSE_JOB_STALE_AFTER_S", 45, minimum=2)
TRADEPULSE_JOB_RECOVER_EVERY_S = env_int("TRADEPULSE_JOB_RECOVER_EVERY_S", 15, minimum=1)
# `manage.py serve`: seconds a stop (Ctrl-C, SIGTERM) waits for running jobs to end as interrupted
# before it kills what is left.
TRADEPULSE_STOP_GRACE_S = env_int("TRADEPULSE_STOP_GRACE_S", 10, minimum=1)
# Seconds between passes of the trading loop's beat (each acts on deployments whose bar has closed).
TRADEPULSE_TRADING_TICK_S = env_int("TRADEPULSE_TRADING_TICK_S", 10, minimum=1)
if TRADEPULSE_JOB_STALE_AFTER_S < 2 * TRADEPULSE_JOB_HEARTBEAT_S:
    raise ImproperlyConfigured("TRADEPULSE_JOB_STALE_AFTER_S must be at least twice TRADEPULSE_JOB_HEARTBEAT_S "
                               "(else live jobs look dead)")
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {
    "marketdata.*": {"queue": "downloads"},
    "training.*": {"queue": "training"},
    "trading.*": {"queue": "trading"},
}
CELERY_WORKER_QUEUES = ("downloads", "training", "trading", "default")
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = "UTC"

# --- Auth, sessions, two-factor, throttling ---------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # refuses locked-out logins before checking passwords
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "dashboard:login"
LOGIN_REDIRECT_URL = "dashboard:home"
LOGOUT_REDIRECT_URL = "dashboard:login"

SESSION_IDLE_MINUTES = env_int("TRADEPULSE_SESSION_IDLE_MINUTES", 60, minimum=1)
SESSION_COOKIE_AGE = SESSION_IDLE_MINUTES * 60
SESSION_SAVE_EVERY_REQUEST = True  # the age counts from the last request: an idle timeout

AXES_FAILURE_LIMIT = env_int("TRADEPULSE_LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("TRADEPULSE_LOGIN_COOLOFF_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
# ...and an address is locked out after this many failures across all usernames (spraying).
LOGIN_IP_FAILURE_LIMIT = env_int("TRADEPULSE_LOGIN_IP_FAILURE_LIMIT", 20, minimum=1)
AXES_HANDLER = "apps.accounts.throttling.LoginThrottleHandler"
AXES_CLIENT_IP_CALLABLE = "apps.audit.middleware.client_ip"  # one rule for the client's address
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "apps.accounts.views.lockout_response"
AXES_VERBOSE = False

REQUIRE_2FA_FOR_STAFF = env_bool("TRADEPULSE_REQUIRE_2FA_FOR_STAFF", False)
OTP_TOTP_ISSUER = "TradePulse"

GUARDIAN_RAISE_403 = False
ANONYMOUS_USER_NAME = None  # no guardian anonymous user: anonymous sees nothing

# --- API --------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first: its WWW-Authenticate header makes unauthenticated calls a 401, not a 403.
        "tradepulse.core.auth.ContextTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "tradepulse.core.pagination.Pagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": [
        "tradepulse.core.filters.ScopedFilterBackend",
        "rest_framework.filters.OrderingFilter",
        "rest_framework.filters.SearchFilter",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "tradepulse.core.api.exception_handler",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer", "rest_framework.renderers.BrowsableAPIRenderer"],
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
# Every API token expires: the default lifetime, and the most anyone may ask for. Tokens cannot
# create tokens (apps.accounts.services.token_create).
API_TOKEN_MAX_DAYS = env_int("TRADEPULSE_API_TOKEN_MAX_DAYS", 365, minimum=1)
_API_TOKEN_TTL_DAYS = env_int("TRADEPULSE_API_TOKEN_TTL_DAYS", 30, minimum=1)
if _API_TOKEN_TTL_DAYS > API_TOKEN_MAX_DAYS:
    raise ImproperlyConfigured(f"TRADEPULSE_API_TOKEN_TTL_DAYS: {_API_TOKEN_TTL_DAYS} is above "
                               f"TRADEPULSE_API_TOKEN_MAX_DAYS ({API_TOKEN_MAX_DAYS})")
REST_KNOX = {
    "TOKEN_TTL": timedelta(days=_API_TOKEN_TTL_DAYS),
    "TOKEN_MODEL": "accounts.ApiToken",
    "AUTO_REFRESH": False,
}
KNOX_TOKEN_MODEL = "accounts.ApiToken"
SPECTACULAR_SETTINGS = {
    "TITLE": "TradePulse API",
    "DESCRIPTION": "Market data, strategies, backtests, training, graduation, risk, trading, alerts and audit.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # several models have a "state" choice field; name each enum after its model's choices
    "ENUM_NAME_OVERRIDES": {"DeploymentStateEnum": "apps.trading.models.DeploymentState",
                            "JobStateEnum": "tradepulse.core.jobs.JobState",
                            "AlertSeverityEnum": "apps.alerts.models.Severity",
                            "AlertChannelKindEnum": "apps.alerts.models.ChannelKind",
                            "StageEnum": "apps.strategies.models.Stage",
                            "DemoteToStageEnum": ["discovery", "validation", "paper", "testnet"]},
}

# --- Internationalisation and time --------------------------------------------------------------
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English")]
TIME_ZONE = env_str("TIME_ZONE", "UTC")  # default display zone; storage is always UTC
USE_I18N = True
USE_TZ = True

# --- Static files -----------------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# plotly.js ships inside the plotly Python package: served from there, never from a CDN.
import plotly as _plotly  # noqa: E402

STATICFILES_DIRS = [BASE_DIR / "static", ("vendor/plotly", Path(_plotly.__file__).parent / "package_data")]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG or TESTING
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = DEBUG or TESTING

# --- Security (production) ----------------------------------------------------------------------
HTTPS = env_bool("TRADEPULSE_HTTPS", not DEBUG)
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_SSL_REDIRECT = HTTPS and env_bool("TRADEPULSE_SSL_REDIRECT", True)
SECURE_HSTS_SECONDS = env_int("TRADEPULSE_HSTS_SECONDS", 31536000 if HTTPS else 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = HTTPS
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("TRADEPULSE_BEHIND_PROXY", False) else None
SECURE_REDIRECT_EXEMPT = [r"^health/"]
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
# Scripts only from our own origin, or inline with this response's nonce (`<script
# nonce="{{ request.csp_nonce }}">`; tests/dashboard/test_csp.py checks every template).
# Styles allow inline: plotly and the admin set style attributes, which cannot carry a nonce.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF, UNSAFE_INLINE],
        "img-src": [SELF, "data:"],
        "font-src": [SELF, "data:"],
        "connect-src": [SELF],  # CSP3: 'self' covers ws:/wss: to the same host
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}
TRUST_X_FORWARDED_FOR = env_bool("TRADEPULSE_BEHIND_PROXY", False)
# How many reverse proxies append to X-Forwarded-For: the client is that many entries from the
# right (apps.audit.middleware.client_ip); entries further left are the client's own claims.
PROXY_HOPS = env_int("TRADEPULSE_PROXY_HOPS", 1, minimum=1)

# --- TradePulse -------------------------------------------------------------------------------
# exchange id -> ccxt config merged into every client (e.g. {"binance": {"urls": {...}}})
CCXT_OVERRIDES = env_json("TRADEPULSE_CCXT_OVERRIDES", {}, expect=dict)
ADMIN_PASSWORD = env_str("TRADEPULSE_ADMIN_PASSWORD")
# Fernet keys for secrets at rest (exchange API keys, webhook URLs), newest first; older keys
# still decrypt until `manage.py rotate_encryption_key` has re-encrypted everything.
# Development derives one stable key from SECRET_KEY (tradepulse/core/crypto.py); production
# must set them.
ENCRYPTION_KEYS = env_list("TRADEPULSE_ENCRYPTION_KEYS", [])
if not ENCRYPTION_KEYS and not DEBUG:
    raise ImproperlyConfigured("TRADEPULSE_ENCRYPTION_KEYS: must be set when DEBUG is off (comma-separated Fernet "
                               "keys, newest first; make one with `python -c \"from cryptography.fernet import "
                               "Fernet; print(Fernet.generate_key().decode())\"`)")
for _index, _key in enumerate(ENCRYPTION_KEYS):
    try:
        Fernet(_key)
    except ValueError:
        raise ImproperlyConfigured(f"TRADEPULSE_ENCRYPTION_KEYS: key #{_index + 1} is not a Fernet key (32 url-safe "
                                   "base64-encoded bytes)") from None

# --- Alerts and operations (apps/alerts, apps/dashboard/health.py) ------------------------------
# Failed deliveries are retried after base × 2^(attempt−1) seconds, capped, up to MAX_ATTEMPTS tries.
TRADEPULSE_ALERT_DELIVERY_MAX_ATTEMPTS = env_int("TRADEPULSE_ALERT_DELIVERY_MAX_ATTEMPTS", 6, minimum=1)
TRADEPULSE_ALERT_DELIVERY_BACKOFF_S = env_int("TRADEPULSE_ALERT_DELIVERY_BACKOFF_S", 30, minimum=1)
TRADEPULSE_ALERT_DELIVERY_BACKOFF_MAX_S = env_int("TRADEPULSE_ALERT_DELIVERY_BACKOFF_MAX_S", 3600, minimum=1)
TRADEPULSE_ALERT_WEBHOOK_TIMEOUT_S = env_int("TRADEPULSE_ALERT_WEBHOOK_TIMEOUT_S", 10, minimum=1)
TRADEPULSE_TELEGRAM_API_URL = env_str("TRADEPULSE_TELEGRAM_API_URL", "https://api.telegram.org")
# Webhooks to private/loopback addresses are refused (the server would post into its own network).
TRADEPULSE_WEBHOOK_ALLOW_PRIVATE = env_bool("TRADEPULSE_WEBHOOK_ALLOW_PRIVATE", False)
# Under tests nothing may reach the internet: webhooks (and Telegram) only to a local receiver.
TRADEPULSE_WEBHOOK_LOOPBACK_ONLY = TESTING
# Public address of the dashboard, for links in alert messages ("" = no link).
TRADEPULSE_BASE_URL = env_str("TRADEPULSE_BASE_URL", "")
# /metrics: operators signed in, or `Authorization: Bearer <this token>` for a Prometheus scraper.
TRADEPULSE_METRICS_TOKEN = env_str("TRADEPULSE_METRICS_TOKEN", "")
# Backups (apps/ops): where, and how long daily (scheduled) backups are kept; the newest KEEP_MIN
# scheduled backups are kept whatever their age, manual ones until deleted.
TRADEPULSE_BACKUP_DIR = env_str("TRADEPULSE_BACKUP_DIR", str(VAR_DIR / "backups"))
TRADEPULSE_BACKUP_KEEP_DAYS = env_int("TRADEPULSE_BACKUP_KEEP_DAYS", 14, minimum=1)
TRADEPULSE_BACKUP_KEEP_MIN = env_int("TRADEPULSE_BACKUP_KEEP_MIN", 3, minimum=1)
TRADEPULSE_BACKUP_HOUR_UTC = env_int("TRADEPULSE_BACKUP_HOUR_UTC", 2, minimum=0)
EMAIL_BACKEND = env_str("TRADEPULSE_EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend" if not DEBUG
                        else "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "TradePulse <alerts@localhost>")

# --- Logging ----------------------------------------------------------------------------------
LOG_FORMAT = env_choice("TRADEPULSE_LOG_FORMAT", "text" if DEBUG else "json", ("text", "json"))
LOG_LEVEL = env_choice("LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR"))
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "context": {"()": "tradepulse.core.logging.ContextFilter"},
        "redact": {"()": "tradepulse.core.logging.RedactSecretsFilter"},
    },
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)-7s [%(request_id)s] %(name)s: %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s %(client_request_id)s %(actor)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["context", "redact"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        "ccxt": {"level": "WARNING"},
        "celery": {"level": "INFO"},
        "daphne": {"level": "WARNING"},
        "optuna": {"level": "WARNING"},
        "axes": {"level": "WARNING"},
        "urllib3": {"level": "WARNING"},  # its DEBUG lines carry request paths (webhook secrets)
    },
}

from celery.schedules import crontab as _crontab  # noqa: E402

CELERY_BEAT_SCHEDULE = {
    "publish-system-health": {"task": "dashboard.publish_health", "schedule": 30.0},
    "recover-lost-jobs": {"task": "jobs.recover_lost", "schedule": float(TRADEPULSE_JOB_RECOVER_EVERY_S)},
    "reconcile-trading": {"task": "trading.reconcile_all", "schedule": 300.0},
    "deliver-due-alerts": {"task": "alerts.deliver_due", "schedule": 15.0},
    "backup-daily": {"task": "ops.backup_daily", "schedule": _crontab(minute=17, hour=TRADEPULSE_BACKUP_HOUR_UTC)},
    # the engine loop: each tick acts on deployments whose timeframe bar has closed
    "trading-tick": {"task": "trading.tick", "schedule": float(TRADEPULSE_TRADING_TICK_S)},
    "graduation-evaluate": {"task": "graduation.evaluate_all",
                            "schedule": float(env_int("TRADEPULSE_GRADUATION_EVALUATE_EVERY_S", 300, minimum=10))},
    "risk-watch": {"task": "risk.watch", "schedule": 60.0},
}

if TESTING:
    # Tests create many users; the slow production hasher would dominate their run time.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
