"""Parsing generated Bpod sessions must reproduce the generator's designed ground truth."""

from __future__ import annotations

import re

import pytest

from experiment.ingest.bpod import (
    PHOTOSTIM_POWER_MW,
    PHOTOSTIM_PROTOCOLS,
    ParsedSession,
    parse_behavior_filename,
    parse_session,
)
from experiment.ingest.synthetic import (
    GroundTruth,
    build_synthetic_session,
    write_mat,
    write_synthetic_session,
)

SKIP_REASON_PATTERNS = {
    "protocol": r"^GUI\.ProtocolType is [12] \(",
    "no_protocol": r"^GUI\.ProtocolType is missing$",
    "missing_state": r"^state machine lacks (StopLicking|ResponseCue|DelayPeriod)$",
    "not_visited": r"never visited$",
}


def assert_matches_truth(parsed: ParsedSession, truth: GroundTruth) -> None:
    """Every designed trial, label by label, plus the session-level fields."""
    assert parsed.h2o == truth.h2o
    assert parsed.protocol_name == truth.protocol_name
    assert parsed.behavior_file == truth.file_name
    assert parsed.session_datetime_utc == truth.session_datetime_utc
    assert parsed.task_type == truth.task_type
    assert parsed.photostim_period == truth.photostim_period
    assert parsed.n_trials_in_file == truth.n_trials_in_file

    skipped = {s.trial: s.reason for s in parsed.skipped}
    assert sorted(skipped) == [t.trial for t in truth.trials if t.skipped]
    for t in truth.trials:
        if t.skipped:
            assert re.search(SKIP_REASON_PATTERNS[t.skip_kind], skipped[t.trial]), (
                t.trial,
                t.skip_kind,
                skipped[t.trial],
            )

    ingested = truth.ingested
    assert [p.trial for p in parsed.trials] == [t.trial for t in ingested]
    for p, t in zip(parsed.trials, ingested, strict=True):
        label = f"trial {t.trial}"
        assert p.trial_uid == t.trial, label
        assert p.file_trial == t.file_trial, label
        assert p.start_time == pytest.approx(t.start_time, abs=1e-9), label
        assert p.stop_time == pytest.approx(t.stop_time, abs=1e-9), label
        assert p.task_protocol == (1 if truth.task_type == "delay-response" else t.protocol_type)
        assert p.instruction == t.instruction, label
        assert p.outcome == t.outcome, label
        assert p.early_lick == t.early_lick, label
        assert p.auto_water == t.auto_water, label
        assert p.free_water == t.free_water, label
        assert p.bitcode == t.bitcode, label
        assert [e.event_type for e in p.events] == [e[0] for e in t.events], label
        assert [x for e in p.events for x in e[1:]] == pytest.approx(
            [x for e in t.events for x in e[1:]], abs=1e-9
        ), label
        if truth.task_type == "delay-response":
            assert p.notes == {
                "protocol #": str(t.protocol_type),
                "autolearn": str(t.autolearn),
                "bitcode": t.bitcode,
            }, label
            left = [a.time for a in p.actions if a.action_type == "left lick"]
            right = [a.time for a in p.actions if a.action_type == "right lick"]
            assert (tuple(left), tuple(right)) == (t.left_licks, t.right_licks), label
            times = [a.time for a in p.actions]
            assert times == sorted(times), label
            go = [e.time for e in p.events if e.event_type == "go"]
            assert (go[0] if go else None) == t.go_cue_time, label
            if t.photostim is None:
                assert p.photostim_events == (), label
            else:
                (event,) = p.photostim_events
                assert event.photo_stim == t.photostim, label
                assert event.time == pytest.approx(t.photostim_onset, abs=1e-9), label
                assert event.power == PHOTOSTIM_POWER_MW, label
            assert (p.block, p.block_trial_number, p.water_port) == (None, None, None)
        else:
            assert p.notes == {"protocol #": str(t.protocol_type), "bitcode": t.bitcode}, label
            assert p.actions == () and p.photostim_events == (), label
            assert (p.block, p.block_trial_number, p.water_port) == (
                t.block,
                t.block_trial_number,
                t.water_port,
            ), label

    assert parsed.photostims == tuple(PHOTOSTIM_PROTOCOLS[i] for i in truth.photostim_ids)
    assert len(parsed.blocks) == len(truth.blocks)
    for pb, tb in zip(parsed.blocks, truth.blocks, strict=True):
        assert pb.block == tb.block
        assert pb.water_port == tb.water_port
        assert (pb.position_x, pb.position_y, pb.position_z) == pytest.approx(
            (tb.position_x, tb.position_y, tb.position_z)
        )
        assert pb.trial_count == tb.trial_count
        assert pb.trials == tb.trials
        assert pb.block_start_time == pytest.approx(tb.block_start_time, abs=1e-9)
        assert pb.num_licks_for_reward == tb.num_licks_for_reward
        assert pb.roll_deg == tb.roll_deg
        assert (pb.position_x_bins, pb.position_y_bins, pb.position_z_bins) == (
            tb.num_bins,
            1,
            tb.num_bins,
        )
    if truth.task_type == "multi-target-licking":
        assert parsed.task_protocols == tuple(sorted({t.protocol_type for t in ingested}))


