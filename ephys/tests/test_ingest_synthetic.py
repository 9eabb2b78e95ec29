"""Generator -> discovery -> loaders -> alignment round trip against the ground truth."""

from datetime import datetime

import numpy as np
import pytest

from ephys.ingest.bitcode import (
    align_trials,
    find_bitcode_mat,
    read_bitcode_mat,
    spike_times_relative,
    trialize_spikes,
)
from ephys.ingest.discovery import discover_session
from ephys.ingest.geometry import NP2_MS, NP2_SS, neuropixels_electrodes
from ephys.ingest.phy import load_phy
from ephys.ingest.synthetic import BehaviorTrials, make_behavior_trials, make_synthetic_session


def ingest(s):
    """What the DB layer does, minus the DB: returns (meta, sorting, alignment, unit times)."""
    session, probes = discover_session([s.root], s.h2o, s.session_datetime)
    rec = probes[s.probe_number]
    meta = rec.read_meta()
    sorting = load_phy(rec.clustering.path, meta=meta)
    bf = read_bitcode_mat(find_bitcode_mat(rec.probe_dir, s.h2o))
    al = align_trials(
        bf.bitcodes,
        bf.trial_starts,
        bf.go_cues,
        s.behavior.bitcode_map,
        bf.trial_num,
        free_water_trials=s.behavior.free_water_trials,
        sampling_rate=sorting.sampling_rate,
        margin_samples=meta.pretrigger_margin_samples,
        source=bf.path,
    )
    rel = spike_times_relative(sorting.spike_samples, al, sorting.sampling_rate)
    return meta, sorting, al, rel


def test_full_round_trip(tmp_path):
    trials = make_behavior_trials(40, seed=11)
    s = make_synthetic_session(
        tmp_path,
        h2o="dl25",
        session_datetime=datetime(2018, 2, 25, 11, 23, 28),
        trials=trials,
        n_units=25,
        n_spikes=50_000,
        ephys_first_trial=3,  # ephys starts at behavior trial 4
        extra_ephys_trials=2,  # and runs two trials longer
        margin_s=0.1,
        seed=8,
    )
    meta, sorting, al, rel = ingest(s)
    assert meta.electrode_config.name == "1-384"
    assert al.behavior_trials.tolist() == list(range(4, 41))
    assert al.margin_samples == 3000
    assert np.array_equal(al.go_cues, s.ephys_go_cues[: al.n_trials])
    assert al.first_trial_start == s.first_trial_start
    for i, u in enumerate(sorting.unit_ids):
        assert np.allclose(rel[sorting.unit_slice(i)], s.unit_spike_times(u))
    # peak sites map to electrodes through the shank map
    electrodes = meta.sites_to_electrodes(sorting.unit_peak_site)
    assert np.array_equal(electrodes, s.unit_peak_channel + 1)
    # per-trial spikes relative to the go cue, for one unit, against a direct computation
    row, go_rel = trialize_spikes(
        sorting.spike_samples, al, sorting.sampling_rate, offsets=sorting.offsets
    )
    i = 0
    sl = sorting.unit_slice(i)
    samples = s.unit_spike_samples(sorting.unit_ids[i])
    k = 10  # aligned trial 10
    in_k = (samples >= al.trial_starts[k]) & (samples < al.trial_starts[k + 1])
    expected = (samples[in_k] - s.ephys_go_cues[k]) / s.sampling_rate
    assert np.allclose(go_rel[sl][row[sl] == k], expected)


def test_free_water_round_trip(tmp_path):
    # free-water trials have no goCue entry; the spec then needs #sTrig = #behavior trials
    trials = make_behavior_trials(30, seed=12, free_water=[7, 19])
    s = make_synthetic_session(tmp_path, trials=trials, n_units=8, n_spikes=20_000, seed=4)
    assert read_bitcode_mat(s.bitcode_path).go_cues.size == 28
    _, sorting, al, rel = ingest(s)
    assert al.behavior_trials.tolist() == list(range(1, 31))
    assert np.isnan(al.go_cues[[6, 18]]).all() and np.isfinite(np.delete(al.go_cues, [6, 18])).all()
    row, go_rel = trialize_spikes(sorting.spike_samples, al, sorting.sampling_rate)
    assert np.isnan(go_rel[row == 6]).all() and np.isfinite(go_rel[row == 7]).all()
    u = sorting.unit_ids[0]
    assert np.allclose(rel[sorting.unit_slice(0)], s.unit_spike_times(u))


