"""Viewsets of schema ``ephys``.

Insertions, units, metrics and the archive come from the ephys ingest and are read-only here;
what people enter about an insertion (location, recordable regions, quality with good periods
and trials, depth criteria, note) and comments on units are writable by staff. Every list
loads its related rows up front: a page costs the same number of queries at any page size.

Arrays are served by actions next to their rows:

* ``GET /api/units/{id}/spike-times/`` (also ``spike-sites``, ``spike-depths``, ``waveform``):
  ``Accept: application/x-npy`` or ``?format=npy`` gives the stored ``.npy`` bytes as they are;
  JSON gives ``{"unit": id, "spike_times": [...]}``.
* ``GET /api/insertions/{id}/spike-times/`` (also ``spike-sites``, ``spike-depths``): every unit
  of the insertion at once (``?quality=``, ``?clustering_method=`` narrow it). ``?format=npz``
  gives a zip holding ``unit_ids.npy``, ``units.npy``, ``offsets.npy`` and ``spike_times.npy``
  (unit ``unit_ids[i]`` owns ``spike_times[offsets[i]:offsets[i+1]]``); JSON gives
  ``{"insertion": id, "spike_times": {"<unit id>": [...]}}``, streamed.
* ``GET /api/units/{id}/raster/?trials=3,4,5``: the unit's spikes of each trial relative to that
  trial's go cue, computed on read from the stored train and the insertion's trial alignment.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from typing import Any

import numpy as np
from django.db.models import Count, IntegerField, OuterRef, Prefetch, Subquery, Value
from django.db.models.functions import Coalesce
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from ephys import models
from ephys.analysis.align import align_spikes_to_trials, raster
from mapsite.core.api import MapModelViewSet, MapReadOnlyViewSet, lookup_viewset

from . import filters, serializers
from .arrays import ArrayRow, array_npy, concat_npy, fetch_arrays, npz_bytes, parse_npy
from .renderers import NPY_MEDIA_TYPE, NPZ_MEDIA_TYPE, BinaryAwareMixin, NpyRenderer, NpzRenderer

TAGS = ("ephys",)
INSERTION_REF = ("insertion__session__subject",)  # what InsertionRefs reads
QUALITY_REF = ("quality__insertion__session__subject",)
UNIT_REF = ("unit",)  # what UnitRefs reads (the unit's waveform is deferred)
MAX_RASTER_TRIALS = 10_000
TRIALS_RE = re.compile(r"^\d{1,9}(,\d{1,9})*$")

# Array name in the URL -> (path from Unit, dtype of an empty answer).
UNIT_ARRAYS = {
    "spike_times": ("spikes__spike_times", np.float64),
    "spike_sites": ("spikes__spike_sites", np.int32),
    "spike_depths": ("spikes__spike_depths", np.float32),
    "waveform": ("waveform", np.float32),
}


def _count_of(model: type, fk: str) -> Coalesce:
    """A correlated ``COUNT(*)`` per row: evaluated for the rows of the page only."""
    counted = (
        model.objects.filter(**{fk: OuterRef("pk")})
        .order_by()
        .values(fk)
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(counted, output_field=IntegerField()), Value(0))


def json_list(array: np.ndarray) -> list:
    """A JSON-ready list; non-finite floats (not JSON) become null."""
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        return [x if math.isfinite(x) else None for x in array.tolist()]
    return array.tolist()


def _unit_missing(pk: int, what: str) -> NotFound:
    if models.Unit.objects.filter(pk=pk).exists():
        return NotFound(f"Unit {pk} has no stored {what}.")
    return NotFound("No such unit.")


def _format_parameter(*formats: str) -> OpenApiParameter:
    return OpenApiParameter(
        "format",
        OpenApiTypes.STR,
        enum=list(formats),
        description="Response format; the same as asking for it with the Accept header.",
    )


TRIALS_PARAMETER = OpenApiParameter(
    "trials",
    OpenApiTypes.STR,
    description=(
        "Comma-separated trial numbers (within the session), in the order wanted, e.g. 3,4,10; "
        f"all aligned trials when absent. At most {MAX_RASTER_TRIALS}."
    ),
)
ARRAY_PARAMETER = OpenApiParameter(
    "array",
    OpenApiTypes.STR,
    OpenApiParameter.PATH,
    enum=["spike-times", "spike-sites", "spike-depths"],
)


def parse_trials(request: Request) -> list[int] | None:
    """``?trials=1,2,3`` (or repeated) → trial numbers; None when absent. Anything else: 400."""
    given = [v for v in request.query_params.getlist("trials") if v != ""]
    if not given:
        return None
    text = ",".join(given)
    if not TRIALS_RE.match(text):
        raise ValidationError({"trials": ["Comma-separated trial numbers, e.g. 1,2,3."]})
    numbers = [int(t) for t in text.split(",")]
    if len(numbers) > MAX_RASTER_TRIALS:
        raise ValidationError({"trials": [f"At most {MAX_RASTER_TRIALS} trials at a time."]})
    if len(set(numbers)) != len(numbers):
        raise ValidationError({"trials": ["A trial is listed twice."]})
    return numbers


# --- Probe insertions and what people enter about them -----------------------------------------


class ProbeInsertionViewSet(BinaryAwareMixin, MapReadOnlyViewSet):
    """Probe insertions (written by the ephys ingest), with location, recordable regions,
    quality, depth criteria, note, clusterings and unit count.

    Filter by session, subject, water-restriction number, probe, probe type or recordable
    brain area. ``/api/insertions/{id}/spike-times/`` serves every unit's spikes at once.
    """

    api_tags = TAGS
    queryset = (
        models.ProbeInsertion.objects.select_related(
            "session__subject__water_restriction",
            "probe__probe_type",
            "electrode_config",
            "location__skull_reference",
            "quality",
            "note",
        )
        .prefetch_related(
            Prefetch(
                "recordable_regions",
                queryset=models.RecordableBrainRegion.objects.select_related(
                    "brain_area", "hemisphere"
                ).order_by("id"),
            ),
            Prefetch(
                "depth_criteria",
                queryset=models.BrainAreaDepthCriteria.objects.select_related(
                    "brain_area"
                ).order_by("depth_upper", "id"),
            ),
            Prefetch("quality__good_periods", queryset=models.GoodPeriod.objects.order_by("start")),
            Prefetch(
                "clustering_labels",
                queryset=models.ClusteringLabel.objects.select_related(
                    "clustering_method"
                ).order_by("clustering_time", "id"),
            ),
        )
        .annotate(unit_count=_count_of(models.Unit, "insertion"))
    )
    serializer_class = serializers.ProbeInsertionSerializer
    filterset_class = filters.ProbeInsertionFilter
    lookup_value_regex = r"\d+"
    ordering_fields = ("id", "insertion_number", "session__start_time", "unit_count")
    ordering = ("session_id", "insertion_number")

    @extend_schema(
        operation_id="insertions_arrays_retrieve",
        summary="Every unit's spike times (or sites, depths) of the insertion at once",
        parameters=[
            ARRAY_PARAMETER,
            _format_parameter("json", "npz"),
            OpenApiParameter(
                "quality",
                OpenApiTypes.STR,
                many=True,
                description="Only units of this quality; repeat for several.",
            ),
            OpenApiParameter(
                "clustering_method",
                OpenApiTypes.STR,
                many=True,
                description="Only units of this clustering method; repeat for several.",
            ),
        ],
        responses={
            (200, "application/json"): serializers.InsertionArraysSerializer,
            (200, NPZ_MEDIA_TYPE): OpenApiResponse(
                OpenApiTypes.BINARY,
                description=(
                    "np.savez-compatible zip (stored): unit_ids.npy (int64 unit ids), units.npy "
                    "(int64 cluster ids), offsets.npy (int64, n+1) and <array>.npy (the units' "
                    "arrays end to end: unit_ids[i] owns [offsets[i]:offsets[i+1]])."
                ),
            ),
        },
    )
    @action(
        detail=True,
        url_path=r"(?P<array>spike-times|spike-sites|spike-depths)",
        renderer_classes=[JSONRenderer, NpzRenderer],
        filter_backends=[],
        pagination_class=None,
    )
    def arrays(self, request: Request, pk: str, array: str) -> Any:
        name = array.replace("-", "_")
        path, dtype = UNIT_ARRAYS[name]
        selection = filters.InsertionSpikeFilter(
            request.query_params,
            queryset=models.Unit.objects.filter(insertion_id=int(pk)).order_by(
                "clustering_method_id", "unit"
            ),
        )
        if not selection.is_valid():
            raise ValidationError(selection.errors)
        rows = fetch_arrays(selection.qs, path, ("unit", "insertion_id"))
        if not rows and not models.ProbeInsertion.objects.filter(pk=int(pk)).exists():
            raise NotFound("No such insertion.")
        if request.accepted_renderer.format == "npz":
            response = Response(insertion_npz(rows, name, dtype))
            response["Content-Disposition"] = f'attachment; filename="insertion-{pk}-{name}.npz"'
            return response
        return StreamingHttpResponse(
            insertion_json(int(pk), name, rows), content_type="application/json"
        )


def insertion_npz(rows: list[ArrayRow], name: str, dtype: type) -> bytes:
    """The zip of an insertion's arrays: the stored payloads end to end, never decoded."""
    payloads = [parse_npy(row.blob) for row in rows]
    offsets = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum([p.count for p in payloads], out=offsets[1:])
    return npz_bytes(
        [
            ("unit_ids.npy", [array_npy(np.array([r.pk for r in rows], dtype=np.int64))]),
            ("units.npy", [array_npy(np.array([r.a for r in rows], dtype=np.int64))]),
            ("offsets.npy", [array_npy(offsets)]),
            (f"{name}.npy", concat_npy(payloads, np.dtype(dtype))),
        ]
    )


