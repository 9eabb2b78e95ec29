"""The job table of the pipeline-step mechanism: one row per (step, key)."""

from django.db import models
from django.db.models import Q


class JobStatus(models.TextChoices):
    PENDING = "pending", "pending"
    RUNNING = "running", "running"
    DONE = "done", "done"
    WAITING = "waiting", "waiting for a prerequisite"
    ERROR = "error", "error"


class Job(models.Model):
    """Making one key of one step. Unique per (step, key): a key is never made twice.

    ``key_id`` is the primary key of a row of the step's key model (e.g. a Photostim for
    PhotostimBrainRegion, a behavior file for BehaviorIngest).
    """

    step = models.CharField(max_length=64)
    key_id = models.BigIntegerField()
    key_label = models.CharField(max_length=255, blank=True, default="")
    status = models.CharField(max_length=8, choices=JobStatus.choices, default=JobStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    message = models.TextField(blank=True, default="", help_text="what failed / what is awaited")
    traceback = models.TextField(blank=True, default="")
    worker_host = models.CharField(max_length=255, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration = models.FloatField(null=True, blank=True, help_text="seconds spent in make()")

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["step", "key_id"], name="job_step_key_unique"),
            models.CheckConstraint(
                condition=Q(status__in=JobStatus.values), name="job_status_valid"
            ),
        ]
        indexes = [
            models.Index(fields=["step", "status"]),
            models.Index(fields=["status", "started_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.step}[{self.key_label or self.key_id}] {self.status}"
