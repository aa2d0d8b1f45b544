"""Settings of the test OpenID provider: a separate, tiny Django project (django-oauth-toolkit's OIDC provider).

It is what a company's identity provider is to the service desk in the OIDC tests: started as its own process
by tests/oidc_provider/peer.py on 127.0.0.1, with its own SQLite database, its own users and groups, and an RSA
key made at start. Nothing of the service desk is imported here.

Environment (set by peer.py): IDP_DIR (database and key), IDP_ISSUER (http://127.0.0.1:<port>/o).
"""

import os
from pathlib import Path

IDP_DIR = Path(os.environ["IDP_DIR"])
SECRET_KEY = "test-provider-only-" + IDP_DIR.name  # noqa: S105 - a throwaway provider for tests
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    # First: its templates (plain pages, nothing fetched from elsewhere) replace django-oauth-toolkit's.
    "tests.oidc_provider.idp",
    "oauth2_provider",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
ROOT_URLCONF = "tests.oidc_provider.urls"
TEMPLATES = [{
    "BACKEND": "django.template.backends.django.DjangoTemplates",
    "APP_DIRS": True,
    "OPTIONS": {"context_processors": ["django.template.context_processors.request",
                                       "django.contrib.auth.context_processors.auth"]},
}]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(IDP_DIR / "idp.sqlite3")}}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
USE_TZ = True
LOGIN_URL = "/accounts/login/"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# The service desk runs on the same host (another port): cookies do not tell ports apart, so the provider's
# have their own names, or each would overwrite the other's session.
SESSION_COOKIE_NAME = "idp_sessionid"
CSRF_COOKIE_NAME = "idp_csrftoken"
LOGGING = {"version": 1, "disable_existing_loggers": False,
           "handlers": {"console": {"class": "logging.StreamHandler"}},
           "root": {"handlers": ["console"], "level": "WARNING"}}

OAUTH2_PROVIDER = {
    "OIDC_ENABLED": True,
    "OIDC_ISS_ENDPOINT": os.environ["IDP_ISSUER"],
    "OIDC_RSA_PRIVATE_KEY": (IDP_DIR / "rsa.pem").read_text() if (IDP_DIR / "rsa.pem").exists() else "",
    "OIDC_RP_INITIATED_LOGOUT_ENABLED": True,
    "OIDC_RP_INITIATED_LOGOUT_ALWAYS_PROMPT": False,
    "OAUTH2_VALIDATOR_CLASS": "tests.oidc_provider.idp.validators.ClaimsValidator",
    "SCOPES": {"openid": "Sign you in", "email": "See your email address",
               "profile": "See your name and groups"},
    "PKCE_REQUIRED": True,
}