def insertion_json(insertion: int, name: str, rows: list[ArrayRow]) -> Iterator[bytes]:
    """``{"insertion": id, name: {"<unit id>": [...], ...}}``, one unit at a time."""
    yield f'{{"insertion": {insertion}, "{name}": {{'.encode()
    for i, row in enumerate(rows):
        values = json.dumps(json_list(parse_npy(row.blob).array()), allow_nan=False)
        yield f'{"," if i else ""}"{row.pk}": {values}'.encode()
    yield b"}}"


class InsertionLocationViewSet(MapModelViewSet):
    """Where each probe went in (µm from the skull reference; angles in degrees), by insertion
    id (``/api/insertion-locations/{insertion}/``)."""

    api_tags = TAGS
    queryset = models.InsertionLocation.objects.select_related(*INSERTION_REF, "skull_reference")
    serializer_class = serializers.InsertionLocationSerializer
    filterset_class = filters.InsertionLocationFilter
    lookup_field = "insertion"
    lookup_value_regex = r"\d+"
    ordering_fields = ("insertion", "depth")
    ordering = ("insertion",)


class RecordableBrainRegionViewSet(MapModelViewSet):
    """Brain regions the experimenter expects each insertion to record from."""

    api_tags = TAGS
    queryset = models.RecordableBrainRegion.objects.select_related(
        *INSERTION_REF, "brain_area", "hemisphere"
    )
    serializer_class = serializers.RecordableBrainRegionSerializer
    filterset_class = filters.RecordableBrainRegionFilter
    ordering_fields = ("id", "insertion")
    ordering = ("insertion_id", "id")


