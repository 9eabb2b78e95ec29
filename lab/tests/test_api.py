"""REST API of schema ``lab``: permissions, natural keys, filters, ordering, query counts, history.

The helpers at the top (clients, the route list of the router, the permission matrix, the
query-count check) are shared with the experiment and pipeline API tests, which import them.
"""

import datetime as dt
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
from rest_framework.test import APIClient

from lab import models
from lab.api import filters as lab_filters
from lab.tests.factories import (
    ModifiedGeneFactory,
    PersonFactory,
    RigFactory,
    SubjectFactory,
    SurgeryFactory,
    SurgeryProcedureFactory,
    VirusFactory,
    VirusInjectionFactory,
    WaterRestrictionFactory,
    lookup,
)
from mapsite.core.tests.api_checks import (
    Route,
    check_permission_matrix,
    check_query_count_constant,
    check_whitelists,
    fill_lookups,
    listed,
    route_id,
    routes_of,
    rows,
    writable,
)

# --- Test data ---------------------------------------------------------------------------------

LAB_ROUTES = routes_of("lab.")


@pytest.fixture
def lab_data(db: None) -> SimpleNamespace:
    """Eight or more rows in every lab table, with every relation the serializers follow."""
    fill_lookups(LAB_ROUTES)
    people = PersonFactory.create_batch(8)
    RigFactory.create_batch(8)
    wrs = WaterRestrictionFactory.create_batch(8, subject__responsible=people[0])
    subjects = [wr.subject for wr in wrs]
    bare = SubjectFactory(responsible=people[1])  # not water-restricted yet
    genes = ModifiedGeneFactory.create_batch(8)
    pl56 = lookup(models.AnimalStrain, "pl56")
    for subject, gene in zip(subjects, genes, strict=True):
        models.SubjectStrain.objects.create(subject=subject, strain=pl56)
        models.SubjectGeneModification.objects.create(
            subject=subject, gene_modification=gene, zygosity="Het", type="Knock-in"
        )
    serotypes = [models.Serotype.objects.create(name=f"AAV{i}/1") for i in range(3, 11)]
    viruses = [VirusFactory(serotype=s, person=people[2]) for s in serotypes]
    for virus in viruses:
        models.VirusNote.objects.create(virus=virus, note_id=1, note=f"aliquot of {virus.name}")
    left = lookup(models.Hemisphere, "left")
    alm = lookup(models.BrainArea, "ALM")
    surgeries = []
    for i, subject in enumerate(subjects):
        start = dt.datetime(2018, 1, 10 + i, 15, 0, tzinfo=dt.UTC)
        surgery = SurgeryFactory(
            subject=subject,
            surgery_id=1,
            person=people[i % 3],
            start_time=start,
            end_time=start + dt.timedelta(hours=1),
        )
        surgeries.append(surgery)
        for j in (1, 2):
            VirusInjectionFactory(surgery=surgery, injection_id=j, virus=viruses[i])
        SurgeryProcedureFactory(surgery=surgery, procedure_id=1, hemisphere=left, brain_area=alm)
    np3b = models.ProbeType.objects.get(name="neuropixels 1.0 - 3B")
    probes = [models.Probe.objects.create(serial=f"180{i:05d}", probe_type=np3b) for i in range(8)]
    sites = list(models.ProbeTypeElectrode.objects.filter(probe_type=np3b).order_by("electrode"))
    configs = []
    for i in range(8):
        config = models.ElectrodeConfig.objects.create(
            probe_type=np3b, name=f"{i * 2 + 1}-{i * 2 + 2}", config_hash=f"test-hash-{i}"
        )
        configs.append(config)
        for site in sites[i * 2 : i * 2 + 2]:
            models.ElectrodeConfigElectrode.objects.create(config=config, electrode=site)
    return SimpleNamespace(
        people=people,
        subjects=subjects,
        wrs=wrs,
        bare=bare,
        genes=genes,
        serotypes=serotypes,
        viruses=viruses,
        surgeries=surgeries,
        probes=probes,
        configs=configs,
    )


