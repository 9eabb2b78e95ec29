"""Computed steps of the delay-response analyses (spec §4.4, §8, §15), one job per insertion.

Each step is keyed by ``ephys.ProbeInsertion`` and computes all units of the insertion at once
with the vectorized numerics of ``ephys.analysis``; its make *replaces* the insertion's rows
(deletes, then bulk-inserts), so making a key again is always safe. The chain:

    EphysIngest ─┬─ UnitStat ─┬─ DriftMetric          (needs ProbeInsertionQuality)
                 │            └─ UnitPassingCriteria  (needs ClusterMetric rows)
                 ├─ UnitCellType
                 ├─ UnitCoarseBrainLocation           (needs BrainAreaDepthCriteria)
                 ├─ UnitPsth  (also after PhotostimBrainRegion)
                 └─ PeriodSelectivity ── UnitSelectivity   (need InsertionLocation)

``keys_after`` maps a finished EphysIngest key (a SortedOutput) to the insertions of its
session, a PhotostimBrainRegion key to the insertions of the photostim's session, and a key of
an upstream step of this module to the same insertion; the ephys ingest uses the same mapping
to forget these jobs when a re-sort replaces the units (``runner.invalidate`` follows the
chain). Steps whose inputs are typed in by people (locations, depth criteria, quality) have
them in their key source: the sweep queues the key once they exist.

A key queued by a sweep may be picked up while its upstream key is still being made (several
workers): :func:`require_upstream` then waits for the upstream's transaction (its job row is
locked while it is made) or parks the job as *waiting*; the upstream finishing retries it.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from django.db.models import Exists, OuterRef, QuerySet

from ephys import analysis as an
from ephys.analysis.unit_stats import DepthRule, as_nullable, unit_stats
from ephys.models import (
    BrainAreaDepthCriteria,
    CellType,
    ClusterMetric,
    InsertionLocation,
    InsertionTrialAlignment,
    ProbeInsertion,
    ProbeInsertionQuality,
    Unit,
    UnitStat,
)
from ephys.steps import EPHYS_INGEST, insertions_of_output
from experiment.models import BehaviorTrial, Period, Photostim, PhotostimBrainRegion
from lab.models import BrainArea, Hemisphere
from mapsite.core.npy import load_npy, npy_rows
from mapsite.pipeline.models import Job, JobStatus
from mapsite.pipeline.steps import StepWaiting, pipeline_step

from . import data
from .models import (
    DriftMetric,
    PeriodSelectivity,
    Selectivity,
    TrialCondition,
    UnitCellType,
    UnitCoarseBrainLocation,
    UnitPassingCriteria,
    UnitPsth,
    UnitSelectivity,
)

PHOTOSTIM_BRAIN_REGION = "PhotostimBrainRegion"
UNIT_STAT = "UnitStat"
UNIT_CELL_TYPE = "UnitCellType"
DRIFT_METRIC = "DriftMetric"
UNIT_COARSE_BRAIN_LOCATION = "UnitCoarseBrainLocation"
UNIT_PASSING_CRITERIA = "UnitPassingCriteria"
UNIT_PSTH = "UnitPsth"
PERIOD_SELECTIVITY = "PeriodSelectivity"
UNIT_SELECTIVITY = "UnitSelectivity"

#: Every step of this module, upstream first.
STEPS = (
    UNIT_STAT,
    UNIT_CELL_TYPE,
    DRIFT_METRIC,
    UNIT_COARSE_BRAIN_LOCATION,
    UNIT_PASSING_CRITERIA,
    UNIT_PSTH,
    PERIOD_SELECTIVITY,
    UNIT_SELECTIVITY,
)
DELAY_TASK = "audio delay"
BATCH = 2000


# ---- keys --------------------------------------------------------------------------------------
def insertions_after(upstream: str, key_id: int) -> Iterable[int]:
    """The insertions a finished (or forgotten) upstream key concerns."""
    if upstream == EPHYS_INGEST:
        return insertions_of_output(key_id).values_list("pk", flat=True)
    if upstream == PHOTOSTIM_BRAIN_REGION:
        return ProbeInsertion.objects.filter(session__photostims=key_id).values_list(
            "pk", flat=True
        )
    return [key_id]  # a step of this module: keyed by the insertion as well


def _with_units(exclude_all: bool = False) -> Exists:
    units = Unit.objects.filter(insertion=OuterRef("pk"))
    if exclude_all:
        units = units.exclude(quality__name="all")
    return Exists(units)


def _aligned() -> Exists:
    return Exists(InsertionTrialAlignment.objects.filter(insertion=OuterRef("pk")))


def _delay_task() -> Exists:
    return Exists(
        BehaviorTrial.objects.filter(
            trial__session=OuterRef("session"), task_protocol__task__name=DELAY_TASK
        )
    )


def recorded_insertions() -> QuerySet[ProbeInsertion]:
    """Insertions with units and trials aligned to the behavior."""
    return ProbeInsertion.objects.filter(_with_units(), _aligned())


def delay_task_insertions() -> QuerySet[ProbeInsertion]:
    """§8: insertions of delay-response sessions, with analysed units and aligned trials."""
    return ProbeInsertion.objects.filter(_with_units(exclude_all=True), _aligned(), _delay_task())


def insertions_with_analysed_units() -> QuerySet[ProbeInsertion]:
    return ProbeInsertion.objects.filter(_with_units(exclude_all=True))


def insertions_with_quality() -> QuerySet[ProbeInsertion]:
    """Recorded insertions with a ProbeInsertionQuality (MAPClusterMetric's key source)."""
    return recorded_insertions().filter(
        Exists(ProbeInsertionQuality.objects.filter(insertion=OuterRef("pk")))
    )


def insertions_with_depth_criteria() -> QuerySet[ProbeInsertion]:
    return ProbeInsertion.objects.filter(
        _with_units(), Exists(BrainAreaDepthCriteria.objects.filter(insertion=OuterRef("pk")))
    )


def located_delay_task_insertions() -> QuerySet[ProbeInsertion]:
    return delay_task_insertions().filter(
        Exists(InsertionLocation.objects.filter(insertion=OuterRef("pk")))
    )


def require_upstream(step: str, insertion: ProbeInsertion) -> None:
    """Wait until ``step`` has made this insertion's key (StepWaiting if it has not yet)."""
    jobs = Job.objects.filter(step=step, key_id=insertion.pk)
    status = jobs.values_list("status", flat=True).first()
    if status == JobStatus.RUNNING:
        # Being made: its row lock is held until its results commit; wait for that.
        status = jobs.select_for_update().values_list("status", flat=True).first()
    if status != JobStatus.DONE:
        state = "not queued yet" if status is None else status
        raise StepWaiting(f"waits for {step} of this insertion ({state})")


def _selectivities() -> dict[str, Selectivity]:
    return {s.name: s for s in Selectivity.objects.all()}


# ---- UnitStat (§15) -----------------------------------------------------------------------------
@pipeline_step(
    UNIT_STAT,
    key_model=ProbeInsertion,
    key_source=recorded_insertions,
    depends_on=(EPHYS_INGEST,),
    keys_after=insertions_after,
)
def make_unit_stat(insertion: ProbeInsertion) -> None:
    """ISI violations and mean rate of the units that metrics.csv gave none for (§15)."""
    units = list(
        Unit.objects.filter(insertion=insertion, stat__isnull=True)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    if not units:
        return
    trials = data.load_trials(insertion)
    aligned = data.load_aligned(units, trials)
    result = unit_stats(aligned, trials.durations)
    isi, rate = as_nullable(result.isi_violation), as_nullable(result.avg_firing_rate)
    UnitStat.objects.bulk_create(
        [
            UnitStat(unit_id=u, isi_violation=isi[k], avg_firing_rate=rate[k])
            for k, u in enumerate(units)
        ],
        batch_size=BATCH,
    )


# ---- UnitCellType (§15) -------------------------------------------------------------------------
@pipeline_step(
    UNIT_CELL_TYPE,
    key_model=ProbeInsertion,
    key_source=insertions_with_analysed_units,
    depends_on=(EPHYS_INGEST,),
    keys_after=insertions_after,
)
def make_unit_cell_type(insertion: ProbeInsertion) -> None:
    """FS or Pyr from the width of each unit's mean waveform (§15).

    Units whose waveform is unknown (NaN: metrics.csv without mean_waveforms.npy) or shorter
    than four samples get no row.
    """
    UnitCellType.objects.filter(unit__insertion=insertion).delete()
    rows = (
        Unit.objects.filter(insertion=insertion)
        .exclude(quality__name="all")
        .order_by("pk")
        .values_list("pk", "waveform")
    )
    ids, waveforms = [], []
    for pk, blob in rows:
        w = np.asarray(load_npy(blob), dtype=np.float64).ravel() if blob else np.zeros(0)
        if w.size >= 4 and np.all(np.isfinite(w)) and np.ptp(w) > 0:
            ids.append(pk)
            waveforms.append(w)
    if not ids:
        return
    width, kind = an.cell_types(waveforms, insertion.sampling_rate)
    types = {c.name: c for c in CellType.objects.filter(name__in=set(kind.tolist()))}
    UnitCellType.objects.bulk_create(
        [
            UnitCellType(unit_id=u, cell_type=types[kind[k]], waveform_width=float(width[k]))
            for k, u in enumerate(ids)
        ],
        batch_size=BATCH,
    )


# ---- DriftMetric (§15) --------------------------------------------------------------------------
@pipeline_step(
    DRIFT_METRIC,
    key_model=ProbeInsertion,
    key_source=insertions_with_quality,
    depends_on=(UNIT_STAT,),
    keys_after=insertions_after,
)
def make_drift_metric(insertion: ProbeInsertion) -> None:
    """Stability of each unit's trial rates (MAPClusterMetric.DriftMetric, §15).

    Trials: the insertion's good trials if it lists any, else all; a trial without a positive
    trialend event time is left out (its rate is undefined).
    """
    require_upstream(UNIT_STAT, insertion)
    DriftMetric.objects.filter(unit__insertion=insertion).delete()
    units = list(
        Unit.objects.filter(insertion=insertion, stat__isnull=False)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    if not units:
        return
    trials = data.load_trials(insertion)
    trialend = trials.events["trialend"]
    with np.errstate(invalid="ignore"):
        mask = trials.good & np.isfinite(trialend) & (trialend > 0)
    aligned = data.load_aligned(units, trials)
    metric = as_nullable(an.drift_metric(aligned, trialend, mask))
    DriftMetric.objects.bulk_create(
        [DriftMetric(unit_id=u, drift_metric=metric[k]) for k, u in enumerate(units)],
        batch_size=BATCH,
    )


# ---- UnitCoarseBrainLocation (§15) --------------------------------------------------------------
@pipeline_step(
    UNIT_COARSE_BRAIN_LOCATION,
    key_model=ProbeInsertion,
    key_source=insertions_with_depth_criteria,
    depends_on=(EPHYS_INGEST,),
    keys_after=insertions_after,
)
def make_unit_coarse_brain_location(insertion: ProbeInsertion) -> None:
    """The brain area of each unit from its depth and the insertion's depth criteria (§15)."""
    UnitCoarseBrainLocation.objects.filter(unit__insertion=insertion).delete()
    rules = [
        DepthRule(area, upper, lower)
        for area, upper, lower in BrainAreaDepthCriteria.objects.filter(
            insertion=insertion
        ).values_list("brain_area__name", "depth_upper", "depth_lower")
    ]
    units = list(
        Unit.objects.filter(insertion=insertion).order_by("pk").values_list("pk", "unit_posy")
    )
    if not units:
        return
    areas = an.coarse_brain_location(np.array([y for _, y in units]), rules)
    by_name = {a.name: a for a in BrainArea.objects.filter(name__in={r.brain_area for r in rules})}
    side = data.hemisphere_of(insertion)
    hemisphere = Hemisphere.objects.filter(name=side).first() if side else None
    UnitCoarseBrainLocation.objects.bulk_create(
        [
            UnitCoarseBrainLocation(
                unit_id=pk,
                brain_area=by_name[areas[k]] if areas[k] is not None else None,
                hemisphere=hemisphere if areas[k] is not None else None,
            )
            for k, (pk, _) in enumerate(units)
        ],
        batch_size=BATCH,
    )


# ---- UnitPassingCriteria (§4.6) -----------------------------------------------------------------
def _with_cluster_metrics() -> QuerySet[ProbeInsertion]:
    return ProbeInsertion.objects.filter(
        Exists(ClusterMetric.objects.filter(unit__insertion=OuterRef("pk")))
    )


@pipeline_step(
    UNIT_PASSING_CRITERIA,
    key_model=ProbeInsertion,
    key_source=_with_cluster_metrics,
    depends_on=(UNIT_STAT,),
    keys_after=insertions_after,
)
def make_unit_passing_criteria(insertion: ProbeInsertion) -> None:
    """Region-specific quality criteria (§4.6) for units with cluster metrics and a UnitStat.

    A unit with several ClusterMetric epochs is judged on its first (primary-key order).
    """
    require_upstream(UNIT_STAT, insertion)
    UnitPassingCriteria.objects.filter(unit__insertion=insertion).delete()
    metrics: dict[int, tuple] = {}
    for row in (
        ClusterMetric.objects.filter(unit__insertion=insertion, unit__stat__isnull=False)
        .order_by("pk")
        .values_list(
            "unit_id",
            "unit__unit_amp",
            "unit__stat__avg_firing_rate",
            "unit__stat__isi_violation",
            "presence_ratio",
            "amplitude_cutoff",
        )
    ):
        metrics.setdefault(row[0], row[1:])
    if not metrics:
        return
    units = sorted(metrics)
    values = np.array(
        [[np.nan if v is None else v for v in metrics[u]] for u in units], dtype=np.float64
    )
    passed = an.unit_passes_criteria(data.first_recordable_area(insertion), *values.T)
    UnitPassingCriteria.objects.bulk_create(
        [
            UnitPassingCriteria(unit_id=u, criteria_passed=bool(passed[k]))
            for k, u in enumerate(units)
        ],
        batch_size=BATCH,
    )


# ---- UnitPsth (§8) ------------------------------------------------------------------------------
def _conditions(stim: bool) -> list[tuple[TrialCondition, an.TrialCondition]]:
    out = []
    for row in TrialCondition.objects.order_by("pk"):
        if row.includes_stim and not stim:
            continue
        func = row.func.removeprefix("_get_trials_")
        out.append((row, an.TrialCondition(row.name, func, dict(row.args))))
    return out


def _photostim_regions_pending(insertion: ProbeInsertion) -> list[int]:
    """Photostims of the session whose PhotostimBrainRegion may still come (not failed)."""
    located = Photostim.objects.filter(
        session_id=insertion.session_id, locations__isnull=False, brain_region__isnull=True
    ).distinct()
    failed = Job.objects.filter(step=PHOTOSTIM_BRAIN_REGION, status=JobStatus.ERROR).values(
        "key_id"
    )
    return list(located.exclude(pk__in=failed).values_list("photo_stim", flat=True))


@pipeline_step(
    UNIT_PSTH,
    key_model=ProbeInsertion,
    key_source=delay_task_insertions,
    depends_on=(EPHYS_INGEST, PHOTOSTIM_BRAIN_REGION),
    keys_after=insertions_after,
)
def make_unit_psth(insertion: ProbeInsertion) -> None:
    """PSTH of every unit in every trial condition (§8): −3…+3 s around the go cue, 40 ms bins.

    Include-stim conditions only for sessions with a PhotostimBrainRegion; trials restricted to
    the insertion's good trials when it lists any; a condition without trials gives a row with
    ``trial_count`` 0 and no rates.
    """
    pending = _photostim_regions_pending(insertion)
    if pending:
        raise StepWaiting(f"waits for PhotostimBrainRegion of photostim(s) {pending}")
    UnitPsth.objects.filter(unit__insertion=insertion).delete()
    units = data.analysed_units(insertion)
    stim = PhotostimBrainRegion.objects.filter(photostim__session_id=insertion.session_id).exists()
    conditions = _conditions(stim)
    if not units or not conditions:
        return
    trials = data.load_trials(insertion)
    membership = an.condition_membership(trials.labels, [c for _, c in conditions])
    membership &= trials.good[:, None]
    result = an.compute_psths(data.load_aligned(units, trials), membership)
    n_c = len(conditions)
    blobs = npy_rows(result.rates.astype(np.float32).reshape(len(units) * n_c, -1))
    counts = result.trial_count.tolist()
    rows = []
    for k, u in enumerate(units):
        for j, (row, _) in enumerate(conditions):
            n = int(counts[k][j])
            rows.append((u, row.pk, n, blobs[k * n_c + j] if n else None))
    data.write_rows(
        UnitPsth,
        ("unit_id", "trial_condition_id", "trial_count", "rates"),
        ("int8", "int8", "int4", "bytea"),
        rows,
    )


# ---- PeriodSelectivity, UnitSelectivity (§8) ----------------------------------------------------
def periods() -> dict[str, tuple[str, float, str, float]]:
    """The analysis windows of experiment.Period (§3.6), by name."""
    return {
        p.name: (
            p.start_event_type.name,
            p.start_time_shift,
            p.end_event_type.name,
            p.end_time_shift,
        )
        for p in Period.objects.select_related("start_event_type", "end_event_type").order_by("pk")
    }


@pipeline_step(
    PERIOD_SELECTIVITY,
    key_model=ProbeInsertion,
    key_source=located_delay_task_insertions,
    depends_on=(EPHYS_INGEST,),
    keys_after=insertions_after,
)
def make_period_selectivity(insertion: ProbeInsertion) -> None:
    """Ipsi vs contra rate of each unit in each period, Student t-test at p 0.05 (§8).

    Windows: the last event of each period boundary type, relative to the trial's first go
    cue (the one its spikes are aligned to; ``InsertionTrials.period_events``).
    """
    PeriodSelectivity.objects.filter(unit__insertion=insertion).delete()
    hemisphere = data.hemisphere_of(insertion)
    if hemisphere is None:
        raise ValueError("the insertion's ML location is 0: ipsi and contra are undefined")
    units = data.analysed_units(insertion)
    windows_def = periods()
    if not units or not windows_def:
        return
    event_types = {e for p in windows_def.values() for e in (p[0], p[2])}
    trials = data.load_trials(insertion, event_types)
    aligned = data.load_aligned(units, trials)
    mask = an.selectivity_trial_mask(trials.labels, trials.delay_duration, aligned.aligned_to_go)
    windows = an.period_windows(trials.period_events(), windows_def)
    result = an.period_selectivity(
        aligned, mask, trials.labels.trial_instruction, hemisphere, windows
    )
    period_rows = {p.name: p for p in Period.objects.filter(name__in=list(windows_def))}
    sel = _selectivities()
    ipsi, contra = as_nullable(result.ipsi_firing_rate), as_nullable(result.contra_firing_rate)
    n_p = len(result.periods)
    rows = []
    for k, u in enumerate(units):
        for j, name in enumerate(result.periods):
            rows.append(
                (
                    u,
                    period_rows[name].pk,
                    sel[result.selectivity[k, j]].pk,
                    ipsi[k * n_p + j],
                    contra[k * n_p + j],
                    float(result.p_value[k, j]),
                    int(result.n_ipsi[k, j]),
                    int(result.n_contra[k, j]),
                )
            )
    data.write_rows(
        PeriodSelectivity,
        (
            "unit_id",
            "period_id",
            "selectivity_id",
            "ipsi_firing_rate",
            "contra_firing_rate",
            "p_value",
            "ipsi_trials",
            "contra_trials",
        ),
        ("int8", "int8", "int8", "float8", "float8", "float8", "int4", "int4"),
        rows,
    )


@pipeline_step(
    UNIT_SELECTIVITY,
    key_model=ProbeInsertion,
    key_source=located_delay_task_insertions,
    depends_on=(PERIOD_SELECTIVITY,),
    keys_after=insertions_after,
)
def make_unit_selectivity(insertion: ProbeInsertion) -> None:
    """Selectivity of each unit with every period computed (§8; §19.8 not copied)."""
    require_upstream(PERIOD_SELECTIVITY, insertion)
    UnitSelectivity.objects.filter(unit__insertion=insertion).delete()
    names = list(periods())
    col = {n: j for j, n in enumerate(names)}
    table: dict[int, list] = {}
    for unit_id, period, selectivity, ipsi, contra in PeriodSelectivity.objects.filter(
        unit__insertion=insertion
    ).values_list(
        "unit_id", "period__name", "selectivity__name", "ipsi_firing_rate", "contra_firing_rate"
    ):
        if period in col:
            entry = table.setdefault(
                unit_id, [[None] * len(names), np.full((2, len(names)), np.nan)]
            )
            entry[0][col[period]] = selectivity
            entry[1][:, col[period]] = [
                np.nan if ipsi is None else ipsi,
                np.nan if contra is None else contra,
            ]
    units = sorted(u for u, (s, _) in table.items() if all(x is not None for x in s))
    if not units:
        return
    labels = np.array([table[u][0] for u in units], dtype=object)
    rates = np.stack([table[u][1] for u in units])  # (U, 2, P)
    result = an.unit_selectivity(labels, rates[:, 0, :], rates[:, 1, :])
    sel = _selectivities()
    UnitSelectivity.objects.bulk_create(
        [UnitSelectivity(unit_id=u, selectivity=sel[result[k]]) for k, u in enumerate(units)],
        batch_size=BATCH,
    )