class InsertionNoteViewSet(MapModelViewSet):
    """A free-text note per insertion, by insertion id."""

    api_tags = TAGS
    queryset = models.InsertionNote.objects.select_related(*INSERTION_REF)
    serializer_class = serializers.InsertionNoteSerializer
    filterset_class = filters.InsertionNoteFilter
    lookup_field = "insertion"
    lookup_value_regex = r"\d+"
    ordering_fields = ("insertion",)
    ordering = ("insertion",)


class ProbeInsertionQualityViewSet(MapModelViewSet):
    """Quality of each insertion (drift, landmarks, alignment confidence), by insertion id, with
    its good periods and good trials (edited through their own endpoints)."""

    api_tags = TAGS
    queryset = models.ProbeInsertionQuality.objects.select_related(*INSERTION_REF).prefetch_related(
        Prefetch("good_periods", queryset=models.GoodPeriod.objects.order_by("start")),
        Prefetch(
            "good_trials",
            queryset=models.GoodTrial.objects.select_related("trial").only(
                "id", "quality_id", "trial__id", "trial__trial"
            ),
        ),
    )
    serializer_class = serializers.ProbeInsertionQualitySerializer
    filterset_class = filters.ProbeInsertionQualityFilter
    lookup_field = "insertion"
    lookup_value_regex = r"\d+"
    ordering_fields = ("insertion",)
    ordering = ("insertion",)


