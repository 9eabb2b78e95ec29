"""The Job admin: progress table, bounded queries, retry action, tracebacks."""

import pytest
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from lab.models import Rig
from lab.tests.factories import RigFactory
from mapsite.pipeline import runner
from mapsite.pipeline.models import Job, JobStatus

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:pipeline_job_changelist"


def make_jobs(n: int, step: str = "TestA") -> None:
    """``n`` jobs in every status, quickly (no make runs)."""
    statuses = list(JobStatus.values)
    Job.objects.bulk_create(
        Job(
            step=step,
            key_id=100000 + i,
            key_label=f"key {i}",
            status=statuses[i % len(statuses)],
            message="something failed " * 3 if statuses[i % len(statuses)] == "error" else "",
            worker_host="w@host",
        )
        for i in range(n)
    )


def changelist_queries(client, n: int) -> int:
    Job.objects.all().delete()
    make_jobs(n)
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(reverse(CHANGELIST))
    assert response.status_code == 200
    assert len(response.context["cl"].result_list) == min(n, 100)
    return len(ctx.captured_queries)


def test_changelist_queries_do_not_grow_with_the_number_of_jobs(admin_client, make_step):
    make_step("TestA")
    make_step("TestB", depends_on=["TestA"])
    RigFactory.create_batch(3)
    few = changelist_queries(admin_client, 10)
    many = changelist_queries(admin_client, 100)
    more = changelist_queries(admin_client, 250)  # more than one page
    assert few == many == more
    assert few < 25


def test_changelist_shows_progress_per_step(admin_client, make_step):
    def make(rig: Rig) -> None:
        if rig.name == "bad":
            raise ValueError("bad rig")

    make_step("TestA", make=make)
    good, bad = RigFactory(name="good"), RigFactory(name="bad")
    RigFactory(name="later")
    for job_id in runner.create_jobs(runner.get_step("TestA"), key_ids=[good.pk, bad.pk]):
        runner.run_job(job_id)
    response = admin_client.get(reverse(CHANGELIST))
    assert response.status_code == 200
    rows = {r["step"]: r for r in response.context["step_summary"]}
    assert rows["TestA"]["done"] == 1
    assert rows["TestA"]["error"] == 1
    assert rows["TestA"]["missing"] == 1
    html = response.content.decode()
    assert "Progress per step" in html
    assert 'href="?step=TestA&status=error" style="color:#c62828' in html
    assert "PhotostimBrainRegion" in html
    # The error is in the job list too, with its message.
    assert "ValueError: bad rig" in html


def test_changelist_filters_by_step_and_status(admin_client):
    make_jobs(20)
    response = admin_client.get(reverse(CHANGELIST), {"step": "TestA", "status": "error"})
    assert response.status_code == 200
    listed = response.context["cl"].result_list
    assert len(listed) == 4
    assert {j.status for j in listed} == {"error"}


def test_retry_action_reruns_failed_jobs(
    admin_client, make_step, recorder, django_capture_on_commit_callbacks
):
    broken = {"yes": True}

    def make(rig: Rig) -> None:
        recorder.record("TestFlaky", rig.pk)
        if broken["yes"]:
            raise RuntimeError("not yet")

    step = make_step("TestFlaky", make=make)
    rigs = RigFactory.create_batch(2)
    ids = runner.create_jobs(step)
    for job_id in ids:
        runner.run_job(job_id)
    assert set(Job.objects.filter(pk__in=ids).values_list("status", flat=True)) == {"error"}
    broken["yes"] = False
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse(CHANGELIST),
            {"action": "retry_jobs", "_selected_action": [str(i) for i in ids]},
            follow=True,
        )
    assert response.status_code == 200
    assert "2 job(s) queued again." in [str(m) for m in response.context["messages"]]
    assert set(Job.objects.filter(pk__in=ids).values_list("status", flat=True)) == {"done"}
    assert recorder.count("TestFlaky") == 4
    assert {k for _, k in recorder.calls} == {r.pk for r in rigs}


def test_retry_action_for_staff_with_view_permission(client, make_step, recorder):
    make_step("TestA")
    RigFactory()
    job = Job.objects.create(step="TestA", key_id=Rig.objects.get().pk, status="error")
    user = User.objects.create_user("viewer", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_job"))
    client.force_login(user)
    response = client.post(
        reverse(CHANGELIST), {"action": "retry_jobs", "_selected_action": [str(job.pk)]}
    )
    assert response.status_code == 302
    job.refresh_from_db()
    assert job.status == JobStatus.PENDING  # queued (runs when the commit happens)
    assert job.queued_at is not None


def test_change_page_shows_the_traceback(admin_client, make_step):
    def make(rig: Rig) -> None:
        raise KeyError("channel <7> missing")

    step = make_step("TestBroken", make=make)
    RigFactory()
    (job_id,) = runner.create_jobs(step)
    runner.run_job(job_id)
    job = Job.objects.get(pk=job_id)
    assert "Traceback" in job.traceback
    response = admin_client.get(reverse("admin:pipeline_job_change", args=[job_id]))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Traceback (most recent call last)" in html
    assert "channel &lt;7&gt; missing" in html  # escaped, not raw HTML
    assert "channel <7> missing" not in html
    # Read-only: no save button, no add page.
    assert 'name="_save"' not in html
    assert admin_client.get(reverse("admin:pipeline_job_add")).status_code == 403
