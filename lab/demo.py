"""Demo data for a fresh site: the lab fixtures of the original's mock script (spec §2.2).

``manage.py load_demo`` runs every step of :data:`DEMO_STEPS` in order, each in its own
transaction. Steps only ever *add* missing rows (``get_or_create``), so running the command again
neither duplicates anything nor overwrites what staff have since edited in the admin. Later steps
(e.g. ingesting the real Bpod file of ``dl25``) are added by appending a function to
:data:`DEMO_STEPS`.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from lab.models import (
    AnimalSource,
    ModifiedGene,
    Person,
    Rig,
    Subject,
    SubjectGeneModification,
    WaterRestriction,
)


@dataclass
class StepReport:
    """What one demo step did, for the command to print."""

    step: str
    created: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # with the reason


PEOPLE = [
    ("unknown", "Unknown"),
    ("daveliu", "Dave Liu"),
    ("susu", "Susu Chen"),
    ("tn", "Thinh Nguyen"),
]

ROOM = "2w.334"
RIGS = [
    ("TRig1", "Training rig 1"),
    ("TRig2", "Training rig 2"),
    ("TRig3", "Training rig 3"),
    ("RRig", "Recording rig"),
    ("RRig2", "Recording rig 2 (multi-target licking)"),
    ("RRig3", "Recording rig 3 (multi-target licking)"),
    ("Ephys1", "Recording computer"),
]

GENE_MODIFICATIONS = [
    ("VGAT-Chr2-EYFP Jax", "VGAT"),
    ("PV-ires-Cre X Ai32", "PV"),
]


@dataclass(frozen=True)
class DemoSubject:
    subject_id: int
    water_restriction_number: str
    responsible: str
    sex: str
    date_of_birth: date
    source: str
    cage_number: int
    gene_modification: str | None
    wr_cage_number: int
    wr_start_date: date
    wr_start_weight: Decimal


# Animals of the original mock data; dl25 is the animal of the real Bpod/bitcode files in
# shared/data/map-ephys-real, so its behavior session can be ingested against this subject.
SUBJECTS = [
    DemoSubject(399752, "dl7", "daveliu", "M", date(2017, 8, 3), "Jackson Labs", 145375,
                "VGAT-Chr2-EYFP Jax", 148861, date(2017, 11, 7), Decimal("25")),
    DemoSubject(397853, "dl14", "daveliu", "M", date(2017, 7, 15), "Allen Institute", 144545,
                "PV-ires-Cre X Ai32", 149595, date(2017, 11, 27), Decimal("24.1")),
    DemoSubject(407512, "dl24", "daveliu", "M", date(2017, 10, 13), "Jackson Labs", 151629,
                "VGAT-Chr2-EYFP Jax", 151793, date(2018, 1, 22), Decimal("26")),
    DemoSubject(407513, "dl25", "daveliu", "M", date(2017, 10, 13), "Jackson Labs", 148636,
                "VGAT-Chr2-EYFP Jax", 151794, date(2018, 1, 22), Decimal("25.5")),
    DemoSubject(888888, "SC022", "susu", "M", date(2018, 8, 6), "Jackson Labs", 888888,
                None, 888888, date(2018, 9, 30), Decimal("21")),
]  # fmt: skip


def load_people() -> StepReport:
    report = StepReport("people")
    for username, fullname in PEOPLE:
        _, created = Person.objects.get_or_create(
            username=username, defaults={"fullname": fullname}
        )
        (report.created if created else report.existing).append(username)
    return report


def load_rigs() -> StepReport:
    report = StepReport("rigs")
    for name, description in RIGS:
        _, created = Rig.objects.get_or_create(
            name=name, defaults={"room": ROOM, "description": description}
        )
        (report.created if created else report.existing).append(name)
    return report


def load_gene_modifications() -> StepReport:
    report = StepReport("gene modifications")
    for name, description in GENE_MODIFICATIONS:
        _, created = ModifiedGene.objects.get_or_create(
            name=name, defaults={"description": description}
        )
        (report.created if created else report.existing).append(name)
    return report


def load_subjects() -> StepReport:
    """Subjects with their water restriction ("h2o") numbers, the key every data file uses."""
    report = StepReport("subjects")
    for spec in SUBJECTS:
        label = f"{spec.subject_id}/{spec.water_restriction_number}"
        taken = (
            WaterRestriction.objects.filter(water_restriction_number=spec.water_restriction_number)
            .exclude(subject__subject_id=spec.subject_id)
            .first()
        )
        if taken is not None:
            report.skipped.append(f"{label} (h2o number already used by {taken.subject})")
            continue
        subject, created = Subject.objects.get_or_create(
            subject_id=spec.subject_id,
            defaults={
                "responsible": Person.objects.filter(username=spec.responsible).first(),
                "sex": spec.sex,
                "date_of_birth": spec.date_of_birth,
                "source": AnimalSource.objects.filter(name__iexact=spec.source).first(),
                "cage_number": spec.cage_number,
            },
        )
        if spec.gene_modification:
            gene = ModifiedGene.objects.filter(name=spec.gene_modification).first()
            if gene is not None:
                SubjectGeneModification.objects.get_or_create(
                    subject=subject, gene_modification=gene
                )
        _, wr_created = WaterRestriction.objects.get_or_create(
            subject=subject,
            defaults={
                "water_restriction_number": spec.water_restriction_number,
                "cage_number": spec.wr_cage_number,
                "wr_start_date": spec.wr_start_date,
                "wr_start_weight": spec.wr_start_weight,
            },
        )
        (report.created if created or wr_created else report.existing).append(label)
    return report


DemoStep = Callable[[], StepReport]

# The lab fixtures alone (fast; the ``demo_lab`` pytest fixture loads these).
LAB_STEPS: list[DemoStep] = [
    load_people,
    load_rigs,
    load_gene_modifications,
    load_subjects,
]

# Run in this order by ``manage.py load_demo``; append further steps (e.g. ingests) here.
DEMO_STEPS: list[DemoStep] = [
    *LAB_STEPS,
]