class GoodPeriodViewSet(MapModelViewSet):
    """Good periods of insertions (s from the session start); ``insertion`` is the key of the
    insertion's quality row, which must exist."""

    api_tags = TAGS
    queryset = models.GoodPeriod.objects.select_related(*QUALITY_REF)
    serializer_class = serializers.GoodPeriodSerializer
    filterset_class = filters.GoodPeriodFilter
    ordering_fields = ("id", "start")
    ordering = ("quality_id", "start")


class GoodTrialViewSet(MapModelViewSet):
    """Good trials of insertions, by trial number within the insertion's session."""

    api_tags = TAGS
    queryset = models.GoodTrial.objects.select_related(*QUALITY_REF, "trial")
    serializer_class = serializers.GoodTrialSerializer
    filterset_class = filters.GoodTrialFilter
    ordering_fields = ("id", "trial__trial")
    ordering = ("quality_id", "trial__trial")


class BrainAreaDepthCriteriaViewSet(MapModelViewSet):
    """Depth ranges (µm) of brain areas along each insertion, for unit localization."""

    api_tags = TAGS
    queryset = models.BrainAreaDepthCriteria.objects.select_related(*INSERTION_REF, "brain_area")
    serializer_class = serializers.BrainAreaDepthCriteriaSerializer
    filterset_class = filters.BrainAreaDepthCriteriaFilter
    ordering_fields = ("id", "depth_upper")
    ordering = ("insertion_id", "depth_upper", "id")


class InsertionTrialAlignmentViewSet(MapReadOnlyViewSet):
    """Each behavior trial on an insertion's ephys clock: trial start (s, on the clock of the
    spike times) and go cue (s from the trial start). What the raster endpoint aligns with."""

    api_tags = TAGS
    queryset = models.InsertionTrialAlignment.objects.select_related("trial")
    serializer_class = serializers.InsertionTrialAlignmentSerializer
    filterset_class = filters.InsertionTrialAlignmentFilter
    ordering_fields = ("start_time", "ephys_trial", "id")
    ordering = ("insertion_id", "start_time")


class ClusteringLabelViewSet(MapReadOnlyViewSet):
    """How each insertion's clustering was made (method, time, QC, manual curation)."""

    api_tags = TAGS
    queryset = models.ClusteringLabel.objects.select_related(*INSERTION_REF, "clustering_method")
    serializer_class = serializers.ClusteringLabelSerializer
    filterset_class = filters.ClusteringLabelFilter
    ordering_fields = ("id", "clustering_time")
    ordering = ("insertion_id", "clustering_time", "id")


# --- Units ---------------------------------------------------------------------------------------


