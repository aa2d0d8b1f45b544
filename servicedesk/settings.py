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

from servicedesk.directory import parse_group_map
from servicedesk.env import env_bool, env_int, env_list, env_str
from servicedesk.ldap_env import ldap_settings_check

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
    # Two-factor sign-in (issue 13): TOTP devices and backup codes; before "servicedesk", whose admin
    # unregisters their admin pages (admins reset a user's devices instead of reading their secrets).
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
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
    # Two-factor sign-in: a session that still owes its second step is not signed in (servicedesk/twofactor.py).
    "servicedesk.twofactor.SecondFactorMiddleware",
    # A person's own writes drop their cached sidebar counts (servicedesk/sidebar.py).
    "servicedesk.sidebar.SidebarCountsMiddleware",
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
    # Sessions read from Redis (a query less on every page), written through to the database, which stays the
    # record: a Redis restart signs nobody out.
    SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
else:
    # The local run's web processes (gunicorn --workers 2) share one directory, never per-process memory. Its
    # incr()/add() are a read then a write, not atomic: two processes counting at the same instant may lose a
    # count (a rate limit lets a few more through). Good enough for one person's local run; use Redis to scale.
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
# Seconds a person's sidebar counts (and the dashboard's tiles) are kept before they are counted again; their
# own changes show at once (servicedesk/sidebar.py). 0: counted on every page.
SIDEBAR_COUNTS_SECONDS = env_int("SIDEBAR_COUNTS_SECONDS", 30)
# Seconds the portal's "Popular requests" counts (orders per catalog item in 90 days, the same for everyone)
# are kept in the cache; 0: counted on every portal home page.
PORTAL_POPULAR_SECONDS = env_int("PORTAL_POPULAR_SECONDS", 600)
# Seconds the cards of a ticket's agent page that follow from its words alone (suggested articles) are kept,
# the same for every agent (servicedesk.registry.TicketPanel.shared); 0: computed on every page.
TICKET_PANELS_SECONDS = env_int("TICKET_PANELS_SECONDS", 300)
# Timeline entries an agent's ticket page shows, the latest; "Show N earlier entries" opens the whole timeline.
# 0: every entry, always.
TIMELINE_RECENT_ENTRIES = env_int("TIMELINE_RECENT_ENTRIES", 50)
for _name in ("SIDEBAR_COUNTS_SECONDS", "PORTAL_POPULAR_SECONDS", "TICKET_PANELS_SECONDS", "TIMELINE_RECENT_ENTRIES"):
    if globals()[_name] < 0:
        raise ImproperlyConfigured(f"{_name}={globals()[_name]} must be 0 or more")
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
# Every spelling of a username ("Ann", "ANN") is one counter: the directory signs them all in as one account.
AXES_USERNAME_CALLABLE = "servicedesk.signin.username_key"
AXES_LOCKOUT_CALLABLE = "servicedesk.signin.lockout_response"
AXES_HTTP_RESPONSE_CODE = 429
AXES_RESET_ON_SUCCESS = True
# Axes keeps the failures (AccessAttempt); successful sign-ins are in each user's last_login. Its log of
# successes would also open a session for every API token request.
AXES_DISABLE_ACCESS_LOG = True
# Guesses made while locked out are refused without being counted, so the retry time shown stays true.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False

