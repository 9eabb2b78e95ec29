"""factory_boy factories for schema ``experiment`` (shared by every app's tests)."""

import datetime as dt
from decimal import Decimal

import factory

from experiment import models
from lab.models import BrainArea, PhotostimDevice, SkullReference
from lab.tests.factories import PersonFactory, RigFactory, WaterRestrictionFactory, lookup


class SessionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Session

    subject = factory.LazyFunction(lambda: WaterRestrictionFactory().subject)
    session = factory.Sequence(lambda n: n + 1)
    start_time = factory.Sequence(
        lambda n: dt.datetime(2018, 2, 25, 11, 23, 28, tzinfo=dt.UTC) + dt.timedelta(days=n)
    )
    username = factory.SubFactory(PersonFactory)
    rig = factory.SubFactory(RigFactory)


class SessionTrialFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.SessionTrial

    session = factory.SubFactory(SessionFactory)
    trial = factory.Sequence(lambda n: n + 1)
    trial_uid = factory.SelfAttribute("trial")
    start_time = factory.LazyAttribute(lambda o: 10.0 * (o.trial - 1))
    stop_time = factory.LazyAttribute(lambda o: o.start_time + 6.0)


class BehaviorTrialFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.BehaviorTrial

    trial = factory.SubFactory(SessionTrialFactory)
    task_protocol = factory.LazyFunction(
        lambda: models.TaskProtocol.objects.get(task__name="audio delay", protocol=1)
    )
    instruction = factory.LazyFunction(lambda: lookup(models.TrialInstruction, "left"))
    early_lick = factory.LazyFunction(lambda: lookup(models.EarlyLick, "no early"))
    outcome = factory.LazyFunction(lambda: lookup(models.Outcome, "hit"))


class TrialEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.TrialEvent

    trial = factory.SubFactory(BehaviorTrialFactory)
    trial_event_id = factory.Sequence(lambda n: n + 1)
    event_type = factory.LazyFunction(lambda: lookup(models.TrialEventType, "go"))
    trial_event_time = 4.2
    duration = 0.1


class ActionEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.ActionEvent

    trial = factory.SubFactory(BehaviorTrialFactory)
    action_event_id = factory.Sequence(lambda n: n + 1)
    action_type = factory.LazyFunction(lambda: lookup(models.ActionEventType, "left lick"))
    action_event_time = 4.5


class PhotostimFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Photostim

    session = factory.SubFactory(SessionFactory)
    photo_stim = 4
    device = factory.LazyFunction(lambda: lookup(PhotostimDevice, "OBIS470"))
    duration = 0.5


class PhotostimLocationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.PhotostimLocation

    photostim = factory.SubFactory(PhotostimFactory)
    skull_reference = factory.LazyFunction(lambda: lookup(SkullReference, "Bregma"))
    ap_location = Decimal("2500.00")
    ml_location = Decimal("-1500.00")
    depth = Decimal("0.00")
    theta = Decimal("15.00")
    phi = Decimal("15.00")
    brain_area = factory.LazyFunction(lambda: lookup(BrainArea, "ALM"))


class SessionCommentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.SessionComment

    session = factory.SubFactory(SessionFactory)
    comment = factory.Sequence(lambda n: f"comment {n}")


class SessionDetailsFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.SessionDetails

    session = factory.SubFactory(SessionFactory)
    session_weight = Decimal("22.5000")
    session_water_earned = Decimal("0.8000")
    session_water_extra = Decimal("0.2000")


class PhotostimTrialFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.PhotostimTrial

    trial = factory.SubFactory(SessionTrialFactory)


class PhotostimEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.PhotostimEvent

    photostim_trial = factory.SubFactory(PhotostimTrialFactory)
    photostim_event_id = factory.Sequence(lambda n: n + 1)
    # The session's first photostim protocol (created if it has none): (session, photo_stim) is
    # unique, so one per event would collide.
    photostim = factory.LazyAttribute(
        lambda o: (
            models.Photostim.objects.filter(session=o.photostim_trial.trial.session).first()
            or PhotostimFactory(session=o.photostim_trial.trial.session)
        )
    )
    photostim_event_time = 1.2
    power = 1.5


class PhotostimBrainRegionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.PhotostimBrainRegion

    photostim = factory.SubFactory(PhotostimFactory)
    stim_brain_area = factory.LazyFunction(lambda: lookup(BrainArea, "ALM"))
    stim_laterality = models.Laterality.LEFT
