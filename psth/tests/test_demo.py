"""The demo's sorted session (``psth.demo``, a step of ``load_demo``): ingested after the
behavior sessions, and every analysis step made without anyone acting."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from ephys import models as em
from lab.demo import demo_behavior_root
from mapsite.pipeline.models import Job, JobStatus
from mapsite.pipeline.steps import get_step
from psth import models as pm
from psth import steps as ps
from psth.demo import demo_ephys_root

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo_var(settings, tmp_path):
    settings.VAR_DIR = tmp_path / "var"
    return settings.VAR_DIR


def load_demo(capture) -> str:
    out = StringIO()
    with capture(execute=True):
        call_command("load_demo", stdout=out)
    return out.getvalue()


def test_the_demo_has_a_sorted_session_with_every_analysis(
    demo_var, settings, django_capture_on_commit_callbacks
):
    settings.BEHAVIOR_DATA_ROOTS = [f"RRig={demo_behavior_root()}"]
    settings.EPHYS_DATA_ROOTS = []  # the demo folder is made a root for its ingest only

    out = load_demo(django_capture_on_commit_callbacks)

    assert "sorted ephys session: 1 created" in out, out
    assert demo_ephys_root().is_relative_to(demo_var)
    insertion = em.ProbeInsertion.objects.get()
    assert insertion.session.subject.water_restriction.water_restriction_number == "dl25"
    units = em.Unit.objects.filter(insertion=insertion)
    assert units.count() == 48
    jobs = dict(Job.objects.filter(step__in=ps.STEPS).values_list("step", "status"))
    assert jobs == dict.fromkeys(ps.STEPS, JobStatus.DONE)
    for name in ps.STEPS:
        assert not get_step(name).missing_keys().exists(), name
    n = units.exclude(quality__name="all").count()
    assert pm.UnitPsth.objects.count() == 17 * n
    assert pm.UnitSelectivity.objects.count() == n
    assert pm.UnitSelectivity.objects.exclude(selectivity__name="non-selective").exists()
    assert pm.UnitPassingCriteria.objects.count() == units.count()
    assert set(pm.UnitCellType.objects.values_list("cell_type__name", flat=True)) == {"FS", "Pyr"}

    before = (Job.objects.count(), pm.UnitPsth.objects.count(), units.count())
    again = load_demo(django_capture_on_commit_callbacks)
    assert "sorted ephys session: 0 created, 1 already present" in again
    assert "nothing new" in again
    assert (Job.objects.count(), pm.UnitPsth.objects.count(), units.count()) == before


def test_without_the_behavior_session_the_step_writes_nothing(demo_var, settings):
    settings.BEHAVIOR_DATA_ROOTS = []
    from lab.demo import LAB_STEPS, load_sorted_session

    for step in LAB_STEPS:
        step()
    report = load_sorted_session()
    assert not report.created and report.skipped
    assert "not ingested" in report.skipped[0]
    assert not demo_ephys_root().exists()
    assert not em.ProbeInsertion.objects.exists()