class UnitViewSet(BinaryAwareMixin, MapReadOnlyViewSet):
    """Sorted units with position, amplitude and QC metrics.

    Filter by session, subject, insertion, quality and clustering method (repeatable), noise
    label and metric ranges (``unit_amp_min``, ``avg_firing_rate_max``, ``presence_ratio_min``,
    …). Arrays: ``spike-times``, ``spike-sites``, ``spike-depths``, ``waveform`` (``.npy`` or
    JSON) and ``raster`` (go-cue-aligned spike times per trial).
    """

    api_tags = TAGS
    queryset = (
        models.Unit.objects.select_related(
            "insertion__session__subject",
            "clustering_method",
            "quality",
            "electrode__electrode",
            "stat",
            "noise_label",
        )
        .prefetch_related(
            Prefetch(
                "cluster_metrics",
                queryset=models.ClusterMetric.objects.order_by("epoch_name_quality_metrics"),
            )
        )
        .defer("waveform")
    )
    serializer_class = serializers.UnitSerializer
    filterset_class = filters.UnitFilter
    lookup_value_regex = r"\d+"
    ordering_fields = (
        "id",
        "unit",
        "unit_amp",
        "unit_snr",
        "unit_posy",
        "spike_count",
        "stat__avg_firing_rate",
        "stat__isi_violation",
    )
    ordering = ("insertion_id", "clustering_method_id", "unit")

    @extend_schema(
        operation_id="units_arrays_retrieve",
        summary="One unit's spike times, sites, depths or mean waveform",
        parameters=[
            OpenApiParameter(
                "array",
                OpenApiTypes.STR,
                OpenApiParameter.PATH,
                enum=["spike-times", "spike-sites", "spike-depths", "waveform"],
            ),
            _format_parameter("json", "npy"),
        ],
        responses={
            (200, "application/json"): serializers.UnitArraySerializer,
            (200, NPY_MEDIA_TYPE): OpenApiResponse(
                OpenApiTypes.BINARY,
                description=(
                    "The stored .npy bytes: spike times float64 s from the first ephys trial "
                    "start, sites int32, depths float32 µm, waveform float32 µV."
                ),
            ),
        },
    )
    @action(
        detail=True,
        url_path=r"(?P<array>spike-times|spike-sites|spike-depths|waveform)",
        renderer_classes=[JSONRenderer, NpyRenderer],
        filter_backends=[],
        pagination_class=None,
    )
    def arrays(self, request: Request, pk: str, array: str) -> Response:
        name = array.replace("-", "_")
        path, _ = UNIT_ARRAYS[name]
        rows = fetch_arrays(models.Unit.objects.filter(pk=int(pk)), path, ("unit", "insertion_id"))
        if not rows:
            raise _unit_missing(int(pk), name.replace("_", " "))
        blob = rows[0].blob
        if request.accepted_renderer.format == "npy":
            response = Response(blob)
            response["Content-Disposition"] = f'attachment; filename="unit-{pk}-{name}.npy"'
            return response
        return Response({"unit": int(pk), name: json_list(parse_npy(blob).array())})

    @extend_schema(
        summary="Go-cue-aligned raster of a unit",
        parameters=[TRIALS_PARAMETER, _format_parameter("json", "npz")],
        responses={
            (200, "application/json"): serializers.RasterSerializer,
            (200, NPZ_MEDIA_TYPE): OpenApiResponse(
                OpenApiTypes.BINARY,
                description=(
                    "np.savez-compatible zip: trials.npy (int64 trial numbers), "
                    "go_cue_times.npy (float64 s from trial start, NaN: none), offsets.npy "
                    "(int64, n+1), spike_times.npy (float64 s from the go cue; from the trial "
                    "start for a trial without go cue): trials[i] owns [offsets[i]:offsets[i+1]]."
                ),
            ),
            400: OpenApiResponse(description="Malformed trial list or trials not aligned."),
        },
    )
    @action(
        detail=True,
        renderer_classes=[JSONRenderer, NpzRenderer],
        filter_backends=[],
        pagination_class=None,
    )
    def raster(self, request: Request, pk: str) -> Response:
        """Spikes of each trial relative to its go cue (trialized as in spec §14.6 step 4)."""
        wanted = parse_trials(request)
        rows = fetch_arrays(
            models.Unit.objects.filter(pk=int(pk)), "spikes__spike_times", ("unit", "insertion_id")
        )
        if not rows:
            raise _unit_missing(int(pk), "spike times")
        alignment = list(
            models.InsertionTrialAlignment.objects.filter(insertion_id=rows[0].b)
            .order_by("start_time")
            .values_list("trial__trial", "start_time", "go_cue_time")
        )
        numbers = np.array([a[0] for a in alignment], dtype=np.int64)
        starts = np.array([a[1] for a in alignment], dtype=np.float64)
        go_cues = np.array([np.nan if a[2] is None else a[2] for a in alignment], dtype=np.float64)
        position = {int(n): i for i, n in enumerate(numbers)}
        if wanted is None:
            chosen = list(range(len(numbers)))
        else:
            missing = [n for n in wanted if n not in position]
            if missing:
                shown = ", ".join(map(str, missing[:20])) + (" …" if len(missing) > 20 else "")
                raise ValidationError(
                    {"trials": [f"Not aligned on this unit's insertion: {shown}."]}
                )
            chosen = [position[n] for n in wanted]

        spikes = parse_npy(rows[0].blob).array().astype(np.float64, copy=False)
        if spikes.size > 1 and not np.all(spikes[1:] >= spikes[:-1]):
            spikes = np.sort(spikes)
        aligned = align_spikes_to_trials(
            spikes, np.array([0, spikes.size]), starts, go_cues, validate=True
        )
        chosen_arr = np.asarray(chosen, dtype=np.int64)
        if request.accepted_renderer.format == "npz":
            times, _ = raster(aligned, 0, chosen_arr)
            counts = aligned.counts()[0][chosen_arr] if len(chosen) else np.zeros(0, np.int64)
            offsets = np.zeros(len(chosen) + 1, dtype=np.int64)
            np.cumsum(counts, out=offsets[1:])
            response = Response(
                npz_bytes(
                    [
                        ("trials.npy", [array_npy(numbers[chosen_arr])]),
                        ("go_cue_times.npy", [array_npy(go_cues[chosen_arr])]),
                        ("offsets.npy", [array_npy(offsets)]),
                        ("spike_times.npy", [array_npy(times.astype(np.float64))]),
                    ]
                )
            )
            response["Content-Disposition"] = f'attachment; filename="unit-{pk}-raster.npz"'
            return response
        return Response(
            {
                "unit": int(pk),
                "insertion": rows[0].b,
                "trials": [
                    {
                        "trial": int(numbers[i]),
                        "go_cue_time": None if np.isnan(go_cues[i]) else float(go_cues[i]),
                        "aligned_to_go": bool(aligned.aligned_to_go[i]),
                        "spike_times": aligned.spikes(0, i).tolist(),
                    }
                    for i in chosen
                ],
            }
        )


