"""Coding direction of a probe insertion (spec §8 ``compute_CD_projected_psth``).

Contra trials are the hits of the instruction opposite to the insertion's hemisphere
(``good_noearlylick_<other>_hit``), ipsi trials the hits of its own side; both restricted to
the insertion's good trials. Per-trial PSTHs of every unit give the trial-averaged contra and
ipsi PSTHs; the coding direction is their difference of mean rates in ``period`` (default the
last 400 ms before the go cue), L2-normalised; each trial's (time × unit) matrix is then
projected on it. Computed on request (it is a view of the data, not a stored table).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ephys import analysis as an
from ephys.analysis.selectivity import CD_PERIOD, contra_ipsi_condition_names
from ephys.models import ProbeInsertion

from . import data
from .models import TrialCondition


class NoCodingDirection(ValueError):
    """The insertion lacks what the coding direction needs (location, trials, units)."""


@dataclass
class CodingDirection:
    unit_ids: list[int]  # Unit pks, in the order of ``cd``
    cd: np.ndarray  # (n_units,)
    time: np.ndarray  # right bin edges (s from the go cue)
    contra_trials: list[int]  # SessionTrial pks
    ipsi_trials: list[int]
    contra_projection: np.ndarray  # (n_contra_trials, n_bins)
    ipsi_projection: np.ndarray
    period: tuple[float, float]
    hemisphere: str


def _trials_of(trials: data.InsertionTrials, name: str) -> np.ndarray:
    row = TrialCondition.objects.filter(name=name).first()
    if row is None:
        raise NoCodingDirection(f"trial condition {name!r} is not defined")
    cond = an.TrialCondition(row.name, row.func.removeprefix("_get_trials_"), dict(row.args))
    member = an.condition_membership(trials.labels, [cond])[:, 0] & trials.good
    return np.flatnonzero(member)


def insertion_coding_direction(
    insertion: ProbeInsertion,
    period: tuple[float, float] | None = CD_PERIOD,
    unit_ids: Sequence[int] | None = None,
) -> CodingDirection:
    """The coding direction of the insertion's units (default: quality other than "all")."""
    hemisphere = data.hemisphere_of(insertion)
    if hemisphere is None:
        raise NoCodingDirection("the insertion has no location (or ML 0): ipsi/contra undefined")
    units = list(unit_ids) if unit_ids is not None else data.analysed_units(insertion)
    if not units:
        raise NoCodingDirection("no units")
    trials = data.load_trials(insertion)
    contra_name, ipsi_name = contra_ipsi_condition_names(hemisphere)
    contra, ipsi = _trials_of(trials, contra_name), _trials_of(trials, ipsi_name)
    aligned = data.load_aligned(units, trials)
    contra = contra[aligned.aligned_to_go[contra]]
    ipsi = ipsi[aligned.aligned_to_go[ipsi]]
    if contra.size == 0 or ipsi.size == 0:
        raise NoCodingDirection(
            f"needs contra and ipsi hit trials (has {contra.size} and {ipsi.size})"
        )
    cd, proj_c, proj_i, time = an.cd_projected_psth(aligned, contra, ipsi, period)
    return CodingDirection(
        unit_ids=units,
        cd=cd,
        time=time,
        contra_trials=trials.trial_ids[contra].tolist(),
        ipsi_trials=trials.trial_ids[ipsi].tolist(),
        contra_projection=proj_c,
        ipsi_projection=proj_i,
        period=tuple(period) if period is not None else (float(time.min()), float(time.max())),
        hemisphere=hemisphere,
    )
