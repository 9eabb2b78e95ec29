"""The runner of the pipeline-step mechanism, with throwaway steps keyed on lab.Rig rows.

These tests run inside the test transaction; ``django_capture_on_commit_callbacks(execute=True)``
plays the commits, so dispatch (eager in the test settings) and downstream queueing happen as
they would after a real commit.
"""

from datetime import timedelta

import pytest
from celery.exceptions import SoftTimeLimitExceeded
from django.utils import timezone

from lab.models import ModifiedGene, Person, Rig
from lab.tests.factories import PersonFactory, RigFactory
from mapsite.pipeline import runner
from mapsite.pipeline.models import Job, JobStatus
from mapsite.pipeline.steps import (
    REGISTRY,
    Step,
    StepWaiting,
    downstream_of,
    get_step,
    ordered_steps,
    register,
)
from mapsite.pipeline.tests.conftest import made_marker

pytestmark = pytest.mark.django_db


def job_of(step: str, key_id: int) -> Job:
    return Job.objects.get(step=step, key_id=key_id)


# --- creating jobs ------------------------------------------------------------------------------


def test_create_jobs_is_idempotent(make_step):
    step = make_step("TestA")
    rigs = RigFactory.create_batch(3)
    first = runner.create_jobs(step)
    second = runner.create_jobs(step)
    assert len(first) == 3
    assert second == []
    assert Job.objects.filter(step="TestA").count() == 3
    assert set(Job.objects.filter(step="TestA").values_list("key_id", flat=True)) == {
        r.pk for r in rigs
    }
    # Labels are the key's str(), for the admin.
    assert job_of("TestA", rigs[0].pk).key_label == str(rigs[0])
    # A new key gets a job; the old ones are left alone.
    new = RigFactory()
    assert runner.create_jobs(step) == [job_of("TestA", new.pk).pk]
    assert Job.objects.filter(step="TestA").count() == 4


def test_queue_missing_twice_makes_each_key_once(
    make_step, recorder, django_capture_on_commit_callbacks
):
    make_step("TestA")
    rigs = RigFactory.create_batch(3)
    with django_capture_on_commit_callbacks(execute=True):
        sent = runner.queue_missing(["TestA"])
    assert sent == {"TestA": 3}
    with django_capture_on_commit_callbacks(execute=True):
        again = runner.queue_missing(["TestA"])
    assert again == {"TestA": 0}
    assert Job.objects.filter(step="TestA").count() == 3
    assert recorder.count("TestA") == 3
    for rig in rigs:
        assert ModifiedGene.objects.filter(name=made_marker("TestA", rig.pk)).exists()
        assert job_of("TestA", rig.pk).status == JobStatus.DONE


def test_create_jobs_respects_key_ids_and_key_source(make_step):
    rigs = RigFactory.create_batch(4)
    step = make_step("TestA", key_source=lambda: Rig.objects.filter(room="2w.342"))
    other = RigFactory(room="elsewhere")
    ids = runner.create_jobs(step, key_ids=(r.pk for r in rigs[:2]))  # a generator is fine
    assert len(ids) == 2
    runner.create_jobs(step)
    assert Job.objects.filter(step="TestA").count() == 4
    assert not Job.objects.filter(step="TestA", key_id=other.pk).exists()


# --- making one key -----------------------------------------------------------------------------


def test_run_job_makes_a_key_once(make_step, recorder):
    step = make_step("TestA")
    rig = RigFactory()
    (job_id,) = runner.create_jobs(step)
    assert runner.run_job(job_id, worker="w1@host") == JobStatus.DONE
    assert runner.run_job(job_id, worker="w2@host") == "skipped"
    assert recorder.count("TestA", rig.pk) == 1
    job = Job.objects.get(pk=job_id)
    assert job.status == JobStatus.DONE
    assert job.attempts == 1
    assert job.worker_host == "w1@host"
    assert job.started_at is not None and job.finished_at is not None
    assert job.duration is not None and job.duration >= 0
    assert job.message == "" and job.traceback == ""


def test_run_job_of_unknown_job_is_skipped():
    assert runner.run_job(987654321) == "skipped"


