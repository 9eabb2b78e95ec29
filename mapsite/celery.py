"""The Celery application. Queues: ``ingest`` (file parsing), ``compute`` (analyses),
``transfer`` (Globus archival). Beat runs one periodic sweep (see mapsite.pipeline.tasks)."""

import os

from celery import Celery
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mapsite.settings")

app = Celery("mapsite")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = (Queue("ingest"), Queue("compute"), Queue("transfer"))
app.autodiscover_tasks()


@app.on_after_finalize.connect
def _schedule_sweeps(sender: Celery, **_: object) -> None:
    from django.conf import settings

    sender.add_periodic_task(
        settings.PIPELINE_SWEEP_SECONDS,
        sender.signature("mapsite.pipeline.tasks.sweep", queue="compute"),
        name="pipeline sweep",
    )
