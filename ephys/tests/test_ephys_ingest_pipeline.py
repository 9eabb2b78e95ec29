"""EphysIngest through the pipeline: synthetic behavior + sorted sessions -> database, compared
with the generators' ground truth (spike times exactly)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from django.core.management import CommandError

from ephys import models as m
from ephys.steps import EPHYS_INGEST
from ephys.tests.factories import command_runner, configured_world
from experiment.models import Session, SessionTrial
from lab.models import ElectrodeConfig, Probe
from mapsite.pipeline import runner
from mapsite.pipeline.models import Job, JobStatus

pytestmark = pytest.mark.django_db


def load(data: bytes | memoryview) -> np.ndarray:
    return np.load(io.BytesIO(bytes(data)), allow_pickle=False)


@pytest.fixture
def world(tmp_path, settings):
    return configured_world(tmp_path, settings)


@pytest.fixture
def run(django_capture_on_commit_callbacks):
    return command_runner(django_capture_on_commit_callbacks)


def ingest_behavior(run) -> Session:
    run("ingest_behavior")
    return Session.objects.get()


def test_sorted_session_is_found_aligned_and_loaded(world, run):
    truth = world.write_behavior(n_trials=30)
    session = ingest_behavior(run)
    s = world.write_ephys(truth, with_metrics=True)

    out = run("ingest_ephys")
    job = Job.objects.get(step=EPHYS_INGEST)
    assert job.status == JobStatus.DONE, (job.message, job.traceback, out)

    insertion = m.ProbeInsertion.objects.get(session=session)
    assert insertion.insertion_number == 1
    assert insertion.sampling_rate == s.sampling_rate
    assert insertion.probe.serial == "18005117162"
    assert insertion.probe.probe_type.name == s.probe_type
    config = insertion.electrode_config
    assert config.name == "1-64"
    assert ElectrodeConfig.objects.filter(config_hash=config.config_hash).count() == 1
    assert config.electrodes.count() == 64

    label = m.ClusteringLabel.objects.get(insertion=insertion)
    assert label.clustering_method.name == "kilosort2"
    assert label.quality_control and not label.manual_curation
    assert label.clustering_note == "qc"

    units = {
        u.unit: u
        for u in m.Unit.objects.filter(insertion=insertion).select_related(
            "spikes", "quality", "electrode__electrode"
        )
    }
    assert sorted(units) == s.unit_ids.tolist()
    for i, uid in enumerate(s.unit_ids):
        unit = units[int(uid)]
        times = load(unit.spikes.spike_times)
        assert times.dtype == np.float64
        assert np.array_equal(times, s.unit_spike_times(uid))
        assert unit.spike_count == times.size
        sites = load(unit.spikes.spike_sites)
        assert sites.dtype == np.int32 and sites.size == times.size
        assert load(unit.spikes.spike_depths).dtype == np.float32
        assert unit.quality.name == s.unit_quality[i]
        assert unit.electrode.electrode.electrode == s.unit_peak_channel[i] + 1  # sites 1:1 here
        assert unit.unit_amp == pytest.approx(s.metrics_amp[i])
    assert sum(u.spike_count for u in units.values()) == 50_000

    alignment = list(m.InsertionTrialAlignment.objects.filter(insertion=insertion))
    assert len(alignment) == 30
    assert alignment[0].start_time == 0.0
    trial_numbers = [a.trial.trial for a in alignment]
    assert trial_numbers == sorted(trial_numbers)
    output = m.SortedOutput.objects.get()
    assert output.status == m.SortedOutputStatus.INGESTED
    assert output.recording.session == session
    assert SessionTrial.objects.filter(session=session).count() == 30
    assert Probe.objects.count() == 1


def test_noise_labels_notes_and_metrics(world, run):
    truth = world.write_behavior(n_trials=30)
    session = ingest_behavior(run)
    s = world.write_ephys(truth, with_metrics=True)
    notes = {int(u): ("good" if k % 3 else "mua") for k, u in enumerate(s.unit_ids[:7])}
    (s.ks_dir / "cluster_Davesort.tsv").write_text(
        "cluster_id\tDavesort\n" + "".join(f"{u}\t{v}\n" for u, v in notes.items())
    )
    run("ingest_ephys")
    assert Job.objects.get(step=EPHYS_INGEST).status == JobStatus.DONE
    units = m.Unit.objects.filter(insertion__session=session)

    noise = dict(units.values_list("unit", "noise_label__noise"))
    assert noise == s.noise_labels
    got_notes = {
        n.unit.unit: (n.note_source, n.quality.name)
        for n in m.UnitNote.objects.filter(unit__in=units).select_related("unit", "quality")
    }
    expected = {u: ("Davesort", "good" if v == "good" else "multi") for u, v in notes.items()}
    assert got_notes == expected

    # metrics.csv: rows written per unit; SNR inf/NaN -> 0 (loader rule); epoch names kept
    assert m.UnitStat.objects.filter(unit__in=units).count() == s.unit_ids.size
    assert m.ClusterMetric.objects.filter(unit__in=units).count() == s.unit_ids.size
    assert m.WaveformMetric.objects.filter(unit__in=units).count() == s.unit_ids.size
    first = units.get(unit=int(s.unit_ids[0]))
    assert first.unit_snr == 0.0  # written as inf in metrics.csv
    assert first.cluster_metrics.get().epoch_name_quality_metrics == "complete_session"
    snr = dict(units.values_list("unit", "unit_snr"))
    for i, u in enumerate(s.unit_ids[2:], start=2):
        assert snr[int(u)] == pytest.approx(s.metrics_snr[i])


def test_trial_alignment_matches_the_generator(world, run):
    truth = world.write_behavior(n_trials=30)
    session = ingest_behavior(run)
    s = world.write_ephys(truth, margin_s=0.1)
    run("ingest_ephys")
    rows = list(
        m.InsertionTrialAlignment.objects.filter(insertion__session=session).select_related("trial")
    )
    starts = (s.ephys_trial_starts - s.margin_samples - s.first_trial_start) / s.sampling_rate
    go = (s.ephys_go_cues - (s.ephys_trial_starts - s.margin_samples)) / s.sampling_rate
    assert [r.trial.trial for r in rows] == s.ephys_behavior_trials.tolist()
    assert [r.ephys_trial for r in rows] == list(range(1, 31))
    assert np.array_equal([r.start_time for r in rows], starts)
    assert np.allclose([r.go_cue_time for r in rows], go)

    # align-on-read reproduces the per-trial, go-cue-relative spikes of §14.6
    from ephys.analysis.align import align_spikes_to_trials, build_csr
    from ephys.ingest import bitcode

    units = list(
        m.Unit.objects.filter(insertion__session=session).order_by("unit").select_related("spikes")
    )
    times, offsets = build_csr([load(u.spikes.spike_times) for u in units], sort=False)
    aligned = align_spikes_to_trials(
        times,
        offsets,
        np.array([r.start_time for r in rows]),
        np.array([r.go_cue_time for r in rows]),
    )
    al = bitcode.TrialAlignment(
        behavior_trials=s.ephys_behavior_trials,
        ephys_indices=np.arange(30),
        trial_starts=s.ephys_trial_starts - s.margin_samples,
        go_cues=s.ephys_go_cues,
    )
    u0 = units[0].unit
    samples = s.unit_spike_samples(u0)
    row, rel = bitcode.trialize_spikes(samples, al, s.sampling_rate)
    for t in range(30):
        assert np.allclose(aligned.spikes(0, t), rel[row == t], atol=1e-9)


def test_a_folder_dropped_into_a_root_is_ingested_by_the_sweep(
    world, django_capture_on_commit_callbacks
):
    truth = world.write_behavior(n_trials=30)
    world.write_ephys(truth)  # the ephys folder lands first, the behavior file is there too
    with django_capture_on_commit_callbacks(execute=True):
        runner.sweep()
    # the sweep found both; the ephys job may have waited for the behavior session, and
    # finishing BehaviorIngest queued it again
    with django_capture_on_commit_callbacks(execute=True):
        runner.sweep()
    job = Job.objects.get(step=EPHYS_INGEST)
    assert job.status == JobStatus.DONE, job.message
    assert m.Unit.objects.count() == 20


def test_waits_for_the_behavior_session_then_runs_when_it_lands(world, run):
    truth = world.write_behavior(n_trials=30)
    world.write_ephys(truth)
    run("ingest_ephys")
    job = Job.objects.get(step=EPHYS_INGEST)
    assert job.status == JobStatus.WAITING
    when = truth.session_datetime_utc
    assert f"no behavior session for {world.h2o} at {when:%Y-%m-%d %H:%M} yet" in job.message
    assert m.ProbeInsertion.objects.count() == 0

    run("ingest_behavior")  # BehaviorIngest done -> EphysIngest of that subject queued again
    job.refresh_from_db()
    assert job.status == JobStatus.DONE, job.message
    assert m.Unit.objects.count() == 20


def test_rerun_adds_nothing(world, run):
    truth = world.write_behavior(n_trials=30)
    ingest_behavior(run)
    world.write_ephys(truth)
    run("ingest_ephys")
    before = (m.Unit.objects.count(), m.UnitSpikes.objects.count(), Job.objects.count())
    out = run("ingest_ephys")
    assert "0 new, 0 changed, 1 unchanged" in out
    assert (m.Unit.objects.count(), m.UnitSpikes.objects.count(), Job.objects.count()) == before
    assert m.SortedOutput.objects.count() == 1


@pytest.mark.parametrize("layout", ["glob", "date"])
def test_other_layouts(world, run, layout):
    truth = world.write_behavior(n_trials=30)
    session = ingest_behavior(run)
    s = world.write_ephys(truth, layout=layout)
    run("ingest_ephys")
    job = Job.objects.get(step=EPHYS_INGEST)
    assert job.status == JobStatus.DONE, job.message
    rec = m.EphysRecording.objects.get()
    assert rec.layout == layout and rec.session == session
    unit = m.Unit.objects.order_by("unit").select_related("spikes").first()
    assert np.array_equal(load(unit.spikes.spike_times), s.unit_spike_times(unit.unit))


def test_two_probes_in_one_session(world, run):
    truth = world.write_behavior(n_trials=30)
    session = ingest_behavior(run)
    a = world.write_ephys(truth, seed=1, probe_index=0)
    b = world.write_ephys(truth, seed=2, probe_index=1, serial="18005117999", n_units=12)
    run("ingest_ephys")
    assert Job.objects.get(step=EPHYS_INGEST).status == JobStatus.DONE
    insertions = list(m.ProbeInsertion.objects.filter(session=session).order_by("insertion_number"))
    assert [i.insertion_number for i in insertions] == [1, 2]
    assert [i.probe.serial for i in insertions] == ["18005117162", "18005117999"]
    assert insertions[0].electrode_config == insertions[1].electrode_config  # same hash
    for ins, s in zip(insertions, (a, b), strict=True):
        units = ins.units.order_by("unit").select_related("spikes")
        assert [u.unit for u in units] == s.unit_ids.tolist()
        for u in units:
            assert np.array_equal(load(u.spikes.spike_times), s.unit_spike_times(u.unit))
        assert ins.trial_alignment.count() == 30


def test_session_matched_by_start_time_within_120_s(world, run):
    truth = world.write_behavior(n_trials=30)
    ingest_behavior(run)
    world.write_ephys(truth, layout="glob", recording_offset_s=600)  # ten minutes later
    run("ingest_ephys")
    job = Job.objects.get(step=EPHYS_INGEST)
    assert job.status == JobStatus.WAITING
    assert "no behavior session for" in job.message


def test_command_with_a_folder(world, run):
    truth = world.write_behavior(n_trials=30)
    ingest_behavior(run)
    s = world.write_ephys(truth)
    out = run("ingest_ephys", str(s.session_dir))
    assert "1 new" in out
    assert Job.objects.get(step=EPHYS_INGEST).status == JobStatus.DONE
    assert m.Unit.objects.count() == 20
    assert "done" in run("ingest_ephys", str(s.session_dir))
    with pytest.raises(CommandError, match="not named under a configured ephys data root|outside"):
        run("ingest_ephys", str(s.session_dir.parent.parent.parent))


def test_free_water_trials_have_no_go_cue(world, run):
    truth = world.write_behavior(n_trials=30, free_water_rate=0.2)
    session = ingest_behavior(run)
    free = {t.trial for t in truth.ingested if t.free_water}
    assert free
    s = world.write_ephys(truth)
    run("ingest_ephys")
    job = Job.objects.get(step=EPHYS_INGEST)
    assert job.status == JobStatus.DONE, job.message
    rows = m.InsertionTrialAlignment.objects.filter(insertion__session=session)
    assert {r.trial.trial for r in rows if r.go_cue_time is None} == free
    unit = m.Unit.objects.order_by("unit").select_related("spikes").first()
    assert np.array_equal(load(unit.spikes.spike_times), s.unit_spike_times(unit.unit))


@pytest.mark.parametrize("version", ["jrclust_v3", "jrclust_v4"])
def test_jrclust_results(world, run, version):
    import shutil

    from ephys.tests.data_helpers import jrclust_fixture, write_jrc3, write_jrc4

    truth = world.write_behavior(n_trials=30)
    session = ingest_behavior(run)
    s = world.write_ephys(truth)
    shutil.rmtree(s.ks_dir)
    f = jrclust_fixture()
    if version == "jrclust_v3":
        write_jrc3(s.probe_dir / f"{world.h2o}_20180225_g0_imec0_jrc.mat", f, fs=30000.0)
    else:
        write_jrc4(s.probe_dir / f"{world.h2o}_20180225_g0_imec0.ap_res.mat", f)
    run("ingest_ephys")
    job = Job.objects.get(step=EPHYS_INGEST)
    assert job.status == JobStatus.DONE, job.message

    units = m.Unit.objects.filter(insertion__session=session).order_by("unit")
    assert [u.unit for u in units] == [1, 2, 3]
    assert [u.quality.name for u in units] == ["good", "all", "multi"]
    assert [u.clustering_method.name for u in units] == [version] * 3
    assert [u.unit_amp for u in units] == f["vpp"][:3].tolist()
    # peak sites 3, 7, 30 are electrodes 3, 7, 30 of the 1:1 synthetic shank map
    assert [u.electrode.electrode.electrode for u in units] == [3, 7, 30]
    first = s.first_trial_start
    for u in units.select_related("spikes"):
        samples = np.rint(f["times"][f["clusters"] == u.unit]).astype(np.int64)
        assert np.array_equal(load(u.spikes.spike_times), (samples - first) / 30000.0)
        assert np.array_equal(
            load(u.spikes.spike_sites), f["sites"][f["clusters"] == u.unit].astype(np.int32)
        )


def test_the_periodic_scan_waits_for_files_to_settle(world, settings):
    from ephys.ingest import db_discovery

    truth = world.write_behavior(n_trials=30)
    s = world.write_ephys(truth)
    settings.EPHYS_SCAN_SETTLE_SECONDS = 60
    report = db_discovery.scan_ephys_roots()
    assert report.settling == [str(s.session_dir)]
    assert not m.SortedOutput.objects.exists()
    # a minute later (files older than the quiet period) it is recorded
    report = db_discovery.scan_ephys_roots(settle_seconds=1e-9)
    assert len(report.new) == 1 and not report.settling


@pytest.mark.parametrize("with_pulses", [True, False])
def test_multi_target_licking_with_ni_files(tmp_path, settings, run, with_pulses):
    """MTL (RRig-MTL): NI text files, spikes aligned to trial starts; without bit pulses the
    trials map one to one."""
    from ephys.ingest.synthetic import write_ni_bitcode_files
    from ephys.tests.factories import SyntheticWorld

    world = SyntheticWorld(tmp_path / "behavior", tmp_path / "ephys", rig="RRig-MTL")
    settings.BEHAVIOR_DATA_ROOTS = world.behavior_roots
    settings.EPHYS_DATA_ROOTS = world.ephys_roots
    world.setup_lab()
    truth = world.write_behavior(n_trials=25, mtl=True, seed=4)
    session = ingest_behavior(run)
    trials = world.behavior_trials(truth)
    s = world.write_ephys(truth)
    s.bitcode_path.unlink()
    start_file, bit_file = write_ni_bitcode_files(
        s.session_dir, s.ephys_trial_starts / s.sampling_rate, trials.bitcodes
    )
    if not with_pulses:
        bit_file.write_text("")
    run("ingest_ephys")
    job = Job.objects.get(step=EPHYS_INGEST)
    assert job.status == JobStatus.DONE, job.message
    rows = list(m.InsertionTrialAlignment.objects.filter(insertion__session=session))
    assert [r.trial.trial for r in rows] == trials.trial_numbers.tolist()
    assert all(r.go_cue_time == 0.0 for r in rows)  # MTL: aligned to the trial start
    unit = m.Unit.objects.order_by("unit").select_related("spikes").first()
    assert np.allclose(load(unit.spikes.spike_times), s.unit_spike_times(unit.unit), atol=1e-6)


def test_pykilosort_folder_with_adjusted_seconds(world, run):
    """Real phy quirks through the pipeline: a 'pyks25' folder is pykilosort2.5, and
    spike_times_sec_adj.npy (seconds, CatGT/TPrime-adjusted) wins over spike_times.npy."""
    truth = world.write_behavior(n_trials=30)
    session = ingest_behavior(run)
    s = world.write_ephys(truth)
    pyks = s.ks_dir.with_name("imec0_pyks25")
    s.ks_dir.rename(pyks)
    samples = np.load(pyks / "spike_times.npy").reshape(-1).astype(np.int64)
    np.save(pyks / "spike_times_sec_adj.npy", samples / s.sampling_rate)
    np.save(pyks / "spike_times.npy", np.zeros((samples.size, 1), np.uint64))  # stale: unused
    run("ingest_ephys")
    job = Job.objects.get(step=EPHYS_INGEST)
    assert job.status == JobStatus.DONE, job.message
    label = m.ClusteringLabel.objects.get(insertion__session=session)
    assert label.clustering_method.name == "pykilosort2.5"
    assert label.source_path.endswith("imec0_pyks25")
    for unit in m.Unit.objects.filter(insertion__session=session).select_related("spikes"):
        assert np.array_equal(load(unit.spikes.spike_times), s.unit_spike_times(unit.unit))