# --- LDAP / Active Directory sign-in (servicedesk/ldap_signin.py, docs/sign-in.md) ---
# On when LDAP_SERVER_URI is set: django-auth-ldap goes between axes' LockoutBackend and ModelBackend, so a
# locked-out username is refused before any bind and local accounts keep signing in. Needs the `ldap` extra.
LDAP_SERVER_URI = env_str("LDAP_SERVER_URI").strip()
LDAP_BIND_DN = env_str("LDAP_BIND_DN")
LDAP_BIND_PASSWORD = env_str("LDAP_BIND_PASSWORD")
LDAP_USER_SEARCH_BASE = env_str("LDAP_USER_SEARCH_BASE")
LDAP_USER_FILTER = env_str("LDAP_USER_FILTER", "(uid=%(user)s)")
LDAP_GROUP_SEARCH_BASE = env_str("LDAP_GROUP_SEARCH_BASE")
LDAP_GROUP_TYPE = env_str("LDAP_GROUP_TYPE", "groupOfNames")
LDAP_GROUP_FILTER = env_str("LDAP_GROUP_FILTER")
LDAP_START_TLS = env_bool("LDAP_START_TLS", False)
LDAP_CA_FILE = env_str("LDAP_CA_FILE")
LDAP_ATTR_FIRST_NAME = env_str("LDAP_ATTR_FIRST_NAME", "givenName")
LDAP_ATTR_LAST_NAME = env_str("LDAP_ATTR_LAST_NAME", "sn")
LDAP_ATTR_EMAIL = env_str("LDAP_ATTR_EMAIL", "mail")
LDAP_TIMEOUT = env_int("LDAP_TIMEOUT", 5)
# Names the directory in the bindings of its people to accounts (ExternalIdentity issuer "ldap:<label>").
LDAP_DIRECTORY_LABEL = env_str("LDAP_DIRECTORY_LABEL", "directory").strip() or "directory"
# Group -> role and group -> team name (JSON objects; servicedesk.directory, shared with OIDC).
LDAP_GROUP_ROLES = parse_group_map(env_str("LDAP_GROUP_ROLES"), "LDAP_GROUP_ROLES")
LDAP_GROUP_TEAMS = parse_group_map(env_str("LDAP_GROUP_TEAMS"), "LDAP_GROUP_TEAMS")
if LDAP_SERVER_URI:
    ldap_settings_check(
        server_uri=LDAP_SERVER_URI, user_search_base=LDAP_USER_SEARCH_BASE, user_filter=LDAP_USER_FILTER,
        group_search_base=LDAP_GROUP_SEARCH_BASE, group_type=LDAP_GROUP_TYPE, group_roles=LDAP_GROUP_ROLES,
        group_teams=LDAP_GROUP_TEAMS, start_tls=LDAP_START_TLS, ca_file=LDAP_CA_FILE, timeout=LDAP_TIMEOUT,
    )
    AUTHENTICATION_BACKENDS.insert(1, "servicedesk.ldap_signin.DirectoryLDAPBackend")
# --- end LDAP ---

# API tokens (django-rest-knox): stored as SHA-512 digests, expire after API_TOKEN_TTL_HOURS.
API_TOKEN_TTL_HOURS = env_int("API_TOKEN_TTL_HOURS", 10)
if API_TOKEN_TTL_HOURS < 1:
    raise ImproperlyConfigured("API_TOKEN_TTL_HOURS must be 1 or more: API tokens always expire")
REST_KNOX = {
    "TOKEN_TTL": timedelta(hours=API_TOKEN_TTL_HOURS),
    "AUTH_HEADER_PREFIX": "Token",
    "AUTO_REFRESH": False,
}

# --- Two-factor sign-in (servicedesk/twofactor.py, docs/sign-in.md) ---
# Wrong codes are counted by django-axes together with wrong passwords (LOGIN_FAILURE_LIMIT), so django-otp's
# own per-device delay is off.
TOTP_ISSUER = env_str("TOTP_ISSUER", "Servicedesk")
OTP_TOTP_ISSUER = TOTP_ISSUER
OTP_TOTP_THROTTLE_FACTOR = 0
OTP_STATIC_THROTTLE_FACTOR = 0
# A code is accepted one 30-second step early or late, always around the server's clock (no learnt drift).
OTP_TOTP_SYNC = False
# Minutes between the password and the code (or the enrolment) before the sign-in starts over.
TWO_FACTOR_STEP_MINUTES = env_int("TWO_FACTOR_STEP_MINUTES", 10)
if TWO_FACTOR_STEP_MINUTES < 1:
    raise ImproperlyConfigured("TWO_FACTOR_STEP_MINUTES must be 1 or more")
# On: an OpenID Connect sign-in counts as two-factor (turn it on when the company's provider enforces MFA).
OIDC_TRUSTS_IDP_MFA = env_bool("OIDC_TRUSTS_IDP_MFA", False)
# --- end two-factor ---

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# --- OpenID Connect sign-in (mozilla-django-oidc; servicedesk/oidc.py, docs/sign-in.md "OpenID Connect") ---
# On when a client id is set (OIDC_ENABLED=0 turns it off again). The provider's endpoints come from its
# discovery document (OIDC_OP_DISCOVERY_URL, or OIDC_OP_ISSUER + /.well-known/openid-configuration), fetched
# when someone signs in, never at start; an endpoint set explicitly wins over the discovered one.
OIDC_RP_CLIENT_ID = env_str("OIDC_RP_CLIENT_ID")
OIDC_RP_CLIENT_SECRET = env_str("OIDC_RP_CLIENT_SECRET")
OIDC_ENABLED = env_bool("OIDC_ENABLED", bool(OIDC_RP_CLIENT_ID))
OIDC_OP_ISSUER = env_str("OIDC_OP_ISSUER").rstrip("/")
OIDC_OP_DISCOVERY_URL = env_str("OIDC_OP_DISCOVERY_URL") or (
    f"{OIDC_OP_ISSUER}/.well-known/openid-configuration" if OIDC_OP_ISSUER else "")
