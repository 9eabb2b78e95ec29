"""``manage.py ingest_ephys [FOLDER ...]``: find and ingest sorted ephys sessions now.

Without folders: scan every ephys data root (MAP_EPHYS_ROOTS). With folders: record exactly
those session folders (each must lie inside a configured root, e.g.
``/data/ephys/dl25/catgt_20180225_g0``). Either way each new or changed folder becomes an
EphysIngest job: on the embedded default it runs right here, with a broker it is queued to the
ingest workers (``--wait`` follows it). Unlike the periodic scan, this command does not wait
for recently modified files to settle: whoever runs it says the data is complete.
"""

from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from ephys.ingest import db_discovery
from ephys.ingest.errors import EphysIngestError
from ephys.models import SortedOutput
from ephys.steps import EPHYS_INGEST
from mapsite.core.paths import PathOutsideRootsError
from mapsite.pipeline import runner
from mapsite.pipeline.models import Job, JobStatus


class Command(BaseCommand):
    help = "Find and ingest sorted ephys sessions (all ephys roots, or the given folders)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("folders", nargs="*", help="session folders inside an ephys root")
        parser.add_argument("--wait", action="store_true", help="with a broker: wait for jobs")

    def handle(self, *args: Any, **opts: Any) -> None:
        roots = db_discovery.ephys_roots()
        if not roots:
            raise CommandError("no ephys data root is configured (MAP_EPHYS_ROOTS)")
        report = db_discovery.ScanReport()
        if opts["folders"]:
            ids = []
            for name in opts["folders"]:
                try:
                    found, root = db_discovery.find_session_dir(name, roots)
                    output = db_discovery.register_session_dir(found, root, roots, report=report)
                except (PathOutsideRootsError, EphysIngestError, OSError) as exc:
                    raise CommandError(f"refused {name}: {exc}") from None
                if output is not None:
                    ids.append(output.pk)
        else:
            report = db_discovery.scan_ephys_roots(roots, settle_seconds=0)
            ids = None
        self.stdout.write(f"scan: {report}")
        for line in report.refused:
            self.stderr.write(f"  refused {line}")
        runner.queue_missing([EPHYS_INGEST], key_ids=ids, retry_waiting=True)
        if not settings.CELERY_TASK_ALWAYS_EAGER and opts["wait"]:
            call_command("populate", EPHYS_INGEST, "--wait", stdout=self.stdout)
        outputs = SortedOutput.objects.filter(superseded_at__isnull=True).select_related(
            "recording"
        )
        if ids is not None:
            outputs = outputs.filter(pk__in=ids)
        jobs = {
            j.key_id: j
            for j in Job.objects.filter(step=EPHYS_INGEST, key_id__in=outputs.values("pk"))
        }
        failed = False
        for output in outputs.order_by("recording__h2o", "recording__relative_path"):
            job = jobs.get(output.pk)
            status = job.status if job else "no job"
            style = {
                JobStatus.DONE: self.style.SUCCESS,
                JobStatus.ERROR: self.style.ERROR,
                JobStatus.WAITING: self.style.WARNING,
            }.get(status, str)
            detail = (job.message if job and job.message else output.note) or ""
            self.stdout.write(style(f"{status:8} {output}" + (f": {detail}" if detail else "")))
            failed |= status == JobStatus.ERROR and ids is not None
        if failed:
            raise CommandError("some of the given folders could not be ingested (see above)")
