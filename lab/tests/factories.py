"""factory_boy factories for schema ``lab`` (shared by every app's tests)."""

import datetime as dt
from decimal import Decimal

import factory
from django.utils import timezone

from lab import models


def lookup(model: type, name: str) -> object:
    """A lookup row loaded by the data migrations (they run in the test database too)."""
    return model.objects.get(name=name)


class PersonFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Person
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"person{n}")
    fullname = factory.Faker("name")


class RigFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Rig
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"Rig{n}")
    room = "2w.342"


class SubjectFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Subject

    subject_id = factory.Sequence(lambda n: 400000 + n)
    responsible = factory.SubFactory(PersonFactory)
    cage_number = factory.Sequence(lambda n: 100 + n)
    date_of_birth = dt.date(2017, 11, 1)
    sex = models.Sex.MALE
    source = factory.LazyFunction(lambda: lookup(models.AnimalSource, "Jackson Labs"))


class WaterRestrictionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.WaterRestriction

    subject = factory.SubFactory(SubjectFactory)
    water_restriction_number = factory.Sequence(lambda n: f"tw{n}")
    cage_number = factory.SelfAttribute("subject.cage_number")
    wr_start_date = dt.date(2018, 1, 15)
    wr_start_weight = Decimal("24.500")


class ModifiedGeneFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.ModifiedGene
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"Gene{n}-Cre")


class SerotypeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Serotype
        django_get_or_create = ("name",)

    name = "AAV2/1"


class VirusFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Virus

    virus_id = factory.Sequence(lambda n: 1000 + n)
    name = "AAV-hSyn-ChR2"
    source = factory.LazyFunction(lambda: lookup(models.VirusSource, "Addgene"))
    serotype = factory.SubFactory(SerotypeFactory)
    person = factory.SubFactory(PersonFactory)
    titer = Decimal("1000000000000.0")
    order_date = dt.date(2017, 12, 1)


class SurgeryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Surgery

    subject = factory.SubFactory(SubjectFactory)
    surgery_id = factory.Sequence(lambda n: n + 1)
    person = factory.SubFactory(PersonFactory)
    start_time = factory.LazyFunction(lambda: timezone.now() - dt.timedelta(hours=2))
    end_time = factory.LazyAttribute(lambda o: o.start_time + dt.timedelta(hours=1))
    description = "headbar implant"


class VirusInjectionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.VirusInjection

    surgery = factory.SubFactory(SurgeryFactory)
    injection_id = factory.Sequence(lambda n: n + 1)
    virus = factory.SubFactory(VirusFactory)
    skull_reference = factory.LazyFunction(lambda: lookup(models.SkullReference, "Bregma"))
    ap_location = Decimal("2500.000")
    ml_location = Decimal("1500.000")
    dv_location = Decimal("-800.000")
    volume = Decimal("50.000")
    dilution = Decimal("1.00")


class SurgeryProcedureFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.SurgeryProcedure

    surgery = factory.SubFactory(SurgeryFactory)
    procedure_id = factory.Sequence(lambda n: n + 1)
    skull_reference = factory.LazyFunction(lambda: lookup(models.SkullReference, "Bregma"))
    description = "craniotomy"


class SubjectStrainFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.SubjectStrain

    subject = factory.SubFactory(SubjectFactory)
    strain = factory.LazyFunction(lambda: lookup(models.AnimalStrain, "pl56"))


class SubjectGeneModificationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.SubjectGeneModification

    subject = factory.SubFactory(SubjectFactory)
    gene_modification = factory.SubFactory(ModifiedGeneFactory)
    zygosity = models.Zygosity.HET
    type = models.GeneModificationType.KNOCK_IN


class VirusNoteFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.VirusNote

    virus = factory.SubFactory(VirusFactory)
    note_id = factory.Sequence(lambda n: n + 1)
    note = "aliquoted into 5 µl tubes"
