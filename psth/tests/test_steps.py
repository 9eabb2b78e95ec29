"""The analysis steps on ingested synthetic sessions: queued when EphysIngest finishes, every
result equal to a loop implementation of the spec, and the built-in answer found."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ephys import models as em
from ephys.analysis import reference as ref
from ephys.tests.factories import command_runner, configured_world
from mapsite.pipeline import runner
from mapsite.pipeline.models import Job, JobStatus
from psth import models as pm
from psth import steps as ps
from psth.synthetic import FS_WIDTH_SAMPLES

from .helpers import (
    PERIODS,
    analysed,
    annotate,
    load,
    oracle_inputs,
    oracle_period_selectivity,
    oracle_psth,
    write_recording,
)

pytestmark = pytest.mark.django_db

PEOPLE_STEPS = {
    ps.DRIFT_METRIC,
    ps.UNIT_COARSE_BRAIN_LOCATION,
    ps.PERIOD_SELECTIVITY,
    ps.UNIT_SELECTIVITY,
}


@pytest.fixture
def world(tmp_path, settings):
    return configured_world(tmp_path, settings)


@pytest.fixture
def run(django_capture_on_commit_callbacks):
    return command_runner(django_capture_on_commit_callbacks)


@pytest.fixture
def sweep(django_capture_on_commit_callbacks):
    """What beat does: queue every missing key (its jobs run in-process on commit)."""

    def go() -> dict[str, int]:
        with django_capture_on_commit_callbacks(execute=True):
            return runner.queue_missing(retry_waiting=True)

    return go


def statuses(insertion: em.ProbeInsertion) -> dict[str, str]:
    return dict(
        Job.objects.filter(step__in=ps.STEPS, key_id=insertion.pk).values_list("step", "status")
    )


def failures() -> list:
    return list(Job.objects.exclude(status=JobStatus.DONE).values_list("step", "status", "message"))


def test_steps_are_queued_when_the_ephys_ingest_finishes(world, run, sweep):
    rec = write_recording(world, run, seed=0, with_metrics=True)
    insertion = rec.insertion
    done = statuses(insertion)
    # Made right after the ingest, without anyone acting
    expected = {ps.UNIT_STAT, ps.UNIT_CELL_TYPE, ps.UNIT_PSTH, ps.UNIT_PASSING_CRITERIA}
    assert done == dict.fromkeys(expected, JobStatus.DONE), failures()
    assert pm.UnitPsth.objects.filter(unit__insertion=insertion).exists()
    # Steps needing people's entries have no key yet
    assert not PEOPLE_STEPS & done.keys()

    annotate(insertion, hemisphere=rec.hemisphere)
    sent = sweep()
    assert all(sent[s] == 1 for s in PEOPLE_STEPS), sent
    assert statuses(insertion) == dict.fromkeys(ps.STEPS, JobStatus.DONE), failures()
    assert all(job.attempts == 1 for job in Job.objects.filter(step__in=ps.STEPS))
    # nothing left to do: a second sweep queues nothing
    assert all(n == 0 for n in sweep().values())
    n_units = len(analysed(insertion))
    assert pm.UnitSelectivity.objects.filter(unit__insertion=insertion).count() == n_units
    assert pm.PeriodSelectivity.objects.filter(unit__insertion=insertion).count() == 3 * n_units


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_result_equals_the_loop_implementation(world, run, sweep, seed):
    rec = write_recording(world, run, seed=seed, with_metrics=seed == 1, n_trials=60 + 10 * seed)
    insertion = rec.insertion
    annotate(
        insertion,
        hemisphere=rec.hemisphere,
        good_fraction=None if seed == 2 else 0.7,
        seed=seed,
        depth_rules=[("ALM", -10.0, 300.0 + 100 * seed), ("Striatum", 300.0 + 100 * seed, 4000.0)],
    )
    sweep()
    expected = set(ps.STEPS) if seed == 1 else set(ps.STEPS) - {ps.UNIT_PASSING_CRITERIA}
    assert statuses(insertion) == dict.fromkeys(expected, JobStatus.DONE), failures()
    o = oracle_inputs(insertion)
    assert len(o.trial_ids) > 40
    units = list(em.Unit.objects.filter(insertion=insertion).order_by("pk"))

    # UnitStat: computed only when metrics.csv gave none
    for unit in units:
        stat = em.UnitStat.objects.get(unit=unit)
        if seed == 1:
            continue  # from metrics.csv (ingest); the step left them alone
        isi, rate = ref.ref_unit_stat(o.aligned[unit.pk], o.durations)
        assert stat.avg_firing_rate == pytest.approx(rate, rel=1e-12)
        assert stat.isi_violation == pytest.approx(isi, rel=1e-9, abs=1e-12)

    # UnitCellType: width of the spline-upsampled waveform; FS / Pyr as constructed
    for unit in analysed(insertion):
        row = pm.UnitCellType.objects.get(unit=unit)
        width, kind = ref.ref_cell_type(load(unit.waveform).astype(float), insertion.sampling_rate)
        assert row.waveform_width == pytest.approx(width, rel=1e-9)
        assert row.cell_type.name == kind
        assert kind == ("FS" if rec.widths[unit.unit] == FS_WIDTH_SAMPLES else "Pyr")

    # DriftMetric over the good trials with a trialend event
    used = [
        t
        for t in range(len(o.trial_ids))
        if o.good[t] and o.events["trialend"][t] > 0 and not math.isnan(o.events["trialend"][t])
    ]
    for unit in units:
        row = pm.DriftMetric.objects.get(unit=unit)
        expected_drift = ref.ref_drift_metric(
            [o.aligned[unit.pk][t] for t in used], [o.events["trialend"][t] for t in used]
        )
        assert row.drift_metric == pytest.approx(expected_drift, rel=1e-12)

    # UnitCoarseBrainLocation
    rules = list(
        em.BrainAreaDepthCriteria.objects.filter(insertion=insertion).values_list(
            "brain_area__name", "depth_upper", "depth_lower"
        )
    )
    for unit in units:
        row = pm.UnitCoarseBrainLocation.objects.get(unit=unit)
        area = ref.ref_coarse_brain_location(unit.unit_posy, rules)
        assert (row.brain_area.name if row.brain_area else None) == area
        assert (row.hemisphere.name if row.hemisphere else None) == (area and rec.hemisphere)

    # UnitPassingCriteria (metrics.csv sessions only)
    if seed == 1:
        for unit in units:
            cm = em.ClusterMetric.objects.filter(unit=unit).order_by("pk").first()
            stat = em.UnitStat.objects.get(unit=unit)
            values = {
                "unit_amp": unit.unit_amp,
                "avg_firing_rate": stat.avg_firing_rate,
                "isi_violation": stat.isi_violation,
                "presence_ratio": cm.presence_ratio,
                "amplitude_cutoff": cm.amplitude_cutoff,
            }
            values = {k: math.nan if v is None else v for k, v in values.items()}
            row = pm.UnitPassingCriteria.objects.get(unit=unit)
            assert row.criteria_passed == ref.ref_passes_criteria("ALM", values)

    # UnitPsth: every unit × condition
    psth = oracle_psth(insertion, o)
    rows = {
        (r.unit_id, r.trial_condition.name): r
        for r in pm.UnitPsth.objects.filter(unit__insertion=insertion).select_related(
            "trial_condition"
        )
    }
    assert set(rows) == set(psth)
    assert len({name for _, name in rows}) == (17 if o.stim_regions else 8)
    for key, (n, rates) in psth.items():
        row = rows[key]
        assert row.trial_count == n
        if rates is None:
            assert row.rates is None
        else:
            got = row.rates_array()
            assert got.dtype == np.float32 and got.shape == (150,)
            np.testing.assert_allclose(got, rates, rtol=1e-6, atol=1e-4)
    assert any(n > 0 for n, _ in psth.values())

    # PeriodSelectivity, UnitSelectivity
    expected_ps = oracle_period_selectivity(insertion, o)
    got_ps = {
        (r.unit_id, r.period.name): r
        for r in pm.PeriodSelectivity.objects.filter(unit__insertion=insertion).select_related(
            "period", "selectivity"
        )
    }
    assert set(got_ps) == set(expected_ps)
    for key, (label, ipsi, contra, p) in expected_ps.items():
        row = got_ps[key]
        assert row.selectivity.name == label, key
        assert row.p_value == pytest.approx(p, rel=1e-7, abs=1e-12)
        for got, want in ((row.ipsi_firing_rate, ipsi), (row.contra_firing_rate, contra)):
            assert (got is None) == math.isnan(want)
            if got is not None:
                assert got == pytest.approx(want, rel=1e-12)
    for unit in analysed(insertion):
        labels = [expected_ps[(unit.pk, p)][0] for p in PERIODS]
        ipsi = [expected_ps[(unit.pk, p)][1] for p in PERIODS]
        contra = [expected_ps[(unit.pk, p)][2] for p in PERIODS]
        row = pm.UnitSelectivity.objects.get(unit=unit)
        assert row.selectivity.name == ref.ref_unit_selectivity(labels, ipsi, contra)

    # The answer built into the data: constructed units are delay-selective as constructed
    by_unit = {u.unit: u.pk for u in analysed(insertion)}
    want = {1: "contra-selective", -1: "ipsi-selective"}
    for unit_id, pref in rec.preference.items():
        if unit_id in by_unit:
            assert got_ps[(by_unit[unit_id], "delay")].selectivity.name == want[pref]
            assert (
                pm.UnitSelectivity.objects.get(unit_id=by_unit[unit_id]).selectivity.name
                in (want[pref])
            )
    # units without a built-in preference are selective only by chance (p < 0.05), in every
    # period: windows relative to the go cue the spikes are aligned to (a trial whose response
    # cue was repeated has a later last go event; windows from it would find no spikes)
    others = [pk for u, pk in by_unit.items() if u not in rec.preference]
    for period in PERIODS:
        false_positives = sum(
            got_ps[(pk, period)].selectivity.name != "non-selective" for pk in others
        )
        assert false_positives <= max(1, len(others) // 4), period
