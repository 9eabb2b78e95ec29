"""REST API of schema ``ephys``: permissions, filters (metric ranges too), query counts, the
binary and JSON array endpoints (exactly the stored arrays), rasters, and an end-to-end check
against the synthetic generator's ground truth."""

from __future__ import annotations

import io
import json
import zipfile
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from ephys import models
from ephys.api import arrays
from ephys.tests.api_factories import ephys_world
from ephys.tests.factories import npy
from mapsite.core.tests.api_checks import (
    Route,
    check_permission_matrix,
    check_query_count_constant,
    check_whitelists,
    fill_lookups,
    listed,
    new_user,
    route_id,
    routes_of,
    rows,
    token_client,
    writable,
)

EPHYS_ROUTES = routes_of("ephys.")


@pytest.fixture
def world(db: None) -> SimpleNamespace:
    fill_lookups(EPHYS_ROUTES)
    return ephys_world()


def load(body: bytes) -> Any:
    return np.load(io.BytesIO(body), allow_pickle=False)


def stored(unit: models.Unit, column: str = "spike_times") -> bytes:
    return bytes(getattr(models.UnitSpikes.objects.get(unit=unit), column))


def ephys_payloads(w: SimpleNamespace) -> dict:
    first, bare, unit = w.first, w.bare, w.units[0]
    return {
        "ephys-insertionlocation": lambda: (
            {
                "insertion": bare.id,
                "skull_reference": "Bregma",
                "ap_location": "2500.00",
                "ml_location": "-1300.00",
                "depth": "-3200.00",
                "theta": "20.00",
                "phi": "90.00",
                "beta": "-10.00",
            },
            {"depth": "-3100.50", "skull_reference": "Lambda"},
        ),
        "ephys-recordablebrainregion": lambda: (
            {"insertion": first.id, "brain_area": "Striatum", "hemisphere": "left"},
            {"hemisphere": "right"},
        ),
        "ephys-insertionnote": lambda: (
            {"insertion": bare.id, "note": "shank bent"},
            {"note": "shank bent at 2 mm"},
        ),
        "ephys-insertionquality": lambda: (
            {"insertion": bare.id, "drift_presence": True, "number_of_landmarks": 3},
            {"alignment_confidence": False, "comment": "few landmarks"},
        ),
        "ephys-goodperiod": lambda: (
            {"insertion": first.id, "start": 100.0, "end": 200.5},
            {"end": 300.0},
        ),
        "ephys-goodtrial": lambda: ({"insertion": first.id, "trial": 5}, {"trial": 6}),
        "ephys-depthcriteria": lambda: (
            {
                "insertion": first.id,
                "brain_area": "Striatum",
                "depth_upper": 1000.0,
                "depth_lower": 2500.0,
            },
            {"depth_lower": 2600.0},
        ),
        "ephys-unitcomment": lambda: (
            {"unit": unit.id, "comment": "drifts late in the session"},
            {"comment": "drifts after trial 300"},
        ),
    }


# --- Every ephys endpoint ----------------------------------------------------------------------


def test_every_ephys_table_has_an_endpoint() -> None:
    from django.apps import apps

    shown_inside = {models.UnitSpikes: "/api/units/{id}/spike-times/ and /api/insertions/…"}
    served = {viewset.queryset.model for _, viewset, _ in EPHYS_ROUTES}
    tables = {
        m for m in apps.get_app_config("ephys").get_models() if not m.__name__.startswith("Histor")
    }
    assert tables - served - set(shown_inside) == set()


def test_read_only_and_writable_ephys_endpoints() -> None:
    assert {prefix for prefix, viewset, _ in EPHYS_ROUTES if writable(viewset)} == {
        "insertion-locations",
        "recordable-brain-regions",
        "insertion-notes",
        "insertion-qualities",
        "insertion-good-periods",
        "insertion-good-trials",
        "brain-area-depth-criteria",
        "unit-comments",
    }


@pytest.mark.parametrize("route", EPHYS_ROUTES, ids=route_id)
def test_permission_matrix(
    route: Route, world: SimpleNamespace, user_client: APIClient, staff_client: APIClient
) -> None:
    check_permission_matrix(route, user_client, staff_client, ephys_payloads(world))


