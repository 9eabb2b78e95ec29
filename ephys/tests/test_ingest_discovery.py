"""Session / probe / clustering-output discovery (spec §14.3)."""

import shutil
from datetime import datetime

import pytest

from ephys.ingest.discovery import (
    ClusteringOutput,
    discover_session,
    find_clustering_outputs,
    find_probe_recordings,
    find_session_dir,
    load_clustering,
    probe_number_from_dir,
)
from ephys.ingest.errors import (
    ClusteringFileError,
    ClusteringFileNotFoundError,
    ProbeInsertionError,
    SpikeGLXMetaNotFoundError,
)
from ephys.ingest.synthetic import make_behavior_trials, make_synthetic_session

from .data_helpers import jrclust_fixture, write_jrc3, write_jrc4

WHEN = datetime(2019, 3, 3, 10, 0, 0)


def synth(root, **kw):
    kw.setdefault("n_units", 3)
    kw.setdefault("n_spikes", 300)
    kw.setdefault("n_channels", 8)
    kw.setdefault("trials", make_behavior_trials(4, 0))
    return make_synthetic_session(root, session_datetime=WHEN, **kw)


def test_probe_numbers():
    assert probe_number_from_dir("20190303_SC022_g0_imec0") == 1
    assert probe_number_from_dir("SC022_030319_g0_imec2") == 3
    assert probe_number_from_dir("2") == 2
    with pytest.raises(ProbeInsertionError):
        probe_number_from_dir("probeA")


@pytest.mark.parametrize("layout", ["catgt", "date", "glob"])
def test_layouts_two_probes(tmp_path, layout):
    s0 = synth(tmp_path, layout=layout, probe_index=0)
    s1 = synth(tmp_path, layout=layout, probe_index=1, seed=1)
    session, probes = discover_session([tmp_path / "elsewhere", tmp_path], "SC022", WHEN)
    assert session.layout == layout and session.root == tmp_path
    assert session.session_dir == s0.session_dir
    assert sorted(probes) == [1, 2]
    assert probes[1].probe_dir == s0.probe_dir and probes[2].probe_dir == s1.probe_dir
    assert probes[1].meta_path == s0.meta_path
    assert probes[1].clustering.method == "kilosort2"
    assert probes[1].clustering.path == s0.ks_dir
    assert probes[1].read_meta().probe_type == "neuropixels 1.0 - 3B"


def test_glob_layout_requires_start_within_120_s(tmp_path):
    synth(tmp_path, layout="glob", recording_offset_s=300)
    assert find_session_dir([tmp_path], "SC022", WHEN) is None
    assert find_session_dir([tmp_path], "SC022", WHEN, max_offset_s=600) is not None


def test_glob_layout_picks_the_matching_session_of_the_day(tmp_path):
    first = synth(tmp_path, layout="glob", recording_offset_s=60)
    # a second recording the same day, 2 hours later, in a folder that sorts first
    later = tmp_path / "SC022" / "A_SC022_20190303_g1"
    shutil.copytree(first.session_dir, later)
    meta = next(later.rglob("*.ap.meta"))
    meta.write_text(meta.read_text().replace("T10:01:00", "T12:00:00"))
    session = find_session_dir([tmp_path], "SC022", WHEN)
    assert session.session_dir == first.session_dir
    session = find_session_dir([tmp_path], "SC022", datetime(2019, 3, 3, 12, 0, 30))
    assert session.session_dir == later


def test_glob_layout_mmddyy(tmp_path):
    s = synth(tmp_path, layout="glob")
    renamed = s.session_dir.with_name("SC022_030319_g0")
    s.session_dir.rename(renamed)
    probe = renamed / s.probe_dir.name
    probe.rename(renamed / "SC022_030319_g0_imec0")
    session, probes = discover_session([tmp_path], "SC022", WHEN)
    assert session.session_dir == renamed and session.probe_glob == "SC022*030319_*_imec[0-9]"
    assert list(probes) == [1]


