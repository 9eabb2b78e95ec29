"""Races, orphans and lost connections on the real PostgreSQL, with threads as workers.

Each thread has its own database connection (Django connections are per thread), so these
tests commit for real: ``django_db(transaction=True)``.
"""

import random
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from django.db import InterfaceError, OperationalError, connection
from django.db import transaction as db_transaction
from django.utils import timezone

from lab.models import ModifiedGene, Rig
from lab.tests.factories import RigFactory
from mapsite.pipeline import runner, tasks
from mapsite.pipeline.models import Job, JobStatus
from mapsite.pipeline.tests.conftest import made_marker

pytestmark = pytest.mark.django_db(transaction=True)


def closing(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Run ``fn`` in a worker thread and close that thread's connection afterwards."""

    def wrapped(*args: Any) -> Any:
        try:
            return fn(*args)
        finally:
            connection.close()

    return wrapped


def test_two_workers_on_the_same_job_make_it_once(make_step, recorder, hard_timeout):
    hard_timeout(60)
    step = make_step("TestSlow", sleep=0.3)
    rig = RigFactory()
    (job_id,) = runner.create_jobs(step)
    start = threading.Barrier(2)

    def work(worker: str) -> str:
        start.wait(timeout=10)
        return runner.run_job(job_id, worker=worker)

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(closing(work), ["w1@host", "w2@host"]))
    assert sorted(results) == ["done", "skipped"]
    assert recorder.count("TestSlow", rig.pk) == 1
    job = Job.objects.get(pk=job_id)
    assert job.status == JobStatus.DONE
    assert job.attempts == 1
    assert job.worker_host == ["w1@host", "w2@host"][results.index("done")]


@pytest.mark.parametrize("threads", [2, 4])
def test_many_jobs_many_workers_each_key_once(make_step, recorder, hard_timeout, threads):
    hard_timeout(120)
    step = make_step("TestA", sleep=0.01)
    rigs = RigFactory.create_batch(40)
    job_ids = runner.create_jobs(step)
    assert len(job_ids) == 40
    start = threading.Barrier(threads)

    def work(seed: int) -> list[str]:
        order = list(job_ids)
        random.Random(seed).shuffle(order)  # every worker is sent every job, in its own order
        start.wait(timeout=10)
        return [runner.run_job(j, worker=f"w{seed}@host") for j in order]

    with ThreadPoolExecutor(threads) as pool:
        results = [r for rs in pool.map(closing(work), range(threads)) for r in rs]
    assert results.count("done") == 40
    assert results.count("skipped") == 40 * (threads - 1)
    assert recorder.count("TestA") == 40
    assert sorted(k for _, k in recorder.calls) == sorted(r.pk for r in rigs)
    assert Job.objects.filter(step="TestA", status=JobStatus.DONE).count() == 40
    assert ModifiedGene.objects.filter(name__startswith="TestA:").count() == 40


def test_concurrent_sweepers_create_each_job_once_and_make_each_key_once(
    make_step, recorder, hard_timeout
):
    """Three sweeps at once (eager dispatch: each sweeper makes what it dispatched)."""
    hard_timeout(120)
    make_step("TestA", sleep=0.01)
    rigs = RigFactory.create_batch(30)
    start = threading.Barrier(3)

    def sweep(_: int) -> dict[str, int]:
        start.wait(timeout=10)
        return runner.queue_missing(["TestA"])

    with ThreadPoolExecutor(3) as pool:
        list(pool.map(closing(sweep), range(3)))
    assert Job.objects.filter(step="TestA").count() == 30
    assert Job.objects.filter(step="TestA", status=JobStatus.DONE).count() == 30
    assert recorder.count("TestA") == 30
    assert {k for _, k in recorder.calls} == {r.pk for r in rigs}


def test_an_orphan_without_a_lock_is_revived_and_made(make_step, recorder, settings):
    settings.PIPELINE_ORPHAN_GRACE_SECONDS = 30
    step = make_step("TestA")
    rig = RigFactory()
    (job_id,) = runner.create_jobs(step)
    # A worker claimed the job and died before (or while) making it: no transaction is left.
    closing(runner._claim)(job_id, "dead@host")
    assert Job.objects.get(pk=job_id).status == JobStatus.RUNNING
    assert runner.revive_orphans() == 0  # within the grace period: leave it
    Job.objects.filter(pk=job_id).update(started_at=timezone.now() - timedelta(seconds=31))
    assert runner.revive_orphans() == 1  # on commit: dispatched (eager: made right here)
    job = Job.objects.get(pk=job_id)
    assert job.status == JobStatus.DONE
    assert job.attempts == 2
    assert recorder.count("TestA", rig.pk) == 1


