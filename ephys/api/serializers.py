"""Serializers of schema ``ephys``: insertions, units, metrics, manual insertion tables.

A row under a probe insertion carries the insertion's id (what filters and writes take) and,
read-only beside it, the session id, subject id and probe number; a row under a unit carries
the unit id with its insertion and cluster id. Lookups (qualities, methods, brain areas) are
names. Arrays (spike times, waveforms) are never inside these rows: they are served as
``.npy``/``.npz`` or JSON by the ``spike-times``/``raster`` endpoints (see ``views``).
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from ephys import models
from ephys.ingest.phy import CLUSTER_METRIC_COLUMNS, WAVEFORM_METRIC_COLUMNS
from experiment.models import SessionTrial
from lab import models as lab_models
from lab.api.serializers import name_field, water_restriction_number_field
from mapsite.core.api import ConstraintCheckedSerializer, LookupSerializer, ReadOnlyModelSerializer

# --- Shared reference fields -------------------------------------------------------------------


class InsertionRefs(serializers.Serializer):
    """Session, subject and probe number of the row's insertion (read-only, beside its id)."""

    session = serializers.IntegerField(
        source="insertion.session_id", read_only=True, help_text="Session id."
    )
    subject = serializers.IntegerField(
        source="insertion.session.subject.subject_id", read_only=True, help_text="Subject id."
    )
    insertion_number = serializers.IntegerField(
        source="insertion.insertion_number", read_only=True, help_text="Probe number (1-based)."
    )


class QualityInsertionRefs(serializers.Serializer):
    """InsertionRefs of rows under an insertion's quality (good periods and trials)."""

    session = serializers.IntegerField(
        source="quality.insertion.session_id", read_only=True, help_text="Session id."
    )
    subject = serializers.IntegerField(
        source="quality.insertion.session.subject.subject_id",
        read_only=True,
        help_text="Subject id.",
    )
    insertion_number = serializers.IntegerField(
        source="quality.insertion.insertion_number",
        read_only=True,
        help_text="Probe number (1-based).",
    )


INSERTION_REFS = ["session", "subject", "insertion_number"]


class UnitRefs(serializers.Serializer):
    """Insertion id and cluster id of the row's unit (read-only, beside the unit id)."""

    insertion = serializers.IntegerField(
        source="unit.insertion_id", read_only=True, help_text="Probe insertion id."
    )
    unit_number = serializers.IntegerField(
        source="unit.unit", read_only=True, help_text="Cluster id of the sorter."
    )


UNIT_REFS = ["insertion", "unit_number"]


class OneToOneKeyMixin:
    """Rows whose primary key is their parent (one location, note or quality per insertion).

    The parent is written on create only: "changing" it would silently insert a second row.
    """

    key_field = "insertion"

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        key = attrs.get(self.key_field)
        instance = self.instance  # type: ignore[attr-defined]
        model = self.Meta.model  # type: ignore[attr-defined]
        if instance is not None and key is not None and key.pk != instance.pk:
            raise serializers.ValidationError(
                {self.key_field: [f"The {self.key_field} of an existing row cannot change."]}
            )
        if instance is None and key is not None and model.objects.filter(pk=key.pk).exists():
            raise serializers.ValidationError(
                {self.key_field: [f"This {self.key_field} already has one."]}
            )
        return super().validate(attrs)  # type: ignore[misc]


def insertion_key_field() -> serializers.PrimaryKeyRelatedField:
    return serializers.PrimaryKeyRelatedField(
        queryset=models.ProbeInsertion.objects.all(),
        help_text="Probe insertion id (also this row's key).",
    )


# --- Lookups -----------------------------------------------------------------------------------


class UnitQualityTypeSerializer(LookupSerializer):
    class Meta:
        model = models.UnitQualityType
        fields = ["name", "description"]


# --- Manual tables under an insertion ----------------------------------------------------------


