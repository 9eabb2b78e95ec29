"""Serializers of the analyses: trial conditions, PSTHs, units and insertions with results.

PSTH rates are lists of 150 numbers (spikes/s) with the right bin edges in ``time`` (s from the
go cue); a condition without trials has ``trial_count`` 0 and ``rates`` null.
"""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from ephys.models import ProbeInsertion, Unit
from mapsite.core.api import ReadOnlyModelSerializer

from .. import plots
from ..models import PSTH_TIME, PeriodSelectivity, TrialCondition, UnitPsth

TIME = [round(float(t), 6) for t in PSTH_TIME]


def _floats(values: Any) -> list[float | None] | None:
    if values is None:
        return None
    return [None if v != v else float(v) for v in values]


class TrialConditionSerializer(ReadOnlyModelSerializer):
    includes_stim = serializers.BooleanField(read_only=True)

    class Meta:
        model = TrialCondition
        fields = ["name", "hash", "func", "args", "includes_stim"]


class UnitPsthSerializer(ReadOnlyModelSerializer):
    """One unit's PSTH in one trial condition."""

    insertion = serializers.IntegerField(source="unit.insertion_id", read_only=True)
    trial_condition = serializers.SlugRelatedField(slug_field="name", read_only=True)
    rates = serializers.SerializerMethodField(help_text="spikes/s per 40 ms bin; null: no trial")
    time = serializers.SerializerMethodField(help_text="right bin edges, s from the go cue")

    class Meta:
        model = UnitPsth
        fields = ["id", "unit", "insertion", "trial_condition", "trial_count", "rates", "time"]

    @extend_schema_field({"type": "array", "items": {"type": "number"}, "nullable": True})
    def get_rates(self, obj: UnitPsth) -> list[float | None] | None:
        return _floats(obj.rates_array())

    @extend_schema_field({"type": "array", "items": {"type": "number"}})
    def get_time(self, obj: UnitPsth) -> list[float]:
        return TIME


class PeriodResultSerializer(serializers.ModelSerializer):
    period = serializers.SlugRelatedField(slug_field="name", read_only=True)
    selectivity = serializers.SlugRelatedField(slug_field="name", read_only=True)

    class Meta:
        model = PeriodSelectivity
        fields = [
            "period",
            "selectivity",
            "ipsi_firing_rate",
            "contra_firing_rate",
            "p_value",
            "ipsi_trials",
            "contra_trials",
        ]
        read_only_fields = fields


class UnitAnalysisSerializer(ReadOnlyModelSerializer):
    """A unit with what the analyses made of it (null where a step has not made it)."""

    session = serializers.IntegerField(source="insertion.session_id", read_only=True)
    insertion_number = serializers.IntegerField(source="insertion.insertion_number", read_only=True)
    quality = serializers.SlugRelatedField(slug_field="name", read_only=True)
    avg_firing_rate = serializers.FloatField(
        source="stat.avg_firing_rate", read_only=True, allow_null=True, help_text="Hz"
    )
    isi_violation = serializers.FloatField(
        source="stat.isi_violation", read_only=True, allow_null=True
    )
    cell_type = serializers.CharField(
        source="cell_type.cell_type.name", read_only=True, allow_null=True, help_text="FS / Pyr"
    )
    waveform_width = serializers.FloatField(
        source="cell_type.waveform_width", read_only=True, allow_null=True, help_text="ms"
    )
    selectivity = serializers.CharField(
        source="selectivity.selectivity.name",
        read_only=True,
        allow_null=True,
        help_text="contra-selective / ipsi-selective / non-selective",
    )
    period_selectivities = PeriodResultSerializer(many=True, read_only=True)
    coarse_brain_area = serializers.CharField(
        source="coarse_location.brain_area.name", read_only=True, allow_null=True
    )
    coarse_hemisphere = serializers.CharField(
        source="coarse_location.hemisphere.name", read_only=True, allow_null=True
    )
    drift_metric = serializers.FloatField(
        source="drift.drift_metric", read_only=True, allow_null=True
    )
    criteria_passed = serializers.BooleanField(
        source="passing_criteria.criteria_passed", read_only=True, allow_null=True
    )
    links = serializers.SerializerMethodField()

    class Meta:
        model = Unit
        fields = [
            "id",
            "insertion",
            "session",
            "insertion_number",
            "unit",
            "quality",
            "unit_posx",
            "unit_posy",
            "unit_amp",
            "unit_snr",
            "avg_firing_rate",
            "isi_violation",
            "cell_type",
            "waveform_width",
            "selectivity",
            "period_selectivities",
            "coarse_brain_area",
            "coarse_hemisphere",
            "drift_metric",
            "criteria_passed",
            "links",
        ]

    @extend_schema_field(
        {"type": "object", "additionalProperties": {"type": "string", "format": "uri"}}
    )
    def get_links(self, obj: Unit) -> dict[str, str]:
        request = self.context.get("request")
        urls = {
            "psth": reverse("psth-unitanalysis-psth", kwargs={"pk": obj.pk}),
            "psth_npz": reverse("psth-unitanalysis-psth", kwargs={"pk": obj.pk, "format": "npz"}),
            "plot_png": plots.plot_url("unit", obj.pk, "png"),
            "plot_svg": plots.plot_url("unit", obj.pk, "svg"),
        }
        if request is not None:
            urls = {k: request.build_absolute_uri(v) for k, v in urls.items()}
        return urls


