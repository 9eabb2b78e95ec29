"""Serializers of schema ``experiment``: labels by name, sessions by id with their natural key.

A row that belongs to a session carries the session's id (what filters and writes take) and,
read-only beside it, the subject id and the session number, so analysts never need a join to
know which animal and which day a row is from. Trials come with their behavior labels (hit,
left, early lick, …) in one row.
"""

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from experiment import models
from experiment.analysis import queries as behavior_queries
from lab.api.serializers import name_field, water_restriction_number_field
from mapsite.core.api import ConstraintCheckedSerializer, LookupSerializer, ReadOnlyModelSerializer


def subject_of(session_path: str) -> serializers.IntegerField:
    return serializers.IntegerField(
        source=f"{session_path}.subject.subject_id", read_only=True, help_text="Subject id."
    )


def session_number_of(session_path: str) -> serializers.IntegerField:
    return serializers.IntegerField(
        source=f"{session_path}.session",
        read_only=True,
        help_text="Session number within the subject.",
    )


def trial_number_of(trial_path: str) -> serializers.IntegerField:
    return serializers.IntegerField(
        source=f"{trial_path}.trial", read_only=True, help_text="Trial number within the session."
    )


def label(source: str, help_text: str = "") -> serializers.CharField:
    """A read-only lookup name reached through a relation that may be missing (then null)."""
    return serializers.CharField(
        source=source, read_only=True, allow_null=True, help_text=help_text
    )


# --- Lookups -----------------------------------------------------------------------------------


class TaskProtocolSerializer(ReadOnlyModelSerializer):
    task = serializers.SlugRelatedField(slug_field="name", read_only=True)

    class Meta:
        model = models.TaskProtocol
        fields = ["id", "task", "protocol", "description"]


class ProjectSerializer(LookupSerializer):
    class Meta:
        model = models.Project
        fields = ["name", "description", "publication"]


class PeriodSerializer(LookupSerializer):
    start_event_type = serializers.SlugRelatedField(slug_field="name", read_only=True)
    end_event_type = serializers.SlugRelatedField(slug_field="name", read_only=True)

    class Meta:
        model = models.Period
        fields = [
            "name",
            "description",
            "start_event_type",
            "start_time_shift",
            "end_event_type",
            "end_time_shift",
        ]


# --- Sessions ----------------------------------------------------------------------------------


class SessionTaskBriefSerializer(serializers.Serializer):
    task = serializers.CharField(source="task_protocol.task.name", read_only=True)
    protocol = serializers.IntegerField(source="task_protocol.protocol", read_only=True)


class SessionDetailsBriefSerializer(serializers.ModelSerializer):
    class Meta:
        model = models.SessionDetails
        fields = ["session_weight", "session_water_earned", "session_water_extra"]


class BehaviorSummarySerializer(serializers.Serializer):
    """Per-session behavior summary (definitions in ``experiment.analysis.behavior``)."""

    trials = serializers.IntegerField(help_text="All trials, with or without behavior labels.")
    behavior_trials = serializers.IntegerField(help_text="Trials with behavior labels.")
    outcomes = serializers.DictField(
        child=serializers.IntegerField(), help_text="Trials per outcome (hit, miss, ignore, N/A)."
    )
    instructions = serializers.DictField(
        child=serializers.IntegerField(),
        help_text="Trials per instruction (left, right, middle, none).",
    )
    early_lick = serializers.IntegerField(
        help_text="Trials with an early lick (any label but 'no early')."
    )
    early_lick_rate = serializers.FloatField(
        allow_null=True, help_text="early_lick / behavior_trials; null without behavior trials."
    )
    auto_water = serializers.IntegerField()
    free_water = serializers.IntegerField()
    photostim = serializers.IntegerField(help_text="Photostimulation trials.")
    performance_trials = serializers.IntegerField(
        help_text="Hit and miss trials that are not free-water trials (performance's denominator)."
    )
    performance = serializers.FloatField(
        allow_null=True,
        help_text="hits / (hits + misses), free-water trials left out; ignore and N/A trials "
        "do not count. Null when there is no hit or miss.",
    )
    performance_by_instruction = serializers.DictField(
        child=serializers.FloatField(allow_null=True),
        help_text="Performance of the trials of each instruction (null: no hit or miss).",
    )