CONFIGS = {
    "mixed": dict(n_trials=150, skip_rate=0.12, free_water_rate=0.1, auto_water_rate=0.2),
    "early-delay-photostim": dict(n_trials=150, photostim=True, skip_rate=0.05),
    "late-delay-photostim": dict(
        n_trials=150, h2o="SC038", photostim=True, photostim_period="late-delay", skip_rate=0.05
    ),
    "fixed-protocol-reversal-2": dict(n_trials=60, protocol_type=7, reversal=2),
    "mtl": dict(n_trials=150, mtl=True, skip_rate=0.05, free_water_rate=0.1, auto_water_rate=0.2),
    "realistic": dict(
        n_trials=40, photostim=True, skip_rate=0.1, bitcode_states=True, realistic_settings=True
    ),
    "one-trial": dict(n_trials=1),
    "one-trial-mtl": dict(n_trials=1, mtl=True),
}


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_parse_equals_ground_truth_v5(tmp_path, config, seed):
    truth = write_synthetic_session(tmp_path, seed=seed, **CONFIGS[config])
    assert_matches_truth(parse_session(truth.path), truth)


@pytest.mark.parametrize(
    "config", ["mixed", "early-delay-photostim", "late-delay-photostim", "mtl", "one-trial-mtl"]
)
def test_parse_equals_ground_truth_v73(tmp_path, config):
    options = dict(CONFIGS[config], n_trials=min(CONFIGS[config]["n_trials"], 40))
    truth = write_synthetic_session(tmp_path, seed=5, mat_format="7.3", **options)
    with truth.path.open("rb") as fh:
        assert fh.read(19) == b"MATLAB 7.3 MAT-file"
    assert_matches_truth(parse_session(truth.path), truth)


# ------------------------------------------------------------------------------------------
# The generated sessions really contain the cases the rules distinguish
# ------------------------------------------------------------------------------------------


def _truth(config: str, seed: int = 1) -> GroundTruth:
    return build_synthetic_session(seed=seed, **CONFIGS[config]).truth


def test_mixed_sessions_cover_every_label():
    trials = _truth("mixed").trials
    ingested = [t for t in trials if not t.skipped]
    assert {t.skip_kind for t in trials if t.skipped} == set(SKIP_REASON_PATTERNS)
    assert {t.outcome for t in ingested} == {"hit", "miss", "ignore"}
    assert {t.instruction for t in ingested} == {"left", "right"}
    assert {t.early_lick for t in ingested} == {"early", "no early"}
    assert {t.auto_water for t in ingested} == {True, False}
    assert {t.free_water for t in ingested} == {True, False}
    # EarlyLick states entered under protocol 3-4 must not count as early
    assert any(t.early_state_visited and t.protocol_type < 5 for t in ingested)
    assert any(t.go_cue_count > 1 and t.outcome == "hit" for t in ingested)
    assert any(t.go_cue_time is None for t in ingested)  # free-water trials have no go cue
    assert trials[0].start_time == 0.0


@pytest.mark.parametrize("config", ["early-delay-photostim", "late-delay-photostim"])
def test_photostim_sessions_have_stim_and_decoy_trials(config):
    ingested = _truth(config).ingested
    stimulated = [t for t in ingested if t.photostim]
    decoys = [t for t in ingested if t.stim_id and not t.photostim]
    assert {t.photostim for t in stimulated} == {4, 5, 6}
    assert len(decoys) >= 5  # StimTrials set but one photostim condition broken
    assert any(t.autolearn != 4 for t in decoys)
    if config == "early-delay-photostim":
        assert all(t.protocol_type == 5 for t in stimulated)
        assert any(t.protocol_type != 5 for t in decoys)
        assert all(
            t.photostim_onset == [e for e in t.events if e[0] == "delay"][-1][1] for t in stimulated
        )
    else:
        protocols = {t.protocol_type for t in stimulated}
        assert protocols <= {5, 6, 7} and len(protocols) > 1
        assert all(t.photostim_onset == pytest.approx(t.go_cue_time - 0.5) for t in stimulated)


