"""A real Celery worker (a thread running the project's app) on the real Redis and PostgreSQL.

The project app is switched to a Redis database of its own (``PIPELINE_TEST_BROKER_URL``,
default ``redis://127.0.0.1:6379/13``) with eager mode off, for the duration of each test; the
database is emptied before and after, so no message outlives a test. Every wait is bounded, and
``hard_timeout`` interrupts a test that hangs anyway (e.g. a worker that never starts).
"""

import os
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from io import StringIO

import pytest
from celery import Celery
from celery.worker import WorkController
from django.core.management import call_command

from experiment.models import Photostim, PhotostimBrainRegion
from experiment.tests.factories import PhotostimFactory, PhotostimLocationFactory, SessionFactory
from lab.models import BrainArea
from mapsite.core.testing import live_celery_app, wait_for, worker_thread
from mapsite.pipeline import runner, tasks
from mapsite.pipeline.models import Job, JobStatus

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

BROKER_URL = os.environ.get("PIPELINE_TEST_BROKER_URL", "redis://127.0.0.1:6379/13")
QUEUES = ["compute", "ingest", "transfer"]
STEP = "PhotostimBrainRegion"


@pytest.fixture
def live_app(settings, hard_timeout) -> Iterator[Celery]:
    """The project's Celery app talking to Redis for real (not eager)."""
    hard_timeout(120)
    with live_celery_app(BROKER_URL, settings) as app:
        yield app


@pytest.fixture
def worker(live_app, transactional_db) -> Iterator[WorkController]:
    """A worker thread (two threads) consuming the three queues; stopped before the flush."""
    with worker_thread(live_app, QUEUES, "pipeline-test", pool="threads", concurrency=2) as w:
        yield w


def photostim_with_ml(*ml: str, area: str = "ALM") -> Photostim:
    photostim = PhotostimFactory(session=SessionFactory())
    for i, x in enumerate(ml):
        PhotostimLocationFactory(
            photostim=photostim,
            ml_location=Decimal(x),
            ap_location=Decimal("2500.00") + i,
            brain_area=BrainArea.objects.get(name=area),
        )
    return photostim


def finished(step: str, n: int) -> Callable[[], bool]:
    return lambda: (
        Job.objects.filter(step=step, status__in=[JobStatus.DONE, JobStatus.ERROR]).count() >= n
    )


def test_a_real_worker_makes_photostim_brain_regions(worker):
    right = photostim_with_ml("1500.00", "1200.00")
    both = photostim_with_ml("-1500.00", "1500.00")
    mixed_areas = photostim_with_ml("-1500.00", area="ALM")
    PhotostimLocationFactory(
        photostim=mixed_areas,
        ml_location=Decimal("-1400.00"),
        brain_area=BrainArea.objects.get(name="vS1"),
    )

    t0 = time.perf_counter()
    sent = runner.queue_missing([STEP])  # outside any atomic block: dispatched right away
    assert sent == {STEP: 3}
    waited = wait_for(finished(STEP, 3), 30, "three PhotostimBrainRegion jobs")
    print(f"3 jobs made by the worker {waited:.2f} s after queueing")

    rows = {r.photostim_id: r for r in PhotostimBrainRegion.objects.select_related()}
    assert rows[right.pk].stim_laterality == "right"
    assert rows[right.pk].stim_brain_area.name == "ALM"
    assert rows[both.pk].stim_laterality == "both"
    assert mixed_areas.pk not in rows
    jobs = {j.key_id: j for j in Job.objects.filter(step=STEP)}
    assert jobs[right.pk].status == JobStatus.DONE
    assert jobs[mixed_areas.pk].status == JobStatus.ERROR
    assert "several brain areas" in jobs[mixed_areas.pk].message
    for job in jobs.values():
        # Made in the worker thread: the job names the Celery node, not just this host.
        assert job.worker_host == worker.hostname
        assert job.attempts == 1
    assert time.perf_counter() - t0 < 30


def test_the_beat_sweep_task_finds_and_makes_a_missing_key(worker):
    photostim = photostim_with_ml("-900.00")
    assert not Job.objects.exists()

    result = tasks.sweep.delay()  # what beat sends every PIPELINE_SWEEP_SECONDS
    sent = result.get(timeout=20)
    assert sent[STEP] == 1

    wait_for(finished(STEP, 1), 30, "the swept key")
    region = PhotostimBrainRegion.objects.get(photostim=photostim)
    assert region.stim_laterality == "left"
    job = Job.objects.get(step=STEP, key_id=photostim.pk)
    assert job.status == JobStatus.DONE
    assert job.worker_host == worker.hostname
    # A second sweep finds nothing to do.
    assert tasks.sweep.delay().get(timeout=20)[STEP] == 0


def test_populate_wait_follows_the_workers(worker):
    photostim_with_ml("700.00")
    photostim_with_ml("-700.00", "700.00")
    out = StringIO()
    call_command("populate", STEP, "--wait", "--timeout", "30", stdout=out)
    text = out.getvalue()
    assert f"{STEP}: 2 key(s) queued" in text
    line = next(ln for ln in text.splitlines() if ln.startswith(STEP) and "queued" not in ln)
    assert line.split()[1:] == ["2", "0", "0", "0", "0", "0"]
    assert PhotostimBrainRegion.objects.count() == 2
