"""Building ingested sessions with a known answer for the analysis steps, and loop oracles.

A session is written by the behavior and ephys generators (``ephys.tests.factories``), given
selective units and FS/Pyr waveforms (``psth.synthetic``) and ingested through the real
BehaviorIngest and EphysIngest steps. The people's entries (location, recordable region,
depth criteria, quality with good trials) are then added and the sweep queues what they
unlock.

The oracles recompute every step from the spec with loops (``ephys.analysis.reference``) on
inputs read here row by row through the ORM, independently of ``psth.data``.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field
from decimal import Decimal
from types import SimpleNamespace

import numpy as np

from ephys import models as em
from ephys.analysis import reference as ref
from ephys.ingest.synthetic import SyntheticSession
from ephys.tests.factories import SyntheticWorld
from experiment import models as xm
from experiment.ingest.synthetic import GroundTruth
from lab.models import BrainArea, Hemisphere, SkullReference
from psth.synthetic import (
    FS_WIDTH_SAMPLES,
    PYR_WIDTH_SAMPLES,
    add_selective_units,
    set_waveform_widths,
)

PERIODS = {
    "sample": ("sample", 0.0, "delay", 0.0),
    "delay": ("delay", 0.0, "go", 0.0),
    "response": ("go", 0.0, "go", 1.2),
}


def load(blob: bytes | memoryview) -> np.ndarray:
    return np.load(io.BytesIO(bytes(blob)), allow_pickle=False)


@dataclass
class Recording:
    """An ingested session with its generators' truth and the answer built into it."""

    world: SyntheticWorld
    truth: GroundTruth
    ephys: SyntheticSession
    preference: dict[int, int]  # unit id -> +1 contra, -1 ipsi (delay period)
    widths: dict[int, float]  # unit id -> trough-to-peak samples
    hemisphere: str
    extra: dict = field(default_factory=dict)

    @property
    def insertion(self) -> em.ProbeInsertion:
        return em.ProbeInsertion.objects.get(
            session__subject__water_restriction__water_restriction_number=self.world.h2o
        )


def write_recording(
    world: SyntheticWorld,
    run,  # noqa: ANN001 - ephys.tests.factories.command_runner
    *,
    seed: int = 0,
    n_trials: int = 70,
    n_units: int = 14,
    n_spikes: int = 30_000,
    hemisphere: str = "left",
    with_metrics: bool = False,
    photostim: bool = True,
    n_selective: int = 6,
) -> Recording:
    """Behavior and a sorted session of ``world``, shaped, then ingested (behavior and ephys)."""
    rng = np.random.default_rng(1000 + seed)
    truth = world.write_behavior(
        n_trials=n_trials,
        seed=seed + 1,
        photostim=photostim,
        photostim_rate=0.25,
        free_water_rate=0.04,
    )
    run("ingest_behavior")
    s = world.write_ephys(
        truth, n_units=n_units, n_spikes=n_spikes, seed=seed, with_metrics=with_metrics
    )
    ids = s.unit_ids.tolist()
    chosen = rng.choice(len(ids), size=min(n_selective, len(ids)), replace=False)
    preference = {int(ids[i]): (1 if k % 2 == 0 else -1) for k, i in enumerate(chosen)}
    add_selective_units(s, truth, preference, hemisphere=hemisphere, seed=seed)
    widths = {
        int(u): float(FS_WIDTH_SAMPLES if rng.random() < 0.5 else PYR_WIDTH_SAMPLES) for u in ids
    }
    set_waveform_widths(s, widths)
    run("ingest_ephys")
    return Recording(world, truth, s, preference, widths, hemisphere)


def annotate(
    insertion: em.ProbeInsertion,
    *,
    hemisphere: str = "left",
    area: str = "ALM",
    depth_rules: list[tuple[str, float, float]] | None = None,
    good_fraction: float | None = 0.8,
    seed: int = 0,
) -> None:
    """What people type in for an insertion: location, recordable region, depth criteria and
    quality (with a random subset of good trials when ``good_fraction`` is given)."""
    ml = Decimal("-1500.00") if hemisphere == "left" else Decimal("1500.00")
    em.InsertionLocation.objects.create(
        insertion=insertion,
        skull_reference=SkullReference.objects.get(name="Bregma"),
        ap_location=Decimal("2500.00"),
        ml_location=ml,
        depth=Decimal("-1800.00"),
    )
    em.RecordableBrainRegion.objects.create(
        insertion=insertion,
        brain_area=BrainArea.objects.get(name=area),
        hemisphere=Hemisphere.objects.get(name=hemisphere),
    )
    for name, upper, lower in depth_rules or [("ALM", 0.0, 400.0), ("Striatum", 400.0, 5000.0)]:
        em.BrainAreaDepthCriteria.objects.create(
            insertion=insertion,
            brain_area=BrainArea.objects.get(name=name),
            depth_upper=upper,
            depth_lower=lower,
        )
    quality = em.ProbeInsertionQuality.objects.create(insertion=insertion)
    if good_fraction is not None:
        rng = np.random.default_rng(seed)
        trials = list(
            em.InsertionTrialAlignment.objects.filter(insertion=insertion).values_list(
                "trial_id", flat=True
            )
        )
        keep = [t for t in trials if rng.random() < good_fraction]
        for t in keep:  # one by one, as the admin's inline saves them (signals)
            em.GoodTrial.objects.create(quality=quality, trial_id=t)


# ---- the oracle: row-by-row reading and the spec's loops ----------------------------------------
@dataclass
class OracleInputs:
    trial_ids: list[int]
    aligned: dict[int, list[np.ndarray]]  # unit pk -> per-trial spikes (ref_align)
    has_go: list[bool]
    durations: list[float]
    labels: SimpleNamespace
    events: dict[str, list[float]]
    first_go: list[float]
    delay_duration: list[float]
    good: list[bool]
    any_good_listed: bool
    hemisphere: str | None
    stim_regions: bool