class _UnitChildViewSet(MapReadOnlyViewSet):
    api_tags = TAGS
    ordering = ("unit_id",)


class UnitStatViewSet(_UnitChildViewSet):
    """ISI violation and average firing rate of each unit, by unit id."""

    queryset = models.UnitStat.objects.select_related(*UNIT_REF).defer("unit__waveform")
    serializer_class = serializers.UnitStatSerializer
    filterset_class = filters.UnitStatFilter
    lookup_field = "unit"
    lookup_value_regex = r"\d+"
    ordering_fields = ("unit", "isi_violation", "avg_firing_rate")


class ClusterMetricViewSet(_UnitChildViewSet):
    """QC metrics of each unit's cluster (ecephys quality-metrics module), per epoch."""

    queryset = models.ClusterMetric.objects.select_related(*UNIT_REF).defer("unit__waveform")
    serializer_class = serializers.ClusterMetricSerializer
    filterset_class = filters.ClusterMetricFilter
    ordering_fields = ("id", "unit", "presence_ratio", "amplitude_cutoff", "isolation_distance")
    ordering = ("unit_id", "epoch_name_quality_metrics")


class WaveformMetricViewSet(_UnitChildViewSet):
    """Waveform metrics of each unit (ecephys mean-waveforms module), per epoch."""

    queryset = models.WaveformMetric.objects.select_related(*UNIT_REF).defer("unit__waveform")
    serializer_class = serializers.WaveformMetricSerializer
    filterset_class = filters.WaveformMetricFilter
    ordering_fields = ("id", "unit", "duration", "halfwidth")
    ordering = ("unit_id", "epoch_name_waveform_metrics")


