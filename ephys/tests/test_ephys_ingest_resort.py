"""Re-sorting an ingested session (§14.6): the replaced clustering is archived with its arrays,
identical results change nothing, bad new results leave the session as it was, and jobs of
downstream steps for the replaced units are forgotten."""

from __future__ import annotations

import io
import os
import time

import numpy as np
import pytest

from ephys import models as m
from ephys.steps import EPHYS_INGEST, units_of_output
from ephys.tests.factories import command_runner, configured_world
from mapsite.pipeline import steps
from mapsite.pipeline.models import Job, JobStatus

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(tmp_path, settings):
    return configured_world(tmp_path, settings)


@pytest.fixture
def run(django_capture_on_commit_callbacks):
    return command_runner(django_capture_on_commit_callbacks)


def load(data: bytes | memoryview) -> np.ndarray:
    return np.load(io.BytesIO(bytes(data)), allow_pickle=False)


def arrays(**filters: object) -> dict[int, np.ndarray]:
    return {
        u.unit: load(u.spikes.spike_times)
        for u in m.Unit.objects.filter(**filters).select_related("spikes")
    }


def later(path, seconds: float = 3600.0) -> None:
    """Move a file's mtime forward (a re-sort written later than the first one)."""
    t = time.time() + seconds
    os.utime(path, (t, t))


@pytest.fixture
def ingested(world, run):
    """A session ingested once (v1): (world, behavior truth, ephys truth)."""
    truth = world.write_behavior(n_trials=30)
    run("ingest_behavior")
    s = world.write_ephys(truth, seed=0)
    run("ingest_ephys")
    assert Job.objects.get(step=EPHYS_INGEST).status == JobStatus.DONE
    return world, truth, s


def _cell_types() -> dict[int, int]:
    """Unit -> CellType id of the UnitCellType rows the downstream psth step computed."""
    from django.apps import apps

    if not apps.is_installed("psth"):
        return {}
    model = apps.get_model("psth", "UnitCellType")
    return dict(model.objects.values_list("unit__unit", "cell_type_id"))


def job_of(output: m.SortedOutput) -> Job:
    return Job.objects.get(step=EPHYS_INGEST, key_id=output.pk)


def test_resort_archives_the_old_units_and_loads_the_new(ingested, run):
    world, truth, old = ingested
    insertion = m.ProbeInsertion.objects.get()
    old_arrays = arrays(insertion=insertion)
    old_label = m.ClusteringLabel.objects.get(insertion=insertion)
    commented = m.Unit.objects.order_by("unit").first()
    m.UnitComment.objects.create(unit=commented, comment="drifts after trial 20")
    cell_types = _cell_types()

    new = world.write_ephys(truth, seed=7, n_units=15)  # re-sorted in place
    later(new.ks_dir / "spike_times.npy")
    out = run("ingest_ephys")
    assert "1 changed" in out
    v1, v2 = m.SortedOutput.objects.order_by("version")
    assert job_of(v2).status == JobStatus.DONE, job_of(v2).message
    assert v1.superseded_at is not None and v2.status == m.SortedOutputStatus.INGESTED
    assert "replaced kilosort2 of" in v2.note

    assert m.ProbeInsertion.objects.get() == insertion  # the insertion stays
    new_arrays = arrays(insertion=insertion)
    assert sorted(new_arrays) == new.unit_ids.tolist()
    for u, times in new_arrays.items():
        assert np.array_equal(times, new.unit_spike_times(u))

    archived = m.ArchivedClustering.objects.get(insertion=insertion)
    assert archived.clustering_method.name == "kilosort2"
    assert archived.clustering_time == old_label.clustering_time
    assert archived.source_path == old_label.source_path
    units = {a.unit: a for a in archived.units.all()}
    assert sorted(units) == sorted(old_arrays)
    for u, a in units.items():
        assert np.array_equal(load(a.spike_times), old_arrays[u])
        assert a.metrics["spike_count"] == old_arrays[u].size
    assert units[commented.unit].metrics["comments"] == ["drifts after trial 20"]
    assert units[commented.unit].metrics["noise_label"] == old.noise_labels[commented.unit]
    assert {u: a.cell_type_id for u, a in units.items() if a.cell_type_id} == cell_types
    assert m.InsertionTrialAlignment.objects.filter(insertion=insertion).count() == 30
    assert m.ClusteringLabel.objects.filter(insertion=insertion).count() == 1