@pytest.mark.parametrize("route", EPHYS_ROUTES, ids=route_id)
def test_query_count_does_not_grow_with_page_size(
    route: Route, world: SimpleNamespace, user_client: APIClient
) -> None:
    check_query_count_constant(route, user_client)


@pytest.mark.parametrize("route", EPHYS_ROUTES, ids=route_id)
def test_filters_and_ordering_are_whitelisted(route: Route) -> None:
    check_whitelists(route)


# --- Insertions --------------------------------------------------------------------------------


def test_insertion_rows_carry_what_people_entered(
    world: SimpleNamespace, user_client: APIClient
) -> None:
    first = world.first
    body = user_client.get(f"/api/insertions/{first.id}/").json()
    assert body["session"] == first.session_id
    assert body["subject"] == world.subject_a.subject_id
    assert body["water_restriction_number"] == world.wr_a
    assert body["insertion_number"] == 1
    assert body["probe"] == first.probe.serial
    assert body["probe_type"] == "neuropixels 1.0 - 3B"
    assert body["electrode_config"] == "1-384"
    assert body["sampling_rate"] == 30000.0
    assert body["unit_count"] == 8
    assert body["location"]["skull_reference"] == "Bregma"
    assert body["location"]["depth"] == "-3000.00"
    assert body["recordable_regions"] == [{"brain_area": "ALM", "hemisphere": "left"}]
    assert body["depth_criteria"] == [
        {"brain_area": "ALM", "depth_upper": 0.0, "depth_lower": 1000.0}
    ]
    assert body["quality"]["good_periods"][0]["end"] == 50.0
    assert body["note"] == "probe 0 ok"
    assert body["clustering_labels"][0]["clustering_method"] == "kilosort2"
    bare = user_client.get(f"/api/insertions/{world.bare.id}/").json()
    assert bare["location"] is None and bare["quality"] is None and bare["note"] is None
    assert bare["unit_count"] == 0 and bare["recordable_regions"] == []


def test_insertion_filters(world: SimpleNamespace, user_client: APIClient) -> None:
    a = [world.insertions[i].id for i in range(4)] + [world.bare.id]
    got = listed(user_client, "/api/insertions/", "id", subject=world.subject_a.subject_id)
    assert sorted(got) == sorted(a)
    assert sorted(
        listed(user_client, "/api/insertions/", "id", water_restriction_number=world.wr_a)
    ) == sorted(a)
    assert listed(
        user_client, "/api/insertions/", "insertion_number", session=world.first.session_id
    ) == [1, 2]
    assert len(listed(user_client, "/api/insertions/", "id", brain_area="ALM")) == 8
    assert listed(user_client, "/api/insertions/", "id", brain_area="Striatum") == []
    assert user_client.get("/api/insertions/", {"brain_area": "Nowhere"}).status_code == 400
    by_units = listed(user_client, "/api/insertions/", "unit_count", ordering="-unit_count")
    assert by_units[0] == 8


def test_quality_lists_good_periods_and_trial_numbers(
    world: SimpleNamespace, user_client: APIClient
) -> None:
    body = user_client.get(f"/api/insertion-qualities/{world.first.id}/").json()
    assert body["good_trials"] == [1]
    assert [(p["start"], p["end"]) for p in body["good_periods"]] == [(10.0, 50.0)]
    assert listed(
        user_client, "/api/insertion-good-trials/", "trial", insertion=world.first.id
    ) == [1]


# --- Units and their metrics ---------------------------------------------------------------------


def unit_numbers(client: APIClient, **params: Any) -> list[int]:
    return listed(client, "/api/units/", "unit", **params)


