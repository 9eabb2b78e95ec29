"""Kilosort2/phy loader (spec §14.4): round trip, real phy quirks, bad input."""

import os
from datetime import datetime

import numpy as np
import pytest

from ephys.ingest.errors import (
    ClusteringFileError,
    ClusteringFileNotFoundError,
    ClusterMetricError,
)
from ephys.ingest.phy import load_phy
from ephys.ingest.spikeglx import read_spikeglx_meta
from ephys.ingest.synthetic import make_behavior_trials, make_synthetic_session

from .data_helpers import write_phy_folder


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    root = tmp_path_factory.mktemp("phy_synth")
    return make_synthetic_session(
        root, n_units=30, n_spikes=60_000, n_channels=64, trials=make_behavior_trials(20, 1), seed=3
    )


def small(tmp_path, **kw):
    times = kw.pop("times", np.array([10, 20, 30, 40, 50, 60, 70, 80], dtype=np.uint64))
    clusters = kw.pop("clusters", np.array([0, 1, 0, 2, 1, 0, 2, 2], dtype=np.int32))
    return write_phy_folder(tmp_path / "ks", spike_times=times, spike_clusters=clusters, **kw)


# ---- round trip ------------------------------------------------------------------------------
def test_round_trip_against_ground_truth(synth):
    meta = read_spikeglx_meta(synth.meta_path)
    r = load_phy(synth.ks_dir, meta=meta)
    assert r.method == "kilosort2"
    assert r.sampling_rate == 30000.0
    assert np.array_equal(r.unit_ids, synth.unit_ids)
    assert r.n_spikes == synth.spike_samples.size
    for i, u in enumerate(r.unit_ids):
        sl = r.unit_slice(i)
        expected = synth.unit_spike_samples(u)
        assert np.array_equal(r.spike_samples[sl], expected)
        assert np.all(r.spike_sites[sl] == synth.unit_peak_channel[i] + 1)
        assert np.allclose(r.spike_depths[sl], synth.unit_posy[i])
    assert r.spike_samples.dtype == np.int64
    assert np.array_equal(r.unit_peak_site, synth.unit_peak_channel + 1)
    assert np.allclose(r.unit_posx, synth.unit_posx) and np.allclose(r.unit_posy, synth.unit_posy)
    assert np.allclose(r.unit_amp, synth.unit_amp, rtol=1e-5)
    assert np.allclose(r.unit_waveform, synth.unit_waveform, rtol=1e-5, atol=1e-9)
    assert np.all(np.isnan(r.unit_snr))  # no raw data, no metrics: SNR unknown
    assert r.unit_quality.tolist() == synth.unit_quality.tolist()
    assert r.unit_label_raw.tolist() == synth.unit_label_raw.tolist()
    assert set(r.unit_quality.tolist()) <= {"good", "multi"}
    assert r.noise_labels == synth.noise_labels
    assert np.array_equal(r.dropped_label_ids, synth.empty_label_ids)
    assert r.unlabelled_units.size == 0
    assert r.clustering.label == "raw_" and not r.clustering.quality_control
    assert r.amplitude_source == "templates" and r.waveform_source == "templates"
    assert r.unit_notes == {}  # cluster_ContamPct.tsv is Kilosort output, not a curation note


def test_order_maps_back_to_file(synth):
    r = load_phy(synth.ks_dir, uv_per_bit=1.0)
    file_times = np.load(synth.ks_dir / "spike_times.npy").reshape(-1)
    assert np.array_equal(r.spike_samples, file_times[r.order].astype(np.int64))
    assert np.array_equal(r.spike_units, synth.spike_clusters[r.order])
    assert r.offsets[0] == 0 and r.offsets[-1] == r.n_spikes
    assert np.all(np.diff(r.spike_samples)[np.diff(r.spike_units) == 0] >= 0)


