"""Routes of schema ``experiment`` under /api/ (kebab-case plural prefixes).

There is no separate behavior-trials endpoint: ``trials`` returns each trial with its behavior
labels and water-port choice in one row, which is what an analysis wants.
"""

from rest_framework.routers import BaseRouter

from . import views

ROUTES = [
    ("sessions", views.SessionViewSet, "session"),
    ("session-comments", views.SessionCommentViewSet, "sessioncomment"),
    ("session-details", views.SessionDetailsViewSet, "sessiondetails"),
    ("session-tasks", views.SessionTaskViewSet, "sessiontask"),
    ("session-trainings", views.SessionTrainingViewSet, "sessiontraining"),
    ("project-sessions", views.ProjectSessionViewSet, "projectsession"),
    ("behavior-files", views.BehaviorFileViewSet, "behaviorfile"),
    ("trials", views.TrialViewSet, "trial"),
    ("trial-notes", views.TrialNoteViewSet, "trialnote"),
    ("trial-events", views.TrialEventViewSet, "trialevent"),
    ("action-events", views.ActionEventViewSet, "actionevent"),
    ("mtl-blocks", views.MtlBlockViewSet, "mtlblock"),
    ("mtl-block-trials", views.MtlBlockTrialViewSet, "mtlblocktrial"),
    ("photostims", views.PhotostimViewSet, "photostim"),
    ("photostim-trials", views.PhotostimTrialViewSet, "photostimtrial"),
    ("photostim-events", views.PhotostimEventViewSet, "photostimevent"),
    # Lookups (read-only; addressed by name, task protocols by id)
    ("tasks", views.TaskViewSet, "task"),
    ("task-protocols", views.TaskProtocolViewSet, "taskprotocol"),
    ("training-types", views.TrainingTypeViewSet, "trainingtype"),
    ("projects", views.ProjectViewSet, "project"),
    ("trial-note-types", views.TrialNoteTypeViewSet, "trialnotetype"),
    ("trial-instructions", views.TrialInstructionViewSet, "trialinstruction"),
    ("outcomes", views.OutcomeViewSet, "outcome"),
    ("early-licks", views.EarlyLickViewSet, "earlylick"),
    ("water-ports", views.WaterPortViewSet, "waterport"),
    ("trial-event-types", views.TrialEventTypeViewSet, "trialeventtype"),
    ("action-event-types", views.ActionEventTypeViewSet, "actioneventtype"),
    ("periods", views.PeriodViewSet, "period"),
]


def register(router: BaseRouter) -> None:
    for prefix, viewset, basename in ROUTES:
        router.register(prefix, viewset, basename=f"experiment-{basename}")
