"""Schema ``experiment``: lookup contents (experiment/lookups.py and the spec §3) and the
database constraints and natural keys."""

import datetime as dt
from decimal import Decimal

import pytest
from django.apps import apps
from django.db import IntegrityError, transaction

from experiment import lookups
from experiment.models import (
    ActionEventType,
    EarlyLick,
    Outcome,
    Period,
    Photostim,
    PhotostimBrainRegion,
    PhotostimEvent,
    PhotostimTrial,
    Project,
    Session,
    SessionDetails,
    SessionTrial,
    Task,
    TaskProtocol,
    TrainingType,
    TrialEventType,
    TrialInstruction,
    TrialNoteType,
    WaterPort,
)
from experiment.tests.factories import (
    BehaviorTrialFactory,
    PhotostimFactory,
    PhotostimLocationFactory,
    SessionFactory,
    SessionTrialFactory,
    TrialEventFactory,
)
from lab.models import BrainArea

pytestmark = pytest.mark.django_db


def rejected(create, *args, **kwargs) -> None:
    """``create(...)`` must fail with an IntegrityError (in a savepoint, so the test goes on)."""
    with pytest.raises(IntegrityError), transaction.atomic():
        create(*args, **kwargs)


def names(model: type) -> set[str]:
    return set(model.objects.values_list("name", flat=True))


# --- lookups ------------------------------------------------------------------------------------


@pytest.mark.parametrize("label", sorted(lookups.ALL))
def test_lookup_rows_are_exactly_those_of_lookups_py(label):
    model = apps.get_model(label)
    rows = lookups.ALL[label]
    assert sorted(model.objects.values_list("name", flat=True)) == sorted(r["name"] for r in rows)
    for row in rows:
        obj = model.objects.get(name=row["name"])
        for field, value in row.items():
            assert getattr(obj, field) == value, (label, row["name"], field)


def test_task_protocols_are_exactly_those_of_lookups_py():
    got = {
        (p.task.name, p.protocol): p.description
        for p in TaskProtocol.objects.select_related("task")
    }
    assert got == {(t, n): d for t, n, d in lookups.TASK_PROTOCOLS}


def test_periods_are_exactly_those_of_lookups_py():
    got = {
        (
            p.name,
            p.start_event_type.name,
            p.start_time_shift,
            p.end_event_type.name,
            p.end_time_shift,
        )
        for p in Period.objects.select_related("start_event_type", "end_event_type")
    }
    assert got == set(lookups.PERIODS)


# Spot checks transcribed from the spec (§3), independently of experiment/lookups.py.


def test_trial_event_types_match_the_spec():
    assert TrialEventType.objects.count() == 14
    assert names(TrialEventType) == {
        "delay",
        "go",
        "sample",
        "presample",
        "trialend",
        "videostart",
        "videoend",
        "bitcodestart",
        "choice",
        "reward",
        "doubledip",
        "bpodstart",
        "zaberstep",
        "zaberready",
    }


def test_periods_match_the_spec():
    """§3.6: sample = sample → delay; delay = delay → go; response = go → go + 1.2 s."""
    periods = {p.name: p for p in Period.objects.select_related()}
    assert set(periods) == {"sample", "delay", "response"}
    spans = {
        name: (p.start_event_type.name, p.start_time_shift, p.end_event_type.name, p.end_time_shift)
        for name, p in periods.items()
    }
    assert spans == {
        "sample": ("sample", 0.0, "delay", 0.0),
        "delay": ("delay", 0.0, "go", 0.0),
        "response": ("go", 0.0, "go", 1.2),
    }


def test_task_lookups_match_the_spec():
    assert names(Task) == {
        "audio delay",
        "audio mem",
        "s1 stim",
        "foraging",
        "foraging 3lp",
        "multi-target-licking",
    }
    by_task: dict[str, set[int]] = {}
    for task, number in TaskProtocol.objects.values_list("task__name", "protocol"):
        by_task.setdefault(task, set()).add(number)
    assert by_task == {
        "audio delay": {1},
        "s1 stim": {2, 3, 4, 5, 6, 7, 8, 9},
        "foraging": {100},
        "foraging 3lp": {101},
        "multi-target-licking": {1, 2},
    }
    assert TaskProtocol.objects.get(task__name="audio delay").description == (
        "high tone vs. low tone"
    )
    assert TaskProtocol.objects.get(task__name="multi-target-licking", protocol=2).description == (
        "Spontaneous"
    )
    assert names(TrainingType) == {
        "regular",
        "regular + distractor",
        "regular or regular + distractor",
    }
    projects = {p.name: p for p in Project.objects.all()}
    assert set(projects) == {
        "MAP",
        "Brain-wide neural activity underlying memory-guided movement",
    }
    assert projects["MAP"].description == "The Mesoscale Activity Map project"
    assert (
        projects["Brain-wide neural activity underlying memory-guided movement"].publication
        == "10.1101/2023.03.01.530520"
    )


def test_trial_label_lookups_match_the_spec():
    assert names(TrialNoteType) == {
        "autolearn",
        "protocol #",
        "bad",
        "bitcode",
        "autowater",
        "random_seed_start",
    }
    assert names(TrialInstruction) == {"left", "right", "middle", "none"}
    assert names(Outcome) == {"hit", "miss", "ignore", "N/A"}
    assert names(EarlyLick) == {"early", "early, presample only", "no early"}
    assert names(WaterPort) == {"left", "right", "middle"} | {f"mtl-{i}" for i in range(1, 10)}
    assert names(ActionEventType) == {"left lick", "right lick", "middle lick"}
    assert set(ActionEventType.objects.values_list("description", flat=True)) == {""}


