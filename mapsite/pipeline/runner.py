"""Running pipeline jobs: queueing missing keys, making one key, sweeping.

Concurrency model (PostgreSQL): a worker *claims* a job by moving it from pending to running in
its own short transaction, then makes the key in a second transaction that holds the job row's
lock (``SELECT ... FOR UPDATE``) until it commits the results together with status *done*. So:
- a key is never made twice (claiming needs status pending; the maker re-checks under the lock
  that the job is still its own claim; results and "done" commit together; result tables carry
  unique constraints as the last guard);
- a job left *running* whose row lock nobody holds belongs to a dead worker: the sweeper sees it
  with ``SKIP LOCKED`` after a grace period and puts it back to pending (or, after
  ``PIPELINE_MAX_ATTEMPTS`` attempts, to error: a key that kills its worker must not loop).

``attempts`` counts the times a worker started making the key and did not end up *waiting*.
"""

import logging
import socket
import time
import traceback
from collections.abc import Iterable
from datetime import timedelta

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import Count, F
from django.db.models.functions import Now
from django.utils import timezone

from .models import Job, JobStatus
from .steps import DISCOVERIES, REGISTRY, Step, StepWaiting, downstream_of, get_step, ordered_steps

log = logging.getLogger(__name__)

RUNNABLE = (JobStatus.PENDING, JobStatus.WAITING)
# A pending job whose message was lost (broker restart) is re-sent after this long.
REQUEUE_AFTER = timedelta(minutes=10)
SKIPPED = "skipped"


def _label(row: object) -> str:
    return str(row)[:255]


def _ids(key_ids: Iterable[int] | None) -> list[int] | None:
    """Materialise key ids once: a generator must not be consumed by the first filter only."""
    return None if key_ids is None else list(key_ids)


def create_jobs(step: Step, key_ids: Iterable[int] | None = None) -> list[int]:
    """Create pending jobs for keys of ``step`` that have none; return the new job ids."""
    keys = _ids(key_ids)
    missing = step.missing_keys()
    if keys is not None:
        missing = missing.filter(pk__in=keys)
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
    keys = _ids(key_ids)
    sent: dict[str, int] = {}
    for step in ordered_steps(step_names):
        with transaction.atomic():
            ids = create_jobs(step, keys)
            again = [JobStatus.WAITING] if retry_waiting else []
            if retry_errors:
                again.append(JobStatus.ERROR)
            if again:
                # Locked, so a worker cannot claim one of them between this read and the
                # update below (it would then be set back to pending while being made).
                revived = Job.objects.select_for_update(skip_locked=True).filter(
                    step=step.name, status__in=again
                )
                if keys is not None:
                    revived = revived.filter(key_id__in=keys)
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


def run_job(job_id: int, worker: str | None = None) -> str:
    """Make the key of one job. Returns the job's final status (or 'skipped').

    ``worker`` names who makes it (the Celery node name); it defaults to this host's name.
    Failures of ``make`` land in the job row. Only a failure of the database connection itself
    (nothing can be recorded then) gives the job back to *pending* and is raised, so that the
    Celery task retries.
    """
    job = _claim(job_id, (worker or socket.gethostname())[:255])
    if job is None:
        return SKIPPED
    if job.step not in REGISTRY:
        msg = f"unknown pipeline step {job.step!r}: is this worker running the current code?"
        _finish(job_id, job.attempts, JobStatus.ERROR, msg, "", None)
        return JobStatus.ERROR
    return _make(job, get_step(job.step))


def _claim(job_id: int, worker: str) -> Job | None:
    """First transaction: pending/waiting → running. None if someone else has (or had) it."""
    with transaction.atomic():
        job = Job.objects.select_for_update(skip_locked=True).filter(pk=job_id).first()
        if job is None or job.status not in RUNNABLE:
            return None  # made, being made, or failed and awaiting a person
        Job.objects.filter(pk=job_id).update(
            status=JobStatus.RUNNING,
            attempts=F("attempts") + 1,
            started_at=Now(),  # the database's clock: the sweeper compares with it
            finished_at=None,
            duration=None,
            worker_host=worker,
        )
    job.refresh_from_db()
    return job


def _make(job: Job, step: Step) -> str:
    """Second transaction: make the key while holding the job row's lock, and mark it done."""
    attempt = job.attempts
    t0 = time.perf_counter()
    try:
        with transaction.atomic():
            # Hold the row lock while making: it tells the sweeper this worker is alive. If the
            # job is no longer this claim (revived by a sweep while this worker stalled before
            # taking the lock, and claimed by another worker), leave it alone.
            mine = (
                Job.objects.select_for_update()
                .filter(pk=job.pk, status=JobStatus.RUNNING, attempts=attempt)
                .exists()
            )
            if not mine:
                log.warning("job %s was taken over by another worker; not making it", job.pk)
                return SKIPPED
            outcome = _make_in_savepoint(job, step)
            if outcome is None:
                Job.objects.filter(pk=job.pk).update(
                    status=JobStatus.DONE,
                    finished_at=timezone.now(),
                    duration=time.perf_counter() - t0,
                    message="",
                    traceback="",
                )
                key_id = job.key_id
                # robust: the key is made whatever happens to the queueing; the sweep catches up.
                transaction.on_commit(lambda: queue_downstream(step.name, key_id), robust=True)
                status = JobStatus.DONE
            else:
                status, message, tb = outcome
                _finish(job.pk, attempt, status, message, tb, t0)
        return status
    except Exception:
        # Only reached when the database connection failed (make's own failures were recorded
        # above): give the job back so the Celery retry - or else the sweeper - runs it again.
        _give_back(job.pk, attempt)
        raise


