"""Fixtures shared by every app's tests. Keep this small: app-specific fixtures live in the app."""

import os
import socket
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent

# Variables that configure the site; a subprocess must not inherit them from the test run.
_CONFIG_PREFIXES = ("DJANGO_", "DATABASE_", "CELERY_", "MAP_", "API_THROTTLE_", "PIPELINE_")
_CONFIG_NAMES = {"LAB_TIME_ZONE", "LOG_LEVEL", "TEST_CELERY_BROKER_URL"}


@pytest.fixture(scope="session", autouse=True)
def _static_root_exists() -> None:
    """Whitenoise warns on every test request when STATIC_ROOT is missing (no collectstatic)."""
    from django.conf import settings

    Path(settings.STATIC_ROOT).mkdir(parents=True, exist_ok=True)


@pytest.fixture
def clean_env() -> Callable[..., dict[str, str]]:
    """Build a subprocess environment free of the test run's site configuration.

    ``clean_env(DJANGO_SETTINGS_MODULE="mapsite.settings", ...)`` returns os.environ minus every
    configuration variable, plus the given ones.
    """

    def build(**overrides: str) -> dict[str, str]:
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(_CONFIG_PREFIXES) and key not in _CONFIG_NAMES
        }
        env.update(overrides)
        return env

    return build


@pytest.fixture
def manage_py() -> list[str]:
    """The command prefix that runs this checkout's manage.py with the current interpreter."""
    return [sys.executable, str(ROOT / "manage.py")]


@pytest.fixture
def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def demo_lab(db: None) -> None:
    """The demo lab data of ``manage.py load_demo``: people, rigs, subjects (dl25 among them)."""
    from lab.demo import LAB_STEPS

    for step in LAB_STEPS:
        step()
