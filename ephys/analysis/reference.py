"""Straightforward loop implementations written from the spec: the oracles of the tests and the
baseline of ``bench/bench_psth.py``.

They deliberately share no code with the vectorized modules (only the bin-edge constants and
the selectivity labels, which are definitions): per unit, per trial, ``np.histogram``, explicit
masks and ``scipy.stats.ttest_ind`` per unit.  Slow by design; do not use in production paths.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence

import numpy as np
from scipy import stats
from scipy.interpolate import CubicSpline

__all__ = [
    "ref_align",
    "ref_cd_projected_psth",
    "ref_cell_type",
    "ref_coarse_brain_location",
    "ref_coding_direction",
    "ref_condition_membership",
    "ref_drift_metric",
    "ref_passes_criteria",
    "ref_period_selectivity",
    "ref_psth",
    "ref_psth_all",
    "ref_psth_all_concat",
    "ref_unit_psth_per_trial",
    "ref_unit_selectivity",
    "ref_unit_stat",
]

XMIN, XMAX, BINSIZE = -3.0, 3.0, 0.04


def ref_edges() -> np.ndarray:
    return np.linspace(XMIN, XMAX, 151)


# -- alignment ------------------------------------------------------------------------------
def ref_align(
    spike_trains: Sequence[np.ndarray], trial_starts: np.ndarray, go_cues: np.ndarray
) -> list[list[np.ndarray]]:
    """``out[unit][trial]``: spikes in [start_t, start_{t+1}) (last trial: all later) minus
    (start_t + go_t), or minus start_t only when the trial has no go cue."""
    n_t = len(trial_starts)
    out = []
    for train in spike_trains:
        s = np.sort(np.asarray(train, dtype=np.float64))
        per_trial = []
        for t in range(n_t):
            start = trial_starts[t]
            end = trial_starts[t + 1] if t + 1 < n_t else math.inf
            seg = s[(s >= start) & (s < end)]
            go = go_cues[t]
            origin = start + go if not math.isnan(go) else start + 0.0
            per_trial.append(seg - origin)
        out.append(per_trial)
    return out


# -- PSTH -----------------------------------------------------------------------------------
def ref_psth(
    trial_spikes: Sequence[np.ndarray], trials: Sequence[int], edges: np.ndarray | None = None
) -> tuple[np.ndarray | None, int]:
    """One unit, one trial set: ``(rates or None, n_trials)`` as UnitPsth.make did."""
    edges = ref_edges() if edges is None else edges
    spikes = [trial_spikes[t] for t in trials]
    if len(spikes) == 0:
        return None, 0
    counts, _ = np.histogram(np.concatenate(spikes), bins=edges)
    binsize = (edges[-1] - edges[0]) / (len(edges) - 1)
    return counts / len(spikes) / binsize, len(spikes)


def ref_psth_all(
    aligned_lists: Sequence[Sequence[np.ndarray]],
    membership: np.ndarray,
    has_go: Sequence[bool],
    edges: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """All units × conditions, per unit and per trial ``np.histogram``: ``(rates, trial_count)``.

    ``membership``: boolean ``(n_trials, n_conditions)``; trials without go cue are skipped.
    Each trial's histogram is computed once and summed over the trials of every condition.
    """
    edges = ref_edges() if edges is None else edges
    binsize = (edges[-1] - edges[0]) / (len(edges) - 1)
    memb = np.asarray(membership, dtype=bool)
    n_u, n_t, n_c = len(aligned_lists), memb.shape[0], memb.shape[1]
    cond_trials = [[t for t in range(n_t) if memb[t, c] and has_go[t]] for c in range(n_c)]
    used = sorted({t for trials in cond_trials for t in trials})
    rates = np.full((n_u, n_c, len(edges) - 1), np.nan)
    counts = np.zeros((n_u, n_c), dtype=np.int64)
    for u in range(n_u):
        hist = {t: np.histogram(aligned_lists[u][t], bins=edges)[0] for t in used}
        for c in range(n_c):
            trials = cond_trials[c]
            counts[u, c] = len(trials)
            if trials:
                total = np.zeros(len(edges) - 1, dtype=np.int64)
                for t in trials:
                    total += hist[t]
                rates[u, c] = total / len(trials) / binsize
    return rates, counts


def ref_psth_all_concat(
    aligned_lists: Sequence[Sequence[np.ndarray]],
    membership: np.ndarray,
    has_go: Sequence[bool],
    edges: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Same result, the original ``UnitPsth.make`` way: per unit and condition, concatenate the
    condition's trial spikes and call ``np.histogram`` once (:func:`ref_psth`)."""
    edges = ref_edges() if edges is None else edges
    memb = np.asarray(membership, dtype=bool)
    n_u, n_c = len(aligned_lists), memb.shape[1]
    rates = np.full((n_u, n_c, len(edges) - 1), np.nan)
    counts = np.zeros((n_u, n_c), dtype=np.int64)
    cond_trials = [
        [t for t in range(memb.shape[0]) if memb[t, c] and has_go[t]] for c in range(n_c)
    ]
    for u in range(n_u):
        for c in range(n_c):
            r, n = ref_psth(aligned_lists[u], cond_trials[c], edges)
            counts[u, c] = n
            if r is not None:
                rates[u, c] = r
    return rates, counts


