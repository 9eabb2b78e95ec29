"""Viewsets of schema ``experiment``.

Sessions, trials, events and photostimulation are written by ingest and read-only here; the
session-level tables people fill in (comments, details, tasks, training, projects) are writable
by staff. Every queryset loads its related rows up front, so a page costs the same number of
queries at any page size.
"""

from typing import Any

from django.db.models import Prefetch
from django.http import HttpResponse, HttpResponseBase
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from experiment import models
from experiment.analysis import plots as behavior_plots
from experiment.analysis import queries as behavior_queries
from mapsite.core.api import MapModelViewSet, MapReadOnlyViewSet, lookup_viewset
from mapsite.core.plots import FIGURE_RENDERERS

from . import filters, serializers

TAGS = ("experiment",)
# What a session-level row shows of its session: subject id, water-restriction number, number.
SESSION_REF = ("session__subject__water_restriction",)
# Events and notes show session, subject and trial number (no water-restriction join: big tables).
EVENT_REF = ("trial__trial__session__subject",)


class SessionViewSet(MapReadOnlyViewSet):
    """Behavior sessions (written by the behavior ingest), each with its behavior summary.

    Filter by subject id, water-restriction number, date range (``date_after``/``date_before``,
    lab time zone), rig, task, project, training type or username. ``behavior_summary`` (trial
    counts per outcome and instruction, early licks, performance) comes from one aggregate
    query for the whole page.
    """

    api_tags = TAGS
    queryset = models.Session.objects.select_related(
        "subject__water_restriction", "username", "rig", "details"
    ).prefetch_related(
        "projects",
        Prefetch("comments", queryset=models.SessionComment.objects.order_by("id")),
        Prefetch(
            "tasks",
            queryset=models.SessionTask.objects.select_related("task_protocol__task").order_by(
                "task_protocol__task__name", "task_protocol__protocol"
            ),
        ),
        Prefetch(
            "trainings",
            queryset=models.SessionTraining.objects.select_related("training_type").order_by(
                "training_type__name"
            ),
        ),
    )
    serializer_class = serializers.SessionSerializer
    filterset_class = filters.SessionFilter
    ordering_fields = ("start_time", "session", "subject__subject_id", "id")
    ordering = ("subject__subject_id", "session")

    def paginate_queryset(self, queryset: Any) -> list[models.Session] | None:
        page = super().paginate_queryset(queryset)
        if page is not None:
            behavior_queries.attach_counts(page)  # one query for the page's summaries
        return page

    def _session(self) -> models.Session:
        """The session of a detail action, without the list's prefetches."""
        queryset = models.Session.objects.select_related("subject__water_restriction")
        session = get_object_or_404(queryset, pk=self.kwargs["pk"])
        self.check_object_permissions(self.request, session)
        return session

    @extend_schema(responses=serializers.BehaviorSummarySerializer)
    @action(
        detail=True,
        url_path="behavior-summary",
        filter_backends=[],
        pagination_class=None,
        serializer_class=serializers.BehaviorSummarySerializer,
    )
    def behavior_summary(self, request: Request, pk: str | None = None) -> Response:
        """The behavior summary of one session (the ``behavior_summary`` of its row)."""
        summary = behavior_queries.summary_of(self._session())
        return Response(serializers.BehaviorSummarySerializer(summary).data)

    @extend_schema(
        responses={
            (200, "image/png"): OpenApiTypes.BINARY,
            (200, "image/svg+xml"): OpenApiTypes.STR,
            304: OpenApiResponse(description="Not modified (If-None-Match matched the ETag)."),
            404: OpenApiResponse(
                description="No such session, or it has no behavior trials (JSON detail)."
            ),
        },
    )
    @action(
        detail=True,
        url_path="performance-plot",
        renderer_classes=FIGURE_RENDERERS,
        filter_backends=[],
        pagination_class=None,
    )
    def performance_plot(
        self, request: Request, pk: str | None = None, format: str | None = None
    ) -> HttpResponseBase:
        """Behavior performance figure (800 × 500 px): moving-average proportion correct over
        trials with early-lick trials marked, and, for sessions with photostimulation, the
        fraction hit of control vs stimulated left/right trials without early lick.

        ``/api/sessions/{id}/performance-plot.png`` or ``.svg`` (or ``?format=png|svg``, or
        ``Accept: image/svg+xml``). Rendered once per version of the session's labels, then
        served from the cache; the ETag changes when the labels do.
        """
        session = self._session()
        fmt = request.accepted_renderer.format
        try:
            data = behavior_plots.plot_input(session)
        except behavior_plots.NoBehaviorTrials as exc:
            raise NotFound(str(exc))
        etag = f'"{data.version()}-{fmt}"'
        headers = {"ETag": etag, "Cache-Control": "private, no-cache"}
        if etag in request.headers.get("If-None-Match", ""):
            return HttpResponse(status=304, headers=headers)
        figure = behavior_plots.cached_performance_plot(data, fmt)
        headers["Content-Disposition"] = (
            f'inline; filename="{behavior_plots.file_stem(session)}_behavior_performance.{fmt}"'
        )
        return Response(figure, headers=headers)

    def finalize_response(
        self, request: Request, response: HttpResponseBase, *args: Any, **kwargs: Any
    ) -> HttpResponseBase:
        response = super().finalize_response(request, response, *args, **kwargs)
        # Errors of the figure endpoint (401, 404, 406, throttling) are JSON, not images.
        if getattr(response, "exception", False) and isinstance(
            getattr(response, "accepted_renderer", None), FIGURE_RENDERERS
        ):
            response.accepted_renderer = JSONRenderer()
            response.accepted_media_type = JSONRenderer.media_type
        return response


