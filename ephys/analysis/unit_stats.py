"""Unit-level derived values (spec §15, §4.6): UnitStat, cell type, drift metric, coarse brain
location and region-specific passing criteria — for all units of an insertion at once.

Nullable results are returned as ``NaN`` (floats) or ``None`` (objects); the DB layer stores
them as SQL NULL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats
from scipy.interpolate import CubicSpline

from .align import AlignedSpikes

__all__ = [
    "BRAIN_AREA_UNIT_RESTRICTIONS",
    "as_nullable",
    "DepthRule",
    "UnitStatResult",
    "cell_types",
    "coarse_brain_location",
    "drift_metric",
    "unit_passes_criteria",
    "unit_stats",
    "waveform_width_ms",
]

ISI_THRESHOLD = 0.002  # s, ISI violation threshold
MIN_ISI = 0.0  # s, duplicate-spike threshold
FS_MAX_WIDTH_MS = 0.4
UPSAMPLE = 100
DRIFT_WINDOW = 6
DRIFT_STEP = 6


def as_nullable(values: np.ndarray) -> list[float | None]:
    """Python floats with ``NaN`` → ``None``, ready for a nullable DB column."""
    return [None if v != v else float(v) for v in np.asarray(values, dtype=np.float64).ravel()]


@dataclass
class UnitStatResult:
    """``(n_units,)`` arrays; ``NaN`` = NULL (unit without any within-trial ISI)."""

    isi_violation: np.ndarray
    avg_firing_rate: np.ndarray
    n_spikes: np.ndarray  # after duplicate removal
    n_violations: np.ndarray


def _per_unit_sum(flags: np.ndarray, unit_spike_offsets: np.ndarray) -> np.ndarray:
    """Sum of ``flags`` over each unit's spike range (safe for empty units)."""
    c = np.zeros(len(flags) + 1, dtype=np.int64)
    np.cumsum(flags, out=c[1:])
    return c[unit_spike_offsets[1:]] - c[unit_spike_offsets[:-1]]


def unit_stats(
    aligned: AlignedSpikes,
    trial_durations: np.ndarray,
    trial_mask: np.ndarray | None = None,
    count_duplicate_isis: bool = False,
) -> UnitStatResult:
    """UnitStat (§15, Allen ``isi_violations``) of every unit from its per-trial spikes.

    Duplicate spikes (within-trial ISI ≤ 0) are removed; ``avg_firing_rate`` = remaining
    spikes / Σ trial durations (stop − start); violations = within-trial ISIs < 2 ms;
    ``isi_violation = violations / (2 · N · 0.002) / avg_firing_rate``.  No within-trial ISI
    at all → both ``NaN`` (NULL).  ``count_duplicate_isis=True`` counts the violations on the
    trains *before* duplicate removal, as the original code did (zero ISIs then count).
    ``trial_mask`` restricts the trials used (default all trials of the alignment).
    """
    n_u, n_t = aligned.n_units, aligned.n_trials
    dur = np.asarray(trial_durations, dtype=np.float64)
    if dur.shape != (n_t,):
        raise ValueError("trial_durations must have one entry per trial")
    tm = np.ones(n_t, dtype=bool) if trial_mask is None else np.asarray(trial_mask, dtype=bool)
    x = aligned.times
    pair = aligned.pair_index()
    spike_in = np.repeat(np.tile(tm, n_u), np.diff(aligned.offsets))
    # adjacent spikes of the same (unit, trial) pair, both in a used trial
    same = (pair[1:] == pair[:-1]) & spike_in[1:]
    isi = np.diff(x)
    dup = same & (isi <= MIN_ISI)
    if count_duplicate_isis:
        viol = same & (isi < ISI_THRESHOLD)
    else:
        viol = same & (isi > MIN_ISI) & (isi < ISI_THRESHOLD)

    unit_spk = aligned.offsets[::n_t] if n_t else np.zeros(n_u + 1, dtype=np.int64)
    # flags on the later spike of each adjacent pair; pad to per-spike arrays
    pad = np.zeros(1, dtype=bool)
    n_isi = _per_unit_sum(np.concatenate([pad, same]), unit_spk)
    n_dup = _per_unit_sum(np.concatenate([pad, dup]), unit_spk)
    n_viol = _per_unit_sum(np.concatenate([pad, viol]), unit_spk)
    n_raw = _per_unit_sum(spike_in, unit_spk)
    n_spk = n_raw - n_dup
    total = dur[tm].sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = n_spk / total
        isi_v = (n_viol / (2.0 * n_spk * (ISI_THRESHOLD - MIN_ISI))) / rate
    none = n_isi == 0
    rate = np.where(none, np.nan, rate)
    isi_v = np.where(none, np.nan, isi_v)
    return UnitStatResult(
        isi_violation=isi_v, avg_firing_rate=rate, n_spikes=n_spk, n_violations=n_viol
    )