def test_failing_make_records_error_and_rolls_back_its_writes(make_step):
    def make(rig: Rig) -> None:
        ModifiedGene.objects.create(name=f"half-written {rig.pk}")
        Person.objects.create(username=f"half{rig.pk}")
        raise ValueError(f"calibration file of rig {rig.name} is unreadable")

    step = make_step("TestBroken", make=make)
    rig = RigFactory()
    (job_id,) = runner.create_jobs(step)
    assert runner.run_job(job_id) == JobStatus.ERROR
    job = Job.objects.get(pk=job_id)
    assert job.status == JobStatus.ERROR
    assert job.message == f"ValueError: calibration file of rig {rig.name} is unreadable"
    assert "Traceback (most recent call last)" in job.traceback
    assert "in make" in job.traceback and "ValueError" in job.traceback
    assert job.finished_at is not None
    # Nothing the failed make wrote is left.
    assert not ModifiedGene.objects.filter(name=f"half-written {rig.pk}").exists()
    assert not Person.objects.filter(username=f"half{rig.pk}").exists()
    # An error waits for a person: running it again does nothing.
    assert runner.run_job(job_id) == "skipped"
    assert Job.objects.get(pk=job_id).attempts == 1


def test_error_is_not_retried_by_sweeps_but_by_retry(
    make_step, recorder, django_capture_on_commit_callbacks
):
    broken = {"yes": True}

    def make(rig: Rig) -> None:
        recorder.record("TestFlaky", rig.pk)
        if broken["yes"]:
            raise RuntimeError("instrument offline")
        ModifiedGene.objects.create(name=made_marker("TestFlaky", rig.pk))

    make_step("TestFlaky", make=make)
    rig = RigFactory()
    with django_capture_on_commit_callbacks(execute=True):
        runner.queue_missing(["TestFlaky"])
    job = job_of("TestFlaky", rig.pk)
    assert job.status == JobStatus.ERROR
    assert job.message == "RuntimeError: instrument offline"

    broken["yes"] = False
    with django_capture_on_commit_callbacks(execute=True):
        runner.sweep()
    assert job_of("TestFlaky", rig.pk).status == JobStatus.ERROR
    assert recorder.count("TestFlaky") == 1

    with django_capture_on_commit_callbacks(execute=True):
        assert runner.retry([job.pk]) == 1
    job.refresh_from_db()
    assert job.status == JobStatus.DONE
    assert job.attempts == 2
    assert job.message == "" and job.traceback == ""
    assert recorder.count("TestFlaky") == 2
    # retry() leaves done jobs alone.
    with django_capture_on_commit_callbacks(execute=True):
        assert runner.retry([job.pk]) == 0
    assert recorder.count("TestFlaky") == 2


def test_retry_errors_in_queue_missing(make_step, recorder, django_capture_on_commit_callbacks):
    broken = {"yes": True}

    def make(rig: Rig) -> None:
        recorder.record("TestFlaky", rig.pk)
        if broken["yes"]:
            raise RuntimeError("instrument offline")

    make_step("TestFlaky", make=make)
    rig = RigFactory()
    with django_capture_on_commit_callbacks(execute=True):
        runner.queue_missing(["TestFlaky"])
    broken["yes"] = False
    with django_capture_on_commit_callbacks(execute=True):
        assert runner.queue_missing(["TestFlaky"], retry_errors=True) == {"TestFlaky": 1}
    assert job_of("TestFlaky", rig.pk).status == JobStatus.DONE


def test_step_waiting_parks_the_job_and_sweeps_retry_it(
    make_step, recorder, django_capture_on_commit_callbacks
):
    def make(rig: Rig) -> None:
        recorder.record("TestNeedsPerson", rig.pk)
        if not Person.objects.filter(username=f"owner{rig.pk}").exists():
            raise StepWaiting(f"person owner{rig.pk} is not entered yet")
        ModifiedGene.objects.create(name=made_marker("TestNeedsPerson", rig.pk))

    make_step("TestNeedsPerson", make=make)
    rig = RigFactory()
    with django_capture_on_commit_callbacks(execute=True):
        runner.queue_missing(["TestNeedsPerson"])
    job = job_of("TestNeedsPerson", rig.pk)
    assert job.status == JobStatus.WAITING
    assert job.message == f"person owner{rig.pk} is not entered yet"
    assert job.traceback == ""
    assert job.attempts == 0  # waiting is not a failed attempt

    # Without retry_waiting nothing happens; a sweep retries, and it is still waiting.
    with django_capture_on_commit_callbacks(execute=True):
        assert runner.queue_missing(["TestNeedsPerson"]) == {"TestNeedsPerson": 0}
    with django_capture_on_commit_callbacks(execute=True):
        runner.sweep()
    assert job_of("TestNeedsPerson", rig.pk).status == JobStatus.WAITING
    assert recorder.count("TestNeedsPerson") == 2

    PersonFactory(username=f"owner{rig.pk}")
    with django_capture_on_commit_callbacks(execute=True):
        sent = runner.sweep()
    assert sent["TestNeedsPerson"] == 1
    job.refresh_from_db()
    assert job.status == JobStatus.DONE
    assert job.message == ""
    assert job.attempts == 1
    assert ModifiedGene.objects.filter(name=made_marker("TestNeedsPerson", rig.pk)).exists()


