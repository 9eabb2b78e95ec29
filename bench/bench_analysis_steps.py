"""Benchmark: the DB-backed UnitPsth and PeriodSelectivity steps (one job per insertion,
vectorized) vs loop references, same data, same run.

Run from the repository root:  .venv/bin/python bench/bench_analysis_steps.py [--repeats 3]

Uses a PostgreSQL database of its own (default ``mapsite_bench_analysis`` on 127.0.0.1,
created and migrated here; ``--database-url`` picks another), never the test or development
data. Setup (not timed, skipped when the database already holds the session): a synthetic
500-trial Bpod session with photostimulation (so all 17 trial conditions apply) and a matching
sorted session (400 units, 10 M spikes, 80 of them delay-selective) are written, ingested
through BehaviorIngest and EphysIngest, and given a location, a recordable region and a
quality (with good trials).

Timed, each writing its rows to the database and committing:

  vectorized   ``psth.steps.make_unit_psth`` + ``make_period_selectivity`` of the insertion
               (what a worker runs: read trials and spikes, align on read, compute all units
               at once, bulk-insert 6,800 + 1,200 rows); median of ``--repeats`` runs.
  per-insertion loop reference
               the same reads and writes, the numerics by the loop implementations of
               ``ephys.analysis.reference`` (per unit, per trial ``ref_align``; per unit and
               condition ``np.histogram`` as the original ``UnitPsth.make``; per unit and
               period ``scipy.stats.ttest_ind``).
  per-key loop reference (the original's architecture; ``--skip-per-key`` leaves it out)
               one make per key as the DataJoint tables did: per (unit, condition) and per
               (unit, period) fetch the unit's spike train, cut its trials with loops, compute,
               insert the row.

The headline ratio (target ≥ 20×) is per-key loop / vectorized; the per-insertion ratio is
printed too (it shares the database reads and writes, which the vectorization does not
remove). Results of every implementation are compared; the script exits non-zero if they
differ.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _common import setup_django  # noqa: E402 - bench/ is sys.path[0]

DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/mapsite_bench_analysis"
H2O = "ba01"


class T:
    def __init__(self, wall: float, cpu: float) -> None:
        self.wall, self.cpu = wall, cpu

    def __add__(self, other: T) -> T:
        return T(self.wall + other.wall, self.cpu + other.cpu)


def timed(fn, *args):  # noqa: ANN001, ANN201
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn(*args)
    return out, T(time.perf_counter() - t0, time.process_time() - c0)


# ---- setup -------------------------------------------------------------------------------------
def ensure_session(args: argparse.Namespace):  # noqa: ANN201
    from django.db import transaction
    from django.test import override_settings

    from ephys import models as em
    from ephys.tests.factories import SyntheticWorld
    from mapsite.pipeline import runner
    from psth.synthetic import add_selective_units
    from psth.tests.helpers import annotate

    existing = em.ProbeInsertion.objects.filter(
        session__subject__water_restriction__water_restriction_number=H2O
    ).first()
    if existing is not None and existing.units.count() == args.units:
        return existing
    if existing is not None:
        existing.session.delete()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        world = SyntheticWorld(Path(tmp) / "behavior", Path(tmp) / "ephys", h2o=H2O)
        from lab.models import Rig, WaterRestriction

        if not Rig.objects.filter(name=world.rig).exists():
            from lab.tests.factories import RigFactory

            RigFactory(name=world.rig)
        if not WaterRestriction.objects.filter(water_restriction_number=H2O).exists():
            from lab.tests.factories import WaterRestrictionFactory

            WaterRestrictionFactory(water_restriction_number=H2O)
        truth = world.write_behavior(
            n_trials=args.trials, seed=3, photostim=True, photostim_rate=0.3
        )
        s = world.write_ephys(truth, n_units=args.units, n_spikes=args.spikes, seed=3)
        ids = s.unit_ids.tolist()
        add_selective_units(
            s, truth, {u: (1 if k % 2 else -1) for k, u in enumerate(ids[:80])}, hemisphere="left"
        )
        print(f"wrote the session in {time.perf_counter() - t0:.1f} s; ingesting")
        # ingest in this process; the analysis steps are the benchmark's, not queued here
        runner.queue_downstream = lambda step_name, key_id: None
        with override_settings(
            BEHAVIOR_DATA_ROOTS=world.behavior_roots,
            EPHYS_DATA_ROOTS=world.ephys_roots,
            EPHYS_SCAN_SETTLE_SECONDS=0,
        ):
            from ephys.ingest import db_discovery
            from experiment.ingest import discovery

            discovery.scan_behavior_roots()
            for step in ("BehaviorIngest", "PhotostimBrainRegion", "EphysIngest"):
                if step == "EphysIngest":
                    db_discovery.scan_ephys_roots(settle_seconds=0)
                from mapsite.pipeline.models import Job
                from mapsite.pipeline.steps import get_step

                runner.create_jobs(get_step(step))
                for job_id in Job.objects.filter(step=step, status="pending").values_list(
                    "pk", flat=True
                ):
                    status = runner.run_job(job_id)
                    if status != "done":
                        raise SystemExit(f"{step} failed: {Job.objects.get(pk=job_id).message}")
    insertion = em.ProbeInsertion.objects.get(
        session__subject__water_restriction__water_restriction_number=H2O
    )
    with transaction.atomic():
        annotate(insertion, hemisphere="left", good_fraction=0.9, seed=3)
    print(f"setup done in {time.perf_counter() - t0:.1f} s")
    return insertion


# ---- loop references ---------------------------------------------------------------------------
def _npy(blob: bytes | memoryview):  # noqa: ANN202
    import numpy as np

    return np.load(io.BytesIO(bytes(blob)), allow_pickle=False)


def _conditions(insertion):  # noqa: ANN001, ANN202
    from experiment.models import PhotostimBrainRegion
    from psth.models import TrialCondition

    stim = PhotostimBrainRegion.objects.filter(photostim__session=insertion.session).exists()
    return [c for c in TrialCondition.objects.order_by("pk") if stim or not c.includes_stim]


def _reference_inputs(insertion):  # noqa: ANN001, ANN202
    """Trial arrays (the same reads as the steps), the condition and selectivity trials by
    the reference's explicit per-trial rules."""
    import math

    from ephys.analysis import reference as ref
    from psth import data

    trials = data.load_trials(insertion)
    membership = ref.ref_condition_membership(trials.labels)
    has_go = [not math.isnan(g) for g in trials.go_cues]
    good = trials.good.tolist()
    conds = _conditions(insertion)
    cond_trials = {
        c.name: [t for t, m in enumerate(membership[c.name]) if m and good[t] and has_go[t]]
        for c in conds
    }
    lab = trials.labels
    stim = set(lab.stim_event_trial.tolist())
    ok = [
        lab.task[t] == "audio delay"
        and lab.early_lick[t] == "no early"
        and lab.outcome[t] == "hit"
        and not lab.auto_water[t]
        and not lab.free_water[t]
        and round(float(trials.delay_duration[t]), 4) == 1.2
        and t not in stim
        and has_go[t]
        for t in range(trials.n_trials)
    ]
    return trials, conds, cond_trials, ok


