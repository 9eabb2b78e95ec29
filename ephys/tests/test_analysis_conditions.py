"""The 17 trial conditions of spec §8: table contents and trial membership."""

import hashlib

import numpy as np
import pytest

from ephys.analysis import (
    CONDITION_NAMES,
    TRIAL_CONDITIONS,
    TrialCondition,
    TrialLabels,
    condition_hash,
    condition_membership,
)
from ephys.analysis.reference import ref_condition_membership
from ephys.analysis.trial_conditions import get_cond_name_from_keywords


def test_exactly_the_17_conditions_of_the_spec():
    exclude = [c.name for c in TRIAL_CONDITIONS if c.func == "exclude_stim"]
    include = [c.name for c in TRIAL_CONDITIONS if c.func == "include_stim"]
    assert sorted(exclude) == sorted(
        [
            "good_noearlylick_hit",
            "good_noearlylick_left_hit",
            "good_noearlylick_right_hit",
            "good_noearlylick_left_miss",
            "good_noearlylick_right_miss",
            "all_noearlylick_nostim",
            "all_noearlylick_nostim_left",
            "all_noearlylick_nostim_right",
        ]
    )
    expected_include = [
        f"all_noearlylick_{lat}_alm_stim{suffix}"
        for lat in ("left", "right", "both")
        for suffix in ("", "_left", "_right")
    ]
    assert sorted(include) == sorted(expected_include)
    assert len(TRIAL_CONDITIONS) == 17 and len(set(CONDITION_NAMES)) == 17
    for c in TRIAL_CONDITIONS:
        # common args of §8
        assert c.args["task"] == "audio delay" and c.args["task_protocol"] == 1
        assert c.args["auto_water"] == 0 and c.args["free_water"] == 0
        assert c.args["early_lick"] == "no early"
        if c.name.startswith("all_"):
            assert c.args["_outcome"] == "ignore" and "outcome" not in c.args


def test_condition_hash_is_md5_of_sorted_func_and_args_and_unique():
    c = TRIAL_CONDITIONS[0]
    key = {"trial_condition_func": "_get_trials_exclude_stim", **c.args}
    h = hashlib.md5(usedforsecurity=False)
    for k in sorted(key):
        h.update(k.encode())
        h.update(str(key[k]).encode())
    assert condition_hash(c) == h.hexdigest() == c.hash
    assert len({condition_hash(c) for c in TRIAL_CONDITIONS}) == 17


def _random_labels(seed, n=300):
    rng = np.random.default_rng(seed)
    obj = lambda values, p=None: rng.choice(np.array(values, dtype=object), n, p=p)  # noqa: E731
    m = n // 3
    return TrialLabels(
        task=obj(["audio delay", "audio delay", "audio delay", "foraging"]),
        task_protocol=rng.choice([1, 1, 1, 2], n),
        trial_instruction=obj(["left", "right", "none"], [0.45, 0.45, 0.1]),
        outcome=obj(["hit", "miss", "ignore"]),
        early_lick=obj(["no early", "early", "early, presample only"], [0.7, 0.2, 0.1]),
        auto_water=rng.random(n) < 0.1,
        free_water=rng.random(n) < 0.1,
        stim_event_trial=rng.integers(0, n, m),
        stim_event_brain_area=obj(["ALM", "alm", None, "vS1"])[:m],
        stim_event_laterality=obj(["left", "right", "both"])[:m],
    )


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_membership_equals_explicit_rules(seed):
    labels = _random_labels(seed)
    m = condition_membership(labels)
    ref = ref_condition_membership(labels)
    assert m.shape == (labels.n_trials, 17)
    for j, name in enumerate(CONDITION_NAMES):
        np.testing.assert_array_equal(m[:, j], ref[name], err_msg=name)
    assert m.any(axis=0).sum() >= 12  # the random labels exercise most conditions


def _labels(**over):
    base = dict(
        task=["audio delay"] * 6,
        task_protocol=[1] * 6,
        trial_instruction=["left", "right", "left", "right", "left", "left"],
        outcome=["hit", "hit", "miss", "ignore", "hit", "hit"],
        early_lick=["no early"] * 6,
        auto_water=[False] * 6,
        free_water=[False] * 6,
    )
    base.update(over)
    return TrialLabels(
        **{k: np.array(v, dtype=object) if k != "stim_event_trial" else v for k, v in base.items()}
    )


def test_stim_rules_by_hand():
    labels = _labels(
        stim_event_trial=np.array([4, 5, 5]),
        stim_event_brain_area=np.array(["ALM", None, "ALM"], dtype=object),
        stim_event_laterality=np.array(["left", "right", "both"], dtype=object),
    )
    m = condition_membership(labels)
    col = {n: m[:, j] for j, n in enumerate(CONDITION_NAMES)}
    # trials 4 and 5 have photostim: out of every exclude-stim condition
    assert col["good_noearlylick_hit"].tolist() == [True, True, False, False, False, False]
    assert col["all_noearlylick_nostim"].tolist() == [True, True, True, False, False, False]
    assert col["all_noearlylick_nostim_left"].tolist() == [True, False, True, False, False, False]
    # include-stim: ALM events only ("ALM" matches the condition's "alm"), by laterality
    assert np.flatnonzero(col["all_noearlylick_left_alm_stim"]).tolist() == [4]
    assert np.flatnonzero(col["all_noearlylick_left_alm_stim_left"]).tolist() == [4]
    assert not col["all_noearlylick_left_alm_stim_right"].any()
    assert np.flatnonzero(col["all_noearlylick_both_alm_stim"]).tolist() == [5]
    # trial 5's right-laterality event has no brain region: matches no include-stim condition
    assert not col["all_noearlylick_right_alm_stim"].any()


def test_exclusions_are_ored_inclusions_anded():
    labels = _labels()
    cond = TrialCondition(
        "x", "exclude_stim", {"trial_instruction": "left", "_outcome": "miss", "_task": "other"}
    )
    assert condition_membership(labels, [cond])[:, 0].tolist() == [
        True,
        False,
        False,
        False,
        True,
        True,
    ]
    cond2 = TrialCondition("y", "exclude_stim", {"_outcome": "miss", "_trial_instruction": "right"})
    assert condition_membership(labels, [cond2])[:, 0].tolist() == [
        True,
        False,
        False,
        False,
        True,
        True,
    ]
    with pytest.raises(ValueError, match="unknown"):
        condition_membership(labels, [TrialCondition("z", "exclude_stim", {"brain_loc": 1})])


def test_zero_trials_and_validation():
    labels = _labels(outcome=["ignore"] * 6)
    m = condition_membership(labels)
    assert not m[:, CONDITION_NAMES.index("good_noearlylick_hit")].any()
    with pytest.raises(ValueError):
        TrialLabels(
            task=np.array(["audio delay"]),
            task_protocol=np.array([1, 1]),
            trial_instruction=np.array(["left"]),
            outcome=np.array(["hit"]),
            early_lick=np.array(["no early"]),
            auto_water=np.array([0]),
            free_water=np.array([0]),
        )


def test_get_cond_name_from_keywords():
    assert get_cond_name_from_keywords(["good", "left"]) == [
        "good_noearlylick_left_hit",
        "good_noearlylick_left_miss",
    ]
    assert get_cond_name_from_keywords(["both_alm", "_left"]) == [
        "all_noearlylick_both_alm_stim_left"
    ]
    assert len(get_cond_name_from_keywords(["alm_stim"])) == 9
