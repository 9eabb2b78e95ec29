"""Whitelisted filters of the pipeline's job table."""

from django_filters import rest_framework as filters

from mapsite.pipeline.models import Job, JobStatus


class JobFilter(filters.FilterSet):
    step = filters.CharFilter(help_text="Step name (e.g. PhotostimBrainRegion).")
    status = filters.MultipleChoiceFilter(
        choices=JobStatus.choices, help_text="Job status; repeat for several."
    )
    key_id = filters.NumberFilter()

    class Meta:
        model = Job
        fields = ["step", "status", "key_id"]
