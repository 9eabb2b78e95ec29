"""The demo's behavior sessions (``lab.demo.load_behavior_sessions``), run by ``load_demo``.

``settings.VAR_DIR`` is pointed at a temporary directory, so the demo root
(``var/demo-data/behavior/RRig``) lives there and the checkout's var/ is left alone.
"""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from experiment import models as m
from experiment.steps import BEHAVIOR_INGEST
from lab.demo import DEMO_BEHAVIOR_SESSIONS, LAB_STEPS, demo_behavior_root
from mapsite.pipeline.models import Job, JobStatus

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


def test_demo_ingests_its_sessions_through_the_pipeline(
    demo_var, settings, django_capture_on_commit_callbacks
):
    root = demo_behavior_root()
    assert root == demo_var / "demo-data" / "behavior" / "RRig"
    settings.BEHAVIOR_DATA_ROOTS = [f"RRig={root}"]

    out = load_demo(django_capture_on_commit_callbacks)

    assert "behavior sessions: 3 created" in out, out
    files = sorted(p.name for p in root.rglob("*.mat"))
    assert len(files) == 3
    assert any(name.startswith("SC022_SC_RecordingRig3_") for name in files)
    sessions = m.Session.objects.select_related("subject__water_restriction", "rig")
    by_h2o = sorted(
        (s.subject.water_restriction.water_restriction_number, s.session) for s in sessions
    )
    assert by_h2o == [("SC022", 1), ("dl25", 1), ("dl25", 2)]
    assert {s.rig.name for s in sessions} == {"RRig"}
    designed = sum(spec.n_trials for spec in DEMO_BEHAVIOR_SESSIONS)
    assert m.SessionTrial.objects.count() == designed - _skipped_trials()
    jobs = Job.objects.filter(step=BEHAVIOR_INGEST)
    assert sorted(jobs.values_list("status", flat=True)) == [JobStatus.DONE] * 3
    # Both photostim sessions, with the regions computed downstream.
    assert m.Photostim.objects.values("session").distinct().count() == 2
    assert m.PhotostimBrainRegion.objects.count() == m.Photostim.objects.count() > 0
    assert set(m.PhotostimBrainRegion.objects.values_list("stim_laterality", flat=True)) == {
        "left",
        "right",
        "both",
    }

    # Running it again adds nothing and rewrites no file.
    stamps = {p: p.stat().st_mtime_ns for p in root.rglob("*.mat")}
    before = (m.Session.objects.count(), m.SessionTrial.objects.count(), Job.objects.count())
    again = load_demo(django_capture_on_commit_callbacks)
    assert "behavior sessions: 0 created, 3 already present" in again
    assert "nothing new" in again
    assert (m.Session.objects.count(), m.SessionTrial.objects.count(), Job.objects.count()) == (
        before
    )
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*.mat")} == stamps


def _skipped_trials() -> int:
    from experiment.ingest.synthetic import build_synthetic_session

    return sum(
        sum(t.skipped for t in build_synthetic_session(**spec.build_options()).truth.trials)
        for spec in DEMO_BEHAVIOR_SESSIONS
    )


def test_demo_without_its_root_configured_writes_nothing(demo_var, settings):
    settings.BEHAVIOR_DATA_ROOTS = []
    for step in LAB_STEPS:
        step()
    from lab.demo import load_behavior_sessions

    report = load_behavior_sessions()

    assert report.created == [] and report.existing == []
    (reason,) = report.skipped
    assert "is not a configured behavior data root" in reason and "MAP_BEHAVIOR_ROOTS" in reason
    assert not demo_behavior_root().exists()
    assert not m.Session.objects.exists() and not m.BehaviorFile.objects.exists()


def test_demo_never_writes_into_another_root_of_rig_rrig(demo_var, settings, tmp_path):
    real = tmp_path / "share" / "RRig"
    real.mkdir(parents=True)
    settings.BEHAVIOR_DATA_ROOTS = [f"RRig={real}"]
    for step in LAB_STEPS:
        step()
    from lab.demo import load_behavior_sessions

    report = load_behavior_sessions()

    assert report.skipped and not report.created
    assert list(real.iterdir()) == []


def test_a_demo_file_that_fails_is_reported_not_hidden(
    demo_var, settings, django_capture_on_commit_callbacks
):
    root = demo_behavior_root()
    settings.BEHAVIOR_DATA_ROOTS = [f"RRig={root}"]
    for step in LAB_STEPS:
        if step.__name__ != "load_subjects":  # no subjects: every file waits for its subject
            step()
    from lab.demo import load_behavior_sessions

    report = load_behavior_sessions()

    assert report.created == []
    assert len(report.skipped) == 3
    assert all("waiting: no subject with water-restriction number" in s for s in report.skipped)