def waveform_width_ms(waveforms: np.ndarray, sampling_rate: float | np.ndarray) -> np.ndarray:
    """Peak-to-trough width (ms) of mean waveforms ``(n_units, n_samples)`` (§15 UnitCellType).

    Cubic spline (not-a-knot) through the samples, evaluated on ``n_samples × 100`` evenly
    spaced points; width = |argmax − argmin| / (sampling_rate × 100) s, as the original did.
    """
    w = np.atleast_2d(np.asarray(waveforms, dtype=np.float64))
    n = w.shape[1]
    cs = CubicSpline(np.arange(n), w, axis=1)
    up = cs(np.linspace(0, n - 1, n * UPSAMPLE))
    fs = np.asarray(sampling_rate, dtype=np.float64) * UPSAMPLE
    return np.abs(np.argmax(up, axis=1) - np.argmin(up, axis=1)) / fs * 1000.0


def cell_types(
    waveforms: np.ndarray | Sequence[np.ndarray], sampling_rate: float | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``(width_ms, cell_type)`` per unit: width < 0.4 ms → ``"FS"``, else ``"Pyr"``.

    ``waveforms`` may be a 2-D array or a list of 1-D arrays of differing lengths.
    """
    fs = np.asarray(sampling_rate, dtype=np.float64)
    if isinstance(waveforms, np.ndarray) and waveforms.ndim == 2:
        width = waveform_width_ms(waveforms, fs)
    else:
        wfs = [np.asarray(w, dtype=np.float64) for w in waveforms]
        fs_u = np.broadcast_to(fs, (len(wfs),))
        width = np.zeros(len(wfs))
        lengths = np.array([len(w) for w in wfs])
        for n in np.unique(lengths):  # one spline per waveform length
            idx = np.flatnonzero(lengths == n)
            width[idx] = waveform_width_ms(np.stack([wfs[i] for i in idx]), fs_u[idx])
    width = np.asarray(width, dtype=np.float64).reshape(-1)
    return width, np.where(width < FS_MAX_WIDTH_MS, "FS", "Pyr").astype(object)


def drift_metric(
    aligned: AlignedSpikes, trialend_times: np.ndarray, trial_mask: np.ndarray | None = None
) -> np.ndarray:
    """MAPClusterMetric.DriftMetric (§15) of every unit; ``NaN`` when no trial is used.

    Per used trial (``trial_mask``: the insertion's GoodTrials), rate = spike count / trialend
    event time; moving average (window 6, ``np.convolve`` "same"); every 6th value; Poisson CDF
    of each value with mean = mean trial rate; metric = fraction with CDF > 0.95 or < 0.05.
    """
    n_t = aligned.n_trials
    te = np.asarray(trialend_times, dtype=np.float64)
    if te.shape != (n_t,):
        raise ValueError("trialend_times must have one entry per trial")
    tm = np.ones(n_t, dtype=bool) if trial_mask is None else np.asarray(trial_mask, dtype=bool)
    used = np.flatnonzero(tm)
    out = np.full(aligned.n_units, np.nan)
    if used.size == 0:
        return out
    with np.errstate(invalid="ignore", divide="ignore"):
        rates = aligned.counts()[:, used] / te[used]  # (U, T_used)
    mean_rate = rates.mean(axis=1)
    kernel = np.ones(DRIFT_WINDOW) / DRIFT_WINDOW
    smoothed = np.stack([np.convolve(r, kernel, "same") for r in rates])[:, ::DRIFT_STEP]
    cdf = stats.poisson.cdf(smoothed, mean_rate[:, None])
    return np.logical_or(cdf > 0.95, cdf < 0.05).sum(axis=1) / smoothed.shape[1]


@dataclass(frozen=True)
class DepthRule:
    """One ``BrainAreaDepthCriteria`` row: the area spans ``depth_upper < posy <= depth_lower``."""

    brain_area: str
    depth_upper: float
    depth_lower: float


def coarse_brain_location(
    unit_posy: np.ndarray, rules: Sequence[DepthRule | tuple[str, float, float]]
) -> np.ndarray:
    """UnitCoarseBrainLocation area per unit (``None`` when no rule matches).

    Rules are ordered by ``depth_upper`` and must not overlap (``ValueError``; touching
    intervals are fine); the first rule with ``depth_upper < posy <= depth_lower`` wins.
    The hemisphere comes from the insertion and is attached by the caller.
    """
    rs = sorted(
        (r if isinstance(r, DepthRule) else DepthRule(*r) for r in rules),
        key=lambda r: r.depth_upper,
    )
    y = np.asarray(unit_posy, dtype=np.float64)
    out = np.full(y.shape, None, dtype=object)
    if not rs:
        return out
    upper = np.array([r.depth_upper for r in rs])
    lower = np.array([r.depth_lower for r in rs])
    if np.any(lower[:-1] > upper[1:]):
        raise ValueError("Overlapping depth criteria")
    match = (upper[:, None] < y[None, :]) & (y[None, :] <= lower[:, None])  # (R, U)
    has = match.any(axis=0)
    first = np.argmax(match, axis=0)
    areas = np.array([r.brain_area for r in rs], dtype=object)
    out[has] = areas[first[has]]
    return out


#: §4.6: area → {metric: (op, threshold)}; every condition must hold.
BRAIN_AREA_UNIT_RESTRICTIONS: dict[str, dict[str, tuple[str, float]]] = {
    "Medulla": {
        "unit_amp": (">", 150),
        "avg_firing_rate": (">", 0.2),
        "presence_ratio": (">", 0.9),
        "isi_violation": ("<", 10),
        "amplitude_cutoff": ("<", 0.15),
    },
    "ALM": {
        "unit_amp": (">", 100),
        "avg_firing_rate": (">", 0.2),
        "presence_ratio": (">", 0.95),
        "isi_violation": ("<", 0.1),
        "amplitude_cutoff": ("<", 0.1),
    },
    "Midbrain": {
        "unit_amp": (">", 100),
        "avg_firing_rate": (">", 0.1),
        "presence_ratio": (">", 0.9),
        "isi_violation": ("<", 1),
        "amplitude_cutoff": ("<", 0.08),
    },
    "Thalamus": {
        "unit_amp": (">", 90),
        "avg_firing_rate": (">", 0.1),
        "presence_ratio": (">", 0.9),
        "isi_violation": ("<", 0.05),
        "amplitude_cutoff": ("<", 0.08),
    },
    "Striatum": {
        "unit_amp": (">", 70),
        "avg_firing_rate": (">", 0.1),
        "presence_ratio": (">", 0.9),
        "isi_violation": ("<", 0.5),
        "amplitude_cutoff": ("<", 0.1),
    },
}


def unit_passes_criteria(
    brain_area: str | None,
    unit_amp: np.ndarray,
    avg_firing_rate: np.ndarray,
    presence_ratio: np.ndarray,
    isi_violation: np.ndarray,
    amplitude_cutoff: np.ndarray,
) -> np.ndarray:
    """UnitPassingCriteria per unit (§4.6).

    ``brain_area``: the insertion's first RecordableBrainRegion (the caller picks it in
    primary-key order).  Areas not listed (or ``None``) pass every unit; otherwise all five
    strict comparisons must hold, a NULL (``NaN``) metric failing like in SQL.
    """
    values = {
        "unit_amp": unit_amp,
        "avg_firing_rate": avg_firing_rate,
        "presence_ratio": presence_ratio,
        "isi_violation": isi_violation,
        "amplitude_cutoff": amplitude_cutoff,
    }
    arrays = {k: np.asarray(v, dtype=np.float64) for k, v in values.items()}
    shape = np.broadcast_shapes(*(a.shape for a in arrays.values()))
    crit = BRAIN_AREA_UNIT_RESTRICTIONS.get(brain_area) if brain_area is not None else None
    if crit is None:
        return np.ones(shape, dtype=bool)
    ok = np.ones(shape, dtype=bool)
    for key, (op, thr) in crit.items():
        a = arrays[key]
        ok &= (a > thr) if op == ">" else (a < thr)
    return ok
