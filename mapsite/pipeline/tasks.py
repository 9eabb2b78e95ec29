"""Celery tasks of the pipeline: thin wrappers around mapsite.pipeline.runner."""

from celery import Task, shared_task
from django.db import InterfaceError, OperationalError

from . import runner


@shared_task(
    bind=True,
    name="mapsite.pipeline.tasks.run_job",
    acks_late=True,
    reject_on_worker_lost=True,
    # Only a lost database connection is worth an automatic retry (runner.run_job gives the job
    # back to pending then); a failing make() is recorded in the job row for a person to look at.
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=True,
    max_retries=3,
)
def run_job(self: Task, job_id: int) -> str:
    # The Celery node name (e.g. "compute1@host") says which worker made the key.
    return runner.run_job(job_id, worker=self.request.hostname)


@shared_task(name="mapsite.pipeline.tasks.sweep", acks_late=True, soft_time_limit=300)
def sweep() -> dict[str, int]:
    return runner.sweep()


@shared_task(name="mapsite.pipeline.tasks.queue_missing", acks_late=True, soft_time_limit=300)
def queue_missing(step_names: list[str] | None = None) -> dict[str, int]:
    return runner.queue_missing(step_names)
