"""Period and unit selectivity, coding direction (spec §3.6, §8), vectorized over units.

Period selectivity of a unit for a period: over the selectivity trials
(:func:`selectivity_trial_mask`), the per-trial rate is the spike count in the window
``[start_event + start_shift, end_event + end_shift)`` (relative to the go cue) divided by the
window length.  Trials whose instruction equals the unit's hemisphere are "ipsi", all others
"contra".  Two-sample Student t-test with equal variances; ``NaN`` p → 1; ``p > alpha`` →
non-selective, else ipsi-selective if mean ipsi > mean contra, otherwise contra-selective.

Unit selectivity: non-selective if every period is; otherwise ipsi vs contra mean rates are
compared over the *selective* periods only (not the §19.8 bug, which averaged all periods).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import special

from .align import AlignedSpikes
from .psth import per_trial_psth
from .trial_conditions import TrialLabels

__all__ = [
    "NON_SELECTIVE",
    "PERIODS",
    "PeriodSelectivityResult",
    "cd_projected_psth",
    "coding_direction",
    "contra_ipsi_condition_names",
    "hemisphere_from_ml",
    "period_selectivity",
    "period_windows",
    "selectivity_trial_mask",
    "student_ttest",
    "unit_selectivity",
]

_SEARCH_CHUNK = 1 << 18  # lower-bound searches handled per vector step

CONTRA = "contra-selective"
IPSI = "ipsi-selective"
NON_SELECTIVE = "non-selective"
ALPHA = 0.05

#: experiment.Period (§3.6): name → (start event, start shift, end event, end shift)
PERIODS: dict[str, tuple[str, float, str, float]] = {
    "sample": ("sample", 0.0, "delay", 0.0),
    "delay": ("delay", 0.0, "go", 0.0),
    "response": ("go", 0.0, "go", 1.2),
}

#: Coding-direction window used by the reports (last 400 ms before the go cue)
CD_PERIOD = (-0.4, 0.0)


def hemisphere_from_ml(ml_location: float | np.ndarray) -> np.ndarray:
    """Hemisphere of an insertion from its ML coordinate: ``> 0`` right, ``< 0`` left.

    ``ml == 0`` (or NaN) is ambiguous and raises ``ValueError``.
    """
    ml = np.asarray(ml_location, dtype=np.float64)
    if np.any(~(ml > 0) & ~(ml < 0)):
        raise ValueError("hemisphere is ambiguous for ml_location == 0 or NaN")
    return np.where(ml > 0, "right", "left").astype(object)


def selectivity_trial_mask(
    labels: TrialLabels, delay_duration: np.ndarray, aligned_to_go: np.ndarray | None = None
) -> np.ndarray:
    """Trials used by period selectivity (§8).

    "audio delay", no early lick, hit, no auto/free water, delay event duration 1.2 s (compared
    at the stored 4-decimal precision), no photostim event; optionally only go-aligned trials.
    """
    dd = np.asarray(delay_duration, dtype=np.float64)
    mask = (
        (labels.task == "audio delay")
        & (labels.early_lick == "no early")
        & (labels.outcome == "hit")
        & ~labels.auto_water.astype(bool)
        & ~labels.free_water.astype(bool)
        & (np.round(dd, 4) == 1.2)
        & ~labels.has_photostim()
    )
    mask = np.asarray(mask, dtype=bool)
    if aligned_to_go is not None:
        mask &= np.asarray(aligned_to_go, dtype=bool)
    return mask


def period_windows(
    event_times: Mapping[str, np.ndarray],
    periods: Mapping[str, tuple[str, float, str, float]] = PERIODS,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per-trial windows ``(lo, hi)`` relative to the go cue for every period.

    ``event_times``: event type → per-trial time relative to the trial start (``NaN`` where the
    trial lacks it); must contain ``"go"``.  With several events of a type in a trial, pass the
    last one (the original looked events up in a dict keyed by trial).
    """
    go = np.asarray(event_times["go"], dtype=np.float64)
    out = {}
    for name, (e0, s0, e1, s1) in periods.items():
        lo = np.asarray(event_times[e0], dtype=np.float64) + s0 - go
        hi = np.asarray(event_times[e1], dtype=np.float64) + s1 - go
        out[name] = (lo, hi)
    return out


