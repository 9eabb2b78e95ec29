"""The admin page of found behavior files: job status per file, bounded queries, retry."""

from io import StringIO

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


@pytest.mark.django_db
def test_accepting_a_changed_file_reingests_its_new_contents(
    admin_client, settings, tmp_path, django_capture_on_commit_callbacks
) -> None:
    import datetime as dt

    from django.core.management import call_command

    from experiment.ingest.synthetic import write_synthetic_session
    from experiment.models import Session
    from lab.tests.factories import RigFactory, WaterRestrictionFactory

    root = tmp_path / "RRig"
    folder = root / "sy01" / "tw2" / "Session Data"
    folder.mkdir(parents=True)
    settings.BEHAVIOR_DATA_ROOTS = [f"RRig={root}"]
    RigFactory(name="RRig")
    WaterRestrictionFactory(water_restriction_number="sy01")
    start = dt.datetime(2018, 3, 1, 10, 0, 0, tzinfo=dt.UTC)
    first = write_synthetic_session(folder, h2o="sy01", seed=1, n_trials=6, session_datetime=start)
    with django_capture_on_commit_callbacks(execute=True):
        call_command("ingest_behavior", stdout=StringIO())
    old = Session.objects.get()
    assert old.trials.count() == len(first.ingested)

    second = write_synthetic_session(folder, h2o="sy01", seed=2, n_trials=9, session_datetime=start)
    assert second.path == first.path  # the rig rewrote the same file
    with django_capture_on_commit_callbacks(execute=True):
        call_command("ingest_behavior", stdout=StringIO())
    flagged = BehaviorFile.objects.get()
    assert flagged.changed_after_ingest is not None
    assert Session.objects.get().pk == old.pk  # kept until a person decides

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse(URL), {"action": "accept_new_contents", "_selected_action": [flagged.pk]}
        )
    assert response.status_code == 302
    new = Session.objects.get()
    assert new.pk != old.pk and new.trials.count() == len(second.ingested)
    accepted = BehaviorFile.objects.get()
    assert accepted.changed_after_ingest is None and accepted.session_id == new.pk
    assert Job.objects.get(step="BehaviorIngest").status == JobStatus.DONE