def _make_in_savepoint(job: Job, step: Step) -> tuple[str, str, str] | None:
    """Run ``make`` in a savepoint; None when it succeeded, else (status, message, traceback).

    Everything ``make`` wrote is rolled back when it fails. Raises only when the savepoint could
    not be rolled back (the connection is gone), so that nothing more is tried in the
    transaction.
    """
    t0 = time.perf_counter()
    try:
        with transaction.atomic():
            key = step.key_model.objects.filter(pk=job.key_id).first()
            if key is None:
                raise LookupError(
                    f"{step.key_model.__name__} {job.key_id} ({job.key_label}) no longer exists"
                )
            step.make(key)
        return None
    except Exception as exc:  # noqa: BLE001 - every failure must land in the job row
        if connection.needs_rollback:
            raise  # the savepoint rollback failed: the connection is unusable
        if isinstance(exc, StepWaiting):
            return JobStatus.WAITING, str(exc), ""
        if isinstance(exc, SoftTimeLimitExceeded):
            msg = f"timed out after {time.perf_counter() - t0:.0f} s (soft time limit)"
            return JobStatus.ERROR, msg, traceback.format_exc()
        log.warning("job %s (%s %s) failed: %s", job.pk, job.step, job.key_id, exc)
        return JobStatus.ERROR, f"{type(exc).__name__}: {exc}", traceback.format_exc()


def _finish(
    job_id: int, attempt: int, status: str, message: str, tb: str, t0: float | None
) -> None:
    """Record how this attempt ended (only if the job is still this attempt's claim)."""
    Job.objects.filter(pk=job_id, status=JobStatus.RUNNING, attempts=attempt).update(
        status=status,
        message=message,
        traceback=tb,
        finished_at=timezone.now(),
        duration=None if t0 is None else time.perf_counter() - t0,
        # Waiting for a prerequisite is not a failed attempt (PIPELINE_MAX_ATTEMPTS counts those).
        attempts=F("attempts") - 1 if status == JobStatus.WAITING else F("attempts"),
    )


def _give_back(job_id: int, attempt: int) -> None:
    """Running → pending after a database failure, if the database can be reached at all."""
    try:
        if not connection.in_atomic_block:
            connection.close_if_unusable_or_obsolete()
        Job.objects.filter(pk=job_id, status=JobStatus.RUNNING, attempts=attempt).update(
            status=JobStatus.PENDING,
            message="the database connection failed while making it; retrying",
        )
    except DatabaseError as exc:
        log.warning("job %s could not be given back (%s); the sweeper will revive it", job_id, exc)


def queue_downstream(step_name: str, key_id: int) -> None:
    """After ``step_name`` made ``key_id``: queue whatever that unlocks downstream.

    Downstream jobs already waiting (for this upstream key, typically) are retried too.
    """
    for down in downstream_of(step_name):
        keys = down.keys_after(step_name, key_id) if down.keys_after else None
        queue_missing([down.name], key_ids=keys, retry_waiting=True)


def revive_orphans() -> int:
    """Put back to pending the running jobs whose worker died (nobody holds their row lock).

    A job that has already used up ``PIPELINE_MAX_ATTEMPTS`` goes to *error* instead: a key whose
    making kills the worker (memory, a crash in a library) must not take down worker after worker.
    """
    cutoff = Now() - timedelta(seconds=settings.PIPELINE_ORPHAN_GRACE_SECONDS)
    max_attempts = settings.PIPELINE_MAX_ATTEMPTS
    revived: dict[str, list[int]] = {}
    with transaction.atomic():
        orphans = Job.objects.select_for_update(skip_locked=True).filter(
            status=JobStatus.RUNNING, started_at__lt=cutoff
        )
        for job in orphans:
            who = job.worker_host or "?"
            if job.attempts >= max_attempts:
                job.status = JobStatus.ERROR
                job.message = (
                    f"gave up after {job.attempts} attempts: worker {who} stopped while making "
                    "it (killed, out of memory, hard time limit?)"
                )
                job.finished_at = timezone.now()
                job.save(update_fields=["status", "message", "finished_at"])
                continue
            job.status = JobStatus.PENDING
            job.message = f"re-queued: worker {who} stopped while making it"
            job.save(update_fields=["status", "message"])
            revived.setdefault(job.step, []).append(job.pk)
        for name, ids in revived.items():
            if name in REGISTRY:
                dispatch(ids, get_step(name))
    return sum(len(v) for v in revived.values())


def run_discoveries() -> dict[str, str]:
    """Run every registered discovery (e.g. scanning data roots for new files).

    A failing discovery is logged and reported, and does not stop the others or the sweep.
    """
    reports = {}
    for name, discover in DISCOVERIES.items():
        try:
            reports[name] = str(discover())
        except Exception as exc:  # noqa: BLE001 - one unreachable share must not stop the sweep
            log.exception("discovery %s failed", name)
            reports[name] = f"failed: {type(exc).__name__}: {exc}"
    return reports


def sweep() -> dict[str, int]:
    """The periodic sweep: find new inputs, revive dead workers' jobs, queue missing keys and
    retry waiting ones."""
    run_discoveries()
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
    Downstream keys are found with the downstream step's ``keys_after``; a downstream step
    without it is reached only when it shares the key model (then the key ids are the same).
    Returns the number of jobs deleted.
    """
    ids = list(key_ids)
    if not ids:
        return 0
    deleted, _ = Job.objects.filter(step=step_name, key_id__in=ids).delete()
    upstream = REGISTRY.get(step_name)
    for down in downstream_of(step_name):
        if down.keys_after:
            down_ids = sorted({k for key_id in ids for k in down.keys_after(step_name, key_id)})
        elif upstream is not None and down.key_model is upstream.key_model:
            down_ids = ids
        else:
            continue
        deleted += invalidate(down.name, down_ids)
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