def oracle_inputs(insertion: em.ProbeInsertion) -> OracleInputs:
    alignment = list(
        em.InsertionTrialAlignment.objects.filter(insertion=insertion).order_by("start_time")
    )
    starts = np.array([a.start_time for a in alignment])
    go = np.array([math.nan if a.go_cue_time is None else a.go_cue_time for a in alignment])
    aligned = {}
    for unit in em.Unit.objects.filter(insertion=insertion).order_by("pk"):
        train = load(em.UnitSpikes.objects.get(unit=unit).spike_times)
        aligned[unit.pk] = ref.ref_align([train], starts, go)[0]
    labels = SimpleNamespace(
        task=[], task_protocol=[], trial_instruction=[], outcome=[], early_lick=[],
        auto_water=[], free_water=[], stim_event_trial=[], stim_event_brain_area=[],
        stim_event_laterality=[],
    )  # fmt: skip
    events = {name: [] for name in ("sample", "delay", "go", "trialend")}
    delay_duration, durations, first_go = [], [], []
    good_ids = set(
        em.GoodTrial.objects.filter(quality__insertion=insertion).values_list("trial_id", flat=True)
    )
    for t, a in enumerate(alignment):
        trial = xm.SessionTrial.objects.get(pk=a.trial_id)
        durations.append(trial.stop_time - trial.start_time)
        b = xm.BehaviorTrial.objects.get(trial=trial)
        labels.task.append(b.task_protocol.task.name)
        labels.task_protocol.append(b.task_protocol.protocol)
        labels.trial_instruction.append(b.instruction.name)
        labels.outcome.append(b.outcome.name)
        labels.early_lick.append(b.early_lick.name)
        labels.auto_water.append(b.auto_water)
        labels.free_water.append(b.free_water)
        last: dict[str, xm.TrialEvent] = {}
        gos = []
        for ev in xm.TrialEvent.objects.filter(trial=b).order_by("trial_event_id"):
            last[ev.event_type.name] = ev
            if ev.event_type.name == "go":
                gos.append(ev.trial_event_time)
        first_go.append(gos[0] if gos else math.nan)
        for name in events:
            events[name].append(last[name].trial_event_time if name in last else math.nan)
        delay_duration.append(last["delay"].duration if "delay" in last else math.nan)
        for ev in xm.PhotostimEvent.objects.filter(photostim_trial__trial=trial):
            region = xm.PhotostimBrainRegion.objects.filter(photostim=ev.photostim).first()
            labels.stim_event_trial.append(t)
            labels.stim_event_brain_area.append(region.stim_brain_area.name if region else None)
            labels.stim_event_laterality.append(region.stim_laterality if region else None)
    location = em.InsertionLocation.objects.filter(insertion=insertion).first()
    hemisphere = None
    if location is not None and location.ml_location != 0:
        hemisphere = "right" if location.ml_location > 0 else "left"
    return OracleInputs(
        trial_ids=[a.trial_id for a in alignment],
        aligned=aligned,
        has_go=[not math.isnan(g) for g in go],
        durations=durations,
        labels=labels,
        events=events,
        first_go=first_go,
        delay_duration=delay_duration,
        good=[(not good_ids) or a.trial_id in good_ids for a in alignment],
        any_good_listed=bool(good_ids),
        hemisphere=hemisphere,
        stim_regions=xm.PhotostimBrainRegion.objects.filter(
            photostim__session=insertion.session
        ).exists(),
    )


def analysed(insertion: em.ProbeInsertion) -> list[em.Unit]:
    return list(
        em.Unit.objects.filter(insertion=insertion).exclude(quality__name="all").order_by("pk")
    )


def oracle_psth(insertion: em.ProbeInsertion, o: OracleInputs) -> dict[tuple[int, str], tuple]:
    """(unit pk, condition) -> (trial count, rates or None), as UnitPsth.make did per key."""
    membership = ref.ref_condition_membership(o.labels)
    out = {}
    for unit in analysed(insertion):
        for name, member in membership.items():
            if "_stim" in name and "nostim" not in name and not o.stim_regions:
                continue
            trials = [t for t, m in enumerate(member) if m and o.good[t] and o.has_go[t]]
            rates, n = ref.ref_psth(o.aligned[unit.pk], trials)
            out[(unit.pk, name)] = (n, rates)
    return out


def selectivity_trials(o: OracleInputs) -> list[bool]:
    """§8: audio delay, no early lick, hit, no auto/free water, delay 1.2 s, no photostim."""
    stim = set(o.labels.stim_event_trial)
    lab = o.labels
    return [
        lab.task[t] == "audio delay"
        and lab.early_lick[t] == "no early"
        and lab.outcome[t] == "hit"
        and not lab.auto_water[t]
        and not lab.free_water[t]
        and round(o.delay_duration[t], 4) == 1.2
        and t not in stim
        and o.has_go[t]
        for t in range(len(o.trial_ids))
    ]


def oracle_period_selectivity(
    insertion: em.ProbeInsertion, o: OracleInputs
) -> dict[tuple[int, str], tuple[str, float, float, float]]:
    ok = selectivity_trials(o)
    # windows relative to the go cue the spikes are aligned to: the trial's first
    events = {**o.events, "go": o.first_go}
    out = {}
    for unit in analysed(insertion):
        for period, definition in PERIODS.items():
            out[(unit.pk, period)] = ref.ref_period_selectivity(
                o.aligned[unit.pk],
                ok,
                o.labels.trial_instruction,
                o.hemisphere,
                events,
                definition,
            )
    return out
