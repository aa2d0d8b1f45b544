"""Settings of the service desk, read only from the environment.

Defaults are the embedded local run: a SQLite file and kombu's filesystem transport under var/,
so `python3 dev.py run` needs nothing but Python. Production sets DATABASE_URL, REDIS_URL (or
CELERY_BROKER_URL), SECRET_KEY, ALLOWED_HOSTS and DEBUG=0; `manage.py check --deploy` is then clean.
"""

from datetime import timedelta
from pathlib import Path

import dj_database_url
from celery.schedules import crontab
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

from servicedesk.env import env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("SERVICEDESK_VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", False)
# PRODUCTION=1 turns on HTTPS-only cookies, HSTS, manifest static files and refuses the local key.
PRODUCTION = env_bool("PRODUCTION", False)
_INSECURE_KEY = "insecure-local-only-key-change-me-in-production-0123456789abcdef"
SECRET_KEY = env_str("SECRET_KEY", "" if PRODUCTION else _INSECURE_KEY)
if not SECRET_KEY:
    raise ImproperlyConfigured("SECRET_KEY must be set when PRODUCTION=1")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
SITE_URL = env_str("SITE_URL", "http://127.0.0.1:8000")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "knox",
    "axes",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "django_htmx",
    "csp",
    "servicedesk",
    "sla",
    "incidents",
    "requests_app",
    "problems",
    "monitoring",
    "knowledge",
    "insights",
    "email_channel",
]

MIDDLEWARE = [
    # First: an oversized body is refused (413) before anything reads it.
    "servicedesk.uploads.RequestSizeLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last: turns a sign-in that django-axes refused into the "try again after ..." page (or the API's 429).
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "servicedesk.urls"
WSGI_APPLICATION = "servicedesk.wsgi.application"
ASGI_APPLICATION = "servicedesk.asgi.application"

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
                "servicedesk.context_processors.servicedesk",
            ],
        },
    },
]

# Database: DATABASE_URL, e.g. postgres://user@127.0.0.1:5432/servicedesk. Default: SQLite file.
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'servicedesk.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    # Web, worker and beat share the file: wait for the write lock rather than fail at once.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}
    )
    # Covering indexes (INCLUDE) are a PostgreSQL speed-up; SQLite builds them without the extra columns.
    SILENCED_SYSTEM_CHECKS = ["models.W040"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Cache: on Redis whenever the broker is Redis, so every web process shares it;
# per-process memory otherwise (the local run). CACHE_URL overrides. clear() drops only our own keys, so
# sharing the broker's Redis database never wipes Celery's queues.
_redis = env_str("CELERY_BROKER_URL") or env_str("REDIS_URL")
CACHE_URL = env_str("CACHE_URL") or (_redis if _redis.startswith(("redis://", "rediss://")) else "")
if CACHE_URL:
    CACHES = {
        "default": {
            "BACKEND": "servicedesk.cache.RedisCache",
            "LOCATION": CACHE_URL,
            "KEY_PREFIX": env_str("CACHE_KEY_PREFIX", "sd-cache"),
        }
    }
else:
    # The local run's web processes (gunicorn --workers 2) share one directory, never per-process memory.
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
                          "LOCATION": str(VAR_DIR / "cache")}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Sign-in protection (django-axes, failures counted in the database every process shares).
# Every sign-in path (login form, admin login, API token) goes through django.contrib.auth.authenticate,
# where the axes backend refuses a locked-out username or address before any password is checked.
AUTHENTICATION_BACKENDS = [
    "servicedesk.signin.LockoutBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Reverse proxies in front of Django that each append the address they saw to X-Forwarded-For. 0 (the
# default) trusts no header: the client address is REMOTE_ADDR.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)
LOGIN_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5)
LOGIN_COOLOFF_MINUTES = env_int("LOGIN_COOLOFF_MINUTES", 15)
LOGIN_ADDRESS_USERNAME_LIMIT = env_int("LOGIN_ADDRESS_USERNAME_LIMIT", 20)
if TRUSTED_PROXY_COUNT < 0:
    raise ImproperlyConfigured("TRUSTED_PROXY_COUNT must be 0 or more")
if LOGIN_FAILURE_LIMIT < 1 or LOGIN_COOLOFF_MINUTES < 1:
    raise ImproperlyConfigured("LOGIN_FAILURE_LIMIT and LOGIN_COOLOFF_MINUTES must be 1 or more")