OIDC_OP_AUTHORIZATION_ENDPOINT = env_str("OIDC_OP_AUTHORIZATION_ENDPOINT")
OIDC_OP_TOKEN_ENDPOINT = env_str("OIDC_OP_TOKEN_ENDPOINT")
OIDC_OP_USER_ENDPOINT = env_str("OIDC_OP_USER_ENDPOINT")
OIDC_OP_JWKS_ENDPOINT = env_str("OIDC_OP_JWKS_ENDPOINT")
OIDC_OP_LOGOUT_ENDPOINT = env_str("OIDC_OP_LOGOUT_ENDPOINT")  # the provider's end_session_endpoint
OIDC_RP_SIGN_ALGO = env_str("OIDC_RP_SIGN_ALGO", "RS256")
OIDC_RP_SCOPES = env_str("OIDC_RP_SCOPES", "openid email profile")
OIDC_GROUPS_CLAIM = env_str("OIDC_GROUPS_CLAIM", "groups")
# JSON objects, group claim value -> role / team name (servicedesk/directory.py); empty: not managed.
OIDC_GROUP_ROLES = parse_group_map(env_str("OIDC_GROUP_ROLES"), "OIDC_GROUP_ROLES")
OIDC_GROUP_TEAMS = parse_group_map(env_str("OIDC_GROUP_TEAMS"), "OIDC_GROUP_TEAMS")
OIDC_BUTTON_LABEL = env_str("OIDC_BUTTON_LABEL", "Sign in with single sign-on")
OIDC_CREATE_USER = env_bool("OIDC_CREATE_USER", True)
# When set, only people whose email is at one of these domains sign in (e.g. a provider open to everyone).
OIDC_ALLOWED_EMAIL_DOMAINS = [domain.lower() for domain in env_list("OIDC_ALLOWED_EMAIL_DOMAINS", [])]
# Providers that never send email_verified (Entra ID) but own every address they hand out: 1 trusts it.
OIDC_ASSUME_EMAIL_VERIFIED = env_bool("OIDC_ASSUME_EMAIL_VERIFIED", False)
# Signing out also ends the provider's session (its end_session_endpoint), not only ours.
OIDC_LOGOUT_FROM_PROVIDER = env_bool("OIDC_LOGOUT_FROM_PROVIDER", False)
OIDC_STORE_ID_TOKEN = OIDC_LOGOUT_FROM_PROVIDER  # the id_token_hint that logout sends
OIDC_USE_PKCE = env_bool("OIDC_USE_PKCE", True)
OIDC_AUTHENTICATION_CALLBACK_URL = "oidc_callback"  # the URL name mozilla-django-oidc's views send back to
OIDC_TIMEOUT = env_int("OIDC_TIMEOUT", 10)
OIDC_DISCOVERY_CACHE_SECONDS = env_int("OIDC_DISCOVERY_CACHE_SECONDS", 3600)
OIDC_VERIFY_SSL = env_bool("OIDC_VERIFY_SSL", True)
if OIDC_ENABLED:
    if not OIDC_RP_CLIENT_ID:
        raise ImproperlyConfigured("OIDC_ENABLED=1 needs OIDC_RP_CLIENT_ID")
    _oidc_missing = [name for name in ("OIDC_OP_AUTHORIZATION_ENDPOINT", "OIDC_OP_TOKEN_ENDPOINT",
                                       "OIDC_OP_USER_ENDPOINT", "OIDC_OP_JWKS_ENDPOINT")
                     if not globals()[name]]
    if _oidc_missing and not OIDC_OP_DISCOVERY_URL:
        raise ImproperlyConfigured("OpenID Connect needs OIDC_OP_ISSUER or OIDC_OP_DISCOVERY_URL, or else "
                                   + ", ".join(_oidc_missing))
    if OIDC_RP_SIGN_ALGO.startswith("HS") and not OIDC_RP_CLIENT_SECRET:
        raise ImproperlyConfigured(f"OIDC_RP_SIGN_ALGO={OIDC_RP_SIGN_ALGO} needs OIDC_RP_CLIENT_SECRET")
    # Last: it answers only the OIDC callback, which calls it directly (it never sees a password).
    AUTHENTICATION_BACKENDS += ["servicedesk.oidc.OIDCBackend"]
