"""Production settings: secure by default. ``manage.py check --deploy`` must report nothing.

Set DJANGO_SETTINGS_MODULE=mapsite.settings.production and provide DJANGO_SECRET_KEY,
DJANGO_ALLOWED_HOSTS, DATABASE_URL and CELERY_BROKER_URL.
"""

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import CELERY_TASK_ALWAYS_EAGER, SECRET_KEY, env

DEBUG = False
if SECRET_KEY.startswith("insecure-") or len(SECRET_KEY) < 50:
    raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set to a random value of 50+ characters")

if CELERY_TASK_ALWAYS_EAGER:
    raise ImproperlyConfigured("CELERY_BROKER_URL must be set: production runs tasks on workers")

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"
DATABASES = {"default": env.db_url("DATABASE_URL")}  # no SQLite fallback in production
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
