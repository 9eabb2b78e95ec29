"""Serializers of the pipeline's job table and per-step summary."""

from rest_framework import serializers

from mapsite.core.api import ReadOnlyModelSerializer
from mapsite.pipeline.models import Job


class JobSerializer(ReadOnlyModelSerializer):
    class Meta:
        model = Job
        fields = [
            "id",
            "step",
            "key_id",
            "key_label",
            "status",
            "attempts",
            "message",
            "traceback",
            "worker_host",
            "created_at",
            "queued_at",
            "started_at",
            "finished_at",
            "duration",
        ]


class StepSummarySerializer(serializers.Serializer):
    """One pipeline step: how many of its keys are in each state, and how many are not queued."""

    step = serializers.CharField()
    description = serializers.CharField(allow_blank=True)
    queue = serializers.CharField()
    depends_on = serializers.CharField(allow_blank=True, help_text="comma-separated step names")
    missing = serializers.IntegerField(help_text="keys of the key source with no job yet")
    pending = serializers.IntegerField()
    running = serializers.IntegerField()
    done = serializers.IntegerField()
    waiting = serializers.IntegerField(help_text="waiting for a prerequisite")
    error = serializers.IntegerField()
