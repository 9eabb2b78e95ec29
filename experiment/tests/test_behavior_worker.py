"""Behavior ingest on a running system: a real Celery worker (a thread) on the real Redis.

"Dropping a new synthetic file into a data root of a running system makes its session appear
without anyone acting": the test drops a file, sends what beat sends (``mapsite.pipeline.tasks.
sweep`` through the broker) and waits, bounded, for the session. The worker consumes the
``ingest`` and ``compute`` queues (ingest jobs, then the downstream PhotostimBrainRegion step).

The project app is pointed at a Redis database of its own (``BEHAVIOR_TEST_BROKER_URL``, default
``redis://127.0.0.1:6379/11``), emptied before and after. The test commits for real
(``transaction=True``); pytest-django then empties every table, including the lookup rows of
the data migrations, so this module snapshots the non-empty tables first and puts them back
afterwards (as ``mapsite/pipeline/tests/conftest.py`` does for the pipeline's own tests).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
import redis
from celery.app.trace import reset_worker_optimizations, setup_worker_optimizations
from celery.contrib.testing.worker import start_worker
from django.conf import settings as django_settings
from django.db import connection, transaction

from experiment import models as m
from experiment.ingest.synthetic import write_synthetic_session
from experiment.steps import BEHAVIOR_INGEST
from experiment.tests.test_behavior_ingest import RIG, assert_db_matches_truth, session_dir
from lab.models import BrainArea
from lab.tests.factories import RigFactory, WaterRestrictionFactory
from mapsite.celery import app as celery_app
from mapsite.pipeline import tasks
from mapsite.pipeline.models import Job, JobStatus
from mapsite.pipeline.steps import DISCOVERIES

pytestmark = pytest.mark.worker

BROKER_URL = os.environ.get("BEHAVIOR_TEST_BROKER_URL", "redis://127.0.0.1:6379/11")
QUEUES = ["ingest", "compute"]
LIVE_CONF = {
    "task_always_eager": False,
    "broker_url": BROKER_URL,
    "result_backend": BROKER_URL,
    "worker_hijack_root_logger": False,
    "broker_connection_retry_on_startup": False,
    "broker_connection_max_retries": 1,
}
SNAPSHOT_SCHEMA = f"behavior_worker_snapshot_{os.getpid()}"


# --- keeping the lookup rows across the transactional test -----------------------------------


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
    with transaction.atomic(), connection.cursor() as cur:
        for table in tables:  # foreign keys are DEFERRABLE INITIALLY DEFERRED: any order
            cur.execute(f"DELETE FROM {_quote(table)}")
        for table in tables:
            cur.execute(
                f"INSERT INTO {_quote(table)} SELECT * FROM {SNAPSHOT_SCHEMA}.{_quote(table)}"
            )


@pytest.fixture(scope="module")
def lookup_snapshot(django_db_setup, django_db_blocker) -> Iterator[list[str]]:
    """Module-scoped: torn down after the last test's flush, so it can put the rows back."""
    with django_db_blocker.unblock():
        tables = _take_snapshot()
        if "lab_brainarea" not in tables:
            pytest.fail("the test database has no lookup rows: re-create it with --create-db")
    yield tables
    with django_db_blocker.unblock():
        _restore_snapshot(tables)
        with connection.cursor() as cur:
            cur.execute(f"DROP SCHEMA IF EXISTS {SNAPSHOT_SCHEMA} CASCADE")


@pytest.fixture
def committed_db(lookup_snapshot, transactional_db) -> None:
    """A transactional test with the lookup rows present (an earlier flush may have taken them)."""
    if not BrainArea.objects.exists():
        _restore_snapshot(lookup_snapshot)


# --- a real worker ------------------------------------------------------------------------


@pytest.fixture
def hard_timeout() -> Iterator[Callable[[int], None]]:
    """``hard_timeout(seconds)``: interrupt the test if it is still running then."""

    def on_alarm(signum, frame):  # noqa: ANN001
        raise TimeoutError("test exceeded its hard time limit")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    yield signal.alarm
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def _forget_connections() -> None:
    """Drop the app's cached broker pools and result backends, so the new URLs are used."""
    celery_app._pool = None
    celery_app.amqp._producer_pool = None
    celery_app._backend_cache = None
    celery_app._local = threading.local()


@pytest.fixture
def live_app(settings, hard_timeout) -> Iterator[object]:
    """The project's Celery app talking to Redis for real (not eager); restored afterwards."""
    hard_timeout(180)
    broker = redis.Redis.from_url(BROKER_URL, socket_timeout=5)
    broker.flushdb()
    saved_conf = {key: celery_app.conf[key] for key in LIVE_CONF}
    saved_logging = (logging.root.handlers[:], logging.root.level)
    celery_app.conf.update(LIVE_CONF)
    _forget_connections()
    settings.CELERY_TASK_ALWAYS_EAGER = False
    try:
        yield celery_app
    finally:
        celery_app.conf.update(saved_conf)
        _forget_connections()
        logging.root.handlers[:] = saved_logging[0]
        logging.root.setLevel(saved_logging[1])
        broker.flushdb()
        broker.close()