def test_unit_rows(world: SimpleNamespace, user_client: APIClient) -> None:
    unit = world.units[2]  # unit 3
    body = user_client.get(f"/api/units/{unit.id}/").json()
    assert body["insertion"] == world.first.id
    assert body["session"] == world.first.session_id
    assert body["subject"] == world.subject_a.subject_id
    assert body["clustering_method"] == "kilosort2"
    assert body["quality"] == "good"
    assert body["electrode"] == 1 and body["shank"] == 1
    assert body["unit_amp"] == 150.0 and body["unit_snr"] == 3.0
    assert body["avg_firing_rate"] == 3.0
    assert body["isi_violation"] == pytest.approx(0.3)
    assert body["noise"] == "good"
    assert body["spike_count"] == 5500
    assert body["cluster_metrics"][0]["presence_ratio"] == pytest.approx(0.86)
    assert "waveform" not in body and "spike_times" not in body


def test_unit_filters(world: SimpleNamespace, user_client: APIClient) -> None:
    first = world.first
    assert unit_numbers(user_client, insertion=first.id) == list(range(1, 9))
    assert unit_numbers(user_client, session=first.session_id) == list(range(1, 9))
    assert unit_numbers(user_client, subject=world.subject_a.subject_id) == list(range(1, 9))
    assert unit_numbers(user_client, subject=world.subject_b.subject_id) == []
    assert unit_numbers(user_client, water_restriction_number=world.wr_a) == list(range(1, 9))
    assert unit_numbers(user_client, quality="good") == [1, 3, 5, 7]
    assert unit_numbers(user_client, quality=["good", "multi"]) == list(range(1, 9))
    assert unit_numbers(user_client, quality="ok") == []
    assert unit_numbers(user_client, clustering_method="kilosort2") == list(range(1, 9))
    assert unit_numbers(user_client, clustering_method="jrclust_v4") == []
    assert unit_numbers(user_client, noise="noise") == [8]
    assert user_client.get("/api/units/", {"quality": "superb"}).status_code == 400
    assert user_client.get("/api/units/", {"clustering_method": "x"}).status_code == 400


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"unit_amp_min": 200}, [4, 5, 6, 7, 8]),  # amp = 50 i
        ({"unit_amp_max": 100}, [1, 2]),
        ({"unit_amp_min": 100, "unit_amp_max": 150}, [2, 3]),
        ({"unit_snr_min": 7.5}, [8]),  # snr = i
        ({"unit_snr_max": 1}, [1]),
        ({"avg_firing_rate_min": 6}, [6, 7, 8]),  # rate = i
        ({"avg_firing_rate_max": 2.5}, [1, 2]),
        ({"isi_violation_max": 0.25}, [1, 2]),  # isi = i / 10
        ({"isi_violation_min": 0.65}, [7, 8]),
        ({"presence_ratio_min": 0.9}, [5, 6, 7, 8]),  # presence = 0.8 + i / 50
        ({"presence_ratio_max": 0.85}, [1, 2]),
        ({"amplitude_cutoff_max": 0.03}, [1, 2, 3]),  # cutoff = i / 100
        ({"amplitude_cutoff_min": 0.07}, [7, 8]),
        ({"unit_posy_min": 100}, [5, 6, 7, 8]),  # posy = 20 i
        ({"presence_ratio_min": 0.9, "amplitude_cutoff_max": 0.06, "quality": "good"}, [5]),
        ({"unit_amp_min": 1000}, []),
    ],
)
def test_unit_metric_ranges(
    world: SimpleNamespace, user_client: APIClient, params: dict, expected: list[int]
) -> None:
    assert unit_numbers(user_client, **params) == expected


def test_metric_ranges_reject_non_numbers_and_count_each_unit_once(
    world: SimpleNamespace, user_client: APIClient
) -> None:
    for param in ("unit_amp_min", "presence_ratio_max", "avg_firing_rate_min"):
        response = user_client.get("/api/units/", {param: "1; DROP TABLE ephys_unit"})
        assert response.status_code == 400, param
    # A second epoch passing the bound does not list the unit twice.
    models.ClusterMetric.objects.create(
        unit=world.units[7], epoch_name_quality_metrics="first_half", presence_ratio=0.99
    )
    assert unit_numbers(user_client, presence_ratio_min=0.9) == [5, 6, 7, 8]


