"""Routes of the analyses under /api/ (kebab-case plural prefixes)."""

from rest_framework.routers import BaseRouter

from . import views

ROUTES = [
    ("unit-analyses", views.UnitAnalysisViewSet, "unitanalysis"),
    ("unit-psths", views.UnitPsthViewSet, "unitpsth"),
    ("insertion-analyses", views.InsertionAnalysisViewSet, "insertionanalysis"),
    ("trial-conditions", views.TrialConditionViewSet, "trialcondition"),
    ("selectivities", views.SelectivityViewSet, "selectivity"),
]


def register(router: BaseRouter) -> None:
    for prefix, viewset, basename in ROUTES:
        router.register(prefix, viewset, basename=f"psth-{basename}")