def test_no_session_folder(tmp_path):
    synth(tmp_path)
    assert discover_session([tmp_path], "SC022", datetime(2019, 3, 4, 10, 0)) is None
    assert discover_session([tmp_path], "XX001", WHEN) is None


def test_no_meta_in_probe_folders(tmp_path):
    s = synth(tmp_path)
    s.meta_path.unlink()
    with pytest.raises(SpikeGLXMetaNotFoundError, match="no \\*tcat\\*.ap.meta"):
        discover_session([tmp_path], "SC022", WHEN)


def test_clustering_priority(tmp_path):
    s = synth(tmp_path)
    (s.probe_dir / "SC022_030319_imec0_jrc.mat").write_bytes(b"")
    outs = find_clustering_outputs(s.probe_dir, "SC022")
    assert [o.method for o in outs] == ["jrclust_v3", "kilosort2"]
    (s.probe_dir / "SC022_g0_t0.imec0.ap_res.mat").write_bytes(b"")
    _, probes = discover_session([tmp_path], "SC022", WHEN)
    assert probes[1].clustering.method == "jrclust_v4"
    assert [a.method for a in probes[1].alternatives] == ["jrclust_v3", "kilosort2"]


def test_two_kilosort_folders_is_an_error(tmp_path):
    s = synth(tmp_path)
    shutil.copytree(s.ks_dir, s.probe_dir / "imec0_ks2_rerun")
    with pytest.raises(ClusteringFileError, match="more than one Kilosort output folder") as e:
        discover_session([tmp_path], "SC022", WHEN)
    assert "imec0_ks2_rerun" in str(e.value)


def test_qc_folder_preferred_over_raw_kilosort(tmp_path):
    s = synth(tmp_path)
    qc = s.probe_dir / "catgt_qc" / "imec0_ks2"
    shutil.copytree(s.ks_dir, qc)
    (qc / "mean_waveforms.npy").write_bytes(b"")
    outs = find_clustering_outputs(s.probe_dir, "SC022")
    assert [o.path for o in outs] == [qc]


def test_pyks25_folder(tmp_path):
    s = synth(tmp_path)
    s.ks_dir.rename(s.probe_dir / "pyks25")
    assert find_clustering_outputs(s.probe_dir, "SC022")[0].method == "pykilosort2.5"


def test_no_clustering_output(tmp_path):
    s = synth(tmp_path)
    shutil.rmtree(s.ks_dir)
    with pytest.raises(ClusteringFileNotFoundError, match="no clustering results") as e:
        discover_session([tmp_path], "SC022", WHEN)
    assert isinstance(e.value, FileNotFoundError)
    assert str(s.probe_dir) in str(e.value)


def test_duplicate_meta_in_probe_folder(tmp_path):
    s = synth(tmp_path)
    shutil.copy(s.meta_path, s.probe_dir / "other_tcat.imec0.ap.meta")
    session = find_session_dir([tmp_path], "SC022", WHEN)
    with pytest.raises(ProbeInsertionError, match="several \\*tcat\\*.ap.meta"):
        find_probe_recordings(session, "SC022")


def test_load_clustering_dispatch(tmp_path):
    s = synth(tmp_path)
    _, probes = discover_session([tmp_path], "SC022", WHEN)
    meta = probes[1].read_meta()
    ks = load_clustering(probes[1].clustering, meta)
    assert ks.method == "kilosort2" and ks.n_units == 3
    v3 = write_jrc3(s.probe_dir / "SC022_x_jrc.mat", jrclust_fixture())
    assert load_clustering(ClusteringOutput("jrclust_v3", v3), meta).method == "jrclust_v3"
    v4 = write_jrc4(s.probe_dir / "SC022_x.ap_res.mat", jrclust_fixture())
    r4 = load_clustering(ClusteringOutput("jrclust_v4", v4), meta)
    assert r4.method == "jrclust_v4" and r4.sampling_rate == 30000.0
    _, probes = discover_session([tmp_path], "SC022", WHEN)
    assert probes[1].clustering.path == v4
