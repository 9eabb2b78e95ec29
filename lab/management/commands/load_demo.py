"""``manage.py load_demo``: fill a fresh site with the demo lab data (idempotent)."""

from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction

from lab.demo import DEMO_STEPS, StepReport


class Command(BaseCommand):
    help = (
        "Load the demo data (people, rigs, subjects with water restriction numbers, ...). "
        "Safe to run again: existing rows are kept, nothing is duplicated."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        total = 0
        for step in DEMO_STEPS:
            with transaction.atomic():
                report = step()
            total += len(report.created)
            self._print(report)
        self.stdout.write(
            self.style.SUCCESS(f"Demo data loaded: {total} new item(s)")
            if total
            else "Demo data already present: nothing new"
        )

    def _print(self, report: StepReport) -> None:
        line = f"  {report.step}: {len(report.created)} created"
        if report.created:
            line += f" ({', '.join(report.created)})"
        if report.existing:
            line += f", {len(report.existing)} already present"
        self.stdout.write(line)
        for reason in report.skipped:
            self.stdout.write(self.style.WARNING(f"    skipped {reason}"))
