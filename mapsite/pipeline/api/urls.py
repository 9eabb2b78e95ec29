"""Routes of the pipeline under /api/."""

from rest_framework.routers import BaseRouter

from . import views


def register(router: BaseRouter) -> None:
    router.register("pipeline-jobs", views.JobViewSet, basename="pipeline-job")
    router.register("pipeline-summary", views.PipelineSummaryViewSet, basename="pipeline-summary")
