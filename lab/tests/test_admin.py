"""The lab admin: constant-query changelists, change pages, history, permissions, the index."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from decimal import Decimal

import pytest
from django.contrib import admin
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from lab import models
from lab.tests import factories as f
from mapsite.core.admin_site import WORKFLOW_SECTIONS

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client, django_user_model):
    user = django_user_model.objects.create_superuser("curator", "curator@example.org", "pw")
    assert user.is_staff
    client.force_login(user)
    client.user = user
    return client


def get_counting(client, url: str, **params: str) -> tuple[int, object]:
    """GET ``url`` (after a warm-up GET that fills per-process caches, e.g. content types);
    return (number of SQL queries, response)."""
    client.get(url, params)
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url, params)
    assert response.status_code == 200, response.content[:2000]
    return len(ctx.captured_queries), response


def assert_constant_changelist(
    client, url: str, make: Callable[[], object], n: int = 4, **params: str
) -> int:
    """Render with n rows and with 3n rows: the query count must not grow with the rows."""
    for _ in range(n):
        make()
    q_small, r_small = get_counting(client, url, **params)
    shown_small = len(r_small.context["cl"].result_list)
    for _ in range(2 * n):
        make()
    q_large, r_large = get_counting(client, url, **params)
    shown_large = len(r_large.context["cl"].result_list)
    assert shown_large == 3 * shown_small >= 3 * n, (shown_small, shown_large)
    assert q_large == q_small, f"{url}: {q_small} queries with {n} rows, {q_large} with {3 * n}"
    return q_small


def _subject_with_everything() -> models.Subject:
    wr = f.WaterRestrictionFactory()
    f.SubjectStrainFactory(subject=wr.subject)
    f.SubjectGeneModificationFactory(subject=wr.subject)
    f.SurgeryFactory(subject=wr.subject)
    return wr.subject


CHANGELISTS = {
    "subject": _subject_with_everything,
    "waterrestriction": f.WaterRestrictionFactory,
    "surgery": lambda: f.VirusInjectionFactory().surgery,
    "virus": lambda: f.VirusNoteFactory().virus,
    "person": f.PersonFactory,
    "rig": f.RigFactory,
    "modifiedgene": f.ModifiedGeneFactory,
}


@pytest.mark.parametrize("model_name", CHANGELISTS)
def test_changelist_queries_do_not_grow_with_rows(staff_client, model_name):
    url = reverse(f"admin:lab_{model_name}_changelist")
    queries = assert_constant_changelist(staff_client, url, CHANGELISTS[model_name])
    assert queries <= 12


def test_subject_changelist_columns_and_search(staff_client):
    wr = f.WaterRestrictionFactory(water_restriction_number="dl7")
    f.WaterRestrictionFactory(water_restriction_number="SC022")
    bare = f.SubjectFactory()  # no water restriction yet: still listed, with a dash
    url = reverse("admin:lab_subject_changelist")

    response = staff_client.get(url)
    html = response.content.decode()
    assert "dl7" in html and "SC022" in html and str(bare.subject_id) in html
    assert "water restriction" in html.lower()  # the column header

    response = staff_client.get(url, {"q": "dl7"})
    assert [s.pk for s in response.context["cl"].result_list] == [wr.subject.pk]
    response = staff_client.get(url, {"q": str(bare.subject_id)})
    assert [s.pk for s in response.context["cl"].result_list] == [bare.pk]
    # Filters: sex, source and responsible are offered.
    titles = {spec.title for spec in response.context["cl"].filter_specs}
    assert {"sex", "source", "responsible"} <= titles


def test_no_full_count_on_changelists(staff_client):
    f.SubjectFactory.create_batch(3)
    with CaptureQueriesContext(connection) as ctx:
        staff_client.get(reverse("admin:lab_subject_changelist"), {"sex__exact": "M"})
    counts = [q["sql"] for q in ctx.captured_queries if "COUNT(" in q["sql"].upper()]
    # Only the (filtered) paginator count; show_full_result_count=False drops the unfiltered one.
    assert len(counts) == 1 and "WHERE" in counts[0].upper()


def test_subject_change_page_inlines_and_constant_queries(staff_client):
    subject = _subject_with_everything()
    url = reverse("admin:lab_subject_change", args=[subject.pk])
    q_small, response = get_counting(staff_client, url)
    html = response.content.decode()
    wr = subject.water_restriction
    assert wr.water_restriction_number in html
    assert "pl56" in html  # strain inline, and the derived genotype
    gene = subject.gene_modifications.get().gene_modification.name
    assert f"pl56; {gene} (Het, Knock-in)" in html  # complete_genotype, read-only
    surgery = subject.surgeries.get()
    assert reverse("admin:lab_surgery_change", args=[surgery.pk]) in html
    assert reverse("admin:lab_surgery_add") + f"?subject={subject.pk}" in html
    assert "0 session(s)" in html
    # More inline rows of every kind: the same number of queries (choices cached per request).
    for _ in range(3):
        f.SubjectGeneModificationFactory(subject=subject)
        f.SurgeryFactory(subject=subject)
    f.SubjectStrainFactory(subject=subject, strain=models.AnimalStrain.objects.get(name="kj18"))
    q_large, _ = get_counting(staff_client, url)
    assert q_large == q_small <= 25


def _subject_add_data(**overrides: str) -> dict[str, str]:
    data = {
        "subject_id": "431234",
        "sex": "F",
        "date_of_birth": "2018-01-02",
        "cage_number": "",
        "responsible": "",
        "source": str(models.AnimalSource.objects.get(name="Jackson Labs").pk),
        "water_restriction-TOTAL_FORMS": "1",
        "water_restriction-INITIAL_FORMS": "0",
        "water_restriction-MIN_NUM_FORMS": "0",
        "water_restriction-MAX_NUM_FORMS": "1",
        "water_restriction-0-water_restriction_number": "dl99",
        "water_restriction-0-cage_number": "12",
        "water_restriction-0-wr_start_date": "2018-03-01",
        "water_restriction-0-wr_start_weight": "23.4",
    }
    for prefix in ("subject_strains", "gene_modifications", "surgeries"):
        data |= {
            f"{prefix}-TOTAL_FORMS": "0",
            f"{prefix}-INITIAL_FORMS": "0",
            f"{prefix}-MIN_NUM_FORMS": "0",
            f"{prefix}-MAX_NUM_FORMS": "1000",
        }
    data.update(overrides)
    return data


def test_add_subject_with_water_restriction_and_see_history(staff_client):
    response = staff_client.post(reverse("admin:lab_subject_add"), _subject_add_data())
    assert response.status_code == 302, response.context and response.context.get("errors")
    subject = models.Subject.objects.get(subject_id=431234)
    assert subject.water_restriction.water_restriction_number == "dl99"
    assert subject.history.get().history_user == staff_client.user

    # Change the subject and its water restriction (inline) on the same page.
    change_url = reverse("admin:lab_subject_change", args=[subject.pk])
    data = _subject_add_data(sex="M")
    data |= {
        "water_restriction-INITIAL_FORMS": "1",
        "water_restriction-0-id": str(subject.water_restriction.pk),
        "water_restriction-0-subject": str(subject.pk),
        "water_restriction-0-wr_start_weight": "21.0",
    }
    response = staff_client.post(change_url, data)
    assert response.status_code == 302, response.context and response.context.get("errors")

    history = staff_client.get(reverse("admin:lab_subject_history", args=[subject.pk]))
    assert history.status_code == 200
    html = history.content.decode()
    assert "curator" in html  # who
    assert "Created" in html and "Changed" in html  # what happened
    # What changed, with choice labels rather than codes.
    assert re.search(r"<strong>Sex:</strong>\s*Female\s*&nbsp;&rarr;&nbsp;&nbsp;Male", html)
    assert "updated at" not in html.lower()  # bookkeeping timestamps are not listed as changes
    # The inline's change is on the subject's History page too, with who and what.
    related = history.context["related_history"]
    wr_changes = [e for e in related if e["what"] == "water restriction"]
    assert {e["record"].history_type for e in wr_changes} == {"+", "~"}
    changed = next(e for e in wr_changes if e["record"].history_type == "~")
    assert changed["record"].history_user == staff_client.user
    assert [(c["field"], str(c["old"]), str(c["new"])) for c in changed["changes"]] == [
        ("Wr start weight", "23.400", "21.000")
    ]
    assert "Changes to the inline rows of this object" in html


def test_surgery_change_page_and_add_prefill(staff_client):
    surgery = f.SurgeryFactory()
    f.VirusInjectionFactory.create_batch(2, surgery=surgery)
    f.SurgeryProcedureFactory(
        surgery=surgery,
        hemisphere=models.Hemisphere.objects.get(name="left"),
        brain_area=models.BrainArea.objects.get(name="ALM"),
    )
    queries, response = get_counting(
        staff_client, reverse("admin:lab_surgery_change", args=[surgery.pk])
    )
    html = response.content.decode()
    assert "AAV-hSyn-ChR2" in html and "craniotomy" in html
    # One small query per virus autocomplete widget (its selected label); the rest is fixed.
    assert queries <= 25

    response = staff_client.get(reverse("admin:lab_surgery_add"), {"subject": surgery.subject.pk})
    form = response.context["adminform"].form
    assert form.initial["surgery_id"] == surgery.surgery_id + 1
    assert str(surgery.subject) in response.content.decode()  # the autocomplete shows it


def test_virus_titer_and_notes(staff_client):
    note = f.VirusNoteFactory()
    response = staff_client.get(reverse("admin:lab_virus_changelist"))
    assert "1.00e+12" in response.content.decode()
    response = staff_client.get(reverse("admin:lab_virus_change", args=[note.virus.pk]))
    assert note.note in response.content.decode()


def test_autocomplete_finds_subject_by_water_restriction(staff_client):
    wr = f.WaterRestrictionFactory(water_restriction_number="HH09")
    response = staff_client.get(
        reverse("admin:autocomplete"),
        {"app_label": "lab", "model_name": "surgery", "field_name": "subject", "term": "hh0"},
    )
    assert response.json()["results"] == [{"id": str(wr.subject.pk), "text": str(wr.subject)}]


def test_lookups_are_read_only_even_for_superusers(staff_client):
    strain = models.AnimalStrain.objects.get(name="pl56")
    assert staff_client.get(reverse("admin:lab_animalstrain_add")).status_code == 403
    response = staff_client.get(reverse("admin:lab_animalstrain_change", args=[strain.pk]))
    assert response.status_code == 200
    assert 'name="_save"' not in response.content.decode()
    response = staff_client.post(
        reverse("admin:lab_animalstrain_change", args=[strain.pk]), {"name": "x"}
    )
    assert response.status_code == 403
    assert (
        staff_client.get(reverse("admin:lab_animalstrain_delete", args=[strain.pk])).status_code
        == 403
    )


def test_non_staff_cannot_use_the_admin(client, django_user_model):
    user = django_user_model.objects.create_user("visitor", password="pw")
    client.force_login(user)
    for url in (reverse("admin:index"), reverse("admin:lab_subject_changelist")):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("admin:login"))
    client.logout()
    assert client.get(reverse("admin:lab_subject_changelist")).status_code == 302


def test_index_is_grouped_by_workflow_and_lists_every_model(staff_client):
    response = staff_client.get(reverse("admin:index"))
    assert response.status_code == 200
    sections = [s["name"] for s in response.context["app_list"]]
    for title in ("Animals", "Sessions and behavior", "Pipeline", "Lab resources"):
        assert title in sections
    assert sections.index("Animals") < sections.index("Sessions and behavior")
    assert any(name.endswith("lookups and reference") for name in sections)
    listed = {m["admin_url"] for section in response.context["app_list"] for m in section["models"]}
    html = response.content.decode()
    for model in admin.site._registry:
        url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        assert url in listed and url in html, f"{model._meta.label} missing from the index"
    # Every model a workflow section names is registered (no stale names), bar apps to come.
    registered = {(m._meta.app_label, m.__name__) for m in admin.site._registry}
    named = {key for _, keys in WORKFLOW_SECTIONS for key in keys}
    assert named - registered <= {("lab", "Probe")}


def test_water_restriction_changelist_dates(staff_client):
    f.WaterRestrictionFactory(wr_start_date=dt.date(2019, 5, 6), wr_start_weight=Decimal("20.1"))
    response = staff_client.get(reverse("admin:lab_waterrestriction_changelist"))
    html = response.content.decode()
    assert "2019" in html and "20.1" in html
