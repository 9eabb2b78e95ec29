"""Period / unit selectivity and coding direction (spec §8) against per-unit loops."""

import numpy as np
import pytest
from scipy import stats

from ephys.analysis import (
    CONDITION_NAMES,
    PERIODS,
    TrialLabels,
    align_spikes_to_trials,
    build_csr,
    cd_projected_psth,
    coding_direction,
    condition_membership,
    hemisphere_from_ml,
    period_selectivity,
    period_windows,
    selectivity_trial_mask,
    unit_selectivity,
)
from ephys.analysis.reference import (
    ref_align,
    ref_cd_projected_psth,
    ref_coding_direction,
    ref_period_selectivity,
    ref_unit_selectivity,
)
from ephys.analysis.selectivity import contra_ipsi_condition_names, student_ttest
from ephys.analysis.synthetic import make_session


def _setup(seed, **kw):
    s = make_session(seed, **kw)
    times, offsets = build_csr(s.spike_trains)
    al = align_spikes_to_trials(times, offsets, s.trial_starts, s.go_cues)
    return s, al, ref_align(s.spike_trains, s.trial_starts, s.go_cues)


def _run(s, al):
    mask = selectivity_trial_mask(s.labels, s.delay_duration)
    res = period_selectivity(
        al, mask, s.labels.trial_instruction, s.hemisphere, period_windows(s.events)
    )
    return mask, res


def _check_against_reference(s, al, ref, mask, res):
    ok = mask & al.aligned_to_go
    for u in range(al.n_units):
        for j, p in enumerate(res.periods):
            sel, mi, mc, pv = ref_period_selectivity(
                ref[u], ok, s.labels.trial_instruction, s.hemisphere[u], s.events, PERIODS[p]
            )
            assert res.selectivity[u, j] == sel, (u, p)
            np.testing.assert_allclose(
                [res.ipsi_firing_rate[u, j], res.contra_firing_rate[u, j], res.p_value[u, j]],
                [mi, mc, pv],
                rtol=1e-9,
                atol=1e-12,
                equal_nan=True,
                err_msg=f"unit {u} period {p}",
            )


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_period_selectivity_equals_loop_reference(seed):
    s, al, ref = _setup(seed, n_units=10, n_trials=100, hemisphere=None, free_water_fraction=0.05)
    mask, res = _run(s, al)
    assert res.periods == ("sample", "delay", "response")
    assert res.selectivity.shape == (10, 3)
    _check_against_reference(s, al, ref, mask, res)


def test_ground_truth_delay_preference_is_recovered():
    s, al, _ = _setup(11, n_units=16, n_trials=200, extra_rate=30.0, selective_fraction=0.5)
    _, res = _run(s, al)
    delay = res.selectivity[:, res.periods.index("delay")]
    for u, pref in enumerate(s.delay_preference):
        if pref > 0:
            assert delay[u] == "contra-selective", u
        elif pref < 0:
            assert delay[u] == "ipsi-selective", u
    # the extra spikes are confined to the delay: sample/response stay mostly non-selective
    others = res.selectivity[:, [0, 2]]
    assert (others == "non-selective").mean() > 0.8


def test_hemisphere_decides_ipsi_and_contra():
    s, al, _ = _setup(12, n_units=6, n_trials=150, extra_rate=30.0, selective_fraction=1.0)
    mask = selectivity_trial_mask(s.labels, s.delay_duration)
    w = period_windows(s.events)
    left = period_selectivity(al, mask, s.labels.trial_instruction, "left", w)
    right = period_selectivity(al, mask, s.labels.trial_instruction, "right", w)
    np.testing.assert_allclose(left.ipsi_firing_rate, right.contra_firing_rate, equal_nan=True)
    np.testing.assert_allclose(left.p_value, right.p_value)
    swap = {"ipsi-selective": "contra-selective", "contra-selective": "ipsi-selective"}
    flipped = np.vectorize(lambda x: swap.get(x, x), otypes=[object])(left.selectivity)
    np.testing.assert_array_equal(flipped, right.selectivity)


