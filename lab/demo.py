"""Demo data for a fresh site: the lab fixtures of the original's mock script (spec §2.2) and a
few behavior sessions ingested from synthetic Bpod files.

``manage.py load_demo`` runs every step of :data:`DEMO_STEPS` in order, each in its own
transaction. Steps only ever *add* missing rows (``get_or_create``, files not yet ingested), so
running the command again neither duplicates anything nor overwrites what staff have since
edited in the admin. Further steps are added by appending a function to :data:`DEMO_STEPS`.

The behavior sessions go through the real ingest path: seeded synthetic ``.mat`` files are
written into the demo data root (:func:`demo_behavior_root`, under ``var/``), found by the
discovery scan and ingested by BehaviorIngest jobs run in this process; the downstream steps
(PhotostimBrainRegion) follow when the transaction commits. The ingest re-checks every file
against the configured roots, so the demo root must be one of them: ``scripts/run`` sets
``MAP_BEHAVIOR_ROOTS=RRig=<checkout>/var/demo-data/behavior/RRig`` when nothing else is
configured. When it is not configured the step says so and writes nothing: synthetic files are
never written into a real data root.
"""

import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.conf import settings

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


# --- Behavior sessions ------------------------------------------------------------------------

DEMO_BEHAVIOR_RIG = "RRig"


@dataclass(frozen=True)
class DemoBehaviorSession:
    """A synthetic Bpod session of a demo subject (options of ``build_synthetic_session``)."""

    h2o: str
    seed: int
    n_trials: int
    started: datetime  # Info.SessionDate / SessionStartTime_UTC
    options: dict[str, Any] = field(default_factory=dict)

    def build_options(self) -> dict[str, Any]:
        return {
            "h2o": self.h2o,
            "seed": self.seed,
            "n_trials": self.n_trials,
            "session_datetime": self.started,
            **self.options,
        }


# Two days of dl25 (the second with early-delay photostim of left/right/bilateral ALM) and one
# late-delay photostim session of SC022 (its "SC_RecordingRig3" protocol name is what marks
# late-delay sessions, spec §14.1). A few trials of each are skipped by the ingest rules.
DEMO_BEHAVIOR_SESSIONS = [
    DemoBehaviorSession("dl25", 101, 120, datetime(2018, 2, 26, 15, 12, 5, tzinfo=UTC),
                        {"skip_rate": 0.03, "free_water_rate": 0.05}),
    DemoBehaviorSession("dl25", 102, 160, datetime(2018, 2, 27, 14, 48, 31, tzinfo=UTC),
                        {"photostim": True, "photostim_rate": 0.3, "skip_rate": 0.03}),
    DemoBehaviorSession("SC022", 103, 160, datetime(2018, 10, 3, 16, 2, 44, tzinfo=UTC),
                        {"photostim": True, "photostim_period": "late-delay",
                         "photostim_rate": 0.3, "skip_rate": 0.03}),
]  # fmt: skip


def demo_behavior_root() -> Path:
    """Where the demo's synthetic Bpod files live: ``var/demo-data/behavior/RRig``."""
    return Path(settings.VAR_DIR) / "demo-data" / "behavior" / DEMO_BEHAVIOR_RIG


def _configured_demo_root() -> Any:
    """The configured behavior root that is the demo root (of rig RRig), or None."""
    from experiment.ingest import discovery

    wanted = demo_behavior_root().resolve()  # also when it does not exist yet
    for root in discovery.behavior_roots():
        if root.rig == DEMO_BEHAVIOR_RIG and root.path.resolve() == wanted:
            return root
    return None


def _demo_file(root: Path, spec: DemoBehaviorSession) -> tuple[Path, Callable[[], None]]:
    """The session's path ``{root}/{h2o}/{protocol}/Session Data/{file}`` and its writer.

    The writer writes into a temporary directory and moves the file into place, so a scan never
    sees half a file.
    """
    from experiment.ingest.synthetic import build_synthetic_session, write_mat

    session = build_synthetic_session(**spec.build_options())
    folder = root / spec.h2o / session.truth.protocol_name / "Session Data"
    path = folder / session.file_name

    def write() -> None:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=folder) as tmp:
            written = write_mat(Path(tmp) / path.name, {"SessionData": session.session_data})
            shutil.move(written, path)

    return path, write


def load_behavior_sessions() -> StepReport:
    """Synthetic Bpod sessions, ingested through discovery and the BehaviorIngest step."""
    from experiment.ingest import discovery
    from experiment.models import BehaviorFile
    from experiment.steps import BEHAVIOR_INGEST
    from mapsite.pipeline import runner
    from mapsite.pipeline.models import Job, JobStatus
    from mapsite.pipeline.steps import get_step

    report = StepReport("behavior sessions")
    root = _configured_demo_root()
    if root is None:
        report.skipped.append(
            f"all ({demo_behavior_root()} is not a configured behavior data root: set "
            f"MAP_BEHAVIOR_ROOTS={DEMO_BEHAVIOR_RIG}={demo_behavior_root()}, as scripts/run does)"
        )
        return report

    relative_paths = []
    for spec in DEMO_BEHAVIOR_SESSIONS:
        path, write = _demo_file(root.path, spec)
        relative = str(path.relative_to(root.path))
        relative_paths.append(relative)
        ingested = BehaviorFile.objects.filter(
            root=str(root.path), relative_path=relative, session__isnull=False
        ).exists()
        if not path.exists() and not ingested:  # a re-written file would differ (header date)
            write()

    discovery.scan_behavior_roots([root])
    files = list(
        BehaviorFile.objects.filter(root=str(root.path), relative_path__in=relative_paths)
        .select_related("session")
        .order_by("relative_path")
    )
    runner.create_jobs(get_step(BEHAVIOR_INGEST), [f.pk for f in files])
    jobs = Job.objects.filter(step=BEHAVIOR_INGEST, key_id__in=[f.pk for f in files])
    job_of = {job.key_id: job for job in jobs}
    for bf in files:
        job = job_of[bf.pk]
        if job.status == JobStatus.DONE:
            report.existing.append(str(bf.session or bf.file_name))
            continue
        # In this process, whatever the broker settings: the demo shows its sessions at once.
        Job.objects.filter(pk=job.pk, status__in=runner.RUNNABLE + (JobStatus.ERROR,)).update(
            status=JobStatus.PENDING
        )
        runner.run_job(job.pk, worker="load_demo")
        job.refresh_from_db()
        bf.refresh_from_db()
        if job.status == JobStatus.DONE and bf.session is not None:
            report.created.append(f"{bf.session} ({bf.session.trials.count()} trials)")
        else:
            report.skipped.append(f"{bf.file_name} ({job.status}: {job.message})")
    return report


def load_sorted_session() -> StepReport:
    """A synthetic sorted session of dl25's photostim day, ingested, with its analyses
    (``psth.demo``)."""
    from psth.demo import load_sorted_session as load

    return load()


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
    load_behavior_sessions,
    load_sorted_session,
]