@pytest.mark.parametrize("with_pcs", [False, True])
def test_keep_order_false_gives_the_same_result_without_order(tmp_path, with_pcs):
    s = make_synthetic_session(
        tmp_path,
        n_units=8,
        n_spikes=3000,
        n_channels=32,
        with_pc_features=with_pcs,
        trials=make_behavior_trials(5, 2),
    )
    full = load_phy(s.ks_dir, uv_per_bit=1.0)
    lean = load_phy(s.ks_dir, uv_per_bit=1.0, keep_order=False)
    assert full.order is not None and lean.order is None
    for name in ("unit_ids", "offsets", "spike_samples", "spike_sites", "spike_depths"):
        assert np.array_equal(getattr(full, name), getattr(lean, name)), name
    assert np.array_equal(full.unit_amp, lean.unit_amp)


def test_amplitude_scale_from_meta_or_argument(synth):
    a = load_phy(synth.ks_dir, uv_per_bit=1.0).unit_amp
    b = load_phy(synth.ks_dir, meta=read_spikeglx_meta(synth.meta_path)).unit_amp
    assert np.allclose(b, a * 2.34375)
    with pytest.raises(ClusteringFileError, match="µV/bit"):
        load_phy(synth.ks_dir)


# ---- quirks ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "times",
    [
        np.array([10, 20, 30, 40, 50, 60, 70, 80], dtype=np.uint64).reshape(-1, 1),
        np.array([10, 20, 30, 40, 50, 60, 70, 80], dtype=np.int64),
        np.array([[10, 20, 30, 40, 50, 60, 70, 80]], dtype=np.uint32),
    ],
    ids=["uint64_Nx1", "int64_N", "uint32_1xN"],
)
def test_spike_times_shapes_and_dtypes(tmp_path, times):
    r = load_phy(small(tmp_path, times=times), uv_per_bit=1.0)
    assert r.spike_samples.dtype == np.int64
    assert r.unit_spike_samples(0).tolist() == [10, 30, 60]
    assert r.unit_spike_samples(2).tolist() == [40, 70, 80]


def test_labels_without_spikes_are_dropped(tmp_path):
    labels = {"cluster_KSLabel.tsv": {0: "good", 1: "mua", 2: "good", 7: "good", 9: "mua"}}
    r = load_phy(small(tmp_path, labels=labels), uv_per_bit=1.0)
    assert r.unit_ids.tolist() == [0, 1, 2]
    assert r.dropped_label_ids.tolist() == [7, 9]
    assert r.unit_quality.tolist() == ["good", "multi", "good"]


def test_clusters_without_labels_get_all(tmp_path):
    labels = {"cluster_KSLabel.tsv": {0: "good", 2: "mua"}}
    r = load_phy(small(tmp_path, labels=labels), uv_per_bit=1.0)
    assert r.unit_quality.tolist() == ["good", "all", "multi"]
    assert r.unit_label_raw.tolist() == ["good", "", "mua"]
    assert r.unlabelled_units.tolist() == [1]


def test_phy2_cluster_group_only(tmp_path):
    # spikeinterface / phy 2 exports: only cluster_group.tsv ('unsorted', 'mua', 'noise', ...)
    labels = {"cluster_group.tsv": {0: "unsorted", 1: "noise", 2: "mua"}}
    r = load_phy(small(tmp_path, labels=labels), uv_per_bit=1.0)
    assert r.files["labels"].name == "cluster_group.tsv"
    assert r.unit_quality.tolist() == ["all", "all", "multi"]
    assert r.unit_label_raw.tolist() == ["unsorted", "noise", "mua"]
    assert r.noise_labels == {1: "noise"}  # only good/noise values are noise labels


