"""``manage.py ingest_behavior [FILE ...]``: ingest Bpod files now.

Without files: scan every behavior data root (MAP_BEHAVIOR_ROOTS) for new files. With files:
register exactly those (each must lie inside a configured root). Either way each file becomes a
BehaviorIngest job: on the embedded default it runs right here, with a broker it is queued to
the ingest workers (``--wait`` follows it). Files already ingested are not ingested again.
"""

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from experiment.ingest import discovery
from experiment.steps import BEHAVIOR_INGEST
from mapsite.core.paths import PathOutsideRootsError
from mapsite.pipeline import runner
from mapsite.pipeline.models import Job, JobStatus


class Command(BaseCommand):
    help = "Find and ingest Bpod behavior files (all roots, or the given files)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("files", nargs="*", help="files inside a behavior data root")
        parser.add_argument("--wait", action="store_true", help="with a broker: wait for jobs")

    def handle(self, *args: Any, **opts: Any) -> None:
        roots = discovery.behavior_roots()
        if not roots:
            raise CommandError("no behavior data root is configured (MAP_BEHAVIOR_ROOTS)")
        if opts["files"]:
            rows = []
            for name in opts["files"]:
                try:
                    rows.append(discovery.register_file(name, roots))
                except (PathOutsideRootsError, OSError) as exc:
                    raise CommandError(f"refused {name}: {exc}") from None
            ids = [r.pk for r in rows]
        else:
            report = discovery.scan_behavior_roots(roots)
            self.stdout.write(f"scan: {report}")
            for line in report.refused:
                self.stderr.write(f"  refused {line}")
            for row in report.changed:
                self.stderr.write(self.style.WARNING(f"  {row.file_name}: {row.change_note}"))
            ids = None
            shown = [r.pk for r in report.new]  # report on what this scan found, not history
        runner.queue_missing([BEHAVIOR_INGEST], key_ids=ids, retry_waiting=True)
        if not settings.CELERY_TASK_ALWAYS_EAGER and opts["wait"]:
            call = ["populate", BEHAVIOR_INGEST, "--wait"]
            from django.core.management import call_command

            call_command(*call, stdout=self.stdout)
        jobs = Job.objects.filter(
            step=BEHAVIOR_INGEST, key_id__in=ids if ids is not None else shown
        )
        failed = False
        for job in jobs.order_by("key_label"):
            style = {
                JobStatus.DONE: self.style.SUCCESS,
                JobStatus.ERROR: self.style.ERROR,
                JobStatus.WAITING: self.style.WARNING,
            }.get(job.status, str)
            detail = f": {job.message}" if job.message else ""
            self.stdout.write(style(f"{job.status:8} {job.key_label}{detail}"))
            failed |= job.status == JobStatus.ERROR and ids is not None
        if ids is None:
            waiting = Job.objects.filter(step=BEHAVIOR_INGEST, status=JobStatus.WAITING).count()
            errors = Job.objects.filter(step=BEHAVIOR_INGEST, status=JobStatus.ERROR).count()
            self.stdout.write(
                f"behavior files in all: {waiting} waiting, {errors} in error "
                "(see the admin's Pipeline jobs and Behavior files pages)"
            )
        if failed:
            raise CommandError("some of the given files could not be ingested (see above)")