if LOGIN_ADDRESS_USERNAME_LIMIT < LOGIN_FAILURE_LIMIT:
    raise ImproperlyConfigured("LOGIN_ADDRESS_USERNAME_LIMIT must be at least LOGIN_FAILURE_LIMIT")
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"
AXES_FAILURE_LIMIT = LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = timedelta(minutes=LOGIN_COOLOFF_MINUTES)
# A username is locked whatever address the guesses come from; an address only while it is failing for
# many different usernames (credential stuffing), so one person's typos never lock their whole office.
AXES_LOCKOUT_PARAMETERS = "servicedesk.signin.lockout_parameters"
AXES_CLIENT_IP_CALLABLE = "servicedesk.signin.client_address"
AXES_LOCKOUT_CALLABLE = "servicedesk.signin.lockout_response"
AXES_HTTP_RESPONSE_CODE = 429
AXES_RESET_ON_SUCCESS = True
# Axes keeps the failures (AccessAttempt); successful sign-ins are in each user's last_login. Its log of
# successes would also open a session for every API token request.
AXES_DISABLE_ACCESS_LOG = True
# Guesses made while locked out are refused without being counted, so the retry time shown stays true.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False

# API tokens (django-rest-knox): stored as SHA-512 digests, expire after API_TOKEN_TTL_HOURS.
API_TOKEN_TTL_HOURS = env_int("API_TOKEN_TTL_HOURS", 10)
if API_TOKEN_TTL_HOURS < 1:
    raise ImproperlyConfigured("API_TOKEN_TTL_HOURS must be 1 or more: API tokens always expire")
REST_KNOX = {
    "TOKEN_TTL": timedelta(hours=API_TOKEN_TTL_HOURS),
    "AUTH_HEADER_PREFIX": "Token",
    "AUTO_REFRESH": False,
}

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))
MEDIA_URL = "media/"

# Attachments: a size limit and an allow-list of content types, judged from the file's content
# (servicedesk.uploads). A request body larger than one attachment plus the margin is refused with 413
# before it is read; form fields other than files may take DATA_UPLOAD_MAX_MEMORY_SIZE (Django answers 400).
# Self-service: a requester may change their satisfaction rating for this many days after first giving it,
# and reopen a fulfilled request for this many days after it was fulfilled.
RATING_CHANGE_DAYS = env_int("RATING_CHANGE_DAYS", 14)
REQUEST_REOPEN_DAYS = env_int("REQUEST_REOPEN_DAYS", 14)
ATTACHMENT_MAX_BYTES = env_int("ATTACHMENT_MAX_BYTES", 10 * 1024 * 1024)
REQUEST_BODY_MARGIN_BYTES = 1024 * 1024
ATTACHMENT_ALLOWED_TYPES = env_list(
    "ATTACHMENT_ALLOWED_TYPES",
    [
        "image/png",
        "image/jpeg",
        "image/gif",
        "image/webp",
        "application/pdf",
        "text/plain",
        "text/csv",
        "application/json",
        "application/zip",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "message/rfc822",
    ],
)
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024

# Email: EMAIL_HOST/EMAIL_PORT/... ; the local run prints mail to the console of the worker.
EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend" if env_str("EMAIL_HOST") else "servicedesk.mail.ReadableConsoleBackend",
)
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10)
# Reading mailboxes over IMAP (email_channel.imap): seconds before a silent server counts as unreachable, and a
# PEM file of the CA(s) that signed the IMAP servers' certificates when it is not one the system trusts.
EMAIL_IMAP_TIMEOUT = env_int("EMAIL_IMAP_TIMEOUT", 30)
EMAIL_IMAP_CA_FILE = env_str("EMAIL_IMAP_CA_FILE")
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Servicedesk <servicedesk@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# Where replies to ticket mail go (the Reply-To header); empty: to DEFAULT_FROM_EMAIL. Point it (or
# DEFAULT_FROM_EMAIL) at a mailbox the email channel reads, so people can answer a ticket by replying.
EMAIL_REPLY_TO = env_str("EMAIL_REPLY_TO", "")
# Inbound mail (email_channel): a larger mail is kept (from IMAP only its header) but not processed ("too large").
EMAIL_INBOUND_MAX_BYTES = env_int("EMAIL_INBOUND_MAX_BYTES", 25 * 1024 * 1024)
# At most this many Cc'd addresses of one new mail become watchers (and accounts); the rest are left out.
EMAIL_INBOUND_MAX_WATCHERS = env_int("EMAIL_INBOUND_MAX_WATCHERS", 10)

