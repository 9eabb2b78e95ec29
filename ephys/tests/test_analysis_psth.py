"""UnitPsth (spec §8) for all units × conditions against np.histogram loops."""

import numpy as np
import pytest

from ephys.analysis import (
    CONDITION_NAMES,
    align_spikes_to_trials,
    build_csr,
    compute_psths,
    condition_membership,
    per_trial_psth,
    psth_edges,
    unit_psth,
)
from ephys.analysis.psth import bin_index
from ephys.analysis.reference import (
    ref_align,
    ref_psth,
    ref_psth_all,
    ref_psth_all_concat,
    ref_unit_psth_per_trial,
)
from ephys.analysis.synthetic import make_session


def _setup(seed, **kw):
    s = make_session(seed, **kw)
    times, offsets = build_csr(s.spike_trains)
    al = align_spikes_to_trials(times, offsets, s.trial_starts, s.go_cues)
    return s, al, ref_align(s.spike_trains, s.trial_starts, s.go_cues)


def test_edges_and_time_vector():
    e = psth_edges()
    assert len(e) == 151 and e[0] == -3.0 and e[-1] == 3.0
    np.testing.assert_allclose(np.diff(e), 0.04, rtol=1e-12)
    s, al, _ = _setup(0, n_units=3, n_trials=20)
    res = compute_psths(al, condition_membership(s.labels))
    assert res.rates.shape == (3, 17, 150) and res.trial_count.shape == (3, 17)
    np.testing.assert_array_equal(res.time, e[1:])  # right bin edges
    with pytest.raises(ValueError):
        psth_edges(0, 1, 0.3)
    with pytest.raises(ValueError, match="uniform"):
        compute_psths(al, condition_membership(s.labels), edges=np.array([-1.0, 0.0, 0.5]))


