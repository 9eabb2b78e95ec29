"""Behavior ingest on a running system: a real Celery worker (a thread) on the real Redis.

"Dropping a new synthetic file into a data root of a running system makes its session appear
without anyone acting": the test drops a file, sends what beat sends (``mapsite.pipeline.tasks.
sweep`` through the broker) and waits, bounded, for the session. The worker consumes the
``ingest`` and ``compute`` queues (ingest jobs, then the downstream PhotostimBrainRegion step).

The project app is pointed at a Redis database of its own (``BEHAVIOR_TEST_BROKER_URL``, default
``redis://127.0.0.1:6379/11``), emptied before and after. The test commits for real
(``transaction=True``); the lookup rows that pytest-django's flush then removes are put back by
the root ``conftest.py``. The ``live_app`` and ``worker`` fixtures serve the ephys worker test too.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from celery import Celery
from celery.worker import WorkController
from django.conf import settings as django_settings

from experiment import models as m
from experiment.ingest.synthetic import write_synthetic_session
from experiment.steps import BEHAVIOR_INGEST
from experiment.tests.test_behavior_ingest import RIG, assert_db_matches_truth, session_dir
from lab.tests.factories import RigFactory, WaterRestrictionFactory
from mapsite.celery import app as celery_app
from mapsite.core.testing import live_celery_app, wait_for, worker_thread
from mapsite.pipeline import tasks
from mapsite.pipeline.models import Job, JobStatus
from mapsite.pipeline.steps import DISCOVERIES

pytestmark = pytest.mark.worker

BROKER_URL = os.environ.get("BEHAVIOR_TEST_BROKER_URL", "redis://127.0.0.1:6379/11")
QUEUES = ["ingest", "compute"]


@pytest.fixture
def live_app(settings, hard_timeout) -> Iterator[Celery]:
    """The project's Celery app talking to Redis for real (not eager); restored afterwards."""
    hard_timeout(180)
    with live_celery_app(BROKER_URL, settings) as app:
        yield app


@pytest.fixture
def worker(live_app, transactional_db) -> Iterator[WorkController]:
    """A worker thread consuming ``ingest`` and ``compute``; stopped before the flush."""
    with worker_thread(live_app, QUEUES, "behavior-test") as w:
        yield w


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