def test_trial_mask_rules():
    n = 8
    labels = TrialLabels(
        task=np.array(["audio delay"] * 7 + ["foraging"], dtype=object),
        task_protocol=np.ones(n, dtype=int),
        trial_instruction=np.array(["left"] * n, dtype=object),
        outcome=np.array(["hit", "miss", "hit", "hit", "hit", "hit", "hit", "hit"], dtype=object),
        early_lick=np.array(["no early", "no early", "early"] + ["no early"] * 5, dtype=object),
        auto_water=np.array([0, 0, 0, 1, 0, 0, 0, 0]),
        free_water=np.array([0, 0, 0, 0, 1, 0, 0, 0]),
        stim_event_trial=np.array([5]),
        stim_event_brain_area=np.array([None], dtype=object),
        stim_event_laterality=np.array(["left"], dtype=object),
    )
    delay = np.array([1.2, 1.2, 1.2, 1.2, 1.2, 1.2, 1.2001, 1.2])
    m = selectivity_trial_mask(labels, delay)
    assert m.tolist() == [True, False, False, False, False, False, False, False]
    delay[6] = 1.20000001  # equal at the stored 4-decimal precision
    assert selectivity_trial_mask(labels, delay)[6]
    go = np.ones(n, dtype=bool)
    go[0] = False
    assert not selectivity_trial_mask(labels, delay, go)[0]


def test_period_windows_relative_to_go():
    ev = {"sample": np.array([0.5]), "delay": np.array([1.8]), "go": np.array([3.0])}
    w = period_windows(ev)
    assert w["sample"][0][0] == pytest.approx(-2.5) and w["sample"][1][0] == pytest.approx(-1.2)
    assert w["delay"][0][0] == pytest.approx(-1.2) and w["delay"][1][0] == 0.0
    assert w["response"][0][0] == 0.0 and w["response"][1][0] == pytest.approx(1.2)


def test_edge_cases_no_trials_one_side_zero_variance():
    s, al, ref = _setup(13, n_units=4, n_trials=60)
    w = period_windows(s.events)
    instr = s.labels.trial_instruction
    none = period_selectivity(al, np.zeros(al.n_trials, bool), instr, "left", w)
    assert (none.selectivity == "non-selective").all()
    assert (none.p_value == 1).all() and (none.ipsi_firing_rate == 0).all()
    assert (none.contra_firing_rate == 0).all()
    only_left = selectivity_trial_mask(s.labels, s.delay_duration) & (instr == "left")
    one = period_selectivity(al, only_left, instr, "left", w)
    assert (one.selectivity == "non-selective").all() and (one.p_value == 1).all()
    assert np.isnan(one.contra_firing_rate).all() and (one.n_contra == 0).all()
    assert (one.n_ipsi > 0).all()
    _check_against_reference(s, al, ref, only_left, one)
    # a NaN window (missing event) drops the trial from that period only
    ev = {k: v.copy() for k, v in s.events.items()}
    mask = selectivity_trial_mask(s.labels, s.delay_duration)
    usable = mask & al.aligned_to_go
    for side in ("left", "right"):  # one ipsi and one contra trial lose their sample event
        ev["sample"][int(np.flatnonzero(usable & (instr == side))[0])] = np.nan
    res = period_selectivity(al, mask, instr, s.hemisphere, period_windows(ev))
    n_ok = usable.sum()
    assert (res.n_ipsi[0] + res.n_contra[0]).tolist() == [n_ok - 2, n_ok, n_ok]
    assert np.isfinite(res.contra_firing_rate).all() and np.isfinite(res.ipsi_firing_rate).all()
    _check_against_reference_events(s, al, ref, mask, res, ev)


