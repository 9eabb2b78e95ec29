"""``manage.py ingest_behavior`` as a person runs it on the embedded default: tasks in-process.

Outside a test transaction, jobs are dispatched (and, eagerly, made) as soon as the command's
own transactions commit, so the command can report each file's outcome and fail when a file it
was given could not be ingested. These tests therefore commit for real (``transaction=True``);
the lookup rows the flush removes are put back by the root ``conftest.py``.
"""

from __future__ import annotations

import shutil
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from experiment import models as m
from experiment.ingest.synthetic import write_synthetic_session
from experiment.tests.test_behavior_ingest import (
    REAL_FILE,
    REAL_RELATIVE,
    RIG,
    counts,
    needs_real_file,
    session_dir,
)
from lab.tests.factories import RigFactory, WaterRestrictionFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def root(settings, tmp_path) -> Path:
    path = tmp_path / "RRig"
    path.mkdir()
    settings.BEHAVIOR_DATA_ROOTS = [f"{RIG}={path}"]
    settings.CELERY_TASK_ALWAYS_EAGER = True
    RigFactory(name=RIG)
    return path


def run(*args: str | Path) -> str:
    out = StringIO()
    call_command("ingest_behavior", *map(str, args), stdout=out, stderr=out)
    return out.getvalue()


@needs_real_file
def test_scan_reports_each_file_done(root):
    WaterRestrictionFactory(water_restriction_number="dl25")
    target = root / REAL_RELATIVE
    target.parent.mkdir(parents=True)
    shutil.copyfile(REAL_FILE, target)

    out = run()

    assert "scan: 1 new, 0 unchanged, 0 changed after ingest, 0 refused" in out
    assert f"done     {REAL_FILE.name}" in out
    assert m.SessionTrial.objects.count() == 11

    again = run()
    assert "scan: 0 new, 1 unchanged" in again
    assert m.Session.objects.count() == 1


def test_a_given_file_that_fails_makes_the_command_fail(root):
    WaterRestrictionFactory(water_restriction_number="sy01")
    path = session_dir(root, "sy01") / "sy01_tw2_20180225_102528.mat"
    path.write_text("this is not a MATLAB file\n" * 20)
    before = counts()
    out = StringIO()

    with pytest.raises(CommandError, match="could not be ingested"):
        call_command("ingest_behavior", str(path), stdout=out, stderr=out)

    line = f"error    {path.name}: UnreadableFileError: {path.name}: cannot be read as a MATLAB"
    assert line in out.getvalue()
    assert counts() == before

    with pytest.raises(CommandError):  # naming it again does not hide the failure
        run(path)


def test_a_given_file_of_an_unknown_subject_waits_without_failing(root):
    truth = write_synthetic_session(session_dir(root, "dl99"), h2o="dl99", seed=3, n_trials=5)
    out = run(truth.path)
    assert f"waiting  {truth.file_name}: no subject with water-restriction number dl99" in out

    WaterRestrictionFactory(water_restriction_number="dl99")
    out = run(truth.path)  # naming it again retries it
    assert f"done     {truth.file_name}" in out
    assert m.SessionTrial.objects.count() == 5
