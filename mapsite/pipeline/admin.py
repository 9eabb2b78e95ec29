"""Admin for pipeline jobs: filter by step/status, read tracebacks, retry, see progress."""

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils.html import format_html

from . import runner
from .models import Job, JobStatus

STATUS_COLOURS = {
    JobStatus.DONE: "#2e7d32",
    JobStatus.ERROR: "#c62828",
    JobStatus.WAITING: "#ef6c00",
    JobStatus.RUNNING: "#1565c0",
    JobStatus.PENDING: "#616161",
}


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "step",
        "key_label",
        "coloured_status",
        "attempts",
        "short_message",
        "worker_host",
        "started_at",
        "duration",
    ]
    list_filter = ["step", "status"]
    search_fields = ["key_label", "message", "step"]
    show_full_result_count = False
    list_per_page = 100
    actions = ["retry_jobs"]
    readonly_fields = [f.name for f in Job._meta.fields]
    fields = readonly_fields
    change_list_template = "admin/pipeline/job/change_list.html"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Job | None = None) -> bool:
        return False  # jobs change through actions only; the form is a read-only view

    @admin.display(description="status", ordering="status")
    def coloured_status(self, job: Job) -> str:
        return format_html(
            '<b style="color:{}">{}</b>', STATUS_COLOURS.get(job.status, "#000"), job.status
        )

    @admin.display(description="message")
    def short_message(self, job: Job) -> str:
        return (job.message[:120] + "…") if len(job.message) > 120 else job.message

    @admin.action(description="Retry the selected jobs", permissions=["view"])
    def retry_jobs(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        if not request.user.is_staff:
            self.message_user(request, "Only staff can retry jobs.", messages.ERROR)
            return
        n = runner.retry(queryset.values_list("pk", flat=True))
        self.message_user(request, f"{n} job(s) queued again.", messages.SUCCESS)

    def changelist_view(
        self, request: HttpRequest, extra_context: dict | None = None
    ) -> HttpResponse:
        extra_context = {**(extra_context or {}), "step_summary": runner.summary()}
        return super().changelist_view(request, extra_context=extra_context)