class SessionSerializer(ReadOnlyModelSerializer):
    subject = serializers.IntegerField(source="subject.subject_id", read_only=True)
    water_restriction_number = water_restriction_number_field("subject")
    username = serializers.SlugRelatedField(slug_field="username", read_only=True)
    rig = serializers.SlugRelatedField(slug_field="name", read_only=True)
    projects = serializers.SlugRelatedField(slug_field="name", many=True, read_only=True)
    tasks = SessionTaskBriefSerializer(many=True, read_only=True)
    training_types = serializers.SerializerMethodField()
    comments = serializers.SlugRelatedField(slug_field="comment", many=True, read_only=True)
    details = SessionDetailsBriefSerializer(read_only=True, allow_null=True)
    behavior_summary = serializers.SerializerMethodField()

    class Meta:
        model = models.Session
        fields = [
            "id",
            "subject",
            "water_restriction_number",
            "session",
            "start_time",
            "username",
            "rig",
            "projects",
            "tasks",
            "training_types",
            "comments",
            "details",
            "behavior_summary",
        ]

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_training_types(self, session: models.Session) -> list[str]:
        return [t.training_type.name for t in session.trainings.all()]

    @extend_schema_field(BehaviorSummarySerializer)
    def get_behavior_summary(self, session: models.Session) -> dict[str, Any]:
        """Trial counts and performance (a list page's counts come from one query)."""
        return BehaviorSummarySerializer(behavior_queries.summary_of(session)).data


class _SessionChildSerializer(ConstraintCheckedSerializer):
    """Manual session-level rows: the session by id; subject and session number shown beside."""

    subject = subject_of("session")
    water_restriction_number = water_restriction_number_field("session.subject")
    session_number = session_number_of("session")

    REF_FIELDS = ["session", "subject", "water_restriction_number", "session_number"]


class SessionCommentSerializer(_SessionChildSerializer):
    class Meta:
        model = models.SessionComment
        fields = ["id", *_SessionChildSerializer.REF_FIELDS, "comment"]


class SessionDetailsSerializer(_SessionChildSerializer):
    session = serializers.PrimaryKeyRelatedField(
        queryset=models.Session.objects.all(), help_text="Session id (also this row's key)."
    )

    class Meta:
        model = models.SessionDetails
        fields = [
            *_SessionChildSerializer.REF_FIELDS,
            "session_weight",
            "session_water_earned",
            "session_water_extra",
        ]

    def validate_session(self, session: models.Session) -> models.Session:
        # The session is the primary key: "changing" it would silently insert a second row.
        if self.instance is not None and session.pk != self.instance.pk:
            raise serializers.ValidationError("The session of existing details cannot change.")
        return session

    def create(self, validated_data: dict[str, Any]) -> models.SessionDetails:
        if models.SessionDetails.objects.filter(pk=validated_data["session"].pk).exists():
            raise serializers.ValidationError({"session": ["This session already has details."]})
        return super().create(validated_data)


class SessionTaskSerializer(_SessionChildSerializer):
    task = serializers.CharField(source="task_protocol.task.name", help_text="Task name.")
    protocol = serializers.IntegerField(
        source="task_protocol.protocol", help_text="Protocol number of the task."
    )

    class Meta:
        model = models.SessionTask
        fields = ["id", *_SessionChildSerializer.REF_FIELDS, "task", "protocol"]

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        given = attrs.pop("task_protocol", None)
        if given is not None:
            current = self.instance.task_protocol if self.instance is not None else None
            task = given.get("task", {}).get("name") or (current and current.task.name)
            protocol = given.get("protocol", current.protocol if current else None)
            if not task or protocol is None:
                raise serializers.ValidationError("Give both task and protocol.")
            found = models.TaskProtocol.objects.filter(task__name=task, protocol=protocol).first()
            if found is None:
                raise serializers.ValidationError(
                    {"protocol": [f"Task {task!r} has no protocol {protocol}."]}
                )
            attrs["task_protocol"] = found
        return super().validate(attrs)


class SessionTrainingSerializer(_SessionChildSerializer):
    training_type = name_field(models.TrainingType)

    class Meta:
        model = models.SessionTraining
        fields = ["id", *_SessionChildSerializer.REF_FIELDS, "training_type"]