class SessionCommentViewSet(MapModelViewSet):
    """Free-text comments on sessions."""

    api_tags = TAGS
    queryset = models.SessionComment.objects.select_related(*SESSION_REF)
    serializer_class = serializers.SessionCommentSerializer
    filterset_class = filters.SessionCommentFilter
    ordering_fields = ("id", "session__start_time")
    ordering = ("session__subject__subject_id", "session__session", "id")


class SessionDetailsViewSet(MapModelViewSet):
    """Weight and water of each session, by session id (``/api/session-details/{session}/``)."""

    api_tags = TAGS
    queryset = models.SessionDetails.objects.select_related(*SESSION_REF)
    serializer_class = serializers.SessionDetailsSerializer
    filterset_class = filters.SessionDetailsFilter
    lookup_field = "session"
    lookup_value_regex = r"\d+"
    ordering_fields = ("session__start_time", "session_weight")
    ordering = ("session__subject__subject_id", "session__session")


class SessionTaskViewSet(MapModelViewSet):
    """Task and protocol of each session; written as ``{"task": "audio delay", "protocol": 1}``."""

    api_tags = TAGS
    queryset = models.SessionTask.objects.select_related(*SESSION_REF, "task_protocol__task")
    serializer_class = serializers.SessionTaskSerializer
    filterset_class = filters.SessionTaskFilter
    ordering_fields = ("id", "session__start_time")
    ordering = ("session__subject__subject_id", "session__session", "id")


class SessionTrainingViewSet(MapModelViewSet):
    """Training type of each session."""

    api_tags = TAGS
    queryset = models.SessionTraining.objects.select_related(*SESSION_REF, "training_type")
    serializer_class = serializers.SessionTrainingSerializer
    filterset_class = filters.SessionTrainingFilter
    ordering_fields = ("id", "session__start_time")
    ordering = ("session__subject__subject_id", "session__session", "id")


class ProjectSessionViewSet(MapModelViewSet):
    """Which sessions belong to which project."""

    api_tags = TAGS
    queryset = models.ProjectSession.objects.select_related(*SESSION_REF, "project")
    serializer_class = serializers.ProjectSessionSerializer
    filterset_class = filters.ProjectSessionFilter
    ordering_fields = ("id", "session__start_time")
    ordering = ("project__name", "session__subject__subject_id", "session__session")


class BehaviorFileViewSet(MapReadOnlyViewSet):
    """Bpod files found under the behavior data roots, and whether/when they were ingested."""

    api_tags = TAGS
    queryset = models.BehaviorFile.objects.select_related("rig")
    serializer_class = serializers.BehaviorFileSerializer
    filterset_class = filters.BehaviorFileFilter
    ordering_fields = ("mtime", "file_name", "ingested_at", "id")
    ordering = ("-mtime", "-id")


class TrialViewSet(MapReadOnlyViewSet):
    """Trials with their behavior labels: one row per trial, ready for a data frame.

    Filter by session, subject, water-restriction number, outcome, instruction, early lick
    (each repeatable: ``?outcome=hit&outcome=miss``), auto/free water, photostim.
    """

    api_tags = TAGS
    queryset = models.SessionTrial.objects.select_related(
        "session__subject",
        "behavior__task_protocol__task",
        "behavior__instruction",
        "behavior__early_lick",
        "behavior__outcome",
        "behavior__water_port_choice__water_port",
        "photostim_trial",
    )
    serializer_class = serializers.TrialSerializer
    filterset_class = filters.TrialFilter
    ordering_fields = ("trial", "start_time", "session__start_time", "id")
    ordering = ("session_id", "trial")


class TrialNoteViewSet(MapReadOnlyViewSet):
    """Notes on trials (autolearn, protocol #, bitcode, …)."""

    api_tags = TAGS
    queryset = models.TrialNote.objects.select_related("trial__session__subject", "note_type")
    serializer_class = serializers.TrialNoteSerializer
    filterset_class = filters.TrialNoteFilter
    ordering_fields = ("id", "trial__trial")
    ordering = ("trial__session_id", "trial__trial", "note_type__name")


class TrialEventViewSet(MapReadOnlyViewSet):
    """Trial events (go cue, sample, delay, …); times in s from the trial start."""

    api_tags = TAGS
    queryset = models.TrialEvent.objects.select_related(*EVENT_REF, "event_type")
    serializer_class = serializers.TrialEventSerializer
    filterset_class = filters.TrialEventFilter
    ordering_fields = ("trial_event_id", "trial_event_time", "trial__trial__trial", "id")
    ordering = ("trial_id", "trial_event_id")


