"""Ephys ingest on a running system: a real Celery worker (a thread) on the real Redis.

"A synthetic sorted session dropped into an ephys root of a running system is found, aligned
and loaded without anyone acting": the test drops a Bpod file and a sorted session into their
roots, sends what beat sends (``mapsite.pipeline.tasks.sweep``) and waits, bounded, for the
units; their spike times must equal the generator's ground truth exactly. The live app and the
worker are those of the behavior worker test; the root ``conftest.py`` puts the lookup rows back
after the committing test.
"""

from __future__ import annotations

import io

import numpy as np
import pytest

from ephys import models as m
from ephys.steps import EPHYS_INGEST
from ephys.tests.factories import SyntheticWorld
from experiment.tests.test_behavior_worker import live_app, worker  # noqa: F401 - fixtures
from mapsite.core.testing import wait_for
from mapsite.pipeline import tasks
from mapsite.pipeline.models import Job, JobStatus

pytestmark = pytest.mark.worker


@pytest.mark.django_db(transaction=True)
def test_a_sorted_session_dropped_into_an_ephys_root_is_loaded_without_anyone_acting(
    worker,  # noqa: F811
    settings,
    tmp_path,
):
    world = SyntheticWorld(tmp_path / "behavior", tmp_path / "ephys", h2o="sy07")
    settings.BEHAVIOR_DATA_ROOTS = world.behavior_roots  # process-wide: the worker sees them
    settings.EPHYS_DATA_ROOTS = world.ephys_roots
    settings.EPHYS_SCAN_SETTLE_SECONDS = 0
    world.setup_lab()

    # The system is running; its data roots are empty.
    assert tasks.sweep.delay().get(timeout=30)[EPHYS_INGEST] == 0

    # The rig writes the behavior file, the sorting lands on the ephys share.
    truth = world.write_behavior(n_trials=40, seed=5)
    s = world.write_ephys(truth, n_units=25, n_spikes=60_000, seed=4)

    tasks.sweep.delay()  # what beat sends every PIPELINE_SWEEP_SECONDS; nobody waits on it
    units = m.Unit.objects.filter(insertion__session__subject=world.subject)
    waited = wait_for(units.exists, 90, "the units")
    print(f"units appeared {waited:.2f} s after the sweep was sent")

    job = Job.objects.get(step=EPHYS_INGEST)
    assert job.status == JobStatus.DONE
    assert job.worker_host == worker.hostname  # made in the worker, not in the test
    units = units.select_related("spikes").order_by("unit")
    assert [u.unit for u in units] == s.unit_ids.tolist()
    for u in units:
        times = np.load(io.BytesIO(bytes(u.spikes.spike_times)), allow_pickle=False)
        assert np.array_equal(times, s.unit_spike_times(u.unit))
    assert m.InsertionTrialAlignment.objects.count() == 40

    # Beat keeps sweeping: nothing is ingested twice.
    tasks.sweep.delay().get(timeout=30)
    assert Job.objects.filter(step=EPHYS_INGEST).count() == 1
    assert m.Unit.objects.count() == s.unit_ids.size