def lab_payloads(data: SimpleNamespace) -> dict[str, Callable[[], tuple[dict, dict]]]:
    """Create and patch bodies of every writable lab endpoint, in the natural-key forms."""
    who = data.people[0].username
    subject = data.subjects[0].subject_id
    surgery = data.surgeries[0].id
    virus = data.viruses[0].virus_id
    return {
        "lab-person": lambda: ({"username": "newbie", "fullname": "New Bie"}, {"fullname": "NB"}),
        "lab-rig": lambda: ({"name": "RigNew", "room": "2w.1"}, {"room": "2w.2"}),
        "lab-subject": lambda: (
            {
                "subject_id": 999001,
                "sex": "F",
                "responsible": who,
                "source": "Charles River",
                "date_of_birth": "2018-01-01",
            },
            {"cage_number": 77, "source": "Janelia"},
        ),
        "lab-waterrestriction": lambda: (
            {
                "water_restriction_number": "new1",
                "subject": data.bare.subject_id,
                "wr_start_date": "2018-03-01",
                "wr_start_weight": "22.500",
            },
            {"water_restriction_number": "new2", "cage_number": 5},
        ),
        "lab-subjectstrain": lambda: ({"subject": subject, "strain": "kj18"}, {"strain": "kj18"}),
        "lab-subjectgenemod": lambda: (
            {
                "subject": data.subjects[1].subject_id,
                "gene_modification": data.genes[0].name,
                "zygosity": "Het",
                "type": "Transgene",
            },
            {"zygosity": "Hom"},
        ),
        "lab-modifiedgene": lambda: ({"name": "Sst-IRES-Cre"}, {"description": "Jax 013044"}),
        "lab-serotype": lambda: ({"name": "AAV2/9"}, {"name": "AAV2/8"}),
        "lab-virus": lambda: (
            {
                "virus_id": 5555,
                "name": "AAV-CAG-GFP",
                "source": "UPenn",
                "serotype": data.serotypes[0].name,
                "person": who,
                "titer": "2000000000000.0",
                "order_date": "2018-01-02",
            },
            {"remarks": "re-ordered"},
        ),
        "lab-virusnote": lambda: ({"virus": virus, "note_id": 9, "note": "thawed"}, {"note": "x"}),
        "lab-surgery": lambda: (
            {
                "subject": subject,
                "surgery_id": 2,
                "person": who,
                "start_time": "2018-02-01T15:00:00Z",
                "end_time": "2018-02-01T16:30:00Z",
            },
            {"description": "fiber implant"},
        ),
        "lab-virusinjection": lambda: (
            {
                "surgery": surgery,
                "injection_id": 9,
                "virus": virus,
                "skull_reference": "Lambda",
                "ap_location": "-2500.000",
                "ml_location": "300.000",
                "dv_location": "-900.000",
                "volume": "40.000",
                "dilution": "2.00",
            },
            {"volume": "60.000"},
        ),
        "lab-surgeryprocedure": lambda: (
            {
                "surgery": surgery,
                "procedure_id": 9,
                "skull_reference": "Bregma",
                "description": "craniotomy over vS1",
                "hemisphere": "right",
                "brain_area": "vS1",
            },
            {"hemisphere": "left"},
        ),
        "lab-probe": lambda: (
            {"serial": "641251", "probe_type": "neuropixels 2.0 - SS"},
            {"comment": "shank 2 broken"},
        ),
    }


# --- Permissions, query counts, whitelists over every lab endpoint ----------------------------


def test_every_lab_table_has_an_endpoint() -> None:
    from django.apps import apps

    served = {viewset.queryset.model for _, viewset, _ in LAB_ROUTES}
    tables = {
        m for m in apps.get_app_config("lab").get_models() if not m.__name__.startswith("Histor")
    }
    assert tables - served == set()


@pytest.mark.parametrize("route", LAB_ROUTES, ids=route_id)
def test_permission_matrix(
    route: Route, lab_data: SimpleNamespace, user_client: APIClient, staff_client: APIClient
) -> None:
    check_permission_matrix(route, user_client, staff_client, lab_payloads(lab_data))


@pytest.mark.parametrize("route", LAB_ROUTES, ids=route_id)
def test_query_count_does_not_grow_with_page_size(
    route: Route, lab_data: SimpleNamespace, user_client: APIClient
) -> None:
    check_query_count_constant(route, user_client)


@pytest.mark.parametrize("route", LAB_ROUTES, ids=route_id)
def test_filters_and_ordering_are_whitelisted(route: Route) -> None:
    check_whitelists(route)