# Celery. REDIS_URL or CELERY_BROKER_URL; default: kombu's filesystem transport under var/broker
# (the host part is ignored by that transport; without one kombu warns at every connection).
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL") or env_str("REDIS_URL") or "filesystem://localhost/"
CELERY_BROKER_TRANSPORT_OPTIONS: dict = {}
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = VAR_DIR / "broker"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "control_folder": str(_broker_dir / "control"),
        "processed_folder": str(_broker_dir / "processed"),
        "store_processed": False,
    }
    for _folder in ("queue", "control", "processed"):
        (_broker_dir / _folder).mkdir(parents=True, exist_ok=True)
elif CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    # Publishing must fail fast when the broker is down: the outbox relay re-drives what could not be
    # handed off, so a request never waits on an unreachable broker.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"socket_connect_timeout": env_int("CELERY_BROKER_CONNECT_TIMEOUT", 2)}
CELERY_BROKER_CONNECTION_TIMEOUT = env_int("CELERY_BROKER_CONNECT_TIMEOUT", 2)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = False
CELERY_TIMEZONE = TIME_ZONE
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_QUEUE", "servicedesk")
# Tasks log through `logging`; what they print (the local run's console mail) goes to the worker's stdout
# as it is, not re-logged as WARNING lines.
CELERY_WORKER_REDIRECT_STDOUTS = False
# Seconds between worker heartbeats, and the age after which /healthz calls the worker down.
WORKER_HEARTBEAT_SECONDS = env_int("WORKER_HEARTBEAT_SECONDS", 15)
WORKER_HEARTBEAT_MAX_AGE = env_int("WORKER_HEARTBEAT_MAX_AGE", 90)
# Outbox (servicedesk.outbox): the relay runs every OUTBOX_RELAY_SECONDS and re-drives pending messages
# older than OUTBOX_RELAY_MIN_AGE_SECONDS (younger ones are still on their way through the broker), at most
# OUTBOX_RELAY_BATCH per run. Done messages are kept OUTBOX_KEEP_DAYS; failed ones until retried or deleted.
OUTBOX_RELAY_SECONDS = env_int("OUTBOX_RELAY_SECONDS", 30)
OUTBOX_RELAY_MIN_AGE = timedelta(seconds=env_int("OUTBOX_RELAY_MIN_AGE_SECONDS", 60))
OUTBOX_RELAY_BATCH = env_int("OUTBOX_RELAY_BATCH", 500)
OUTBOX_KEEP_DAYS = env_int("OUTBOX_KEEP_DAYS", 7)
# How long a stored Idempotency-Key answers retries of a creating POST.
IDEMPOTENCY_KEY_TTL_HOURS = env_int("IDEMPOTENCY_KEY_TTL_HOURS", 24)
# Approvals of service requests (requests_app.approvals): a pending approval is reminded once after
# APPROVAL_REMINDER_HOURS (the sweep runs every APPROVAL_REMIND_SWEEP_SECONDS); the Approve / Reject links
# mailed to approvers work for APPROVAL_LINK_MAX_AGE_DAYS.
APPROVAL_REMINDER_HOURS = env_int("APPROVAL_REMINDER_HOURS", 24)
APPROVAL_REMIND_SWEEP_SECONDS = env_int("APPROVAL_REMIND_SWEEP_SECONDS", 15 * 60)
APPROVAL_LINK_MAX_AGE_DAYS = env_int("APPROVAL_LINK_MAX_AGE_DAYS", 7)
# The insights rollup (insights.rollup) re-counts the days whose tickets changed, every INSIGHTS_ROLLUP_SECONDS;
# the days of the last INSIGHTS_ROLLUP_RECENT_DAYS are re-counted every run (a reopen moves an earlier day: keep it
# longer than REQUEST_REOPEN_DAYS and the incidents' auto-close days); everything is recounted nightly.
INSIGHTS_ROLLUP_SECONDS = env_int("INSIGHTS_ROLLUP_SECONDS", 300)
INSIGHTS_ROLLUP_RECENT_DAYS = env_int("INSIGHTS_ROLLUP_RECENT_DAYS", 15)
# The beat schedule lives here, in one place. django-celery-beat copies it into the database at start,
# where admins can see, pause and re-time each entry (Admin > Periodic tasks).
CELERY_BEAT_SCHEDULE = {
    "worker-heartbeat": {"task": "servicedesk.tasks.worker_heartbeat", "schedule": float(WORKER_HEARTBEAT_SECONDS)},
    "outbox-purge": {"task": "servicedesk.tasks.outbox_purge", "schedule": 3600.0},
    "idempotency-keys-purge": {"task": "servicedesk.tasks.idempotency_keys_purge", "schedule": 3600.0},
    "incidents-auto-close": {"task": "incidents.tasks.incidents_auto_close", "schedule": 15 * 60.0},
    "requests-fulfilment-sweep": {"task": "requests_app.tasks.fulfilment_sweep", "schedule": 60.0},
    "approvals-remind": {"task": "requests_app.tasks.approvals_remind",
                         "schedule": float(APPROVAL_REMIND_SWEEP_SECONDS)},
    "monitoring-events-redrive": {"task": "monitoring.tasks.monitoring_events_redrive", "schedule": 60.0},
    "monitoring-flap-settle": {"task": "monitoring.tasks.monitoring_flap_settle", "schedule": 60.0},
    "insights-rollup": {"task": "insights.tasks.insights_rollup", "schedule": float(INSIGHTS_ROLLUP_SECONDS)},
    "insights-rollup-rebuild": {"task": "insights.tasks.insights_rollup_rebuild",
                                "schedule": crontab(hour=2, minute=40)},
    "insights-subscriptions-send": {"task": "insights.tasks.insights_subscriptions_send", "schedule": 15 * 60.0},
    "insights-improvements-measure": {"task": "insights.tasks.insights_improvements_measure",
                                      "schedule": 24 * 3600.0},
}