class InsertionLocationSerializer(OneToOneKeyMixin, InsertionRefs, ConstraintCheckedSerializer):
    insertion = insertion_key_field()
    skull_reference = name_field(lab_models.SkullReference)
    hemisphere = serializers.CharField(
        read_only=True, help_text="right for ML > 0, left otherwise (derived)."
    )

    class Meta:
        model = models.InsertionLocation
        fields = [
            "insertion",
            *INSERTION_REFS,
            "skull_reference",
            "ap_location",
            "ml_location",
            "depth",
            "theta",
            "phi",
            "beta",
            "hemisphere",
        ]


class InsertionNoteSerializer(OneToOneKeyMixin, InsertionRefs, ConstraintCheckedSerializer):
    insertion = insertion_key_field()

    class Meta:
        model = models.InsertionNote
        fields = ["insertion", *INSERTION_REFS, "note"]


class RecordableBrainRegionSerializer(InsertionRefs, ConstraintCheckedSerializer):
    brain_area = name_field(lab_models.BrainArea)
    hemisphere = name_field(lab_models.Hemisphere)

    class Meta:
        model = models.RecordableBrainRegion
        fields = ["id", "insertion", *INSERTION_REFS, "brain_area", "hemisphere"]


class BrainAreaDepthCriteriaSerializer(InsertionRefs, ConstraintCheckedSerializer):
    brain_area = name_field(lab_models.BrainArea)

    class Meta:
        model = models.BrainAreaDepthCriteria
        fields = ["id", "insertion", *INSERTION_REFS, "brain_area", "depth_upper", "depth_lower"]


class GoodPeriodBriefSerializer(serializers.ModelSerializer):
    class Meta:
        model = models.GoodPeriod
        fields = ["id", "start", "end"]


class ProbeInsertionQualitySerializer(OneToOneKeyMixin, InsertionRefs, ConstraintCheckedSerializer):
    insertion = insertion_key_field()
    good_periods = GoodPeriodBriefSerializer(
        many=True, read_only=True, help_text="Edit through /api/insertion-good-periods/."
    )
    good_trials = serializers.SerializerMethodField(
        help_text="Trial numbers; edit through /api/insertion-good-trials/."
    )

    class Meta:
        model = models.ProbeInsertionQuality
        fields = [
            "insertion",
            *INSERTION_REFS,
            "drift_presence",
            "number_of_landmarks",
            "alignment_confidence",
            "comment",
            "good_periods",
            "good_trials",
        ]

    @extend_schema_field(serializers.ListField(child=serializers.IntegerField()))
    def get_good_trials(self, quality: models.ProbeInsertionQuality) -> list[int]:
        return sorted(g.trial.trial for g in quality.good_trials.all())


def quality_key_field() -> serializers.PrimaryKeyRelatedField:
    return serializers.PrimaryKeyRelatedField(
        source="quality",
        queryset=models.ProbeInsertionQuality.objects.all(),
        help_text="Probe insertion id (its quality row must exist: /api/insertion-qualities/).",
    )


class GoodPeriodSerializer(QualityInsertionRefs, ConstraintCheckedSerializer):
    insertion = quality_key_field()

    class Meta:
        model = models.GoodPeriod
        fields = ["id", "insertion", *INSERTION_REFS, "start", "end"]


class GoodTrialSerializer(QualityInsertionRefs, ConstraintCheckedSerializer):
    insertion = quality_key_field()
    trial = serializers.IntegerField(
        source="trial.trial", help_text="Trial number within the insertion's session."
    )
    trial_id = serializers.IntegerField(source="trial.id", read_only=True)

    class Meta:
        model = models.GoodTrial
        fields = ["id", "insertion", *INSERTION_REFS, "trial", "trial_id"]
        validators: list = []  # (quality, trial) is checked in validate(), by trial number

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        quality = attrs.get("quality") or (self.instance.quality if self.instance else None)
        given = attrs.pop("trial", None)
        number = given["trial"] if given else (self.instance.trial.trial if self.instance else None)
        if quality is None or number is None:
            raise serializers.ValidationError("Give the insertion and the trial number.")
        trial = SessionTrial.objects.filter(
            session_id=quality.insertion.session_id, trial=number
        ).first()
        if trial is None:
            raise serializers.ValidationError(
                {"trial": [f"The insertion's session has no trial {number}."]}
            )
        duplicate = models.GoodTrial.objects.filter(quality=quality, trial=trial)
        if self.instance is not None:
            duplicate = duplicate.exclude(pk=self.instance.pk)
        if duplicate.exists():
            raise serializers.ValidationError({"trial": ["Already a good trial."]})
        attrs["trial"] = trial
        return super().validate(attrs)


