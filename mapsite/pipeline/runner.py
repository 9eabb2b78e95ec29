"""Running pipeline jobs: queueing missing keys, making one key, sweeping.

Concurrency model (PostgreSQL): a worker *claims* a job by moving it from pending to running in
its own short transaction, then makes the key in a second transaction that holds the job row's
lock (``SELECT ... FOR UPDATE``) until it commits the results together with status *done*. So:
- a key is never made twice (claiming needs status pending; results and "done" commit together;
  result tables carry unique constraints as the last guard);
- a job left *running* whose row lock nobody holds belongs to a dead worker: the sweeper sees it
  with ``SKIP LOCKED`` and puts it back to pending.
"""

import logging
import socket
import time
import traceback
from collections.abc import Iterable
from datetime import timedelta

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from .models import Job, JobStatus
from .steps import REGISTRY, Step, StepWaiting, downstream_of, get_step, ordered_steps

log = logging.getLogger(__name__)

RUNNABLE = (JobStatus.PENDING, JobStatus.WAITING)
# A pending job whose message was lost (broker restart) is re-sent after this long.
REQUEUE_AFTER = timedelta(minutes=10)


def _label(row: object) -> str:
    return str(row)[:255]


def create_jobs(step: Step, key_ids: Iterable[int] | None = None) -> list[int]:
    """Create pending jobs for keys of ``step`` that have none; return the new job ids."""
    missing = step.missing_keys()
    if key_ids is not None:
        missing = missing.filter(pk__in=list(key_ids))
    rows = list(missing)
    if not rows:
        return []
    Job.objects.bulk_create(
        [Job(step=step.name, key_id=r.pk, key_label=_label(r)) for r in rows],
        ignore_conflicts=True,  # another sweeper may have created some of them meanwhile
    )
    return list(
        Job.objects.filter(
            step=step.name, key_id__in=[r.pk for r in rows], status=JobStatus.PENDING
        ).values_list("pk", flat=True)
    )


def dispatch(job_ids: Iterable[int], step: Step) -> None:
    """Send jobs to the step's Celery queue once the current transaction commits."""
    ids = list(job_ids)
    if not ids:
        return
    Job.objects.filter(pk__in=ids).update(queued_at=timezone.now())

    def send() -> None:
        from .tasks import run_job

        limit = step.soft_time_limit or settings.CELERY_TASK_SOFT_TIME_LIMIT
        for job_id in ids:
            run_job.apply_async(
                args=[job_id], queue=step.queue, soft_time_limit=limit, time_limit=limit + 60
            )

    transaction.on_commit(send)


def queue_missing(
    step_names: Iterable[str] | None = None,
    *,
    retry_waiting: bool = False,
    retry_errors: bool = False,
    key_ids: Iterable[int] | None = None,
) -> dict[str, int]:
    """Create and dispatch jobs for missing keys (and stale pending ones). Returns counts/step."""
    sent: dict[str, int] = {}
    for step in ordered_steps(step_names):
        with transaction.atomic():
            ids = create_jobs(step, key_ids)
            again = [JobStatus.WAITING] if retry_waiting else []
            if retry_errors:
                again.append(JobStatus.ERROR)
            if again:
                revived = Job.objects.filter(step=step.name, status__in=again)
                if key_ids is not None:
                    revived = revived.filter(key_id__in=list(key_ids))
                retry_ids = list(revived.values_list("pk", flat=True))
                Job.objects.filter(pk__in=retry_ids).update(status=JobStatus.PENDING)
                ids += retry_ids
            stale = Job.objects.filter(
                step=step.name,
                status=JobStatus.PENDING,
                queued_at__lt=timezone.now() - REQUEUE_AFTER,
            ).exclude(pk__in=ids)
            ids += list(stale.values_list("pk", flat=True))
            stale_never = Job.objects.filter(
                step=step.name, status=JobStatus.PENDING, queued_at__isnull=True
            ).exclude(pk__in=ids)
            ids += list(stale_never.values_list("pk", flat=True))
            dispatch(ids, step)
        sent[step.name] = len(ids)
    return sent


