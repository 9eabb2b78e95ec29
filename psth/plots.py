"""Unit and probe figures of the delay-response analyses (spec §12 ``UnitLevelEphysReport``,
``ProbeLevelReport.unit_characteristic``), drawn server-side and cached.

* Unit: raster (top) and PSTH (bottom) of hit and miss trials (no early lick, no photostim),
  ipsi- and contralateral trials in two colours, with the mean sample and delay onsets and the
  go cue marked. The PSTHs are the stored ``UnitPsth`` rows; the raster is aligned on read.
* Insertion: unit positions on the probe sized and coloured by amplitude, SNR and firing rate,
  amplitude vs rate, cell types, and the period selectivity maps (sample, delay, response).

Each figure is a ``matplotlib.figure.Figure`` on an Agg canvas (no pyplot state), cached by
``mapsite.core.plots.cached_figure`` under a version that changes whenever an input does: the
jobs that made the results (a re-made job is a new row) and the insertion's location.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from django.db.models import Count
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ephys import analysis as an
from ephys.analysis.selectivity import CONTRA, IPSI, NON_SELECTIVE
from ephys.models import InsertionLocation, ProbeInsertion, Unit, UnitStat
from mapsite.core import plots as core_plots
from mapsite.pipeline.models import Job

from . import data
from . import steps as ps
from .models import PSTH_TIME, PeriodSelectivity, TrialCondition, UnitCellType, UnitPsth

# Bump when the drawing changes: cached figures of the old code are then not served again.
PLOT_VERSION = 2
UNIT_KIND, INSERTION_KIND = "unit-psth", "insertion-characteristics"
UNIT_SIZE, INSERTION_SIZE, DPI = (9.0, 6.0), (13.0, 7.5), 100
SIDE_COLORS = {"ipsi": "tab:blue", "contra": "tab:red", "left": "tab:blue", "right": "tab:red"}
SELECTIVITY_COLORS = {CONTRA: "tab:red", IPSI: "tab:blue", NON_SELECTIVE: "0.75"}
OUTCOMES = ("hit", "miss")


class NothingToPlot(Exception):
    """The unit or insertion has no results to draw yet."""


def _job_version(insertion_id: int, steps: tuple[str, ...]) -> list:
    return list(
        Job.objects.filter(step__in=steps, key_id=insertion_id)
        .order_by("step")
        .values_list("step", "pk", "status", "finished_at")
    )


def _ml(insertion_id: int) -> str | None:
    ml = (
        InsertionLocation.objects.filter(insertion_id=insertion_id)
        .values_list("ml_location", flat=True)
        .first()
    )
    return None if ml is None else str(ml)


def insertion_title(insertion: ProbeInsertion) -> str:
    session = insertion.session
    wr = getattr(session.subject, "water_restriction", None)
    who = wr.water_restriction_number if wr else str(session.subject.subject_id)
    when = timezone.localtime(session.start_time).strftime("%Y-%m-%d %H:%M")
    return f"{who} · session {session.session} · {when} · probe {insertion.insertion_number}"


def file_stem(insertion: ProbeInsertion) -> str:
    """``dl25_20180225_112328_1`` as the original named its report files (lab time)."""
    session = insertion.session
    wr = getattr(session.subject, "water_restriction", None)
    who = wr.water_restriction_number if wr else str(session.subject.subject_id)
    local = timezone.localtime(session.start_time)
    return f"{who}_{local:%Y%m%d_%H%M%S}_{insertion.insertion_number}"


# ---- unit figure ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class UnitPlotInput:
    unit: Unit
    version: str


def unit_plot_input(unit: Unit) -> UnitPlotInput:
    """What the unit figure depends on (a few small queries); NothingToPlot without PSTHs."""
    if not UnitPsth.objects.filter(unit=unit).exists():
        raise NothingToPlot(f"unit {unit.pk} has no PSTH yet (UnitPsth of its insertion)")
    version = core_plots.fingerprint(
        PLOT_VERSION,
        unit.pk,
        _job_version(unit.insertion_id, (ps.UNIT_PSTH, ps.PERIOD_SELECTIVITY)),
        _ml(unit.insertion_id),
    )
    return UnitPlotInput(unit, version)


def _side_names(hemisphere: str | None) -> dict[str, str]:
    """Instruction -> legend name: ipsi/contra when the hemisphere is known, else left/right."""
    if hemisphere is None:
        return {"left": "left", "right": "right"}
    other = "right" if hemisphere == "left" else "left"
    return {hemisphere: "ipsi", other: "contra"}


def render_unit_figure(unit: Unit) -> Figure:
    """Raster and PSTH of hit and miss trials, ipsi vs contra (§12 UnitLevelEphysReport)."""
    insertion = unit.insertion
    hemisphere = data.hemisphere_of(insertion)
    names = _side_names(hemisphere)
    trials = data.load_trials(insertion)
    aligned = data.load_aligned([unit.pk], trials)
    wanted = [f"good_noearlylick_{side}_{outcome}" for outcome in OUTCOMES for side in names]
    conds = {c.name: c for c in TrialCondition.objects.filter(name__in=wanted)}
    members = an.condition_membership(
        trials.labels,
        [
            an.TrialCondition(c.name, c.func.removeprefix("_get_trials_"), dict(c.args))
            for c in conds.values()
        ],
    )
    members &= trials.good[:, None] & aligned.aligned_to_go[:, None]
    membership = {name: members[:, j] for j, name in enumerate(conds)}
    psths = {
        row.trial_condition.name: row
        for row in UnitPsth.objects.filter(
            unit=unit, trial_condition__name__in=wanted
        ).select_related("trial_condition")
    }
    events = trials.period_events()
    shown = members.any(axis=1)
    markers = {
        name: _median(events[name][shown] - events["go"][shown]) for name in ("sample", "delay")
    }

    fig = Figure(figsize=UNIT_SIZE, dpi=DPI, layout="constrained")
    grid = fig.add_gridspec(2, 2, height_ratios=(3, 2))
    raster_axes = [fig.add_subplot(grid[0, j]) for j in range(2)]
    psth_axes = [fig.add_subplot(grid[1, j], sharex=raster_axes[j]) for j in range(2)]
    ymax = 0.0
    for j, outcome in enumerate(OUTCOMES):
        ax_r, ax_p = raster_axes[j], psth_axes[j]
        row0 = 0
        for side, label in names.items():
            name = f"good_noearlylick_{side}_{outcome}"
            color = SIDE_COLORS[label]
            idx = np.flatnonzero(membership.get(name, np.zeros(trials.n_trials, bool)))
            times, which = an.raster(aligned, 0, idx)
            keep = (times >= PSTH_TIME[0] - 0.04) & (times <= PSTH_TIME[-1])
            rank = np.searchsorted(idx, which[keep]) + row0
            ax_r.scatter(times[keep], rank, s=4, marker="|", color=color, linewidths=0.7)
            row0 += len(idx)
            row = psths.get(name)
            rates = row.rates_array() if row is not None else None
            if rates is not None:
                ax_p.plot(
                    PSTH_TIME - 0.02,
                    rates,
                    color=color,
                    lw=1.2,
                    label=f"{label} ({row.trial_count})",
                )
                ymax = max(ymax, float(np.nanmax(rates)))
            else:
                ax_p.plot([], [], color=color, label=f"{label} (0)")
        ax_r.set_ylim(-0.5, max(row0, 1) - 0.5)
        ax_r.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax_r.set_title(f"{outcome} trials")
        ax_r.set_ylabel("trial")
        ax_r.tick_params(labelbottom=False)
        ax_p.set_xlabel("time from go cue (s)")
        ax_p.set_ylabel("spikes/s")
        ax_p.legend(loc="upper left", fontsize=8, frameon=False)
        for ax in (ax_r, ax_p):
            for name, x in (*markers.items(), ("go", 0.0)):
                if np.isfinite(x):
                    ax.axvline(x, color="0.3", ls="--" if name != "go" else "-", lw=0.8)
        for name, x in (*markers.items(), ("go", 0.0)):
            if np.isfinite(x):
                ax_r.text(
                    x,
                    0.99,
                    f" {name}",
                    transform=ax_r.get_xaxis_transform(),
                    fontsize=8,
                    va="top",
                    ha="left",
                    color="0.2",
                    bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1},
                )
        ax_p.set_xlim(PSTH_TIME[0] - 0.04, PSTH_TIME[-1])
    for ax in psth_axes:
        ax.set_ylim(0, max(ymax * 1.1, 1.0))
    extra = []
    cell = UnitCellType.objects.filter(unit=unit).select_related("cell_type").first()
    if cell is not None:
        extra.append(cell.cell_type.name)
    if hasattr(unit, "selectivity"):
        extra.append(unit.selectivity.selectivity.name)
    fig.suptitle(
        f"{insertion_title(insertion)} · unit {unit.unit} ({unit.quality.name}"
        + (", " + ", ".join(extra) if extra else "")
        + ")",
        fontsize=10,
    )
    return fig


def _median(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(np.median(finite)) if finite.size else float("nan")


def unit_plot(unit: Unit, fmt: str, plot_input: UnitPlotInput | None = None) -> bytes:
    """PNG or SVG bytes of the unit figure (cached); raises :class:`NothingToPlot`."""
    plot_input = plot_input or unit_plot_input(unit)
    return core_plots.cached_figure(
        UNIT_KIND, unit.pk, plot_input.version, fmt, lambda: render_unit_figure(unit)
    )


# ---- insertion figure ----------------------------------------------------------------------------
@dataclass(frozen=True)
class InsertionPlotInput:
    insertion: ProbeInsertion
    version: str


def insertion_plot_input(insertion: ProbeInsertion) -> InsertionPlotInput:
    n_units = Unit.objects.filter(insertion=insertion).count()
    if not n_units:
        raise NothingToPlot(f"insertion {insertion.pk} has no units")
    version = core_plots.fingerprint(
        PLOT_VERSION,
        insertion.pk,
        n_units,
        _job_version(insertion.pk, ps.STEPS),
        list(
            Job.objects.filter(
                step="EphysIngest",
                key_id__in=list(
                    insertion.session.ephys_recordings.values_list("outputs__pk", flat=True)
                ),
            ).values_list("pk", "finished_at")
        ),
        _ml(insertion.pk),
    )
    return InsertionPlotInput(insertion, version)


def _scatter_map(ax: Axes, x: np.ndarray, y: np.ndarray, value: np.ndarray, title: str) -> None:
    v = np.asarray(value, dtype=float)
    finite = np.isfinite(v)
    scale = np.nanmax(np.abs(v)) if finite.any() and np.nanmax(np.abs(v)) > 0 else 1.0
    size = np.where(finite, 8 + 80 * np.abs(v) / scale, 6)
    points = ax.scatter(
        x[finite],
        y[finite],
        s=size[finite],
        c=v[finite],
        cmap="viridis",
        alpha=0.8,
        edgecolors="none",
    )
    ax.scatter(x[~finite], y[~finite], s=6, c="0.8", marker="x", linewidths=0.5)
    ax.figure.colorbar(points, ax=ax, shrink=0.8, pad=0.02)
    ax.set_title(title, fontsize=9)


def render_insertion_figure(insertion: ProbeInsertion) -> Figure:
    """Unit characteristics on the probe and selectivity by period (§12 ProbeLevelReport)."""
    units = list(
        Unit.objects.filter(insertion=insertion)
        .order_by("pk")
        .values_list("pk", "unit_posx", "unit_posy", "unit_amp", "unit_snr")
    )
    pk = np.array([u[0] for u in units])
    x = np.array([u[1] for u in units], dtype=float)
    y = np.array([u[2] for u in units], dtype=float)
    amp = np.array([np.nan if u[3] is None else u[3] for u in units], dtype=float)
    snr = np.array([np.nan if u[4] is None else u[4] for u in units], dtype=float)
    rates = dict(
        UnitStat.objects.filter(unit__insertion=insertion).values_list("unit_id", "avg_firing_rate")
    )
    rate = np.array([np.nan if rates.get(p) is None else rates[p] for p in pk], dtype=float)
    # a little jitter across the two columns of sites, so units on one site do not hide
    jitter = (np.random.default_rng(0).random(len(x)) - 0.5) * 8.0
    xj = x + jitter

    fig = Figure(figsize=INSERTION_SIZE, dpi=DPI, layout="constrained")
    axes = fig.subplots(2, 4)
    _scatter_map(axes[0, 0], xj, y, amp, "amplitude (µV)")
    _scatter_map(axes[0, 1], xj, y, snr, "SNR")
    _scatter_map(axes[0, 2], xj, y, rate, "firing rate (Hz)")
    ax = axes[0, 3]
    ax.scatter(amp, rate, s=10, color="0.3", alpha=0.7, edgecolors="none")
    ax.set_xlabel("amplitude (µV)")
    ax.set_ylabel("firing rate (Hz)")
    ax.set_title("amplitude vs rate", fontsize=9)
    for a in axes[0, :3]:
        a.set_ylabel("depth on probe (µm from tip)")
        a.set_xlabel("x (µm)")

    by_period: dict[str, dict[int, tuple[str, float, float]]] = {}
    for unit_id, period, sel, ipsi, contra in PeriodSelectivity.objects.filter(
        unit__insertion=insertion
    ).values_list(
        "unit_id", "period__name", "selectivity__name", "ipsi_firing_rate", "contra_firing_rate"
    ):
        by_period.setdefault(period, {})[unit_id] = (sel, ipsi, contra)
    for j, period in enumerate(("sample", "delay", "response")):
        ax = axes[1, j]
        rows = by_period.get(period, {})
        for sel, color in SELECTIVITY_COLORS.items():
            idx = [k for k, p in enumerate(pk) if rows.get(p, (None,))[0] == sel]
            if not idx:
                ax.scatter([], [], color=color, label=f"{sel} (0)")
                continue
            diff = np.array([abs((rows[pk[k]][2] or 0.0) - (rows[pk[k]][1] or 0.0)) for k in idx])
            ax.scatter(
                xj[idx],
                y[idx],
                s=10 + 4 * np.minimum(diff, 40),
                color=color,
                alpha=0.8,
                edgecolors="none",
                label=f"{sel} ({len(idx)})",
            )
        missing = [k for k, p in enumerate(pk) if p not in rows]
        if missing:
            ax.scatter(
                xj[missing],
                y[missing],
                s=6,
                c="0.85",
                marker="x",
                linewidths=0.5,
                label=f"not computed ({len(missing)})",
            )
        ax.set_title(f"{period} selectivity", fontsize=9)
        ax.set_xlabel("x (µm)")
        ax.set_ylabel("depth on probe (µm from tip)")
        ax.legend(fontsize=7, loc="lower right", frameon=False)
    ax = axes[1, 3]
    counts = dict(
        UnitCellType.objects.filter(unit__insertion=insertion)
        .values_list("cell_type__name")
        .annotate(n=Count("pk"))
    )
    names = sorted(counts) or ["none"]
    ax.bar(
        names,
        [counts.get(n, 0) for n in names],
        color=["tab:purple", "tab:green", "0.6"][: len(names)],
    )
    ax.set_title("cell types", fontsize=9)
    ax.set_ylabel("units")
    fig.suptitle(f"{insertion_title(insertion)} · {len(pk)} units", fontsize=10)
    return fig


def insertion_plot(
    insertion: ProbeInsertion, fmt: str, plot_input: InsertionPlotInput | None = None
) -> bytes:
    plot_input = plot_input or insertion_plot_input(insertion)
    return core_plots.cached_figure(
        INSERTION_KIND,
        insertion.pk,
        plot_input.version,
        fmt,
        lambda: render_insertion_figure(insertion),
    )


# ---- admin ---------------------------------------------------------------------------------------
def plot_url(kind: str, pk: int, fmt: str) -> str:
    name = {"unit": "psth-unitanalysis-plot", "insertion": "psth-insertionanalysis-plot"}[kind]
    return reverse(name, kwargs={"pk": pk, "format": fmt})


def plot_html(kind: str, obj: Unit | ProbeInsertion) -> SafeString:
    """An admin page's figure (served, cached, by the API) with PNG and SVG links."""
    if obj.pk is None:
        return mark_safe("")
    size = UNIT_SIZE if kind == "unit" else INSERTION_SIZE
    if kind == "unit":
        available = UnitPsth.objects.filter(unit=obj).exists()
        missing = "No PSTH yet: the UnitPsth step has not made this unit's insertion."
    else:
        available = Unit.objects.filter(insertion=obj).exists()
        missing = "No units in this insertion."
    context = {
        "available": available,
        "missing": missing,
        "title": "Raster and PSTH" if kind == "unit" else "Unit characteristics",
        "png_url": plot_url(kind, obj.pk, "png"),
        "svg_url": plot_url(kind, obj.pk, "svg"),
        "width": int(size[0] * DPI),
        "height": int(size[1] * DPI),
    }
    return mark_safe(  # noqa: S308 - rendered by an autoescaping template
        render_to_string("admin/psth/plot.html", context)
    )
