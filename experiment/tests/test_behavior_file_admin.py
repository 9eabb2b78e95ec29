"""The admin page of found behavior files: job status per file, bounded queries, retry."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from experiment.models import BehaviorFile
from mapsite.pipeline.models import Job, JobStatus

URL = "admin:experiment_behaviorfile_changelist"


def make_files(start: int, n: int) -> list[BehaviorFile]:
    rows = [
        BehaviorFile.objects.create(
            root="/data/RRig",
            relative_path=f"dl25/tw2/dl25_tw2_2018022{k % 9}_10250{k % 10}_{k}.mat",
            file_name=f"dl25_tw2_2018022{k % 9}_10250{k % 10}_{k}.mat",
            size=100 + k,
            mtime=timezone.now(),
            sha256="0" * 64,
        )
        for k in range(start, start + n)
    ]
    for row in rows:
        Job.objects.create(
            step="BehaviorIngest",
            key_id=row.pk,
            key_label=row.file_name,
            status=JobStatus.ERROR,
            message=f"{row.file_name}: cannot be read as a MATLAB file",
        )
    return rows


def count_queries(client) -> int:  # noqa: ANN001
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(reverse(URL))
    assert response.status_code == 200
    return len(ctx.captured_queries)


@pytest.mark.django_db
def test_changelist_shows_job_status_with_constant_queries(admin_client) -> None:
    make_files(0, 3)
    few = count_queries(admin_client)
    make_files(3, 12)
    assert count_queries(admin_client) == few
    text = admin_client.get(reverse(URL)).content.decode()
    assert "cannot be read as a MATLAB file" in text and "error" in text


@pytest.mark.django_db
def test_retry_action_requeues_the_files_jobs(
    admin_client, django_capture_on_commit_callbacks
) -> None:
    rows = make_files(0, 2)
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse(URL),
            {"action": "retry_ingest", "_selected_action": [rows[0].pk]},
        )
    assert response.status_code == 302
    statuses = dict(Job.objects.values_list("key_id", "status"))
    # The retried job ran in-process (eager) and failed again on its missing file, so it is
    # back in error but attempted; the other file was left alone.
    assert Job.objects.get(key_id=rows[0].pk).attempts == 1
    assert Job.objects.get(key_id=rows[1].pk).attempts == 0
    assert statuses[rows[1].pk] == JobStatus.ERROR
    assert "file name does not match" in Job.objects.get(key_id=rows[0].pk).message
