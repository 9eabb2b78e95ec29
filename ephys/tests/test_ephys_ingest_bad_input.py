"""Bad input: each case ends as an EphysIngest job error naming the file and the problem, and
writes nothing (all probes of the session or none)."""

from __future__ import annotations

import io
import shutil

import numpy as np
import pytest
import scipy.io as sio

from ephys import models as m
from ephys.steps import EPHYS_INGEST
from ephys.tests.factories import command_runner, configured_world
from lab.models import ElectrodeConfig, ElectrodeConfigElectrode, Probe
from mapsite.core.testing import real_data_dir
from mapsite.pipeline.models import Job, JobStatus

pytestmark = pytest.mark.django_db

REAL_BITCODE = real_data_dir() / "dl25_bitcode.mat"
EPHYS_MODELS = (
    m.ProbeInsertion,
    m.ClusteringLabel,
    m.Unit,
    m.UnitSpikes,
    m.UnitNoiseLabel,
    m.UnitNote,
    m.UnitStat,
    m.ClusterMetric,
    m.WaveformMetric,
    m.InsertionTrialAlignment,
    m.ArchivedClustering,
    m.ArchivedUnit,
    Probe,
    ElectrodeConfig,
    ElectrodeConfigElectrode,
)


@pytest.fixture
def world(tmp_path, settings):
    return configured_world(tmp_path, settings)


@pytest.fixture
def run(django_capture_on_commit_callbacks):
    return command_runner(django_capture_on_commit_callbacks)


def counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in EPHYS_MODELS}


@pytest.fixture
def prepared(world, run):
    """Behavior ingested, a sorted session written (with metrics) but not ingested yet."""
    truth = world.write_behavior(n_trials=30)
    run("ingest_behavior")
    s = world.write_ephys(truth, with_metrics=True)
    return world, truth, s


def fails(run, *patterns: str) -> Job:
    """Run the ingest; the job must end in error with every pattern in its message, and no
    ephys row may have been written."""
    before = counts()
    run("ingest_ephys")
    job = Job.objects.get(step=EPHYS_INGEST)
    assert job.status == JobStatus.ERROR, (job.status, job.message)
    for pattern in patterns:
        assert pattern in job.message, job.message
    assert counts() == before
    assert m.SortedOutput.objects.get().status == m.SortedOutputStatus.FOUND
    return job


def test_nothing_is_ingested_yet_in_these_tests(prepared):
    assert all(v == 0 for k, v in counts().items() if k not in ("ElectrodeConfig",))


def test_spike_times_and_clusters_of_different_lengths(prepared, run):
    _, _, s = prepared
    clusters = np.load(s.ks_dir / "spike_clusters.npy")
    np.save(s.ks_dir / "spike_clusters.npy", clusters[:-10])
    fails(run, "spike_clusters.npy", "lengths differ")


def test_truncated_npy(prepared, run):
    _, _, s = prepared
    path = s.ks_dir / "spike_times.npy"
    path.write_bytes(path.read_bytes()[:-777])
    fails(run, "spike_times.npy", "truncated or corrupt")


def test_non_numeric_npy(prepared, run):
    _, _, s = prepared
    n = np.load(s.ks_dir / "spike_clusters.npy").size
    np.save(s.ks_dir / "spike_clusters.npy", np.array(["a"] * n))
    fails(run, "spike_clusters.npy", "expected a numeric array")


def test_unknown_probe_model(prepared, run):
    _, _, s = prepared
    text = s.meta_path.read_text().replace("imDatPrb_type=0", "imDatPrb_type=1030")
    s.meta_path.write_text(text)
    fails(run, s.meta_path.name, "unsupported Neuropixels probe model imDatPrb_type=1030")


def test_no_clustering_output_for_one_probe_writes_no_probe(prepared, world, run):
    _, truth, _ = prepared
    second = world.write_ephys(truth, seed=2, probe_index=1, serial="18005117999")
    shutil.rmtree(second.ks_dir)
    fails(run, second.probe_dir.name, "no clustering results")