def ref_unit_psth_per_trial(
    trial_spikes: Sequence[np.ndarray], trials: Sequence[int], edges: np.ndarray | None = None
) -> np.ndarray:
    """``(n_trials, n_bins)`` per-trial rates of one unit (per-trial ``np.histogram``)."""
    edges = ref_edges() if edges is None else edges
    binsize = (edges[-1] - edges[0]) / (len(edges) - 1)
    return np.vstack([np.histogram(trial_spikes[t], bins=edges)[0] / binsize for t in trials])


# -- trial conditions -----------------------------------------------------------------------
def ref_condition_membership(labels) -> dict[str, list[bool]]:
    """The 17 conditions of §8, evaluated trial by trial with explicit rules."""
    n = len(labels.task)
    events: dict[int, list[tuple[object, object]]] = {}
    for t, area, lat in zip(
        labels.stim_event_trial,
        labels.stim_event_brain_area,
        labels.stim_event_laterality,
        strict=True,
    ):
        events.setdefault(int(t), []).append((area, lat))
    out: dict[str, list[bool]] = {}

    def add(name: str, value: bool) -> None:
        out.setdefault(name, []).append(bool(value))

    for t in range(n):
        base = (
            labels.task[t] == "audio delay"
            and labels.task_protocol[t] == 1
            and not labels.auto_water[t]
            and not labels.free_water[t]
            and labels.early_lick[t] == "no early"
        )
        any_stim = t in events
        outcome, instr = labels.outcome[t], labels.trial_instruction[t]
        add("good_noearlylick_hit", base and outcome == "hit" and not any_stim)
        for side in ("left", "right"):
            add(
                f"good_noearlylick_{side}_hit",
                base and outcome == "hit" and instr == side and not any_stim,
            )
        for side in ("left", "right"):
            add(
                f"good_noearlylick_{side}_miss",
                base and outcome == "miss" and instr == side and not any_stim,
            )
        add("all_noearlylick_nostim", base and outcome != "ignore" and not any_stim)
        for side in ("left", "right"):
            add(
                f"all_noearlylick_nostim_{side}",
                base and outcome != "ignore" and instr == side and not any_stim,
            )
        for lat in ("left", "right", "both"):
            stim = any(
                area is not None and str(area).lower() == "alm" and la == lat
                for area, la in events.get(t, [])
            )
            add(f"all_noearlylick_{lat}_alm_stim", base and outcome != "ignore" and stim)
            for side in ("left", "right"):
                add(
                    f"all_noearlylick_{lat}_alm_stim_{side}",
                    base and outcome != "ignore" and stim and instr == side,
                )
    return out


# -- selectivity ----------------------------------------------------------------------------
def ref_period_selectivity(
    trial_spikes: Sequence[np.ndarray],
    trial_ok: Sequence[bool],
    instruction: Sequence[str],
    hemisphere: str,
    event_times: Mapping[str, Sequence[float]],
    period: tuple[str, float, str, float],
    alpha: float = 0.05,
) -> tuple[str, float, float, float]:
    """One unit, one period: ``(selectivity, ipsi_rate, contra_rate, p_value)``."""
    e0, s0, e1, s1 = period
    freq_i, freq_c = [], []
    for t, spikes in enumerate(trial_spikes):
        if not trial_ok[t]:
            continue
        go = event_times["go"][t]
        start = event_times[e0][t] + s0 - go
        stop = event_times[e1][t] + s1 - go
        if not (math.isfinite(start) and math.isfinite(stop)):
            continue
        n = int(np.logical_and(spikes >= start, spikes < stop).sum())
        rate = n / (stop - start)
        if instruction[t] == hemisphere:
            freq_i.append(rate)
        else:
            freq_c.append(rate)
    if not freq_i and not freq_c:  # no trial: the table defaults
        return "non-selective", 0.0, 0.0, 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, p = stats.ttest_ind(freq_i, freq_c, equal_var=True)
        mi = float(np.average(freq_i)) if freq_i else math.nan
        mc = float(np.average(freq_c)) if freq_c else math.nan
    p = 1.0 if np.isnan(p) else float(p)
    if p > alpha:
        return "non-selective", mi, mc, p
    return ("ipsi-selective" if mi > mc else "contra-selective"), mi, mc, p


def ref_unit_selectivity(
    period_sel: Sequence[str], ipsi: Sequence[float], contra: Sequence[float]
) -> str:
    """Non-selective if all periods are; else compare means over the selective periods."""
    chosen = [k for k, s in enumerate(period_sel) if s != "non-selective"]
    if not chosen:
        return "non-selective"
    mi = sum(ipsi[k] for k in chosen) / len(chosen)
    mc = sum(contra[k] for k in chosen) / len(chosen)
    return "ipsi-selective" if mi > mc else "contra-selective"


