"""Pipeline monitoring over the API: the job table (read-only) and a per-step summary."""

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from mapsite.core.api import MapReadOnlyViewSet, MapViewSet
from mapsite.pipeline import runner
from mapsite.pipeline.models import Job

from . import filters, serializers

TAGS = ("pipeline",)


class JobViewSet(MapReadOnlyViewSet):
    """Pipeline jobs: one per (step, key). Filter by ``step`` and ``status`` (repeatable)."""

    api_tags = TAGS
    queryset = Job.objects.all()
    serializer_class = serializers.JobSerializer
    filterset_class = filters.JobFilter
    ordering_fields = ("created_at", "started_at", "finished_at", "duration", "attempts", "id")
    ordering = ("-created_at", "-id")


class PipelineSummaryViewSet(MapViewSet):
    """Per step, in dependency order: keys done / pending / running / waiting / error / missing."""

    api_tags = TAGS

    @extend_schema(responses=serializers.StepSummarySerializer(many=True))
    def list(self, request: Request) -> Response:
        rows = runner.summary()
        return Response(serializers.StepSummarySerializer(rows, many=True).data)
