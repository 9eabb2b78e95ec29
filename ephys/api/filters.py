"""Whitelisted filters of schema ``ephys`` (no free-form ORM lookups reach the database).

Metric ranges are explicit ``*_min`` / ``*_max`` number filters on named columns. Metrics of
``ClusterMetric`` (several rows per unit are possible, one per epoch) are matched with an
``EXISTS`` subquery, so a unit is listed once however many epochs it has.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db.models import Exists, OuterRef, QuerySet
from django_filters import rest_framework as filters

from ephys import models
from lab import models as lab_models
from mapsite.core.api import IdFilter, NameChoiceFilter, NameMultipleChoiceFilter
from psth.api.filters import UnitResultFilters

# --- Building blocks ---------------------------------------------------------------------------


def insertion_filters(path: str = "insertion") -> dict[str, filters.Filter]:
    """insertion / session / subject / water_restriction_number of a row under an insertion."""
    session = f"{path}__session"
    return {
        "insertion": IdFilter(field_name=path, help_text="Probe insertion id."),
        "session": IdFilter(field_name=session, help_text="Session id."),
        "subject": IdFilter(field_name=f"{session}__subject__subject_id", help_text="Subject id."),
        "water_restriction_number": filters.CharFilter(
            field_name=f"{session}__subject__water_restriction__water_restriction_number",
            help_text="Water-restriction number of the subject (e.g. dl7).",
        ),
    }


INSERTION_FIELDS = ["insertion", "session", "subject", "water_restriction_number"]


def _range(field: str, what: str, **kwargs: Any) -> tuple[filters.NumberFilter, ...]:
    return (
        filters.NumberFilter(
            field_name=field, lookup_expr="gte", help_text=f"{what} at least this.", **kwargs
        ),
        filters.NumberFilter(
            field_name=field, lookup_expr="lte", help_text=f"{what} at most this.", **kwargs
        ),
    )


def _metric_exists(lookup: str) -> Any:
    """A ``method`` for a ClusterMetric bound: units with an epoch whose metric passes it."""

    def apply(queryset: QuerySet, name: str, value: Decimal) -> QuerySet:
        # ``name`` is the filter's field_name: one of CLUSTER_RANGE_METRICS, set by the code.
        assert name in CLUSTER_RANGE_METRICS
        matching = models.ClusterMetric.objects.filter(
            unit=OuterRef("pk"), **{f"{name}__{lookup}": value}
        )
        return queryset.filter(Exists(matching))

    return apply


def _cluster_range(metric: str, what: str) -> tuple[filters.NumberFilter, filters.NumberFilter]:
    assert metric in CLUSTER_RANGE_METRICS
    return (
        filters.NumberFilter(
            field_name=metric,
            method=_metric_exists("gte"),
            help_text=f"{what} (ClusterMetric, any epoch) at least this.",
        ),
        filters.NumberFilter(
            field_name=metric,
            method=_metric_exists("lte"),
            help_text=f"{what} (ClusterMetric, any epoch) at most this.",
        ),
    )


CLUSTER_RANGE_METRICS = ("presence_ratio", "amplitude_cutoff")


# --- Insertions and manual insertion tables ----------------------------------------------------


class ProbeInsertionFilter(filters.FilterSet):
    session = IdFilter(field_name="session", help_text="Session id.")
    subject = IdFilter(field_name="session__subject__subject_id", help_text="Subject id.")
    water_restriction_number = filters.CharFilter(
        field_name="session__subject__water_restriction__water_restriction_number",
        help_text="Water-restriction number of the subject (e.g. dl7).",
    )
    probe = filters.CharFilter(field_name="probe__serial", help_text="Probe serial number.")
    probe_type = NameChoiceFilter(
        field_name="probe__probe_type", queryset=lab_models.ProbeType.objects.all()
    )
    brain_area = NameChoiceFilter(
        field_name="recordable_regions__brain_area",
        queryset=lab_models.BrainArea.objects.all(),
        distinct=True,
        help_text="A recordable brain region of the insertion (e.g. ALM).",
    )

    class Meta:
        model = models.ProbeInsertion
        fields = [
            "session",
            "subject",
            "water_restriction_number",
            "insertion_number",
            "probe",
            "probe_type",
            "brain_area",
        ]


def _insertion_child_filterset(model: type, extra: dict[str, Any] | None = None) -> type:
    """A FilterSet of a table hanging off ProbeInsertion (by insertion, session, subject)."""
    attrs: dict[str, Any] = {**insertion_filters(), **(extra or {})}
    fields = [*INSERTION_FIELDS, *(extra or {})]
    attrs["Meta"] = type("Meta", (), {"model": model, "fields": fields})
    return type(f"{model.__name__}Filter", (filters.FilterSet,), attrs)


InsertionLocationFilter = _insertion_child_filterset(
    models.InsertionLocation,
    {
        "skull_reference": NameChoiceFilter(
            queryset=lab_models.SkullReference.objects.all(), help_text="e.g. Bregma"
        )
    },
)
RecordableBrainRegionFilter = _insertion_child_filterset(
    models.RecordableBrainRegion,
    {
        "brain_area": NameChoiceFilter(queryset=lab_models.BrainArea.objects.all()),
        "hemisphere": NameChoiceFilter(queryset=lab_models.Hemisphere.objects.all()),
    },
)
InsertionNoteFilter = _insertion_child_filterset(models.InsertionNote)
ProbeInsertionQualityFilter = _insertion_child_filterset(
    models.ProbeInsertionQuality,
    {"drift_presence": filters.BooleanFilter(), "alignment_confidence": filters.BooleanFilter()},
)
BrainAreaDepthCriteriaFilter = _insertion_child_filterset(
    models.BrainAreaDepthCriteria,
    {"brain_area": NameChoiceFilter(queryset=lab_models.BrainArea.objects.all())},
)
ClusteringLabelFilter = _insertion_child_filterset(
    models.ClusteringLabel,
    {"clustering_method": NameChoiceFilter(queryset=models.ClusteringMethod.objects.all())},
)
ArchivedClusteringFilter = _insertion_child_filterset(
    models.ArchivedClustering,
    {"clustering_method": NameChoiceFilter(queryset=models.ClusteringMethod.objects.all())},
)


class InsertionTrialAlignmentFilter(filters.FilterSet):
    insertion = IdFilter(field_name="insertion", help_text="Probe insertion id.")
    session = IdFilter(field_name="insertion__session", help_text="Session id.")
    trial = IdFilter(field_name="trial__trial", help_text="Trial number within the session.")

    class Meta:
        model = models.InsertionTrialAlignment
        fields = ["insertion", "session", "trial"]


class _QualityChildFilter(filters.FilterSet):
    insertion = IdFilter(field_name="quality", help_text="Probe insertion id.")
    session = IdFilter(field_name="quality__insertion__session", help_text="Session id.")
    subject = IdFilter(
        field_name="quality__insertion__session__subject__subject_id", help_text="Subject id."
    )

    FIELDS = ["insertion", "session", "subject"]


class GoodPeriodFilter(_QualityChildFilter):
    class Meta:
        model = models.GoodPeriod
        fields = _QualityChildFilter.FIELDS


class GoodTrialFilter(_QualityChildFilter):
    class Meta:
        model = models.GoodTrial
        fields = _QualityChildFilter.FIELDS


# --- Units ---------------------------------------------------------------------------------------


class UnitFilter(UnitResultFilters):
    """Units by where they were recorded, how they were sorted, their QC metrics and their
    analysis results (``psth.api.filters.UnitResultFilters``: cell type, selectivity overall
    and per period, brain areas, passing criteria)."""

    insertion = IdFilter(field_name="insertion", help_text="Probe insertion id.")
    session = IdFilter(field_name="insertion__session", help_text="Session id.")
    subject = IdFilter(
        field_name="insertion__session__subject__subject_id", help_text="Subject id."
    )
    water_restriction_number = filters.CharFilter(
        field_name="insertion__session__subject__water_restriction__water_restriction_number",
        help_text="Water-restriction number of the subject (e.g. dl7).",
    )
    insertion_number = IdFilter(
        field_name="insertion__insertion_number", help_text="Probe number within the session."
    )
    unit = IdFilter(field_name="unit", help_text="Cluster id of the sorter.")
    quality = NameMultipleChoiceFilter(
        queryset=models.UnitQualityType.objects.all(),
        help_text="Unit quality; repeat for several (good, ok, multi, all).",
    )
    clustering_method = NameMultipleChoiceFilter(
        queryset=models.ClusteringMethod.objects.all(),
        help_text="Clustering method; repeat for several (kilosort2, jrclust_v4, …).",
    )
    noise = filters.ChoiceFilter(
        field_name="noise_label__noise",
        choices=models.NoiseLabel.choices,
        help_text="Noise label of the noise-templates module.",
    )
    unit_amp_min, unit_amp_max = _range("unit_amp", "Amplitude (µV)")
    unit_snr_min, unit_snr_max = _range("unit_snr", "Signal-to-noise ratio")
    avg_firing_rate_min, avg_firing_rate_max = _range("stat__avg_firing_rate", "Firing rate (Hz)")
    isi_violation_min, isi_violation_max = _range("stat__isi_violation", "ISI violation")
    presence_ratio_min, presence_ratio_max = _cluster_range("presence_ratio", "Presence ratio")
    amplitude_cutoff_min, amplitude_cutoff_max = _cluster_range(
        "amplitude_cutoff", "Amplitude cutoff"
    )
    unit_posy_min, unit_posy_max = _range("unit_posy", "Depth on the probe (µm from the tip)")

    class Meta:
        model = models.Unit
        fields = [
            "insertion",
            "session",
            "subject",
            "water_restriction_number",
            "insertion_number",
            "unit",
            "quality",
            "clustering_method",
            "noise",
            "unit_amp_min",
            "unit_amp_max",
            "unit_snr_min",
            "unit_snr_max",
            "avg_firing_rate_min",
            "avg_firing_rate_max",
            "isi_violation_min",
            "isi_violation_max",
            "presence_ratio_min",
            "presence_ratio_max",
            "amplitude_cutoff_min",
            "amplitude_cutoff_max",
            "unit_posy_min",
            "unit_posy_max",
            *UnitResultFilters.Meta.fields,
        ]


class InsertionSpikeFilter(filters.FilterSet):
    """Which units of an insertion the whole-insertion array endpoints return."""

    quality = NameMultipleChoiceFilter(
        queryset=models.UnitQualityType.objects.all(),
        help_text="Unit quality; repeat for several.",
    )
    clustering_method = NameMultipleChoiceFilter(
        queryset=models.ClusteringMethod.objects.all(),
        help_text="Clustering method; repeat for several.",
    )

    class Meta:
        model = models.Unit
        fields = ["quality", "clustering_method"]


def _unit_child_filterset(model: type, path: str = "unit", extra: dict | None = None) -> type:
    """A FilterSet of a table hanging off Unit (by unit, insertion, session, subject)."""
    attrs: dict[str, Any] = {
        "unit": IdFilter(field_name=path, help_text="Unit id."),
        "insertion": IdFilter(field_name=f"{path}__insertion", help_text="Probe insertion id."),
        "session": IdFilter(field_name=f"{path}__insertion__session", help_text="Session id."),
        "subject": IdFilter(
            field_name=f"{path}__insertion__session__subject__subject_id",
            help_text="Subject id.",
        ),
        **(extra or {}),
    }
    fields = ["unit", "insertion", "session", "subject", *(extra or {})]
    attrs["Meta"] = type("Meta", (), {"model": model, "fields": fields})
    return type(f"{model.__name__}Filter", (filters.FilterSet,), attrs)


UnitStatFilter = _unit_child_filterset(models.UnitStat)
ClusterMetricFilter = _unit_child_filterset(models.ClusterMetric)
WaveformMetricFilter = _unit_child_filterset(models.WaveformMetric)
UnitNoteFilter = _unit_child_filterset(
    models.UnitNote,
    extra={
        "note_source": filters.CharFilter(help_text="e.g. sort, Davesort"),
        "quality": NameMultipleChoiceFilter(queryset=models.UnitQualityType.objects.all()),
    },
)
UnitNoiseLabelFilter = _unit_child_filterset(
    models.UnitNoiseLabel, extra={"noise": filters.ChoiceFilter(choices=models.NoiseLabel.choices)}
)
UnitCommentFilter = _unit_child_filterset(models.UnitComment)


class ArchivedUnitFilter(filters.FilterSet):
    clustering = IdFilter(field_name="clustering", help_text="Archived clustering id.")
    insertion = IdFilter(field_name="clustering__insertion", help_text="Probe insertion id.")
    session = IdFilter(field_name="clustering__insertion__session", help_text="Session id.")
    quality = NameMultipleChoiceFilter(queryset=models.UnitQualityType.objects.all())

    class Meta:
        model = models.ArchivedUnit
        fields = ["clustering", "insertion", "session", "quality"]


# --- Ingest bookkeeping ------------------------------------------------------------------------


class EphysRecordingFilter(filters.FilterSet):
    session = IdFilter(field_name="session", help_text="Session id.")
    ingested = filters.BooleanFilter(
        field_name="session", lookup_expr="isnull", exclude=True, help_text="Ingested yet?"
    )

    class Meta:
        model = models.EphysRecording
        fields = ["session", "h2o", "ingested"]


class SortedOutputFilter(filters.FilterSet):
    recording = IdFilter(field_name="recording", help_text="Ephys recording id.")
    session = IdFilter(field_name="recording__session", help_text="Session id.")
    h2o = filters.CharFilter(field_name="recording__h2o", help_text="Water-restriction number.")

    class Meta:
        model = models.SortedOutput
        fields = ["recording", "session", "h2o", "status"]
