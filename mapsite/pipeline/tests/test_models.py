"""The job table's own invariants, enforced by the database."""

import pytest
from django.db import IntegrityError, transaction

from mapsite.pipeline.models import Job, JobStatus

pytestmark = pytest.mark.django_db


def test_status_is_checked():
    with pytest.raises(IntegrityError), transaction.atomic():
        Job.objects.create(step="TestA", key_id=1, status="bogus")
    for status in JobStatus.values:
        Job.objects.create(step=f"Test{status}", key_id=1, status=status)
    assert Job.objects.count() == len(JobStatus.values)


def test_status_cannot_be_updated_to_an_unknown_value():
    job = Job.objects.create(step="TestA", key_id=1)
    with pytest.raises(IntegrityError), transaction.atomic():
        Job.objects.filter(pk=job.pk).update(status="bogus")
    job.refresh_from_db()
    assert job.status == JobStatus.PENDING


def test_one_job_per_step_and_key():
    Job.objects.create(step="TestA", key_id=7)
    with pytest.raises(IntegrityError), transaction.atomic():
        Job.objects.create(step="TestA", key_id=7)
    Job.objects.create(step="TestB", key_id=7)  # another step: fine
    Job.objects.create(step="TestA", key_id=8)  # another key: fine
    assert Job.objects.count() == 3


def test_new_jobs_are_pending_with_no_attempts():
    job = Job.objects.create(step="TestA", key_id=1, key_label="rig 1")
    assert (job.status, job.attempts, job.message, job.traceback) == ("pending", 0, "", "")
    assert job.created_at is not None and job.started_at is None
    assert str(job) == "TestA[rig 1] pending"
