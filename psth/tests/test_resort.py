"""Re-sorting a session replaces its units: what the analyses made of the old units goes, and
the new units are analysed without anyone acting. People's later entries re-queue too."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

from ephys import models as em
from ephys.tests.factories import command_runner, configured_world
from mapsite.pipeline import runner
from mapsite.pipeline.models import Job, JobStatus
from psth import models as pm
from psth import steps as ps

from .helpers import annotate, oracle_inputs, oracle_psth, write_recording

pytestmark = pytest.mark.django_db

RESULT_MODELS = (
    pm.UnitPsth,
    pm.PeriodSelectivity,
    pm.UnitSelectivity,
    pm.UnitCellType,
    pm.UnitCoarseBrainLocation,
    pm.DriftMetric,
)


@pytest.fixture
def world(tmp_path, settings):
    return configured_world(tmp_path, settings)


@pytest.fixture
def run(django_capture_on_commit_callbacks):
    return command_runner(django_capture_on_commit_callbacks)


@pytest.fixture
def capture(django_capture_on_commit_callbacks):
    return django_capture_on_commit_callbacks


def later(path, seconds: float = 3600.0) -> None:
    t = time.time() + seconds
    os.utime(path, (t, t))


def result_units(model: type) -> set[int]:
    return set(model.objects.values_list("unit_id", flat=True))


def jobs() -> dict[str, tuple[int, str, int]]:
    return {j.step: (j.pk, j.status, j.attempts) for j in Job.objects.filter(step__in=ps.STEPS)}


@pytest.fixture
def analysed(world, run, capture):
    rec = write_recording(world, run, seed=3)
    annotate(rec.insertion, hemisphere=rec.hemisphere, seed=3)
    with capture(execute=True):
        runner.queue_missing(retry_waiting=True)
    made = jobs()
    assert {s for s, (_, status, _) in made.items() if status == JobStatus.DONE} == set(
        ps.STEPS
    ) - {ps.UNIT_PASSING_CRITERIA}
    return rec


def test_resort_replaces_the_results_of_the_old_units(analysed, world, run):
    rec = analysed
    insertion = rec.insertion
    old_units = set(em.Unit.objects.values_list("pk", flat=True))
    for model in RESULT_MODELS:
        assert result_units(model) <= old_units and result_units(model)
    before = jobs()

    new = world.write_ephys(rec.truth, seed=11, n_units=9, n_spikes=20_000)
    later(new.ks_dir / "spike_times.npy")
    run("ingest_ephys")
    v2 = em.SortedOutput.objects.order_by("-version").first()
    assert v2.status == em.SortedOutputStatus.INGESTED, v2.note

    new_units = set(em.Unit.objects.values_list("pk", flat=True))
    assert len(new_units) == 9 and not new_units & old_units
    after = jobs()
    # every job was forgotten and made again (new rows, one attempt each), nothing else
    assert set(after) == set(before)
    for step, (pk, status, attempts) in after.items():
        assert status == JobStatus.DONE, (step, Job.objects.get(pk=pk).message)
        assert attempts == 1 and pk != before[step][0]
    analysed_units = set(em.Unit.objects.exclude(quality__name="all").values_list("pk", flat=True))
    assert result_units(pm.UnitPsth) == analysed_units
    assert result_units(pm.UnitSelectivity) == analysed_units
    assert result_units(pm.DriftMetric) == new_units
    assert result_units(pm.UnitCoarseBrainLocation) == new_units
    assert set(em.UnitStat.objects.values_list("unit_id", flat=True)) == new_units
    # and the new results are right
    o = oracle_inputs(insertion)
    expected = oracle_psth(insertion, o)
    for row in pm.UnitPsth.objects.select_related("trial_condition"):
        n, rates = expected[(row.unit_id, row.trial_condition.name)]
        assert row.trial_count == n
        if rates is not None:
            np.testing.assert_allclose(row.rates_array(), rates, rtol=1e-6, atol=1e-4)


def test_an_identical_folder_version_recomputes_nothing(analysed, run):
    before = jobs()
    rows = pm.UnitPsth.objects.count()
    later(analysed.ephys.meta_path)  # touched, same clustering
    run("ingest_ephys")
    assert em.SortedOutput.objects.order_by("-version").first().status == "identical"
    assert jobs() == before
    assert pm.UnitPsth.objects.count() == rows


def test_entries_typed_in_later_requeue_what_reads_them(analysed, capture):
    insertion = analysed.insertion
    before = jobs()
    good = em.GoodTrial.objects.filter(quality__insertion=insertion)
    n_good = good.count()
    with capture(execute=True):
        good.first().delete()  # a person drops a trial from the good ones
    after = jobs()
    for step in (ps.UNIT_PSTH, ps.DRIFT_METRIC):
        assert after[step][0] != before[step][0] and after[step][1] == JobStatus.DONE
    for step in (ps.PERIOD_SELECTIVITY, ps.UNIT_SELECTIVITY, ps.UNIT_CELL_TYPE):
        assert after[step] == before[step]  # untouched
    hit = pm.UnitPsth.objects.filter(trial_condition__name="good_noearlylick_hit").first()
    o = oracle_inputs(insertion)
    assert sum(o.good) == n_good - 1
    assert hit.trial_count == oracle_psth(insertion, o)[(hit.unit_id, hit.trial_condition.name)][0]

    # moving the insertion to the other hemisphere swaps ipsi and contra
    location = em.InsertionLocation.objects.get(insertion=insertion)
    ipsi_before = dict(
        pm.PeriodSelectivity.objects.filter(period__name="delay").values_list(
            "unit_id", "ipsi_firing_rate"
        )
    )
    location.ml_location = -location.ml_location
    with capture(execute=True):
        location.save()
    contra_after = dict(
        pm.PeriodSelectivity.objects.filter(period__name="delay").values_list(
            "unit_id", "contra_firing_rate"
        )
    )
    assert contra_after.keys() == ipsi_before.keys()
    for unit, rate in ipsi_before.items():
        assert contra_after[unit] == pytest.approx(rate)
    assert jobs()[ps.UNIT_SELECTIVITY][1] == JobStatus.DONE
    assert pm.UnitCoarseBrainLocation.objects.filter(hemisphere__name="right").exists()

    # deleting the location takes the selectivity away (its key left the key source)
    with capture(execute=True):
        location.delete()
    assert not pm.PeriodSelectivity.objects.exists()
    assert not pm.UnitSelectivity.objects.exists()
    assert ps.PERIOD_SELECTIVITY not in jobs()