def test_read_only_and_writable_lab_endpoints() -> None:
    writable_prefixes = {prefix for prefix, viewset, _ in LAB_ROUTES if writable(viewset)}
    assert writable_prefixes == {
        "people",
        "rigs",
        "subjects",
        "water-restrictions",
        "subject-strains",
        "subject-gene-modifications",
        "modified-genes",
        "serotypes",
        "viruses",
        "virus-notes",
        "surgeries",
        "virus-injections",
        "surgery-procedures",
        "probes",
    }


# --- Natural keys ------------------------------------------------------------------------------


def test_subject_by_subject_id_with_natural_keys(
    lab_data: SimpleNamespace, user_client: APIClient
) -> None:
    subject = lab_data.subjects[0]
    response = user_client.get(f"/api/subjects/{subject.subject_id}/")
    assert response.status_code == 200
    body = response.json()
    assert body["subject_id"] == subject.subject_id
    assert body["water_restriction_number"] == subject.water_restriction.water_restriction_number
    assert body["responsible"] == lab_data.people[0].username
    assert body["source"] == "Jackson Labs"
    assert body["strains"] == ["pl56"]
    assert body["gene_modifications"] == [
        {"gene_modification": lab_data.genes[0].name, "zygosity": "Het", "type": "Knock-in"}
    ]
    assert body["complete_genotype"] == f"pl56; {lab_data.genes[0].name} (Het, Knock-in)"
    assert (
        user_client.get(f"/api/subjects/{lab_data.bare.subject_id}/").json()[
            "water_restriction_number"
        ]
        is None
    )
    assert user_client.get("/api/subjects/1/").status_code == 404


def test_other_natural_key_lookups(lab_data: SimpleNamespace, user_client: APIClient) -> None:
    wr = lab_data.wrs[2]
    body = user_client.get(f"/api/water-restrictions/{wr.water_restriction_number}/").json()
    assert body["subject"] == wr.subject.subject_id
    person = lab_data.people[3]
    assert user_client.get(f"/api/people/{person.username}/").json()["fullname"] == (
        person.fullname
    )
    virus = lab_data.viruses[1]
    body = user_client.get(f"/api/viruses/{virus.virus_id}/").json()
    assert body["serotype"] == virus.serotype.name
    assert body["notes"] == [{"note_id": 1, "note": f"aliquot of {virus.name}"}]
    # A name with a slash is still one key.
    assert user_client.get("/api/serotypes/AAV3/1/").json() == {"name": "AAV3/1"}
    assert user_client.get("/api/brain-areas/ALM/").json()["description"] == (
        "anterior lateral motor cortex"
    )
    assert user_client.get("/api/probe-types/neuropixels 1.0 - 3B/").status_code == 200
    assert user_client.get(f"/api/probes/{lab_data.probes[0].serial}/").json()["probe_type"] == (
        "neuropixels 1.0 - 3B"
    )
    assert (
        user_client.get("/api/photostim-devices/OBIS470/").json()["excitation_wavelength"]
        == "473.0"
    )


def test_surgery_detail_nests_injections_and_procedures(
    lab_data: SimpleNamespace, user_client: APIClient
) -> None:
    surgery = lab_data.surgeries[0]
    body = user_client.get(f"/api/surgeries/{surgery.id}/").json()
    assert body["subject"] == surgery.subject.subject_id
    assert [i["injection_id"] for i in body["virus_injections"]] == [1, 2]
    assert body["virus_injections"][0]["virus"] == lab_data.viruses[0].virus_id
    assert body["procedures"][0]["brain_area"] == "ALM"
    assert body["procedures"][0]["hemisphere"] == "left"


# --- Filters and ordering ----------------------------------------------------------------------


def test_subject_filters(lab_data: SimpleNamespace, user_client: APIClient) -> None:
    target = lab_data.subjects[4]
    wr = target.water_restriction.water_restriction_number
    assert listed(user_client, "/api/subjects/", "subject_id", water_restriction_number=wr) == [
        target.subject_id
    ]
    responsible = listed(
        user_client, "/api/subjects/", "subject_id", responsible=lab_data.people[1].username
    )
    assert responsible == [lab_data.bare.subject_id]
    strained = listed(user_client, "/api/subjects/", "subject_id", strain="pl56")
    assert strained == sorted(s.subject_id for s in lab_data.subjects)
    gene = listed(
        user_client, "/api/subjects/", "subject_id", gene_modification=lab_data.genes[3].name
    )
    assert gene == [lab_data.subjects[3].subject_id]


