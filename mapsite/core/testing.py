"""Test infrastructure shared by the apps' tests (no tests here; imported by tests only).

* Table snapshots: a transactional test (``django_db(transaction=True)``, needed for real
  concurrency and for a real worker) ends with a flush that empties *every* table, including
  the lookup rows the data migrations loaded. The root ``conftest.py`` copies the non-empty
  tables into a schema of their own once per run and puts them back after each flush; that
  takes milliseconds, where ``serialized_rollback`` takes seconds per test.
* The project's Celery app talking to a real Redis (``live_celery_app``) and a worker thread
  consuming given queues (``worker_thread``), both restored/stopped on exit.
* Bounded waiting: ``wait_for`` polls a condition, ``hard_timeout`` interrupts a test that
  hangs anyway (e.g. a worker that never starts).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import pytest
import redis
from celery.app.trace import reset_worker_optimizations, setup_worker_optimizations
from celery.contrib.testing.worker import start_worker
from django.db import connection, transaction

from mapsite.celery import app as celery_app

if TYPE_CHECKING:
    from celery import Celery
    from celery.worker import WorkController
    from pytest_django.fixtures import SettingsWrapper

# A table the data migrations fill: empty means the test database lost its lookup rows.
LOOKUP_SENTINEL_TABLE = "lab_brainarea"


# --- table snapshots ------------------------------------------------------------------------


def _quote(name: str) -> str:
    """Quote an identifier. Table names come from Django's own catalogue, so the f-string SQL
    below (S608) is built from quoted identifiers only, never from input."""
    return connection.ops.quote_name(name)


def take_snapshot(schema: str) -> list[str]:
    """Copy every non-empty table into ``schema`` (re-created); return the tables copied."""
    tables = connection.introspection.django_table_names(only_existing=True, include_views=False)
    kept = []
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(f"DROP SCHEMA IF EXISTS {_quote(schema)} CASCADE")
        cur.execute(f"CREATE SCHEMA {_quote(schema)}")
        for table in sorted(tables):
            cur.execute(f"SELECT EXISTS (SELECT 1 FROM {_quote(table)})")  # noqa: S608
            if cur.fetchone()[0]:
                cur.execute(
                    f"CREATE TABLE {_quote(schema)}.{_quote(table)} AS TABLE {_quote(table)}"
                )
                kept.append(table)
    return kept


def restore_snapshot(schema: str, tables: list[str]) -> None:
    """Put the snapshot rows back (after a flush, post_migrate may have re-created some)."""
    if not tables:
        return
    with transaction.atomic(), connection.cursor() as cur:
        # Django's foreign keys are DEFERRABLE INITIALLY DEFERRED: the order is free. DELETE, not
        # TRUNCATE: the tables are (nearly) empty, and TRUNCATE costs a file operation each.
        for table in tables:
            cur.execute(f"DELETE FROM {_quote(table)}")  # noqa: S608
        for table in tables:
            cur.execute(
                f"INSERT INTO {_quote(table)} SELECT * FROM {_quote(schema)}.{_quote(table)}"  # noqa: S608
            )


def drop_snapshot(schema: str) -> None:
    """Remove the snapshot schema (the test database may be reused by the next run)."""
    with connection.cursor() as cur:
        cur.execute(f"DROP SCHEMA IF EXISTS {_quote(schema)} CASCADE")


def is_transactional(item: pytest.Item) -> bool:
    """Whether pytest-django runs ``item`` as a TransactionTestCase (flushing afterwards)."""
    from pytest_django.fixtures import validate_django_db

    marker = item.get_closest_marker("django_db")
    if marker:
        transactional, reset_sequences, *_ = validate_django_db(marker)
        if transactional or reset_sequences:
            return True
    names = getattr(item, "fixturenames", ())
    return any(n in names for n in ("transactional_db", "live_server", "django_db_reset_sequences"))


def uses_db(item: pytest.Item) -> bool:
    """Whether ``item`` touches the test database (marker, or a fixture that needs it)."""
    return item.get_closest_marker("django_db") is not None or "django_db_setup" in getattr(
        item, "fixturenames", ()
    )


# --- bounding tests that wait on threads, workers and processes -------------------------------


class HardTimeout(TimeoutError):
    """Raised in the main thread when a test outlives its ``hard_timeout``."""


@contextmanager
def hard_timeout() -> Iterator[Callable[[int], None]]:
    """Yield ``arm(seconds)``: after that many seconds, raise HardTimeout in the main thread.

    SIGALRM-based (main thread, POSIX); the alarm and the previous handler are restored on exit.
    """

    def on_alarm(signum: int, frame: FrameType | None) -> None:
        raise HardTimeout("test exceeded its hard time limit")

    previous = signal.signal(signal.SIGALRM, on_alarm)

    def arm(seconds: int) -> None:
        signal.alarm(seconds)

    try:
        yield arm
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def jobs_summary() -> str:
    """The pipeline's job rows, for the message of a wait that gave up."""
    from mapsite.pipeline.models import Job

    return str(list(Job.objects.values_list("step", "key_id", "status", "message")))


