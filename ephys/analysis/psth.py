"""Unit PSTHs (spec §8): all units × all trial conditions of a probe insertion in one pass.

Binning: go-cue-aligned spikes, bins from ``-3`` to ``+3`` s in ``0.04`` s steps (150 bins, the
edges of :func:`psth_edges`), with :func:`numpy.histogram` semantics (half-open bins, the last
one closed).  Rate of a (unit, condition) = counts over the condition's trials
/ number of those trials / bin size; the stored time vector is the right bin edges.  The trial
count reported is the unit's own number of trials in the condition (not the §19.7 bug, which
stored the size of the whole condition query across sessions).  Zero trials → ``NaN`` rates and
``trial_count == 0`` (the DB layer stores a row with nulls, as the original did).

Method: one ``bincount`` over ``(unit, trial, bin)`` for the spikes inside the window, then a
product with the ``trial × condition`` membership matrix, chunked over units to bound memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .align import AlignedSpikes

__all__ = [
    "PSTH_BINSIZE",
    "PSTH_XMAX",
    "PSTH_XMIN",
    "PsthResult",
    "bin_index",
    "compute_psths",
    "per_trial_psth",
    "psth_edges",
    "unit_psth",
]

PSTH_XMIN = -3.0
PSTH_XMAX = 3.0
PSTH_BINSIZE = 0.04

# cap on the dense (units_in_chunk, trials, bins) count block (entries), ~64 MB of float64
_CHUNK_ENTRIES = 8_000_000


def psth_edges(
    xmin: float = PSTH_XMIN, xmax: float = PSTH_XMAX, binsize: float = PSTH_BINSIZE
) -> np.ndarray:
    """Bin edges ``xmin, xmin + binsize, …, xmax`` (``round((xmax - xmin) / binsize)`` bins)."""
    n = round((xmax - xmin) / binsize)
    if n <= 0 or not np.isclose(n * binsize, xmax - xmin):
        raise ValueError("xmax - xmin must be a positive multiple of binsize")
    return np.linspace(xmin, xmax, n + 1)


def bin_index(x: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bin of each value under :func:`numpy.histogram` rules; ``-1`` outside ``[e0, e_last]``.

    Uniform edges allow an arithmetic guess, corrected by at most one bin against the exact
    edge values so that results equal ``np.histogram`` bit for bit.
    """
    x = np.asarray(x, dtype=np.float64)
    nb = len(edges) - 1
    out = np.full(x.shape, -1, dtype=np.intp)
    inside = (x >= edges[0]) & (x <= edges[-1])
    xv = x[inside]
    w = (edges[-1] - edges[0]) / nb
    i = ((xv - edges[0]) * (1.0 / w)).astype(np.intp)
    np.clip(i, 0, nb - 1, out=i)
    i -= xv < edges[i]
    i += (xv >= edges[i + 1]) & (i < nb - 1)
    out[inside] = i
    return out


@dataclass
class PsthResult:
    """PSTHs of all units × conditions.

    ``rates``: ``(n_units, n_conditions, n_bins)`` spikes/s (``NaN`` where no trials);
    ``trial_count``: ``(n_units, n_conditions)``; ``time``: right bin edges ``(n_bins,)``.
    """

    rates: np.ndarray
    trial_count: np.ndarray
    time: np.ndarray

    def unit_psth_blob(self, unit: int, condition: int) -> np.ndarray | None:
        """The stored ``unit_psth`` value: ``[rates, right edges]`` or ``None`` if no trials."""
        if self.trial_count[unit, condition] == 0:
            return None
        return np.array([self.rates[unit, condition], self.time])


