"""Whitelisted filters of schema ``experiment`` (no free-form ORM lookups reach the database).

Dates are calendar days in the lab's time zone (``TIME_ZONE``): a session started at 01:00 UTC
on 1 March belongs to 28 February in New York, which is what the lab calls its date.
"""

from django_filters import rest_framework as filters

from experiment import models
from lab import models as lab_models
from lab.api.filters import person_filter
from mapsite.core.api import IdFilter, NameChoiceFilter, NameMultipleChoiceFilter


def session_filter(path: str) -> IdFilter:
    return IdFilter(field_name=path, help_text="Session id.")


def subject_filter(session_path: str) -> IdFilter:
    return IdFilter(field_name=f"{session_path}__subject__subject_id", help_text="Subject id.")


def wr_filter(session_path: str) -> filters.CharFilter:
    return filters.CharFilter(
        field_name=f"{session_path}__subject__water_restriction__water_restriction_number",
        help_text="Water-restriction number of the subject (e.g. dl7).",
    )


class TaskProtocolFilter(filters.FilterSet):
    task = NameChoiceFilter(queryset=models.Task.objects.all())

    class Meta:
        model = models.TaskProtocol
        fields = ["task", "protocol"]


class SessionFilter(filters.FilterSet):
    subject = IdFilter(field_name="subject__subject_id", help_text="Subject id.")
    water_restriction_number = filters.CharFilter(
        field_name="subject__water_restriction__water_restriction_number",
        help_text="Water-restriction number of the subject (e.g. dl7).",
    )
    session = IdFilter(field_name="session", help_text="Session number within the subject.")
    date_after = filters.DateFilter(
        field_name="start_time",
        lookup_expr="date__gte",
        help_text="Sessions on or after this date (lab time zone).",
    )
    date_before = filters.DateFilter(
        field_name="start_time",
        lookup_expr="date__lte",
        help_text="Sessions on or before this date (lab time zone).",
    )
    rig = NameChoiceFilter(queryset=lab_models.Rig.objects.all())
    username = person_filter("username")
    task = NameChoiceFilter(
        field_name="tasks__task_protocol__task",
        queryset=models.Task.objects.all(),
        distinct=True,
        help_text="Task name (e.g. audio delay).",
    )
    project = NameChoiceFilter(
        field_name="projects", queryset=models.Project.objects.all(), distinct=True
    )
    training_type = NameChoiceFilter(
        field_name="trainings__training_type",
        queryset=models.TrainingType.objects.all(),
        distinct=True,
    )

    class Meta:
        model = models.Session
        fields = [
            "subject",
            "water_restriction_number",
            "session",
            "date_after",
            "date_before",
            "rig",
            "username",
            "task",
            "project",
            "training_type",
        ]


class _SessionChildFilter(filters.FilterSet):
    session = session_filter("session")
    subject = subject_filter("session")
    water_restriction_number = wr_filter("session")

    FIELDS = ["session", "subject", "water_restriction_number"]


class SessionCommentFilter(_SessionChildFilter):
    class Meta:
        model = models.SessionComment
        fields = _SessionChildFilter.FIELDS


class SessionDetailsFilter(_SessionChildFilter):
    class Meta:
        model = models.SessionDetails
        fields = _SessionChildFilter.FIELDS


class SessionTaskFilter(_SessionChildFilter):
    task = NameChoiceFilter(field_name="task_protocol__task", queryset=models.Task.objects.all())

    class Meta:
        model = models.SessionTask
        fields = [*_SessionChildFilter.FIELDS, "task"]


class SessionTrainingFilter(_SessionChildFilter):
    training_type = NameChoiceFilter(queryset=models.TrainingType.objects.all())

    class Meta:
        model = models.SessionTraining
        fields = [*_SessionChildFilter.FIELDS, "training_type"]


class ProjectSessionFilter(_SessionChildFilter):
    project = NameChoiceFilter(queryset=models.Project.objects.all())

    class Meta:
        model = models.ProjectSession
        fields = [*_SessionChildFilter.FIELDS, "project"]


class BehaviorFileFilter(filters.FilterSet):
    session = session_filter("session")
    rig = NameChoiceFilter(queryset=lab_models.Rig.objects.all())
    ingested = filters.BooleanFilter(
        field_name="ingested_at", lookup_expr="isnull", exclude=True, help_text="Ingested yet?"
    )
    changed = filters.BooleanFilter(
        field_name="changed_after_ingest",
        lookup_expr="isnull",
        exclude=True,
        help_text="Contents changed after the ingest (needs a person)?",
    )

    class Meta:
        model = models.BehaviorFile
        fields = ["session", "rig", "file_name", "ingested", "changed"]