if OIDC_TIMEOUT < 1:
    raise ImproperlyConfigured("OIDC_TIMEOUT must be 1 or more (seconds)")
# --- end of OpenID Connect ---

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

# --- A million tickets (servicedesk.keyset, docs/large-installations.md) ---
# Lists count their matches only up to this many and show "1,000+" beyond: a count costs O(cap), not O(rows).
LIST_COUNT_CAP = env_int("LIST_COUNT_CAP", 1000)
# Problem detection compares the titles of at most this many incidents, the newest of its window (quadratic).
PROBLEM_DETECTION_SIMILAR_MAX = env_int("PROBLEM_DETECTION_SIMILAR_MAX", 2000)

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
if OUTBOX_KEEP_DAYS < 0:  # retention: 0 purges done messages at the next run
    raise ImproperlyConfigured(f"OUTBOX_KEEP_DAYS={OUTBOX_KEEP_DAYS} must be 0 (purge at the next run) or more")
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
# --- Retention (servicedesk.retention, docs/retention.md) ---
# Days each kind of history is kept before the hourly run removes it; 0 keeps it for ever (the default).
# Closed/cancelled tickets count from their closing date; events, deliveries, mails and audit rows from their own.
RETENTION_TICKETS_DAYS = env_int("RETENTION_TICKETS_DAYS", 0)
RETENTION_EVENTS_DAYS = env_int("RETENTION_EVENTS_DAYS", 0)
RETENTION_WEBHOOK_DELIVERIES_DAYS = env_int("RETENTION_WEBHOOK_DELIVERIES_DAYS", 0)
RETENTION_MAIL_RAW_DAYS = env_int("RETENTION_MAIL_RAW_DAYS", 0)
RETENTION_AUDIT_DAYS = env_int("RETENTION_AUDIT_DAYS", 0)
# Write what goes to gzip JSON lines under RETENTION_ARCHIVE_DIR first (one file per run).
RETENTION_ARCHIVE = env_bool("RETENTION_ARCHIVE", True)
RETENTION_ARCHIVE_DIR = Path(env_str("RETENTION_ARCHIVE_DIR", str(MEDIA_ROOT / "archive")))
# Days an archive file is kept (from the run that wrote it) before a run deletes it; 0 keeps them for ever.
RETENTION_ARCHIVE_DAYS = env_int("RETENTION_ARCHIVE_DAYS", 0)
# Rows per transaction, seconds of work per run (the next run goes on), seconds between runs.
RETENTION_BATCH = env_int("RETENTION_BATCH", 1000)
# Retention: bytes per batch of big rows (raw mails), at least one row per batch.
RETENTION_BATCH_BYTES = env_int("RETENTION_BATCH_BYTES", 64 * 1024 * 1024)
RETENTION_BUDGET_SECONDS = env_int("RETENTION_BUDGET_SECONDS", 120)
RETENTION_INTERVAL_SECONDS = env_int("RETENTION_INTERVAL_SECONDS", 3600)
for _name in ("RETENTION_TICKETS_DAYS", "RETENTION_EVENTS_DAYS", "RETENTION_WEBHOOK_DELIVERIES_DAYS",
              "RETENTION_MAIL_RAW_DAYS", "RETENTION_AUDIT_DAYS", "RETENTION_ARCHIVE_DAYS"):
    if globals()[_name] < 0:
        raise ImproperlyConfigured(f"{_name}={globals()[_name]} must be 0 (keep for ever) or a number of days")
for _name in ("RETENTION_BATCH", "RETENTION_BATCH_BYTES", "RETENTION_BUDGET_SECONDS", "RETENTION_INTERVAL_SECONDS"):
    if globals()[_name] < 1:
        raise ImproperlyConfigured(f"{_name}={globals()[_name]} must be at least 1")