class ActionEventViewSet(MapReadOnlyViewSet):
    """Licks; times in s from the trial start."""

    api_tags = TAGS
    queryset = models.ActionEvent.objects.select_related(*EVENT_REF, "action_type")
    serializer_class = serializers.ActionEventSerializer
    filterset_class = filters.ActionEventFilter
    ordering_fields = ("action_event_id", "action_event_time", "trial__trial__trial", "id")
    ordering = ("trial_id", "action_event_id")


class MtlBlockViewSet(MapReadOnlyViewSet):
    """Multi-target-licking blocks with their water-port position."""

    api_tags = TAGS
    queryset = models.MultiTargetLickingBlock.objects.select_related(
        *SESSION_REF, "water_port__water_port"
    )
    serializer_class = serializers.MtlBlockSerializer
    filterset_class = filters.MtlBlockFilter
    ordering_fields = ("block", "block_start_time", "id")
    ordering = ("session_id", "block")


class MtlBlockTrialViewSet(MapReadOnlyViewSet):
    """Which behavior trial is which trial of which multi-target-licking block."""

    api_tags = TAGS
    queryset = models.MultiTargetLickingBlockTrial.objects.select_related(
        "block__session__subject", "trial__trial"
    )
    serializer_class = serializers.MtlBlockTrialSerializer
    filterset_class = filters.MtlBlockTrialFilter
    ordering_fields = ("block_trial_number", "id")
    ordering = ("block_id", "block_trial_number")


class PhotostimViewSet(MapReadOnlyViewSet):
    """Photostimulation protocols of sessions, with locations and the stimulated region."""

    api_tags = TAGS
    queryset = (
        models.Photostim.objects.select_related(
            *SESSION_REF, "device", "brain_region__stim_brain_area"
        )
        .prefetch_related(
            Prefetch(
                "locations",
                queryset=models.PhotostimLocation.objects.select_related(
                    "skull_reference", "brain_area"
                ).order_by("id"),
            )
        )
        .defer("waveform")
    )
    serializer_class = serializers.PhotostimSerializer
    filterset_class = filters.PhotostimFilter
    ordering_fields = ("photo_stim", "id")
    ordering = ("session_id", "photo_stim")


class PhotostimTrialViewSet(MapReadOnlyViewSet):
    """Photostimulation trials (id = the trial's id), with their photostim events."""

    api_tags = TAGS
    queryset = models.PhotostimTrial.objects.select_related(
        "trial__session__subject"
    ).prefetch_related(
        Prefetch(
            "events",
            queryset=models.PhotostimEvent.objects.select_related("photostim")
            .defer("photostim__waveform")
            .order_by("photostim_event_id"),
        )
    )
    serializer_class = serializers.PhotostimTrialSerializer
    lookup_field = "trial"
    lookup_value_regex = r"\d+"
    filterset_class = filters.PhotostimTrialFilter
    ordering_fields = ("trial__trial",)
    ordering = ("trial__session_id", "trial__trial")


class PhotostimEventViewSet(MapReadOnlyViewSet):
    """Photostimulation events; times in s from the trial start, power in mW."""

    api_tags = TAGS
    queryset = models.PhotostimEvent.objects.select_related(
        "photostim_trial__trial__session__subject", "photostim"
    ).defer("photostim__waveform")
    serializer_class = serializers.PhotostimEventSerializer
    filterset_class = filters.PhotostimEventFilter
    ordering_fields = ("photostim_event_id", "photostim_event_time", "id")
    ordering = ("photostim_trial_id", "photostim_event_id")


class TaskProtocolViewSet(MapReadOnlyViewSet):
    """Protocols of each task (a lookup table)."""

    api_tags = TAGS
    queryset = models.TaskProtocol.objects.select_related("task")
    serializer_class = serializers.TaskProtocolSerializer
    filterset_class = filters.TaskProtocolFilter
    ordering_fields = ("protocol", "id")
    ordering = ("task__name", "protocol")


TaskViewSet = lookup_viewset(models.Task)
TrainingTypeViewSet = lookup_viewset(models.TrainingType)
ProjectViewSet = lookup_viewset(models.Project, serializers.ProjectSerializer)
TrialNoteTypeViewSet = lookup_viewset(models.TrialNoteType)
TrialInstructionViewSet = lookup_viewset(models.TrialInstruction)
OutcomeViewSet = lookup_viewset(models.Outcome)
EarlyLickViewSet = lookup_viewset(models.EarlyLick)
WaterPortViewSet = lookup_viewset(models.WaterPort)
TrialEventTypeViewSet = lookup_viewset(models.TrialEventType)
ActionEventTypeViewSet = lookup_viewset(models.ActionEventType)
PeriodViewSet = lookup_viewset(
    models.Period,
    serializers.PeriodSerializer,
    select_related=("start_event_type", "end_event_type"),
)
