"""Database side of the behavior summary and plots: aggregate queries, label arrays.

The summary counts of a session are one correlated subquery (``behavior_counts``) that returns
every count as one JSON object. Annotated onto a session queryset, PostgreSQL evaluates it for
the rows of the page only, and it cannot be inflated by the joins of the session filters
(``task``, ``project`` and ``training_type`` join many-valued relations), which a JOIN +
GROUP BY over the trial table would be.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from django.db.models import Count, JSONField, OuterRef, Q, Subquery
from django.db.models.expressions import BaseExpression
from django.db.models.functions import JSONObject

from experiment import models

from .behavior import (
    HIT,
    INSTRUCTIONS,
    MISS,
    NO_EARLY_LICK,
    OUTCOMES,
    SessionLabels,
    summary_from_counts,
)

COUNTS_ANNOTATION = "behavior_counts"


def _count_expressions() -> dict[str, Count]:
    has_behavior = Q(behavior__isnull=False)
    not_free = Q(behavior__free_water=False)
    counts: dict[str, Count] = {
        "trials": Count("pk"),
        "behavior_trials": Count("behavior"),
        "early_lick": Count(
            "pk", filter=has_behavior & ~Q(behavior__early_lick__name=NO_EARLY_LICK)
        ),
        "auto_water": Count("pk", filter=Q(behavior__auto_water=True)),
        "free_water": Count("pk", filter=Q(behavior__free_water=True)),
        "photostim": Count("photostim_trial"),
    }
    for outcome in OUTCOMES:
        counts[f"outcome:{outcome}"] = Count("pk", filter=Q(behavior__outcome__name=outcome))
    for instruction in INSTRUCTIONS:
        is_instruction = Q(behavior__instruction__name=instruction)
        counts[f"instruction:{instruction}"] = Count("pk", filter=is_instruction)
        for outcome in (HIT, MISS):
            counts[f"{outcome}:{instruction}"] = Count(
                "pk", filter=is_instruction & Q(behavior__outcome__name=outcome) & not_free
            )
    return counts


def behavior_counts(session: Any = None) -> BaseExpression:
    """All summary counts of a session as one JSON object (``None`` for a session without
    trials); ``session`` defaults to ``OuterRef("pk")`` for annotating a Session queryset."""
    session = OuterRef("pk") if session is None else session
    per_session = (
        models.SessionTrial.objects.filter(session=session)
        .order_by()
        .values("session")
        .annotate(counts=JSONObject(**_count_expressions()))
        .values("counts")
    )
    return Subquery(per_session, output_field=JSONField())


def with_behavior_counts(queryset: Any) -> Any:
    """A Session queryset annotated with ``behavior_counts`` (see :func:`summary_of`)."""
    return queryset.annotate(**{COUNTS_ANNOTATION: behavior_counts()})


def session_counts(session: models.Session) -> dict[str, int]:
    """The summary counts of one session: one aggregate query."""
    return models.SessionTrial.objects.filter(session=session).aggregate(**_count_expressions())


def summary_of(session: models.Session) -> dict[str, Any]:
    """The behavior summary of a session, from its annotation when there is one."""
    if hasattr(session, COUNTS_ANNOTATION):
        return summary_from_counts(getattr(session, COUNTS_ANNOTATION))
    return summary_from_counts(session_counts(session))


def stim_group_label(photo_stim: int, area: str | None, laterality: str | None) -> str:
    """``left ALM`` when the stimulated region is known (computed step), else the protocol."""
    if area:
        return f"{laterality} {area}" if laterality else area
    return f"protocol {photo_stim}"


def session_labels(session: models.Session) -> SessionLabels:
    """Labels of the session's behavior trials: one query, two when there is photostimulation."""
    rows = list(
        models.SessionTrial.objects.filter(session=session, behavior__isnull=False)
        .order_by("trial")
        .values_list(
            "trial",
            "behavior__outcome__name",
            "behavior__instruction__name",
            "behavior__early_lick__name",
            "behavior__free_water",
            "photostim_trial",
        )
    )
    rows = [(*r[:5], r[5] is not None) for r in rows]
    groups: dict[str, set[int]] = defaultdict(set)
    if any(r[5] for r in rows):
        events = (
            models.PhotostimEvent.objects.filter(photostim_trial__trial__session=session)
            .order_by()
            .values_list(
                "photostim_trial__trial__trial",
                "photostim__photo_stim",
                "photostim__brain_region__stim_brain_area__name",
                "photostim__brain_region__stim_laterality",
            )
            .distinct()
        )
        for trial, photo_stim, area, laterality in events:
            groups[stim_group_label(photo_stim, area, laterality)].add(trial)
    return SessionLabels.from_rows(rows, groups)
