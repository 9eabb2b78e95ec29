"""Settings shared by every deployment, read from the environment (12-factor).

With no environment at all this gives the *embedded default*: an SQLite file under ``var/`` and
Celery tasks run in-process, so ``scripts/run`` works on a fresh machine with nothing else.
"""

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DJANGO_DEBUG", default=False)
# The insecure default key only ever exists for the embedded default; production.py refuses it.
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="insecure-embedded-default-key-change-me")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "mapsite.core.admin_site.MapAdminConfig",  # django.contrib.admin, workflow-grouped index
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "simple_history",
    "mapsite.core",
    "mapsite.pipeline",
    "lab",
    "experiment",
    "ephys",
    "psth",
    "ccf",
    "publication",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Records request.user on every history row, for admin *and* API edits.
    "simple_history.middleware.HistoryRequestMiddleware",
]

ROOT_URLCONF = "mapsite.urls"
WSGI_APPLICATION = "mapsite.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "mapsite" / "templates"],
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

DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'mapsite.sqlite3'}"),
}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=0)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
USE_I18N = False
USE_TZ = True
# Everything is stored in UTC; this is the lab's wall clock, used for display and for dates
# typed by staff in the admin.
TIME_ZONE = env.str("LAB_TIME_ZONE", default="America/New_York")

STATIC_URL = "static/"
STATIC_ROOT = env.path("DJANGO_STATIC_ROOT", default=VAR_DIR / "static")
MEDIA_URL = "media/"
MEDIA_ROOT = env.path("DJANGO_MEDIA_ROOT", default=VAR_DIR / "media")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# --- Data roots --------------------------------------------------------------------------------
# Every file path handed to an ingest must resolve inside one of these (mapsite.core.paths).
# Behavior roots are "rig=path" pairs: the rig that wrote the files is part of the session record.
BEHAVIOR_DATA_ROOTS = env.list("MAP_BEHAVIOR_ROOTS", default=[])
EPHYS_DATA_ROOTS = env.list("MAP_EPHYS_ROOTS", default=[])
# The periodic ephys scan leaves a session folder alone until its files are this many seconds
# old (a sorter still writing, a copy in progress); ``manage.py ingest_ephys`` does not wait.
EPHYS_SCAN_SETTLE_SECONDS = 60.0
# Username recorded on sessions created by ingest when no better person is known.
SESSION_DEFAULT_USER = env.str("MAP_SESSION_USER", default="unknown")

# --- REST API ----------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["mapsite.core.permissions.IsAuthenticatedReadStaffWrite"],
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_PAGINATION_CLASS": "mapsite.core.pagination.CappedPageNumberPagination",
    "PAGE_SIZE": 100,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.UserRateThrottle",
        "rest_framework.throttling.AnonRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "user": env.str("API_THROTTLE_USER", default="20000/hour"),
        "anon": env.str("API_THROTTLE_ANON", default="100/hour"),
    },
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "MAP-ephys data API",
    "DESCRIPTION": (
        "Subjects, sessions, trials, events, photostimulation, ephys units and analyses of the "
        "MAP collaboration. Every endpoint needs a token (`Authorization: Token <key>`) or a "
        "session login; writes need staff rights."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Nothing is readable anonymously, not even the API description.
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
}

# Throttle counters (and other cached values) must be shared by every web process in
# production: CACHE_URL=redis://... there; a per-process memory cache on the embedded default.
CACHES = {"default": env.cache_url("CACHE_URL", default="locmemcache://")}

# --- Celery ------------------------------------------------------------------------------------
# No broker configured → the embedded default: tasks run in-process, right where they are sent
# (the in-memory transport is never used then; it only keeps Celery from looking for a server).
CELERY_TASK_ALWAYS_EAGER = not env.str("CELERY_BROKER_URL", default="")
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="") or "memory://localhost/"
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default=None) or None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "compute"
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=30 * 60)
CELERY_TASK_TIME_LIMIT = CELERY_TASK_SOFT_TIME_LIMIT + 60
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = "UTC"
# Periodic sweep: queue missing keys of every step and revive jobs whose worker died.
PIPELINE_SWEEP_SECONDS = env.int("PIPELINE_SWEEP_SECONDS", default=60)
# A "running" job is only considered orphaned after this long without its row lock held.
PIPELINE_ORPHAN_GRACE_SECONDS = env.int("PIPELINE_ORPHAN_GRACE_SECONDS", default=30)
PIPELINE_MAX_ATTEMPTS = env.int("PIPELINE_MAX_ATTEMPTS", default=3)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