def student_ttest(a: np.ndarray, a_mask: np.ndarray, b_mask: np.ndarray):
    """Row-wise two-sample Student t-test (equal variances) of ``a[:, a_mask]`` vs ``a[:, b_mask]``.

    ``a``: ``(n_rows, n_cols)``; masks are ``(n_rows, n_cols)`` booleans.  Returns
    ``(t, p, mean_a, mean_b)``; ``NaN`` where undefined (fewer than 2 values in total, …),
    like ``scipy.stats.ttest_ind``.
    """
    am = np.asarray(a_mask, dtype=bool)
    bm = np.asarray(b_mask, dtype=bool)
    na = am.sum(axis=-1).astype(np.float64)
    nb = bm.sum(axis=-1).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        ma = np.where(am, a, 0.0).sum(axis=-1) / na
        mb = np.where(bm, a, 0.0).sum(axis=-1) / nb
        ssa = np.where(am, (a - ma[..., None]) ** 2, 0.0).sum(axis=-1)
        ssb = np.where(bm, (a - mb[..., None]) ** 2, 0.0).sum(axis=-1)
        df = na + nb - 2.0
        sp2 = (ssa + ssb) / df
        t = (ma - mb) / np.sqrt(sp2 * (1.0 / na + 1.0 / nb))
        p = 2.0 * special.stdtr(df, -np.abs(t))
    bad = (na < 1) | (nb < 1) | (df <= 0)
    t = np.where(bad, np.nan, t)
    p = np.where(bad | np.isnan(t), np.nan, p)
    return t, p, ma, mb


@dataclass
class PeriodSelectivityResult:
    """``(n_units, n_periods)`` arrays, periods in the order of ``periods``."""

    periods: tuple[str, ...]
    selectivity: np.ndarray  # object array of selectivity names
    ipsi_firing_rate: np.ndarray
    contra_firing_rate: np.ndarray
    p_value: np.ndarray
    n_ipsi: np.ndarray  # trials used per unit and period
    n_contra: np.ndarray


