"""Pure numpy/scipy numerics of the MAP delay-response analyses (no Django, no DB).

The DB layer reads arrays (spike times per unit, trial tables, photostim events) and calls
these functions once per probe insertion; everything here is vectorized over all units of the
insertion.  Loop re-implementations used as test oracles live in :mod:`.reference`.

Typical flow for one insertion (arrays in trial order; event times relative to trial start)::

    times, offsets = build_csr(per_unit_spike_times)          # or read the CSR directly
    aligned = align_spikes_to_trials(times, offsets, ephys_trial_starts, go_cues)
    labels = TrialLabels(task=..., task_protocol=..., trial_instruction=..., outcome=...,
                         early_lick=..., auto_water=..., free_water=...,
                         stim_event_trial=..., stim_event_brain_area=...,
                         stim_event_laterality=...)
    membership = condition_membership(labels) & good_trials[:, None]
    psth = compute_psths(aligned, membership)                 # UnitPsth rows
    ps = period_selectivity(aligned, selectivity_trial_mask(labels, delay_durations),
                            labels.trial_instruction, unit_hemisphere,
                            period_windows({"sample": ..., "delay": ..., "go": ...}))
    us = unit_selectivity(ps.selectivity, ps.ipsi_firing_rate, ps.contra_firing_rate)
    stats = unit_stats(aligned, trial_stop - trial_start)     # UnitStat
"""

from .align import AlignedSpikes, align_spikes_to_trials, build_csr, raster
from .psth import PsthResult, compute_psths, per_trial_psth, psth_edges, unit_psth
from .selectivity import (
    PERIODS,
    PeriodSelectivityResult,
    cd_projected_psth,
    coding_direction,
    hemisphere_from_ml,
    period_selectivity,
    period_windows,
    selectivity_trial_mask,
    unit_selectivity,
)
from .trial_conditions import (
    CONDITION_NAMES,
    TRIAL_CONDITIONS,
    TrialCondition,
    TrialLabels,
    condition_hash,
    condition_membership,
)
from .unit_stats import (
    BRAIN_AREA_UNIT_RESTRICTIONS,
    cell_types,
    coarse_brain_location,
    drift_metric,
    unit_passes_criteria,
    unit_stats,
)

__all__ = [
    "BRAIN_AREA_UNIT_RESTRICTIONS",
    "CONDITION_NAMES",
    "PERIODS",
    "TRIAL_CONDITIONS",
    "AlignedSpikes",
    "PeriodSelectivityResult",
    "PsthResult",
    "TrialCondition",
    "TrialLabels",
    "align_spikes_to_trials",
    "build_csr",
    "cd_projected_psth",
    "cell_types",
    "coarse_brain_location",
    "coding_direction",
    "compute_psths",
    "condition_hash",
    "condition_membership",
    "drift_metric",
    "hemisphere_from_ml",
    "per_trial_psth",
    "period_selectivity",
    "period_windows",
    "psth_edges",
    "raster",
    "selectivity_trial_mask",
    "unit_passes_criteria",
    "unit_psth",
    "unit_selectivity",
    "unit_stats",
]