def test_label_priority_and_override(tmp_path):
    labels = {
        "cluster_groups.csv": {0: "good", 1: "good", 2: "good"},
        "cluster_KSLabel.tsv": {0: "mua", 1: "mua", 2: "mua"},
        "cluster_group.tsv": {0: "noise", 1: "good", 2: "good"},
    }
    folder = small(tmp_path, labels=labels)
    r = load_phy(folder, uv_per_bit=1.0)
    assert r.files["labels"].name == "cluster_groups.csv"
    assert r.unit_quality.tolist() == ["good", "good", "good"]
    assert r.noise_labels == {0: "noise", 1: "good", 2: "good"}
    (folder / "cluster_groups.csv").unlink()
    assert load_phy(folder, uv_per_bit=1.0).unit_quality.tolist() == ["multi"] * 3
    r = load_phy(folder, uv_per_bit=1.0, label_file="cluster_group.tsv")
    assert r.unit_label_raw.tolist() == ["noise", "good", "good"]


def test_spike_times_sec_variants_preferred(tmp_path):
    folder = small(tmp_path)
    t = np.array([10, 20, 30, 40, 50, 60, 70, 80]) / 30000.0
    np.save(folder / "spike_times_sec.npy", t + 1.0)
    r = load_phy(folder, uv_per_bit=1.0)
    assert r.files["spike_times"].name == "spike_times_sec.npy"
    assert r.unit_spike_samples(0).tolist() == [30010, 30030, 30060]
    np.save(folder / "spike_times_sec_adj.npy", (t + 2.0).reshape(-1, 1))
    r = load_phy(folder, uv_per_bit=1.0)
    assert r.files["spike_times"].name == "spike_times_sec_adj.npy"
    assert r.unit_spike_samples(2).tolist() == [60040, 60070, 60080]


def test_curation_notes_and_contampct_ignored(tmp_path):
    folder = small(tmp_path)
    (folder / "cluster_Davesort.tsv").write_text("cluster_id\tDavesort\n0\tgood\n1\tmua\n5\tok\n")
    (folder / "cluster_ContamPct.tsv").write_text("cluster_id\tContamPct\n0\t3.0\n")
    (folder / "cluster_info.tsv").write_text("cluster_id\tch\tdepth\n0\t1\t20\n")
    r = load_phy(folder, uv_per_bit=1.0)
    assert r.unit_notes == {"Davesort": {0: "good", 1: "multi"}}


def test_whitening_inverse_and_mean_amplitude(tmp_path):
    amps = np.array([1, 3, 2, 1, 1, 2, 1, 1], dtype=np.float32)  # cluster 0: mean 5/3
    folder = small(tmp_path, amplitudes=amps)
    r = load_phy(folder, uv_per_bit=2.0)
    assert np.allclose(r.unit_amp[0], 1.5 * (5 / 3) * 2.0)
    winv = np.diag([2.0, 1.0, 1.0, 1.0])
    np.save(folder / "whitening_mat_inv.npy", winv)
    r = load_phy(folder, uv_per_bit=2.0)
    assert np.allclose(r.unit_amp[0], 2 * 1.5 * (5 / 3) * 2.0)
    assert r.unit_peak_site[0] == 1 and r.unit_posy[0] == 0.0
    assert np.isclose(r.unit_waveform[0].min(), -2 * (5 / 3) * 2.0)


def test_merged_cluster_uses_most_frequent_template(tmp_path):
    clusters = np.array([5, 5, 5, 1, 5, 1, 1, 1], dtype=np.int32)
    templates = np.array([2, 3, 3, 1, 3, 1, 1, 1], dtype=np.uint32)  # cluster 5 = merge of 2, 3
    folder = small(tmp_path, clusters=clusters, spike_templates=templates)
    r = load_phy(folder, uv_per_bit=1.0)
    assert r.unit_ids.tolist() == [1, 5]
    assert r.unit_peak_site.tolist() == [2, 4]  # template 3 peaks on channel 3 -> site 4
    # each spike's site is its own template's peak
    assert r.spike_sites[r.unit_slice(1)].tolist() == [3, 4, 4, 4]