def ref_coding_direction(
    contra_psths: Sequence[tuple[np.ndarray, np.ndarray]],
    ipsi_psths: Sequence[tuple[np.ndarray, np.ndarray]],
    period: tuple[float, float],
) -> np.ndarray:
    p0, p1 = period
    c = [r[(e >= p0) & (e < p1)].mean() for r, e in contra_psths]
    i = [r[(e >= p0) & (e < p1)].mean() for r, e in ipsi_psths]
    v = np.array(c) - np.array(i)
    return v / math.sqrt(sum(x * x for x in v))


def ref_cd_projected_psth(
    aligned_lists: Sequence[Sequence[np.ndarray]],
    contra_trials: Sequence[int],
    ipsi_trials: Sequence[int],
    period: tuple[float, float],
):
    edges = ref_edges()
    time = edges[1:]
    c_tr = [ref_unit_psth_per_trial(u, contra_trials, edges) for u in aligned_lists]
    i_tr = [ref_unit_psth_per_trial(u, ipsi_trials, edges) for u in aligned_lists]
    cd = ref_coding_direction(
        [(p.mean(axis=0), time) for p in c_tr], [(p.mean(axis=0), time) for p in i_tr], period
    )
    proj_c = np.vstack([np.dot(tu, cd) for tu in np.dstack(c_tr)])
    proj_i = np.vstack([np.dot(tu, cd) for tu in np.dstack(i_tr)])
    return cd, proj_c, proj_i, time


# -- unit stats -----------------------------------------------------------------------------
def ref_unit_stat(
    trial_spikes: Sequence[np.ndarray],
    trial_durations: Sequence[float],
    count_duplicate_isis: bool = False,
) -> tuple[float | None, float | None]:
    """``(isi_violation, avg_firing_rate)`` of one unit, ``(None, None)`` without any ISI."""
    raw_isis = [d for s in trial_spikes for d in np.diff(s)]
    if not raw_isis:
        return None, None
    cleaned = []
    for s in trial_spikes:
        dup = np.where(np.diff(s) <= 0.0)[0]
        cleaned.append(np.delete(s, dup + 1))
    n = sum(len(s) for s in cleaned)
    rate = n / float(sum(trial_durations))
    if count_duplicate_isis:
        viol = sum(1 for d in raw_isis if d < 0.002)
    else:
        viol = sum(1 for s in cleaned for d in np.diff(s) if d < 0.002)
    return (viol / (2 * n * 0.002)) / rate, rate


def ref_cell_type(waveform: np.ndarray, fs: float) -> tuple[float, str]:
    cs = CubicSpline(range(len(waveform)), waveform)
    up = cs(np.linspace(0, len(waveform) - 1, len(waveform) * 100))
    width = abs(np.argmax(up) / (fs * 100) - np.argmin(up) / (fs * 100)) * 1000
    return width, ("FS" if width < 0.4 else "Pyr")


def ref_drift_metric(trial_spikes: Sequence[np.ndarray], trialend: Sequence[float]) -> float:
    rates = np.array([len(s) for s in trial_spikes]) / np.asarray(trialend, dtype=float)
    mean = np.mean(rates)
    sm = np.convolve(rates, np.ones(6) / 6, "same")[::6]
    cdf = stats.poisson.cdf(sm, mean)
    return float(np.logical_or(cdf > 0.95, cdf < 0.05).sum() / len(cdf))


def ref_coarse_brain_location(posy: float, rules: Sequence[tuple[str, float, float]]) -> str | None:
    rules = sorted(rules, key=lambda r: r[1])
    for a, b in zip(rules, rules[1:], strict=False):
        if a[2] > b[1]:
            raise ValueError("Overlapping depth criteria")
    for area, upper, lower in rules:
        if upper < posy <= lower:
            return area
    return None


def ref_passes_criteria(brain_area: str | None, m: Mapping[str, float]) -> bool:
    if brain_area == "Medulla":
        return (
            m["unit_amp"] > 150
            and m["avg_firing_rate"] > 0.2
            and m["presence_ratio"] > 0.9
            and m["isi_violation"] < 10
            and m["amplitude_cutoff"] < 0.15
        )
    if brain_area == "ALM":
        return (
            m["unit_amp"] > 100
            and m["avg_firing_rate"] > 0.2
            and m["presence_ratio"] > 0.95
            and m["isi_violation"] < 0.1
            and m["amplitude_cutoff"] < 0.1
        )
    if brain_area == "Midbrain":
        return (
            m["unit_amp"] > 100
            and m["avg_firing_rate"] > 0.1
            and m["presence_ratio"] > 0.9
            and m["isi_violation"] < 1
            and m["amplitude_cutoff"] < 0.08
        )
    if brain_area == "Thalamus":
        return (
            m["unit_amp"] > 90
            and m["avg_firing_rate"] > 0.1
            and m["presence_ratio"] > 0.9
            and m["isi_violation"] < 0.05
            and m["amplitude_cutoff"] < 0.08
        )
    if brain_area == "Striatum":
        return (
            m["unit_amp"] > 70
            and m["avg_firing_rate"] > 0.1
            and m["presence_ratio"] > 0.9
            and m["isi_violation"] < 0.5
            and m["amplitude_cutoff"] < 0.1
        )
    return True