def run_job(job_id: int) -> str:
    """Make the key of one job. Returns the job's final status (or 'skipped')."""
    with transaction.atomic():
        job = Job.objects.select_for_update(skip_locked=True).filter(pk=job_id).first()
        if job is None or job.status not in RUNNABLE:
            return "skipped"  # made, being made, or failed and awaiting a person
        job.status = JobStatus.RUNNING
        job.attempts += 1
        job.started_at = timezone.now()
        job.finished_at = None
        job.worker_host = socket.gethostname()[:255]
        job.save(update_fields=["status", "attempts", "started_at", "finished_at", "worker_host"])

    step = get_step(job.step)
    t0 = time.perf_counter()
    try:
        with transaction.atomic():
            # Hold the row lock while making: it tells the sweeper this worker is alive.
            Job.objects.select_for_update().filter(pk=job_id).first()
            key = step.key_model.objects.filter(pk=job.key_id).first()
            if key is None:
                raise LookupError(f"{step.key_model.__name__} {job.key_id} no longer exists")
            step.make(key)
            Job.objects.filter(pk=job_id).update(
                status=JobStatus.DONE,
                finished_at=timezone.now(),
                duration=time.perf_counter() - t0,
                message="",
                traceback="",
            )
            transaction.on_commit(lambda: queue_downstream(step.name, job.key_id))
        return JobStatus.DONE
    except StepWaiting as waiting:
        _finish(job_id, JobStatus.WAITING, str(waiting), "", t0)
        return JobStatus.WAITING
    except SoftTimeLimitExceeded:
        msg = f"timed out after {time.perf_counter() - t0:.0f} s (soft time limit)"
        _finish(job_id, JobStatus.ERROR, msg, traceback.format_exc(), t0)
        return JobStatus.ERROR
    except Exception as exc:  # noqa: BLE001 - every failure must land in the job row
        log.warning("job %s (%s %s) failed: %s", job_id, job.step, job.key_id, exc)
        _finish(job_id, JobStatus.ERROR, f"{type(exc).__name__}: {exc}", traceback.format_exc(), t0)
        return JobStatus.ERROR


def _finish(job_id: int, status: str, message: str, tb: str, t0: float) -> None:
    Job.objects.filter(pk=job_id).update(
        status=status,
        message=message,
        traceback=tb,
        finished_at=timezone.now(),
        duration=time.perf_counter() - t0,
    )


def queue_downstream(step_name: str, key_id: int) -> None:
    """After ``step_name`` made ``key_id``: queue whatever that unlocks downstream."""
    for down in downstream_of(step_name):
        keys = down.keys_after(step_name, key_id) if down.keys_after else None
        queue_missing([down.name], key_ids=keys)


def revive_orphans() -> int:
    """Put back to pending the running jobs whose worker died (nobody holds their row lock)."""
    cutoff = timezone.now() - timedelta(seconds=settings.PIPELINE_ORPHAN_GRACE_SECONDS)
    revived: dict[str, list[int]] = {}
    with transaction.atomic():
        orphans = Job.objects.select_for_update(skip_locked=True).filter(
            status=JobStatus.RUNNING, started_at__lt=cutoff
        )
        for job in orphans:
            job.status = JobStatus.PENDING
            job.message = f"re-queued: worker {job.worker_host or '?'} stopped while making it"
            job.save(update_fields=["status", "message"])
            revived.setdefault(job.step, []).append(job.pk)
        for name, ids in revived.items():
            if name in REGISTRY:
                dispatch(ids, get_step(name))
    return sum(len(v) for v in revived.values())


def sweep() -> dict[str, int]:
    """The periodic sweep: revive dead workers' jobs, queue missing keys, retry waiting ones."""
    revived = revive_orphans()
    sent = queue_missing(retry_waiting=True)
    if revived:
        sent["revived"] = revived
    return sent


def retry(job_ids: Iterable[int]) -> int:
    """Re-run failed (or waiting) jobs: what the admin's "retry" action calls."""
    ids = list(job_ids)
    by_step: dict[str, list[int]] = {}
    with transaction.atomic():
        jobs = Job.objects.select_for_update(skip_locked=True).filter(
            pk__in=ids, status__in=[JobStatus.ERROR, JobStatus.WAITING, JobStatus.PENDING]
        )
        for job in jobs:
            by_step.setdefault(job.step, []).append(job.pk)
        Job.objects.filter(pk__in=[i for v in by_step.values() for i in v]).update(
            status=JobStatus.PENDING, message="", traceback=""
        )
        for name, step_ids in by_step.items():
            if name in REGISTRY:
                dispatch(step_ids, get_step(name))
    return sum(len(v) for v in by_step.values())


def invalidate(step_name: str, key_ids: Iterable[int]) -> int:
    """Forget that keys were made (their results were deleted): jobs of them and downstream go.

    Used when upstream data is replaced (e.g. a re-sorted session); the next sweep re-makes them.
    """
    ids = list(key_ids)
    deleted, _ = Job.objects.filter(step=step_name, key_id__in=ids).delete()
    return deleted


def summary() -> list[dict]:
    """Per step: how many keys are done / pending / running / waiting / error / not yet queued."""
    counts: dict[str, dict[str, int]] = {}
    for row in Job.objects.values("step", "status").annotate(n=Count("id")):
        counts.setdefault(row["step"], {})[row["status"]] = row["n"]
    out = []
    for step in ordered_steps():
        c = counts.get(step.name, {})
        out.append(
            {
                "step": step.name,
                "description": step.description,
                "queue": step.queue,
                "depends_on": ", ".join(step.depends_on),
                "missing": step.missing_keys().count(),
                **{s: c.get(s, 0) for s in JobStatus.values},
            }
        )
    return out
