"""Align-on-read: cut each unit's session spike train into trials and express it on the go cue.

Spikes are stored once per unit (spec §4.3 ``Unit.spike_times``: seconds relative to the first
ephys trial start); there are no per-(unit, trial) rows.  Every consumer (API rasters, PSTH,
selectivity, unit stats) instead calls :func:`align_spikes_to_trials`, which reproduces the
trialization of spec §14.6 step 4:

* spikes in ``[trial_start[i], trial_start[i + 1])`` belong to trial ``i``; the last trial takes
  every later spike; spikes before the first trial start belong to no trial;
* a trial's spikes are then expressed relative to that trial's go cue
  (``spike - trial_start - go_cue``, the go cue being relative to the trial start).

A trial without a go cue (``NaN``) cannot be aligned: its spikes are kept relative to the trial
start (so that per-trial counts and ISIs, which do not depend on the origin, remain usable) and
``AlignedSpikes.aligned_to_go`` is ``False`` for it; go-cue-based analyses skip such trials.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["AlignedSpikes", "align_spikes_to_trials", "build_csr", "raster"]


def build_csr(
    spike_trains: Sequence[np.ndarray], sort: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate per-unit spike trains into the CSR layout ``(spike_times, unit_offsets)``.

    ``unit_offsets`` has ``n_units + 1`` entries; unit ``u`` owns
    ``spike_times[unit_offsets[u]:unit_offsets[u + 1]]``.  Trains are sorted unless
    ``sort=False`` (the alignment needs each unit's train in ascending order).
    """
    lengths = np.fromiter((len(t) for t in spike_trains), dtype=np.int64, count=len(spike_trains))
    offsets = np.zeros(len(spike_trains) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    if len(spike_trains) == 0:
        return np.zeros(0, dtype=np.float64), offsets
    parts = [np.sort(np.asarray(t, dtype=np.float64)) if sort else t for t in spike_trains]
    times = np.concatenate(parts).astype(np.float64, copy=False)
    return times, offsets


class AlignedSpikes:
    """Spikes of all units cut into trials: a CSR over ``(unit, trial)`` pairs.

    ``times`` is ordered by unit, then trial, then time; the spikes of pair ``(u, t)`` are
    ``times[offsets[u * n_trials + t]:offsets[u * n_trials + t + 1]]`` (seconds relative to the
    go cue when ``aligned_to_go[t]``, else relative to the trial start).
    """

    __slots__ = ("_pair_index", "aligned_to_go", "n_trials", "n_units", "offsets", "times")

    def __init__(
        self,
        times: np.ndarray,
        offsets: np.ndarray,
        n_units: int,
        n_trials: int,
        aligned_to_go: np.ndarray,
    ) -> None:
        self.times = times
        self.offsets = offsets
        self.n_units = int(n_units)
        self.n_trials = int(n_trials)
        self.aligned_to_go = aligned_to_go
        self._pair_index: np.ndarray | None = None

    # -- structure helpers ---------------------------------------------------------------
    def counts(self) -> np.ndarray:
        """Spike count per ``(unit, trial)``, shape ``(n_units, n_trials)``."""
        return np.diff(self.offsets).reshape(self.n_units, self.n_trials)

    def unit_slice(self, unit: int) -> slice:
        """Slice of ``times`` holding all trial spikes of ``unit``."""
        t = self.n_trials
        return slice(int(self.offsets[unit * t]), int(self.offsets[(unit + 1) * t]))

    def spikes(self, unit: int, trial: int) -> np.ndarray:
        """Aligned spike times of one ``(unit, trial)`` pair (a view)."""
        k = unit * self.n_trials + trial
        return self.times[self.offsets[k] : self.offsets[k + 1]]

    def trial_spikes(self, unit: int) -> list[np.ndarray]:
        """Per-trial arrays of one unit, like the former ``Unit.TrialSpikes`` rows."""
        return [self.spikes(unit, t) for t in range(self.n_trials)]

    def pair_index(self) -> np.ndarray:
        """Flat ``unit * n_trials + trial`` index of every spike (computed once, cached)."""
        if self._pair_index is None:
            n_pairs = self.n_units * self.n_trials
            dtype = np.int32 if n_pairs < 2**31 else np.int64
            self._pair_index = np.repeat(
                np.arange(n_pairs, dtype=dtype), np.diff(self.offsets).astype(np.intp)
            )
        return self._pair_index

    def __repr__(self) -> str:
        return (
            f"AlignedSpikes(n_units={self.n_units}, n_trials={self.n_trials}, "
            f"n_spikes={len(self.times)})"
        )


def _check_sorted_within_units(spike_times: np.ndarray, unit_offsets: np.ndarray) -> None:
    if len(spike_times) < 2:
        return
    decreasing = spike_times[1:] < spike_times[:-1]
    # a decrease exactly at a unit boundary is allowed
    bounds = unit_offsets[1:-1]
    bounds = bounds[(bounds > 0) & (bounds < len(spike_times))] - 1
    decreasing[bounds] = False
    if decreasing.any():
        raise ValueError("spike_times must be sorted ascending within each unit (see build_csr)")


def align_spikes_to_trials(
    spike_times: np.ndarray,
    unit_offsets: np.ndarray,
    trial_starts: np.ndarray,
    go_cues: np.ndarray,
    validate: bool = True,
) -> AlignedSpikes:
    """Trialize and go-cue-align the spikes of all units (spec §14.6 step 4).

    ``spike_times``/``unit_offsets``: CSR layout (:func:`build_csr`), same clock as
    ``trial_starts`` (strictly increasing, one per ephys trial).  ``go_cues``: go-cue time
    relative to each trial start, ``NaN`` when the trial has none.
    """
    spike_times = np.asarray(spike_times, dtype=np.float64)
    unit_offsets = np.asarray(unit_offsets, dtype=np.int64)
    trial_starts = np.asarray(trial_starts, dtype=np.float64)
    go_cues = np.asarray(go_cues, dtype=np.float64)
    n_units = len(unit_offsets) - 1
    n_trials = len(trial_starts)
    if n_units < 0 or unit_offsets[0] != 0 or unit_offsets[-1] != len(spike_times):
        raise ValueError("unit_offsets must start at 0 and end at len(spike_times)")
    if go_cues.shape != trial_starts.shape:
        raise ValueError("go_cues must have one entry per trial")
    if validate:
        if np.any(np.diff(unit_offsets) < 0):
            raise ValueError("unit_offsets must be non-decreasing")
        if n_trials > 1 and not np.all(np.diff(trial_starts) > 0):
            raise ValueError("trial_starts must be strictly increasing")
        if not np.all(np.isfinite(trial_starts)):
            raise ValueError("trial_starts must be finite")
        _check_sorted_within_units(spike_times, unit_offsets)

    aligned_to_go = np.isfinite(go_cues)
    if n_trials == 0 or n_units == 0:
        offsets = np.zeros(n_units * n_trials + 1, dtype=np.int64)
        return AlignedSpikes(np.zeros(0), offsets, n_units, n_trials, aligned_to_go)

    # bounds[u, t] = global index of the first spike of unit u at or after trial_starts[t];
    # bounds[u, n_trials] = end of unit u.  One searchsorted per unit over the trial starts.
    bounds = np.empty((n_units, n_trials + 1), dtype=np.int64)
    for u in range(n_units):
        lo, hi = unit_offsets[u], unit_offsets[u + 1]
        bounds[u, :n_trials] = lo + np.searchsorted(spike_times[lo:hi], trial_starts, "left")
        bounds[u, n_trials] = hi
    counts = np.diff(bounds, axis=1)  # (n_units, n_trials)

    offsets = np.zeros(n_units * n_trials + 1, dtype=np.int64)
    np.cumsum(counts.ravel(), out=offsets[1:])

    # keep spikes from the first trial start on (drop those before it, per unit)
    dropped = bounds[:, 0] - unit_offsets[:-1]
    if dropped.any():
        keep = np.ones(len(spike_times), dtype=bool)
        for u in np.flatnonzero(dropped):
            keep[unit_offsets[u] : bounds[u, 0]] = False
        kept = spike_times[keep]
    else:
        kept = spike_times

    origin = trial_starts + np.where(aligned_to_go, go_cues, 0.0)
    shift = np.repeat(np.tile(origin, n_units), counts.ravel())
    times = kept - shift
    return AlignedSpikes(times, offsets, n_units, n_trials, aligned_to_go)


def raster(
    aligned: AlignedSpikes, unit: int, trials: Sequence[int] | np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Raster of one unit: ``(spike_times, trial_of_each_spike)`` for ``trials`` (default all).

    Trials are taken in the given order; the second array holds the trial *index* (0-based,
    into the trial arrays given to :func:`align_spikes_to_trials`).
    """
    if trials is None:
        trials = np.arange(aligned.n_trials)
    trials = np.asarray(trials, dtype=np.int64)
    if trials.size and (trials.min() < 0 or trials.max() >= aligned.n_trials):
        raise IndexError("trial index out of range")
    k = unit * aligned.n_trials + trials
    starts, stops = aligned.offsets[k], aligned.offsets[k + 1]
    lengths = stops - starts
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0), np.zeros(0, dtype=np.int64)
    # gather the slices with one fancy index: position i of slice j is starts[j] + i
    seg_start = np.repeat(starts - np.concatenate(([0], np.cumsum(lengths)[:-1])), lengths)
    idx = seg_start + np.arange(total)
    return aligned.times[idx], np.repeat(trials, lengths)
