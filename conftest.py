"""Fixtures shared by every app's tests. Keep this small: app-specific fixtures live in the app.

Transactional tests (``django_db(transaction=True)``) end with a flush that empties every table,
including the lookup rows of the data migrations, which later tests - and, with ``--reuse-db``,
later runs - need. So the non-empty tables are snapshot once per run (in a schema of their own,
see mapsite.core.testing) and copied back right after each transactional test's flush.
"""

import os
import socket
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from rest_framework.test import APIClient

from mapsite.core import testing
from mapsite.core.tests.api_checks import new_user, token_client

ROOT = Path(__file__).resolve().parent
SNAPSHOT_SCHEMA = f"test_lookup_snapshot_{os.getpid()}"
_snapshot_tables: list[str] = []

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


# --- keeping the lookup rows across transactional tests -----------------------------------------


@pytest.fixture(scope="session", autouse=True)
def _lookup_snapshot(request: pytest.FixtureRequest) -> Iterator[None]:
    """Snapshot the non-empty tables before any transactional test of this run flushed them.

    Session-scoped, so it runs before any test's transaction; only in runs that use the database.
    """
    if not any(testing.uses_db(item) for item in request.session.items):
        yield
        return
    request.getfixturevalue("django_db_setup")
    blocker = request.getfixturevalue("django_db_blocker")
    with blocker.unblock():
        _snapshot_tables[:] = testing.take_snapshot(SNAPSHOT_SCHEMA)
        if testing.LOOKUP_SENTINEL_TABLE not in _snapshot_tables:
            pytest.fail(
                "the test database has no lookup rows (a transactional test emptied it in an "
                "earlier run?): re-create it with --create-db"
            )
    yield
    with blocker.unblock():
        testing.drop_snapshot(SNAPSHOT_SCHEMA)
    _snapshot_tables.clear()


@pytest.fixture(autouse=True)
def _lookups_present(request: pytest.FixtureRequest) -> None:
    """Before a transactional test: the lookups are there (an interrupted restore?), or back."""
    if not testing.is_transactional(request.node) or not _snapshot_tables:
        return
    request.getfixturevalue("transactional_db")
    from lab.models import BrainArea

    if not BrainArea.objects.exists():
        testing.restore_snapshot(SNAPSHOT_SCHEMA, _snapshot_tables)


def pytest_fixture_post_finalizer(
    fixturedef: pytest.FixtureDef, request: pytest.FixtureRequest
) -> None:
    """Right after pytest-django flushed the database of a transactional test: restore."""
    if fixturedef.argname != "_django_db_helper" or not _snapshot_tables:
        return
    item = request.node
    if not isinstance(item, pytest.Item) or not testing.is_transactional(item):
        return
    from pytest_django.plugin import blocking_manager_key

    with item.config.stash[blocking_manager_key].unblock():
        testing.restore_snapshot(SNAPSHOT_SCHEMA, _snapshot_tables)


# --- bounding tests that wait on threads, workers and processes -------------------------------


@pytest.fixture
def hard_timeout() -> Iterator[Callable[[int], None]]:
    """``hard_timeout(seconds)``: interrupt the test (main thread) if it is still running then."""
    with testing.hard_timeout() as arm:
        yield arm


# --- API clients (every app's API tests) --------------------------------------------------


@pytest.fixture
def user(db: None) -> Any:
    return new_user()


@pytest.fixture
def staff(db: None) -> Any:
    return new_user(staff=True)


@pytest.fixture
def user_client(user: Any) -> APIClient:
    return token_client(user)


@pytest.fixture
def staff_client(staff: Any) -> APIClient:
    return token_client(staff)
