"""Routes of schema ``ephys`` under /api/ (kebab-case plural prefixes).

Probe types, probes and electrode geometry are served by the lab app (``probe-types``,
``probes``, ``probe-type-electrodes?probe_type=...``, ``electrode-configs``).
"""

from rest_framework.routers import BaseRouter

from . import views

ROUTES = [
    ("insertions", views.ProbeInsertionViewSet, "insertion"),
    ("insertion-locations", views.InsertionLocationViewSet, "insertionlocation"),
    ("recordable-brain-regions", views.RecordableBrainRegionViewSet, "recordablebrainregion"),
    ("insertion-notes", views.InsertionNoteViewSet, "insertionnote"),
    ("insertion-qualities", views.ProbeInsertionQualityViewSet, "insertionquality"),
    ("insertion-good-periods", views.GoodPeriodViewSet, "goodperiod"),
    ("insertion-good-trials", views.GoodTrialViewSet, "goodtrial"),
    ("brain-area-depth-criteria", views.BrainAreaDepthCriteriaViewSet, "depthcriteria"),
    ("insertion-trial-alignments", views.InsertionTrialAlignmentViewSet, "trialalignment"),
    ("clustering-labels", views.ClusteringLabelViewSet, "clusteringlabel"),
    ("units", views.UnitViewSet, "unit"),
    ("unit-stats", views.UnitStatViewSet, "unitstat"),
    ("cluster-metrics", views.ClusterMetricViewSet, "clustermetric"),
    ("waveform-metrics", views.WaveformMetricViewSet, "waveformmetric"),
    ("unit-notes", views.UnitNoteViewSet, "unitnote"),
    ("unit-noise-labels", views.UnitNoiseLabelViewSet, "unitnoiselabel"),
    ("unit-comments", views.UnitCommentViewSet, "unitcomment"),
    ("archived-clusterings", views.ArchivedClusteringViewSet, "archivedclustering"),
    ("archived-units", views.ArchivedUnitViewSet, "archivedunit"),
    ("ephys-recordings", views.EphysRecordingViewSet, "ephysrecording"),
    ("sorted-outputs", views.SortedOutputViewSet, "sortedoutput"),
    # Lookups (read-only, addressed by name)
    ("unit-quality-types", views.UnitQualityTypeViewSet, "unitqualitytype"),
    ("cell-types", views.CellTypeViewSet, "celltype"),
    ("clustering-methods", views.ClusteringMethodViewSet, "clusteringmethod"),
]


def register(router: BaseRouter) -> None:
    for prefix, viewset, basename in ROUTES:
        router.register(prefix, viewset, basename=f"ephys-{basename}")
