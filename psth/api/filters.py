"""Filters of the analyses' API: units by their results, PSTH rows, insertions.

Unit filters by analysis results (:class:`UnitResultFilters`) are part of the unit filters of
``/api/units/`` and ``/api/unit-analyses/`` (``ephys.api.filters.UnitFilter``, which also
filters by where and how the unit was sorted and by QC metric ranges), e.g. the units
contra-selective in the delay period of ALM insertions:
``?brain_area=ALM&delay_selectivity=contra-selective``.
Period filters match a ``PeriodSelectivity`` row with an ``EXISTS`` subquery (a unit is listed
once).
"""

from __future__ import annotations

from collections.abc import Callable

from django.db.models import Exists, OuterRef, QuerySet
from django_filters import rest_framework as filters

from ephys.models import CellType, ProbeInsertion, RecordableBrainRegion
from lab.models import BrainArea
from mapsite.core.api import IdFilter, NameChoiceFilter, NameMultipleChoiceFilter

from ..models import PeriodSelectivity, Selectivity, TrialCondition, UnitPsth

PERIOD_NAMES = ("sample", "delay", "response")


def _period_filter(period: str) -> NameMultipleChoiceFilter:
    def apply(queryset: QuerySet, name: str, value: list) -> QuerySet:
        if not value:
            return queryset
        rows = PeriodSelectivity.objects.filter(
            unit=OuterRef("pk"), period__name=period, selectivity__in=value
        )
        return queryset.filter(Exists(rows))

    return NameMultipleChoiceFilter(
        queryset=Selectivity.objects.all(),
        method=apply,
        help_text=f"Selectivity in the {period} period; repeat for several.",
    )


def _recordable_area(path: str) -> Callable:
    def apply(queryset: QuerySet, name: str, value: BrainArea | None) -> QuerySet:
        if value is None:
            return queryset
        regions = RecordableBrainRegion.objects.filter(insertion=OuterRef(path), brain_area=value)
        return queryset.filter(Exists(regions))

    return apply


class UnitResultFilters(filters.FilterSet):
    """Filters of units by their analysis results; ``ephys.api.filters.UnitFilter`` (the
    filters of ``/api/units/`` and ``/api/unit-analyses/``) is built on it."""

    brain_area = NameChoiceFilter(
        queryset=BrainArea.objects.all(),
        method=_recordable_area("insertion"),
        help_text="A recordable brain region of the unit's insertion (e.g. ALM).",
    )
    coarse_brain_area = NameMultipleChoiceFilter(
        field_name="coarse_location__brain_area",
        queryset=BrainArea.objects.all(),
        help_text="Area of the unit from its depth (UnitCoarseBrainLocation); repeatable.",
    )
    cell_type = NameMultipleChoiceFilter(
        field_name="cell_type__cell_type",
        queryset=CellType.objects.all(),
        help_text="Cell type from the waveform width (FS, Pyr); repeatable.",
    )
    selectivity = NameMultipleChoiceFilter(
        field_name="selectivity__selectivity",
        queryset=Selectivity.objects.all(),
        help_text="Unit selectivity over the selective periods; repeatable.",
    )
    sample_selectivity = _period_filter("sample")
    delay_selectivity = _period_filter("delay")
    response_selectivity = _period_filter("response")
    criteria_passed = filters.BooleanFilter(
        field_name="passing_criteria__criteria_passed",
        help_text="Passes the criteria of its insertion's area (§4.6).",
    )

    class Meta:
        fields = [
            "brain_area",
            "coarse_brain_area",
            "cell_type",
            "selectivity",
            "sample_selectivity",
            "delay_selectivity",
            "response_selectivity",
            "criteria_passed",
        ]


class UnitPsthFilter(filters.FilterSet):
    unit = IdFilter(field_name="unit", help_text="Unit id.")
    insertion = IdFilter(field_name="unit__insertion", help_text="Probe insertion id.")
    session = IdFilter(field_name="unit__insertion__session", help_text="Session id.")
    trial_condition = NameMultipleChoiceFilter(
        queryset=TrialCondition.objects.all(),
        help_text="Trial condition name; repeat for several.",
    )
    trial_count_min = filters.NumberFilter(
        field_name="trial_count", lookup_expr="gte", help_text="At least this many trials."
    )

    class Meta:
        model = UnitPsth
        fields = ["unit", "insertion", "session", "trial_condition", "trial_count_min"]


class InsertionAnalysisFilter(filters.FilterSet):
    session = IdFilter(field_name="session", help_text="Session id.")
    subject = IdFilter(field_name="session__subject__subject_id", help_text="Subject id.")
    water_restriction_number = filters.CharFilter(
        field_name="session__subject__water_restriction__water_restriction_number",
        help_text="Water-restriction number of the subject (e.g. dl25).",
    )
    brain_area = NameChoiceFilter(
        queryset=BrainArea.objects.all(),
        method=_recordable_area("pk"),
        help_text="A recordable brain region of the insertion (e.g. ALM).",
    )

    class Meta:
        model = ProbeInsertion
        fields = ["session", "subject", "water_restriction_number", "brain_area"]