def test_unsorted_spike_times_are_sorted_within_units(tmp_path):
    times = np.array([30, 20, 10, 40, 50, 60, 70, 80], dtype=np.uint64)
    r = load_phy(small(tmp_path, times=times), uv_per_bit=1.0)
    assert r.unit_spike_samples(0).tolist() == [10, 30, 60]
    assert any("time order" in w for w in r.warnings)


def test_no_spike_clusters_file_uses_templates(tmp_path):
    folder = small(tmp_path)
    (folder / "spike_clusters.npy").unlink()
    r = load_phy(folder, uv_per_bit=1.0)
    assert r.unit_ids.tolist() == [0, 1, 2]
    assert any("spike_templates" in w for w in r.warnings)


def test_sparse_templates(tmp_path):
    folder = small(tmp_path)
    dense = np.load(folder / "templates.npy")
    ind = np.array([[0, 1], [1, 2], [2, 3]])
    sparse = np.stack([dense[t][:, ind[t]] for t in range(3)])
    np.save(folder / "templates.npy", sparse)
    np.save(folder / "template_ind.npy", ind)
    r = load_phy(folder, uv_per_bit=1.0)
    assert r.unit_peak_site.tolist() == [1, 2, 3]


def test_pc_feature_depths(tmp_path_factory):
    s = make_synthetic_session(
        tmp_path_factory.mktemp("pcs"),
        n_units=8,
        n_spikes=3000,
        n_channels=32,
        with_pc_features=True,
        trials=make_behavior_trials(5, 2),
    )
    r = load_phy(s.ks_dir, uv_per_bit=1.0)
    assert np.allclose(r.spike_depths, s.spike_depths[r.order])
    assert "pc_features" in r.files


def test_pykilosort_method_from_path(tmp_path):
    folder = write_phy_folder(
        tmp_path / "imec0" / "pyks25_output",
        spike_times=np.arange(1, 5, dtype=np.uint64),
        spike_clusters=np.array([0, 1, 0, 1]),
    )
    assert load_phy(folder, uv_per_bit=1.0).method == "pykilosort2.5"


# ---- metrics.csv, mean_waveforms, clustering label ----------------------------------------
@pytest.fixture(scope="module")
def synth_qc(tmp_path_factory):
    return make_synthetic_session(
        tmp_path_factory.mktemp("phy_qc"),
        n_units=12,
        n_spikes=5000,
        n_channels=32,
        with_metrics=True,
        trials=make_behavior_trials(5, 4),
        seed=5,
    )


def test_metrics_csv_values(synth_qc):
    s = synth_qc
    r = load_phy(s.ks_dir)  # no scale needed: QC amplitudes are already µV
    assert r.amplitude_source == "metrics.csv" and r.waveform_source == "mean_waveforms.npy"
    assert np.allclose(r.unit_amp, s.metrics_amp)
    expected_snr = np.where(np.isfinite(s.metrics_snr), s.metrics_snr, 0.0)
    assert np.allclose(r.unit_snr, expected_snr) and r.unit_snr[0] == 0 and r.unit_snr[1] == 0
    assert np.array_equal(r.unit_peak_site, s.unit_peak_channel + 1)
    assert np.allclose(r.unit_posy, s.unit_posy)
    assert np.allclose(r.unit_waveform, s.extra["metrics_waveform"], rtol=1e-5)
    assert r.metrics["epoch_name_quality_metrics"][0] == "complete_session"
    assert np.array_equal(r.metrics["cluster_id"], r.unit_ids)
    assert r.clustering.label == "qc_" and r.clustering.quality_control
    mtime = datetime.fromtimestamp((s.ks_dir / "metrics.csv").stat().st_mtime)
    assert r.clustering.time == mtime


