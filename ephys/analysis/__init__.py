"""Pure numpy/scipy numerics of the MAP delay-response analyses (no Django, no DB).

The DB layer reads arrays (spike times per unit, trial tables, photostim events) and calls
these functions once per probe insertion; everything here is vectorized over all units of the
insertion.  Loop re-implementations used as test oracles live in :mod:`.reference`.
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