def test_bin_index_matches_np_histogram_on_edges_and_neighbours():
    e = psth_edges()
    rng = np.random.default_rng(0)
    on = np.concatenate([e, np.nextafter(e, -np.inf), np.nextafter(e, np.inf)])
    grid = -3 + 0.04 * np.arange(-5, 160)  # exact-arithmetic edges computed another way
    x = np.concatenate([on, grid, rng.uniform(-4, 4, 20000), [-1e4, 1e4]])
    b = bin_index(x, e)
    for i, v in enumerate(x):
        h = np.histogram([v], bins=e)[0]
        assert (b[i] == -1) == (h.sum() == 0), v
        if h.sum():
            assert h[b[i]] == 1, v
    # the vectorized PSTH path uses its own inline binning: same counts as np.histogram
    times, offsets = build_csr([np.sort(x + 10.0)])
    al = align_spikes_to_trials(times, offsets, np.array([0.0]), np.array([10.0]))
    res = compute_psths(al, np.ones((1, 1), dtype=bool))
    expected = np.histogram(al.spikes(0, 0), bins=e)[0] / 0.04
    np.testing.assert_allclose(res.rates[0, 0], expected, rtol=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_psth_equals_both_loop_references(seed):
    s, al, ref = _setup(seed, n_units=10, n_trials=90, free_water_fraction=0.08)
    m = condition_membership(s.labels)
    res = compute_psths(al, m)
    r_rates, r_counts = ref_psth_all(ref, m, al.aligned_to_go)
    c_rates, c_counts = ref_psth_all_concat(ref, m, al.aligned_to_go)
    np.testing.assert_array_equal(res.trial_count, r_counts)
    np.testing.assert_array_equal(res.trial_count, c_counts)
    np.testing.assert_allclose(res.rates, r_rates, rtol=1e-12, atol=1e-12, equal_nan=True)
    np.testing.assert_allclose(res.rates, c_rates, rtol=1e-12, atol=1e-12, equal_nan=True)
    # every unit of the insertion reports its own trial count for the condition (§19.7)
    assert (res.trial_count == m[al.aligned_to_go].sum(axis=0)).all()


def test_silent_unit_zero_trial_condition_and_no_go_trials():
    s, al, ref = _setup(4, n_units=5, n_trials=40, n_silent_units=1, free_water_fraction=0.2)
    m = condition_membership(s.labels)
    m[:, 3] = False  # a condition with no trial at all
    m[:, 4] = ~al.aligned_to_go  # a condition made only of trials without go cue
    res = compute_psths(al, m)
    assert (res.trial_count[:, 3] == 0).all() and np.isnan(res.rates[:, 3]).all()
    assert (res.trial_count[:, 4] == 0).all()
    assert res.unit_psth_blob(0, 3) is None
    blob = res.unit_psth_blob(0, 0)
    assert blob.shape == (2, 150)
    np.testing.assert_array_equal(blob[1], res.time)
    silent = al.n_units - 1
    ok = res.trial_count[silent] > 0
    assert (res.rates[silent][ok] == 0).all()
    r_rates, _ = ref_psth_all(ref, m, al.aligned_to_go)
    np.testing.assert_allclose(res.rates, r_rates, rtol=1e-12, equal_nan=True)


def test_known_rates_by_hand():
    # 2 trials (go at 4 s and 1 s); unit spikes at -2.999 (bin 0) and +3.0 (last bin, closed)
    # in trial 0 and at 0.0 (bin 75) twice in trial 1
    starts = np.array([0.0, 100.0])
    go = np.array([4.0, 1.0])
    unit = np.array([4.0 - 2.999, 4.0 + 3.0, 101.0, 101.0])
    times, offsets = build_csr([unit])
    al = align_spikes_to_trials(times, offsets, starts, go)
    res = compute_psths(al, np.array([[True, True], [True, False]]))
    r_both, r_first = res.rates[0, 0], res.rates[0, 1]
    assert r_both[0] == pytest.approx(1 / 2 / 0.04)
    assert r_both[149] == pytest.approx(1 / 2 / 0.04)
    assert r_both[75] == pytest.approx(2 / 2 / 0.04)
    assert r_both.sum() == pytest.approx(4 / 2 / 0.04)
    assert r_first[75] == 0 and r_first[0] == pytest.approx(1 / 0.04)
    assert res.trial_count.tolist() == [[2, 1]]


@pytest.mark.parametrize("seed", [5, 6])
def test_per_trial_and_unit_psth(seed):
    s, al, ref = _setup(seed, n_units=6, n_trials=50)
    trials = np.flatnonzero(al.aligned_to_go)[::3]
    rates, time = per_trial_psth(al, trials)
    assert rates.shape == (6, len(trials), 150)
    for u in range(6):
        np.testing.assert_allclose(rates[u], ref_unit_psth_per_trial(ref[u], trials), rtol=1e-12)
        psth, t = unit_psth(al, u, trials)
        expected, _ = ref_psth(ref[u], trials)
        np.testing.assert_allclose(psth, expected, rtol=1e-12, atol=1e-12)
        pt, _ = unit_psth(al, u, trials, per_trial=True)
        np.testing.assert_allclose(pt, rates[u], rtol=1e-12)
    np.testing.assert_array_equal(time, psth_edges()[1:])
    # repeated trials and a unit subset, in the requested order
    sub, _ = per_trial_psth(al, [trials[2], trials[0], trials[2]], units=[4, 1])
    np.testing.assert_allclose(sub[0, 0], sub[0, 2])
    np.testing.assert_allclose(sub[1, 1], rates[1, 0])
    assert unit_psth(al, 0, []) is None


def test_per_trial_psth_rejects_trials_without_go_cue():
    s, al, _ = _setup(7, n_units=2, n_trials=40, free_water_fraction=0.3)
    bad = np.flatnonzero(~al.aligned_to_go)
    assert bad.size
    with pytest.raises(ValueError):
        per_trial_psth(al, bad[:1])
    assert unit_psth(al, 0, bad) is None  # unit_psth drops them, nothing left


def test_comparison_detects_a_single_moved_spike():
    s, al, ref = _setup(8, n_units=3, n_trials=30)
    m = condition_membership(s.labels)
    j = CONDITION_NAMES.index("all_noearlylick_nostim")
    res = compute_psths(al, m)
    t = int(np.flatnonzero(m[:, j] & al.aligned_to_go)[0])
    k = int(np.flatnonzero(np.abs(ref[0][t]) < 2.5)[0])
    ref[0][t] = ref[0][t].copy()
    ref[0][t][k] += 0.04  # one spike one bin later
    r_rates, _ = ref_psth_all(ref, m, al.aligned_to_go)
    assert not np.allclose(res.rates[0, j], r_rates[0, j])


def test_degenerate_shapes():
    # no trial at all
    times, offsets = build_csr([np.array([1.0, 2.0]), np.zeros(0)])
    al = align_spikes_to_trials(times, offsets, np.zeros(0), np.zeros(0))
    res = compute_psths(al, np.zeros((0, 17), dtype=bool))
    assert res.rates.shape == (2, 17, 150) and (res.trial_count == 0).all()
    assert np.isnan(res.rates).all()
    assert per_trial_psth(al, [])[0].shape == (2, 0, 150)
    # no unit
    times, offsets = build_csr([])
    al = align_spikes_to_trials(times, offsets, np.array([0.0, 5.0]), np.array([1.0, 1.0]))
    assert compute_psths(al, np.ones((2, 3), dtype=bool)).rates.shape == (0, 3, 150)
    # only silent units
    times, offsets = build_csr([np.zeros(0)] * 3)
    al = align_spikes_to_trials(times, offsets, np.array([0.0, 5.0]), np.array([1.0, 1.0]))
    res = compute_psths(al, np.ones((2, 2), dtype=bool))
    assert (res.rates == 0).all() and (res.trial_count == 2).all()
    with pytest.raises(ValueError, match="membership"):
        compute_psths(al, np.ones((3, 2), dtype=bool))
