"""Results that depend on what people type in are recomputed when they change it.

A location, a recordable region, depth criteria, an insertion quality or its good trials
entered (or changed, or deleted) after the analyses of the insertion were made would leave
those results stale. Each change forgets the jobs of the steps that read it (and of their
downstream steps), deletes their rows for that insertion, and queues the steps again once the
change commits (the sweep would find them too).

Bulk operations (``bulk_create``/``update``) send no signals: code that writes these tables in
bulk calls :func:`forget` itself.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction
from django.db.models.signals import post_delete, post_save

from ephys.models import (
    BrainAreaDepthCriteria,
    GoodTrial,
    InsertionLocation,
    ProbeInsertionQuality,
    RecordableBrainRegion,
)

from . import steps as ps
from .models import (
    DriftMetric,
    PeriodSelectivity,
    UnitCoarseBrainLocation,
    UnitPassingCriteria,
    UnitPsth,
    UnitSelectivity,
)

RESULTS = {
    ps.UNIT_PSTH: (UnitPsth,),
    ps.DRIFT_METRIC: (DriftMetric,),
    ps.UNIT_COARSE_BRAIN_LOCATION: (UnitCoarseBrainLocation,),
    ps.UNIT_PASSING_CRITERIA: (UnitPassingCriteria,),
    ps.PERIOD_SELECTIVITY: (PeriodSelectivity, UnitSelectivity),
}

#: model typed in by people -> (steps reading it, how to get the insertion id of a row)
READERS = {
    InsertionLocation: (
        (ps.PERIOD_SELECTIVITY, ps.UNIT_COARSE_BRAIN_LOCATION),
        lambda row: row.insertion_id,
    ),
    RecordableBrainRegion: ((ps.UNIT_PASSING_CRITERIA,), lambda row: row.insertion_id),
    BrainAreaDepthCriteria: ((ps.UNIT_COARSE_BRAIN_LOCATION,), lambda row: row.insertion_id),
    ProbeInsertionQuality: ((ps.UNIT_PSTH, ps.DRIFT_METRIC), lambda row: row.insertion_id),
    GoodTrial: ((ps.UNIT_PSTH, ps.DRIFT_METRIC), lambda row: row.quality_id),
}


def forget(step_names: Iterable[str], insertion_ids: Iterable[int]) -> None:
    """Forget the steps' jobs (and their downstream jobs) and results for these insertions,
    and queue them again when the current transaction commits."""
    from mapsite.pipeline import runner

    ids = sorted(set(insertion_ids))
    names = list(dict.fromkeys(step_names))
    if not ids or not names:
        return
    for name in names:
        runner.invalidate(name, ids)
        for model in RESULTS.get(name, ()):
            model.objects.filter(unit__insertion_id__in=ids).delete()
    transaction.on_commit(
        lambda: runner.queue_missing(
            [*names, *(d for n in names for d in downstream(n))], key_ids=ids
        ),
        robust=True,
    )


def downstream(name: str) -> list[str]:
    from mapsite.pipeline.steps import downstream_of

    out = []
    for step in downstream_of(name):
        out += [step.name, *downstream(step.name)]
    return out


def _changed(sender: type, instance: object, **kwargs: object) -> None:
    if kwargs.get("raw"):
        return  # loading fixtures
    steps, insertion_of = READERS[sender]
    forget(steps, [insertion_of(instance)])


def connect() -> None:
    for model in READERS:
        post_save.connect(_changed, sender=model, dispatch_uid=f"psth-{model.__name__}-save")
        post_delete.connect(_changed, sender=model, dispatch_uid=f"psth-{model.__name__}-delete")