class TrialFilter(filters.FilterSet):
    session = session_filter("session")
    subject = subject_filter("session")
    water_restriction_number = wr_filter("session")
    trial = IdFilter(field_name="trial", help_text="Trial number within the session.")
    task = NameChoiceFilter(
        field_name="behavior__task_protocol__task", queryset=models.Task.objects.all()
    )
    outcome = NameMultipleChoiceFilter(
        field_name="behavior__outcome",
        queryset=models.Outcome.objects.all(),
        help_text="Outcome name; repeat for several (hit, miss, ignore, N/A).",
    )
    instruction = NameMultipleChoiceFilter(
        field_name="behavior__instruction",
        queryset=models.TrialInstruction.objects.all(),
        help_text="Instruction name; repeat for several (left, right, middle, none).",
    )
    early_lick = NameMultipleChoiceFilter(
        field_name="behavior__early_lick",
        queryset=models.EarlyLick.objects.all(),
        help_text="Early-lick label; repeat for several (early, no early, …).",
    )
    auto_water = filters.BooleanFilter(field_name="behavior__auto_water")
    free_water = filters.BooleanFilter(field_name="behavior__free_water")
    photostim = filters.BooleanFilter(
        field_name="photostim_trial",
        lookup_expr="isnull",
        exclude=True,
        help_text="true: photostimulation trials only; false: trials without photostimulation.",
    )

    class Meta:
        model = models.SessionTrial
        fields = [
            "session",
            "subject",
            "water_restriction_number",
            "trial",
            "task",
            "outcome",
            "instruction",
            "early_lick",
            "auto_water",
            "free_water",
            "photostim",
        ]


class TrialNoteFilter(filters.FilterSet):
    session = session_filter("trial__session")
    subject = subject_filter("trial__session")
    trial = IdFilter(field_name="trial", help_text="Trial id.")
    note_type = NameMultipleChoiceFilter(queryset=models.TrialNoteType.objects.all())

    class Meta:
        model = models.TrialNote
        fields = ["session", "subject", "trial", "note_type"]


class _EventFilter(filters.FilterSet):
    session = session_filter("trial__trial__session")
    subject = subject_filter("trial__trial__session")
    trial = IdFilter(field_name="trial", help_text="Trial id.")
    trial_number = IdFilter(field_name="trial__trial__trial", help_text="Trial number.")

    FIELDS = ["session", "subject", "trial", "trial_number"]


class TrialEventFilter(_EventFilter):
    event_type = NameMultipleChoiceFilter(
        queryset=models.TrialEventType.objects.all(),
        help_text="Event type name; repeat for several (go, sample, delay, …).",
    )

    class Meta:
        model = models.TrialEvent
        fields = [*_EventFilter.FIELDS, "event_type"]


class ActionEventFilter(_EventFilter):
    action_type = NameMultipleChoiceFilter(
        queryset=models.ActionEventType.objects.all(),
        help_text="Action type name; repeat for several (left lick, right lick, middle lick).",
    )

    class Meta:
        model = models.ActionEvent
        fields = [*_EventFilter.FIELDS, "action_type"]


class MtlBlockFilter(filters.FilterSet):
    session = session_filter("session")
    subject = subject_filter("session")

    class Meta:
        model = models.MultiTargetLickingBlock
        fields = ["session", "subject", "block"]


class MtlBlockTrialFilter(filters.FilterSet):
    block = IdFilter(field_name="block", help_text="Block id.")
    session = session_filter("block__session")
    subject = subject_filter("block__session")

    class Meta:
        model = models.MultiTargetLickingBlockTrial
        fields = ["block", "session", "subject"]


class PhotostimFilter(filters.FilterSet):
    session = session_filter("session")
    subject = subject_filter("session")
    water_restriction_number = wr_filter("session")
    device = NameChoiceFilter(queryset=lab_models.PhotostimDevice.objects.all())
    brain_area = NameChoiceFilter(
        field_name="brain_region__stim_brain_area",
        queryset=lab_models.BrainArea.objects.all(),
        help_text="Stimulated brain area (computed).",
    )
    laterality = filters.ChoiceFilter(
        field_name="brain_region__stim_laterality", choices=models.Laterality.choices
    )

    class Meta:
        model = models.Photostim
        fields = [
            "session",
            "subject",
            "water_restriction_number",
            "photo_stim",
            "device",
            "brain_area",
            "laterality",
        ]


class PhotostimTrialFilter(filters.FilterSet):
    session = session_filter("trial__session")
    subject = subject_filter("trial__session")

    class Meta:
        model = models.PhotostimTrial
        fields = ["session", "subject"]


class PhotostimEventFilter(filters.FilterSet):
    session = session_filter("photostim_trial__trial__session")
    subject = subject_filter("photostim_trial__trial__session")
    trial = IdFilter(field_name="photostim_trial", help_text="Trial id.")
    photo_stim = IdFilter(field_name="photostim__photo_stim", help_text="Protocol number.")

    class Meta:
        model = models.PhotostimEvent
        fields = ["session", "subject", "trial", "photo_stim"]