class ProjectSessionSerializer(_SessionChildSerializer):
    project = name_field(models.Project)

    class Meta:
        model = models.ProjectSession
        fields = ["id", "project", *_SessionChildSerializer.REF_FIELDS]


class BehaviorFileSerializer(ReadOnlyModelSerializer):
    rig = serializers.SlugRelatedField(slug_field="name", read_only=True, allow_null=True)

    class Meta:
        model = models.BehaviorFile
        fields = [
            "id",
            "rig",
            "root",
            "relative_path",
            "file_name",
            "size",
            "mtime",
            "sha256",
            "session",
            "ingested_at",
            "changed_after_ingest",
            "change_note",
        ]


# --- Trials ------------------------------------------------------------------------------------


class TrialSerializer(ReadOnlyModelSerializer):
    """A trial with its behavior labels (null for a trial without behavior data)."""

    subject = subject_of("session")
    session_number = session_number_of("session")
    task = label("behavior.task_protocol.task.name")
    protocol = serializers.IntegerField(
        source="behavior.task_protocol.protocol", read_only=True, allow_null=True
    )
    instruction = label("behavior.instruction.name", "left / right / middle / none")
    early_lick = label("behavior.early_lick.name")
    outcome = label("behavior.outcome.name", "hit / miss / ignore / N/A")
    auto_water = serializers.BooleanField(
        source="behavior.auto_water", read_only=True, allow_null=True
    )
    free_water = serializers.BooleanField(
        source="behavior.free_water", read_only=True, allow_null=True
    )
    water_port = label(
        "behavior.water_port_choice.water_port.name", "Port the animal chose; null: no choice."
    )
    photostim = serializers.SerializerMethodField()

    class Meta:
        model = models.SessionTrial
        fields = [
            "id",
            "session",
            "subject",
            "session_number",
            "trial",
            "trial_uid",
            "start_time",
            "stop_time",
            "task",
            "protocol",
            "instruction",
            "early_lick",
            "outcome",
            "auto_water",
            "free_water",
            "water_port",
            "photostim",
        ]

    @extend_schema_field(OpenApiTypes.BOOL)
    def get_photostim(self, trial: models.SessionTrial) -> bool:
        """Whether the trial was a photostimulation trial."""
        return hasattr(trial, "photostim_trial")


class TrialNoteSerializer(ReadOnlyModelSerializer):
    session = serializers.IntegerField(source="trial.session_id", read_only=True)
    subject = subject_of("trial.session")
    session_number = session_number_of("trial.session")
    trial_number = trial_number_of("trial")
    note_type = serializers.SlugRelatedField(slug_field="name", read_only=True)

    class Meta:
        model = models.TrialNote
        fields = [
            "id",
            "trial",
            "session",
            "subject",
            "session_number",
            "trial_number",
            "note_type",
            "note",
        ]


class _EventSerializer(ReadOnlyModelSerializer):
    """Events hang off the behavior trial, whose id is the trial's id."""

    session = serializers.IntegerField(source="trial.trial.session_id", read_only=True)
    subject = subject_of("trial.trial.session")
    session_number = session_number_of("trial.trial.session")
    trial_number = trial_number_of("trial.trial")

    REF_FIELDS = ["trial", "session", "subject", "session_number", "trial_number"]


class TrialEventSerializer(_EventSerializer):
    event_type = serializers.SlugRelatedField(slug_field="name", read_only=True)

    class Meta:
        model = models.TrialEvent
        fields = [
            "id",
            *_EventSerializer.REF_FIELDS,
            "trial_event_id",
            "event_type",
            "trial_event_time",
            "duration",
        ]


class ActionEventSerializer(_EventSerializer):
    action_type = serializers.SlugRelatedField(slug_field="name", read_only=True)

    class Meta:
        model = models.ActionEvent
        fields = [
            "id",
            *_EventSerializer.REF_FIELDS,
            "action_event_id",
            "action_type",
            "action_event_time",
        ]


# --- Multi-target licking ----------------------------------------------------------------------


class MtlBlockWaterPortSerializer(serializers.ModelSerializer):
    water_port = serializers.SlugRelatedField(slug_field="name", read_only=True)

    class Meta:
        model = models.MultiTargetLickingBlockWaterPort
        fields = ["water_port", "position_x", "position_y", "position_z"]