def test_trial_num_fixes_a_bitcode_mismatch(tmp_path):
    trials = make_behavior_trials(12, seed=2)
    s = make_synthetic_session(
        tmp_path, trials=trials, n_units=5, n_spikes=2000, n_channels=16, write_trial_num=True
    )
    # corrupt the behavior record of trial 5: bitcodes no longer match, trialNum rescues it
    bad = BehaviorTrials(
        trials.trial_numbers,
        trials.start_times,
        trials.go_offsets,
        [c if t != 5 else "0" * 16 for t, c in zip(trials.trial_numbers, trials.bitcodes)],
    )
    s.behavior = bad
    _, _, al, _ = ingest(s)
    assert al.used_trial_num and al.behavior_trials.tolist() == list(range(1, 13))


def test_np2_multishank_generator(tmp_path):
    s = make_synthetic_session(
        tmp_path,
        probe_type=NP2_MS,
        n_units=6,
        n_spikes=3000,
        trials=make_behavior_trials(5, 3),
    )
    meta, sorting, _, _ = ingest(s)
    assert meta.probe_type == NP2_MS
    assert meta.electrode_config.name == "1-96; 1281-1376; 2561-2656; 3841-3936"
    el = neuropixels_electrodes(NP2_MS)
    e = meta.sites_to_electrodes(sorting.unit_peak_site)
    assert np.allclose(el["x_coord"][e - 1], sorting.unit_posx)
    assert np.allclose(el["y_coord"][e - 1], sorting.unit_posy)
    assert np.allclose(sorting.unit_amp, s.unit_amp, rtol=1e-5)  # 0.763 µV/bit for NP2.0


def test_np2_single_shank_meta(tmp_path):
    s = make_synthetic_session(
        tmp_path, probe_type=NP2_SS, n_units=3, n_spikes=500, trials=make_behavior_trials(3, 1)
    )
    meta, _, _, _ = ingest(s)
    assert meta.probe_type == NP2_SS and meta.electrode_config.name == "1-384"


def test_generator_is_seeded(tmp_path):
    kw = dict(n_units=7, n_spikes=5000, n_channels=16, trials=make_behavior_trials(4, 0))
    a = make_synthetic_session(tmp_path / "a", seed=42, **kw)
    b = make_synthetic_session(tmp_path / "b", seed=42, **kw)
    c = make_synthetic_session(tmp_path / "c", seed=43, **kw)
    assert np.array_equal(a.spike_samples, b.spike_samples)
    assert np.array_equal(a.spike_clusters, b.spike_clusters)
    assert (a.ks_dir / "templates.npy").read_bytes() == (b.ks_dir / "templates.npy").read_bytes()
    assert not np.array_equal(a.spike_clusters, c.spike_clusters)


def test_behavior_trials_from_lists():
    t = BehaviorTrials.from_lists([1.0, 9.0], [2.5, None], ["01", "10"], [3, 4])
    assert t.bitcode_map == {3: "01", 4: "10"}
    assert t.free_water_trials == [4]
    with pytest.raises(ValueError):
        BehaviorTrials.from_lists([1.0], [2.0, 3.0], ["0"])


def test_ten_million_spikes_generate_and_round_trip(tmp_path):
    trials = make_behavior_trials(500, seed=5)
    s = make_synthetic_session(tmp_path, trials=trials, n_units=400, n_spikes=10_000_000)
    meta, sorting, al, rel = ingest(s)
    assert sorting.n_spikes == 10_000_000 and sorting.n_units == 400
    assert al.n_trials == 500
    for u in s.unit_ids[[0, 123, 399]]:
        i = sorting.unit_index(u)
        assert np.allclose(rel[sorting.unit_slice(i)], s.unit_spike_times(u))
