"""Behavior summary and performance numerics of one session: pure functions, no Django, no DB.

Definitions (the choices the original left open are made here, once, for the API, the admin and
the plots alike):

- **Performance** = hits / (hits + misses) over the session's behavior trials that are not
  free-water trials. Ignore and N/A trials carry no left/right decision and are left out of
  both numerator and denominator; free-water trials ("empty" trials with water and no go cue,
  §3.2) are not a test of the task either. ``None`` when there is no hit and no miss.
- **Early-lick trials**: any early-lick label other than ``no early`` (``early`` and
  ``early, presample only``); the rate is over behavior trials.
- **Moving-average correct proportion** (§12, §15): the hit indicator (1 hit, 0 miss) of the
  trials that count for performance, in trial order, averaged over a centred window of
  ``max(1, round(10 % of those trials))`` trials. At the ends of the session the window is
  truncated and the mean is over the trials it holds (the original's zero-padded
  ``convolve(mode="same")`` pulled both ends towards 0).
- **Photostim effect** (§12, §15): for left and right trials with no early lick (free-water
  trials left out), the fraction of hits among control trials (no photostimulation) and among
  the trials of each stimulation group, as in the original: ignore trials count as "not hit"
  here, because not responding is one of the effects of photo-inactivation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

HIT, MISS, IGNORE, NA = "hit", "miss", "ignore", "N/A"
OUTCOMES = (HIT, MISS, IGNORE, NA)
INSTRUCTIONS = ("left", "right", "middle", "none")
NO_EARLY_LICK = "no early"
EFFECT_INSTRUCTIONS = ("left", "right")
CONTROL = "control"
WINDOW_FRACTION = 0.1


# --- Summary -----------------------------------------------------------------------------------


def performance(hits: int, misses: int) -> float | None:
    """hits / (hits + misses); ``None`` when the session has neither."""
    decided = hits + misses
    return hits / decided if decided else None


def summary_from_counts(counts: Mapping[str, int] | None) -> dict[str, Any]:
    """The per-session summary from flat counts (what one aggregate query returns).

    ``counts`` keys: ``trials``, ``behavior_trials``, ``early_lick``, ``auto_water``,
    ``free_water``, ``photostim``, ``outcome:<name>``, ``instruction:<name>`` and, for
    performance (free-water trials excluded), ``hit:<instruction>``/``miss:<instruction>``.
    Missing keys (or no counts at all: a session without trials) count as 0.
    """
    c = counts or {}

    def n(key: str) -> int:
        return int(c.get(key) or 0)

    behavior_trials = n("behavior_trials")
    early = n("early_lick")
    hits = sum(n(f"hit:{i}") for i in INSTRUCTIONS)
    misses = sum(n(f"miss:{i}") for i in INSTRUCTIONS)
    return {
        "trials": n("trials"),
        "behavior_trials": behavior_trials,
        "outcomes": {o: n(f"outcome:{o}") for o in OUTCOMES},
        "instructions": {i: n(f"instruction:{i}") for i in INSTRUCTIONS},
        "early_lick": early,
        "early_lick_rate": early / behavior_trials if behavior_trials else None,
        "auto_water": n("auto_water"),
        "free_water": n("free_water"),
        "photostim": n("photostim"),
        "performance_trials": hits + misses,
        "performance": performance(hits, misses),
        "performance_by_instruction": {
            i: performance(n(f"hit:{i}"), n(f"miss:{i}")) for i in INSTRUCTIONS
        },
    }


def counts_from_labels(
    *,
    trials: int,
    outcome: Sequence[str],
    instruction: Sequence[str],
    early_lick: Sequence[str],
    auto_water: Sequence[bool],
    free_water: Sequence[bool],
    photostim: int,
) -> dict[str, int]:
    """The flat counts of :func:`summary_from_counts` from per-trial label arrays (behavior
    trials only; ``trials`` and ``photostim`` count every trial of the session)."""
    outcome_a = np.asarray(outcome, dtype=object)
    instruction_a = np.asarray(instruction, dtype=object)
    early_a = np.asarray(early_lick, dtype=object) != NO_EARLY_LICK
    free_a = np.asarray(free_water, dtype=bool)
    counts = {
        "trials": int(trials),
        "behavior_trials": len(outcome_a),
        "early_lick": int(early_a.sum()),
        "auto_water": int(np.asarray(auto_water, dtype=bool).sum()),
        "free_water": int(free_a.sum()),
        "photostim": int(photostim),
    }
    for o in OUTCOMES:
        counts[f"outcome:{o}"] = int((outcome_a == o).sum())
    for i in INSTRUCTIONS:
        counts[f"instruction:{i}"] = int((instruction_a == i).sum())
        for o in (HIT, MISS):
            counts[f"{o}:{i}"] = int(((instruction_a == i) & (outcome_a == o) & ~free_a).sum())
    return counts


# --- Moving-average performance ----------------------------------------------------------------


def moving_window(n_trials: int) -> int:
    """Window of the moving average: 10 % of the trials, at least one."""
    return max(1, int(round(WINDOW_FRACTION * n_trials)))


def centred_moving_average(values: np.ndarray, window: int) -> np.ndarray:
    """Mean of ``values[i - window // 2 : i - window // 2 + window]`` for every i, truncated at
    the ends (the mean is over the values the window holds)."""
    x = np.asarray(values, dtype=float)
    n = len(x)
    if n == 0:
        return x
    window = max(1, min(int(window), n))
    before = window // 2
    lo = np.clip(np.arange(n) - before, 0, n)
    hi = np.clip(np.arange(n) - before + window, 0, n)
    csum = np.concatenate([[0.0], np.cumsum(x)])
    return (csum[hi] - csum[lo]) / (hi - lo)


@dataclass(frozen=True)
class SessionLabels:
    """Behavior labels of one session's behavior trials, in trial order.

    ``stim_groups`` maps a stimulation-group label (e.g. ``left ALM``) to the trial numbers
    stimulated with it; ``photostim`` marks every photostimulation trial.
    """

    trial: np.ndarray
    outcome: np.ndarray
    instruction: np.ndarray
    early_lick: np.ndarray  # bool: any early lick
    free_water: np.ndarray
    photostim: np.ndarray
    stim_groups: dict[str, np.ndarray] = field(default_factory=dict)

    @classmethod
    def from_rows(
        cls,
        rows: Sequence[tuple[int, str, str, str, bool, bool]],
        stim_groups: Mapping[str, Sequence[int]] | None = None,
    ) -> SessionLabels:
        """From ``(trial, outcome, instruction, early-lick label, free water, photostim)``
        rows; sorted by trial number."""
        ordered = sorted(rows, key=lambda r: r[0])
        cols = list(zip(*ordered, strict=True)) if ordered else [()] * 6
        return cls(
            trial=np.asarray(cols[0], dtype=np.int64),
            outcome=np.asarray(cols[1], dtype=object),
            instruction=np.asarray(cols[2], dtype=object),
            early_lick=np.asarray([e != NO_EARLY_LICK for e in cols[3]], dtype=bool),
            free_water=np.asarray(cols[4], dtype=bool),
            photostim=np.asarray(cols[5], dtype=bool),
            stim_groups={
                k: np.asarray(sorted(set(v)), dtype=np.int64)
                for k, v in sorted((stim_groups or {}).items())
            },
        )

    def __len__(self) -> int:
        return len(self.trial)

    def fingerprint_parts(self) -> list[Any]:
        """Everything the plots are drawn from, for a cache key."""
        parts: list[Any] = [
            self.trial.tolist(),
            self.outcome.tolist(),
            self.instruction.tolist(),
            self.early_lick.tolist(),
            self.free_water.tolist(),
            self.photostim.tolist(),
        ]
        parts.extend((k, v.tolist()) for k, v in self.stim_groups.items())
        return parts


@dataclass(frozen=True)
class PerformanceCurve:
    trial: np.ndarray  # trial numbers of the trials that count (hit or miss, not free water)
    correct: np.ndarray  # 1.0 hit, 0.0 miss
    window: int
    moving_average: np.ndarray
    performance: float | None


def performance_curve(labels: SessionLabels) -> PerformanceCurve:
    """Moving-average correct proportion over the hit/miss trials (module docstring)."""
    counted = np.isin(labels.outcome, (HIT, MISS)) & ~labels.free_water
    correct = (labels.outcome[counted] == HIT).astype(float)
    window = moving_window(len(correct))
    return PerformanceCurve(
        trial=labels.trial[counted],
        correct=correct,
        window=window,
        moving_average=centred_moving_average(correct, window),
        performance=float(correct.mean()) if len(correct) else None,
    )


# --- Photostim effect --------------------------------------------------------------------------


@dataclass(frozen=True)
class EffectPoint:
    group: str  # "control" or a stimulation group
    instruction: str  # left / right
    hits: int
    trials: int

    @property
    def fraction(self) -> float | None:
        return self.hits / self.trials if self.trials else None


def photostim_effect(labels: SessionLabels) -> list[EffectPoint]:
    """Fraction hit of control vs each stimulation group, left and right trials, no early lick.

    Empty when the session has no photostimulation trial. A trial stimulated with two
    protocols counts in both groups; photostim trials without a recorded protocol form the
    group ``photostim``.
    """
    if not labels.photostim.any():
        return []
    eligible = ~labels.early_lick & ~labels.free_water
    hit = labels.outcome == HIT
    groups: dict[str, np.ndarray] = {CONTROL: eligible & ~labels.photostim}
    grouped = np.zeros(len(labels), dtype=bool)
    for name, trials in labels.stim_groups.items():
        member = np.isin(labels.trial, trials) & labels.photostim
        grouped |= member
        groups[name] = eligible & member
    unassigned = labels.photostim & ~grouped
    if unassigned.any():
        groups["photostim"] = eligible & unassigned
    points = []
    for name, mask in groups.items():
        for instruction in EFFECT_INSTRUCTIONS:
            sel = mask & (labels.instruction == instruction)
            points.append(EffectPoint(name, instruction, int((sel & hit).sum()), int(sel.sum())))
    return points