def test_unit_ordering(world: SimpleNamespace, user_client: APIClient) -> None:
    assert unit_numbers(user_client, ordering="-unit_amp") == list(range(8, 0, -1))
    assert unit_numbers(user_client, ordering="-stat__avg_firing_rate") == list(range(8, 0, -1))
    assert unit_numbers(user_client, ordering="-unit_uid") == list(range(1, 9))  # not whitelisted


def test_unit_child_endpoints(world: SimpleNamespace, user_client: APIClient) -> None:
    unit = world.units[3]  # unit 4
    stat = user_client.get(f"/api/unit-stats/{unit.id}/").json()
    assert stat == {
        "unit": unit.id,
        "insertion": world.first.id,
        "unit_number": 4,
        "isi_violation": 0.4,
        "avg_firing_rate": 4.0,
    }
    assert user_client.get(f"/api/unit-noise-labels/{world.units[7].id}/").json()["noise"] == (
        "noise"
    )
    notes = listed(user_client, "/api/unit-notes/", "quality", insertion=world.first.id)
    assert notes == ["good", "multi"] * 4
    assert listed(user_client, "/api/cluster-metrics/", "unit_number", unit=unit.id) == [4]
    assert listed(user_client, "/api/waveform-metrics/", "halfwidth", unit=unit.id) == [0.2]
    assert (
        len(listed(user_client, "/api/unit-comments/", "id", session=world.first.session_id)) == 8
    )
    archived = user_client.get("/api/archived-clusterings/", {"insertion": world.first.id})
    assert rows(archived)[0]["unit_count"] == 8
    archived_units = rows(user_client.get("/api/archived-units/", {"insertion": world.first.id}))
    assert len(archived_units) == 8 and "spike_times" not in archived_units[0]


def test_lookups(world: SimpleNamespace, user_client: APIClient) -> None:
    assert user_client.get("/api/unit-quality-types/multi/").json()["description"] == "multi unit"
    assert user_client.get("/api/clustering-methods/pykilosort2.5/").status_code == 200
    assert user_client.get("/api/cell-types/not classified/").status_code == 200


# --- Writes --------------------------------------------------------------------------------------