# --- Scaling out (docs/scaling.md): PgBouncer, read replica, Celery queues and routes, one beat ---------------
# DATABASE_POOLER=pgbouncer: Django talks to PgBouncer in transaction mode, where a server connection is only
# ours for one transaction: no server-side cursors (they would outlive it); the code keeps no session state
# (advisory locks are transaction-scoped: servicedesk.locks).
DATABASE_POOLER = env_str("DATABASE_POOLER", "").strip().lower()
if DATABASE_POOLER not in ("", "pgbouncer"):
    raise ImproperlyConfigured(f"DATABASE_POOLER={DATABASE_POOLER!r}: use pgbouncer, or leave it empty")
# DATABASE_REPLICA_URL: an optional read-only copy that reports and exports read from (servicedesk.replica).
DATABASE_REPLICA_URL = env_str("DATABASE_REPLICA_URL", "")
if DATABASE_REPLICA_URL:
    DATABASES["replica"] = dj_database_url.parse(DATABASE_REPLICA_URL, conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
                                                 conn_health_checks=True)
    DATABASES["replica"]["TEST"] = {"MIRROR": "default"}
for _alias in DATABASES:
    if DATABASE_POOLER == "pgbouncer":
        DATABASES[_alias]["DISABLE_SERVER_SIDE_CURSORS"] = True
DATABASE_ROUTERS = ["servicedesk.replica.ReplicaRouter"]
# Celery queues. Workers started without -Q consume all of them (the local run, the tests' worker); a scaled
# deployment runs workers per group (-Q sla / -Q events / ...) so a flood on one never delays another. Outbox
# messages go to the queue their handler declares (servicedesk.outbox.outbox_handler(queue=...)).
SERVICEDESK_QUEUES = [CELERY_TASK_DEFAULT_QUEUE, "notifications", "sla", "events", "fulfilment"]
CELERY_TASK_QUEUES = tuple(Queue(name, routing_key=name) for name in SERVICEDESK_QUEUES)
CELERY_TASK_ROUTES = {
    "sla.tasks.*": {"queue": "sla"},
    "monitoring.tasks.*": {"queue": "events"},
    "requests_app.tasks.*": {"queue": "fulfilment"},
    "email_channel.tasks.*": {"queue": "notifications"},
}
# The outbox relay runs per queue, on that queue ("outbox-relay" is the default queue's; servicedesk.outbox).
CELERY_BEAT_SCHEDULE.update({
    ("outbox-relay" if _queue == CELERY_TASK_DEFAULT_QUEUE else f"outbox-relay-{_queue}"): {
        "task": "servicedesk.tasks.outbox_relay", "schedule": float(OUTBOX_RELAY_SECONDS),
        "kwargs": {"queue": _queue}, "options": {"queue": _queue}}
    for _queue in SERVICEDESK_QUEUES
})
# One beat schedules even when two run: a lock in Redis (BEAT_LOCK_URL, default the broker's Redis; a file
# lock under var/ otherwise), renewed every tick and held BEAT_LOCK_TTL_SECONDS; a second beat waits as a
# standby and takes over when the holder stops renewing (servicedesk.beat).
CELERY_BEAT_SCHEDULER = "servicedesk.beat:LockedDatabaseScheduler"
BEAT_LOCK_URL = env_str("BEAT_LOCK_URL") or (_redis if _redis.startswith(("redis://", "rediss://")) else "")
BEAT_LOCK_KEY = env_str("BEAT_LOCK_KEY", "servicedesk:beat-lock")
BEAT_LOCK_TTL_SECONDS = env_int("BEAT_LOCK_TTL_SECONDS", 30)
if BEAT_LOCK_TTL_SECONDS < 3:
    raise ImproperlyConfigured("BEAT_LOCK_TTL_SECONDS must be 3 or more")