# The beat schedule lives here, in one place. django-celery-beat copies it into the database at start,
# where admins can see, pause and re-time each entry (Admin > Periodic tasks).
CELERY_BEAT_SCHEDULE = {
    "worker-heartbeat": {"task": "servicedesk.tasks.worker_heartbeat", "schedule": float(WORKER_HEARTBEAT_SECONDS)},
    # Retention also removes done outbox rows (OUTBOX_KEEP_DAYS) and old Idempotency-Keys (servicedesk.retention).
    "retention-run": {"task": "servicedesk.tasks.retention_run", "schedule": float(RETENTION_INTERVAL_SECONDS)},
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

# --- Observability (issue 13; docs/observability.md): /metrics, request ids, structured logs ------------------
# django-prometheus counts requests and their latency (the two middlewares wrap all the others) and database
# queries (servicedesk.metrics.instrument_connections); /metrics adds our own figures read at scrape time.
# RequestIdMiddleware + django-structlog put a request id on every log line, passed on to the workers.
INSTALLED_APPS += ["django_prometheus", "django_structlog"]
MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "servicedesk.requestid.RequestIdMiddleware",
    "django_structlog.middlewares.RequestMiddleware",
    "servicedesk.metrics.MetricsMiddleware",  # /metrics before the host check (scraped by container address)
    *MIDDLEWARE,
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]
SECURE_REDIRECT_EXEMPT = [r"^metrics$"]  # Prometheus scrapes over http inside the deployment's network
# Who may read /metrics: addresses in METRICS_ALLOWED_NETWORKS (CIDRs; the client address as
# TRUSTED_PROXY_COUNT says), and, when METRICS_TOKEN is set, only with `Authorization: Bearer <token>`.
METRICS_TOKEN = env_str("METRICS_TOKEN")
METRICS_ALLOWED_NETWORKS = env_list("METRICS_ALLOWED_NETWORKS", ["127.0.0.0/8", "::1/128"])
for _network in METRICS_ALLOWED_NETWORKS:
    try:
        __import__("ipaddress").ip_network(_network, strict=False)
    except ValueError:
        raise ImproperlyConfigured(f"METRICS_ALLOWED_NETWORKS: {_network!r} is not an address or a network such as "
                                   "10.0.0.0/8") from None
LOG_FORMAT = env_str("LOG_FORMAT", "plain").strip().lower()
LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
if LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT={LOG_FORMAT!r}: use plain (readable lines) or json (one object a line)")
# A request's and a task's start and end lines: the access log of the JSON logs; left out (DEBUG) in plain
# logs. 4xx and 5xx stay INFO: django.request already logs them as warnings and errors.
_ACCESS_LEVEL = "INFO" if LOG_FORMAT == "json" else "DEBUG"
DJANGO_STRUCTLOG_CELERY_ENABLED = True
DJANGO_STRUCTLOG_TRUST_UPSTREAM_REQUEST_ID = True  # RequestIdMiddleware has checked or replaced it
DJANGO_STRUCTLOG_IP_LOGGING_ENABLED = False  # its guess trusts X-Forwarded-For; we log no addresses
DJANGO_STRUCTLOG_STATUS_START_LOG_LEVEL = 10  # DEBUG
DJANGO_STRUCTLOG_STATUS_2XX_LOG_LEVEL = DJANGO_STRUCTLOG_STATUS_4XX_LOG_LEVEL = \
    DJANGO_STRUCTLOG_STATUS_5XX_LOG_LEVEL = DJANGO_STRUCTLOG_STATUS_DEFAULT_LOG_LEVEL = 20 if _ACCESS_LEVEL == "INFO" else 10
DJANGO_STRUCTLOG_CELERY_TASK_START_LOG_LEVEL = DJANGO_STRUCTLOG_CELERY_TASK_SUCCESS_LOG_LEVEL = \
    20 if _ACCESS_LEVEL == "INFO" else 10
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        # One JSON object per line, every line (ours, Django's, Celery's) with the request_id bound at the time.
        "json": {"()": "servicedesk.logs.json_formatter"},
    },
    # Answers that are the expected outcome (a 403 for a requester on an agent page, /healthz's 503 while
    # the worker starts) are not logged as errors with tracebacks; see servicedesk/logs.py.
    "filters": {"expected_responses": {"()": "servicedesk.logs.ExpectedResponses"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    # axes logs each failed sign-in as a WARNING (kept) and every success as INFO (dropped).
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "axes": {"level": "WARNING"},
        "django.request": {"filters": ["expected_responses"]},
    },
}
from servicedesk.logs import structlog_configure  # noqa: E402 - it reads the format chosen above

structlog_configure(LOG_FORMAT)
# --- end of observability ------------------------------------------------------------------------------------

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