# --- Probe insertions (ingested) ---------------------------------------------------------------


class InsertionLocationBriefSerializer(serializers.ModelSerializer):
    skull_reference = serializers.SlugRelatedField(slug_field="name", read_only=True)

    class Meta:
        model = models.InsertionLocation
        fields = ["skull_reference", "ap_location", "ml_location", "depth", "theta", "phi", "beta"]


class RecordableRegionBriefSerializer(serializers.ModelSerializer):
    brain_area = serializers.SlugRelatedField(slug_field="name", read_only=True)
    hemisphere = serializers.SlugRelatedField(slug_field="name", read_only=True)

    class Meta:
        model = models.RecordableBrainRegion
        fields = ["brain_area", "hemisphere"]


class DepthCriteriaBriefSerializer(serializers.ModelSerializer):
    brain_area = serializers.SlugRelatedField(slug_field="name", read_only=True)

    class Meta:
        model = models.BrainAreaDepthCriteria
        fields = ["brain_area", "depth_upper", "depth_lower"]


class QualityBriefSerializer(serializers.ModelSerializer):
    good_periods = GoodPeriodBriefSerializer(many=True, read_only=True)

    class Meta:
        model = models.ProbeInsertionQuality
        fields = [
            "drift_presence",
            "number_of_landmarks",
            "alignment_confidence",
            "comment",
            "good_periods",
        ]


class ClusteringLabelBriefSerializer(serializers.ModelSerializer):
    clustering_method = serializers.SlugRelatedField(slug_field="name", read_only=True)

    class Meta:
        model = models.ClusteringLabel
        fields = [
            "clustering_method",
            "clustering_time",
            "quality_control",
            "manual_curation",
            "clustering_note",
        ]


class ProbeInsertionSerializer(ReadOnlyModelSerializer):
    """An insertion with what people entered about it (location, regions, quality, note)."""

    subject = serializers.IntegerField(source="session.subject.subject_id", read_only=True)
    water_restriction_number = water_restriction_number_field("session.subject")
    session_number = serializers.IntegerField(
        source="session.session", read_only=True, help_text="Session number within the subject."
    )
    probe = serializers.SlugRelatedField(slug_field="serial", read_only=True)
    probe_type = serializers.CharField(source="probe.probe_type.name", read_only=True)
    electrode_config = serializers.CharField(
        source="electrode_config.name", read_only=True, help_text="e.g. 1-384"
    )
    electrode_config_hash = serializers.CharField(
        source="electrode_config.config_hash", read_only=True
    )
    location = InsertionLocationBriefSerializer(read_only=True, allow_null=True)
    recordable_regions = RecordableRegionBriefSerializer(many=True, read_only=True)
    depth_criteria = DepthCriteriaBriefSerializer(many=True, read_only=True)
    quality = QualityBriefSerializer(read_only=True, allow_null=True)
    note = serializers.CharField(source="note.note", read_only=True, allow_null=True)
    clustering_labels = ClusteringLabelBriefSerializer(many=True, read_only=True)
    unit_count = serializers.IntegerField(read_only=True, help_text="Units of every clustering.")

    class Meta:
        model = models.ProbeInsertion
        fields = [
            "id",
            "session",
            "subject",
            "water_restriction_number",
            "session_number",
            "insertion_number",
            "probe",
            "probe_type",
            "electrode_config",
            "electrode_config_hash",
            "sampling_rate",
            "unit_count",
            "location",
            "recordable_regions",
            "depth_criteria",
            "quality",
            "note",
            "clustering_labels",
        ]


class InsertionTrialAlignmentSerializer(ReadOnlyModelSerializer):
    trial_number = serializers.IntegerField(source="trial.trial", read_only=True)

    class Meta:
        model = models.InsertionTrialAlignment
        fields = [
            "id",
            "insertion",
            "trial",
            "trial_number",
            "ephys_trial",
            "start_time",
            "go_cue_time",
        ]


