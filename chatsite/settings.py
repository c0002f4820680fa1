"""Settings for chatsite, read from environment variables (see README "Configuration")."""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import dj_database_url
import django_stubs_ext
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from core.env import env_bool, env_choice, env_float, env_int, env_list, env_origins, env_str, env_url

# Lets `admin.ModelAdmin[Model]` and other generics work at run time as they do for mypy.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", False)
# Whether browsers reach us over https (usually through a TLS-terminating proxy). Production sets it.
HTTPS = env_bool("HTTPS", False)
# How many reverse proxies of ours stand in front, each appending the address it saw to X-Forwarded-For:
# the client's address (for lockouts and rate limits) is the one the outermost of them wrote.
PROXY_HOPS = env_int("PROXY_HOPS", 1 if HTTPS else 0, minimum=0, maximum=10)


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
    "chatsite.admin_site.SiteAdminConfig",  # django.contrib.admin, with our index (chatsite.admin_site)
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "servestatic.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    "allauth.socialaccount.providers.openid_connect",
    "allauth.mfa",
    "axes",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "chatsite",
    "accounts",
    "catalogue",
    "usage",
    "operations",
    "tools",
    "gateway",
    "conversations",
    "responses",
    "knowledge",
    "procrastinate.contrib.django",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "chatsite.csp.ContentSecurityPolicyMiddleware",
    "servestatic.middleware.ServeStaticMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "accounts.middleware.StaffTwoFactorMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into the lockout page.
    "axes.middleware.AxesMiddleware",
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
                "accounts.context_processors.auth_settings",
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
    # A connection is checked as it leaves the pool: after a database restart every idle one is dead, and
    # handing them out would fail as many requests (core.db's threads keep theirs, so pay nothing).
    config["CONN_HEALTH_CHECKS"] = True
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
AUTHENTICATION_BACKENDS = [
    # First: refuses a locked-out account or address before any password is checked.
    "accounts.auth.LockoutBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]

# --- Sign-up, sign-in, single sign-on, two-factor (accounts/auth.py tells how they fit) ----------------
# Who may create an account: open (anyone), invite (with an invite link from an admin or a member),
# approval (anyone, but an admin activates the account), closed (nobody; admins add users).
SIGNUP = env_choice("SIGNUP", ("open", "invite", "approval", "closed"), "open")
# 0: the sign-in page offers single sign-on only and passwords are refused.
LOCAL_LOGIN = env_bool("LOCAL_LOGIN", True)
# Staff must set up two-factor authentication before they can use any page but that set-up.
STAFF_2FA_REQUIRED = env_bool("STAFF_2FA_REQUIRED", False)
INVITE_DAYS = env_int("INVITE_DAYS", 7, minimum=1, maximum=365)

ACCOUNT_ADAPTER = "accounts.auth.AccountAdapter"
SOCIALACCOUNT_ADAPTER = "accounts.auth.SocialAccountAdapter"
ACCOUNT_FORMS = {"login": "accounts.forms.LoginForm", "signup": "accounts.forms.SignupForm"}
ACCOUNT_LOGIN_METHODS = {"username"}
ACCOUNT_SIGNUP_FIELDS = ["username*", "email", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = "none"
ACCOUNT_LOGOUT_ON_GET = False
ACCOUNT_SESSION_REMEMBER = None
ACCOUNT_PREVENT_ENUMERATION = True
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[chatsite] "
# Per address: sign-up and password reset (allauth answers 429 beyond these). Sign-in is never refused
# per address (accounts.lockout slows a busy address down instead); five failures of one account within
# five minutes pause that account's sign-ins (a form error).
AUTH_RATE_PER_MINUTE = env_int("AUTH_RATE_PER_MINUTE", 20, minimum=1)
ACCOUNT_RATE_LIMITS = {
    "login": None,
    "signup": f"{AUTH_RATE_PER_MINUTE}/m/ip",
    "login_failed": "5/5m/key",
    "reset_password": f"{AUTH_RATE_PER_MINUTE}/m/ip,5/m/key",
}
SOCIALACCOUNT_AUTO_SIGNUP = True
SOCIALACCOUNT_LOGIN_ON_GET = False
SOCIALACCOUNT_EMAIL_AUTHENTICATION = False
SOCIALACCOUNT_STORE_TOKENS = False
SOCIALACCOUNT_ONLY = False


def _oidc_apps() -> list[dict[str, object]]:
    """One OpenID Connect provider from the environment; more are added in the admin (Social applications)."""
    server_url = env_url("OIDC_SERVER_URL", ("https", "http"))
    client_id = env_str("OIDC_CLIENT_ID")
    if not server_url:
        return []
    if not client_id:
        raise ImproperlyConfigured("OIDC_CLIENT_ID must be set when OIDC_SERVER_URL is")
    provider_id = env_str("OIDC_PROVIDER_ID", "sso")
    if not re.fullmatch(r"[a-z0-9-]{1,40}", provider_id):
        raise ImproperlyConfigured(f"OIDC_PROVIDER_ID must be lowercase letters, digits and '-', got {provider_id!r}")
    return [
        {
            "provider_id": provider_id,
            "name": env_str("OIDC_NAME", "Single sign-on"),
            "client_id": client_id,
            "secret": env_str("OIDC_CLIENT_SECRET"),
            "settings": {"server_url": server_url, "oauth_pkce_enabled": True},
        }
    ]


SOCIALACCOUNT_PROVIDERS = {"openid_connect": {"OAUTH_PKCE_ENABLED": True, "APPS": _oidc_apps()}}
# The claim (in the user info, else the ID token) naming the groups a single sign-on puts the user in.
OIDC_GROUPS_CLAIM = env_str("OIDC_GROUPS_CLAIM", "groups")

MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = env_str("MFA_TOTP_ISSUER", "chatsite")
# A code of the previous or next 30 s step is accepted too (RFC 6238's allowance for clocks and typing);
# each code is accepted once.
MFA_TOTP_TOLERANCE = 1

# Failed logins (accounts.lockout, django-axes): LOGIN_FAILURE_LIMIT failures of an account from one
# address lock that pair, LOGIN_ACCOUNT_FAILURE_LIMIT (a higher bar) failures of it from anywhere lock the
# account, for LOGIN_LOCKOUT_MINUTES; an address alone is never locked, its sign-ins wait (a second,
# doubling, up to LOGIN_SLOWDOWN_MAX_SECONDS) once it has more than LOGIN_SLOWDOWN_AFTER recent failures.
# A lock expires, and failures during it do not extend it, so nobody can keep an account locked by
# failing its password over and over. `manage.py axes_reset_username NAME` lifts one at once; the
# admin lists them (Axes: access attempts).
AXES_HANDLER = "accounts.lockout.LockoutHandler"
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 10, minimum=1)
LOGIN_ACCOUNT_FAILURE_LIMIT = env_int("LOGIN_ACCOUNT_FAILURE_LIMIT", 3 * AXES_FAILURE_LIMIT, minimum=AXES_FAILURE_LIMIT)
LOGIN_SLOWDOWN_AFTER = env_int("LOGIN_SLOWDOWN_AFTER", 5, minimum=0)
LOGIN_SLOWDOWN_MAX_SECONDS = env_int("LOGIN_SLOWDOWN_MAX_SECONDS", 8, minimum=1, maximum=60)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_LOCKOUT_MINUTES", 15, minimum=1, maximum=24 * 60))
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"], "username"]  # the order LockoutHandler reads
AXES_RESET_ON_SUCCESS = True
AXES_USERNAME_CALLABLE = "accounts.auth.attempted_username"
AXES_LOCKOUT_TEMPLATE = "accounts/locked_out.html"
AXES_HTTP_RESPONSE_CODE = 429
AXES_VERBOSE = False
# The same client address for lockouts and rate limits (accounts.auth.client_ip).
AXES_CLIENT_IP_CALLABLE = "accounts.auth.client_ip"

# Password-reset mail: printed on the console unless an SMTP server is named.
EMAIL_BACKEND = {
    "console": "django.core.mail.backends.console.EmailBackend",
    "smtp": "django.core.mail.backends.smtp.EmailBackend",
}[env_choice("EMAIL_BACKEND", ("console", "smtp"), "console")]
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 587, minimum=1, maximum=65535)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "chatsite <noreply@localhost>")

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES: dict[str, dict[str, object]] = {
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
    CHANNEL_LAYERS = {"default": {"BACKEND": "chatsite.layers.SweptInMemoryChannelLayer"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Rate limits (usage.limits): how long each process caches limit configuration (changes also
# invalidate it through Redis).
LIMITS_CACHE_SECONDS = env_int("LIMITS_CACHE_SECONDS", 10, minimum=0)

# Environment variables a provider's key may be read from (glob patterns; catalogue.keysource). Names
# the settings read (SECRET_KEY, DATABASE_URL, ADMIN_PASSWORD, ...) are refused whatever they say.
PROVIDER_KEY_ENV_ALLOWED = env_list("PROVIDER_KEY_ENV_ALLOWED", ["*_API_KEY"])
for _pattern in PROVIDER_KEY_ENV_ALLOWED:
    if not re.fullmatch(r"[A-Za-z0-9_*?]+", _pattern) or not _pattern.strip("*?"):
        raise ImproperlyConfigured(
            f"PROVIDER_KEY_ENV_ALLOWED entries must be variable names or patterns such as *_API_KEY, got {_pattern!r}"
        )

# The chat socket (conversations.frames): each socket may send CHAT_SOCKET_FRAME_BURST frames at once,
# then CHAT_SOCKET_FRAMES_PER_SECOND; frames above CHAT_SOCKET_MAX_FRAME_BYTES are refused; one user has
# at most CHAT_MAX_GENERATIONS replies being written at once (all conversations, all workers).
CHAT_SOCKET_FRAMES_PER_SECOND = env_int("CHAT_SOCKET_FRAMES_PER_SECOND", 5, minimum=1)
CHAT_SOCKET_FRAME_BURST = env_int("CHAT_SOCKET_FRAME_BURST", 20, minimum=1)
CHAT_SOCKET_MAX_FRAME_BYTES = env_int("CHAT_SOCKET_MAX_FRAME_BYTES", 1024 * 1024, minimum=1024)
CHAT_MAX_GENERATIONS = env_int("CHAT_MAX_GENERATIONS", 3, minimum=1)
# How often each worker checks whether Redis lost its data (conversations.rejoin): the chat's sockets
# and replies then join their groups again.
CHAT_REJOIN_CHECK_SECONDS = env_float("CHAT_REJOIN_CHECK_SECONDS", 2.0, minimum=0.05)

# Files attached in the chat (conversations.files): kept through the storage named "attachments" (the
# file system under MEDIA_ROOT unless ATTACHMENTS_STORAGE names another Django storage class), never at a
# public URL: only their owner downloads them, through conversations.file_views. Each file is at most
# ATTACHMENT_MAX_BYTES; a message carries at most ATTACHMENTS_PER_MESSAGE; a document's text is cut at
# ATTACHMENT_MAX_TEXT_CHARS (the model's context is checked on sending as well).
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))
ATTACHMENTS_STORAGE = env_str("ATTACHMENTS_STORAGE", "django.core.files.storage.FileSystemStorage")


def _private_storage(folder: str) -> dict[str, object]:
    """Users' files under MEDIA_ROOT/folder (or in ATTACHMENTS_STORAGE's backend), never at a public URL."""
    on_disk = ATTACHMENTS_STORAGE == "django.core.files.storage.FileSystemStorage"
    return {
        "BACKEND": ATTACHMENTS_STORAGE,
        "OPTIONS": {"location": MEDIA_ROOT / folder, "base_url": None} if on_disk else {},
    }


STORAGES["attachments"] = _private_storage("attachments")
# Knowledge bases' uploads (knowledge.models.StoredFile), in the same backend.
STORAGES["knowledge"] = _private_storage("knowledge")
# Knowledge bases (/v1/files, /v1/vector_stores): one upload's size, and what one user may keep in all.
KNOWLEDGE_MAX_FILE_BYTES = env_int("KNOWLEDGE_MAX_FILE_BYTES", 64 * 1024 * 1024, minimum=1024)
KNOWLEDGE_QUOTA_BYTES = env_int("KNOWLEDGE_QUOTA_BYTES", 1024 * 1024 * 1024, minimum=1024)
KNOWLEDGE_QUOTA_FILES = env_int("KNOWLEDGE_QUOTA_FILES", 1000, minimum=1)
# The embedding model a new vector store gets when its request names none (the bundled one when it runs);
# empty, or a model that is not usable: the store is searched by full text until one is chosen.
KNOWLEDGE_EMBEDDING_MODEL = env_str("KNOWLEDGE_EMBEDDING_MODEL", "wordllama-256")
# `make run` starts the bundled embedding model (WordLlama, inside the `wordllama` package) as provider
# `local-embed` (chatsite.local_embedding).
LOCAL_EMBEDDING = env_bool("LOCAL_EMBEDDING", True)
# 0: `make run` starts no knowledge ingestion worker (run `manage.py knowledge_worker` elsewhere instead).
KNOWLEDGE_WORKER = env_bool("KNOWLEDGE_WORKER", True)
ATTACHMENT_MAX_BYTES = env_int("ATTACHMENT_MAX_BYTES", 10 * 1024 * 1024, minimum=1024)
ATTACHMENTS_PER_MESSAGE = env_int("ATTACHMENTS_PER_MESSAGE", 10, minimum=1, maximum=100)
ATTACHMENT_MAX_TEXT_CHARS = env_int("ATTACHMENT_MAX_TEXT_CHARS", 2_000_000, minimum=1000)
# Uploads above this spill to a temporary file instead of memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024

# `make run` starts the bundled SmolLM2 model and registers it as provider `local` (chatsite.local_model).
LOCAL_MODEL = env_bool("LOCAL_MODEL", True)
# How many llama.cpp servers serve the bundled model, its threads split between them. Each answers one request
# at a time, so four let four chats generate at once instead of queueing; on 2 cores four servers of one
# thread also gave the most tokens per second in all (bench/local_fairness.py, figures in the README).
LOCAL_MODEL_SERVERS = env_int("LOCAL_MODEL_SERVERS", 4, minimum=1, maximum=16)

# The REST API under /api/ (api/, and each app's api.py): signed-in browsers (session with CSRF) and
# scripts with an issued key; JSON only; one error shape (core/errors.py).
REST_FRAMEWORK: dict[str, object] = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.api_auth.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["core.rest.SafeJSONParser"],
    "DEFAULT_PAGINATION_CLASS": "core.rest.Pages",
    "DEFAULT_THROTTLE_CLASSES": ["core.rest.PerUserThrottle"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "core.errors.exception_handler",
}
# Requests per minute each user (or address, before sign-in) may make to /api/; 0 lifts the limit.
API_REQUESTS_PER_MINUTE = env_int("API_REQUESTS_PER_MINUTE", 600, minimum=0)
SPECTACULAR_SETTINGS = {
    "TITLE": "chatsite REST API",
    "DESCRIPTION": (
        "Your conversations, their messages, your API keys and your usage. Sign in (browser session, with "
        "the CSRF token on changes) or send an API key: `Authorization: Bearer sk-...`. Every error is "
        '`{"error": {"message", "type", "param", "code"}}`. The OpenAI-compatible model API is under /v1.'
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SCHEMA_PATH_PREFIX": "/api/",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "api.schema.add_error_responses",
    ],
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
# Every page's Content-Security-Policy (chatsite.csp): our own scripts and styles only, no inline
# script, images from us or data:/blob:, no framing, connections back to us only.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:", "blob:"],
        "font-src": [SELF, "data:"],
        "connect-src": [SELF],  # and the page's own ws:// or wss:// origin, added per request
        "media-src": [SELF],
        "object-src": [NONE],
        "frame-src": [NONE],
        "worker-src": [SELF],
        "frame-ancestors": [NONE],
        "base-uri": [NONE],
        # No form-action: the single sign-on button's POST is answered with a redirect to the identity
        # provider, which a form-action of 'self' would stop.
    }
}
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True

# Largest request body the /v1 API accepts; answered with 413 beyond it.
MAX_REQUEST_BYTES = env_int("MAX_REQUEST_BYTES", 8 * 1024 * 1024, minimum=1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_REQUEST_BYTES
# Seconds of upstream silence after which a /v1 stream gets a `: keep-alive` comment line.
GATEWAY_KEEPALIVE_SECONDS = env_int("GATEWAY_KEEPALIVE_SECONDS", 15, minimum=1)
# Routing across a model's deployments (gateway.routing, gateway.health): attempts per request and
# the time they may take until the first byte; the circuit breaker's trip point, cooldown (doubling
# on repeated trips, up to the maximum) and how often a cooling deployment's model list is asked for.
# The exact-match response cache (gateway.cache): the largest answer kept, and all entries together.
GATEWAY_CACHE_MAX_ENTRY_BYTES = env_int("GATEWAY_CACHE_MAX_ENTRY_BYTES", 256 * 1024, minimum=1024)
GATEWAY_CACHE_MAX_TOTAL_BYTES = env_int("GATEWAY_CACHE_MAX_TOTAL_BYTES", 256 * 1024 * 1024, minimum=1024)
ROUTING_MAX_ATTEMPTS = env_int("ROUTING_MAX_ATTEMPTS", 3, minimum=1, maximum=20)
ROUTING_DEADLINE_SECONDS = env_float("ROUTING_DEADLINE_SECONDS", 120.0, minimum=1)
ROUTING_FAILURES_TO_TRIP = env_int("ROUTING_FAILURES_TO_TRIP", 3, minimum=1)
ROUTING_COOLDOWN_SECONDS = env_float("ROUTING_COOLDOWN_SECONDS", 5.0, minimum=0.1)
ROUTING_COOLDOWN_MAX_SECONDS = env_float("ROUTING_COOLDOWN_MAX_SECONDS", 300.0, minimum=0.1)
ROUTING_PROBE_SECONDS = env_float("ROUTING_PROBE_SECONDS", 5.0, minimum=0.5)
# Without Redis, each worker leaves its deployments' circuits there for `models health`, the admin and
# /metrics to read (gateway.health); the launcher empties it when it starts.
HEALTH_DIR = VAR_DIR / "health"
# Seconds the usage ledger's writer may wait to gather a larger batch of rows (0: write as soon as
# it is free; rows of requests answered meanwhile still go in one INSERT). Flushed at shutdown.
LEDGER_FLUSH_SECONDS = float(env_int("LEDGER_FLUSH_SECONDS", 0, minimum=0, maximum=3600))
# Seconds between the ledger's notes of the calls in flight (a row each, with what it sent so far): what
# a worker killed mid-stream can leave unrecorded. A note is one UPDATE per worker, whatever the calls.
LEDGER_PROGRESS_SECONDS = env_float("LEDGER_PROGRESS_SECONDS", 2.0, minimum=0.1, maximum=3600)
# Seconds before the /v1 rights cache's listener reconnects after losing its database connection
# (doubling up to 30 times that while it keeps failing); meanwhile rights are read from the database.
GATEWAY_LISTEN_RETRY_SECONDS = env_int("GATEWAY_LISTEN_RETRY_SECONDS", 1, minimum=1)
# Pooled connections per upstream provider (and worker process).
GATEWAY_UPSTREAM_CONNECTIONS = env_int("GATEWAY_UPSTREAM_CONNECTIONS", 256, minimum=1)

# Tools the server runs for models (tools/): web search, page reading, MCP servers.
SEARXNG_URL = env_url("SEARXNG_URL", ("http", "https"))
TOOLS_SEARCH_ENGINE = env_choice("TOOLS_SEARCH_ENGINE", ("searxng", "brave", "tavily"), "searxng")
BRAVE_SEARCH_API_KEY = env_str("BRAVE_SEARCH_API_KEY")
TAVILY_API_KEY = env_str("TAVILY_API_KEY")
TOOLS_SEARCH_RESULTS = env_int("TOOLS_SEARCH_RESULTS", 5, minimum=1, maximum=20)
TOOLS_SEARCH_TIMEOUT = env_float("TOOLS_SEARCH_TIMEOUT", 10.0, minimum=0.1)
TOOLS_FETCH_MAX_BYTES = env_int("TOOLS_FETCH_MAX_BYTES", 2_000_000, minimum=1024)
TOOLS_FETCH_TIMEOUT = env_float("TOOLS_FETCH_TIMEOUT", 15.0, minimum=0.1)
# Characters of one tool result the model gets; the rest is cut (and the cut said).
TOOLS_RESULT_MAX_CHARS = env_int("TOOLS_RESULT_MAX_CHARS", 20_000, minimum=100)
TOOLS_MCP_TIMEOUT = env_float("TOOLS_MCP_TIMEOUT", 30.0, minimum=0.1)
TOOLS_MCP_LIST_TTL = env_float("TOOLS_MCP_LIST_TTL", 60.0, minimum=0)
# The tool loop: at most this many model calls, and this many seconds, for one answer.
TOOLS_MAX_STEPS = env_int("TOOLS_MAX_STEPS", 8, minimum=1, maximum=100)
TOOLS_MAX_SECONDS = env_float("TOOLS_MAX_SECONDS", 300.0, minimum=1)
# Tool calls one user may make in an hour (0: no limit).
TOOLS_CALLS_PER_HOUR = env_int("TOOLS_CALLS_PER_HOUR", 0, minimum=0)
# Internal networks (CIDR, comma-separated) that page reading may reach all the same: the operator's own sites.
try:
    TOOLS_INTERNAL_NETWORKS = [ipaddress.ip_network(n, strict=False) for n in env_list("TOOLS_INTERNAL_NETWORKS", [])]
except ValueError as exc:
    raise ImproperlyConfigured(f"TOOLS_INTERNAL_NETWORKS must list networks like 10.0.0.0/8: {exc}") from None

LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
if LOG_LEVEL not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
    raise ImproperlyConfigured(f"LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL, got {LOG_LEVEL!r}")
# text: one readable line per record; json: one JSON object per record, and one per /v1 request and chat
# reply (operations.logs) with its request id, user, key prefix, model, deployment, status, tokens, latency.
LOG_FORMAT = env_choice("LOG_FORMAT", ("text", "json"), "text")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "core.request_id.RequestIdFilter"}},
    "formatters": {
        "line": {"format": "%(asctime)s %(levelname)s %(name)s%(request_id)s: %(message)s"}
        if LOG_FORMAT == "text"
        else {
            "()": "operations.logs.JsonLines",
            "format": "%(asctime)s %(levelname)s %(name)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        }
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "line", "filters": ["request_id"]}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
        # httpx2 logs each request's URL at INFO: search queries, and URLs users gave.
        "httpx2": {"level": "WARNING"},
        "httpcore2": {"level": "WARNING"},
        "pgserver": {"level": "WARNING"},
        # Its lines are what LOG_FORMAT=json is for, whatever LOG_LEVEL says.
        "operations.requests": {"level": "INFO"},
        # The ingestion queue's set-up, told at every start of every process.
        "procrastinate.blueprints": {"level": "WARNING"},
        "procrastinate.periodic": {"level": "WARNING"},
    },
}

