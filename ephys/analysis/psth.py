"""Unit PSTHs (spec §8): all units × all trial conditions of a probe insertion in one pass.

Binning: go-cue-aligned spikes, bins from ``-3`` to ``+3`` s in ``0.04`` s steps (150 bins, the
edges of :func:`psth_edges`), with :func:`numpy.histogram` semantics (half-open bins, the last
one closed).  Rate of a (unit, condition) = counts over the condition's trials
/ number of those trials / bin size; the stored time vector is the right bin edges.  The trial
count reported is the unit's own number of trials in the condition (not the §19.7 bug, which
stored the size of the whole condition query across sessions).  Zero trials → ``NaN`` rates and
``trial_count == 0`` (the DB layer stores a row with nulls, as the original did).

The original code built its bins with ``np.arange(-3, 3, 0.04)`` (149 bins, −3…2.96 s; its own
comment notes the mismatch with the MATLAB 150); here the window is the full −3…+3 s of §8.
Pass ``edges=psth_edges(-3, 2.96, 0.04)`` to reproduce the old 149 bins.

Method: trials with the same membership row (the same set of conditions) form a group; one
``bincount`` per block of units over ``(unit, group, bin)`` keys, then a product with the small
``group × condition`` pattern matrix.  The bin of a spike is computed arithmetically and
re-decided against the exact edge values only when it lies within rounding error of an edge,
so counts equal ``np.histogram``'s exactly.
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


_BLOCK_SPIKES = 1 << 16
# |g - round(g)| below this (in bins) → recheck against the exact edges; rounding errors of the
# arithmetic bin index are ~1e-13 bins for |t| < 1e3 s
_NEAR_EDGE = 1e-7  # spikes per block: keeps every temporary in cache


def _check_uniform(edges: np.ndarray) -> None:
    d = np.diff(edges)
    if len(edges) < 2 or not np.allclose(d, d.mean(), rtol=1e-9, atol=0) or d.mean() <= 0:
        raise ValueError("PSTH edges must be increasing and uniformly spaced")


def unit_blocks(units: np.ndarray, sizes: np.ndarray, target: int | None = None) -> list:
    """Split ``units`` into ``(i, j)`` runs of consecutive unit ids of about ``target`` spikes.

    Processing a few units at a time keeps the per-spike temporaries in cache.
    """
    target = _BLOCK_SPIKES if target is None else target
    blocks, i, n = [], 0, len(units)
    while i < n:
        j, acc = i + 1, int(sizes[i])
        while j < n and units[j] == units[j - 1] + 1 and acc + int(sizes[j]) <= target:
            acc += int(sizes[j])
            j += 1
        blocks.append((i, j))
        i = j
    return blocks


def _grouped_bin_counts(
    aligned: AlignedSpikes,
    trial_group: np.ndarray,
    n_groups: int,
    edges: np.ndarray,
    units: np.ndarray,
) -> np.ndarray:
    """Spike counts ``(len(units), n_groups, n_bins)`` per unit, trial group and bin.

    ``trial_group[t]`` in ``[0, n_groups)`` or ``-1`` (trial ignored).  Units are processed in
    blocks of about ``_BLOCK_SPIKES`` spikes; each spike gets a key
    ``((unit * (n_groups + 1) + group) * (n_bins + 2) + slot)`` where slot 0 / ``n_bins + 1``
    collect the spikes below / above the window and group ``n_groups`` the ignored trials, and
    one ``bincount`` per block adds them up.
    """
    n_t = aligned.n_trials
    nb = len(edges) - 1
    g1, w = n_groups + 1, nb + 2
    grp = np.where(trial_group >= 0, trial_group, n_groups).astype(np.int64)
    # slot j covers [lower[j], upper[j]); the last bin is closed like np.histogram's
    lower = np.concatenate(([-np.inf], edges))
    upper = np.concatenate((edges, [np.inf]))
    upper[nb] = lower[nb + 1] = np.nextafter(edges[-1], np.inf)
    inv_w = nb / (edges[-1] - edges[0])
    shift = 1.0 - edges[0] * inv_w

    unit_spk = aligned.offsets[::n_t] if n_t else np.zeros(aligned.n_units + 1, np.int64)
    pair_counts = np.diff(aligned.offsets).reshape(aligned.n_units, n_t)
    out = np.zeros((len(units), g1 * w), dtype=np.int64)
    blocks = unit_blocks(units, unit_spk[units + 1] - unit_spk[units])
    cap = max((int(unit_spk[units[j - 1] + 1] - unit_spk[units[i]]) for i, j in blocks), default=0)
    # work buffers reused by every block (no per-block allocation of large temporaries)
    gbuf, fbuf, bbuf = np.empty(cap), np.empty(cap), np.empty(cap, dtype=bool)
    for i, j in blocks:
        u0, u1 = int(units[i]), int(units[j - 1]) + 1
        x = aligned.times[unit_spk[u0] : unit_spk[u1]]
        n = len(x)
        g, f, near = gbuf[:n], fbuf[:n], bbuf[:n]
        np.multiply(x, inv_w, out=g)
        np.add(g, shift, out=g)
        # the arithmetic slot floor(g) can only be wrong within rounding error of an edge:
        # re-decide those few spikes by exact comparison with the edge values
        np.rint(g, out=f)
        np.subtract(g, f, out=f)
        np.abs(f, out=f)
        np.less(f, _NEAR_EDGE, out=near)
        np.clip(g, 0, nb + 1, out=g)
        slot = g.astype(np.intp)  # truncation == floor (g >= 0)
        if near.any():
            k = np.flatnonzero(near)
            xs, sl = x[k], slot[k]
            sl -= xs < lower[sl]
            sl += xs >= upper[sl]
            slot[k] = sl
        base = ((np.arange(j - i)[:, None] * g1 + grp[None, :]) * w).ravel()
        key = np.repeat(base, pair_counts[u0:u1].ravel())
        key += slot
        out[i:j] += np.bincount(key, minlength=(j - i) * g1 * w).reshape(j - i, g1 * w)
    return out.reshape(len(units), g1, w)[:, :n_groups, 1 : nb + 1]


def compute_psths(
    aligned: AlignedSpikes,
    membership: np.ndarray,
    edges: np.ndarray | None = None,
) -> PsthResult:
    """PSTH of every unit for every condition (columns of ``membership``).

    ``membership``: boolean ``(n_trials, n_conditions)`` (see
    :func:`~ephys.analysis.trial_conditions.condition_membership`), already restricted to the
    insertion's good trials if any (all units of an insertion share its trials, so the trial
    count is the same for every unit).  Trials without a go cue never count.
    """
    edges = psth_edges() if edges is None else np.asarray(edges, dtype=np.float64)
    membership = np.asarray(membership, dtype=bool)
    if membership.ndim != 2 or membership.shape[0] != aligned.n_trials:
        raise ValueError("membership must be (n_trials, n_conditions)")
    _check_uniform(edges)
    n_u, n_c, nb = aligned.n_units, membership.shape[1], len(edges) - 1
    memb = membership & aligned.aligned_to_go[:, None]
    # trials with the same membership row form one group: count per (unit, group, bin) once
    patterns, group = np.unique(memb, axis=0, return_inverse=True)
    group = group.reshape(-1)
    used = patterns.any(axis=1)
    remap = np.full(len(patterns), -1, dtype=np.int64)
    remap[used] = np.arange(used.sum())
    patterns = patterns[used]
    counts = _grouped_bin_counts(aligned, remap[group], len(patterns), edges, np.arange(n_u))
    rates = np.matmul(patterns.T.astype(np.float64), counts.astype(np.float64))  # (U, C, B)
    trial_count = np.broadcast_to(memb.sum(axis=0), (n_u, n_c)).copy()
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
    _check_uniform(edges)
    nb = len(edges) - 1
    binsize = (edges[-1] - edges[0]) / nb
    uniq, inverse = np.unique(trials, return_inverse=True)
    group = np.full(aligned.n_trials, -1, dtype=np.int64)
    group[uniq] = np.arange(len(uniq))
    counts = _grouped_bin_counts(aligned, group, len(uniq), edges, units)
    out = counts[:, inverse.reshape(-1), :] / binsize
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