def test_key_deleted_after_queueing(make_step, recorder):
    step = make_step("TestA")
    rig = RigFactory(name="GoneRig")
    (job_id,) = runner.create_jobs(step)
    rig.delete()
    assert runner.run_job(job_id) == JobStatus.ERROR
    job = Job.objects.get(pk=job_id)
    assert job.status == JobStatus.ERROR
    assert "no longer exists" in job.message
    assert "Rig" in job.message and "GoneRig" in job.message
    assert recorder.count() == 0


def test_job_of_an_unknown_step_is_an_error(make_step):
    job = Job.objects.create(step="NoSuchStep", key_id=1, key_label="x")
    assert runner.run_job(job.pk) == JobStatus.ERROR
    job.refresh_from_db()
    assert job.status == JobStatus.ERROR
    assert "unknown pipeline step 'NoSuchStep'" in job.message


def test_soft_time_limit_is_an_error(make_step):
    def make(rig: Rig) -> None:
        ModifiedGene.objects.create(name="slow")
        raise SoftTimeLimitExceeded()

    step = make_step("TestSlow", make=make)
    RigFactory()
    (job_id,) = runner.create_jobs(step)
    assert runner.run_job(job_id) == JobStatus.ERROR
    job = Job.objects.get(pk=job_id)
    assert job.message.startswith("timed out after")
    assert "SoftTimeLimitExceeded" in job.traceback
    assert not ModifiedGene.objects.filter(name="slow").exists()


def test_a_stale_claim_does_not_make_the_key_again(make_step, recorder):
    """A worker that stalled between claiming and locking must not make a key another made."""
    step = make_step("TestA")
    rig = RigFactory()
    (job_id,) = runner.create_jobs(step)
    stalled = runner._claim(job_id, "stalled@host")
    assert stalled is not None and stalled.attempts == 1
    # The sweeper gave up on the stalled worker; another worker made the key meanwhile.
    Job.objects.filter(pk=job_id).update(status=JobStatus.PENDING)
    assert runner.run_job(job_id, worker="other@host") == JobStatus.DONE
    # The stalled worker wakes up.
    assert runner._make(stalled, step) == "skipped"
    job = Job.objects.get(pk=job_id)
    assert job.status == JobStatus.DONE
    assert job.worker_host == "other@host"
    assert recorder.count("TestA", rig.pk) == 1


# --- downstream ---------------------------------------------------------------------------------


def done_in(step: str):
    """key_source of a step that needs ``step`` to have made the key first."""
    return lambda: Rig.objects.filter(
        pk__in=Job.objects.filter(step=step, status=JobStatus.DONE).values("key_id")
    )


@pytest.mark.parametrize("narrowed", [False, True])
def test_downstream_keys_are_queued_when_upstream_finishes(
    make_step, recorder, django_capture_on_commit_callbacks, narrowed
):
    make_step("TestA")
    make_step(
        "TestB",
        depends_on=["TestA"],
        key_source=done_in("TestA"),
        keys_after=(lambda step, key_id: [key_id]) if narrowed else None,
    )
    rigs = RigFactory.create_batch(2)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        # Only A is asked for: B's keys come from A finishing them.
        runner.queue_missing(["TestA"])
    assert len(callbacks) >= 4  # A's dispatch, then per key: downstream queueing, B's dispatch
    for rig in rigs:
        assert job_of("TestA", rig.pk).status == JobStatus.DONE
        assert job_of("TestB", rig.pk).status == JobStatus.DONE
        assert recorder.calls.index(("TestA", rig.pk)) < recorder.calls.index(("TestB", rig.pk))


def test_downstream_is_not_queued_before_commit(make_step, recorder):
    """Inside the make's transaction nothing downstream is visible or queued yet."""
    make_step("TestA")
    make_step("TestB", depends_on=["TestA"], key_source=done_in("TestA"))
    RigFactory()
    (job_id,) = runner.create_jobs(get_step("TestA"))
    runner.run_job(job_id)  # the test transaction never commits: on_commit never fires
    assert not Job.objects.filter(step="TestB").exists()
    assert recorder.count("TestB") == 0


