"""Demo step: a synthetic sorted session of the demo's dl25 photostim day, ingested, with what
people type in (location, recordable region, depth criteria, quality), so that every analysis
step has its keys. Appended to ``lab.demo.DEMO_STEPS`` (after the behavior sessions).

The sorted output is written into ``var/demo-data/ephys`` (never into a real data root) with
delay-selective units and FS/Pyr waveforms built in (``psth.synthetic``), found by the ephys
discovery and ingested by its EphysIngest job in this process. The ingest re-checks files
against the configured ephys roots: when the demo folder is not one of them (scripts/run
configures only the behavior root), it is made one for the duration of this step only.

The analyses follow the ingest's commit like for any session: queued by the pipeline, run in
this process on the embedded default, by the workers (and the beat's sweeps) otherwise.
"""

from __future__ import annotations

import contextlib
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
from django.conf import settings
from django.test import override_settings

DEMO_H2O = "dl25"
DEMO_SEED = 102  # the seed of the dl25 photostim day in lab.demo.DEMO_BEHAVIOR_SESSIONS
N_UNITS, N_SPIKES = 48, 400_000


def demo_ephys_root() -> Path:
    return Path(settings.VAR_DIR) / "demo-data" / "ephys"


def _behavior_spec():  # noqa: ANN202
    from lab.demo import DEMO_BEHAVIOR_SESSIONS

    return next(s for s in DEMO_BEHAVIOR_SESSIONS if s.h2o == DEMO_H2O and s.seed == DEMO_SEED)


def _roots_with_demo() -> contextlib.AbstractContextManager:
    """The configured ephys roots, plus the demo folder if it is not one of them."""
    from ephys.ingest.db_discovery import ephys_roots

    wanted = demo_ephys_root().resolve()
    if any(r.path.resolve() == wanted for r in ephys_roots()):
        return contextlib.nullcontext()
    return override_settings(EPHYS_DATA_ROOTS=[*settings.EPHYS_DATA_ROOTS, str(wanted)])


def _annotate(insertion) -> list[str]:  # noqa: ANN001
    """What people type in for the insertion (only rows that are missing)."""
    from ephys import models as em
    from lab.models import BrainArea, Hemisphere, SkullReference

    added = []
    alm = BrainArea.objects.get(name="ALM")
    if not em.InsertionLocation.objects.filter(insertion=insertion).exists():
        em.InsertionLocation.objects.create(
            insertion=insertion,
            skull_reference=SkullReference.objects.get(name="Bregma"),
            ap_location=Decimal("2500.00"),
            ml_location=Decimal("-1500.00"),
            depth=Decimal("-1400.00"),
            theta=Decimal("15.00"),
            phi=Decimal("0.00"),
        )
        added.append("location")
    if not em.RecordableBrainRegion.objects.filter(insertion=insertion).exists():
        em.RecordableBrainRegion.objects.create(
            insertion=insertion, brain_area=alm, hemisphere=Hemisphere.objects.get(name="left")
        )
        added.append("recordable region")
    if not em.BrainAreaDepthCriteria.objects.filter(insertion=insertion).exists():
        em.BrainAreaDepthCriteria.objects.create(
            insertion=insertion, brain_area=alm, depth_upper=-10.0, depth_lower=400.0
        )
        em.BrainAreaDepthCriteria.objects.create(
            insertion=insertion,
            brain_area=BrainArea.objects.get(name="Striatum"),
            depth_upper=400.0,
            depth_lower=4000.0,
        )
        added.append("depth criteria")
    if not em.ProbeInsertionQuality.objects.filter(insertion=insertion).exists():
        em.ProbeInsertionQuality.objects.create(insertion=insertion, comment="demo: no drift seen")
        added.append("quality")
    return added