def wait_for(
    condition: Callable[[], bool],
    timeout: float = 30.0,
    what: str = "",
    *,
    interval: float = 0.1,
    check: Callable[[], None] | None = None,
    details: Callable[[], str] | None = None,
) -> float:
    """Poll ``condition`` until true; fail after ``timeout`` seconds. Returns the time waited.

    ``check`` runs before each poll (e.g. fail at once when a worker process died); the failure
    message lists the pipeline's jobs and whatever ``details`` returns (e.g. worker logs).
    """
    t0 = time.perf_counter()
    while not condition():
        if check is not None:
            check()
        if time.perf_counter() - t0 > timeout:
            extra = f"\n{details()}" if details is not None else ""
            pytest.fail(
                f"gave up after {timeout} s waiting for {what}; jobs: {jobs_summary()}{extra}"
            )
        time.sleep(interval)
    return time.perf_counter() - t0


# --- the project's Celery app on a real Redis ---------------------------------------------------


def forget_connections(app: Celery = celery_app) -> None:
    """Drop the app's cached broker pools and result backends, so the new URLs are used."""
    app._pool = None
    app.amqp._producer_pool = None
    app._backend_cache = None
    app._local = threading.local()


@contextmanager
def live_celery_app(broker_url: str, settings: SettingsWrapper) -> Iterator[Celery]:
    """The project's Celery app sending to ``broker_url`` for real (not eager).

    The Redis database is emptied before and after (nothing queued or unacked outlives the
    test); the app's configuration and the root logger (a worker reconfigures logging) are
    restored on exit. ``settings`` is pytest-django's fixture: Django's
    ``CELERY_TASK_ALWAYS_EAGER`` (what populate looks at) is turned off through it, so the
    fixture restores it with the test's other settings - and only once the app's configuration
    was read and saved here (the app reads it from Django's settings on first use).
    """
    live_conf = {
        "task_always_eager": False,
        "broker_url": broker_url,
        "result_backend": broker_url,
        "worker_hijack_root_logger": False,
        "broker_connection_retry_on_startup": False,
        "broker_connection_max_retries": 1,
    }
    broker = redis.Redis.from_url(broker_url, socket_timeout=5)
    broker.flushdb()
    saved_conf = {key: celery_app.conf[key] for key in live_conf}
    saved_handlers, saved_level = logging.root.handlers[:], logging.root.level
    celery_app.conf.update(live_conf)
    forget_connections()
    settings.CELERY_TASK_ALWAYS_EAGER = False
    try:
        yield celery_app
    finally:
        celery_app.conf.update(saved_conf)
        forget_connections()
        logging.root.handlers[:] = saved_handlers
        logging.root.setLevel(saved_level)
        broker.flushdb()
        broker.close()


@contextmanager
def worker_thread(
    app: Celery, queues: list[str], name: str, *, pool: str = "solo", concurrency: int = 1
) -> Iterator[WorkController]:
    """A worker (a thread of this process) consuming ``queues``, node ``<name>-<pid>@<host>``.

    Stopped on exit: request it after ``transactional_db`` so it stops before the flush.
    """
    nodename = f"{name}-{os.getpid()}@{socket.gethostname()}"
    # What ``celery worker`` does at start-up (celery.apps.worker.Worker.on_before_init) and the
    # bare WorkController of start_worker does not: it makes task.request.hostname the node
    # name, which run_job records as the job's worker_host. Must precede the worker's start.
    setup_worker_optimizations(app, nodename)
    t0 = time.perf_counter()
    try:
        with start_worker(
            app,
            pool=pool,
            concurrency=concurrency,
            queues=queues,
            hostname=nodename,
            perform_ping_check=False,
            loglevel="WARNING",
            shutdown_timeout=20,
        ) as worker:
            assert sorted(q.name for q in worker.consumer.task_consumer.queues) == sorted(queues)
            print(f"worker {worker.hostname} started in {time.perf_counter() - t0:.2f} s")
            yield worker
            t0 = time.perf_counter()
        print(f"worker stopped in {time.perf_counter() - t0:.2f} s")
    finally:
        reset_worker_optimizations(app)


def real_data_dir() -> Path:
    """The project's real MAP recordings (``shared/data/map-ephys-real``, read-only).

    CI lays ``shared/`` beside the checkout; ``MAP_SHARED_DIR`` overrides. A missing folder is
    an error, not a skip: the real-file tests are part of what the suite proves.
    """
    candidates = [
        os.environ.get("MAP_SHARED_DIR"),
        Path(__file__).resolve().parents[2].parent / "shared",
        "/work/shared",
    ]
    for candidate in candidates:
        if candidate and (Path(candidate) / "data" / "map-ephys-real").is_dir():
            return Path(candidate) / "data" / "map-ephys-real"
    raise FileNotFoundError(
        "shared/data/map-ephys-real not found beside the checkout (set MAP_SHARED_DIR)"
    )
