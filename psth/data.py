"""From the database to the arrays of ``ephys.analysis``: one probe insertion at a time.

Everything a step needs about an insertion is read with a handful of queries (no query per
unit or per trial) and handed over as numpy arrays, in the order of the insertion's aligned
trials (``InsertionTrialAlignment`` by start time) and of the units' primary keys. What the
analysis layer expects (its author's notes) and how it is provided here:

* the last event of each type per trial (the original looked events up in a dict keyed by
  trial): events are read in ``trial_event_id`` order and later ones overwrite earlier ones;
  the first of each type is kept too (``first_events``): spikes are aligned to the *first* go
  cue of a trial (the ingest's alignment), so analysis windows "relative to the go cue" must
  subtract that one. A trial whose response cue was repeated (no answer, cue again) has a
  last go seconds after the first; windows taken from the last would fall before the trial's
  spikes (see ``period_events``);
* the good-trial mask: ``ProbeInsertionQuality.GoodTrial`` rows of the insertion, if it has
  any (an insertion without good trials listed uses all its trials);
* the first recordable brain region, in primary-key order (:func:`first_recordable_area`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from django.db import connection

from ephys.analysis import AlignedSpikes, TrialLabels, align_spikes_to_trials
from ephys.models import (
    GoodTrial,
    InsertionLocation,
    InsertionTrialAlignment,
    ProbeInsertion,
    RecordableBrainRegion,
    Unit,
    UnitSpikes,
)
from experiment.models import BehaviorTrial, PhotostimEvent, SessionTrial, TrialEvent
from mapsite.core.npy import npy_view

#: Event types every analysis here may look at (periods may name others: they are added).
EVENT_TYPES = ("sample", "delay", "go", "trialend")


@dataclass
class InsertionTrials:
    """The aligned trials of one insertion (arrays of one entry per trial, ephys order)."""

    trial_ids: np.ndarray  # SessionTrial pk
    trial_numbers: np.ndarray
    starts: np.ndarray  # s, on the clock of Unit.spike_times
    go_cues: np.ndarray  # s from the trial start; NaN: no go cue
    durations: np.ndarray  # SessionTrial stop - start, s
    labels: TrialLabels
    events: dict[str, np.ndarray]  # type -> last event time of each trial (s from start), NaN
    first_events: dict[str, np.ndarray]  # type -> first event time of each trial, NaN
    event_durations: dict[str, np.ndarray]
    good: np.ndarray  # bool; all True when the insertion lists no good trials
    has_good_trials: bool

    @property
    def n_trials(self) -> int:
        return len(self.trial_ids)

    @property
    def delay_duration(self) -> np.ndarray:
        return self.event_durations.get("delay", np.full(self.n_trials, np.nan))

    def period_events(self) -> dict[str, np.ndarray]:
        """Event times for analysis windows: the last of each type, except the go cue, which
        is the first (the one the spikes are aligned to)."""
        return {**self.events, "go": self.first_events["go"]}


def load_trials(
    insertion: ProbeInsertion, event_types: Iterable[str] = EVENT_TYPES
) -> InsertionTrials:
    """Trials, behavior labels, events, photostim events and good trials of an insertion."""
    rows = list(
        InsertionTrialAlignment.objects.filter(insertion=insertion)
        .order_by("start_time")
        .values_list("trial_id", "start_time", "go_cue_time")
    )
    trial_ids = np.array([r[0] for r in rows], dtype=np.int64)
    index = {int(t): i for i, t in enumerate(trial_ids)}
    n = len(rows)
    starts = np.array([r[1] for r in rows], dtype=np.float64)
    go = np.array([np.nan if r[2] is None else r[2] for r in rows], dtype=np.float64)
    session_id = insertion.session_id

    numbers = np.zeros(n, dtype=np.int64)
    durations = np.full(n, np.nan)
    for pk, number, start, stop in SessionTrial.objects.filter(session_id=session_id).values_list(
        "pk", "trial", "start_time", "stop_time"
    ):
        i = index.get(pk)
        if i is not None:
            numbers[i] = number
            durations[i] = stop - start

    task = np.full(n, None, dtype=object)
    protocol = np.full(n, None, dtype=object)
    instruction = np.full(n, None, dtype=object)
    outcome = np.full(n, None, dtype=object)
    early = np.full(n, None, dtype=object)
    auto_water = np.full(n, -1, dtype=np.int64)  # -1: no behavior row (matches nothing)
    free_water = np.full(n, -1, dtype=np.int64)
    for row in BehaviorTrial.objects.filter(trial__session_id=session_id).values_list(
        "trial_id",
        "task_protocol__task__name",
        "task_protocol__protocol",
        "instruction__name",
        "outcome__name",
        "early_lick__name",
        "auto_water",
        "free_water",
    ):
        i = index.get(row[0])
        if i is None:
            continue
        task[i], protocol[i], instruction[i], outcome[i], early[i] = row[1:6]
        auto_water[i], free_water[i] = int(row[6]), int(row[7])

    types = tuple(dict.fromkeys([*EVENT_TYPES, *event_types]))
    events = {t: np.full(n, np.nan) for t in types}
    first_events = {t: np.full(n, np.nan) for t in types}
    event_durations = {t: np.full(n, np.nan) for t in types}
    for trial_id, etype, time, duration in (
        TrialEvent.objects.filter(trial__trial__session_id=session_id, event_type__name__in=types)
        .order_by("trial_event_id")
        .values_list("trial_id", "event_type__name", "trial_event_time", "duration")
    ):
        i = index.get(trial_id)
        if i is not None:  # the last event of a type wins
            events[etype][i] = time
            event_durations[etype][i] = duration
            if np.isnan(first_events[etype][i]):
                first_events[etype][i] = time

    stim_trial, stim_area, stim_side = [], [], []
    for trial_id, area, side in (
        PhotostimEvent.objects.filter(photostim_trial__trial__session_id=session_id)
        .order_by("pk")
        .values_list(
            "photostim_trial__trial_id",
            "photostim__brain_region__stim_brain_area__name",
            "photostim__brain_region__stim_laterality",
        )
    ):
        i = index.get(trial_id)
        if i is not None:
            stim_trial.append(i)
            stim_area.append(area)
            stim_side.append(side)

    labels = TrialLabels(
        task=task,
        task_protocol=protocol,
        trial_instruction=instruction,
        outcome=outcome,
        early_lick=early,
        auto_water=auto_water,
        free_water=free_water,
        stim_event_trial=np.array(stim_trial, dtype=np.int64),
        stim_event_brain_area=np.array(stim_area, dtype=object),
        stim_event_laterality=np.array(stim_side, dtype=object),
    )
    good_ids = list(
        GoodTrial.objects.filter(quality__insertion=insertion).values_list("trial_id", flat=True)
    )
    if good_ids:
        good = np.zeros(n, dtype=bool)
        for t in good_ids:
            if t in index:
                good[index[t]] = True
    else:
        good = np.ones(n, dtype=bool)
    return InsertionTrials(
        trial_ids=trial_ids,
        trial_numbers=numbers,
        starts=starts,
        go_cues=go,
        durations=durations,
        labels=labels,
        events=events,
        first_events=first_events,
        event_durations=event_durations,
        good=good,
        has_good_trials=bool(good_ids),
    )


def analysed_units(insertion: ProbeInsertion) -> list[int]:
    """Primary keys of the units the §8 analyses cover: quality other than "all"."""
    return list(
        Unit.objects.filter(insertion=insertion)
        .exclude(quality__name="all")
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def _spike_payloads(unit_ids: Sequence[int]) -> dict[int, bytes | memoryview]:
    """Each unit's stored ``spike_times`` bytes, in one query.

    On PostgreSQL the rows come through ``COPY ... TO STDOUT (FORMAT BINARY)``: bytea as it is
    stored, not hex text to decode (a 10 M-spike insertion is 80 MB).
    """
    ids = [int(u) for u in unit_ids]
    if connection.vendor != "postgresql":
        return dict(
            UnitSpikes.objects.filter(unit_id__in=ids).values_list("unit_id", "spike_times")
        )
    table = connection.ops.quote_name(UnitSpikes._meta.db_table)
    sql = (
        f"COPY (SELECT unit_id, spike_times FROM {table} WHERE unit_id = ANY(%s)) "  # noqa: S608
        "TO STDOUT (FORMAT BINARY)"
    )
    with (
        connection.cursor() as cursor,
        connection.wrap_database_errors,
        cursor.cursor.copy(sql, [ids]) as copy,
    ):
        copy.set_types(["int8", "bytea"])
        return dict(copy.rows())


def load_spike_trains(unit_ids: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """CSR ``(spike_times, offsets)`` of the units, in the given order (one query)."""
    payloads = _spike_payloads(unit_ids)
    trains = [npy_view(payloads[u]) if u in payloads else np.zeros(0) for u in unit_ids]
    lengths = np.fromiter((len(t) for t in trains), dtype=np.int64, count=len(trains))
    offsets = np.zeros(len(trains) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    times = np.empty(int(offsets[-1]), dtype=np.float64)
    for u, train in enumerate(trains):
        a, b = offsets[u], offsets[u + 1]
        times[a:b] = train
        # the ingest stores each train sorted; sort only a train that is not
        if b - a > 1 and np.any(times[a + 1 : b] < times[a : b - 1]):
            times[a:b] = np.sort(times[a:b])
    return times, offsets


def write_rows(model: type, columns: Sequence[str], types: Sequence[str], rows: list) -> None:
    """Insert many rows of ``model``: ``COPY ... (FORMAT BINARY)`` on PostgreSQL (thousands of
    PSTH rows in a few tens of ms), ``bulk_create`` elsewhere.

    ``columns`` are attnames (``unit_id``), ``types`` their PostgreSQL types, ``rows`` tuples.
    """
    if not rows:
        return
    if connection.vendor != "postgresql":
        model.objects.bulk_create(
            [model(**dict(zip(columns, row, strict=True))) for row in rows], batch_size=2000
        )
        return
    table = connection.ops.quote_name(model._meta.db_table)
    names = ", ".join(connection.ops.quote_name(c) for c in columns)
    sql = f"COPY {table} ({names}) FROM STDIN (FORMAT BINARY)"
    with (
        connection.cursor() as cursor,
        connection.wrap_database_errors,
        cursor.cursor.copy(sql) as copy,
    ):
        copy.set_types(list(types))
        for row in rows:
            copy.write_row(row)


def load_aligned(unit_ids: Sequence[int], trials: InsertionTrials) -> AlignedSpikes:
    """The units' spikes cut into the insertion's trials and aligned to the go cue."""
    times, offsets = load_spike_trains(unit_ids)
    return align_spikes_to_trials(times, offsets, trials.starts, trials.go_cues, validate=False)


def hemisphere_of(insertion: ProbeInsertion) -> str | None:
    """left / right from the insertion's ML coordinate; None without a location or at ML 0."""
    ml = (
        InsertionLocation.objects.filter(insertion=insertion)
        .values_list("ml_location", flat=True)
        .first()
    )
    if ml is None or not math.isfinite(float(ml)) or float(ml) == 0:
        return None
    return "right" if float(ml) > 0 else "left"


def first_recordable_area(insertion: ProbeInsertion) -> str | None:
    """The insertion's first RecordableBrainRegion (primary-key order) decides (§4.6)."""
    return (
        RecordableBrainRegion.objects.filter(insertion=insertion)
        .order_by("pk")
        .values_list("brain_area__name", flat=True)
        .first()
    )