def _check_against_reference_events(s, al, ref, mask, res, ev):
    ok = mask & al.aligned_to_go
    for u in range(al.n_units):
        for j, p in enumerate(res.periods):
            sel, mi, mc, pv = ref_period_selectivity(
                ref[u], ok, s.labels.trial_instruction, s.hemisphere[u], ev, PERIODS[p]
            )
            assert res.selectivity[u, j] == sel
            np.testing.assert_allclose(
                [res.ipsi_firing_rate[u, j], res.contra_firing_rate[u, j], res.p_value[u, j]],
                [mi, mc, pv],
                rtol=1e-9,
                equal_nan=True,
            )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_student_ttest_matches_scipy(seed):
    rng = np.random.default_rng(seed)
    a = rng.poisson(5, (40, 12)).astype(float)
    a[0] = 3.0  # zero variance, equal means -> NaN
    a[1, :6], a[1, 6:] = 2.0, 4.0  # zero variance, different means -> p = 0
    am = rng.random((40, 12)) < 0.5
    am[:2] = np.arange(12) < 6
    am[2] = np.arange(12) < 1  # a group of one
    am[3] = False  # an empty group
    bm = ~am
    t, p, ma, mb = student_ttest(a, am, bm)
    import warnings

    for i in range(40):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rt, rp = stats.ttest_ind(a[i, am[i]], a[i, bm[i]], equal_var=True)
        np.testing.assert_allclose([t[i], p[i]], [rt, rp], rtol=1e-9, equal_nan=True, err_msg=i)
    assert np.isnan(p[0]) and p[1] == 0 and np.isnan(p[3])


def test_unit_selectivity_fixes_the_all_period_average():
    sel = np.array(
        [
            ["non-selective"] * 3,
            ["ipsi-selective", "non-selective", "non-selective"],
            ["contra-selective", "ipsi-selective", "non-selective"],
            ["contra-selective", "contra-selective", "contra-selective"],
        ],
        dtype=object,
    )
    ipsi = np.array([[9.0, 9, 9], [5, 1, 1], [1, 10, 100], [1, 2, 3]])
    contra = np.array([[1.0, 1, 1], [4, 9, 9], [2, 8, 0], [2, 3, 4]])
    got = unit_selectivity(sel, ipsi, contra)
    # unit 1: over all periods contra would win (19 > 7); over the selective one ipsi wins
    # unit 2: over all periods ipsi wins by the non-selective response period; over the two
    # selective ones ipsi mean 5.5 > contra mean 5.0
    assert got.tolist() == [
        "non-selective",
        "ipsi-selective",
        "ipsi-selective",
        "contra-selective",
    ]
    for u in range(4):
        assert got[u] == ref_unit_selectivity(sel[u], ipsi[u], contra[u])


@pytest.mark.parametrize("seed", [0, 1])
def test_unit_selectivity_random_against_reference(seed):
    s, al, _ = _setup(seed + 20, n_units=12, n_trials=120, hemisphere=None)
    _, res = _run(s, al)
    got = unit_selectivity(res.selectivity, res.ipsi_firing_rate, res.contra_firing_rate)
    for u in range(12):
        assert got[u] == ref_unit_selectivity(
            res.selectivity[u], res.ipsi_firing_rate[u], res.contra_firing_rate[u]
        )


def test_hemisphere_from_ml():
    assert hemisphere_from_ml([1500.0, -1500.0]).tolist() == ["right", "left"]
    with pytest.raises(ValueError):
        hemisphere_from_ml(0.0)
    assert contra_ipsi_condition_names("left") == (
        "good_noearlylick_right_hit",
        "good_noearlylick_left_hit",
    )
    with pytest.raises(ValueError):
        contra_ipsi_condition_names("both")


