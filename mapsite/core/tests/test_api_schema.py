"""The API as a whole: OpenAPI schema and Swagger UI, authentication, throttling."""

import functools
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.contrib.auth import get_user_model
from django.contrib.staticfiles import finders
from django.core.cache import cache
from django.core.management import call_command
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient, APIRequestFactory
from rest_framework.throttling import AnonRateThrottle, UserRateThrottle

from mapsite.api_urls import router
from mapsite.core.api import ThrottledObtainAuthToken

PASSWORD = "analyst-pw-8361"


@pytest.fixture
def user(db: None) -> Any:
    return get_user_model().objects.create_user("analyst", password=PASSWORD)


@pytest.fixture
def logged_in(user: Any) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


@functools.cache
def _generated_schema() -> dict[str, Any]:
    """The public schema, as /api/schema/ serves it (SERVE_PUBLIC), generated once per run."""
    return SchemaGenerator().get_schema(request=None, public=True)


@pytest.fixture
def schema() -> dict[str, Any]:
    return _generated_schema()


def test_schema_endpoint_serves_the_same_paths(logged_in: APIClient) -> None:
    response = logged_in.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    assert set(response.json()["paths"]) == set(_generated_schema()["paths"])


def detail_path(paths: dict[str, Any], prefix: str) -> str | None:
    pattern = re.compile(rf"^/api/{re.escape(prefix)}/\{{\w+\}}/$")
    return next((p for p in paths if pattern.match(p)), None)


# --- Schema ------------------------------------------------------------------------------------


def test_schema_generates_without_warnings_and_validates(tmp_path: Path) -> None:
    GENERATOR_STATS.reset()
    out = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    assert not GENERATOR_STATS, "drf-spectacular reported warnings or errors"
    document = yaml.safe_load(out.read_text())
    assert document["openapi"].startswith("3.")
    assert document["paths"]


@pytest.mark.parametrize("route", router.registry, ids=lambda r: r[0])
def test_schema_lists_every_registered_endpoint(
    route: tuple[str, type, str], schema: dict[str, Any]
) -> None:
    prefix, viewset, _ = route
    paths = schema["paths"]
    assert f"/api/{prefix}/" in paths
    listing = paths[f"/api/{prefix}/"]
    assert "get" in listing
    assert ("post" in listing) == hasattr(viewset, "create")
    if hasattr(viewset, "retrieve"):
        detail = detail_path(paths, prefix)
        assert detail, f"no detail path for {prefix}"
        methods = set(paths[detail]) - {"parameters"}
        expected = {"get", "put", "patch", "delete"} if hasattr(viewset, "create") else {"get"}
        assert methods == expected, (prefix, methods)


def test_operations_are_tagged_by_app_and_need_authentication(schema: dict[str, Any]) -> None:
    module_tag = {"lab.": "lab", "experiment.": "experiment", "mapsite.pipeline.": "pipeline"}
    for prefix, viewset, _ in router.registry:
        tag = next((t for m, t in module_tag.items() if viewset.__module__.startswith(m)), None)
        if tag is None:
            continue  # other apps tag their own endpoints
        for path, item in schema["paths"].items():
            if not path.startswith(f"/api/{prefix}/"):
                continue
            for method, operation in item.items():
                if method == "parameters":
                    continue
                assert operation["tags"] == [tag], (path, method, operation["tags"])
                schemes = {name for req in operation.get("security", []) for name in req}
                assert "tokenAuth" in schemes, (path, method)
                assert {} not in operation.get("security", []), f"{path} allows anonymous"
    assert "tokenAuth" in schema["components"]["securitySchemes"]