def test_failed_upstream_queues_nothing_downstream(make_step, django_capture_on_commit_callbacks):
    def make(rig: Rig) -> None:
        raise ValueError("no")

    make_step("TestA", make=make)
    make_step("TestB", depends_on=["TestA"])  # would accept every rig
    RigFactory()
    with django_capture_on_commit_callbacks(execute=True):
        runner.queue_missing(["TestA"])
    assert not Job.objects.filter(step="TestB").exists()


def test_waiting_downstream_is_retried_when_its_upstream_key_is_made(
    make_step, recorder, django_capture_on_commit_callbacks
):
    def make_b(rig: Rig) -> None:
        recorder.record("TestB", rig.pk)
        if not Job.objects.filter(step="TestA", key_id=rig.pk, status=JobStatus.DONE).exists():
            raise StepWaiting("TestA has not made this rig yet")

    make_step("TestA")
    make_step("TestB", depends_on=["TestA"], make=make_b, keys_after=lambda s, k: iter([k]))
    rig = RigFactory()
    with django_capture_on_commit_callbacks(execute=True):
        runner.queue_missing(["TestB"])
    assert job_of("TestB", rig.pk).status == JobStatus.WAITING
    with django_capture_on_commit_callbacks(execute=True):
        runner.queue_missing(["TestA"])  # no sweep: A finishing the key retries B
    assert job_of("TestB", rig.pk).status == JobStatus.DONE
    assert recorder.count("TestB") == 2


def test_queue_missing_runs_steps_in_dependency_order(
    make_step, recorder, django_capture_on_commit_callbacks
):
    make_step("TestB", depends_on=["TestA"])
    make_step("TestA")
    rig = RigFactory()
    with django_capture_on_commit_callbacks(execute=True):
        sent = runner.queue_missing(["TestB", "TestA"])
    assert list(sent) == ["TestA", "TestB"]
    assert recorder.calls[0] == ("TestA", rig.pk)


# --- orphans (single connection: the row lock part is in test_concurrency.py) ---------------


