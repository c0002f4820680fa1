"""Settings for chatsite, read from environment variables (see README "Configuration")."""

from __future__ import annotations

import secrets
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import dj_database_url
import django_stubs_ext
from django.core.exceptions import ImproperlyConfigured

from chatsite.env import env_bool, env_int, env_list, env_origins, env_str, env_url

# Lets `admin.ModelAdmin[Model]` and other generics work at run time as they do for mypy.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", False)
# Whether browsers reach us over https (usually through a TLS-terminating proxy). Production sets it.
HTTPS = env_bool("HTTPS", False)


def _secret_key() -> str:
    key = env_str("SECRET_KEY")
    if key:
        if len(key) < 32:
            raise ImproperlyConfigured("SECRET_KEY must be at least 32 characters long")
        return key
    # Unset (development, a single machine): one generated key, kept out of the repository,
    # so sessions and API keys survive restarts. Several machines must share SECRET_KEY.
    path = VAR_DIR / "secret_key"
    if not path.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY_GENERATED = not env_str("SECRET_KEY")
SECRET_KEY = _secret_key()

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_origins("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "servestatic.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "channels",
    "chatsite",
    "accounts",
    "catalogue",
    "usage",
    "gateway",
    "conversations",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "servestatic.middleware.ServeStaticMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "chatsite.urls"
ASGI_APPLICATION = "chatsite.asgi.application"

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


def _database() -> dict[str, object]:
    url = env_url("DATABASE_URL", ("postgres", "postgresql"))
    if url is None:
        from chatsite.embedded_db import ensure_embedded_postgres

        uri = ensure_embedded_postgres(VAR_DIR / "pgdata")
        parsed = urlparse(uri)
        config: dict[str, object] = {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": "postgres",
            "USER": parsed.username or "postgres",
            "HOST": parse_qs(parsed.query).get("host", [parsed.hostname or ""])[0],
            "PORT": str(parsed.port or ""),
        }
    else:
        config = dict(dj_database_url.parse(url))
    # ASGI serves each request from a thread pool: a connection pool reuses connections
    # across them, where CONN_MAX_AGE would pin one connection to each thread.
    config["CONN_MAX_AGE"] = 0
    options = dict(config.get("OPTIONS") or {})  # type: ignore[call-overload]
    options["pool"] = {
        "min_size": env_int("DB_POOL_MIN", 2, minimum=0),
        "max_size": env_int("DB_POOL_MAX", 20, minimum=1),
        "timeout": 10,
    }
    config["OPTIONS"] = options
    test_name = env_str("TEST_DATABASE_NAME")
    if test_name:
        config["TEST"] = {"NAME": test_name}
    return config


DATABASES = {"default": _database()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "chat"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "chatsite.storage.ManifestStorageWithFallback"},
}
# Hashed, compressed, long-cached files after collectstatic (make run does it); before it
# (tests, a fresh checkout) the plain files are served from the apps' folders.
SERVESTATIC_USE_FINDERS = True

REDIS_URL = env_url("REDIS_URL", ("redis", "rediss", "unix"))
if REDIS_URL:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [REDIS_URL]}}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Rate limits (usage.limits): how long each process caches limit configuration (changes also
# invalidate it through Redis).
LIMITS_CACHE_SECONDS = env_int("LIMITS_CACHE_SECONDS", 10, minimum=0)

# `make run` starts the bundled SmolLM2 model and registers it as provider `local` (chatsite.local_model).
LOCAL_MODEL = env_bool("LOCAL_MODEL", True)

REST_FRAMEWORK: dict[str, object] = {
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "UNAUTHENTICATED_USER": None,
}

# Behind a TLS-terminating proxy (nginx) that sets X-Forwarded-Proto.
if HTTPS:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True

# Largest request body the /v1 API accepts; answered with 413 beyond it.
MAX_REQUEST_BYTES = env_int("MAX_REQUEST_BYTES", 8 * 1024 * 1024, minimum=1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_REQUEST_BYTES
# Seconds of upstream silence after which a /v1 stream gets a `: keep-alive` comment line.
GATEWAY_KEEPALIVE_SECONDS = env_int("GATEWAY_KEEPALIVE_SECONDS", 15, minimum=1)
# Seconds the usage ledger's writer may wait to gather a larger batch of rows (0: write as soon as
# it is free; rows of requests answered meanwhile still go in one INSERT). Flushed at shutdown.
LEDGER_FLUSH_SECONDS = float(env_int("LEDGER_FLUSH_SECONDS", 0, minimum=0, maximum=3600))
# Seconds before the /v1 rights cache's listener reconnects after losing its database connection
# (doubling up to 30 times that while it keeps failing); meanwhile rights are read from the database.
GATEWAY_LISTEN_RETRY_SECONDS = env_int("GATEWAY_LISTEN_RETRY_SECONDS", 1, minimum=1)
# Pooled connections per upstream provider (and worker process).
GATEWAY_UPSTREAM_CONNECTIONS = env_int("GATEWAY_UPSTREAM_CONNECTIONS", 256, minimum=1)

LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
if LOG_LEVEL not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
    raise ImproperlyConfigured(f"LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL, got {LOG_LEVEL!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
        "pgserver": {"level": "WARNING"},
    },
}