# --- end of scaling out -------------------------------------------------------------------------------------------

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first: its WWW-Authenticate header makes unauthenticated calls a 401, not a 403.
        "knox.auth.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_PAGINATION_CLASS": "servicedesk.api.pagination.PagePagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "servicedesk.api.errors.exception_handler",
    # Throttles key on REMOTE_ADDR, or on the address the outermost trusted proxy saw.
    "NUM_PROXIES": TRUSTED_PROXY_COUNT,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Servicedesk API",
    "DESCRIPTION": "ITIL 4 service desk: incidents, requests, problems, SLAs and events.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Apps whose choice fields share a name with another app's ("status") name their enum here.
    "ENUM_NAME_OVERRIDES": {"ArticleStatusEnum": "knowledge.models.ArticleStatus",
                            "ProblemStatusEnum": "problems.states.Status",
                            "AlertStatusEnum": ["firing", "resolved"]},
    # Operations are tagged by the first path segment after /api/v1/ (incidents, users, auth...), so the
    # docs group them per resource; the list below orders the groups and says what each holds.
    "SCHEMA_PATH_PREFIX": r"/api/v[0-9]+",
    "TAGS": [
        {"name": "auth", "description": "Exchange a username and password for an API token."},
        {"name": "me", "description": "The caller: profile, role and teams."},
        {"name": "incidents", "description": "Incidents: list, search, create, update, lifecycle actions, "
                                             "comments and attachments."},
        {"name": "attachments", "description": "Download an attachment of a ticket the caller may see."},
        {"name": "users", "description": "People (agents see everyone, requesters only themselves)."},
        {"name": "teams", "description": "Assignment groups and their members."},
        {"name": "organisations", "description": "Customer organisations."},
        {"name": "services", "description": "Business and technical services."},
        {"name": "configuration-items", "description": "Configuration items of the services."},
        {"name": "sla", "description": "Service level configuration: SLA policies with their targets and "
                                       "escalation steps, business calendars with working hours and holidays; "
                                       "the compliance report for managers."},
        {"name": "catalog", "description": "The service catalog: items the caller may order, with their order "
                                           "forms."},
        {"name": "kb", "description": "Knowledge base: search and read articles, say whether one helped."},
        {"name": "problems", "description": "Problems (agents only): list, create, update with the analysis, "
                                            "lifecycle actions, linking incidents."},
        {"name": "known-errors", "description": "Known errors (agents only): ranked full-text search."},
        {"name": "events", "description": "Monitoring tools send events here with their event source's token: "
                                          "generic JSON, Prometheus Alertmanager's and Grafana's webhooks."},
        {"name": "alerts", "description": "Alerts (agents only): what monitoring says is wrong now, with the "
                                          "incident each belongs to; acknowledge."},
        {"name": "insights", "description": "Service insights (agents only, for their teams): every measure of "
                                            "the dashboard over a period, team and service."},
    ],
}

# Content-Security-Policy (django-csp): everything from this origin only, and no inline script or style
# anywhere: page behaviour lives in static/js, htmx is configured by a <meta> tag with eval off, and icons'
# and error pages' styles are in static/css.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    # Answers that are the expected outcome (a 403 for a requester on an agent page, /healthz's 503 while
    # the worker starts) are not logged as errors with tracebacks; see servicedesk/logs.py.
    "filters": {"expected_responses": {"()": "servicedesk.logs.ExpectedResponses"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    # axes logs each failed sign-in as a WARNING (kept) and every success as INFO (dropped).
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "axes": {"level": "WARNING"},
        "django.request": {"filters": ["expected_responses"]},
    },
}

if PRODUCTION:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_CONTENT_TYPE_NOSNIFF = True
    SECURE_REFERRER_POLICY = "same-origin"
    X_FRAME_OPTIONS = "DENY"
    if SECRET_KEY == _INSECURE_KEY or len(set(SECRET_KEY)) < 5 or len(SECRET_KEY) < 50:
        raise ImproperlyConfigured("PRODUCTION=1 needs a SECRET_KEY of at least 50 varied characters")