def _window_counts(
    aligned: AlignedSpikes, trials: np.ndarray, windows: Sequence[tuple[np.ndarray, np.ndarray]]
) -> np.ndarray:
    """Spike counts ``(n_units, n_sel_trials, n_windows)`` in ``[lo, hi)`` per selected trial.

    Each count is ``#(x < hi) - #(x < lo)`` (0 if ``hi <= lo``).  Because the spikes of one
    (unit, trial) are sorted, ``#(x < b)`` is a lower-bound search in that slice: all the
    searches (every unit, selected trial and distinct window boundary) run at once as a
    branch-free binary search, a few vector steps instead of a pass over every spike.
    """
    n_u, n_t = aligned.n_units, aligned.n_trials
    n_sel, n_w = len(trials), len(windows)
    out = np.zeros((n_u, n_sel, n_w), dtype=np.int64)
    if n_sel == 0 or n_u == 0:
        return out
    lo = np.stack([w[0][trials] for w in windows], axis=1)  # (n_sel, n_w)
    hi = np.stack([w[1][trials] for w in windows], axis=1)
    # distinct boundaries (the sample end is the delay start, …) are searched once
    bounds, inv = np.unique(np.concatenate([lo, hi], axis=1), axis=1, return_inverse=True)
    inv = inv.reshape(-1)
    lo_k, hi_k = inv[:n_w], inv[n_w:]
    n_k = bounds.shape[1]
    x = aligned.times
    if len(x) == 0:
        return out
    start = aligned.offsets[:-1].reshape(n_u, n_t)[:, trials]  # (U, n_sel)
    stop = aligned.offsets[1:].reshape(n_u, n_t)[:, trials]
    n_iter = int((stop - start).max()).bit_length()
    step0 = 1 << max(n_iter - 1, 0)
    chunk = max(1, _SEARCH_CHUNK // (n_sel * n_k))
    last = len(x) - 1
    for u0 in range(0, n_u, chunk):
        u1 = min(n_u, u0 + chunk)
        b = np.broadcast_to(bounds, (u1 - u0, n_sel, n_k)).ravel()
        s = np.broadcast_to(start[u0:u1, :, None], (u1 - u0, n_sel, n_k)).ravel()
        e = np.broadcast_to(stop[u0:u1, :, None], (u1 - u0, n_sel, n_k)).ravel()
        pos = s.copy()  # invariant: every spike before pos (in the slice) is < b
        step = step0
        while step:
            cand = pos + step
            ok = cand <= e
            np.minimum(cand, last + 1, out=cand)
            ok &= x[cand - 1] < b
            pos = np.where(ok, cand, pos)
            step >>= 1
        n_lt = (pos - s).reshape(u1 - u0, n_sel, n_k)
        out[u0:u1] = np.maximum(n_lt[:, :, hi_k] - n_lt[:, :, lo_k], 0)
    return out


def period_selectivity(
    aligned: AlignedSpikes,
    trial_mask: np.ndarray,
    trial_instruction: np.ndarray,
    unit_hemisphere: np.ndarray | str,
    windows: Mapping[str, tuple[np.ndarray, np.ndarray]],
    alpha: float = ALPHA,
) -> PeriodSelectivityResult:
    """Period selectivity of every unit for every period in ``windows`` (§8).

    ``trial_mask``: :func:`selectivity_trial_mask`; trials without a go cue are left out, and
    a trial whose window of a period is not finite (missing event) is left out of that period.
    ``unit_hemisphere``: ``"left"``/``"right"`` per unit (or one value for all); trials whose
    instruction is not the hemisphere are "contra" (§8).  ``windows``: :func:`period_windows`.
    A unit-period with no usable trial gets the table defaults (non-selective, rates 0, p 1);
    a side without trials gives a ``NaN`` mean.
    """
    names = tuple(windows)
    wins = [
        (np.asarray(windows[n][0], np.float64), np.asarray(windows[n][1], np.float64))
        for n in names
    ]
    n_u = aligned.n_units
    hemi = np.asarray(
        np.broadcast_to(np.asarray(unit_hemisphere, dtype=object), (n_u,)), dtype=object
    )
    instr = np.asarray(trial_instruction, dtype=object)
    ok = np.asarray(trial_mask, dtype=bool) & aligned.aligned_to_go
    finite = np.stack([np.isfinite(lo) & np.isfinite(hi) for lo, hi in wins], axis=1)  # (T, P)
    trials = np.flatnonzero(ok & finite.any(axis=1))
    valid = finite[trials]  # (n_sel, P): a trial lacking an event is left out of that period
    # NaN bounds would defeat the boundary de-duplication; their counts are masked anyway
    wins_f = [
        (np.where(np.isfinite(lo), lo, 0.0), np.where(np.isfinite(hi), hi, 0.0)) for lo, hi in wins
    ]

    counts = _window_counts(aligned, trials, wins_f)  # (U, n_sel, P)
    dur = np.stack([hi[trials] - lo[trials] for lo, hi in wins], axis=1)  # (n_sel, P)
    with np.errstate(invalid="ignore", divide="ignore"):
        rates = counts / dur[None, :, :]
    ipsi = instr[trials][None, :] == hemi[:, None]  # (U, n_sel)

    rates_up = np.moveaxis(rates, 2, 1)  # (U, P, n_sel)
    valid_p = valid.T[None, :, :]  # (1, P, n_sel)
    ipsi_p = ipsi[:, None, :] & valid_p
    contra_p = ~ipsi[:, None, :] & valid_p
    _, p, m_i, m_c = student_ttest(rates_up, ipsi_p, contra_p)
    p = np.where(np.isnan(p), 1.0, p)
    sel = np.where(p > alpha, NON_SELECTIVE, np.where(m_i > m_c, IPSI, CONTRA)).astype(object)
    n_ipsi, n_contra = ipsi_p.sum(axis=2), contra_p.sum(axis=2)
    # a unit-period without any trial keeps the table defaults (rates 0, p 1)
    empty = (n_ipsi + n_contra) == 0
    m_i = np.where(empty, 0.0, m_i)
    m_c = np.where(empty, 0.0, m_c)
    return PeriodSelectivityResult(
        periods=names,
        selectivity=sel,
        ipsi_firing_rate=m_i,
        contra_firing_rate=m_c,
        p_value=p,
        n_ipsi=n_ipsi,
        n_contra=n_contra,
    )


def unit_selectivity(
    period_sel: np.ndarray, ipsi_rate: np.ndarray, contra_rate: np.ndarray
) -> np.ndarray:
    """Unit selectivity from ``(n_units, n_periods)`` period results (§8, §19.8 fixed).

    Non-selective if every period is; else ipsi-selective when the mean ipsi rate over the
    selective periods exceeds the mean contra rate over the same periods, else contra.
    """
    period_sel = np.asarray(period_sel, dtype=object)
    selective = period_sel != NON_SELECTIVE
    n = selective.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mi = np.where(selective, ipsi_rate, 0.0).sum(axis=1) / n
        mc = np.where(selective, contra_rate, 0.0).sum(axis=1) / n
    return np.where(n == 0, NON_SELECTIVE, np.where(mi > mc, IPSI, CONTRA)).astype(object)


def coding_direction(
    contra_psth: np.ndarray,
    ipsi_psth: np.ndarray,
    time: np.ndarray,
    period: tuple[float, float] | None = CD_PERIOD,
) -> np.ndarray:
    """Coding direction (§8): per unit mean rate over bins with ``period[0] <= t < period[1]``.

    ``contra_psth``/``ipsi_psth``: trial-averaged ``(n_units, n_bins)``; ``time``: right bin
    edges.  CD = (contra − ipsi) / L2 norm; ``period=None`` uses the whole time range.  A zero
    difference vector gives ``NaN``.
    """
    time = np.asarray(time, dtype=np.float64)
    if period is None:
        period = (time.min(), time.max())
    sel = (time >= period[0]) & (time < period[1])
    if not sel.any():
        raise ValueError("no PSTH bin inside the coding-direction period")
    diff = np.asarray(contra_psth)[:, sel].mean(axis=1) - np.asarray(ipsi_psth)[:, sel].mean(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return diff / np.linalg.norm(diff)


def contra_ipsi_condition_names(hemisphere: str) -> tuple[str, str]:
    """(contra, ipsi) condition names for the coding direction of a hemisphere's units."""
    if hemisphere == "left":
        return "good_noearlylick_right_hit", "good_noearlylick_left_hit"
    if hemisphere == "right":
        return "good_noearlylick_left_hit", "good_noearlylick_right_hit"
    raise ValueError(f"hemisphere must be 'left' or 'right', not {hemisphere!r}")


def cd_projected_psth(
    aligned: AlignedSpikes,
    contra_trials: Sequence[int] | np.ndarray,
    ipsi_trials: Sequence[int] | np.ndarray,
    period: tuple[float, float] | None = CD_PERIOD,
    units: Sequence[int] | np.ndarray | None = None,
    edges: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``compute_CD_projected_psth`` (§8): ``(cd, contra_proj, ipsi_proj, time)``.

    Per-trial PSTHs of every unit on the contra and ipsi trials (e.g. the trials of
    :func:`contra_ipsi_condition_names`), trial-averaged to get the CD, then each trial's
    ``(time × unit)`` matrix projected on it → ``(n_trials, n_bins)``.  Trials without a go cue
    are dropped.
    """
    contra = np.asarray(contra_trials, dtype=np.int64)
    ipsi = np.asarray(ipsi_trials, dtype=np.int64)
    contra = contra[aligned.aligned_to_go[contra]] if contra.size else contra
    ipsi = ipsi[aligned.aligned_to_go[ipsi]] if ipsi.size else ipsi
    if contra.size == 0 or ipsi.size == 0:
        raise ValueError("coding direction needs at least one contra and one ipsi trial")
    c_rates, time = per_trial_psth(aligned, contra, units=units, edges=edges)
    i_rates, _ = per_trial_psth(aligned, ipsi, units=units, edges=edges)
    cd = coding_direction(c_rates.mean(axis=1), i_rates.mean(axis=1), time, period)
    proj_c = np.einsum("utb,u->tb", c_rates, cd)
    proj_i = np.einsum("utb,u->tb", i_rates, cd)
    return cd, proj_c, proj_i, time
