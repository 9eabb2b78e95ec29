"""``manage.py populate [STEP ...]``: make every missing key of the named steps (default: all).

With a broker configured the jobs go to the Celery workers (``--wait`` follows their progress);
on the embedded default (no broker) they run right here, one after the other.
"""

import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from mapsite.pipeline import runner
from mapsite.pipeline.models import Job, JobStatus
from mapsite.pipeline.steps import REGISTRY, ordered_steps


class Command(BaseCommand):
    help = "Queue (or, without a broker, run) the missing keys of pipeline steps."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("steps", nargs="*", help="step names (default: every step)")
        parser.add_argument("--list", action="store_true", help="list steps and their progress")
        parser.add_argument("--retry-errors", action="store_true", help="re-run failed jobs too")
        parser.add_argument(
            "--wait", action="store_true", help="with a broker: follow progress until finished"
        )
        parser.add_argument("--timeout", type=float, default=3600.0, help="seconds for --wait")

    def handle(self, *args: Any, **opts: Any) -> None:
        names = opts["steps"] or None
        try:
            steps = ordered_steps(names)
        except (KeyError, ValueError) as exc:
            raise CommandError(str(exc.args[0] if exc.args else exc)) from None
        if opts["list"]:
            self._print_summary([s.name for s in steps] if names else None)
            return
        if not REGISTRY:
            self.stdout.write("No pipeline step is declared.")
            return
        eager = settings.CELERY_TASK_ALWAYS_EAGER
        # Running in-process, one step at a time in dependency order: each step's make() may
        # queue downstream keys itself, which then run here too.
        for step in steps:
            t0 = time.perf_counter()
            sent = runner.queue_missing(
                [step.name], retry_waiting=True, retry_errors=opts["retry_errors"]
            )[step.name]
            verb = "made here" if eager else "queued"
            self.stdout.write(
                f"{step.name}: {sent} key(s) {verb} in {time.perf_counter() - t0:.1f} s"
            )
        if not eager and opts["wait"]:
            self._wait([s.name for s in steps], opts["timeout"])
        self._print_summary([s.name for s in steps])

    def _wait(self, names: list[str], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            open_jobs = Job.objects.filter(
                step__in=names, status__in=[JobStatus.PENDING, JobStatus.RUNNING]
            ).count()
            done = Job.objects.filter(step__in=names, status=JobStatus.DONE).count()
            self.stdout.write(f"\r  done {done}, still open {open_jobs}   ", ending="")
            self.stdout.flush()
            if open_jobs == 0:
                self.stdout.write("")
                return
            time.sleep(1.0)
        raise CommandError(f"gave up waiting after {timeout:.0f} s")

    def _print_summary(self, names: list[str] | None = None) -> None:
        rows = [r for r in runner.summary() if names is None or r["step"] in names]
        header = f"{'step':32} {'done':>7} {'pending':>7} {'running':>7} {'waiting':>7} "
        header += f"{'error':>7} {'missing':>7}"
        self.stdout.write(header)
        for r in rows:
            self.stdout.write(
                f"{r['step']:32} {r['done']:>7} {r['pending']:>7} {r['running']:>7} "
                f"{r['waiting']:>7} {r['error']:>7} {r['missing']:>7}"
            )
        errors = Job.objects.filter(status=JobStatus.ERROR)
        if names:
            errors = errors.filter(step__in=names)
        for job in errors.order_by("-finished_at")[:10]:
            self.stdout.write(
                self.style.ERROR(f"  error {job.step} [{job.key_label}]: {job.message}")
            )