def loop_per_insertion(insertion) -> dict:  # noqa: ANN001
    """UnitPsth + PeriodSelectivity rows by the loop implementations, one pass per insertion."""
    import numpy as np
    from django.db import transaction

    from ephys.analysis import reference as ref
    from ephys.models import UnitSpikes
    from mapsite.core.npy import npy_bytes
    from psth import data, steps
    from psth.models import PeriodSelectivity, Selectivity, UnitPsth

    out: dict = {"psth": {}, "sel": {}}
    with transaction.atomic():
        UnitPsth.objects.filter(unit__insertion=insertion).delete()
        PeriodSelectivity.objects.filter(unit__insertion=insertion).delete()
        trials, conds, cond_trials, ok = _reference_inputs(insertion)
        periods = steps.periods()
        period_rows = {p.name: p for p in steps.Period.objects.all()}
        sel = {s.name: s for s in Selectivity.objects.all()}
        events = trials.period_events()
        units = data.analysed_units(insertion)
        spikes = dict(
            UnitSpikes.objects.filter(unit_id__in=units).values_list("unit_id", "spike_times")
        )
        psth_rows, sel_rows = [], []
        for u in units:
            per_trial = ref.ref_align([_npy(spikes[u])], trials.starts, trials.go_cues)[0]
            for c in conds:
                rates, n = ref.ref_psth(per_trial, cond_trials[c.name])
                out["psth"][(u, c.name)] = (n, rates)
                psth_rows.append(
                    UnitPsth(
                        unit_id=u,
                        trial_condition=c,
                        trial_count=n,
                        rates=npy_bytes(rates.astype(np.float32)) if rates is not None else None,
                    )
                )
            for name, definition in periods.items():
                label, ipsi, contra, p = ref.ref_period_selectivity(
                    per_trial, ok, trials.labels.trial_instruction, "left", events, definition
                )
                out["sel"][(u, name)] = (label, ipsi, contra, p)
                sel_rows.append(
                    PeriodSelectivity(
                        unit_id=u,
                        period=period_rows[name],
                        selectivity=sel[label],
                        ipsi_firing_rate=None if np.isnan(ipsi) else ipsi,
                        contra_firing_rate=None if np.isnan(contra) else contra,
                        p_value=p,
                    )
                )
        UnitPsth.objects.bulk_create(psth_rows, batch_size=2000)
        PeriodSelectivity.objects.bulk_create(sel_rows, batch_size=2000)
    return out