@pytest.fixture
def worker(live_app, committed_db) -> Iterator[object]:
    """A worker thread consuming ``ingest`` and ``compute``; stopped before the flush."""
    nodename = f"behavior-test-{os.getpid()}@{socket.gethostname()}"
    setup_worker_optimizations(live_app, nodename)  # task.request.hostname = the node name
    try:
        with start_worker(
            live_app,
            pool="solo",
            queues=QUEUES,
            hostname=nodename,
            perform_ping_check=False,
            loglevel="WARNING",
            shutdown_timeout=20,
        ) as w:
            assert sorted(q.name for q in w.consumer.task_consumer.queues) == sorted(QUEUES)
            yield w
    finally:
        reset_worker_optimizations(live_app)


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> float:
    """Poll ``condition`` until true; fail after ``timeout`` seconds. Returns the time waited."""
    t0 = time.perf_counter()
    while not condition():
        if time.perf_counter() - t0 > timeout:
            jobs = list(Job.objects.values_list("step", "status", "message"))
            pytest.fail(f"gave up after {timeout} s waiting for {what}; jobs: {jobs}")
        time.sleep(0.1)
    return time.perf_counter() - t0


# --- tests -----------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_file_dropped_into_a_data_root_becomes_a_session_without_anyone_acting(
    worker, settings, tmp_path
):
    root = tmp_path / "RRig"
    root.mkdir()
    settings.BEHAVIOR_DATA_ROOTS = [f"{RIG}={root}"]  # process-wide: the worker thread sees it
    RigFactory(name=RIG)
    subject = WaterRestrictionFactory(water_restriction_number="SC031").subject

    # The system is running; its data root is empty.
    assert tasks.sweep.delay().get(timeout=30)[BEHAVIOR_INGEST] == 0

    # A rig computer writes a session (late-delay photostim: all three ALM protocols).
    truth = write_synthetic_session(
        session_dir(root, "SC031"),
        h2o="SC031",
        seed=61,
        n_trials=60,
        photostim=True,
        photostim_period="late-delay",
        photostim_rate=0.5,
        session_datetime=datetime(2019, 11, 19, 16, 50, 37, tzinfo=UTC),
    )
    assert truth.photostim_ids == (4, 5, 6)

    t0 = time.perf_counter()
    tasks.sweep.delay()  # what beat sends every PIPELINE_SWEEP_SECONDS; nobody waits on it
    waited = wait_for(lambda: m.Session.objects.filter(subject=subject).exists(), 60, "the session")
    print(f"session appeared {waited:.2f} s after the sweep was sent")
    wait_for(
        lambda: (
            m.PhotostimBrainRegion.objects.filter(photostim__session__subject=subject).count() == 3
        ),
        60,
        "the downstream PhotostimBrainRegion rows",
    )
    print(f"photostim regions computed {time.perf_counter() - t0:.2f} s after the sweep")

    assert_db_matches_truth(truth, subject)
    bf = m.BehaviorFile.objects.get(file_name=truth.file_name)
    ingest_job = Job.objects.get(step=BEHAVIOR_INGEST, key_id=bf.pk)
    assert (ingest_job.status, ingest_job.attempts) == (JobStatus.DONE, 1)
    assert ingest_job.worker_host == worker.hostname  # made in the worker, not in the test
    regions = Job.objects.filter(step="PhotostimBrainRegion")
    assert sorted(regions.values_list("status", flat=True)) == [JobStatus.DONE] * 3
    laterality = dict(
        m.PhotostimBrainRegion.objects.filter(photostim__session__subject=subject).values_list(
            "photostim__photo_stim", "stim_laterality"
        )
    )
    assert laterality == {4: "left", 5: "right", 6: "both"}

    # Beat keeps sweeping: nothing is ingested twice.
    again = tasks.sweep.delay().get(timeout=30)
    assert again[BEHAVIOR_INGEST] == 0
    assert m.Session.objects.filter(subject=subject).count() == 1
    assert Job.objects.filter(step=BEHAVIOR_INGEST).count() == 1


def test_beat_schedules_the_sweep_that_finds_behavior_files():
    celery_app.finalize(auto=True)
    entries = [e for e in celery_app.conf.beat_schedule.values() if e["task"] == tasks.sweep.name]
    assert len(entries) == 1, celery_app.conf.beat_schedule
    (entry,) = entries
    assert entry["schedule"] == django_settings.PIPELINE_SWEEP_SECONDS
    assert entry["options"].get("queue") in QUEUES  # a queue the workers consume
    assert tasks.sweep.name in celery_app.tasks
    assert "behavior files" in DISCOVERIES  # the sweep's discoveries include the behavior scan
