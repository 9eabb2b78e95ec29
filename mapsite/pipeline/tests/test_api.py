"""Pipeline monitoring API: the job list (read-only, filters) and the per-step summary."""

from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from lab.tests.factories import RigFactory
from mapsite.core.tests.api_checks import (
    Route,
    check_permission_matrix,
    check_query_count_constant,
    check_whitelists,
    listed,
    route_id,
    routes_of,
    rows,
)
from mapsite.pipeline.api.serializers import StepSummarySerializer
from mapsite.pipeline.models import Job, JobStatus

PIPELINE_ROUTES = routes_of("mapsite.pipeline.")


@pytest.fixture
def jobs(db: None, make_step: Callable[..., Any]) -> list[Job]:
    """A throwaway step over 12 rigs: jobs for 10 of them in every state, 2 not queued."""
    make_step("ApiTestStep")
    make_step("ApiTestDownstream", depends_on=["ApiTestStep"])
    rigs = RigFactory.create_batch(12)
    states = [
        *JobStatus.values,
        JobStatus.DONE,
        JobStatus.DONE,
        JobStatus.ERROR,
        JobStatus.DONE,
        JobStatus.PENDING,
    ]
    made = [
        Job.objects.create(step="ApiTestStep", key_id=rig.pk, key_label=rig.name, status=s)
        for rig, s in zip(rigs, states, strict=False)
    ]
    made[4].message = "ValueError: bad"
    made[4].save()
    return made


def test_pipeline_routes_are_registered() -> None:
    assert {prefix for prefix, _, _ in PIPELINE_ROUTES} == {"pipeline-jobs", "pipeline-summary"}


@pytest.mark.parametrize("route", PIPELINE_ROUTES, ids=route_id)
def test_permission_matrix(
    route: Route, jobs: list[Job], user_client: APIClient, staff_client: APIClient
) -> None:
    check_permission_matrix(route, user_client, staff_client, payloads={})


def test_job_list_query_count_is_constant(jobs: list[Job], user_client: APIClient) -> None:
    route = next(r for r in PIPELINE_ROUTES if r[0] == "pipeline-jobs")
    check_whitelists(route)
    check_query_count_constant(route, user_client)


def test_job_filters(jobs: list[Job], user_client: APIClient) -> None:
    url = "/api/pipeline-jobs/"
    assert len(listed(user_client, url, "id", step="ApiTestStep")) == 10
    assert listed(user_client, url, "id", step="NoSuchStep") == []
    errors = listed(user_client, url, "status", step="ApiTestStep", status="error")
    assert errors == ["error", "error"]
    mixed = listed(user_client, url, "status", step="ApiTestStep", status=["waiting", "running"])
    assert sorted(mixed) == ["running", "waiting"]
    assert user_client.get(url, {"status": "exploded"}).status_code == 400
    assert listed(user_client, url, "key_label", key_id=jobs[4].key_id) == [jobs[4].key_label]
    first = user_client.get(f"{url}{jobs[4].id}/").json()
    assert first["message"] == "ValueError: bad"
    assert first["step"] == "ApiTestStep"


def test_jobs_are_newest_first_and_ordering_is_whitelisted(
    jobs: list[Job], user_client: APIClient
) -> None:
    url = "/api/pipeline-jobs/"
    newest_first = [j.id for j in sorted(jobs, key=lambda j: (j.created_at, j.id), reverse=True)]
    assert listed(user_client, url, "id", step="ApiTestStep") == newest_first
    assert listed(user_client, url, "id", step="ApiTestStep", ordering="id") == sorted(newest_first)
    assert listed(user_client, url, "id", step="ApiTestStep", ordering="message") == newest_first


def test_summary_counts_each_state_per_step(jobs: list[Job], user_client: APIClient) -> None:
    response = user_client.get("/api/pipeline-summary/")
    assert response.status_code == 200
    by_step = {row["step"]: row for row in response.json()}
    row = by_step["ApiTestStep"]
    assert row == {
        "step": "ApiTestStep",
        "description": "throwaway test step ApiTestStep",
        "queue": "compute",
        "depends_on": "",
        "missing": 2,
        "pending": 2,
        "running": 1,
        "done": 4,
        "waiting": 1,
        "error": 2,
    }
    assert by_step["ApiTestDownstream"]["depends_on"] == "ApiTestStep"
    assert by_step["ApiTestDownstream"]["missing"] == 12
    steps = [r["step"] for r in response.json()]
    assert steps.index("ApiTestStep") < steps.index("ApiTestDownstream")  # dependency order


def test_summary_serializer_covers_every_job_state() -> None:
    assert set(JobStatus.values) <= set(StepSummarySerializer().fields)


def test_summary_queries_do_not_grow_with_jobs(
    jobs: list[Job], user_client: APIClient, make_step: Callable[..., Any]
) -> None:
    def count() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert user_client.get("/api/pipeline-summary/").status_code == 200
        return len(ctx.captured_queries)

    before = count()
    for rig in RigFactory.create_batch(20):
        Job.objects.create(step="ApiTestDownstream", key_id=rig.pk, status=JobStatus.DONE)
    assert count() == before


def test_jobs_cannot_be_changed_over_the_api(jobs: list[Job], staff_client: APIClient) -> None:
    url = f"/api/pipeline-jobs/{jobs[0].id}/"
    assert staff_client.patch(url, {"status": "done"}, format="json").status_code == 405
    assert staff_client.delete(url).status_code == 405
    assert Job.objects.get(pk=jobs[0].pk).status == jobs[0].status
    assert rows(staff_client.get("/api/pipeline-jobs/", {"step": "ApiTestStep"}))