def test_unknown_lookup_value_in_a_filter_is_a_400(
    lab_data: SimpleNamespace, user_client: APIClient
) -> None:
    assert user_client.get("/api/subjects/", {"source": "Nowhere"}).status_code == 400
    assert user_client.get("/api/surgery-procedures/", {"brain_area": "XYZ"}).status_code == 400
    assert user_client.get("/api/subjects/", {"sex": "Q"}).status_code == 400


def test_unknown_username_filter_is_a_400(
    lab_data: SimpleNamespace, user_client: APIClient
) -> None:
    assert user_client.get("/api/subjects/", {"responsible": "nobody"}).status_code == 400


def test_surgery_and_child_filters(lab_data: SimpleNamespace, user_client: APIClient) -> None:
    s2 = lab_data.subjects[2]
    wr = s2.water_restriction.water_restriction_number
    assert listed(user_client, "/api/surgeries/", "id", subject=s2.subject_id) == [
        lab_data.surgeries[2].id
    ]
    assert listed(user_client, "/api/surgeries/", "id", water_restriction_number=wr) == [
        lab_data.surgeries[2].id
    ]
    # Surgeries start 2018-01-10 .. 01-17 at 15:00 UTC (10:00 in New York).
    dated = listed(
        user_client, "/api/surgeries/", "id", date_after="2018-01-11", date_before="2018-01-12"
    )
    assert dated == [lab_data.surgeries[1].id, lab_data.surgeries[2].id]
    injections = listed(
        user_client, "/api/virus-injections/", "id", virus=lab_data.viruses[5].virus_id
    )
    assert len(injections) == 2
    assert set(injections) == set(
        lab_data.surgeries[5].virus_injections.values_list("id", flat=True)
    )
    assert (
        len(listed(user_client, "/api/virus-injections/", "id", water_restriction_number=wr)) == 2
    )
    assert listed(user_client, "/api/surgery-procedures/", "surgery", subject=s2.subject_id) == [
        lab_data.surgeries[2].id
    ]
    assert len(listed(user_client, "/api/surgery-procedures/", "id", brain_area="ALM")) == 8
    assert listed(user_client, "/api/surgery-procedures/", "id", brain_area="vS1") == []


def test_other_lab_filters(lab_data: SimpleNamespace, user_client: APIClient) -> None:
    s = lab_data.subjects[6]
    assert listed(user_client, "/api/water-restrictions/", "subject", subject=s.subject_id) == [
        s.subject_id
    ]
    assert listed(user_client, "/api/subject-strains/", "subject", subject=s.subject_id) == [
        s.subject_id
    ]
    assert listed(
        user_client,
        "/api/subject-gene-modifications/",
        "gene_modification",
        water_restriction_number=s.water_restriction.water_restriction_number,
    ) == [lab_data.genes[6].name]
    v = lab_data.viruses[7]
    assert listed(user_client, "/api/viruses/", "virus_id", serotype=v.serotype.name) == [
        v.virus_id
    ]
    assert listed(user_client, "/api/virus-notes/", "virus", virus=v.virus_id) == [v.virus_id]
    electrodes = listed(
        user_client,
        "/api/electrode-config-electrodes/",
        "electrode",
        config_hash=lab_data.configs[1].config_hash,
    )
    assert electrodes == [3, 4]
    assert listed(
        user_client, "/api/probe-type-electrodes/", "shank", probe_type="neuropixels 2.0 - MS"
    )


def test_ordering_is_applied_and_whitelisted(
    lab_data: SimpleNamespace, user_client: APIClient
) -> None:
    ids = sorted(s.subject_id for s in [*lab_data.subjects, lab_data.bare])
    assert listed(user_client, "/api/subjects/", "subject_id", ordering="-subject_id") == ids[::-1]
    # Not whitelisted: ignored, the default ordering stays.
    assert listed(user_client, "/api/subjects/", "subject_id", ordering="-cage_number") == ids
    wrs = sorted(w.water_restriction_number for w in lab_data.wrs)
    assert (
        listed(
            user_client,
            "/api/water-restrictions/",
            "water_restriction_number",
            ordering="-water_restriction_number",
        )
        == wrs[::-1]
    )