class UnitNoteViewSet(_UnitChildViewSet):
    """Curation labels of units from the sorter's files (``cluster_<source>.tsv``)."""

    queryset = models.UnitNote.objects.select_related(*UNIT_REF, "quality").defer("unit__waveform")
    serializer_class = serializers.UnitNoteSerializer
    filterset_class = filters.UnitNoteFilter
    ordering_fields = ("id", "unit", "note_source")
    ordering = ("unit_id", "note_source")


class UnitNoiseLabelViewSet(_UnitChildViewSet):
    """Noise labels of units (noise-templates module), by unit id."""

    queryset = models.UnitNoiseLabel.objects.select_related(*UNIT_REF).defer("unit__waveform")
    serializer_class = serializers.UnitNoiseLabelSerializer
    filterset_class = filters.UnitNoiseLabelFilter
    lookup_field = "unit"
    lookup_value_regex = r"\d+"
    ordering_fields = ("unit", "noise")


class UnitCommentViewSet(MapModelViewSet):
    """Comments people make on units."""

    api_tags = TAGS
    queryset = models.UnitComment.objects.select_related(*UNIT_REF).defer("unit__waveform")
    serializer_class = serializers.UnitCommentSerializer
    filterset_class = filters.UnitCommentFilter
    ordering_fields = ("id", "unit")
    ordering = ("unit_id", "id")


# --- Archive and ingest bookkeeping --------------------------------------------------------------


class ArchivedClusteringViewSet(MapReadOnlyViewSet):
    """Clusterings replaced by a re-sort, with their unit counts (units: /api/archived-units/)."""

    api_tags = TAGS
    queryset = models.ArchivedClustering.objects.select_related(
        *INSERTION_REF, "clustering_method"
    ).annotate(unit_count=_count_of(models.ArchivedUnit, "clustering"))
    serializer_class = serializers.ArchivedClusteringSerializer
    filterset_class = filters.ArchivedClusteringFilter
    ordering_fields = ("id", "clustering_time", "archival_time")
    ordering = ("insertion_id", "clustering_time", "id")


class ArchivedUnitViewSet(MapReadOnlyViewSet):
    """Units of replaced clusterings, with their metrics as they were (arrays not served)."""

    api_tags = TAGS
    queryset = models.ArchivedUnit.objects.select_related(
        "clustering", "quality", "cell_type", "electrode__electrode"
    ).defer("spike_times", "spike_sites", "spike_depths", "waveform")
    serializer_class = serializers.ArchivedUnitSerializer
    filterset_class = filters.ArchivedUnitFilter
    ordering_fields = ("id", "unit", "unit_amp")
    ordering = ("clustering_id", "unit")


class EphysRecordingViewSet(MapReadOnlyViewSet):
    """Sorted ephys session folders found under the ephys data roots."""

    api_tags = TAGS
    queryset = models.EphysRecording.objects.all()
    serializer_class = serializers.EphysRecordingSerializer
    filterset_class = filters.EphysRecordingFilter
    ordering_fields = ("id", "h2o", "recording_time", "created_at")
    ordering = ("h2o", "relative_path")


class SortedOutputViewSet(MapReadOnlyViewSet):
    """Versions of each recording's files and what the ingest did with them."""

    api_tags = TAGS
    queryset = models.SortedOutput.objects.all()
    serializer_class = serializers.SortedOutputSerializer
    filterset_class = filters.SortedOutputFilter
    ordering_fields = ("id", "version", "ingested_at", "created_at")
    ordering = ("recording_id", "-version")


UnitQualityTypeViewSet = lookup_viewset(models.UnitQualityType, tag="ephys")
CellTypeViewSet = lookup_viewset(models.CellType, tag="ephys")
ClusteringMethodViewSet = lookup_viewset(models.ClusteringMethod, tag="ephys")