def loop_per_key(insertion) -> dict:  # noqa: ANN001
    """One make per key, as the DataJoint tables were populated: per (unit, condition) and
    per (unit, period), fetch the unit's spikes, cut its trials, compute, insert the row."""
    import math

    import numpy as np
    from django.db import transaction

    from ephys.analysis import reference as ref
    from ephys.models import UnitSpikes
    from mapsite.core.npy import npy_bytes
    from psth import data, steps
    from psth.models import PeriodSelectivity, Selectivity, UnitPsth

    out: dict = {"psth": {}, "sel": {}}
    UnitPsth.objects.filter(unit__insertion=insertion).delete()
    PeriodSelectivity.objects.filter(unit__insertion=insertion).delete()
    trials, conds, cond_trials, ok = _reference_inputs(insertion)
    periods = steps.periods()
    period_rows = {p.name: p for p in steps.Period.objects.all()}
    sel = {s.name: s for s in Selectivity.objects.all()}
    events = trials.period_events()
    starts, go = trials.starts, trials.go_cues
    n_t = len(starts)

    def trial_spikes(unit_id: int, wanted: list[int] | None) -> list:
        """The unit's spikes of each wanted trial, relative to its go cue (per trial loop)."""
        train = _npy(UnitSpikes.objects.filter(unit_id=unit_id).values_list(
            "spike_times", flat=True).get())  # fmt: skip
        per_trial = [np.zeros(0)] * n_t
        for t in range(n_t) if wanted is None else wanted:
            end = starts[t + 1] if t + 1 < n_t else math.inf
            seg = train[(train >= starts[t]) & (train < end)]
            per_trial[t] = seg - (starts[t] + (go[t] if not math.isnan(go[t]) else 0.0))
        return per_trial

    selected = [t for t in range(n_t) if ok[t]]
    for u in data.analysed_units(insertion):
        for c in conds:
            with transaction.atomic():
                per_trial = trial_spikes(u, cond_trials[c.name])
                rates, n = ref.ref_psth(per_trial, cond_trials[c.name])
                out["psth"][(u, c.name)] = (n, rates)
                UnitPsth.objects.create(
                    unit_id=u,
                    trial_condition=c,
                    trial_count=n,
                    rates=npy_bytes(rates.astype(np.float32)) if rates is not None else None,
                )
        for name, definition in periods.items():
            with transaction.atomic():
                per_trial = trial_spikes(u, selected)
                label, ipsi, contra, p = ref.ref_period_selectivity(
                    per_trial, ok, trials.labels.trial_instruction, "left", events, definition
                )
                out["sel"][(u, name)] = (label, ipsi, contra, p)
                PeriodSelectivity.objects.create(
                    unit_id=u,
                    period=period_rows[name],
                    selectivity=sel[label],
                    ipsi_firing_rate=None if np.isnan(ipsi) else ipsi,
                    contra_firing_rate=None if np.isnan(contra) else contra,
                    p_value=p,
                )
    return out


# ---- the vectorized steps ----------------------------------------------------------------------
def vectorized(insertion) -> None:  # noqa: ANN001
    from django.db import transaction

    from psth.steps import make_period_selectivity, make_unit_psth

    with transaction.atomic():
        make_unit_psth(insertion)
    with transaction.atomic():
        make_period_selectivity(insertion)


