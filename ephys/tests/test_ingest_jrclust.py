"""JRClust v3 / v4 HDF5 loaders (spec §14.4) on fixtures written in MATLAB v7.3 layout."""

import h5py
import numpy as np
import pytest

from ephys.ingest.errors import ClusteringFileError, ClusteringFileNotFoundError
from ephys.ingest.jrclust import load_jrclust_v3, load_jrclust_v4

from .data_helpers import jrclust_fixture, write_jrc3, write_jrc4


def check_common(r, f):
    clusters = f["clusters"]
    kept = clusters > 0
    assert r.unit_ids.tolist() == [1, 2, 3]  # ids <= 0 dropped; cluster 4 has no spikes
    assert r.n_spikes == int(kept.sum())
    for i, u in enumerate(r.unit_ids):
        sl = r.unit_slice(i)
        mask = clusters == u
        assert r.spike_samples[sl].tolist() == f["times"][mask].astype(int).tolist()
        assert r.spike_sites[sl].tolist() == f["sites"][mask].astype(int).tolist()
        assert np.allclose(r.spike_depths[sl], f["pos"][mask, 1])  # y, not x
    assert r.unit_quality.tolist() == ["good", "all", "multi"]
    assert r.unit_label_raw.tolist() == ["single", "", "multi?"]
    assert r.unit_posx.tolist() == [11.0, 27.0, 43.0]
    assert r.unit_posy.tolist() == [100.0, 220.0, 1400.0]
    assert r.unit_amp.tolist() == [120.0, 85.5, 60.25]
    assert r.unit_snr.tolist() == [9.0, 6.5, 4.25]
    assert r.unit_peak_site.tolist() == [3, 7, 30]
    # waveform = first site of the cluster's local mean waveform (MATLAB samples × sites × clu)
    for i in range(3):
        assert np.allclose(r.unit_waveform[i], f["wav"][:, 0, i])
    assert r.clustering.label == "raw_"


def test_jrclust_v3(tmp_path):
    f = jrclust_fixture()
    path = write_jrc3(tmp_path / "SC022_030319_imec0_jrc.mat", f, fs=25000.0)
    r = load_jrclust_v3(path)
    assert r.method == "jrclust_v3" and r.sampling_rate == 25000.0
    check_common(r, f)
    assert r.files["result"] == path


def test_jrclust_v4(tmp_path):
    f = jrclust_fixture()
    path = write_jrc4(tmp_path / "SC022_g0_t0.imec0.ap_res.mat", f)
    r = load_jrclust_v4(path, sampling_rate=30000.0)
    assert r.method == "jrclust_v4" and r.sampling_rate == 30000.0
    check_common(r, f)


def test_jrclust_v4_needs_sampling_rate(tmp_path):
    path = write_jrc4(tmp_path / "a.ap_res.mat", jrclust_fixture())
    with pytest.raises(ClusteringFileError, match="no sampling rate"):
        load_jrclust_v4(path)


def test_jrclust_missing_variable(tmp_path):
    path = write_jrc3(tmp_path / "x_jrc.mat", jrclust_fixture())
    with h5py.File(path, "a") as fh:
        del fh["S_clu/vrSnr_clu"]
    with pytest.raises(ClusteringFileError, match="'S_clu/vrSnr_clu' is missing") as e:
        load_jrclust_v3(path)
    assert str(path) in str(e.value)


def test_jrclust_inconsistent_lengths(tmp_path):
    f = jrclust_fixture()
    f["sites"] = f["sites"][:-3]
    path = write_jrc3(tmp_path / "x_jrc.mat", f)
    with pytest.raises(ClusteringFileError, match="per-spike sites has 197 entries"):
        load_jrclust_v3(path)


def test_jrclust_not_hdf5_or_missing(tmp_path):
    bad = tmp_path / "old_jrc.mat"
    bad.write_bytes(b"MATLAB 5.0 MAT-file" + b"\0" * 200)
    with pytest.raises(ClusteringFileError, match="not an HDF5"):
        load_jrclust_v3(bad)
    with pytest.raises(ClusteringFileNotFoundError):
        load_jrclust_v3(tmp_path / "none_jrc.mat")


def test_jrclust_cluster_id_beyond_notes(tmp_path):
    f = jrclust_fixture()
    f["clusters"] = f["clusters"].copy()
    f["clusters"][10] = 9
    path = write_jrc3(tmp_path / "x_jrc.mat", f)
    with pytest.raises(ClusteringFileError, match="cluster id 9 but only 4 clusters"):
        load_jrclust_v3(path)
