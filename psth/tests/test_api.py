"""The analyses over the API (filters, PSTH JSON and binary, coding direction), the figures
(PNG/SVG, cached) and the admin pages showing them."""

from __future__ import annotations

import io
import math
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.urls import reverse
from PIL import Image
from rest_framework.test import APIClient

from ephys import models as em
from ephys.analysis import CONDITION_NAMES
from ephys.analysis import reference as ref
from ephys.tests.factories import command_runner, configured_world
from mapsite.core.tests.api_checks import check_whitelists, new_user, routes_of, token_client
from mapsite.pipeline import runner
from psth import models as pm
from psth import plots

from .helpers import analysed, annotate, oracle_inputs, write_recording

pytestmark = pytest.mark.django_db
PNG = b"\x89PNG\r\n\x1a\n"
PSTH_ROUTES = routes_of("psth.")


@pytest.fixture
def rec(tmp_path, settings, django_capture_on_commit_callbacks):
    world = configured_world(tmp_path, settings)
    run = command_runner(django_capture_on_commit_callbacks)
    recording = write_recording(world, run, seed=5, with_metrics=True, n_selective=8)
    annotate(recording.insertion, hemisphere=recording.hemisphere, seed=5)
    with django_capture_on_commit_callbacks(execute=True):
        runner.queue_missing(retry_waiting=True)
    assert pm.UnitSelectivity.objects.exists()
    cache.clear()
    return recording


@pytest.fixture
def client(db):
    return token_client(new_user())


def ids(response) -> set[int]:
    assert response.status_code == 200, response.content[:500]
    return {row["id"] for row in response.json()["results"]}


def test_unit_filters_by_selectivity_area_and_cell_type(rec, client):
    insertion = rec.insertion
    delay_contra = set(
        pm.PeriodSelectivity.objects.filter(
            period__name="delay", selectivity__name="contra-selective"
        ).values_list("unit_id", flat=True)
    )
    constructed = {u.pk for u in analysed(insertion) if rec.preference.get(u.unit) == 1}
    assert constructed and constructed <= delay_contra

    url = "/api/unit-analyses/"
    got = ids(client.get(url, {"brain_area": "ALM", "delay_selectivity": "contra-selective"}))
    assert got == delay_contra
    assert (
        ids(client.get(url, {"brain_area": "Striatum", "delay_selectivity": "contra-selective"}))
        == set()
    )
    both = ids(
        client.get(
            url,
            {"delay_selectivity": ["contra-selective", "ipsi-selective"], "page_size": 1000},
        )
    )
    assert both == set(
        pm.PeriodSelectivity.objects.filter(period__name="delay")
        .exclude(selectivity__name="non-selective")
        .values_list("unit_id", flat=True)
    )
    fs = ids(client.get(url, {"cell_type": "FS", "page_size": 1000}))
    assert fs == set(
        pm.UnitCellType.objects.filter(cell_type__name="FS").values_list("unit_id", flat=True)
    )
    assert fs == {u.pk for u in analysed(insertion) if rec.widths[u.unit] < 10}
    sel = ids(client.get(url, {"selectivity": "ipsi-selective", "quality": "good"}))
    assert sel == set(
        pm.UnitSelectivity.objects.filter(
            selectivity__name="ipsi-selective", unit__quality__name="good"
        ).values_list("unit_id", flat=True)
    )
    passing = ids(client.get(url, {"criteria_passed": "true", "page_size": 1000}))
    assert passing == set(
        pm.UnitPassingCriteria.objects.filter(criteria_passed=True).values_list(
            "unit_id", flat=True
        )
    )
    assert client.get(url, {"delay_selectivity": "very-selective"}).status_code == 400
    assert client.get(url, {"brain_area": "nowhere"}).status_code == 400

    # one unit's row: every result
    unit = analysed(insertion)[0]
    row = client.get(f"{url}{unit.pk}/").json()
    assert row["cell_type"] == pm.UnitCellType.objects.get(unit=unit).cell_type.name
    assert row["selectivity"] == pm.UnitSelectivity.objects.get(unit=unit).selectivity.name
    assert [p["period"] for p in row["period_selectivities"]] == ["sample", "delay", "response"]
    assert row["criteria_passed"] == pm.UnitPassingCriteria.objects.get(unit=unit).criteria_passed
    assert row["links"]["plot_png"].endswith(f"/api/unit-analyses/{unit.pk}/plot.png")

    # bounded queries: a page costs the same whatever its size
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as small:
        client.get(url, {"page_size": 2})
    with CaptureQueriesContext(connection) as large:
        client.get(url, {"page_size": 1000})
    assert len(large) == len(small)

    insertions = client.get("/api/insertion-analyses/", {"brain_area": "ALM"}).json()["results"]
    assert [i["id"] for i in insertions] == [insertion.pk]
    assert insertions[0]["hemisphere"] == rec.hemisphere
    assert insertions[0]["steps"]["UnitPsth"] == "done"
    assert insertions[0]["units"] == em.Unit.objects.filter(insertion=insertion).count()