def stored(insertion) -> dict:  # noqa: ANN001
    from psth.models import PeriodSelectivity, UnitPsth

    out: dict = {"psth": {}, "sel": {}}
    for row in UnitPsth.objects.filter(unit__insertion=insertion).select_related("trial_condition"):
        out["psth"][(row.unit_id, row.trial_condition.name)] = (row.trial_count, row.rates_array())
    for row in PeriodSelectivity.objects.filter(unit__insertion=insertion).select_related(
        "period", "selectivity"
    ):
        out["sel"][(row.unit_id, row.period.name)] = (
            row.selectivity.name,
            row.ipsi_firing_rate,
            row.contra_firing_rate,
            row.p_value,
        )
    return out


def agree(got: dict, want: dict) -> bool:
    import math

    import numpy as np

    if got["psth"].keys() != want["psth"].keys() or got["sel"].keys() != want["sel"].keys():
        return False
    for key, (n, rates) in want["psth"].items():
        g_n, g_rates = got["psth"][key]
        if g_n != n or (rates is None) != (g_rates is None):
            return False
        if rates is not None and not np.allclose(g_rates, rates, rtol=1e-6, atol=1e-4):
            return False
    for key, (label, ipsi, contra, p) in want["sel"].items():
        g = got["sel"][key]
        if g[0] != label or not math.isclose(g[3], p, rel_tol=1e-7, abs_tol=1e-12):
            return False
        for a, b in ((g[1], ipsi), (g[2], contra)):
            b = None if b is None or (isinstance(b, float) and math.isnan(b)) else b
            a = None if a is None or (isinstance(a, float) and math.isnan(a)) else a
            if (a is None) != (b is None) or (
                a is not None and not math.isclose(a, b, rel_tol=1e-9)
            ):
                return False
    return True


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--database-url", default=DEFAULT_DB)
    ap.add_argument("--units", type=int, default=400)
    ap.add_argument("--trials", type=int, default=500)
    ap.add_argument("--spikes", type=int, default=10_000_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--skip-per-key", action="store_true", help="leave out the slowest reference")
    args = ap.parse_args()
    setup_django(args.database_url)

    from ephys.models import UnitSpikes
    from psth import data

    insertion = ensure_session(args)
    units = data.analysed_units(insertion)
    n_spikes = sum(
        len(_npy(b))
        for b in UnitSpikes.objects.filter(unit_id__in=units).values_list("spike_times", flat=True)
    )
    conds = _conditions(insertion)
    print(
        f"data: {len(units)} analysed units × {data.load_trials(insertion).n_trials} trials × "
        f"{len(conds)} conditions, {n_spikes:,} spikes"
    )

    runs = []
    for _ in range(args.repeats):
        _, t = timed(vectorized, insertion)
        runs.append(t)
    v = T(statistics.median(r.wall for r in runs), statistics.median(r.cpu for r in runs))
    v_out = stored(insertion)

    per_ins, p_t = timed(loop_per_insertion, insertion)
    ok = agree(v_out, per_ins)
    rows = [("vectorized steps", v, None), ("per-insertion loop", p_t, p_t)]
    if not args.skip_per_key:
        per_key, k_t = timed(loop_per_key, insertion)
        ok = ok and agree(v_out, per_key)
        rows.append(("per-key loop", k_t, k_t))
    vectorized(insertion)  # leave the vectorized rows in the database

    print()
    print(f"{'UnitPsth + PeriodSelectivity':<30}{'wall':>10}{'CPU':>10}{'ratio':>9}{'(CPU)':>9}")
    for name, t, ref_t in rows:
        ratio = f"{t.wall / v.wall:>8.1f}×{t.cpu / v.cpu:>8.1f}×" if ref_t is not None else ""
        print(f"{name:<30}{t.wall:>9.2f}s{t.cpu:>9.2f}s{ratio}")
    print()
    target = 20.0
    headline = rows[-1][1]
    label = rows[-1][0]
    print(
        f"vectorized {v.wall:.2f} s vs {label} {headline.wall:.2f} s: "
        f"{headline.wall / v.wall:.1f}× wall (target ≥ {target:.0f}×: "
        f"{'met' if headline.wall / v.wall >= target else 'NOT met'}); "
        f"per-insertion loop {p_t.wall / v.wall:.1f}×"
    )
    print(f"results agree: {'yes' if ok else 'NO'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