def test_two_kilosort_folders(prepared, run):
    _, _, s = prepared
    shutil.copytree(s.ks_dir, s.probe_dir / "imec0_ks2_rerun")
    fails(run, "more than one Kilosort output folder", "imec0_ks2_rerun")


def test_missing_labels(prepared, run):
    _, _, s = prepared
    (s.ks_dir / "cluster_KSLabel.tsv").unlink()
    (s.ks_dir / "cluster_group.tsv").unlink()
    fails(run, "no cluster label file")


def _rewrite_bitcode(s, **changes) -> None:
    mat = sio.loadmat(s.bitcode_path, squeeze_me=True)
    data = {k: mat[k] for k in ("sTrig", "goCue", "bitCodeS")}
    data.update(changes)
    sio.savemat(s.bitcode_path, data)


def test_bitcode_mismatch_without_trial_num(prepared, run):
    _, _, s = prepared
    codes = list(s.ephys_bitcodes)
    codes[5] = "".join("1" if c == "0" else "0" for c in codes[5])
    _rewrite_bitcode(s, bitCodeS=np.array(codes))
    fails(run, s.bitcode_path.name, "Bitcode mismatch: ephys trial 6", "no trialNum")


def test_bitcode_mismatch_with_trial_num_is_fixed(prepared, run):
    _, _, s = prepared
    codes = list(s.ephys_bitcodes)
    codes[5] = "".join("1" if c == "0" else "0" for c in codes[5])
    _rewrite_bitcode(
        s, bitCodeS=np.array(codes), trialNum=s.ephys_behavior_trials.astype(np.float64)
    )
    run("ingest_ephys")
    assert Job.objects.get(step=EPHYS_INGEST).status == JobStatus.DONE
    assert m.InsertionTrialAlignment.objects.count() == 30


def test_trial_count_mismatch(prepared, run):
    _, _, s = prepared
    # fewer go cues than trial starts (free-water rule) with a trial start missing too
    _rewrite_bitcode(
        s,
        sTrig=s.ephys_trial_starts[:-1],
        goCue=s.ephys_go_cues[:-2],
        bitCodeS=np.array(s.ephys_bitcodes[:-1]),
    )
    fails(run, "Mismatch sTrig (29 elements) and total behavior trials (30 trials)")


def test_real_bitcode_file_without_strig_and_gocue(prepared, run):
    _, _, s = prepared
    shutil.copyfile(REAL_BITCODE, s.bitcode_path)
    fails(run, s.bitcode_path.name, "missing sTrig, goCue")


@pytest.mark.parametrize(("line", "problem"), [("imSampRate=0", "imSampRate=0"), ("", "missing")])
def test_sampling_rate_missing_or_zero(prepared, run, line, problem):
    _, _, s = prepared
    text = "".join(
        (line + "\n" if line else "") if row.startswith("imSampRate=") else row + "\n"
        for row in s.meta_path.read_text().splitlines()
    )
    s.meta_path.write_text(text)
    fails(run, s.meta_path.name, problem)


def test_session_folder_linked_from_outside_the_roots(world, run, tmp_path):
    truth = world.write_behavior(n_trials=30)
    run("ingest_behavior")
    outside = tmp_path / "elsewhere"
    s = world.write_ephys(truth)
    shutil.move(str(s.session_dir), outside)
    s.session_dir.symlink_to(outside, target_is_directory=True)
    fails(run, "refused", "outside every configured data root")


def test_a_file_linked_from_outside_the_roots(prepared, run, tmp_path):
    _, _, s = prepared
    target = tmp_path / "elsewhere.npy"
    shutil.move(str(s.ks_dir / "spike_clusters.npy"), target)
    (s.ks_dir / "spike_clusters.npy").symlink_to(target)
    fails(run, "spike_clusters.npy", "refused", "outside every configured data root")


def test_no_bitcode_file_at_all(prepared, run):
    _, _, s = prepared
    s.bitcode_path.unlink()
    fails(run, "no sy01_*bitcode.mat", "cannot be aligned")