class ClusteringLabelSerializer(InsertionRefs, ReadOnlyModelSerializer):
    clustering_method = serializers.SlugRelatedField(slug_field="name", read_only=True)

    class Meta:
        model = models.ClusteringLabel
        fields = [
            "id",
            "insertion",
            *INSERTION_REFS,
            "clustering_method",
            "clustering_time",
            "quality_control",
            "manual_curation",
            "clustering_note",
            "source_path",
        ]


# --- Units (ingested) --------------------------------------------------------------------------

# The metrics.csv columns the ingest reads are exactly these models' fields.
CLUSTER_METRIC_FIELDS = list(CLUSTER_METRIC_COLUMNS)
WAVEFORM_METRIC_FIELDS = list(WAVEFORM_METRIC_COLUMNS)


class ClusterMetricBriefSerializer(serializers.ModelSerializer):
    class Meta:
        model = models.ClusterMetric
        fields = ["epoch_name_quality_metrics", *CLUSTER_METRIC_FIELDS]


class UnitSerializer(ReadOnlyModelSerializer):
    """A unit with its position, amplitude and QC metrics (its arrays are served apart)."""

    session = serializers.IntegerField(source="insertion.session_id", read_only=True)
    subject = serializers.IntegerField(
        source="insertion.session.subject.subject_id", read_only=True
    )
    insertion_number = serializers.IntegerField(source="insertion.insertion_number", read_only=True)
    clustering_method = serializers.SlugRelatedField(slug_field="name", read_only=True)
    quality = serializers.SlugRelatedField(slug_field="name", read_only=True)
    electrode = serializers.IntegerField(
        source="electrode.electrode.electrode",
        read_only=True,
        help_text="Probe electrode (site) of the peak amplitude, 1-based.",
    )
    shank = serializers.IntegerField(source="electrode.electrode.shank", read_only=True)
    electrode_group = serializers.IntegerField(source="electrode.electrode_group", read_only=True)
    avg_firing_rate = serializers.FloatField(
        source="stat.avg_firing_rate", read_only=True, allow_null=True, help_text="Hz (UnitStat)"
    )
    isi_violation = serializers.FloatField(
        source="stat.isi_violation", read_only=True, allow_null=True, help_text="UnitStat"
    )
    noise = serializers.CharField(
        source="noise_label.noise", read_only=True, allow_null=True, help_text="good / noise"
    )
    cluster_metrics = ClusterMetricBriefSerializer(many=True, read_only=True)

    class Meta:
        model = models.Unit
        fields = [
            "id",
            "insertion",
            "session",
            "subject",
            "insertion_number",
            "clustering_method",
            "unit",
            "unit_uid",
            "quality",
            "electrode",
            "shank",
            "electrode_group",
            "unit_posx",
            "unit_posy",
            "unit_amp",
            "unit_snr",
            "spike_count",
            "avg_firing_rate",
            "isi_violation",
            "noise",
            "cluster_metrics",
        ]


class UnitStatSerializer(UnitRefs, ReadOnlyModelSerializer):
    class Meta:
        model = models.UnitStat
        fields = ["unit", *UNIT_REFS, "isi_violation", "avg_firing_rate"]


class ClusterMetricSerializer(UnitRefs, ReadOnlyModelSerializer):
    class Meta:
        model = models.ClusterMetric
        fields = ["id", "unit", *UNIT_REFS, "epoch_name_quality_metrics", *CLUSTER_METRIC_FIELDS]


class WaveformMetricSerializer(UnitRefs, ReadOnlyModelSerializer):
    class Meta:
        model = models.WaveformMetric
        fields = [
            "id",
            "unit",
            *UNIT_REFS,
            "epoch_name_waveform_metrics",
            *WAVEFORM_METRIC_FIELDS,
        ]


class UnitNoteSerializer(UnitRefs, ReadOnlyModelSerializer):
    quality = serializers.SlugRelatedField(slug_field="name", read_only=True)

    class Meta:
        model = models.UnitNote
        fields = ["id", "unit", *UNIT_REFS, "note_source", "quality"]