def test_revive_orphans_requeues_a_dead_workers_job(
    make_step, recorder, django_capture_on_commit_callbacks, settings
):
    step = make_step("TestA")
    rig = RigFactory()
    (job_id,) = runner.create_jobs(step)
    # A worker claimed it and died (its transaction, and so the row lock, is gone).
    assert runner._claim(job_id, "dead@host") is not None
    Job.objects.filter(pk=job_id).update(
        started_at=timezone.now() - timedelta(seconds=settings.PIPELINE_ORPHAN_GRACE_SECONDS + 5)
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert runner.revive_orphans() == 1
    job = Job.objects.get(pk=job_id)
    assert job.status == JobStatus.DONE  # re-dispatched and made (eager)
    assert job.attempts == 2
    assert recorder.count("TestA", rig.pk) == 1


def test_revive_orphans_leaves_recent_running_jobs(make_step, django_capture_on_commit_callbacks):
    step = make_step("TestA")
    RigFactory()
    (job_id,) = runner.create_jobs(step)
    runner._claim(job_id, "busy@host")
    with django_capture_on_commit_callbacks(execute=True):
        assert runner.revive_orphans() == 0
    assert Job.objects.get(pk=job_id).status == JobStatus.RUNNING


def test_a_job_that_keeps_killing_workers_ends_in_error(
    make_step, recorder, django_capture_on_commit_callbacks, settings
):
    settings.PIPELINE_MAX_ATTEMPTS = 2
    step = make_step("TestA")
    RigFactory()
    (job_id,) = runner.create_jobs(step)
    old = timezone.now() - timedelta(seconds=settings.PIPELINE_ORPHAN_GRACE_SECONDS + 5)
    runner._claim(job_id, "oom@host")
    Job.objects.filter(pk=job_id).update(started_at=old)
    with django_capture_on_commit_callbacks(execute=False) as sent:  # the worker dies again
        assert runner.revive_orphans() == 1
    assert len(sent) == 1  # dispatched on commit
    job = Job.objects.get(pk=job_id)
    assert job.status == JobStatus.PENDING
    assert job.message == "re-queued: worker oom@host stopped while making it"
    assert job.queued_at is not None

    runner._claim(job_id, "oom@host")
    Job.objects.filter(pk=job_id).update(started_at=old)
    with django_capture_on_commit_callbacks(execute=False) as sent:
        assert runner.revive_orphans() == 0
    assert sent == []
    job = Job.objects.get(pk=job_id)
    assert job.status == JobStatus.ERROR
    assert job.attempts == 2
    assert "gave up after 2 attempts" in job.message and "oom@host" in job.message
    assert recorder.count() == 0


# --- invalidate and summary ---------------------------------------------------------------------


def test_invalidate_forgets_the_keys_and_their_downstream(
    make_step, recorder, django_capture_on_commit_callbacks
):
    make_step("TestA")
    make_step("TestB", depends_on=["TestA"], key_source=done_in("TestA"))
    make_step("TestC", depends_on=["TestB"], keys_after=lambda s, k: [k])
    rigs = RigFactory.create_batch(2)
    with django_capture_on_commit_callbacks(execute=True):
        runner.queue_missing()
    assert Job.objects.filter(step__startswith="Test", status=JobStatus.DONE).count() == 6
    ModifiedGene.objects.filter(name__startswith="Test").delete()  # the results were deleted
    assert runner.invalidate("TestA", [rigs[0].pk]) == 3
    assert set(Job.objects.filter(step__startswith="Test").values_list("step", "key_id")) == {
        ("TestA", rigs[1].pk),
        ("TestB", rigs[1].pk),
        ("TestC", rigs[1].pk),
    }
    with django_capture_on_commit_callbacks(execute=True):
        runner.sweep()
    assert Job.objects.filter(step__startswith="Test", status=JobStatus.DONE).count() == 6
    assert recorder.count(key_id=rigs[0].pk) == 6


def test_summary_counts_per_step(make_step, django_capture_on_commit_callbacks):
    def make(rig: Rig) -> None:
        if rig.name.endswith("bad"):
            raise ValueError("bad rig")

    make_step("TestA", make=make)
    make_step("TestB", depends_on=["TestA"], key_source=lambda: Rig.objects.none())
    RigFactory(name="r-ok")
    RigFactory(name="r-bad")
    with django_capture_on_commit_callbacks(execute=True):
        runner.queue_missing(["TestA"])
    RigFactory(name="r-new")
    rows = {r["step"]: r for r in runner.summary()}
    assert rows["TestA"]["done"] == 1
    assert rows["TestA"]["error"] == 1
    assert rows["TestA"]["missing"] == 1
    assert rows["TestA"]["pending"] == rows["TestA"]["running"] == rows["TestA"]["waiting"] == 0
    assert rows["TestA"]["queue"] == "compute"
    assert rows["TestB"]["depends_on"] == "TestA"
    assert rows["TestB"]["missing"] == 0
    names = [r["step"] for r in runner.summary()]
    assert names.index("TestA") < names.index("TestB")


# --- declaring steps ----------------------------------------------------------------------------


def _step(name: str, depends_on: tuple[str, ...] = ()) -> Step:
    return Step(
        name=name,
        key_model=Rig,
        key_source=Rig.objects.all,
        make=lambda rig: None,
        depends_on=depends_on,
    )


def test_ordered_steps_puts_upstream_first(make_step):
    make_step("TestC", depends_on=["TestB"])
    make_step("TestB", depends_on=["TestA"])
    make_step("TestA")
    names = [s.name for s in ordered_steps(["TestC", "TestA", "TestB"])]
    assert names == ["TestA", "TestB", "TestC"]
    # Only the requested steps come back, still in order.
    assert [s.name for s in ordered_steps(["TestC", "TestA"])] == ["TestA", "TestC"]
    assert [s.name for s in downstream_of("TestA")] == ["TestB"]


def test_ordered_steps_detects_cycles():
    register(_step("TestCycleA", ("TestCycleB",)))
    register(_step("TestCycleB", ("TestCycleA",)))
    try:
        with pytest.raises(ValueError, match="cycle"):
            ordered_steps(["TestCycleA"])
    finally:
        REGISTRY.pop("TestCycleA")
        REGISTRY.pop("TestCycleB")


def test_unknown_steps_are_named():
    with pytest.raises(KeyError, match="unknown pipeline step 'Nope'"):
        get_step("Nope")
    with pytest.raises(KeyError, match="unknown pipeline step 'Nope'"):
        ordered_steps(["Nope"])


def test_a_step_cannot_be_declared_twice_differently(make_step):
    make_step("TestA")
    with pytest.raises(ValueError, match="declared twice"):
        register(_step("TestA"))


def test_the_real_step_is_registered():
    step = get_step("PhotostimBrainRegion")
    assert step.key_model.__name__ == "Photostim"
    assert step.queue == "compute"
    assert "brain area" in step.description
