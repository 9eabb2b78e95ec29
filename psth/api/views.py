"""Viewsets of the analyses (read-only: the pipeline writes these tables).

* ``trial-conditions``, ``selectivities``: the lookups of §8, by name;
* ``unit-psths``: one row per (unit, condition); ``/api/unit-psths/{id}.npy`` is the stored
  float32 ``.npy`` of the rates (no trial: 404);
* ``unit-analyses``: units with every analysis result, filterable by them; per unit all PSTHs
  (``/psth/`` JSON, ``/psth.npz``: ``rates`` (conditions × bins, NaN without trials),
  ``trial_count``, ``time``, ``trial_condition``) and the raster/PSTH figure
  (``/plot.png``, ``/plot.svg``);
* ``insertion-analyses``: insertions with the progress of their steps, the probe figure and the
  coding direction (``/coding-direction/?period_start=-0.4&period_end=0``).
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from django.db.models import Count, OuterRef, Prefetch, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpResponse
from django.http.response import HttpResponseBase
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from ephys.api.filters import UnitFilter
from ephys.api.renderers import BinaryAwareMixin, NpyRenderer, NpzRenderer
from ephys.models import ProbeInsertion, Unit
from mapsite.core.api import MapReadOnlyViewSet, lookup_viewset
from mapsite.core.plots import FIGURE_RENDERERS

from .. import coding, plots
from ..admin import insertion_jobs
from ..models import PSTH_TIME, PeriodSelectivity, Selectivity, TrialCondition, UnitPsth
from . import filters, serializers

TAGS = ("psth",)

SelectivityViewSet = lookup_viewset(Selectivity, tag="psth")


class FigureMixin:
    """Errors of a figure endpoint (401, 404, 406) are JSON, not images."""

    def finalize_response(
        self, request: Request, response: HttpResponseBase, *args: Any, **kwargs: Any
    ) -> HttpResponseBase:
        response = super().finalize_response(request, response, *args, **kwargs)  # type: ignore[misc]
        if getattr(response, "exception", False) and isinstance(
            getattr(response, "accepted_renderer", None), FIGURE_RENDERERS
        ):
            response.accepted_renderer = JSONRenderer()
            response.accepted_media_type = JSONRenderer.media_type
        return response


def _figure_response(request: Request, version: str, stem: str, render: Any) -> HttpResponseBase:
    fmt = request.accepted_renderer.format
    etag = f'"{version}-{fmt}"'
    headers = {"ETag": etag, "Cache-Control": "private, no-cache"}
    if etag in request.headers.get("If-None-Match", ""):
        return HttpResponse(status=304, headers=headers)
    figure = render(fmt)
    headers["Content-Disposition"] = f'inline; filename="{stem}.{fmt}"'
    return Response(figure, headers=headers)


FIGURE_RESPONSES = {
    (200, "image/png"): OpenApiTypes.BINARY,
    (200, "image/svg+xml"): OpenApiTypes.STR,
    304: OpenApiResponse(description="Not modified (If-None-Match matched the ETag)."),
    404: OpenApiResponse(description="No such object, or nothing to plot yet (JSON detail)."),
}


class TrialConditionViewSet(MapReadOnlyViewSet):
    """The 17 trial conditions of §8 (``/api/trial-conditions/{name}/``), in table order."""

    api_tags = TAGS
    queryset = TrialCondition.objects.order_by("pk")
    serializer_class = serializers.TrialConditionSerializer
    lookup_field = "name"
    lookup_value_regex = r"[^/]+"
    ordering_fields = ("name",)
    ordering = ("id",)
    pagination_class = None


class UnitPsthViewSet(BinaryAwareMixin, MapReadOnlyViewSet):
    """PSTHs of units per trial condition (−3 to +3 s around the go cue, 40 ms bins).

    Filter by unit, insertion, session, trial condition (repeatable) or minimum trial count.
    ``/api/unit-psths/{id}.npy`` returns the stored float32 rates as ``.npy``.
    """

    api_tags = TAGS
    queryset = UnitPsth.objects.select_related("unit", "trial_condition")
    serializer_class = serializers.UnitPsthSerializer
    filterset_class = filters.UnitPsthFilter
    renderer_classes = [JSONRenderer, NpyRenderer]
    lookup_value_regex = r"\d+"
    ordering_fields = ("id", "trial_count")
    ordering = ("unit_id", "trial_condition_id")

    @extend_schema(
        responses={
            (200, "application/json"): serializers.UnitPsthSerializer,
            (200, "application/x-npy"): OpenApiTypes.BINARY,
        }
    )
    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        row = self.get_object()
        if request.accepted_renderer.format == "npy":
            if row.rates is None:
                raise NotFound("no trial in this condition: no rates")
            return Response(bytes(row.rates))
        return Response(self.get_serializer(row).data)


class UnitAnalysisViewSet(BinaryAwareMixin, FigureMixin, MapReadOnlyViewSet):
    """Units with their analysis results: cell type, selectivity per period and overall,
    coarse brain location, drift metric, passing criteria (null where not computed).

    Filters of ``/api/units/`` plus ``brain_area`` (recordable region of the insertion),
    ``coarse_brain_area``, ``cell_type``, ``selectivity``, ``sample_selectivity``,
    ``delay_selectivity``, ``response_selectivity`` and ``criteria_passed``; e.g. the units
    contra-selective in the delay period of ALM insertions:
    ``?brain_area=ALM&delay_selectivity=contra-selective``.
    """

    api_tags = TAGS
    queryset = (
        Unit.objects.select_related(
            "insertion__session",
            "quality",
            "stat",
            "cell_type__cell_type",
            "selectivity__selectivity",
            "coarse_location__brain_area",
            "coarse_location__hemisphere",
            "drift",
            "passing_criteria",
        )
        .prefetch_related(
            Prefetch(
                "period_selectivities",
                queryset=PeriodSelectivity.objects.select_related("period", "selectivity").order_by(
                    "period_id"
                ),
            )
        )
        .defer("waveform")
    )
    serializer_class = serializers.UnitAnalysisSerializer
    filterset_class = UnitFilter  # the filters of /api/units/, analysis results included
    lookup_value_regex = r"\d+"
    ordering_fields = ("id", "unit", "unit_amp", "unit_posy", "stat__avg_firing_rate")
    ordering = ("insertion_id", "clustering_method_id", "unit")

    def _unit(self, pk: str) -> Unit:
        unit = (
            Unit.objects.select_related("insertion__session__subject__water_restriction", "quality")
            .defer("waveform")
            .filter(pk=int(pk))
            .first()
        )
        if unit is None:
            raise NotFound(f"no unit {pk}")
        return unit

    @extend_schema(
        responses={
            (200, "application/json"): serializers.UnitPsthSetSerializer,
            (200, "application/x-npz"): OpenApiTypes.BINARY,
        }
    )
    @action(
        detail=True,
        renderer_classes=[JSONRenderer, NpzRenderer],
        filter_backends=[],
        pagination_class=None,
    )
    def psth(self, request: Request, pk: str, format: str | None = None) -> Response:
        """Every PSTH of the unit: JSON, or ``.npz`` with ``rates`` (conditions × 150,
        float32, NaN without trials), ``trial_count``, ``time`` and ``trial_condition``."""
        unit = self._unit(pk)
        rows = list(
            UnitPsth.objects.filter(unit=unit)
            .select_related("trial_condition")
            .order_by("trial_condition_id")
        )
        if not rows:
            raise NotFound(f"unit {pk} has no PSTH yet")
        rates = np.full((len(rows), len(PSTH_TIME)), np.nan, dtype=np.float32)
        for k, row in enumerate(rows):
            values = row.rates_array()
            if values is not None:
                rates[k] = values
        if request.accepted_renderer.format == "npz":
            buffer = io.BytesIO()
            np.savez(
                buffer,
                rates=rates,
                trial_count=np.array([r.trial_count for r in rows], dtype=np.int64),
                time=PSTH_TIME.astype(np.float64),
                trial_condition=np.array([r.trial_condition.name for r in rows]),
            )
            return Response(buffer.getvalue())
        return Response(
            {
                "unit": unit.pk,
                "time": serializers.TIME,
                "psths": [
                    {
                        "trial_condition": row.trial_condition.name,
                        "trial_count": row.trial_count,
                        "rates": serializers._floats(rates[k]) if row.rates is not None else None,
                    }
                    for k, row in enumerate(rows)
                ],
            }
        )

    @extend_schema(responses=FIGURE_RESPONSES)
    @action(
        detail=True,
        renderer_classes=FIGURE_RENDERERS,
        filter_backends=[],
        pagination_class=None,
    )
    def plot(self, request: Request, pk: str, format: str | None = None) -> HttpResponseBase:
        """Raster and PSTH of hit and miss trials, ipsi vs contra, with sample, delay and go
        markers (900 × 600 px): ``/api/unit-analyses/{id}/plot.png`` or ``.svg``."""
        unit = self._unit(pk)
        try:
            data = plots.unit_plot_input(unit)
        except plots.NothingToPlot as exc:
            raise NotFound(str(exc))
        stem = f"{plots.file_stem(unit.insertion)}_u{unit.unit:03d}_unit_psth"
        return _figure_response(
            request, data.version, stem, lambda fmt: plots.unit_plot(unit, fmt, data)
        )


class InsertionAnalysisViewSet(FigureMixin, MapReadOnlyViewSet):
    """Probe insertions with the progress of their analysis steps, the probe figure
    (``/plot.png|.svg``) and the coding direction (``/coding-direction/``)."""

    api_tags = TAGS
    serializer_class = serializers.InsertionAnalysisSerializer
    filterset_class = filters.InsertionAnalysisFilter
    lookup_value_regex = r"\d+"
    ordering_fields = ("id", "session__start_time")
    ordering = ("session_id", "insertion_number")

    def get_queryset(self) -> QuerySet[ProbeInsertion]:
        units = (
            Unit.objects.filter(insertion=OuterRef("pk"))
            .order_by()
            .values("insertion")
            .annotate(n=Count("pk"))
            .values("n")
        )
        return ProbeInsertion.objects.select_related("location").annotate(
            n_units=Coalesce(Subquery(units), 0)
        )

    def get_serializer(self, *args: Any, **kwargs: Any) -> Any:
        if args and not kwargs.get("data"):
            objs = args[0]
            ids = [o.pk for o in objs] if isinstance(objs, list | QuerySet) else [objs.pk]
            kwargs.setdefault("context", self.get_serializer_context())
            kwargs["context"]["jobs"] = insertion_jobs(ids)
        return super().get_serializer(*args, **kwargs)

    def _insertion(self, pk: str) -> ProbeInsertion:
        insertion = (
            ProbeInsertion.objects.select_related("session__subject__water_restriction")
            .filter(pk=int(pk))
            .first()
        )
        if insertion is None:
            raise NotFound(f"no probe insertion {pk}")
        return insertion

    @extend_schema(responses=FIGURE_RESPONSES)
    @action(
        detail=True,
        renderer_classes=FIGURE_RENDERERS,
        filter_backends=[],
        pagination_class=None,
    )
    def plot(self, request: Request, pk: str, format: str | None = None) -> HttpResponseBase:
        """Unit characteristics (positions by amplitude, SNR, rate; amplitude vs rate; cell
        types) and selectivity by period (1300 × 750 px): ``/plot.png`` or ``.svg``."""
        insertion = self._insertion(pk)
        try:
            data = plots.insertion_plot_input(insertion)
        except plots.NothingToPlot as exc:
            raise NotFound(str(exc))
        stem = f"{plots.file_stem(insertion)}_unit_characteristic"
        return _figure_response(
            request, data.version, stem, lambda fmt: plots.insertion_plot(insertion, fmt, data)
        )

    @extend_schema(
        parameters=[
            OpenApiParameter("period_start", float, description="s from the go cue (-0.4)"),
            OpenApiParameter("period_end", float, description="s from the go cue (0)"),
            OpenApiParameter(
                "criteria_passed", bool, description="only units passing the criteria"
            ),
        ],
        responses={200: serializers.CodingDirectionSerializer, 404: OpenApiResponse()},
    )
    @action(
        detail=True,
        url_path="coding-direction",
        filter_backends=[],
        pagination_class=None,
    )
    def coding_direction(self, request: Request, pk: str) -> Response:
        """Coding direction of the insertion's units (contra − ipsi hit-trial rates in the
        period, normalised) and every contra/ipsi hit trial projected on it (§8)."""
        insertion = self._insertion(pk)
        try:
            start = float(request.query_params.get("period_start", -0.4))
            end = float(request.query_params.get("period_end", 0.0))
        except ValueError:
            raise ValidationError("period_start and period_end must be numbers")
        if not end > start:
            raise ValidationError("period_end must be after period_start")
        units = None
        if request.query_params.get("criteria_passed", "").lower() in ("1", "true", "yes"):
            units = list(
                Unit.objects.filter(insertion=insertion, passing_criteria__criteria_passed=True)
                .exclude(quality__name="all")
                .order_by("pk")
                .values_list("pk", flat=True)
            )
        try:
            cd = coding.insertion_coding_direction(insertion, (start, end), units)
        except (coding.NoCodingDirection, ValueError) as exc:
            raise NotFound(str(exc))
        return Response(
            {
                "hemisphere": cd.hemisphere,
                "period": list(cd.period),
                "units": cd.unit_ids,
                "cd": serializers._floats(cd.cd),
                "time": [float(t) for t in cd.time],
                "contra_trials": cd.contra_trials,
                "ipsi_trials": cd.ipsi_trials,
                "contra_projection": [serializers._floats(r) for r in cd.contra_projection],
                "ipsi_projection": [serializers._floats(r) for r in cd.ipsi_projection],
            }
        )