class UnitNoiseLabelSerializer(UnitRefs, ReadOnlyModelSerializer):
    class Meta:
        model = models.UnitNoiseLabel
        fields = ["unit", *UNIT_REFS, "noise"]


class UnitCommentSerializer(UnitRefs, ConstraintCheckedSerializer):
    class Meta:
        model = models.UnitComment
        fields = ["id", "unit", *UNIT_REFS, "comment"]


# --- Archive -----------------------------------------------------------------------------------


class ArchivedClusteringSerializer(InsertionRefs, ReadOnlyModelSerializer):
    clustering_method = serializers.SlugRelatedField(slug_field="name", read_only=True)
    unit_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = models.ArchivedClustering
        fields = [
            "id",
            "insertion",
            *INSERTION_REFS,
            "clustering_method",
            "clustering_time",
            "archival_time",
            "quality_control",
            "manual_curation",
            "clustering_note",
            "source_path",
            "unit_count",
        ]


class ArchivedUnitSerializer(ReadOnlyModelSerializer):
    """A unit of a replaced clustering, without its arrays."""

    insertion = serializers.IntegerField(source="clustering.insertion_id", read_only=True)
    quality = serializers.SlugRelatedField(slug_field="name", read_only=True)
    cell_type = serializers.SlugRelatedField(slug_field="name", read_only=True, allow_null=True)
    electrode = serializers.IntegerField(source="electrode.electrode.electrode", read_only=True)
    metrics = serializers.JSONField(
        read_only=True, help_text="UnitStat, ClusterMetric and WaveformMetric rows, as they were."
    )

    class Meta:
        model = models.ArchivedUnit
        fields = [
            "id",
            "clustering",
            "insertion",
            "unit",
            "quality",
            "cell_type",
            "electrode",
            "unit_posx",
            "unit_posy",
            "unit_amp",
            "unit_snr",
            "metrics",
        ]


# --- Ingest bookkeeping ------------------------------------------------------------------------


class EphysRecordingSerializer(ReadOnlyModelSerializer):
    class Meta:
        model = models.EphysRecording
        fields = [
            "id",
            "root",
            "relative_path",
            "h2o",
            "layout",
            "probe_glob",
            "folder_date",
            "recording_time",
            "session",
            "created_at",
            "updated_at",
        ]


class SortedOutputSerializer(ReadOnlyModelSerializer):
    class Meta:
        model = models.SortedOutput
        fields = [
            "id",
            "recording",
            "version",
            "fingerprint",
            "status",
            "superseded_at",
            "ingested_at",
            "note",
            "created_at",
        ]


# --- Array responses (documentation of the JSON forms) -----------------------------------------


class UnitArraySerializer(serializers.Serializer):
    """JSON form of one unit's array (``spike_times`` is replaced by the array's name)."""

    unit = serializers.IntegerField(help_text="Unit id.")
    spike_times = serializers.ListField(
        child=serializers.FloatField(), help_text="The whole array, in stored order."
    )


class InsertionArraysSerializer(serializers.Serializer):
    """JSON form of an insertion's arrays: one list per unit id (object keys are strings)."""

    insertion = serializers.IntegerField(help_text="Probe insertion id.")
    spike_times = serializers.DictField(
        child=serializers.ListField(child=serializers.FloatField()),
        help_text="Unit id → the unit's array (the key is the array's name).",
    )


class RasterTrialSerializer(serializers.Serializer):
    trial = serializers.IntegerField(help_text="Trial number within the session.")
    go_cue_time = serializers.FloatField(
        allow_null=True, help_text="s from the trial start; null: no go cue."
    )
    aligned_to_go = serializers.BooleanField(
        help_text="false: no go cue, spike times are relative to the trial start."
    )
    spike_times = serializers.ListField(child=serializers.FloatField(), help_text="s")


class RasterSerializer(serializers.Serializer):
    unit = serializers.IntegerField()
    insertion = serializers.IntegerField()
    trials = RasterTrialSerializer(many=True)


@extend_schema_field(OpenApiTypes.BINARY)
class BinaryField(serializers.Field):
    """Documentation only: a binary body."""
