"""Shared checks for the REST API tests of every app: routes, permission matrix, query counts,
filter/ordering whitelists. The ``user``/``staff``/``user_client``/``staff_client`` fixtures
live in the root conftest.py."""

from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils.dateparse import parse_datetime
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from lab import models as lab_models
from mapsite.api_urls import router
from mapsite.core.models import Lookup

# --- Routes and clients ------------------------------------------------------------------------

Route = tuple[str, type, str]  # (URL prefix, viewset, basename)


def routes_of(*modules: str) -> list[Route]:
    """Registered routes whose viewset is defined under one of these module prefixes."""
    return [r for r in router.registry if r[1].__module__.startswith(tuple(modules))]


def route_id(route: Route) -> str:
    return route[0]


def writable(viewset: type) -> bool:
    return hasattr(viewset, "create")


def has_detail(viewset: type) -> bool:
    return hasattr(viewset, "retrieve")


def list_url(basename: str) -> str:
    return reverse(f"{basename}-list")


def detail_url(basename: str, viewset: type, key: Any) -> str:
    kwarg = viewset.lookup_url_kwarg or viewset.lookup_field
    return reverse(f"{basename}-detail", kwargs={kwarg: key})


def key_of(viewset: type, row: dict[str, Any]) -> Any:
    """The natural key (or id) a detail URL takes, read from a serialized row."""
    return row["id" if viewset.lookup_field == "pk" else viewset.lookup_field]


def rows(response: Any) -> list[dict[str, Any]]:
    body = response.json()
    return body["results"] if isinstance(body, dict) and "results" in body else body


def token_client(user: Any) -> APIClient:
    """A client that authenticates the way scripts do: ``Authorization: Token <key>``."""
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def new_user(*, staff: bool = False) -> Any:
    """An analyst (or, with ``staff``, a curator) with a password."""
    name = "curator" if staff else "analyst"
    return get_user_model().objects.create_user(name, password=f"{name}-pw-8361", is_staff=staff)


def fill_lookups(routes: Iterable[Route], minimum: int = 8) -> None:
    """Give every lookup table served by these routes enough rows to fill two small pages."""
    from experiment.models import TrialEventType

    for _, viewset, _ in routes:
        model = viewset.queryset.model
        if not issubclass(model, Lookup):
            continue
        extra: dict[str, Any] = {}
        if model is lab_models.PhotostimDevice:
            extra = {"excitation_wavelength": Decimal("470.0")}
        elif model.__name__ == "Period":
            go = TrialEventType.objects.get(name="go")
            extra = {"start_event_type": go, "end_event_type": go}
        for i in range(max(0, minimum - model.objects.count())):
            model.objects.create(name=f"zz extra {i}", **extra)


def check_anonymous_denied(route: Route) -> None:
    prefix, viewset, basename = route
    client = APIClient()
    response = client.get(list_url(basename))
    assert response.status_code == 401, (prefix, response.status_code)
    if has_detail(viewset):
        # Any key will do: permission is checked before the object is looked up.
        key = "1"
        response = client.get(detail_url(basename, viewset, key))
        assert response.status_code == 401, (prefix, response.status_code)
        response = client.delete(detail_url(basename, viewset, key))
        assert response.status_code == 401, (prefix, response.status_code)
    response = client.post(list_url(basename), {}, format="json")
    assert response.status_code == 401, (prefix, response.status_code)