def test_a_job_whose_row_lock_is_held_is_not_revived(make_step, recorder, settings, hard_timeout):
    """Simulate a live worker: another connection holds SELECT ... FOR UPDATE on the job."""
    hard_timeout(60)
    settings.PIPELINE_ORPHAN_GRACE_SECONDS = 30
    step = make_step("TestA")
    RigFactory()
    (job_id,) = runner.create_jobs(step)
    runner._claim(job_id, "live@host")
    Job.objects.filter(pk=job_id).update(started_at=timezone.now() - timedelta(minutes=5))
    locked, release = threading.Event(), threading.Event()

    def hold_lock() -> None:
        with db_transaction.atomic():
            Job.objects.select_for_update().get(pk=job_id)
            locked.set()
            release.wait(timeout=30)

    with ThreadPoolExecutor(1) as pool:
        holder = pool.submit(closing(hold_lock))
        assert locked.wait(timeout=10)
        try:
            assert runner.revive_orphans() == 0
            job = Job.objects.get(pk=job_id)
            assert job.status == JobStatus.RUNNING
            assert job.worker_host == "live@host"
        finally:
            release.set()
        holder.result(timeout=10)
    # The "worker" is gone now (its transaction ended without finishing): revived and made.
    assert runner.revive_orphans() == 1
    assert Job.objects.get(pk=job_id).status == JobStatus.DONE
    assert recorder.count("TestA") == 1


def test_a_job_being_made_is_not_revived(make_step, recorder, settings, hard_timeout):
    """A real run_job in another thread, stuck in make(): the sweeper must leave it alone."""
    hard_timeout(60)
    settings.PIPELINE_ORPHAN_GRACE_SECONDS = 0  # every running job is "old"
    making, finish = threading.Event(), threading.Event()

    def make(rig: Rig) -> None:
        recorder.record("TestLong", rig.pk)
        making.set()
        assert finish.wait(timeout=30)
        ModifiedGene.objects.create(name=made_marker("TestLong", rig.pk))

    step = make_step("TestLong", make=make)
    RigFactory()
    (job_id,) = runner.create_jobs(step)
    with ThreadPoolExecutor(1) as pool:
        result = pool.submit(closing(runner.run_job), job_id, "busy@host")
        assert making.wait(timeout=10)
        try:
            assert runner.sweep().get("revived", 0) == 0
            assert Job.objects.get(pk=job_id).status == JobStatus.RUNNING
        finally:
            finish.set()
        assert result.result(timeout=30) == JobStatus.DONE
    assert recorder.count("TestLong") == 1
    assert Job.objects.get(pk=job_id).worker_host == "busy@host"


def _kill_my_connection() -> None:
    with connection.cursor() as cur:
        cur.execute("SELECT pg_terminate_backend(pg_backend_pid())")


def test_lost_connection_gives_the_job_back_and_raises_for_a_retry(make_step, recorder):
    def make(rig: Rig) -> None:
        recorder.record("TestDies", rig.pk)
        ModifiedGene.objects.create(name="written before the connection died")
        _kill_my_connection()

    step = make_step("TestDies", make=make)
    RigFactory()
    (job_id,) = runner.create_jobs(step)

    def run() -> BaseException | None:
        try:
            runner.run_job(job_id, worker="w@host")
        except Exception as exc:  # noqa: BLE001 - the assertion is on the type
            return exc
        return None

    with ThreadPoolExecutor(1) as pool:
        exc = pool.submit(closing(run)).result(timeout=30)
    # The Celery task retries exactly these (autoretry_for).
    assert isinstance(exc, OperationalError | InterfaceError), exc
    assert isinstance(exc, tasks.run_job.autoretry_for)
    job = Job.objects.get(pk=job_id)
    assert job.status == JobStatus.PENDING
    assert "database connection failed" in job.message
    assert not ModifiedGene.objects.filter(name="written before the connection died").exists()


def test_celery_task_retries_after_a_lost_connection(make_step, recorder):
    """Through the task (eager): the narrow autoretry re-runs the job, which then succeeds."""
    calls = {"n": 0}

    def make(rig: Rig) -> None:
        calls["n"] += 1
        recorder.record("TestDiesOnce", rig.pk)
        if calls["n"] == 1:
            _kill_my_connection()
        ModifiedGene.objects.create(name=made_marker("TestDiesOnce", rig.pk))

    step = make_step("TestDiesOnce", make=make)
    rig = RigFactory()
    (job_id,) = runner.create_jobs(step)

    def run() -> str:
        result = tasks.run_job.apply(args=[job_id])
        assert result.successful(), result.traceback
        return result.result

    with ThreadPoolExecutor(1) as pool:
        assert pool.submit(closing(run)).result(timeout=60) == JobStatus.DONE
    job = Job.objects.get(pk=job_id)
    assert job.status == JobStatus.DONE
    assert job.attempts == 2
    assert recorder.count("TestDiesOnce", rig.pk) == 2
    assert ModifiedGene.objects.filter(name=made_marker("TestDiesOnce", rig.pk)).count() == 1


def test_a_failing_make_does_not_break_a_workers_connection(make_step):
    """After a make() hit an SQL error, the worker's next job runs on the same connection."""

    def make(rig: Rig) -> None:
        with connection.cursor() as cur:
            cur.execute("SELECT * FROM no_such_table")

    bad = make_step("TestSqlError", make=make)
    good = make_step("TestA")
    RigFactory()
    (bad_id,) = runner.create_jobs(bad)
    (good_id,) = runner.create_jobs(good)

    def both() -> tuple[str, str]:
        return runner.run_job(bad_id), runner.run_job(good_id)

    with ThreadPoolExecutor(1) as pool:
        assert pool.submit(closing(both)).result(timeout=30) == ("error", "done")
    assert "no_such_table" in Job.objects.get(pk=bad_id).message
