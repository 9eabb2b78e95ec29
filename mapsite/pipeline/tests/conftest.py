"""Fixtures for testing the pipeline-step mechanism.

* ``make_step``: registers throwaway steps (keyed on ``lab.Rig`` rows) in the REGISTRY for one
  test and removes them afterwards. Their default ``make`` records the call and writes a
  ``lab.ModifiedGene`` row named ``"<step>:<rig pk>"`` (unique: a second make of a key would fail).
* Transactional tests (``django_db(transaction=True)``, needed for real concurrency and for a
  real worker) end with a flush that empties *every* table, including the lookup rows the data
  migrations loaded. Later tests - and, because of ``--reuse-db``, later runs - need those rows,
  so this conftest snapshots the non-empty tables once per run (in a schema of their own) and
  copies them back after each transactional test here. That takes a few milliseconds, where
  ``serialized_rollback`` takes seconds per test (thousands of probe electrodes).
"""

import os
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from types import FrameType

import pytest
from django.db import connection, models, transaction

from lab.models import ModifiedGene, Rig
from mapsite.pipeline.steps import REGISTRY, Step, register

SNAPSHOT_SCHEMA = f"pipeline_tests_snapshot_{os.getpid()}"
_snapshot_tables: list[str] = []


# --- keeping the lookup rows across transactional tests -----------------------------------------


def _quote(name: str) -> str:
    return connection.ops.quote_name(name)


def _take_snapshot() -> list[str]:
    tables = connection.introspection.django_table_names(only_existing=True, include_views=False)
    kept = []
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(f"DROP SCHEMA IF EXISTS {SNAPSHOT_SCHEMA} CASCADE")
        cur.execute(f"CREATE SCHEMA {SNAPSHOT_SCHEMA}")
        for table in sorted(tables):
            cur.execute(f"SELECT EXISTS (SELECT 1 FROM {_quote(table)})")
            if cur.fetchone()[0]:
                cur.execute(
                    f"CREATE TABLE {SNAPSHOT_SCHEMA}.{_quote(table)} AS TABLE {_quote(table)}"
                )
                kept.append(table)
    return kept


def _restore_snapshot(tables: list[str]) -> None:
    """Put the snapshot rows back (after a flush, post_migrate may have re-created some)."""
    if not tables:
        return
    with transaction.atomic(), connection.cursor() as cur:
        # Django's foreign keys are DEFERRABLE INITIALLY DEFERRED: the order is free. DELETE, not
        # TRUNCATE: the tables are (nearly) empty, and TRUNCATE costs a file operation each.
        for table in tables:
            cur.execute(f"DELETE FROM {_quote(table)}")
        for table in tables:
            snapshot = f"{SNAPSHOT_SCHEMA}.{_quote(table)}"
            cur.execute(f"INSERT INTO {_quote(table)} SELECT * FROM {snapshot}")


def _is_transactional(item: pytest.Item) -> bool:
    from pytest_django.fixtures import validate_django_db

    marker = item.get_closest_marker("django_db")
    return bool(marker and validate_django_db(marker)[0]) or "transactional_db" in getattr(
        item, "fixturenames", ()
    )


@pytest.fixture(scope="session", autouse=True)
def _lookup_snapshot(django_db_setup: None, django_db_blocker) -> Iterator[None]:  # noqa: ANN001
    """Snapshot the non-empty tables before any transactional test of this run flushed them."""
    with django_db_blocker.unblock():
        _snapshot_tables[:] = _take_snapshot()
        if "lab_brainarea" not in _snapshot_tables:
            pytest.fail(
                "the test database has no lookup rows (a transactional test emptied it in an "
                "earlier run?): re-create it with --create-db"
            )
    yield
    with django_db_blocker.unblock(), connection.cursor() as cur:
        cur.execute(f"DROP SCHEMA IF EXISTS {SNAPSHOT_SCHEMA} CASCADE")


@pytest.fixture(autouse=True)
def _lookups_present(request: pytest.FixtureRequest) -> None:
    """A transactional test of another app may have flushed the lookups: bring them back."""
    if not _is_transactional(request.node):
        return
    request.getfixturevalue("transactional_db")
    from lab.models import BrainArea

    if not BrainArea.objects.exists():
        _restore_snapshot(_snapshot_tables)


def pytest_fixture_post_finalizer(
    fixturedef: pytest.FixtureDef, request: pytest.FixtureRequest
) -> None:
    """Right after pytest-django flushed the database of a transactional test: restore."""
    if fixturedef.argname != "_django_db_helper" or not _snapshot_tables:
        return
    item = request.node
    if not isinstance(item, pytest.Item) or not _is_transactional(item):
        return
    from pytest_django.plugin import blocking_manager_key

    with item.config.stash[blocking_manager_key].unblock():
        _restore_snapshot(_snapshot_tables)


# --- throwaway steps ----------------------------------------------------------------------------


@dataclass
class Recorder:
    """Thread-safe record of make() calls: (step name, key id) in call order."""

    calls: list[tuple[str, int]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, step: str, key_id: int) -> None:
        with self.lock:
            self.calls.append((step, key_id))

    def count(self, step: str | None = None, key_id: int | None = None) -> int:
        with self.lock:
            return sum(
                1
                for s, k in self.calls
                if (step is None or s == step) and (key_id is None or k == key_id)
            )


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


def made_marker(step: str, key_id: int) -> str:
    """Name of the ModifiedGene row a default throwaway make() writes."""
    return f"{step}:{key_id}"


@pytest.fixture
def make_step(recorder: Recorder) -> Iterator[Callable[..., Step]]:
    """``make_step("TestA", depends_on=..., make=..., sleep=...)`` registers a throwaway step."""
    added: list[str] = []

    def factory(
        name: str,
        *,
        make: Callable[[models.Model], None] | None = None,
        depends_on: Iterable[str] = (),
        key_source: Callable[[], models.QuerySet] | None = None,
        keys_after: Callable[[str, int], Iterable[int]] | None = None,
        sleep: float = 0.0,
        queue: str = "compute",
    ) -> Step:
        assert name not in REGISTRY, f"step {name} is already registered"

        def default_make(rig: Rig) -> None:
            recorder.record(name, rig.pk)
            if sleep:
                time.sleep(sleep)
            ModifiedGene.objects.create(name=made_marker(name, rig.pk))

        step = Step(
            name=name,
            key_model=Rig,
            key_source=key_source or Rig.objects.all,
            make=make or default_make,
            depends_on=tuple(depends_on),
            queue=queue,
            description=f"throwaway test step {name}",
            keys_after=keys_after,
        )
        register(step)
        added.append(name)
        return step

    yield factory
    for name in added:
        REGISTRY.pop(name, None)


# --- bounding tests that wait on threads and workers ------------------------------------------


class HardTimeout(Exception):  # noqa: N818
    pass


@pytest.fixture
def hard_timeout() -> Iterator[Callable[[int], None]]:
    """``hard_timeout(seconds)``: interrupt the test (main thread) if it is still running then."""

    def on_alarm(signum: int, frame: FrameType | None) -> None:
        raise HardTimeout("test exceeded its hard time limit")

    previous = signal.signal(signal.SIGALRM, on_alarm)

    def arm(seconds: int) -> None:
        signal.alarm(seconds)

    yield arm
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)
