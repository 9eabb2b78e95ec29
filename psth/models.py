"""Schema ``psth`` (spec §8) and the computed unit tables of §4.4 ("analysis results of units").

Every result hangs off ``ephys.Unit`` with ``on_delete=CASCADE``: a re-sort deletes the old
units and their results go with them (the ephys ingest forgets the jobs, spec §14.6). The jobs
that fill these tables are keyed per ``ProbeInsertion`` and vectorized over all its units
(``psth.steps``); each make replaces the insertion's rows, so re-making a key is safe.

Storage of PSTHs: one ``UnitPsth`` row per (unit, trial condition) with the rates as float32
``.npy`` bytes (150 bins, 600 bytes). One row per pair keeps the API filters simple (a unit, a
condition, a session, a brain area) and a single PSTH cheap to read; the time vector is not
stored per row: it is the right edges of the fixed bins (:data:`PSTH_TIME`, −3 to +3 s around
the go cue in 40 ms steps). The original stored ``[rates, right edges]`` per row.

The 17 trial conditions are data (``TrialCondition``, loaded by a data migration from
``ephys.analysis.trial_conditions``); a step evaluates whatever rows the table holds.
"""

from __future__ import annotations

import numpy as np
from django.db import models
from django.db.models import Q

from ephys.analysis.psth import psth_edges
from ephys.models import CellType, ProbeInsertion, Unit
from experiment.models import Period
from lab.models import BrainArea, Hemisphere
from mapsite.core.models import Lookup
from mapsite.core.npy import load_npy as core_load_npy

#: Right bin edges of every stored PSTH (s from the go cue): −2.96 … 3.0, 150 bins.
PSTH_EDGES = psth_edges()
PSTH_TIME = PSTH_EDGES[1:].copy()
PSTH_TIME.setflags(write=False)


def load_npy(data: bytes | memoryview | None) -> np.ndarray | None:
    return None if data is None else core_load_npy(data)


# --- Schema psth (§8) ------------------------------------------------------------------------


class TrialCondition(models.Model):
    """A named set of trials (§8): a function of the behavior and photostim labels."""

    name = models.CharField(max_length=128, unique=True, help_text="trial_condition_name")
    hash = models.CharField(
        max_length=32, unique=True, help_text="md5 of the function and its arguments"
    )
    func = models.CharField(
        max_length=36, help_text="_get_trials_exclude_stim or _get_trials_include_stim"
    )
    args = models.JSONField(
        default=dict,
        blank=True,
        help_text='keys without "_" are AND-ed inclusions, keys with "_" OR-ed exclusions',
    )

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.name

    @property
    def includes_stim(self) -> bool:
        return self.func.endswith("include_stim")


class Selectivity(Lookup):
    class Meta(Lookup.Meta):
        verbose_name_plural = "selectivities"


class UnitPsth(models.Model):
    """PSTH of one unit in one trial condition (rates in spikes/s; bins: :data:`PSTH_TIME`)."""

    unit = models.ForeignKey(Unit, on_delete=models.CASCADE, related_name="psths")
    trial_condition = models.ForeignKey(
        TrialCondition, on_delete=models.PROTECT, related_name="psths"
    )
    trial_count = models.PositiveIntegerField(help_text="trials of the unit in the condition")
    rates = models.BinaryField(
        null=True, blank=True, help_text="float32 .npy, 150 bins; null: no trial"
    )

    class Meta:
        verbose_name = "unit PSTH"
        constraints = [
            models.UniqueConstraint(fields=["unit", "trial_condition"], name="unitpsth_unique"),
            models.CheckConstraint(
                condition=Q(rates__isnull=True) | Q(trial_count__gt=0),
                name="unitpsth_rates_need_trials",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.unit} {self.trial_condition}"

    def rates_array(self) -> np.ndarray | None:
        return load_npy(self.rates)


class PeriodSelectivity(models.Model):
    """Ipsi vs contra firing in one period of the delay task (§8, Student t-test)."""

    unit = models.ForeignKey(Unit, on_delete=models.CASCADE, related_name="period_selectivities")
    period = models.ForeignKey(Period, on_delete=models.PROTECT, related_name="+")
    selectivity = models.ForeignKey(Selectivity, on_delete=models.PROTECT, related_name="+")
    ipsi_firing_rate = models.FloatField(
        null=True, blank=True, help_text="Hz; null: no ipsi trial (0 when no trial at all)"
    )
    contra_firing_rate = models.FloatField(
        null=True, blank=True, help_text="Hz; null: no contra trial (0 when no trial at all)"
    )
    p_value = models.FloatField(default=1.0)
    ipsi_trials = models.PositiveIntegerField(default=0)
    contra_trials = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name_plural = "period selectivities"
        constraints = [
            models.UniqueConstraint(fields=["unit", "period"], name="periodselectivity_unique"),
            models.CheckConstraint(
                condition=Q(p_value__gte=0, p_value__lte=1), name="periodselectivity_p_range"
            ),
        ]


class UnitSelectivity(models.Model):
    """Overall selectivity of a unit: over its selective periods (§8; not the §19.8 average)."""

    unit = models.OneToOneField(
        Unit, on_delete=models.CASCADE, primary_key=True, related_name="selectivity"
    )
    selectivity = models.ForeignKey(Selectivity, on_delete=models.PROTECT, related_name="+")

    class Meta:
        verbose_name_plural = "unit selectivities"


# --- Analysis results of units (§4.4, §15) -----------------------------------------------------
# Computed rows of ephys.UnitStat (when metrics.csv gave none) are written into that table.


class UnitCellType(models.Model):
    """FS (waveform narrower than 0.4 ms peak to trough) or Pyr (§15)."""

    unit = models.OneToOneField(
        Unit, on_delete=models.CASCADE, primary_key=True, related_name="cell_type"
    )
    cell_type = models.ForeignKey(CellType, on_delete=models.PROTECT, related_name="+")
    waveform_width = models.FloatField(help_text="ms, trough to peak of the upsampled waveform")


class UnitCoarseBrainLocation(models.Model):
    """The area of the insertion's depth criteria the unit lies in (§15); null: none."""

    unit = models.OneToOneField(
        Unit, on_delete=models.CASCADE, primary_key=True, related_name="coarse_location"
    )
    brain_area = models.ForeignKey(
        BrainArea, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    hemisphere = models.ForeignKey(
        Hemisphere, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )


class DriftMetric(models.Model):
    """MAPClusterMetric.DriftMetric (§15): fraction of smoothed trial rates outside 5-95 %."""

    unit = models.OneToOneField(
        Unit, on_delete=models.CASCADE, primary_key=True, related_name="drift"
    )
    drift_metric = models.FloatField(null=True, blank=True, help_text="null: no trial usable")


class UnitPassingCriteria(models.Model):
    """Does the unit pass the criteria of its insertion's first recordable area (§4.6)?"""

    unit = models.OneToOneField(
        Unit, on_delete=models.CASCADE, primary_key=True, related_name="passing_criteria"
    )
    criteria_passed = models.BooleanField()

    class Meta:
        verbose_name_plural = "unit passing criteria"


# --- Admin pages with plots (proxies: the ephys app owns the tables and their admin) ---------


class UnitAnalysis(Unit):
    class Meta:
        proxy = True
        verbose_name = "unit analysis"
        verbose_name_plural = "unit analyses"


class InsertionAnalysis(ProbeInsertion):
    class Meta:
        proxy = True
        verbose_name = "probe insertion analysis"
        verbose_name_plural = "probe insertion analyses"
