"""The ephys admin: constant-query changelists, the insertion page (location entry, history),
units read-only with their metrics, good periods and trials, comments, the index section."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

import numpy as np
import pytest
from django.urls import reverse

from ephys import models
from ephys.admin import ProbeInsertionAdmin, UnitAdmin
from ephys.tests.api_factories import add_trials, make_unit, spike_train
from ephys.tests.factories import ProbeFactory, ProbeInsertionFactory, npy
from lab.models import BrainArea, Hemisphere, SkullReference
from lab.tests.factories import lookup
from lab.tests.test_admin import assert_constant_changelist, get_counting, staff_client  # noqa: F401

pytestmark = pytest.mark.django_db

_numbers = itertools.count(1)
UTC = dt.UTC


def _insertion() -> models.ProbeInsertion:
    insertion = ProbeInsertionFactory()
    models.InsertionLocation.objects.create(
        insertion=insertion,
        skull_reference=SkullReference.objects.get(name="Bregma"),
        ap_location=2500,
        ml_location=-1500,
        depth=-3000,
    )
    make_unit(insertion, 1, spike_train(1, 20))
    return insertion


def _unit() -> models.Unit:
    return make_unit(ProbeInsertionFactory(), next(_numbers), spike_train(2, 20))


def _quality() -> models.ProbeInsertionQuality:
    quality = models.ProbeInsertionQuality.objects.create(insertion=ProbeInsertionFactory())
    models.GoodPeriod.objects.create(quality=quality, start=0.0, end=10.0)
    return quality


def _comment() -> models.UnitComment:
    return models.UnitComment.objects.create(unit=_unit(), comment=f"c{next(_numbers)}")


def _archived() -> models.ArchivedClustering:
    unit = _unit()
    clustering = models.ArchivedClustering.objects.create(
        insertion=unit.insertion,
        clustering_method=unit.clustering_method,
        clustering_time=dt.datetime(2019, 1, 1, tzinfo=UTC),
        quality_control=False,
        manual_curation=False,
    )
    for n in (1, 2):
        models.ArchivedUnit.objects.create(
            clustering=clustering,
            unit=n,
            quality=unit.quality,
            electrode=unit.electrode,
            unit_posx=0,
            unit_posy=0,
            unit_amp=1,
            spike_times=npy(np.zeros(3)),
            spike_sites=npy(np.zeros(3, np.int32)),
            spike_depths=npy(np.zeros(3, np.float32)),
            waveform=npy(np.zeros(3, np.float32)),
        )
    return clustering


def _recording() -> models.EphysRecording:
    insertion = ProbeInsertionFactory()
    recording = models.EphysRecording.objects.create(
        root="/data",
        relative_path=f"x/{next(_numbers)}",
        h2o="x",
        layout="date",
        probe_glob="*",
        session=insertion.session,
    )
    models.SortedOutput.objects.create(recording=recording, version=1)
    return recording


def _probe() -> Any:
    probe = ProbeFactory()
    ProbeInsertionFactory(probe=probe)
    return probe


CHANGELISTS = {
    "ephys:probeinsertion": _insertion,
    "ephys:unit": _unit,
    "ephys:probeinsertionquality": _quality,
    "ephys:unitcomment": _comment,
    "ephys:archivedclustering": _archived,
    "ephys:ephysrecording": _recording,
    "ephys:sortedoutput": _recording,
    "lab:probe": _probe,
}


@pytest.mark.parametrize("name", CHANGELISTS)
def test_changelist_queries_do_not_grow_with_rows(staff_client, name):  # noqa: F811
    app, model = name.split(":")
    url = reverse(f"admin:{app}_{model}_changelist")
    queries = assert_constant_changelist(staff_client, url, CHANGELISTS[name])
    assert queries <= 15


def test_unit_changelist_columns_filters_and_order(staff_client):  # noqa: F811
    insertion = ProbeInsertionFactory()
    for n, (amp, quality) in enumerate([(150.0, "good"), (80.0, "multi"), (120.0, "good")], 1):
        make_unit(insertion, n, spike_train(n, 30), amp=amp, quality=quality, rate=n * 1.5)
    other = _unit()
    url = reverse("admin:ephys_unit_changelist")
    q_small, response = get_counting(staff_client, url, insertion__id__exact=str(insertion.pk))
    cl = response.context["cl"]
    assert [u.unit for u in cl.result_list] == [1, 2, 3]  # one insertion: cluster order
    html = response.content.decode()
    for text in ("150.0", "80.0", "4.50", "0.95"):  # amp, amp, rate of unit 3, presence
        assert text in html
    titles = {spec.title for spec in cl.filter_specs}
    assert {"quality", "clustering method", "session", "probe insertion"} <= titles
    goods = staff_client.get(url, {"quality__id__exact": lookup(models.UnitQualityType, "good").pk})
    assert {u.pk for u in goods.context["cl"].result_list} >= {other.pk}
    by_session = staff_client.get(url, {"insertion__session__id__exact": insertion.session_id})
    assert [u.unit for u in by_session.context["cl"].result_list] != []
    assert other.pk not in {u.pk for u in by_session.context["cl"].result_list}
    for n in range(4, 10):
        make_unit(insertion, n, spike_train(n, 10))
    q_large, _ = get_counting(staff_client, url, insertion__id__exact=str(insertion.pk))
    assert q_large == q_small
    # Searching by cluster id, or by text, works (no error on a non-number).
    assert staff_client.get(url, {"q": "2"}).status_code == 200
    assert staff_client.get(url, {"q": "dl"}).status_code == 200


def test_unit_page_is_read_only_with_metrics_and_a_plot_hook(staff_client, monkeypatch):  # noqa: F811
    unit = make_unit(ProbeInsertionFactory(), 7, spike_train(7, 40), rate=3.25, isi=0.125)
    models.UnitComment.objects.create(unit=unit, comment="bursty")
    url = reverse("admin:ephys_unit_change", args=[unit.pk])
    queries, response = get_counting(staff_client, url)
    html = response.content.decode()
    assert 'name="_save"' not in html  # ingested: nothing to save
    for text in ("3.25", "0.125", "complete_session", "bursty", "add a comment", "spike-times"):
        assert text in html, text
    assert "Plots" not in html
    assert queries <= 20
    monkeypatch.setattr(UnitAdmin, "unit_plots", lambda self, u: f'<img id="raster-{u.pk}">')
    html = staff_client.get(url).content.decode()
    assert f'<img id="raster-{unit.pk}">' in html
    assert staff_client.post(url, {"unit": "8"}).status_code == 403
    assert staff_client.get(reverse("admin:ephys_unit_add")).status_code == 403


def _post_data(response: Any) -> dict[str, str]:
    """The POST body the change page would send unchanged (every inline's management form and
    rows, read-only ones included)."""
    data: dict[str, str] = {}
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        for name, field in formset.management_form.fields.items():
            value = formset.management_form[name].value()
            data[formset.management_form.add_prefix(name)] = "" if value is None else str(value)
        for form in formset.forms:
            for name in form.fields:
                value = form[name].value()
                if value is None or value is False:
                    continue
                data[form.add_prefix(name)] = "on" if value is True else str(value)
    return data


def test_insertion_location_entry_is_saved_and_in_history(staff_client):  # noqa: F811
    insertion = ProbeInsertionFactory()
    make_unit(insertion, 3, spike_train(3, 25), amp=90.0)
    models.ClusteringLabel.objects.create(
        insertion=insertion,
        clustering_method=lookup(models.ClusteringMethod, "kilosort2"),
        clustering_time=dt.datetime(2019, 1, 1, tzinfo=UTC),
        quality_control=True,
        manual_curation=False,
    )
    url = reverse("admin:ephys_probeinsertion_change", args=[insertion.pk])
    response = staff_client.get(url)
    html = response.content.decode()
    assert "Units (1)" in html and "90.0" in html  # the unit table
    assert 'name="_save"' in html
    data = _post_data(response)
    data |= {
        "location-0-skull_reference": str(SkullReference.objects.get(name="Bregma").pk),
        "location-0-ap_location": "2500.00",
        "location-0-ml_location": "-1500.00",
        "location-0-depth": "-3300.00",
        "location-0-theta": "15.00",
        "location-0-phi": "0.00",
        "location-0-beta": "0.00",
        "recordable_regions-TOTAL_FORMS": "1",
        "recordable_regions-0-brain_area": str(BrainArea.objects.get(name="ALM").pk),
        "recordable_regions-0-hemisphere": str(Hemisphere.objects.get(name="left").pk),
        "note-0-note": "slightly anterior",
    }
    response = staff_client.post(url, data)
    assert response.status_code == 302, response.context and response.context["errors"]
    location = models.InsertionLocation.objects.get(pk=insertion.pk)
    assert str(location.depth) == "-3300.00" and location.hemisphere == "left"
    assert insertion.recordable_regions.get().brain_area.name == "ALM"
    assert models.InsertionNote.objects.get(pk=insertion.pk).note == "slightly anterior"
    assert location.history.get().history_user == staff_client.user

    # Change the depth: the insertion's History page says who changed what.
    data = _post_data(staff_client.get(url))
    data["location-0-depth"] = "-3250.00"
    assert staff_client.post(url, data).status_code == 302
    history = staff_client.get(reverse("admin:ephys_probeinsertion_history", args=[insertion.pk]))
    assert history.status_code == 200
    entries = history.context["related_history"]
    changed = [e for e in entries if e["what"] == "insertion location"]
    assert {e["record"].history_type for e in changed} == {"+", "~"}
    edit = next(e for e in changed if e["record"].history_type == "~")
    assert edit["record"].history_user == staff_client.user
    assert [(c["field"], str(c["old"]), str(c["new"])) for c in edit["changes"]] == [
        ("Depth", "-3300.00", "-3250.00")
    ]
    assert "curator" in history.content.decode()
    # Ingested: no add page; the insertion's own fields are not editable.
    assert staff_client.get(reverse("admin:ephys_probeinsertion_add")).status_code == 403
    insertion.refresh_from_db()
    assert insertion.insertion_number == 1


def test_insertion_page_queries_do_not_grow_with_units(staff_client, monkeypatch):  # noqa: F811
    insertion = ProbeInsertionFactory()
    make_unit(insertion, 1, spike_train(1, 10))
    url = reverse("admin:ephys_probeinsertion_change", args=[insertion.pk])
    q_small, response = get_counting(staff_client, url)
    assert 'id="insertion-plots"' not in response.content.decode()
    for n in range(2, 12):
        make_unit(insertion, n, spike_train(n, 10))
    q_large, response = get_counting(staff_client, url)
    assert "Units (11)" in response.content.decode()
    assert q_large == q_small <= 40
    monkeypatch.setattr(
        ProbeInsertionAdmin, "insertion_plots", lambda self, i: f'<img id="map-{i.pk}">'
    )
    html = staff_client.get(url).content.decode()
    assert 'id="insertion-plots"' in html and f'<img id="map-{insertion.pk}">' in html


def test_good_periods_and_trials_of_an_insertion_quality(staff_client):  # noqa: F811
    insertion = ProbeInsertionFactory()
    trials = add_trials(insertion.session, 5)
    other_session_trial = add_trials(ProbeInsertionFactory().session, 1)[0]
    quality = models.ProbeInsertionQuality.objects.create(insertion=insertion)
    url = reverse("admin:ephys_probeinsertionquality_change", args=[quality.pk])
    response = staff_client.get(url)
    trial_field = response.context["inline_admin_formsets"][1].formset.empty_form.fields["trial"]
    offered = {t.pk for t in trial_field.queryset}
    assert offered == {t.pk for t in trials} and other_session_trial.pk not in offered
    data = _post_data(response)
    data |= {
        "drift_presence": "on",
        "alignment_confidence": "on",
        "number_of_landmarks": "4",
        "comment": "drift after 40 min",
        "good_periods-TOTAL_FORMS": "1",
        "good_periods-0-start": "10.5",
        "good_periods-0-end": "2400",
        "good_trials-TOTAL_FORMS": "2",
        "good_trials-0-trial": str(trials[1].pk),
        "good_trials-1-trial": str(trials[3].pk),
    }
    response = staff_client.post(url, data)
    assert response.status_code == 302, response.context and response.context["errors"]
    quality.refresh_from_db()
    assert quality.drift_presence and quality.number_of_landmarks == 4
    assert [(p.start, p.end) for p in quality.good_periods.all()] == [(10.5, 2400.0)]
    assert sorted(g.trial.trial for g in quality.good_trials.all()) == [2, 4]
    # The quality is reached from the insertion page, and a period ending first is refused.
    page = staff_client.get(reverse("admin:ephys_probeinsertion_change", args=[insertion.pk]))
    assert url in page.content.decode()
    data = _post_data(staff_client.get(url))
    data |= {
        "good_periods-TOTAL_FORMS": "2",
        "good_periods-1-start": "5",
        "good_periods-1-end": "1",
    }
    assert staff_client.post(url, data).status_code == 200  # the form again, with the error
    assert quality.good_periods.count() == 1


def test_unit_comment_added_from_the_unit_page_is_attributed(staff_client):  # noqa: F811
    unit = _unit()
    add = reverse("admin:ephys_unitcomment_add")
    response = staff_client.get(add, {"unit": unit.pk})
    assert str(unit) in response.content.decode()
    response = staff_client.post(add, {"unit": unit.pk, "comment": "splits at 30 min"})
    assert response.status_code == 302, response.context and response.context["errors"]
    comment = models.UnitComment.objects.get(unit=unit)
    assert comment.history.get().history_user == staff_client.user


def test_archived_clustering_page_lists_its_units_without_arrays(staff_client):  # noqa: F811
    clustering = _archived()
    url = reverse("admin:ephys_archivedclustering_change", args=[clustering.pk])
    response = staff_client.get(url)
    assert response.status_code == 200
    units = response.context["inline_admin_formsets"][0].formset.queryset
    assert units.count() == 2
    assert "spike_times" in units.query.deferred_loading[0]
    assert 'name="_save"' not in response.content.decode()


def test_probe_page_lists_its_insertions(staff_client):  # noqa: F811
    probe = _probe()
    response = staff_client.get(reverse("admin:lab_probe_change", args=[probe.pk]))
    assert response.status_code == 200
    assert str(probe.insertions.get().session) in response.content.decode()


def test_electrophysiology_section_of_the_index(staff_client):  # noqa: F811
    response = staff_client.get(reverse("admin:index"))
    sections = {
        s["name"]: [m["object_name"] for m in s["models"]] for s in response.context["app_list"]
    }
    ephys = sections["Electrophysiology"]
    assert {"ProbeInsertion", "Unit", "ArchivedClustering", "UnitComment"} <= set(ephys)
    assert len(ephys) == len(set(ephys))  # each model once
    assert "Probe" in sections["Lab resources"]
