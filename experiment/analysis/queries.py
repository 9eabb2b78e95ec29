"""Database side of the behavior summary and plots: aggregate queries, label arrays.

The summary counts are conditional ``Count``s over the trials, their behavior labels and
photostim marks, grouped by session: one query for a whole page of sessions
(:func:`attach_counts`), one for a single session (:func:`session_counts`). A separate query
keyed by the page's session ids, rather than an annotation of the session queryset: the session
filters ``task``, ``project`` and ``training_type`` join many-valued relations, which would
multiply the counts of a JOIN + GROUP BY, and a correlated subquery per session measured 3-15x
slower on PostgreSQL (150 sessions x 500 trials: 160 ms for a page of 100 against 0.5-2.6 s,
the planner re-scanning the behavior table per session).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from django.db.models import Count, Q

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

COUNTS_ATTRIBUTE = "behavior_counts"


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


def session_counts(session: models.Session) -> dict[str, int]:
    """The summary counts of one session: one aggregate query."""
    return models.SessionTrial.objects.filter(session=session).aggregate(**_count_expressions())


def attach_counts(sessions: Iterable[models.Session]) -> None:
    """Set ``behavior_counts`` on each session: one query for all of them (a list page)."""
    sessions = list(sessions)
    if not sessions:
        return
    rows = (
        models.SessionTrial.objects.filter(session_id__in=[s.pk for s in sessions])
        .order_by()
        .values("session_id")
        .annotate(**_count_expressions())
    )
    by_session = {row.pop("session_id"): row for row in rows}
    for session in sessions:
        setattr(session, COUNTS_ATTRIBUTE, by_session.get(session.pk, {}))


def summary_of(session: models.Session) -> dict[str, Any]:
    """The behavior summary of a session, from :func:`attach_counts` when it ran."""
    counts = getattr(session, COUNTS_ATTRIBUTE, None)
    if counts is None:
        counts = session_counts(session)
    return summary_from_counts(counts)


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