def test_files_changing_after_they_were_found(prepared, run, world):
    _, _, s = prepared
    from ephys.ingest import db_discovery

    db_discovery.scan_ephys_roots(settle_seconds=0)  # found ...
    (s.ks_dir / "cluster_Davesort.tsv").write_text("cluster_id\tDavesort\n")  # ... then changed
    from mapsite.pipeline import runner

    output = m.SortedOutput.objects.get()
    before = counts()
    runner.create_jobs(runner.get_step(EPHYS_INGEST))
    job = Job.objects.get(step=EPHYS_INGEST, key_id=output.pk)
    assert runner.run_job(job.pk) == JobStatus.ERROR
    job.refresh_from_db()
    assert "changed since they were found" in job.message
    assert counts() == before


def test_a_bad_second_probe_undoes_the_first(prepared, world, run):
    _, truth, first = prepared
    second = world.write_ephys(truth, seed=2, probe_index=1, serial="18005117999")
    path = second.ks_dir / "spike_times.npy"
    path.write_bytes(path.read_bytes()[:-100])
    job = fails(run, "imec1_ks2/spike_times.npy", "truncated or corrupt")
    assert "Traceback" in job.traceback  # probe 1 was written before probe 2 failed
    assert first.unit_ids.size and m.Unit.objects.count() == 0


def test_ni_text_files_with_undecodable_codes(prepared, run):
    from ephys.ingest.synthetic import write_ni_bitcode_files

    _, _, s = prepared
    s.bitcode_path.unlink()
    starts_s = s.ephys_trial_starts / s.sampling_rate
    write_ni_bitcode_files(s.session_dir, starts_s, [c[:10] for c in s.ephys_bitcodes])
    # the behavior bitcodes are 16-bit randomID strings, the NI decoder reads 10 bits
    fails(run, "no decoded ephys bitcode matches a behavior trial")


def test_ni_text_files_instead_of_bitcode_mat(prepared, run):
    """SpikeGLX NI text files in the session folder (MTL rigs and later, §14.5)."""
    from ephys.ingest.synthetic import write_ni_bitcode_files
    from experiment.models import TrialEvent, TrialNote

    _, truth, s = prepared
    s.bitcode_path.unlink()
    notes = TrialNote.objects.filter(note_type__name="bitcode").select_related("trial")
    for note in notes:  # 10-bit codes, as the MTL protocol writes them
        note.note = format(note.trial.trial, "010b")[::-1]
    TrialNote.objects.bulk_update(notes, ["note"])
    codes = [format(int(t), "010b")[::-1] for t in s.ephys_behavior_trials]
    write_ni_bitcode_files(s.session_dir, s.ephys_trial_starts / s.sampling_rate, codes)

    run("ingest_ephys")
    job = Job.objects.get(step=EPHYS_INGEST)
    assert job.status == JobStatus.DONE, job.message
    rows = list(m.InsertionTrialAlignment.objects.select_related("trial"))
    assert [r.trial.trial for r in rows] == s.ephys_behavior_trials.tolist()
    go: dict[int, float] = {}  # the first go cue of each trial
    for e in (
        TrialEvent.objects.filter(event_type__name="go")
        .order_by("trial_event_id")
        .select_related("trial__trial")
    ):
        go.setdefault(e.trial.trial.trial, e.trial_event_time)
    assert np.allclose([r.go_cue_time for r in rows], [go[r.trial.trial] for r in rows])
    unit = m.Unit.objects.order_by("unit").select_related("spikes").first()
    times = np.load(io.BytesIO(bytes(unit.spikes.spike_times)))
    assert np.allclose(times, s.unit_spike_times(unit.unit), atol=1e-6)  # text: 6 decimals


def test_glob_layout_meta_without_recording_time(world, run):
    truth = world.write_behavior(n_trials=30)
    run("ingest_behavior")
    s = world.write_ephys(truth, layout="glob")
    text = "".join(
        row + "\n"
        for row in s.meta_path.read_text().splitlines()
        if not row.startswith("fileCreateTime")
    )
    s.meta_path.write_text(text)
    fails(run, s.meta_path.name, "neither fileCreateTime_original nor fileCreateTime")