def test_mtl_sessions_have_invalid_trials_and_several_blocks():
    truth = _truth("mtl")
    assert truth.n_trials_in_file == 150
    assert any(t.file_trial != t.trial for t in truth.trials)  # invalid trials renumbered
    assert len(truth.blocks) > 10
    assert any(t.skipped for t in truth.trials)
    assert len({b.water_port for b in truth.blocks}) > 3


def test_late_delay_is_recognised_from_name(tmp_path):
    truth = write_synthetic_session(tmp_path, seed=4, **CONFIGS["late-delay-photostim"])
    assert truth.file_name.startswith("SC038_SC_RecordingRig3_")
    parsed = parse_session(truth.path)
    assert parsed.photostim_period == "late-delay"
    # the same file under another rig name is early-delay, and the onsets move accordingly
    renamed = truth.path.with_name(truth.file_name.replace("RecordingRig3", "RecordingRig2"))
    truth.path.rename(renamed)
    early = parse_session(renamed)
    assert early.photostim_period == "early-delay"
    assert sum(t.is_photostim for t in early.trials) < sum(t.is_photostim for t in parsed.trials)


# ------------------------------------------------------------------------------------------
# Generator contract
# ------------------------------------------------------------------------------------------


def test_generator_is_deterministic():
    a = build_synthetic_session(seed=9, n_trials=30, photostim=True, skip_rate=0.1)
    b = build_synthetic_session(seed=9, n_trials=30, photostim=True, skip_rate=0.1)
    c = build_synthetic_session(seed=10, n_trials=30, photostim=True, skip_rate=0.1)
    assert a.truth == b.truth
    assert a.truth != c.truth


def test_generated_file_name_follows_the_pattern(tmp_path):
    truth = write_synthetic_session(tmp_path, h2o="ab12", n_trials=3, seed=1)
    name = parse_behavior_filename(truth.path)
    assert (name.h2o, name.protocol) == ("ab12", "tw2")
    assert name.date == truth.session_datetime_utc.date()
    assert truth.path.parent == tmp_path


def test_session_datetime_option(tmp_path):
    """Naive datetimes are UTC; the file name keeps the session's date near midnight."""
    from datetime import UTC, datetime, timedelta, timezone

    truth = write_synthetic_session(
        tmp_path / "a", n_trials=3, seed=1, session_datetime=datetime(2021, 4, 15, 0, 10, 5)
    )
    assert truth.session_datetime_utc == datetime(2021, 4, 15, 0, 10, 5, tzinfo=UTC)
    assert truth.file_name == "sy01_tw2_20210415_001005.mat"
    parsed = parse_session(truth.path)
    assert parsed.session_datetime_utc == truth.session_datetime_utc

    eastern = timezone(timedelta(hours=-5))
    truth = write_synthetic_session(
        tmp_path / "b",
        n_trials=3,
        seed=1,
        session_datetime=datetime(2021, 4, 15, 9, 0, tzinfo=eastern),
    )
    assert truth.session_datetime_utc == datetime(2021, 4, 15, 14, 0, tzinfo=UTC)
    assert parse_session(truth.path).session_datetime_utc == truth.session_datetime_utc


def test_bitcodes_are_16_bit_strings():
    trials = _truth("mixed").trials
    assert all(re.fullmatch(r"[01]{16}", t.bitcode) for t in trials)
    assert len({t.bitcode for t in trials}) > len(trials) * 0.9


def test_generator_rejects_late_delay_without_sc_animal():
    with pytest.raises(ValueError, match="SC"):
        build_synthetic_session(photostim=True, photostim_period="late-delay", h2o="dl25")


def test_write_mat_rejects_unknown_format(tmp_path):
    with pytest.raises(ValueError, match="mat_format"):
        write_mat(tmp_path / "x.mat", {"a": 1.0}, mat_format="4")


def test_generating_1000_trials(tmp_path):
    """1,000 designed trials are all written (generation speed belongs to bench/, not here)."""
    truth = write_synthetic_session(tmp_path, n_trials=1000, seed=0)
    assert len(truth.trials) == 1000
    assert truth.path is not None and truth.path.exists()