def test_insertion_location_entry_is_attributed_and_keyed_by_insertion(
    world: SimpleNamespace, staff: Any, staff_client: APIClient
) -> None:
    bare = world.bare
    body = {
        "insertion": bare.id,
        "skull_reference": "Bregma",
        "ap_location": "2400.00",
        "ml_location": "-1200.00",
        "depth": "-2900.00",
        "theta": "10.00",
    }
    response = staff_client.post("/api/insertion-locations/", body, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["hemisphere"] == "left"
    location = models.InsertionLocation.objects.get(pk=bare.id)
    assert location.history.get().history_user == staff
    # A second location for the same insertion, or moving it to another: 400, nothing changed.
    assert staff_client.post("/api/insertion-locations/", body, format="json").status_code == 400
    response = staff_client.patch(
        f"/api/insertion-locations/{bare.id}/", {"insertion": world.first.id}, format="json"
    )
    assert response.status_code == 400
    response = staff_client.patch(
        f"/api/insertion-locations/{bare.id}/", {"theta": "200.00"}, format="json"
    )
    assert response.status_code == 400  # theta in [0, 180]
    assert "insertionlocation_theta_range" in str(response.json())
    location.refresh_from_db()
    assert str(location.theta) == "10.00"


def test_good_trials_are_written_by_trial_number_of_the_session(
    world: SimpleNamespace, staff_client: APIClient
) -> None:
    first = world.first
    response = staff_client.post(
        "/api/insertion-good-trials/", {"insertion": first.id, "trial": 11}, format="json"
    )
    assert response.status_code == 400
    assert "no trial 11" in str(response.json())
    response = staff_client.post(
        "/api/insertion-good-trials/", {"insertion": first.id, "trial": 1}, format="json"
    )
    assert response.status_code == 400  # already a good trial
    response = staff_client.post(
        "/api/insertion-good-periods/",
        {"insertion": first.id, "start": 5.0, "end": 1.0},
        format="json",
    )
    assert response.status_code == 400  # end after start
    response = staff_client.post(
        "/api/insertion-good-periods/",
        {"insertion": world.bare.id, "start": 1.0, "end": 5.0},
        format="json",
    )
    assert response.status_code == 400  # the bare insertion has no quality row yet


def test_ingested_tables_are_read_only_even_for_staff(
    world: SimpleNamespace, staff_client: APIClient
) -> None:
    unit = world.units[0]
    assert staff_client.delete(f"/api/units/{unit.id}/").status_code == 405
    assert staff_client.delete(f"/api/insertions/{world.first.id}/").status_code == 405
    assert staff_client.post(f"/api/units/{unit.id}/spike-times/", {}).status_code == 405
    assert models.Unit.objects.filter(pk=unit.pk).exists()


# --- Arrays of one unit --------------------------------------------------------------------------


def test_unit_spike_times_npy_are_the_stored_bytes(
    world: SimpleNamespace, user_client: APIClient
) -> None:
    unit = world.units[4]
    for kwargs in ({"HTTP_ACCEPT": "application/x-npy"}, {"data": {"format": "npy"}}):
        response = user_client.get(f"/api/units/{unit.id}/spike-times/", **kwargs)
        assert response.status_code == 200
        assert response["Content-Type"] == "application/x-npy"
        assert f"unit-{unit.id}-spike_times.npy" in response["Content-Disposition"]
        assert response.content == stored(unit)
        times = load(response.content)
        assert times.dtype == np.float64
        assert np.array_equal(times, world.trains[unit.id])


def test_unit_spike_times_json_equal_the_array(
    world: SimpleNamespace, user_client: APIClient
) -> None:
    unit = world.units[1]
    for kwargs in ({}, {"HTTP_ACCEPT": "application/json"}, {"data": {"format": "json"}}):
        response = user_client.get(f"/api/units/{unit.id}/spike-times/", **kwargs)
        assert response.status_code == 200
        assert response["Content-Type"] == "application/json"
        body = response.json()
        assert body["unit"] == unit.id
        got = np.array(body["spike_times"], dtype=np.float64)
        assert np.array_equal(got, world.trains[unit.id])  # exact: repr round-trips


def test_unit_sites_depths_and_waveform(world: SimpleNamespace, user_client: APIClient) -> None:
    unit = world.units[2]
    url = f"/api/units/{unit.id}"
    sites = user_client.get(f"{url}/spike-sites/", {"format": "npy"})
    assert sites.content == stored(unit, "spike_sites")
    assert load(sites.content).dtype == np.int32
    depths = user_client.get(f"{url}/spike-depths/").json()["spike_depths"]
    assert np.array_equal(np.array(depths, np.float32), load(stored(unit, "spike_depths")))
    waveform = user_client.get(f"{url}/waveform/", {"format": "npy"})
    assert waveform.content == bytes(models.Unit.objects.get(pk=unit.pk).waveform)
    assert user_client.get(f"{url}/waveform/").json()["waveform"][-1] == pytest.approx(60.0)


def test_unit_array_reads_one_column_in_one_query(
    world: SimpleNamespace, user_client: APIClient
) -> None:
    unit = world.units[0]
    url = f"/api/units/{unit.id}/spike-times/"
    user_client.get(url, {"format": "npy"})  # warm-up
    with CaptureQueriesContext(connection) as ctx:
        response = user_client.get(url, {"format": "npy"})
    assert response.status_code == 200
    data_queries = [q["sql"] for q in ctx.captured_queries if "ephys_" in q["sql"]]
    assert len(data_queries) == 1, data_queries
    sql = data_queries[0]
    assert "spike_times" in sql and "spike_sites" not in sql and "waveform" not in sql
    assert len(ctx.captured_queries) == 2  # the token, then the array


def test_missing_arrays_and_bad_formats(world: SimpleNamespace, user_client: APIClient) -> None:
    from ephys.tests.factories import UnitFactory

    bare_unit = UnitFactory(insertion=world.bare)
    response = user_client.get(f"/api/units/{bare_unit.id}/spike-times/", {"format": "npy"})
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert "no stored spike times" in response.json()["detail"]
    assert user_client.get("/api/units/999999/spike-times/").status_code == 404
    assert user_client.get("/api/units/999999/raster/").status_code == 404
    unit = world.units[0]
    response = user_client.get(f"/api/units/{unit.id}/spike-times/", HTTP_ACCEPT="text/csv")
    assert response.status_code == 406
    assert (
        user_client.get(f"/api/units/{unit.id}/spike-times/", {"format": "csv"}).status_code == 404
    )
    assert user_client.get(f"/api/units/{unit.id}/spike-counts/").status_code == 404


def test_anonymous_cannot_read_arrays_and_is_told_in_json(world: SimpleNamespace) -> None:
    client = APIClient()
    unit, first = world.units[0], world.first
    for url, fmt in (
        (f"/api/units/{unit.id}/spike-times/", "npy"),
        (f"/api/insertions/{first.id}/spike-times/", "npz"),
        (f"/api/units/{unit.id}/raster/", "npz"),
    ):
        response = client.get(url, {"format": fmt})
        assert response.status_code == 401, url
        assert response["Content-Type"] == "application/json"
        assert "detail" in response.json()


# --- Arrays of a whole insertion -----------------------------------------------------------------


def test_insertion_npz_holds_every_unit_exactly(
    world: SimpleNamespace, user_client: APIClient
) -> None:
    first = world.first
    response = user_client.get(f"/api/insertions/{first.id}/spike-times/", {"format": "npz"})
    assert response.status_code == 200
    assert response["Content-Type"] == "application/x-npz"
    with zipfile.ZipFile(io.BytesIO(response.content)) as zf:
        assert zf.namelist() == ["unit_ids.npy", "units.npy", "offsets.npy", "spike_times.npy"]
        assert {i.compress_type for i in zf.infolist()} == {zipfile.ZIP_STORED}
    data = load(response.content)
    ids = [u.id for u in world.units]
    assert data["unit_ids"].tolist() == ids
    assert data["units"].tolist() == list(range(1, 9))
    offsets, times = data["offsets"], data["spike_times"]
    assert offsets[0] == 0 and offsets[-1] == times.size
    assert times.dtype == np.float64
    for i, uid in enumerate(ids):
        assert np.array_equal(times[offsets[i] : offsets[i + 1]], world.trains[uid])
    # The same request through the Accept header gives the same bytes.
    again = user_client.get(
        f"/api/insertions/{first.id}/spike-times/", HTTP_ACCEPT="application/x-npz"
    )
    assert again.content == response.content


def test_insertion_npz_of_sites_and_selected_units(
    world: SimpleNamespace, user_client: APIClient
) -> None:
    first = world.first
    url = f"/api/insertions/{first.id}/spike-sites/"
    data = load(user_client.get(url, {"format": "npz", "quality": "multi"}).content)
    multi = [u for u in world.units if u.unit % 2 == 0]
    assert data["units"].tolist() == [2, 4, 6, 8]
    assert data["spike_sites"].dtype == np.int32
    expected = np.concatenate([load(stored(u, "spike_sites")) for u in multi])
    assert np.array_equal(data["spike_sites"], expected)
    assert user_client.get(url, {"quality": "nope"}).status_code == 400
    empty = load(user_client.get(url, {"format": "npz", "clustering_method": "kilosort"}).content)
    assert empty["unit_ids"].size == 0 and empty["offsets"].tolist() == [0]
    bare = load(
        user_client.get(f"/api/insertions/{world.bare.id}/spike-times/", {"format": "npz"}).content
    )
    assert bare["spike_times"].dtype == np.float64 and bare["spike_times"].size == 0
    assert user_client.get("/api/insertions/999999/spike-times/").status_code == 404


def test_insertion_json_equals_the_arrays(world: SimpleNamespace, user_client: APIClient) -> None:
    response = user_client.get(f"/api/insertions/{world.first.id}/spike-times/")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    body = json.loads(b"".join(response.streaming_content))
    assert body["insertion"] == world.first.id
    assert list(body["spike_times"]) == [str(u.id) for u in world.units]
    for uid, values in body["spike_times"].items():
        assert np.array_equal(np.array(values, np.float64), world.trains[int(uid)])


def test_insertion_arrays_in_one_data_query(world: SimpleNamespace, user_client: APIClient) -> None:
    url = f"/api/insertions/{world.first.id}/spike-times/"
    user_client.get(url, {"format": "npz"})
    with CaptureQueriesContext(connection) as ctx:
        assert user_client.get(url, {"format": "npz"}).status_code == 200
    assert len(ctx.captured_queries) == 2  # the token, then every unit's array


# --- Raster --------------------------------------------------------------------------------------


def loop_raster(train: np.ndarray, starts: np.ndarray, go_cues: list, k: int) -> np.ndarray:
    """Independent reference: spikes in [start_k, start_k+1) minus start_k minus go cue k."""
    stop = starts[k + 1] if k + 1 < len(starts) else np.inf
    out = []
    for t in train:
        if starts[k] <= t < stop:
            out.append(t - starts[k] - (go_cues[k] if go_cues[k] is not None else 0.0))
    return np.array(out, dtype=np.float64)


def test_raster_equals_an_independent_loop(world: SimpleNamespace, user_client: APIClient) -> None:
    unit = world.units[5]
    train = world.trains[unit.id]
    body = user_client.get(f"/api/units/{unit.id}/raster/").json()
    assert body["unit"] == unit.id and body["insertion"] == world.first.id
    assert [t["trial"] for t in body["trials"]] == list(range(1, 11))
    for k, trial in enumerate(body["trials"]):
        expected = loop_raster(train, world.starts, world.go_cues, k)
        assert np.allclose(trial["spike_times"], expected, rtol=0, atol=1e-12), k
        assert len(trial["spike_times"]) == expected.size
        assert trial["aligned_to_go"] == (k != 6)
        assert trial["go_cue_time"] == world.go_cues[k]
    # the last trial takes every later spike (§14.6)
    assert len(body["trials"][-1]["spike_times"]) == int(np.sum(train >= 90.0))


def test_raster_of_chosen_trials_in_the_order_given(
    world: SimpleNamespace, user_client: APIClient
) -> None:
    unit = world.units[0]
    train = world.trains[unit.id]
    url = f"/api/units/{unit.id}/raster/"
    body = user_client.get(url, {"trials": "10,3,7"}).json()
    assert [t["trial"] for t in body["trials"]] == [10, 3, 7]
    for trial in body["trials"]:
        expected = loop_raster(train, world.starts, world.go_cues, trial["trial"] - 1)
        assert np.allclose(trial["spike_times"], expected, rtol=0, atol=1e-12)
    data = load(user_client.get(url, {"trials": "10,3,7", "format": "npz"}).content)
    assert data["trials"].tolist() == [10, 3, 7]
    assert np.isnan(data["go_cue_times"][2]) and data["go_cue_times"][0] == 4.0
    for i, trial in enumerate(body["trials"]):
        part = data["spike_times"][data["offsets"][i] : data["offsets"][i + 1]]
        assert np.array_equal(part, np.array(trial["spike_times"]))


@pytest.mark.parametrize(
    "trials", ["1,,2", "a", "1;2", "-1", "1,1", "1.5", ",".join(["1"] * 10_001), "1,99"]
)
def test_raster_trial_list_is_whitelisted(
    world: SimpleNamespace, user_client: APIClient, trials: str
) -> None:
    response = user_client.get(f"/api/units/{world.units[0].id}/raster/", {"trials": trials})
    assert response.status_code == 400
    assert "trials" in response.json()


# --- Storage helpers -----------------------------------------------------------------------------


def test_fetch_without_postgresql_copy_reads_the_same(
    world: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    qs = models.Unit.objects.filter(insertion=world.first).order_by("unit")
    copied = arrays.fetch_arrays(qs, "spikes__spike_times", ("unit", "insertion_id"))
    monkeypatch.setattr(arrays, "connection", SimpleNamespace(vendor="sqlite"))
    plain = arrays.fetch_arrays(qs, "spikes__spike_times", ("unit", "insertion_id"))
    assert copied == plain and len(copied) == 8


def test_stored_arrays_are_checked_before_being_served() -> None:
    with pytest.raises(arrays.StoredArrayError):
        arrays.parse_npy(b"not an npy at all")
    with pytest.raises(arrays.StoredArrayError):
        arrays.parse_npy(npy(np.array([{"a": 1}], dtype=object)))
    with pytest.raises(arrays.StoredArrayError):
        arrays.parse_npy(npy(np.arange(10.0))[:-8])  # truncated
    column = np.arange(6.0).reshape(-1, 1)  # (N, 1) as the sorter writes: served flat
    assert np.array_equal(arrays.parse_npy(npy(column)).array(), np.arange(6.0))
    mixed = [
        arrays.parse_npy(npy(np.arange(3.0))),
        arrays.parse_npy(npy(np.arange(2.0, 4.0, dtype=np.float32))),
    ]
    joined = load(b"".join(bytes(p) for p in arrays.concat_npy(mixed, np.dtype(np.float64))))
    assert joined.tolist() == [0.0, 1.0, 2.0, 2.0, 3.0]


# --- End to end: generator → ingest → API ------------------------------------------------------


def test_api_spike_times_equal_the_generators_ground_truth(
    db: None, tmp_path: Any, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    """A synthetic sorted session goes through the real ingest; the API serves exactly the
    generator's spike times (npy per unit, npz per insertion, JSON), and rasters that match
    the generator's own trialization."""
    from ephys.ingest import bitcode
    from ephys.tests.factories import command_runner, configured_world
    from experiment.models import Session

    world = configured_world(tmp_path, settings)
    run = command_runner(django_capture_on_commit_callbacks)
    truth = world.write_behavior(n_trials=20)
    run("ingest_behavior")
    s = world.write_ephys(truth, n_units=12, n_spikes=30_000, margin_s=0.1)
    run("ingest_ephys")
    insertion = models.ProbeInsertion.objects.get(session=Session.objects.get())
    units = {u.unit: u.id for u in models.Unit.objects.filter(insertion=insertion)}
    assert sorted(units) == s.unit_ids.tolist()
    client = token_client(new_user())

    for cluster, uid in units.items():
        expected = s.unit_spike_times(cluster)
        body = client.get(f"/api/units/{uid}/spike-times/", {"format": "npy"}).content
        assert np.array_equal(load(body), expected)
        listed_json = client.get(f"/api/units/{uid}/spike-times/").json()["spike_times"]
        assert np.array_equal(np.array(listed_json, np.float64), expected)

    data = load(
        client.get(f"/api/insertions/{insertion.id}/spike-times/", {"format": "npz"}).content
    )
    assert data["units"].tolist() == s.unit_ids.tolist()
    off = data["offsets"]
    for i, cluster in enumerate(data["units"]):
        assert np.array_equal(data["spike_times"][off[i] : off[i + 1]], s.unit_spike_times(cluster))
    streamed = client.get(f"/api/insertions/{insertion.id}/spike-times/")
    by_id = json.loads(b"".join(streamed.streaming_content))["spike_times"]
    for cluster, uid in units.items():
        assert np.array_equal(np.array(by_id[str(uid)]), s.unit_spike_times(cluster))

    trialization = bitcode.TrialAlignment(
        behavior_trials=s.ephys_behavior_trials,
        ephys_indices=np.arange(len(s.ephys_trial_starts)),
        trial_starts=s.ephys_trial_starts - s.margin_samples,
        go_cues=s.ephys_go_cues,
    )
    cluster = int(s.unit_ids[0])
    row, rel = bitcode.trialize_spikes(s.unit_spike_samples(cluster), trialization, s.sampling_rate)
    raster = client.get(f"/api/units/{units[cluster]}/raster/").json()["trials"]
    assert [t["trial"] for t in raster] == s.ephys_behavior_trials.tolist()
    for t, trial in enumerate(raster):
        assert np.allclose(trial["spike_times"], rel[row == t], rtol=0, atol=1e-9), t