def test_metrics_csv_missing_columns(tmp_path, synth_qc):
    folder = tmp_path / "ks"
    folder.mkdir()
    for f in synth_qc.ks_dir.iterdir():
        (folder / f.name).write_bytes(f.read_bytes())
    lines = (folder / "metrics.csv").read_text().splitlines()
    header = lines[0].split(",")
    drop = [header.index("l_ratio"), header.index("epoch_name_waveform_metrics")]
    cut = [",".join(v for j, v in enumerate(ln.split(",")) if j not in drop) for ln in lines]
    (folder / "metrics.csv").write_text("\n".join(cut) + "\n")
    with pytest.raises(ClusterMetricError, match="l_ratio, epoch_name_waveform_metrics") as e:
        load_phy(folder)
    assert "metrics.csv" in str(e.value)


def test_metrics_csv_missing_unit_and_bad_value(tmp_path, synth_qc):
    folder = tmp_path / "ks"
    folder.mkdir()
    for f in synth_qc.ks_dir.iterdir():
        (folder / f.name).write_bytes(f.read_bytes())
    lines = (folder / "metrics.csv").read_text().splitlines()
    (folder / "metrics.csv").write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(ClusterMetricError, match="no row for 1 unit"):
        load_phy(folder)
    bad = lines[1].split(",")
    bad[lines[0].split(",").index("d_prime")] = "abc"
    (folder / "metrics.csv").write_text("\n".join([lines[0], ",".join(bad)] + lines[2:]) + "\n")
    with pytest.raises(ClusterMetricError, match="column d_prime: 'abc' is not a number"):
        load_phy(folder)


def test_phy_log_curation_label_and_time(tmp_path):
    folder = small(tmp_path)
    (folder / "phy.log").write_text(
        "10:01:02.123 [I] gui:123 Opening\n"
        "2021-05-06 11:12:13.500 [I] actions:400 Merge clusters 3, 4 to 9.\n"
        "2021-05-06 11:20:00.000 [I] actions:400 Change metadata_group for clusters 9 to good\n"
        "2021-05-06 11:30:00.000 [I] gui:99 Close\n"
    )
    r = load_phy(folder, uv_per_bit=1.0)
    assert r.clustering.label == "curated_raw_"
    assert r.clustering.manual_curation and not r.clustering.quality_control
    assert r.clustering.time == datetime(2021, 5, 6, 11, 20, 0)


def test_phy_log_short_timestamps_and_no_curation(tmp_path):
    folder = small(tmp_path)
    log = folder / "phy.log"
    log.write_text("09:00:00.1 [I] gui Opening\n13:14:15.9 [D] actions Split cluster 4\n")
    stamp = datetime(2022, 1, 2, 23, 0, 0).timestamp()
    os.utime(log, (stamp, stamp))
    r = load_phy(folder, uv_per_bit=1.0)
    assert r.clustering.time == datetime(2022, 1, 2, 13, 14, 15)
    log.write_text("09:00:00.1 [I] gui Opening\n")
    st = folder / "spike_times.npy"
    os.utime(st, (stamp, stamp))
    r = load_phy(folder, uv_per_bit=1.0)
    assert r.clustering.label == "raw_" and r.clustering.time == datetime(2022, 1, 2, 23, 0, 0)


def test_raw_waveforms_and_snr(tmp_path_factory):
    s = make_synthetic_session(
        tmp_path_factory.mktemp("raw"),
        n_units=4,
        n_spikes=400,
        n_channels=8,
        n_empty_labels=0,
        write_raw=True,
        raw_noise_bits=1.0,
        trials=make_behavior_trials(3, 5, iti_s=2.0),
    )
    meta = read_spikeglx_meta(s.meta_path)
    r = load_phy(s.ks_dir, meta=meta)
    assert r.waveform_source == "raw" and "ap_bin" in r.files
    # the mean raw waveform recovers the injected (unwhitened, scaled) template within noise
    err = np.abs(r.unit_waveform - s.unit_waveform).max(axis=1)
    assert np.all(err < 0.5 * s.unit_amp)
    assert np.all(r.unit_snr > 1.0) and np.all(np.isfinite(r.unit_snr))
    assert np.allclose(r.unit_amp, s.unit_amp, rtol=1e-5)  # amplitude stays template-based
    r2 = load_phy(s.ks_dir, meta=meta, use_raw=False)
    assert r2.waveform_source == "templates" and np.all(np.isnan(r2.unit_snr))


