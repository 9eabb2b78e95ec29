"""Lookup contents of schema ``psth`` (spec §8): selectivities and the 17 trial conditions."""

from typing import Any

from ephys.analysis.selectivity import CONTRA, IPSI, NON_SELECTIVE
from ephys.analysis.trial_conditions import TRIAL_CONDITIONS

SELECTIVITIES = [{"name": n} for n in (CONTRA, IPSI, NON_SELECTIVE)]


def trial_condition_rows() -> list[dict[str, Any]]:
    """The rows of psth.TrialCondition, in the order of §8 (8 exclude-stim, 9 include-stim)."""
    return [
        {"name": c.name, "hash": c.hash, "func": c.func_name, "args": dict(c.args)}
        for c in TRIAL_CONDITIONS
    ]


def load(apps: Any) -> None:
    from mapsite.core.lookups import load_lookup

    load_lookup(apps, "psth.Selectivity", SELECTIVITIES)
    load_lookup(apps, "psth.TrialCondition", trial_condition_rows())
