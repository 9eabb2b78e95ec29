"""The 17 delay-response trial conditions of spec §8 as data, and their trial membership.

A condition is ``(name, func, args)``.  ``func`` is ``"exclude_stim"`` (behavior trials matching
the args, minus every trial having a photostim event that matches the stim args) or
``"include_stim"`` (behavior trials matching the args that also have a photostim event whose
protocol's ``PhotostimBrainRegion`` matches the stim args).  Argument convention (§8): keys
without ``_`` are AND-ed inclusions, keys prefixed by ``_`` are exclusions (OR-ed); keys are
split into behavior attributes (:data:`BEHAVIOR_ATTRS`) and photostim attributes
(:data:`STIM_ATTRS`).

:func:`condition_membership` evaluates every condition over one session's trials at once and
returns a boolean ``(n_trials, n_conditions)`` matrix, which the PSTH multiplies with.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

__all__ = [
    "BEHAVIOR_ATTRS",
    "CONDITION_NAMES",
    "STIM_ATTRS",
    "TRIAL_CONDITIONS",
    "TrialCondition",
    "TrialLabels",
    "condition_hash",
    "condition_membership",
    "get_cond_name_from_keywords",
]

BEHAVIOR_ATTRS = (
    "task",
    "task_protocol",
    "trial_instruction",
    "outcome",
    "early_lick",
    "auto_water",
    "free_water",
)
STIM_ATTRS = ("stim_brain_area", "stim_laterality")

ConditionFunc = Literal["exclude_stim", "include_stim"]


@dataclass(frozen=True)
class TrialCondition:
    """One row of ``psth.TrialCondition`` (function name without the ``_get_trials_`` prefix)."""

    name: str
    func: ConditionFunc
    args: Mapping[str, Any] = field(default_factory=dict)

    @property
    def func_name(self) -> str:
        """The original function name stored in ``trial_condition_func``."""
        return f"_get_trials_{self.func}"

    @property
    def hash(self) -> str:
        return condition_hash(self)


def condition_hash(cond: TrialCondition) -> str:
    """md5 of func + args (``trial_condition_hash``, unique): keys and values, sorted by key."""
    key = {"trial_condition_func": cond.func_name, **cond.args}
    h = hashlib.md5(usedforsecurity=False)
    for k in sorted(key):
        h.update(str(k).encode())
        h.update(str(key[k]).encode())
    return h.hexdigest()


_BASE = {
    "task": "audio delay",
    "task_protocol": 1,
    "auto_water": 0,
    "free_water": 0,
    "early_lick": "no early",
}


def _build_conditions() -> tuple[TrialCondition, ...]:
    conds: list[TrialCondition] = [
        TrialCondition("good_noearlylick_hit", "exclude_stim", {**_BASE, "outcome": "hit"}),
    ]
    for side in ("left", "right"):
        conds.append(
            TrialCondition(
                f"good_noearlylick_{side}_hit",
                "exclude_stim",
                {**_BASE, "outcome": "hit", "trial_instruction": side},
            )
        )
    for side in ("left", "right"):
        conds.append(
            TrialCondition(
                f"good_noearlylick_{side}_miss",
                "exclude_stim",
                {**_BASE, "outcome": "miss", "trial_instruction": side},
            )
        )
    conds.append(
        TrialCondition("all_noearlylick_nostim", "exclude_stim", {**_BASE, "_outcome": "ignore"})
    )
    for side in ("left", "right"):
        conds.append(
            TrialCondition(
                f"all_noearlylick_nostim_{side}",
                "exclude_stim",
                {**_BASE, "_outcome": "ignore", "trial_instruction": side},
            )
        )
    for lat in ("left", "right", "both"):
        stim = {"stim_brain_area": "alm", "stim_laterality": lat}
        conds.append(
            TrialCondition(
                f"all_noearlylick_{lat}_alm_stim",
                "include_stim",
                {**_BASE, "_outcome": "ignore", **stim},
            )
        )
        for side in ("left", "right"):
            conds.append(
                TrialCondition(
                    f"all_noearlylick_{lat}_alm_stim_{side}",
                    "include_stim",
                    {**_BASE, "_outcome": "ignore", "trial_instruction": side, **stim},
                )
            )
    return tuple(conds)


#: The 17 conditions of spec §8: 8 exclude-stim then 9 include-stim.
TRIAL_CONDITIONS: tuple[TrialCondition, ...] = _build_conditions()
CONDITION_NAMES: tuple[str, ...] = tuple(c.name for c in TRIAL_CONDITIONS)


@dataclass
class TrialLabels:
    """Per-trial behavior labels of one session plus its photostim events.

    Behavior arrays have one entry per trial (same order as the trial arrays given to the
    alignment).  Photostim events are given per event: ``stim_event_trial`` (trial index),
    ``stim_event_brain_area`` / ``stim_event_laterality`` (from ``PhotostimBrainRegion`` of the
    event's protocol; ``None`` when the protocol has no such row).
    """

    task: np.ndarray
    task_protocol: np.ndarray
    trial_instruction: np.ndarray
    outcome: np.ndarray
    early_lick: np.ndarray
    auto_water: np.ndarray
    free_water: np.ndarray
    stim_event_trial: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    stim_event_brain_area: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))
    stim_event_laterality: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))

    def __post_init__(self) -> None:
        n = len(self.task)
        for name in BEHAVIOR_ATTRS:
            arr = np.asarray(getattr(self, name))
            if arr.dtype.kind == "U":
                arr = arr.astype(object)
            if len(arr) != n:
                raise ValueError(f"{name} has {len(arr)} entries, expected {n}")
            setattr(self, name, arr)
        self.stim_event_trial = np.asarray(self.stim_event_trial, dtype=np.int64)
        self.stim_event_brain_area = np.asarray(self.stim_event_brain_area, dtype=object)
        self.stim_event_laterality = np.asarray(self.stim_event_laterality, dtype=object)
        m = len(self.stim_event_trial)
        if len(self.stim_event_brain_area) != m or len(self.stim_event_laterality) != m:
            raise ValueError("photostim event arrays must have equal length")
        if m and (self.stim_event_trial.min() < 0 or self.stim_event_trial.max() >= n):
            raise ValueError("stim_event_trial out of range")

    @property
    def n_trials(self) -> int:
        return len(self.task)

    def has_photostim(self) -> np.ndarray:
        """Trials having any photostim event (whatever its brain region)."""
        out = np.zeros(self.n_trials, dtype=bool)
        out[self.stim_event_trial] = True
        return out


def _eq(values: np.ndarray, target: Any) -> np.ndarray:
    """Element-wise equality; strings compare case-insensitively, ``None`` never matches.

    Case-insensitive like the original database collation, where the condition argument
    ``stim_brain_area='alm'`` matched the BrainArea ``ALM``.
    """
    if isinstance(target, str):
        t = target.casefold()
        return np.fromiter(
            (isinstance(v, str) and v.casefold() == t for v in values),
            dtype=bool,
            count=len(values),
        )
    if values.dtype == object:
        return np.fromiter(
            (v is not None and v == target for v in values), dtype=bool, count=len(values)
        )
    return np.asarray(values == target, dtype=bool)


def _split(args: Mapping[str, Any]) -> tuple[dict, dict, dict, dict]:
    beh, _beh, stim, _stim = {}, {}, {}, {}
    for k, v in args.items():
        excl = k.startswith("_")
        key = k[1:] if excl else k
        if key in BEHAVIOR_ATTRS:
            (_beh if excl else beh)[key] = v
        elif key in STIM_ATTRS:
            (_stim if excl else stim)[key] = v
        else:
            raise ValueError(f"unknown trial condition attribute {k!r}")
    return beh, _beh, stim, _stim


def _matching_stim_trials(labels: TrialLabels, stim: dict, _stim: dict, need_region: bool):
    """Trials having at least one photostim event matching ``stim`` and not ``_stim``."""
    ev = np.ones(len(labels.stim_event_trial), dtype=bool)
    cols = {
        "stim_brain_area": labels.stim_event_brain_area,
        "stim_laterality": labels.stim_event_laterality,
    }
    if need_region:  # the include-stim join with PhotostimBrainRegion drops region-less events
        ev &= np.array([a is not None for a in labels.stim_event_brain_area], dtype=bool)
    for k, v in stim.items():
        ev &= _eq(cols[k], v)
    if _stim:
        excl = np.zeros_like(ev)
        for k, v in _stim.items():
            excl |= _eq(cols[k], v)
        ev &= ~excl
    out = np.zeros(labels.n_trials, dtype=bool)
    out[labels.stim_event_trial[ev]] = True
    return out


def _condition_mask(labels: TrialLabels, cond: TrialCondition) -> np.ndarray:
    beh, _beh, stim, _stim = _split(cond.args)
    mask = np.ones(labels.n_trials, dtype=bool)
    for k, v in beh.items():
        mask &= _eq(getattr(labels, k), v)
    if _beh:
        excl = np.zeros_like(mask)
        for k, v in _beh.items():
            excl |= _eq(getattr(labels, k), v)
        mask &= ~excl
    if cond.func == "exclude_stim":
        mask &= ~_matching_stim_trials(labels, stim, _stim, need_region=bool(stim or _stim))
    elif cond.func == "include_stim":
        mask &= _matching_stim_trials(labels, stim, _stim, need_region=True)
    else:  # pragma: no cover - guarded by the Literal type
        raise ValueError(f"unknown condition function {cond.func!r}")
    return mask


def condition_membership(
    labels: TrialLabels, conditions: Sequence[TrialCondition] = TRIAL_CONDITIONS
) -> np.ndarray:
    """Boolean ``(n_trials, n_conditions)`` matrix: is trial ``t`` in condition ``c``."""
    out = np.zeros((labels.n_trials, len(conditions)), dtype=bool)
    for j, cond in enumerate(conditions):
        out[:, j] = _condition_mask(labels, cond)
    return out


def get_cond_name_from_keywords(
    keywords: Sequence[str], conditions: Sequence[TrialCondition] = TRIAL_CONDITIONS
) -> list[str]:
    """Sorted names containing every keyword as a substring, each consumed once (§8 helper)."""
    out = []
    for c in conditions:
        rest = c.name
        for k in keywords:
            if k not in rest:
                break
            rest = rest.replace(k, "")
        else:
            out.append(c.name)
    return sorted(out)