def test_curation_in_phy_log_is_a_new_clustering(ingested, run):
    world, truth, s = ingested
    (s.ks_dir / "phy.log").write_text(
        "2021-05-06 11:20:00.000 [I] gui:1 Merge clusters 3, 5 to 40.\n"
    )
    run("ingest_ephys")
    label = m.ClusteringLabel.objects.get()
    assert label.manual_curation and not label.quality_control
    assert label.clustering_note == "curated_raw"
    assert m.ArchivedClustering.objects.count() == 1
    assert m.ArchivedUnit.objects.count() == s.unit_ids.size


def test_identical_results_change_nothing(ingested, run):
    world, truth, s = ingested
    before = arrays()
    unit_pks = sorted(m.Unit.objects.values_list("pk", flat=True))
    later(s.meta_path)  # touched: the folder changed, the clustering did not
    run("ingest_ephys")
    v2 = m.SortedOutput.objects.order_by("-version").first()
    assert v2.version == 2
    assert job_of(v2).status == JobStatus.DONE
    assert v2.status == m.SortedOutputStatus.IDENTICAL
    assert "identical clustering results" in v2.note
    assert sorted(m.Unit.objects.values_list("pk", flat=True)) == unit_pks
    assert m.ArchivedClustering.objects.count() == 0
    after = arrays()
    assert all(np.array_equal(before[u], after[u]) for u in before)


def test_bad_resort_leaves_the_session_as_it_was(ingested, run):
    world, truth, s = ingested
    before = arrays()
    unit_pks = sorted(m.Unit.objects.values_list("pk", flat=True))
    path = s.ks_dir / "spike_clusters.npy"
    path.write_bytes(path.read_bytes()[:-1000])  # truncated re-sort output
    run("ingest_ephys")
    v2 = m.SortedOutput.objects.order_by("-version").first()
    job = job_of(v2)
    assert job.status == JobStatus.ERROR
    assert "spike_clusters.npy" in job.message
    assert sorted(m.Unit.objects.values_list("pk", flat=True)) == unit_pks
    assert m.ArchivedClustering.objects.count() == m.ArchivedUnit.objects.count() == 0
    after = arrays()
    assert all(np.array_equal(before[u], after[u]) for u in before)


def test_downstream_jobs_of_replaced_units_are_forgotten(world, run, monkeypatch):
    made: list[int] = []
    downstream = steps.Step(
        name="TestUnitDownstream",
        key_model=m.Unit,
        key_source=m.Unit.objects.all,
        make=lambda unit: made.append(unit.pk),
        depends_on=(EPHYS_INGEST,),
        keys_after=lambda upstream, key_id: units_of_output(key_id).values_list("pk", flat=True),
    )
    monkeypatch.setitem(steps.REGISTRY, downstream.name, downstream)

    truth = world.write_behavior(n_trials=30)
    run("ingest_behavior")
    s = world.write_ephys(truth, seed=0)
    run("ingest_ephys")
    old_units = set(m.Unit.objects.values_list("pk", flat=True))
    jobs = Job.objects.filter(step=downstream.name)
    assert set(jobs.filter(status=JobStatus.DONE).values_list("key_id", flat=True)) == old_units

    new = world.write_ephys(truth, seed=3, n_units=9)
    later(new.ks_dir / "spike_times.npy")
    run("ingest_ephys")
    new_units = set(m.Unit.objects.values_list("pk", flat=True))
    assert len(new_units) == 9 and not new_units & old_units
    # the replaced units' jobs are gone; the new units were queued and made
    assert set(jobs.values_list("key_id", flat=True)) == new_units
    assert set(made) == old_units | new_units
    assert s.unit_ids.size == len(old_units)
