"""Benchmark: vectorized PSTH + period selectivity vs the loop reference, same data, same run.

Run from the repository root:  python bench/bench_psth.py [--units 400 --trials 500 --seed 0]

One synthetic probe insertion (default 400 units × 500 trials, ~11 M spikes) and the 17 trial
conditions of spec §8.  Timed stages, each for both implementations:
  align        — trialize + go-cue-align every spike (vectorized vs per-unit per-trial masks)
  psth         — UnitPsth for all units × 17 conditions
  selectivity  — PeriodSelectivity for all units × 3 periods
The headline ratio is (psth + selectivity) of the loop reference over the vectorized code, both
starting from already aligned spikes; the end-to-end ratio (including alignment) is printed too.
The loop reference PSTH is per unit, per trial np.histogram (then summed per condition); the
faster "concat" variant (one np.histogram per unit and condition, as the original UnitPsth.make
did) is timed and checked as well and its ratio printed — it is the harder baseline.
The results of both implementations are compared and the script exits non-zero if they differ.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ephys.analysis import (  # noqa: E402
    PERIODS,
    align_spikes_to_trials,
    build_csr,
    compute_psths,
    condition_membership,
    period_selectivity,
    period_windows,
    selectivity_trial_mask,
)
from ephys.analysis import reference as ref  # noqa: E402
from ephys.analysis.synthetic import make_session  # noqa: E402


class T:
    """Wall and process-CPU seconds (CPU time is less disturbed by other load on the host)."""

    def __init__(self, wall: float, cpu: float) -> None:
        self.wall, self.cpu = wall, cpu

    def __add__(self, other: T) -> T:
        return T(self.wall + other.wall, self.cpu + other.cpu)


def _timed(fn, *args, **kwargs):
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn(*args, **kwargs)
    return out, T(time.perf_counter() - t0, time.process_time() - c0)


def _median_of(n, fn, *args, **kwargs):
    times, out = [], None
    for _ in range(n):
        out, dt = _timed(fn, *args, **kwargs)
        times.append(dt)
    return out, T(
        float(np.median([t.wall for t in times])), float(np.median([t.cpu for t in times]))
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--units", type=int, default=400)
    ap.add_argument("--trials", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--repeats", type=int, default=3, help="runs of each vectorized stage (median reported)"
    )
    args = ap.parse_args()

    t0 = time.perf_counter()
    s = make_session(args.seed, n_units=args.units, n_trials=args.trials, n_silent_units=1)
    spike_times, unit_offsets = build_csr(s.spike_trains, sort=False)
    membership = condition_membership(s.labels)
    sel_mask = selectivity_trial_mask(s.labels, s.delay_duration)
    windows = period_windows(s.events)
    print(
        f"data: {args.units} units × {args.trials} trials × {membership.shape[1]} conditions, "
        f"{len(spike_times):,} spikes (generated in {time.perf_counter() - t0:.1f} s)"
    )
    print(f"trials per condition: {membership.sum(axis=0).tolist()}")

    # -- vectorized ------------------------------------------------------------------------
    aligned, v_align = _median_of(
        args.repeats,
        align_spikes_to_trials,
        spike_times,
        unit_offsets,
        s.trial_starts,
        s.go_cues,
    )

    def v_psth():
        return compute_psths(aligned, membership)

    def v_sel():
        return period_selectivity(
            aligned, sel_mask, s.labels.trial_instruction, s.hemisphere, windows
        )

    psth, v_psth_t = _median_of(args.repeats, v_psth)
    sel, v_sel_t = _median_of(args.repeats, v_sel)

    # -- loop reference --------------------------------------------------------------------
    ref_lists, r_align = _timed(ref.ref_align, s.spike_trains, s.trial_starts, s.go_cues)
    (r_rates, r_counts), r_psth_t = _timed(
        ref.ref_psth_all, ref_lists, membership, aligned.aligned_to_go
    )
    (c_rates, c_counts), c_psth_t = _timed(
        ref.ref_psth_all_concat, ref_lists, membership, aligned.aligned_to_go
    )
    trial_ok = sel_mask & aligned.aligned_to_go

    def r_sel():
        out = []
        for u in range(args.units):
            out.append(
                [
                    ref.ref_period_selectivity(
                        ref_lists[u],
                        trial_ok,
                        s.labels.trial_instruction,
                        s.hemisphere[u],
                        s.events,
                        PERIODS[p],
                    )
                    for p in sel.periods
                ]
            )
        return out

    r_sel_out, r_sel_t = _timed(r_sel)

    # -- agreement -------------------------------------------------------------------------
    ok_psth = (
        np.array_equal(psth.trial_count, r_counts)
        and np.array_equal(psth.trial_count, c_counts)
        and np.allclose(psth.rates, r_rates, rtol=1e-12, atol=1e-9, equal_nan=True)
        and np.allclose(psth.rates, c_rates, rtol=1e-12, atol=1e-9, equal_nan=True)
    )
    r_label = np.array([[x[0] for x in row] for row in r_sel_out], dtype=object)
    r_num = np.array([[x[1:] for x in row] for row in r_sel_out], dtype=np.float64)
    v_num = np.stack([sel.ipsi_firing_rate, sel.contra_firing_rate, sel.p_value], axis=-1)
    ok_sel = np.array_equal(r_label, sel.selectivity) and np.allclose(
        v_num, r_num, rtol=1e-9, atol=1e-12, equal_nan=True
    )
    ok_align = all(
        np.array_equal(aligned.spikes(u, t), ref_lists[u][t])
        for u in range(0, args.units, max(1, args.units // 40))
        for t in range(args.trials)
    )

    v_core, r_core = v_psth_t + v_sel_t, r_psth_t + r_sel_t
    c_core = c_psth_t + r_sel_t
    print()
    print(f"{'stage':<14}{'vectorized':>12}{'loop ref':>12}{'ratio':>9}{'ratio(CPU)':>12}")
    rows = (
        ("align", v_align, r_align, ""),
        ("psth", v_psth_t, r_psth_t, ""),
        ("selectivity", v_sel_t, r_sel_t, ""),
        ("psth+sel", v_core, r_core, ""),
        ("end-to-end", v_core + v_align, r_core + r_align, ""),
        ("psth (concat)", v_psth_t, c_psth_t, "  <- one np.histogram per (unit, condition)"),
        ("psth+sel (c)", v_core, c_core, ""),
    )
    for name, v, r, note in rows:
        print(
            f"{name:<14}{v.wall:>11.3f}s{r.wall:>11.3f}s{r.wall / v.wall:>8.1f}×"
            f"{r.cpu / v.cpu:>11.1f}×{note}"
        )
    print()
    target = 20.0
    ratio, cpu_ratio = r_core.wall / v_core.wall, r_core.cpu / v_core.cpu
    print(
        f"PSTH + period selectivity: vectorized {v_core.wall:.3f} s, loop reference "
        f"{r_core.wall:.3f} s: ratio {ratio:.1f}× wall, {cpu_ratio:.1f}× CPU time "
        f"(target ≥ {target:.0f}×, judged on CPU time, which other load on the host disturbs "
        f"less: {'met' if cpu_ratio >= target else 'NOT met'})"
    )
    print(
        f"against the faster per-(unit, condition) histogram loop: "
        f"{c_core.wall / v_core.wall:.1f}× (CPU {c_core.cpu / v_core.cpu:.1f}×)"
    )
    selective = {k: int((sel.selectivity == k).sum()) for k in np.unique(sel.selectivity)}
    print(f"period selectivity counts: {selective}")
    print(
        "results agree: "
        f"alignment {'yes' if ok_align else 'NO'}, "
        f"PSTH (rates, trial counts) {'yes' if ok_psth else 'NO'}, "
        f"selectivity (labels, rates, p) {'yes' if ok_sel else 'NO'}"
    )
    return 0 if (ok_psth and ok_sel and ok_align) else 1


if __name__ == "__main__":
    raise SystemExit(main())