def test_coding_direction_unit_norm_and_reference():
    rng = np.random.default_rng(3)
    time = np.linspace(-3, 3, 151)[1:]
    c, i = rng.uniform(0, 20, (7, 150)), rng.uniform(0, 20, (7, 150))
    cd = coding_direction(c, i, time, (-0.4, 0.0))
    assert np.linalg.norm(cd) == pytest.approx(1.0)
    ref = ref_coding_direction(list(zip(c, [time] * 7)), list(zip(i, [time] * 7)), (-0.4, 0.0))
    np.testing.assert_allclose(cd, ref, rtol=1e-12)
    whole = coding_direction(c, i, time, None)
    sel = time < time.max()
    d = c[:, sel].mean(1) - i[:, sel].mean(1)
    np.testing.assert_allclose(whole, d / np.linalg.norm(d), rtol=1e-12)
    assert np.isnan(coding_direction(c, c, time)).all()
    with pytest.raises(ValueError):
        coding_direction(c, i, time, (10.0, 11.0))


@pytest.mark.parametrize("seed", [0, 1])
def test_cd_projected_psth_against_reference(seed):
    s, al, ref = _setup(seed + 30, n_units=8, n_trials=120, extra_rate=30.0)
    m = condition_membership(s.labels)
    c_name, i_name = contra_ipsi_condition_names("left")
    contra = np.flatnonzero(m[:, CONDITION_NAMES.index(c_name)] & al.aligned_to_go)
    ipsi = np.flatnonzero(m[:, CONDITION_NAMES.index(i_name)] & al.aligned_to_go)
    cd, pc, pi, time = cd_projected_psth(al, contra, ipsi, (-0.4, 0.0))
    rcd, rpc, rpi, rtime = ref_cd_projected_psth(ref, contra, ipsi, (-0.4, 0.0))
    np.testing.assert_allclose(cd, rcd, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(pc, rpc, rtol=1e-10, atol=1e-9)
    np.testing.assert_allclose(pi, rpi, rtol=1e-10, atol=1e-9)
    np.testing.assert_array_equal(time, rtime)
    assert pc.shape == (len(contra), 150) and pi.shape == (len(ipsi), 150)
    # contra-preferring delay units: contra trials project higher just before the go cue
    late = (time > -0.4) & (time <= 0)
    if (s.delay_preference[:8] != 0).any():
        assert pc[:, late].mean() > pi[:, late].mean()
    with pytest.raises(ValueError):
        cd_projected_psth(al, contra, [])


def test_windows_are_half_open_at_event_times():
    # one unit, two trials (left, right), go at 3.0 s, delay at 1.8 s, sample at 0.5 s
    ev = {"sample": np.array([0.5, 0.5]), "delay": np.array([1.8, 1.8]), "go": np.array([3.0, 3.0])}
    starts = np.array([0.0, 100.0])
    # spikes exactly at the sample, delay, go and go + 1.2 s of trial 0, plus one in trial 1
    unit = np.array([0.5, 1.8, 3.0, 4.2, 103.5])
    times, offsets = build_csr([unit])
    al = align_spikes_to_trials(times, offsets, starts, ev["go"])
    w = period_windows(ev)
    from ephys.analysis.selectivity import _window_counts

    counts = _window_counts(al, np.array([0, 1]), [w[p] for p in ("sample", "delay", "response")])
    # [sample, delay) gets 0.5 s; [delay, go) gets 1.8 s; [go, go + 1.2) gets 3.0 s (not 4.2)
    assert counts[0].tolist() == [[1, 1, 1], [0, 0, 1]]
    ref = ref_align([unit], starts, ev["go"])
    ok = np.array([True, True])
    instr = np.array(["left", "right"], dtype=object)
    res = period_selectivity(al, ok, instr, "left", w)
    for j, p in enumerate(res.periods):
        sel, mi, mc, pv = ref_period_selectivity(ref[0], ok, instr, "left", ev, PERIODS[p])
        assert res.selectivity[0, j] == sel
        np.testing.assert_allclose(
            [res.ipsi_firing_rate[0, j], res.contra_firing_rate[0, j]], [mi, mc]
        )
    assert res.ipsi_firing_rate[0].tolist() == pytest.approx([1 / 1.3, 1 / 1.2, 1 / 1.2])