def test_lab_and_experiment_endpoints_are_all_there(schema: dict[str, Any]) -> None:
    expected = {
        "people", "rigs", "subjects", "water-restrictions", "surgeries", "virus-injections",
        "surgery-procedures", "viruses", "virus-notes", "modified-genes", "serotypes",
        "subject-strains", "subject-gene-modifications", "animal-strains", "animal-sources",
        "virus-sources", "skull-references", "brain-areas", "hemispheres", "photostim-devices",
        "whiskers", "sessions", "session-comments", "session-details", "session-tasks",
        "session-trainings", "project-sessions", "trials", "trial-notes", "trial-events",
        "action-events", "photostims", "photostim-trials", "photostim-events", "mtl-blocks",
        "tasks", "task-protocols", "training-types", "projects", "trial-note-types",
        "trial-instructions", "outcomes", "early-licks", "water-ports", "trial-event-types",
        "action-event-types", "periods", "pipeline-jobs", "pipeline-summary",
    }  # fmt: skip
    missing = {p for p in expected if f"/api/{p}/" not in schema["paths"]}
    assert missing == set()
    assert detail_path(schema["paths"], "subjects") == "/api/subjects/{subject_id}/"
    assert (
        detail_path(schema["paths"], "water-restrictions")
        == "/api/water-restrictions/{water_restriction_number}/"
    )


def test_session_filters_are_documented(schema: dict[str, Any]) -> None:
    params = {p["name"] for p in schema["paths"]["/api/sessions/"]["get"]["parameters"]}
    assert {
        "subject", "water_restriction_number", "date_after", "date_before", "rig", "task",
        "project", "username", "ordering", "page", "page_size",
    } <= params  # fmt: skip
    trial_params = {p["name"] for p in schema["paths"]["/api/trials/"]["get"]["parameters"]}
    assert {"session", "outcome", "instruction", "early_lick", "photostim"} <= trial_params


# --- Swagger UI --------------------------------------------------------------------------------


def test_swagger_ui_renders_from_the_sidecar_not_a_cdn(logged_in: APIClient) -> None:
    response = logged_in.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    assert "/api/schema/" in html
    for cdn in ("cdn.jsdelivr.net", "unpkg.com", "cdnjs.cloudflare.com"):
        assert cdn not in html
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        assert finders.find(f"drf_spectacular_sidecar/swagger-ui-dist/{asset}"), asset


# --- Authentication ----------------------------------------------------------------------------


def test_anonymous_gets_401_on_the_api_root_and_data(db: None) -> None:
    client = APIClient()
    for url in ("/api/", "/api/subjects/", "/api/sessions/", "/api/trials/"):
        response = client.get(url)
        assert response.status_code == 401, url
        assert response["WWW-Authenticate"] == "Token"


def test_token_exchange_and_token_authentication(user: Any) -> None:
    client = APIClient()
    response = client.post("/api/token/", {"username": "analyst", "password": PASSWORD})
    assert response.status_code == 200
    token = response.json()["token"]
    assert client.post("/api/token/", {"username": "analyst", "password": "x"}).status_code == 400

    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get("/api/subjects/").status_code == 200
    root = client.get("/api/").json()
    assert root["subjects"].endswith("/api/subjects/")
    client.credentials(HTTP_AUTHORIZATION="Token not-a-token")
    assert client.get("/api/subjects/").status_code == 401


def test_session_authentication_reads_and_needs_csrf_to_write(db: None) -> None:
    staff = get_user_model().objects.create_user("curator", password=PASSWORD, is_staff=True)
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(staff)
    assert client.get("/api/rigs/").status_code == 200
    response = client.post("/api/rigs/", {"name": "CsrfRig"}, format="json")
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]


# --- Throttling --------------------------------------------------------------------------------


@pytest.fixture
def empty_throttle_cache() -> Any:
    cache.clear()
    yield
    cache.clear()


def test_authenticated_requests_are_throttled(
    logged_in: APIClient, empty_throttle_cache: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(UserRateThrottle, "get_rate", lambda self: "3/min")
    codes = [logged_in.get("/api/rigs/").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]


def test_throttled_token_view_limits_password_guessing(
    user: Any, empty_throttle_cache: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(AnonRateThrottle, "get_rate", lambda self: "2/min")
    view = ThrottledObtainAuthToken.as_view()
    factory = APIRequestFactory()

    def attempt(password: str) -> int:
        request = factory.post("/api/token/", {"username": "analyst", "password": password})
        return view(request).status_code

    assert [attempt("guess1"), attempt("guess2"), attempt(PASSWORD)] == [400, 400, 429]