# --- Operations (operations/, README "Operations") --------------------------------------------------------
# GET /metrics answers a scraper sending METRICS_TOKEN as a bearer token, or one from METRICS_ALLOWED_ADDRESSES
# (addresses or networks, such as 10.0.0.0/8); with neither set it is a 404 and no metric is kept.
METRICS_TOKEN = env_str("METRICS_TOKEN")
if METRICS_TOKEN and len(METRICS_TOKEN) < 16:
    raise ImproperlyConfigured("METRICS_TOKEN must be at least 16 characters long")


def _networks(name: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    networks = []
    for item in env_list(name, []):
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ImproperlyConfigured(f"{name} must list addresses or networks (10.0.0.0/8), got {item!r}") from None
    return networks


METRICS_ALLOWED_NETWORKS = _networks("METRICS_ALLOWED_ADDRESSES")
METRICS_ENABLED = bool(METRICS_TOKEN or METRICS_ALLOWED_NETWORKS)
# Every worker process writes its metrics there and a scrape adds them up (prometheus_client reads the
# variable from the environment); the launcher empties it when it starts.
PROMETHEUS_MULTIPROC_DIR = env_str("PROMETHEUS_MULTIPROC_DIR", str(VAR_DIR / "metrics"))
if METRICS_ENABLED:
    Path(PROMETHEUS_MULTIPROC_DIR).mkdir(parents=True, exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = PROMETHEUS_MULTIPROC_DIR
# Traces over OTLP/HTTP (protobuf) when set, e.g. http://collector:4318 (spans go to its /v1/traces); the
# exporter reads the other standard OTEL_EXPORTER_OTLP_* variables itself (headers, timeout).
OTEL_EXPORTER_OTLP_ENDPOINT = env_url("OTEL_EXPORTER_OTLP_ENDPOINT", ("http", "https"))
OTEL_SERVICE_NAME = env_str("OTEL_SERVICE_NAME", "chatsite")
