"""``manage.py populate`` on the eager (in-process) setting of the test settings.

Transactional: the command runs outside any transaction, so each step's jobs run (eagerly) the
moment its queueing commits, before the summary is printed - inside a test transaction they
would only run when the test ends.
"""

import re
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from lab.models import Rig
from lab.tests.factories import RigFactory
from mapsite.pipeline.models import Job, JobStatus
from mapsite.pipeline.steps import REGISTRY, Step, register

transactional = pytest.mark.django_db(transaction=True)


@pytest.fixture
def populate():
    """Run the command and return what it printed."""

    def run(*args: str) -> str:
        out = StringIO()
        call_command("populate", *args, stdout=out)
        return out.getvalue()

    return run


def summary_row(output: str, step: str) -> dict[str, int]:
    """Parse the command's summary line of ``step``."""
    line = next(ln for ln in output.splitlines() if ln.split()[:1] == [step])
    done, pending, running, waiting, error, missing = (int(x) for x in line.split()[1:])
    return {
        "done": done,
        "pending": pending,
        "running": running,
        "waiting": waiting,
        "error": error,
        "missing": missing,
    }


@transactional
def test_eager_populate_makes_every_missing_key_and_prints_a_summary(
    settings, make_step, recorder, populate
):
    assert settings.CELERY_TASK_ALWAYS_EAGER
    make_step("TestA")
    make_step("TestB", depends_on=["TestA"])
    RigFactory.create_batch(3)
    out = populate("TestB", "TestA")
    assert re.search(r"^TestA: 3 key\(s\) made here in [\d.]+ s$", out, re.M), out
    # B's keys were made as A finished them (downstream on commit), so nothing is left for
    # the loop to send when it reaches B.
    assert re.search(r"^TestB: 0 key\(s\) made here", out, re.M), out
    assert out.index("TestA:") < out.index("TestB:")
    header = next(ln for ln in out.splitlines() if ln.startswith("step"))
    assert header.split() == ["step", "done", "pending", "running", "waiting", "error", "missing"]
    assert summary_row(out, "TestA") == dict(
        done=3, pending=0, running=0, waiting=0, error=0, missing=0
    )
    assert summary_row(out, "TestB")["done"] == 3
    assert recorder.count("TestA") == 3 and recorder.count("TestB") == 3
    assert Job.objects.filter(step__in=["TestA", "TestB"], status=JobStatus.DONE).count() == 6
    # Running it again makes nothing.
    out = populate("TestA")
    assert re.search(r"^TestA: 0 key\(s\) made here", out, re.M)
    assert recorder.count("TestA") == 3


@transactional
def test_populate_without_names_runs_every_step(make_step, recorder, populate):
    make_step("TestA")
    RigFactory()
    out = populate()
    assert "TestA: 1 key(s) made here" in out
    assert "PhotostimBrainRegion: 0 key(s) made here" in out
    assert recorder.count("TestA") == 1


@pytest.mark.django_db
def test_list_prints_progress_and_makes_nothing(make_step, recorder, populate):
    make_step("TestA")
    make_step("TestB")
    RigFactory.create_batch(2)
    out = populate("--list")
    assert summary_row(out, "TestA") == dict(
        done=0, pending=0, running=0, waiting=0, error=0, missing=2
    )
    assert "PhotostimBrainRegion" in out
    assert "made here" not in out
    assert not Job.objects.exists()
    assert recorder.count() == 0
    # With names, only those steps.
    out = populate("--list", "TestB")
    assert summary_row(out, "TestB")["missing"] == 2
    assert "TestA" not in out and "PhotostimBrainRegion" not in out


@transactional
def test_retry_errors(make_step, recorder, populate):
    broken = {"yes": True}

    def make(rig: Rig) -> None:
        recorder.record("TestFlaky", rig.pk)
        if broken["yes"]:
            raise RuntimeError(f"rig {rig.name} is unplugged")

    make_step("TestFlaky", make=make)
    rig = RigFactory(name="RigX")
    out = populate("TestFlaky")
    assert summary_row(out, "TestFlaky")["error"] == 1
    # The errors are listed with their message.
    assert "error TestFlaky [RigX]: RuntimeError: rig RigX is unplugged" in out

    broken["yes"] = False
    out = populate("TestFlaky")  # errors wait for a person
    assert summary_row(out, "TestFlaky")["error"] == 1
    assert recorder.count() == 1

    out = populate("TestFlaky", "--retry-errors")
    assert "TestFlaky: 1 key(s) made here" in out
    assert summary_row(out, "TestFlaky") == dict(
        done=1, pending=0, running=0, waiting=0, error=0, missing=0
    )
    assert Job.objects.get(step="TestFlaky", key_id=rig.pk).attempts == 2


@pytest.mark.django_db
def test_unknown_step_is_a_command_error(make_step):
    with pytest.raises(CommandError, match="unknown pipeline step 'NoSuchStep'"):
        call_command("populate", "NoSuchStep", stdout=StringIO())
    with pytest.raises(CommandError, match="unknown pipeline step 'NoSuchStep'"):
        call_command("populate", "--list", "NoSuchStep", stdout=StringIO())


@pytest.mark.django_db
def test_cycle_is_a_command_error():
    def step(name: str, up: str) -> Step:
        return Step(name, Rig, Rig.objects.all, lambda r: None, depends_on=(up,))

    register(step("TestCycleA", "TestCycleB"))
    register(step("TestCycleB", "TestCycleA"))
    try:
        with pytest.raises(CommandError, match="cycle"):
            call_command("populate", "TestCycleA", stdout=StringIO())
    finally:
        REGISTRY.pop("TestCycleA")
        REGISTRY.pop("TestCycleB")