def check_permission_matrix(
    route: Route,
    user_client: APIClient,
    staff_client: APIClient,
    payloads: dict[str, Callable[[], tuple[dict, dict]]],
) -> None:
    """Anonymous: 401. User: reads, 403 on writes. Staff: full CRUD on writable endpoints, 405
    on read-only ones. ``payloads[basename]()`` gives (create body, patch body)."""
    prefix, viewset, basename = route
    check_anonymous_denied(route)

    response = user_client.get(list_url(basename))
    assert response.status_code == 200, (prefix, response.content[:300])
    listed = rows(response)
    assert listed, f"{prefix}: the test data left this endpoint empty"
    detail = None
    if has_detail(viewset):
        detail = detail_url(basename, viewset, key_of(viewset, listed[0]))
        response = user_client.get(detail)
        assert response.status_code == 200, (prefix, detail, response.status_code)
        assert response.json() == listed[0]
        for method in ("patch", "put", "delete"):
            response = getattr(user_client, method)(detail, {}, format="json")
            assert response.status_code == 403, (prefix, method, response.status_code)
    response = user_client.post(list_url(basename), {}, format="json")
    assert response.status_code == 403, (prefix, "post", response.status_code)

    if not writable(viewset):
        assert basename not in payloads, f"{prefix} is read-only but has a write payload"
        assert staff_client.post(list_url(basename), {}, format="json").status_code == 405
        if detail:
            for method in ("patch", "put", "delete"):
                response = getattr(staff_client, method)(detail, {}, format="json")
                assert response.status_code == 405, (prefix, method, response.status_code)
        return

    assert basename in payloads, f"writable endpoint {prefix} has no test payload"
    create, patch = payloads[basename]()
    response = staff_client.post(list_url(basename), create, format="json")
    assert response.status_code == 201, (prefix, response.content)
    created = response.json()
    for field, value in create.items():
        assert str(created[field]) == str(value) or _same_number(created[field], value), (
            prefix,
            field,
            created[field],
            value,
        )
    url = detail_url(basename, viewset, key_of(viewset, created))
    response = staff_client.patch(url, patch, format="json")
    assert response.status_code == 200, (prefix, response.content)
    patched = response.json()
    for field, value in patch.items():
        assert str(patched[field]) == str(value) or _same_number(patched[field], value)
    url = detail_url(basename, viewset, key_of(viewset, patched))
    assert staff_client.get(url).status_code == 200
    response = staff_client.delete(url)
    assert response.status_code == 204, (prefix, response.content)
    assert staff_client.get(url).status_code == 404


def _same_number(a: Any, b: Any) -> bool:
    """Equal as numbers ("40.000" vs "40") or as instants ("…T10:00-05:00" vs "…T15:00Z")."""
    try:
        return Decimal(str(a)) == Decimal(str(b))
    except ArithmeticError:
        pass
    a_time, b_time = parse_datetime(str(a)), parse_datetime(str(b))
    return a_time is not None and a_time == b_time


def list_queries(client: APIClient, url: str, page_size: int) -> tuple[int, int]:
    """(queries run, rows returned) for one list page."""
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url, {"page_size": page_size})
    assert response.status_code == 200, (url, response.content[:300])
    return len(ctx.captured_queries), len(rows(response))


def check_query_count_constant(route: Route, client: APIClient) -> tuple[int, int]:
    """Same number of queries for a page of 5 rows and a page of up to 50 rows."""
    prefix, _, basename = route
    url = list_url(basename)
    client.get(url)  # warm-up: content types, throttle cache, …
    small, small_rows = list_queries(client, url, 5)
    large, large_rows = list_queries(client, url, 50)
    assert small_rows == 5, f"{prefix}: needs more than 5 rows of test data, has {small_rows}"
    assert large_rows > small_rows, prefix
    assert small == large, f"{prefix}: {small} queries for 5 rows, {large} for {large_rows} rows"
    return small, large_rows


def check_whitelists(route: Route) -> None:
    """Ordering and filtering name their fields explicitly; nothing is open to any field."""
    prefix, viewset, _ = route
    ordering = getattr(viewset, "ordering_fields", None)
    assert ordering and ordering != "__all__", f"{prefix}: ordering_fields must be a whitelist"
    assert getattr(viewset, "filterset_fields", None) in (None, ()), prefix
    assert getattr(viewset, "ordering", None), f"{prefix}: needs a default (stable) ordering"
    filterset = getattr(viewset, "filterset_class", None)
    if filterset is not None:
        fields = filterset._meta.fields
        assert isinstance(fields, list | tuple) and fields, prefix
        assert filterset._meta.exclude is None, prefix
        assert set(filterset.base_filters) == set(fields), (
            f"{prefix}: filters outside the Meta.fields whitelist: "
            f"{set(filterset.base_filters) ^ set(fields)}"
        )


def listed(client: APIClient, url: str, key: str, **params: Any) -> list[Any]:
    response = client.get(url, {**params, "page_size": 1000})
    assert response.status_code == 200, response.content
    return [row[key] for row in rows(response)]