def test_trial_conditions_are_listed(rec, client):
    rows = client.get("/api/trial-conditions/").json()
    assert [r["name"] for r in rows] == list(CONDITION_NAMES)
    one = client.get("/api/trial-conditions/all_noearlylick_both_alm_stim_left/").json()
    assert one["func"] == "_get_trials_include_stim" and one["includes_stim"]
    assert one["args"]["stim_laterality"] == "both" and one["args"]["trial_instruction"] == "left"
    assert len(client.get("/api/selectivities/").json()["results"]) == 3


def test_psth_json_and_binary(rec, client):
    unit = analysed(rec.insertion)[1]
    rows = client.get(
        "/api/unit-psths/", {"unit": unit.pk, "trial_condition": "good_noearlylick_left_hit"}
    ).json()["results"]
    assert len(rows) == 1
    row = rows[0]
    stored = pm.UnitPsth.objects.get(pk=row["id"])
    assert row["trial_count"] == stored.trial_count > 0
    np.testing.assert_allclose(row["rates"], stored.rates_array(), rtol=1e-7)
    assert len(row["time"]) == 150 and row["time"][0] == pytest.approx(-2.96)
    assert row["time"][-1] == pytest.approx(3.0)

    body = client.get(f"/api/unit-psths/{row['id']}.npy")
    assert body.status_code == 200 and body["Content-Type"] == "application/x-npy"
    array = np.load(io.BytesIO(body.content), allow_pickle=False)
    assert array.dtype == np.float32 and np.array_equal(array, stored.rates_array())

    empty = pm.UnitPsth.objects.filter(rates__isnull=True).first()
    if empty is not None:
        missing = client.get(f"/api/unit-psths/{empty.pk}.npy")
        assert missing.status_code == 404 and missing["Content-Type"] == "application/json"

    every = client.get(f"/api/unit-analyses/{unit.pk}/psth/").json()
    names = [p["trial_condition"] for p in every["psths"]]
    assert names == list(CONDITION_NAMES)  # the session has photostim regions: all 17
    npz = client.get(f"/api/unit-analyses/{unit.pk}/psth.npz")
    assert npz["Content-Type"] == "application/x-npz"
    with np.load(io.BytesIO(npz.content), allow_pickle=False) as z:
        assert z["rates"].shape == (17, 150)
        assert list(z["trial_condition"]) == names
        for k, p in enumerate(every["psths"]):
            assert z["trial_count"][k] == p["trial_count"]
            if p["rates"] is None:
                assert np.isnan(z["rates"][k]).all()
            else:
                np.testing.assert_allclose(z["rates"][k], p["rates"], rtol=1e-6)
    assert client.get("/api/unit-analyses/999999/psth/").status_code == 404