def test_page_size_is_capped_at_1000(lab_data: SimpleNamespace, user_client: APIClient) -> None:
    assert models.ProbeTypeElectrode.objects.count() > 1000
    response = user_client.get("/api/probe-type-electrodes/", {"page_size": 5000})
    assert response.status_code == 200
    assert len(rows(response)) == 1000
    assert response.json()["count"] == models.ProbeTypeElectrode.objects.count()
    assert len(rows(user_client.get("/api/probe-type-electrodes/"))) == 100


def test_filter_module_declares_no_all_fields() -> None:
    for name in dir(lab_filters):
        filterset = getattr(lab_filters, name)
        if isinstance(filterset, type) and hasattr(filterset, "_meta") and filterset._meta.model:
            assert filterset._meta.fields != "__all__", name


# --- Writes: validation, conflicts, history ----------------------------------------------------


def test_staff_patch_is_attributed_to_the_token_user_in_history(
    lab_data: SimpleNamespace, staff: Any, staff_client: APIClient
) -> None:
    subject = lab_data.subjects[0]
    response = staff_client.patch(
        f"/api/subjects/{subject.subject_id}/", {"cage_number": 4242}, format="json"
    )
    assert response.status_code == 200
    latest = subject.history.order_by("-history_id").first()
    assert latest.cage_number == 4242
    assert latest.history_type == "~"
    assert latest.history_user == staff

    response = staff_client.post("/api/rigs/", {"name": "HistRig", "room": "2w.300"}, format="json")
    assert response.status_code == 201
    created = models.Rig.objects.get(name="HistRig").history.get()
    assert created.history_type == "+"
    assert created.history_user == staff


def test_writes_accept_natural_keys(lab_data: SimpleNamespace, staff_client: APIClient) -> None:
    response = staff_client.post(
        "/api/water-restrictions/",
        {
            "water_restriction_number": "SC099",
            "subject": lab_data.bare.subject_id,
            "wr_start_date": "2018-04-01",
            "wr_start_weight": "21.0",
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    lab_data.bare.refresh_from_db()
    assert lab_data.bare.water_restriction.water_restriction_number == "SC099"
    response = staff_client.post(
        "/api/subjects/", {"subject_id": 999777, "responsible": "nobody"}, format="json"
    )
    assert response.status_code == 400
    assert "responsible" in response.json()


def test_check_constraints_are_a_400_not_a_500(
    lab_data: SimpleNamespace, staff_client: APIClient
) -> None:
    subject = lab_data.subjects[0].subject_id
    who = lab_data.people[0].username
    response = staff_client.post(
        "/api/surgeries/",
        {
            "subject": subject,
            "surgery_id": 5,
            "person": who,
            "start_time": "2018-02-01T16:00:00Z",
            "end_time": "2018-02-01T15:00:00Z",
        },
        format="json",
    )
    assert response.status_code == 400
    assert "surgery_ends_after_start" in str(response.json())
    response = staff_client.patch(
        f"/api/water-restrictions/{lab_data.wrs[0].water_restriction_number}/",
        {"wr_start_weight": "0"},
        format="json",
    )
    assert response.status_code == 400
    procedure = lab_data.surgeries[0].procedures.get()
    response = staff_client.patch(
        f"/api/surgery-procedures/{procedure.id}/", {"brain_area": None}, format="json"
    )
    assert response.status_code == 400
    assert "procedure_location_complete" in str(response.json())
    procedure.refresh_from_db()
    assert procedure.brain_area.name == "ALM"


def test_duplicates_are_a_400(lab_data: SimpleNamespace, staff_client: APIClient) -> None:
    subject = lab_data.subjects[0].subject_id
    response = staff_client.post("/api/subjects/", {"subject_id": subject}, format="json")
    assert response.status_code == 400
    response = staff_client.post(
        "/api/subject-strains/", {"subject": subject, "strain": "pl56"}, format="json"
    )
    assert response.status_code == 400


def test_deleting_a_referenced_row_is_a_409(
    lab_data: SimpleNamespace, staff_client: APIClient
) -> None:
    person = lab_data.people[0]
    response = staff_client.delete(f"/api/people/{person.username}/")
    assert response.status_code == 409
    assert "subjects" in response.json()["detail"]
    assert models.Person.objects.filter(pk=person.pk).exists()
    # The request's transaction is still usable after the refusal.
    assert staff_client.get(f"/api/people/{person.username}/").status_code == 200