def _binned_counts(
    aligned: AlignedSpikes,
    trial_sel: np.ndarray,
    edges: np.ndarray,
    units: np.ndarray,
):
    """Yield ``(unit_positions, counts)`` with counts ``(n_chunk, n_sel_trials, n_bins)``.

    ``trial_sel``: trial indices to keep, in output order.  Only trials aligned to the go cue
    should be passed.
    """
    n_t = aligned.n_trials
    nb = len(edges) - 1
    n_sel = len(trial_sel)
    tmap = np.full(n_t, -1, dtype=np.int64)
    tmap[trial_sel] = np.arange(n_sel)
    chunk = max(1, _CHUNK_ENTRIES // max(1, n_sel * nb))
    contiguous = len(units) == aligned.n_units and np.array_equal(units, np.arange(aligned.n_units))
    for c0 in range(0, len(units), chunk):
        us = units[c0 : c0 + chunk]
        n_u = len(us)
        if contiguous:
            u0, u1 = int(us[0]), int(us[-1]) + 1
            lo, hi = aligned.offsets[u0 * n_t], aligned.offsets[u1 * n_t]
            x = aligned.times[lo:hi]
            pair_counts = np.diff(aligned.offsets[u0 * n_t : u1 * n_t + 1])
        else:
            parts = [aligned.unit_slice(int(u)) for u in us]
            x = np.concatenate([aligned.times[s] for s in parts]) if parts else np.zeros(0)
            pair_counts = np.concatenate(
                [np.diff(aligned.offsets[int(u) * n_t : (int(u) + 1) * n_t + 1]) for u in us]
            )
        # compact (chunk-unit, selected-trial) index of every pair, -1 if the trial is unused
        pv = np.where(tmap[None, :] >= 0, np.arange(n_u)[:, None] * n_sel + tmap[None, :], -1)
        pair = np.repeat(pv.ravel(), pair_counts)
        keep = (pair >= 0) & (x >= edges[0]) & (x <= edges[-1])
        b = bin_index(x[keep], edges)
        key = pair[keep] * nb + b
        counts = np.bincount(key, minlength=n_u * n_sel * nb).reshape(n_u, n_sel, nb)
        yield slice(c0, c0 + n_u), counts


def compute_psths(
    aligned: AlignedSpikes,
    membership: np.ndarray,
    unit_trial_mask: np.ndarray | None = None,
    edges: np.ndarray | None = None,
) -> PsthResult:
    """PSTH of every unit for every condition (columns of ``membership``).

    ``membership``: boolean ``(n_trials, n_conditions)`` (see
    :func:`~ephys.analysis.trial_conditions.condition_membership`), already restricted to the
    insertion's good trials if any.  ``unit_trial_mask``: optional ``(n_units, n_trials)``
    boolean of trials usable per unit (default: all).  Trials without a go cue never count.
    """
    edges = psth_edges() if edges is None else np.asarray(edges, dtype=np.float64)
    membership = np.asarray(membership, dtype=bool)
    if membership.ndim != 2 or membership.shape[0] != aligned.n_trials:
        raise ValueError("membership must be (n_trials, n_conditions)")
    n_u, n_c, nb = aligned.n_units, membership.shape[1], len(edges) - 1
    memb = membership & aligned.aligned_to_go[:, None]
    used = np.flatnonzero(memb.any(axis=1))

    rates = np.zeros((n_u, n_c, nb))
    if unit_trial_mask is None:
        trial_count = np.broadcast_to(memb.sum(axis=0), (n_u, n_c)).copy()
        m = memb[used].T.astype(np.float64)  # (C, T_used)
        for sl, counts in _binned_counts(aligned, used, edges, np.arange(n_u)):
            rates[sl] = np.matmul(m, counts.astype(np.float64))
    else:
        utm = np.asarray(unit_trial_mask, dtype=bool)
        if utm.shape != (n_u, aligned.n_trials):
            raise ValueError("unit_trial_mask must be (n_units, n_trials)")
        trial_count = utm.astype(np.int64) @ memb.astype(np.int64)
        m = memb[used].T.astype(np.float64)
        for sl, counts in _binned_counts(aligned, used, edges, np.arange(n_u)):
            w = counts.astype(np.float64) * utm[sl][:, used, None]
            rates[sl] = np.matmul(m, w)
    binsize = (edges[-1] - edges[0]) / nb
    with np.errstate(invalid="ignore", divide="ignore"):
        rates = rates / trial_count[:, :, None] / binsize
    rates[trial_count == 0] = np.nan
    return PsthResult(rates=rates, trial_count=trial_count, time=edges[1:].copy())


def per_trial_psth(
    aligned: AlignedSpikes,
    trials: Sequence[int] | np.ndarray,
    units: Sequence[int] | np.ndarray | None = None,
    edges: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-trial rates ``(n_units, n_trials_given, n_bins)`` (counts / bin size) and right edges.

    Trials must be aligned to the go cue (``ValueError`` otherwise).
    """
    edges = psth_edges() if edges is None else np.asarray(edges, dtype=np.float64)
    trials = np.asarray(trials, dtype=np.int64)
    units = np.arange(aligned.n_units) if units is None else np.asarray(units, dtype=np.int64)
    if trials.size and not aligned.aligned_to_go[trials].all():
        raise ValueError("per_trial_psth needs trials with a go cue")
    nb = len(edges) - 1
    binsize = (edges[-1] - edges[0]) / nb
    out = np.zeros((len(units), len(trials), nb))
    uniq, inverse = np.unique(trials, return_inverse=True)
    for sl, counts in _binned_counts(aligned, uniq, edges, units):
        out[sl] = counts[:, inverse, :] / binsize
    return out, edges[1:].copy()


def unit_psth(
    aligned: AlignedSpikes,
    unit: int,
    trials: Sequence[int] | np.ndarray,
    per_trial: bool = False,
    edges: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray] | None:
    """``compute_unit_psth`` of §8 for one unit: ``(psth, right edges)`` or ``None`` (no trials).

    ``per_trial=True`` returns the ``(n_trials, n_bins)`` per-trial rate matrix instead.
    """
    trials = np.asarray(trials, dtype=np.int64)
    trials = trials[aligned.aligned_to_go[trials]] if trials.size else trials
    if trials.size == 0:
        return None
    rates, time = per_trial_psth(aligned, trials, units=[unit], edges=edges)
    if per_trial:
        return rates[0], time
    return rates[0].mean(axis=0), time