def test_coding_direction_equals_the_loop_implementation(rec, client):
    insertion = rec.insertion
    response = client.get(f"/api/insertion-analyses/{insertion.pk}/coding-direction/")
    assert response.status_code == 200, response.content
    got = response.json()
    o = oracle_inputs(insertion)
    units = [u.pk for u in analysed(insertion)]
    assert got["units"] == units
    # contra = hits of the other side, ipsi = of the insertion's side (good trials, go cue)
    membership = ref.ref_condition_membership(o.labels)
    other = "right" if rec.hemisphere == "left" else "left"

    def trials(side: str) -> list[int]:
        member = membership[f"good_noearlylick_{side}_hit"]
        return [t for t, m in enumerate(member) if m and o.good[t] and o.has_go[t]]

    contra, ipsi = trials(other), trials(rec.hemisphere)
    assert got["contra_trials"] == [o.trial_ids[t] for t in contra]
    assert got["ipsi_trials"] == [o.trial_ids[t] for t in ipsi]
    cd, proj_c, proj_i, time = ref.ref_cd_projected_psth(
        [o.aligned[u] for u in units], contra, ipsi, (-0.4, 0.0)
    )
    np.testing.assert_allclose(np.array(got["cd"], dtype=float), cd, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(
        np.array(got["contra_projection"], dtype=float), proj_c, rtol=1e-9, atol=1e-9
    )
    np.testing.assert_allclose(
        np.array(got["ipsi_projection"], dtype=float), proj_i, rtol=1e-9, atol=1e-9
    )
    assert got["time"] == pytest.approx(list(time))
    assert math.isclose(sum(c * c for c in got["cd"]), 1.0)
    bad = client.get(
        f"/api/insertion-analyses/{insertion.pk}/coding-direction/", {"period_start": "x"}
    )
    assert bad.status_code == 400


def test_figures_png_and_svg_cached(rec, client):
    unit = analysed(rec.insertion)[0]
    png = client.get(f"/api/unit-analyses/{unit.pk}/plot.png")
    assert png.status_code == 200, png.content[:300]
    assert png["Content-Type"] == "image/png" and png.content.startswith(PNG)
    assert Image.open(io.BytesIO(png.content)).size == (900, 600)
    svg = client.get(f"/api/unit-analyses/{unit.pk}/plot.svg")
    assert svg["Content-Type"] == "image/svg+xml"
    assert ET.fromstring(svg.content).tag.endswith("svg")
    # served from the cache the second time: same bytes, rendering not called
    from unittest import mock

    with mock.patch.object(plots, "render_unit_figure", side_effect=AssertionError):
        again = client.get(f"/api/unit-analyses/{unit.pk}/plot.png")
    assert again.content == png.content
    etag = png["ETag"]
    assert (
        client.get(f"/api/unit-analyses/{unit.pk}/plot.png", HTTP_IF_NONE_MATCH=etag).status_code
        == 304
    )

    probe = client.get(f"/api/insertion-analyses/{rec.insertion.pk}/plot.png")
    assert probe["Content-Type"] == "image/png" and probe.content.startswith(PNG)
    assert Image.open(io.BytesIO(probe.content)).size == (1300, 750)
    probe_svg = client.get(f"/api/insertion-analyses/{rec.insertion.pk}/plot.svg")
    assert probe_svg["Content-Type"] == "image/svg+xml"

    # a unit without PSTH (quality "all" is not analysed) or none at all: 404 in JSON
    missing = client.get("/api/unit-analyses/999999/plot.png")
    assert missing.status_code == 404 and missing["Content-Type"] == "application/json"
    assert APIClient().get(f"/api/unit-analyses/{unit.pk}/plot.png").status_code in (401, 403)


def test_admin_pages_show_the_figures(rec):
    admin_user = get_user_model().objects.create_superuser("boss", password="boss-pw-1234")
    browser = APIClient()
    browser.force_login(admin_user)
    unit = analysed(rec.insertion)[0]
    page = browser.get(f"/admin/psth/unitanalysis/{unit.pk}/change/")
    assert page.status_code == 200
    text = page.content.decode()
    assert f"/api/unit-analyses/{unit.pk}/plot.png" in text
    assert pm.UnitSelectivity.objects.get(unit=unit).selectivity.name in text
    page = browser.get(f"/admin/psth/insertionanalysis/{rec.insertion.pk}/change/")
    text = page.content.decode()
    assert (
        page.status_code == 200 and f"/api/insertion-analyses/{rec.insertion.pk}/plot.png" in text
    )
    assert "UnitSelectivity" in text
    listing = browser.get("/admin/psth/unitanalysis/", {"insertion__id__exact": rec.insertion.pk})
    assert listing.status_code == 200
    assert browser.get("/admin/psth/insertionanalysis/").status_code == 200
    assert (
        browser.get("/admin/psth/unitanalysis/", {"cell_type__cell_type__id__exact": 1}).status_code
        == 200
    )
    assert browser.get("/admin/psth/trialcondition/").status_code == 200

    # the ephys app's own unit and insertion pages show the same panels (their plot hooks)
    html = browser.get(reverse("admin:ephys_unit_change", args=[unit.pk])).content.decode()
    assert f"/api/unit-analyses/{unit.pk}/plot.png" in html and "Plots" in html
    html = browser.get(
        reverse("admin:ephys_probeinsertion_change", args=[rec.insertion.pk])
    ).content.decode()
    assert f"/api/insertion-analyses/{rec.insertion.pk}/plot.png" in html


@pytest.mark.parametrize("route", PSTH_ROUTES, ids=lambda r: r[0])
def test_filters_and_ordering_are_whitelisted(route):
    check_whitelists(route)


def test_ephys_unit_endpoint_filters_by_analysis_results(rec, client):
    delay_contra = ids(
        client.get(
            "/api/units/",
            {"brain_area": "ALM", "delay_selectivity": "contra-selective", "page_size": 1000},
        )
    )
    assert delay_contra and delay_contra == set(
        pm.PeriodSelectivity.objects.filter(
            period__name="delay", selectivity__name="contra-selective"
        ).values_list("unit_id", flat=True)
    )
    pyr = ids(client.get("/api/units/", {"cell_type": "Pyr", "page_size": 1000}))
    assert pyr == set(
        pm.UnitCellType.objects.filter(cell_type__name="Pyr").values_list("unit_id", flat=True)
    )