class MtlBlockSerializer(ReadOnlyModelSerializer):
    subject = subject_of("session")
    water_restriction_number = water_restriction_number_field("session.subject")
    session_number = session_number_of("session")
    water_port = MtlBlockWaterPortSerializer(read_only=True, allow_null=True)

    class Meta:
        model = models.MultiTargetLickingBlock
        fields = [
            "id",
            "session",
            "subject",
            "water_restriction_number",
            "session_number",
            "block",
            "block_start_time",
            "trial_count",
            "num_licks_for_reward",
            "roll_deg",
            "position_x_bins",
            "position_y_bins",
            "position_z_bins",
            "water_port",
        ]


class MtlBlockTrialSerializer(ReadOnlyModelSerializer):
    session = serializers.IntegerField(source="block.session_id", read_only=True)
    subject = subject_of("block.session")
    session_number = session_number_of("block.session")
    block_number = serializers.IntegerField(source="block.block", read_only=True)
    trial_number = trial_number_of("trial.trial")

    class Meta:
        model = models.MultiTargetLickingBlockTrial
        fields = [
            "id",
            "block",
            "block_number",
            "trial",
            "session",
            "subject",
            "session_number",
            "trial_number",
            "block_trial_number",
        ]


# --- Photostimulation --------------------------------------------------------------------------


class PhotostimLocationSerializer(serializers.ModelSerializer):
    skull_reference = serializers.SlugRelatedField(slug_field="name", read_only=True)
    brain_area = serializers.SlugRelatedField(slug_field="name", read_only=True)

    class Meta:
        model = models.PhotostimLocation
        fields = [
            "skull_reference",
            "ap_location",
            "ml_location",
            "depth",
            "theta",
            "phi",
            "brain_area",
        ]


class PhotostimBrainRegionSerializer(serializers.ModelSerializer):
    stim_brain_area = serializers.SlugRelatedField(slug_field="name", read_only=True)

    class Meta:
        model = models.PhotostimBrainRegion
        fields = ["stim_brain_area", "stim_laterality"]


class PhotostimSerializer(ReadOnlyModelSerializer):
    """A photostimulation protocol of a session; the waveform (binary) is not served."""

    subject = subject_of("session")
    water_restriction_number = water_restriction_number_field("session.subject")
    session_number = session_number_of("session")
    device = serializers.SlugRelatedField(slug_field="name", read_only=True)
    locations = PhotostimLocationSerializer(many=True, read_only=True)
    brain_region = PhotostimBrainRegionSerializer(
        read_only=True, allow_null=True, help_text="Computed; null until the pipeline made it."
    )

    class Meta:
        model = models.Photostim
        fields = [
            "id",
            "session",
            "subject",
            "water_restriction_number",
            "session_number",
            "photo_stim",
            "device",
            "duration",
            "locations",
            "brain_region",
        ]


class PhotostimEventBriefSerializer(serializers.ModelSerializer):
    photo_stim = serializers.IntegerField(source="photostim.photo_stim", read_only=True)

    class Meta:
        model = models.PhotostimEvent
        fields = ["photostim_event_id", "photo_stim", "photostim_event_time", "power"]


class PhotostimTrialSerializer(ReadOnlyModelSerializer):
    session = serializers.IntegerField(source="trial.session_id", read_only=True)
    subject = subject_of("trial.session")
    session_number = session_number_of("trial.session")
    trial_number = trial_number_of("trial")
    events = PhotostimEventBriefSerializer(many=True, read_only=True)

    class Meta:
        model = models.PhotostimTrial
        fields = ["trial", "session", "subject", "session_number", "trial_number", "events"]


class PhotostimEventSerializer(ReadOnlyModelSerializer):
    trial = serializers.IntegerField(source="photostim_trial_id", read_only=True)
    session = serializers.IntegerField(source="photostim_trial.trial.session_id", read_only=True)
    subject = subject_of("photostim_trial.trial.session")
    session_number = session_number_of("photostim_trial.trial.session")
    trial_number = trial_number_of("photostim_trial.trial")
    photo_stim = serializers.IntegerField(
        source="photostim.photo_stim", read_only=True, help_text="Protocol number."
    )

    class Meta:
        model = models.PhotostimEvent
        fields = [
            "id",
            "trial",
            "session",
            "subject",
            "session_number",
            "trial_number",
            "photostim_event_id",
            "photostim",
            "photo_stim",
            "photostim_event_time",
            "power",
        ]