def load_sorted_session():  # noqa: ANN201 - lab.demo.StepReport
    """Synthetic sorted session of dl25's photostim day, ingested; its analyses queued."""
    from ephys import models as em
    from ephys.ingest import db_discovery
    from ephys.ingest.synthetic import BehaviorTrials, make_synthetic_session
    from ephys.steps import EPHYS_INGEST
    from experiment.ingest.synthetic import build_synthetic_session
    from experiment.models import Session
    from lab.demo import StepReport
    from mapsite.pipeline import runner
    from mapsite.pipeline.models import Job, JobStatus
    from mapsite.pipeline.steps import get_step

    from .synthetic import (
        FS_WIDTH_SAMPLES,
        PYR_WIDTH_SAMPLES,
        add_selective_units,
        set_waveform_widths,
    )

    report = StepReport("sorted ephys session")
    spec = _behavior_spec()
    truth = build_synthetic_session(**spec.build_options()).truth
    started = truth.session_datetime_utc
    session = Session.objects.filter(
        subject__water_restriction__water_restriction_number=DEMO_H2O,
        start_time__gte=started - timedelta(seconds=120),
        start_time__lte=started + timedelta(seconds=120),
    ).first()
    if session is None:
        report.skipped.append(
            f"all (the behavior session {DEMO_H2O} {truth.session_datetime_utc:%Y-%m-%d} of the "
            "demo is not ingested: its behavior data root is not configured?)"
        )
        return report
    if em.ProbeInsertion.objects.filter(session=session).exists():
        for insertion in em.ProbeInsertion.objects.filter(session=session):
            added = _annotate(insertion)
            what = f"{insertion}" + (f" (added {', '.join(added)})" if added else "")
            (report.created if added else report.existing).append(what)
        return report

    root = demo_ephys_root()
    when = truth.session_datetime_utc.replace(tzinfo=None)
    if not any((root / DEMO_H2O).glob(f"*{when:%Y%m%d}*")):
        trials = [t for t in truth.trials if not t.skipped]
        behavior = BehaviorTrials.from_lists(
            [t.start_time for t in trials],
            [t.go_cue_time for t in trials],
            [t.bitcode for t in trials],
            [t.trial for t in trials],
        )
        s = make_synthetic_session(
            root, h2o=DEMO_H2O, session_datetime=when, trials=behavior, n_units=N_UNITS,
            n_spikes=N_SPIKES, n_channels=96, seed=7, with_metrics=True, n_empty_labels=2,
        )  # fmt: skip
        ids = s.unit_ids.tolist()
        rng = np.random.default_rng(7)
        chosen = rng.choice(len(ids), size=12, replace=False)
        preference = {int(ids[i]): (1 if k % 2 == 0 else -1) for k, i in enumerate(chosen)}
        add_selective_units(s, truth, preference, hemisphere="left", extra_rate=30.0, seed=7)
        set_waveform_widths(
            s, {u: FS_WIDTH_SAMPLES if rng.random() < 0.3 else PYR_WIDTH_SAMPLES for u in ids}
        )

    with _roots_with_demo():
        roots = [r for r in db_discovery.ephys_roots() if r.path.resolve() == root.resolve()]
        db_discovery.scan_ephys_roots(roots, settle_seconds=0)
        outputs = em.SortedOutput.objects.filter(
            recording__root=str(roots[0].path), superseded_at__isnull=True
        )
        runner.create_jobs(get_step(EPHYS_INGEST), outputs.values_list("pk", flat=True))
        for job in Job.objects.filter(step=EPHYS_INGEST, key_id__in=outputs.values("pk")):
            if job.status == JobStatus.DONE:
                continue
            # In this process, whatever the broker settings: the demo shows its units at once.
            Job.objects.filter(pk=job.pk).update(status=JobStatus.PENDING)
            runner.run_job(job.pk, worker="load_demo")
            job.refresh_from_db()
            if job.status != JobStatus.DONE:
                report.skipped.append(f"ephys ingest ({job.status}: {job.message})")
    for insertion in em.ProbeInsertion.objects.filter(session=session):
        added = _annotate(insertion)
        report.created.append(
            f"{insertion}: {insertion.units.count()} units, {', '.join(added)}; analyses queued"
        )
    return report