# ---- bad input -----------------------------------------------------------------------------
def test_length_mismatch(tmp_path):
    folder = small(tmp_path)
    np.save(folder / "spike_clusters.npy", np.array([0, 1, 0], dtype=np.int32))
    with pytest.raises(ClusteringFileError, match="lengths differ") as e:
        load_phy(folder, uv_per_bit=1.0)
    assert "spike_clusters.npy" in str(e.value) and "spike_times.npy" in str(e.value)


def test_truncated_npy(tmp_path):
    folder = small(tmp_path)
    st = folder / "spike_times.npy"
    st.write_bytes(st.read_bytes()[:-20])
    with pytest.raises(ClusteringFileError, match="truncated or corrupt") as e:
        load_phy(folder, uv_per_bit=1.0)
    assert str(st) in str(e.value)


@pytest.mark.parametrize(
    "bad",
    [np.array(["a", "b"] * 4), np.array([{"x": 1}] * 8, dtype=object), "text"],
    ids=["strings", "pickled", "not-npy"],
)
def test_non_numeric_npy(tmp_path, bad):
    folder = small(tmp_path)
    target = folder / "spike_clusters.npy"
    if isinstance(bad, str):
        target.write_text("0\n1\n2\n")
    else:
        np.save(target, bad, allow_pickle=True)
    with pytest.raises(ClusteringFileError) as e:
        load_phy(folder, uv_per_bit=1.0)
    assert "spike_clusters.npy" in str(e.value)


def test_no_clustering_output(tmp_path):
    with pytest.raises(ClusteringFileNotFoundError, match="no spike times"):
        load_phy(tmp_path, uv_per_bit=1.0)
    with pytest.raises(FileNotFoundError):
        load_phy(tmp_path / "missing", uv_per_bit=1.0)


def test_missing_label_file(tmp_path):
    folder = small(tmp_path, labels={})
    with pytest.raises(ClusteringFileNotFoundError, match="no cluster label file") as e:
        load_phy(folder, uv_per_bit=1.0)
    assert str(folder) in str(e.value)


def test_malformed_label_file(tmp_path):
    folder = small(tmp_path)
    (folder / "cluster_KSLabel.tsv").write_text("cluster_id\tKSLabel\nx\tgood\n")
    with pytest.raises(ClusteringFileError, match="line 2: cluster_id 'x' is not an integer"):
        load_phy(folder, uv_per_bit=1.0)


def test_missing_sample_rate(tmp_path):
    folder = small(tmp_path)
    (folder / "params.py").write_text("dat_path = 'x.bin'\n")
    with pytest.raises(ClusteringFileError, match="no usable sample_rate"):
        load_phy(folder, uv_per_bit=1.0)
    assert load_phy(folder, uv_per_bit=1.0, sampling_rate=25000.0).sampling_rate == 25000.0


def test_template_index_out_of_range(tmp_path):
    folder = small(tmp_path)
    np.save(folder / "spike_templates.npy", np.array([0, 1, 0, 9, 1, 0, 2, 2], np.uint32))
    with pytest.raises(ClusteringFileError, match="refers to template 9"):
        load_phy(folder, uv_per_bit=1.0)


def test_ten_million_spikes_load(tmp_path_factory):
    s = make_synthetic_session(tmp_path_factory.mktemp("big"), n_units=400, n_spikes=10_000_000)
    r = load_phy(s.ks_dir, uv_per_bit=2.34375)
    assert r.n_units == 400 and r.n_spikes == 10_000_000
    for u in s.unit_ids[[0, 199, 399]]:
        assert np.array_equal(r.unit_spike_samples(u), s.unit_spike_samples(u))
    assert np.allclose(r.unit_amp, s.unit_amp, rtol=1e-5)