class UnitConditionPsthSerializer(serializers.Serializer):
    trial_condition = serializers.CharField()
    trial_count = serializers.IntegerField()
    rates = serializers.ListField(child=serializers.FloatField(), allow_null=True)


class UnitPsthSetSerializer(serializers.Serializer):
    """Every PSTH of a unit (conditions in the order of the trial-condition table)."""

    unit = serializers.IntegerField()
    time = serializers.ListField(child=serializers.FloatField())
    psths = UnitConditionPsthSerializer(many=True)


class InsertionAnalysisSerializer(ReadOnlyModelSerializer):
    """A probe insertion with the progress of its analysis steps."""

    hemisphere = serializers.SerializerMethodField()
    units = serializers.IntegerField(source="n_units", read_only=True)
    steps = serializers.SerializerMethodField(
        help_text="job status of each analysis step (absent: no job yet)"
    )
    links = serializers.SerializerMethodField()

    class Meta:
        model = ProbeInsertion
        fields = ["id", "session", "insertion_number", "hemisphere", "units", "steps", "links"]

    @extend_schema_field(OpenApiTypes.STR)
    def get_hemisphere(self, obj: ProbeInsertion) -> str | None:
        location = getattr(obj, "location", None) if _has_location(obj) else None
        if location is None or location.ml_location == 0:
            return None
        return location.hemisphere

    @extend_schema_field({"type": "object", "additionalProperties": {"type": "string"}})
    def get_steps(self, obj: ProbeInsertion) -> dict[str, str]:
        return self.context.get("jobs", {}).get(obj.pk, {})

    @extend_schema_field(
        {"type": "object", "additionalProperties": {"type": "string", "format": "uri"}}
    )
    def get_links(self, obj: ProbeInsertion) -> dict[str, str]:
        request = self.context.get("request")
        urls = {
            "units": reverse("psth-unitanalysis-list") + f"?insertion={obj.pk}",
            "coding_direction": reverse(
                "psth-insertionanalysis-coding-direction", kwargs={"pk": obj.pk}
            ),
            "plot_png": plots.plot_url("insertion", obj.pk, "png"),
            "plot_svg": plots.plot_url("insertion", obj.pk, "svg"),
        }
        if request is not None:
            urls = {k: request.build_absolute_uri(v) for k, v in urls.items()}
        return urls


def _has_location(obj: ProbeInsertion) -> bool:
    try:
        return obj.location is not None
    except ProbeInsertion.location.RelatedObjectDoesNotExist:
        return False


class CodingDirectionSerializer(serializers.Serializer):
    """The coding direction of an insertion and the trials projected on it (§8)."""

    hemisphere = serializers.CharField()
    period = serializers.ListField(child=serializers.FloatField(), help_text="s from the go cue")
    units = serializers.ListField(child=serializers.IntegerField(), help_text="unit ids")
    cd = serializers.ListField(child=serializers.FloatField(allow_null=True))
    time = serializers.ListField(child=serializers.FloatField())
    contra_trials = serializers.ListField(child=serializers.IntegerField(), help_text="trial ids")
    ipsi_trials = serializers.ListField(child=serializers.IntegerField(), help_text="trial ids")
    contra_projection = serializers.ListField(
        child=serializers.ListField(child=serializers.FloatField(allow_null=True)),
        help_text="per contra trial: projection on the CD per time bin",
    )
    ipsi_projection = serializers.ListField(
        child=serializers.ListField(child=serializers.FloatField(allow_null=True))
    )
