"""Align-on-read (spec §14.6 step 4) against the per-unit, per-trial mask loop."""

import numpy as np
import pytest

from ephys.analysis import align_spikes_to_trials, build_csr, raster
from ephys.analysis.reference import ref_align
from ephys.analysis.synthetic import make_session


def _aligned(session):
    times, offsets = build_csr(session.spike_trains)
    return align_spikes_to_trials(times, offsets, session.trial_starts, session.go_cues)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_alignment_equals_loop_reference(seed):
    s = make_session(seed, n_units=12, n_trials=60, free_water_fraction=0.1)
    al = _aligned(s)
    ref = ref_align(s.spike_trains, s.trial_starts, s.go_cues)
    assert al.n_units == 12 and al.n_trials == 60
    for u in range(12):
        for t in range(60):
            np.testing.assert_array_equal(al.spikes(u, t), ref[u][t])
    counts = np.array([[len(ref[u][t]) for t in range(60)] for u in range(12)])
    np.testing.assert_array_equal(al.counts(), counts)
    # free-water trials (no go cue) are flagged, others aligned
    np.testing.assert_array_equal(al.aligned_to_go, np.isfinite(s.go_cues))


def test_trial_assignment_rules_by_hand():
    starts = np.array([10.0, 20.0, 30.0])
    go = np.array([2.0, np.nan, 1.5])
    unit0 = np.array([1.0, 9.999, 10.0, 12.0, 19.5, 20.0, 29.0, 30.0, 100.0])
    unit1 = np.zeros(0)  # silent unit
    times, offsets = build_csr([unit0, unit1])
    al = align_spikes_to_trials(times, offsets, starts, go)
    # spikes before the first trial start are dropped; a spike exactly at a trial start
    # belongs to that trial; the last trial takes every later spike
    np.testing.assert_array_equal(al.spikes(0, 0), [10.0 - 12.0, 12.0 - 12.0, 19.5 - 12.0])
    np.testing.assert_array_equal(al.spikes(0, 1), [0.0, 9.0])  # no go cue: from trial start
    np.testing.assert_array_equal(al.spikes(0, 2), [30.0 - 31.5, 100.0 - 31.5])
    assert al.counts().tolist() == [[3, 2, 2], [0, 0, 0]]
    assert al.aligned_to_go.tolist() == [True, False, True]
    assert al.pair_index().tolist() == [0, 0, 0, 1, 1, 2, 2]
    assert [len(a) for a in al.trial_spikes(1)] == [0, 0, 0]


def test_build_csr_sorts_and_validation_rejects_unsorted():
    times, offsets = build_csr([np.array([3.0, 1.0, 2.0]), np.array([5.0])])
    assert times.tolist() == [1.0, 2.0, 3.0, 5.0] and offsets.tolist() == [0, 3, 4]
    unsorted, offs = build_csr([np.array([3.0, 1.0])], sort=False)
    with pytest.raises(ValueError, match="sorted"):
        align_spikes_to_trials(unsorted, offs, np.array([0.0]), np.array([1.0]))
    # a decrease across a unit boundary is fine
    ok, offs2 = build_csr([np.array([5.0, 6.0]), np.array([1.0])], sort=False)
    align_spikes_to_trials(ok, offs2, np.array([0.0]), np.array([1.0]))
    with pytest.raises(ValueError, match="increasing"):
        align_spikes_to_trials(ok, offs2, np.array([1.0, 1.0]), np.array([0.0, 0.0]))


def test_empty_inputs():
    times, offsets = build_csr([])
    al = align_spikes_to_trials(times, offsets, np.array([0.0, 1.0]), np.array([0.5, 0.5]))
    assert al.n_units == 0 and al.counts().shape == (0, 2)
    times, offsets = build_csr([np.array([1.0])])
    al = align_spikes_to_trials(times, offsets, np.zeros(0), np.zeros(0))
    assert al.counts().shape == (1, 0)


def test_raster_subset_and_order():
    s = make_session(5, n_units=4, n_trials=30)
    al = _aligned(s)
    ref = ref_align(s.spike_trains, s.trial_starts, s.go_cues)
    trials = [7, 2, 19, 2]
    x, tr = raster(al, 1, trials)
    np.testing.assert_array_equal(x, np.concatenate([ref[1][t] for t in trials]))
    np.testing.assert_array_equal(tr, np.concatenate([[t] * len(ref[1][t]) for t in trials]))
    x_all, tr_all = raster(al, 1)
    assert len(x_all) == sum(len(a) for a in ref[1])
    x0, tr0 = raster(al, 3, [0, 1])  # the silent unit
    assert x0.size == 0 and tr0.size == 0
    with pytest.raises(IndexError):
        raster(al, 0, [30])


def test_alignment_detects_a_perturbed_spike():
    """The comparison used above is sharp: moving one spike by 1 µs is seen."""
    s = make_session(9, n_units=3, n_trials=10)
    al = _aligned(s)
    trains = [t.copy() for t in s.spike_trains]
    k = len(trains[0]) // 2
    trains[0][k] += 1e-6
    ref = ref_align(trains, s.trial_starts, s.go_cues)
    assert any(not np.array_equal(al.spikes(0, t), ref[0][t]) for t in range(al.n_trials))
