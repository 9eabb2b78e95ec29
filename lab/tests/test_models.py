"""Schema ``lab``: lookup contents (lab/lookups.py and the spec §2) and the database constraints."""

import datetime as dt
from decimal import Decimal

import pytest
from django.apps import apps
from django.db import IntegrityError, transaction
from django.utils import timezone

from lab import lookups
from lab.models import (
    AnimalSource,
    AnimalStrain,
    BrainArea,
    Hemisphere,
    ModifiedGene,
    Person,
    PhotostimDevice,
    ProbeType,
    ProbeTypeElectrode,
    Rig,
    SkullReference,
    Subject,
    SubjectGeneModification,
    SubjectStrain,
    Surgery,
    SurgeryProcedure,
    VirusInjection,
    VirusSource,
    WaterRestriction,
    Whisker,
)
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
)

pytestmark = pytest.mark.django_db


def rejected(create, *args, **kwargs) -> None:
    """``create(...)`` must fail with an IntegrityError (in a savepoint, so the test goes on)."""
    with pytest.raises(IntegrityError), transaction.atomic():
        create(*args, **kwargs)


# --- lookups ------------------------------------------------------------------------------------


@pytest.mark.parametrize("label", sorted(lookups.ALL))
def test_lookup_rows_are_exactly_those_of_lookups_py(label):
    model = apps.get_model(label)
    rows = lookups.ALL[label]
    assert sorted(model.objects.values_list("name", flat=True)) == sorted(r["name"] for r in rows)
    for row in rows:
        obj = model.objects.get(name=row["name"])
        for field, value in row.items():
            got = getattr(obj, field)
            if isinstance(got, Decimal):
                value = Decimal(value)
            assert got == value, (label, row["name"], field)


# Transcribed from the spec (§2), independently of lab/lookups.py.
SPEC_BRAIN_AREAS = {
    "ALM": "anterior lateral motor cortex",
    "vS1": "vibrissal primary somatosensory cortex",
    "Thalamus": "Thalamus",
    "Medulla": "Medulla",
    "Striatum": "Striatum",
    "Midbrain": "Midbrain",
    "vM1": "vibrissal primary motor cortex",
    "PL": "prelimbic",
    "IL": "infralimbic",
    "ACA": "anterior cingulate",
    "MOB": "main olfactory bulb",
    "RSP": "retrosplenial",
}


def names(model: type) -> set[str]:
    return set(model.objects.values_list("name", flat=True))


def test_brain_areas_match_the_spec():
    assert BrainArea.objects.count() == 12
    for name, description in SPEC_BRAIN_AREAS.items():
        assert BrainArea.objects.get(name=name).description.startswith(description), name
    assert "barrel cortex" in BrainArea.objects.get(name="vS1").description


def test_small_lookups_match_the_spec():
    assert names(AnimalStrain) == {"pl56", "kj18"}
    assert names(AnimalSource) == {
        "Jackson Labs",
        "Allen Institute",
        "Charles River",
        "MMRRC",
        "Taconic",
        "Other",
        "Janelia",
    }
    assert names(VirusSource) == {"Janelia", "UPenn", "Addgene", "UNC", "Other"}
    assert names(SkullReference) == {"Bregma", "Lambda"}
    assert names(Hemisphere) == {"left", "right", "both"}
    assert names(Whisker) == {f"{row}{col}" for row in "BCD" for col in "123"}


def test_photostim_devices_match_the_spec():
    devices = {d.name: d for d in PhotostimDevice.objects.all()}
    assert set(devices) == {"LaserGem473", "LED470", "OBIS470"}
    assert devices["LaserGem473"].excitation_wavelength == Decimal("473.0")
    assert devices["LED470"].excitation_wavelength == Decimal("470.0")
    assert devices["OBIS470"].excitation_wavelength == Decimal("473.0")  # sic, as in the original
    assert devices["LaserGem473"].description == "Laser Quantum Gem 473"
    assert devices["LED470"].description == "Thorlabs M470F3 fiber-coupled LED"
    assert devices["OBIS470"].description == "Coherent OBIS 473nm LX 50mW"


def test_probe_types_match_the_spec():
    assert names(ProbeType) == {
        "silicon_probe",
        "tetrode_array",
        "neuropixels 1.0 - 3A",
        "neuropixels 1.0 - 3B",
        "neuropixels 2.0 - SS",
        "neuropixels 2.0 - MS",
    }
    # §2.1: 960 sites on NP 1.0, 1280 per shank on NP 2.0, 4 shanks on the multi-shank.
    counts = {
        name: ProbeTypeElectrode.objects.filter(probe_type__name=name).count()
        for name in ("neuropixels 1.0 - 3A", "neuropixels 1.0 - 3B")
        + ("neuropixels 2.0 - SS", "neuropixels 2.0 - MS")
    }
    assert counts == {
        "neuropixels 1.0 - 3A": 960,
        "neuropixels 1.0 - 3B": 960,
        "neuropixels 2.0 - SS": 1280,
        "neuropixels 2.0 - MS": 4 * 1280,
    }


def test_lookup_names_are_unique():
    rejected(BrainArea.objects.create, name="ALM")
    rejected(Hemisphere.objects.create, name="left")