# --- sessions and trials ------------------------------------------------------------------------


def test_session_number_is_positive_and_unique_per_subject():
    session = SessionFactory(session=1)
    rejected(SessionFactory, subject=session.subject, session=0)
    rejected(
        SessionFactory,
        subject=session.subject,
        session=1,
        start_time=session.start_time + dt.timedelta(days=1),
    )
    second = SessionFactory(subject=session.subject, session=2)
    assert Session.objects.filter(subject=session.subject).count() == 2
    assert second.session == 2


def test_session_start_is_unique_per_subject():
    """The original's UNIQUE(subject, session_date, session_time)."""
    session = SessionFactory(session=1)
    rejected(SessionFactory, subject=session.subject, session=2, start_time=session.start_time)


def test_trial_stop_cannot_precede_start_and_numbers_are_one_based():
    rejected(SessionTrialFactory, trial=1, start_time=10.0, stop_time=9.99)
    rejected(SessionTrialFactory, trial=0)
    trial = SessionTrialFactory(trial=1, start_time=10.0, stop_time=10.0)
    assert trial.stop_time == trial.start_time


def test_trial_number_is_unique_per_session():
    trial = SessionTrialFactory(trial=1)
    rejected(SessionTrialFactory, session=trial.session, trial=1)
    assert SessionTrialFactory(session=trial.session, trial=2).trial == 2
    assert SessionTrial.objects.filter(session=trial.session).count() == 2


def test_trial_event_duration_is_not_negative_and_ids_are_unique():
    event = TrialEventFactory(duration=0.0)
    rejected(TrialEventFactory, duration=-0.001)
    rejected(TrialEventFactory, trial=event.trial, trial_event_id=event.trial_event_id)


def test_session_weight_is_positive():
    session = SessionFactory()
    rejected(SessionDetails.objects.create, session=session, session_weight=Decimal("0"))
    assert (
        SessionDetails.objects.create(session=session, session_weight=None).session_weight is None
    )


# --- photostimulation ---------------------------------------------------------------------------


def test_photostim_protocol_is_unique_per_session_and_duration_positive():
    stim = PhotostimFactory(photo_stim=4)
    rejected(PhotostimFactory, session=stim.session, photo_stim=4)
    rejected(PhotostimFactory, duration=-0.5)
    rejected(PhotostimFactory, duration=0.0)
    assert PhotostimFactory(duration=None).duration is None
    assert Photostim.objects.filter(session=stim.session).count() == 1


@pytest.mark.parametrize(
    "angles",
    [
        {"theta": Decimal("200.00")},
        {"theta": Decimal("-1.00")},
        {"phi": Decimal("400.00")},
        {"phi": Decimal("-0.01")},
    ],
)
def test_photostim_location_angles_are_in_range(angles):
    rejected(PhotostimLocationFactory, **angles)


def test_photostim_location_angle_bounds_are_allowed():
    loc = PhotostimLocationFactory(theta=Decimal("180.00"), phi=Decimal("360.00"))
    assert (loc.theta, loc.phi) == (Decimal("180.00"), Decimal("360.00"))
    loc = PhotostimLocationFactory(theta=Decimal("0.00"), phi=Decimal("0.00"))
    assert (loc.theta, loc.phi) == (Decimal("0.00"), Decimal("0.00"))


def test_photostim_location_is_unique():
    loc = PhotostimLocationFactory()
    rejected(
        PhotostimLocationFactory,
        photostim=loc.photostim,
        skull_reference=loc.skull_reference,
        ap_location=loc.ap_location,
        ml_location=loc.ml_location,
        depth=loc.depth,
        theta=loc.theta,
        phi=loc.phi,
    )


def test_photostim_brain_region_laterality_is_checked():
    stim = PhotostimFactory()
    alm = BrainArea.objects.get(name="ALM")
    rejected(
        PhotostimBrainRegion.objects.create,
        photostim=stim,
        stim_brain_area=alm,
        stim_laterality="up",
    )
    rejected(
        PhotostimBrainRegion.objects.create,
        photostim=stim,
        stim_brain_area=alm,
        stim_laterality="bilat",  # an older schema said "bilateral"; this one says "both"
    )
    region = PhotostimBrainRegion.objects.create(
        photostim=stim, stim_brain_area=alm, stim_laterality="both"
    )
    # One row per protocol.
    rejected(
        PhotostimBrainRegion.objects.create,
        photostim=stim,
        stim_brain_area=alm,
        stim_laterality="left",
    )
    assert region.pk == stim.pk


def test_photostim_event_power_is_not_negative_and_ids_are_unique():
    stim = PhotostimFactory()
    trial = PhotostimTrial.objects.create(
        trial=BehaviorTrialFactory(trial__session=stim.session).trial
    )
    PhotostimEvent.objects.create(
        photostim_trial=trial,
        photostim_event_id=1,
        photostim=stim,
        photostim_event_time=1.0,
        power=5.5,
    )
    rejected(
        PhotostimEvent.objects.create,
        photostim_trial=trial,
        photostim_event_id=2,
        photostim=stim,
        photostim_event_time=1.0,
        power=-1.0,
    )
    rejected(
        PhotostimEvent.objects.create,
        photostim_trial=trial,
        photostim_event_id=1,
        photostim=stim,
        photostim_event_time=2.0,
        power=1.0,
    )