# --- constraints --------------------------------------------------------------------------------


def test_subject_sex_is_checked():
    rejected(SubjectFactory, sex="X")
    for sex in ("M", "F", "U"):
        assert SubjectFactory(sex=sex).sex == sex


def test_subject_id_is_unique():
    SubjectFactory(subject_id=412345)
    rejected(SubjectFactory, subject_id=412345)


def test_person_and_rig_names_are_unique():
    PersonFactory(username="daveliu")
    rejected(Person.objects.create, username="daveliu")
    RigFactory(name="RRig")
    rejected(Rig.objects.create, name="RRig")


def test_gene_modification_zygosity_and_type_are_checked():
    subject = SubjectFactory()
    gene = ModifiedGeneFactory(name="Ai32")
    rejected(
        SubjectGeneModification.objects.create,
        subject=subject,
        gene_modification=gene,
        zygosity="Foo",
    )
    rejected(
        SubjectGeneModification.objects.create,
        subject=subject,
        gene_modification=gene,
        type="Knock-out",
    )
    ok = SubjectGeneModification.objects.create(
        subject=subject, gene_modification=gene, zygosity="Het", type="Knock-in"
    )
    assert ok.zygosity == "Het"
    # Defaults are "Unknown", as in the original.
    other = SubjectGeneModification.objects.create(
        subject=subject, gene_modification=ModifiedGeneFactory(name="Sst-Cre")
    )
    assert (other.zygosity, other.type) == ("Unknown", "Unknown")
    # One row per (subject, gene).
    rejected(SubjectGeneModification.objects.create, subject=subject, gene_modification=gene)
    assert ModifiedGene.objects.filter(name="Ai32").count() == 1


def test_subject_strain_is_unique_per_subject():
    subject = SubjectFactory()
    strain = AnimalStrain.objects.get(name="pl56")
    SubjectStrain.objects.create(subject=subject, strain=strain)
    rejected(SubjectStrain.objects.create, subject=subject, strain=strain)


def test_water_restriction_number_is_unique_and_not_empty():
    """§19.13: the "h2o" number names the animal in every file path, so it must be unique."""
    WaterRestrictionFactory(water_restriction_number="dl7")
    rejected(WaterRestrictionFactory, water_restriction_number="dl7")
    rejected(WaterRestrictionFactory, water_restriction_number="")
    rejected(WaterRestrictionFactory, wr_start_weight=Decimal("0"))


def test_one_water_restriction_per_subject():
    wr = WaterRestrictionFactory()
    rejected(
        WaterRestriction.objects.create,
        subject=wr.subject,
        water_restriction_number="other1",
        wr_start_date=dt.date(2018, 1, 1),
        wr_start_weight=Decimal("20"),
    )


def test_surgery_cannot_end_before_it_starts():
    start = timezone.now() - dt.timedelta(hours=3)
    rejected(SurgeryFactory, start_time=start, end_time=start - dt.timedelta(minutes=1))
    same = SurgeryFactory(start_time=start, end_time=start)
    assert same.end_time == same.start_time


def test_surgery_id_is_unique_per_subject():
    surgery = SurgeryFactory(surgery_id=1)
    rejected(SurgeryFactory, subject=surgery.subject, surgery_id=1)
    assert SurgeryFactory(surgery_id=1).surgery_id == 1  # another subject
    assert Surgery.objects.filter(surgery_id=1).count() == 2


def test_virus_and_injection_amounts_are_positive():
    rejected(VirusFactory, titer=Decimal("0"))
    rejected(VirusInjectionFactory, volume=Decimal("0"))
    rejected(VirusInjectionFactory, dilution=Decimal("-1"))
    injection = VirusInjectionFactory()
    rejected(
        VirusInjection.objects.create,
        surgery=injection.surgery,
        injection_id=injection.injection_id,
        virus=injection.virus,
        skull_reference=injection.skull_reference,
        ap_location=0,
        ml_location=0,
        dv_location=0,
        volume=1,
        dilution=1,
    )


def test_procedure_location_is_both_or_neither():
    left = Hemisphere.objects.get(name="left")
    alm = BrainArea.objects.get(name="ALM")
    rejected(SurgeryProcedureFactory, hemisphere=left)
    rejected(SurgeryProcedureFactory, brain_area=alm)
    assert SurgeryProcedureFactory(hemisphere=left, brain_area=alm).brain_area == alm
    assert SurgeryProcedureFactory().hemisphere is None
    assert SurgeryProcedure.objects.count() == 2


def test_complete_genotype_is_derived():
    subject = SubjectFactory()
    SubjectStrain.objects.create(subject=subject, strain=AnimalStrain.objects.get(name="kj18"))
    SubjectGeneModification.objects.create(
        subject=subject,
        gene_modification=ModifiedGeneFactory(name="Vgat-ChR2"),
        zygosity="Hom",
        type="Transgene",
    )
    assert subject.complete_genotype == "kj18; Vgat-ChR2 (Hom, Transgene)"
    assert Subject.objects.get(pk=subject.pk).complete_genotype == subject.complete_genotype
