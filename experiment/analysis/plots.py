"""Behavior performance figure of a session (§12 ``SessionLevelReport.behavior_performance``).

Left: the moving-average correct proportion over trials, early-lick trials marked along the
bottom; right (only when the session has photostimulation trials): fraction hit of control vs
stimulated trials, left and right trials, no early lick. Definitions in
:mod:`experiment.analysis.behavior`.

Drawn on a ``matplotlib.figure.Figure`` (Agg), never pyplot, so concurrent requests do not share
state; 800 × 500 px at the default size. Served, cached, by ``/api/sessions/{id}/
performance-plot.png|.svg`` and shown on the session's admin page.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe

from experiment import models
from mapsite.core import plots as core_plots

from . import queries
from .behavior import (
    EFFECT_INSTRUCTIONS,
    EffectPoint,
    PerformanceCurve,
    SessionLabels,
    performance_curve,
)
from .behavior import photostim_effect as compute_photostim_effect

if TYPE_CHECKING:  # matplotlib is imported when a figure is drawn (the admin imports this)
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

KIND = "behavior-performance"
# Bump when the drawing changes: cached figures of the old code are then not served again.
PLOT_VERSION = 1
WIDTH_IN, HEIGHT_IN, DPI = 8.0, 5.0, 100
INSTRUCTION_COLORS = {"left": "tab:blue", "right": "tab:red"}
EARLY_COLOR = "tab:orange"


class NoBehaviorTrials(Exception):
    """The session has no behavior trials: there is nothing to plot."""


@dataclass(frozen=True)
class PlotInput:
    session_id: int
    title: str
    labels: SessionLabels

    def version(self) -> str:
        return core_plots.fingerprint(PLOT_VERSION, self.title, self.labels.fingerprint_parts())


def session_title(session: models.Session) -> str:
    """``dl25 · subject 412 · session 3 · 2018-02-25 11:23`` (lab time)."""
    wr = getattr(session.subject, "water_restriction", None)
    parts = [wr.water_restriction_number] if wr else []
    parts += [f"subject {session.subject.subject_id}", f"session {session.session}"]
    parts.append(timezone.localtime(session.start_time).strftime("%Y-%m-%d %H:%M"))
    return " · ".join(parts)


def plot_input(session: models.Session) -> PlotInput:
    """Labels of the session (one or two queries); raises :class:`NoBehaviorTrials`."""
    labels = queries.session_labels(session)
    if not len(labels):
        raise NoBehaviorTrials(f"Session {session.pk} has no behavior trials: nothing to plot.")
    return PlotInput(session.pk, session_title(session), labels)


def render_performance_figure(data: PlotInput) -> Figure:
    """The figure (not yet rasterised): one panel, two with photostimulation."""
    from matplotlib.figure import Figure

    curve = performance_curve(data.labels)
    effect = compute_photostim_effect(data.labels)
    fig = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI, layout="constrained")
    if effect:
        ax_perf, ax_stim = fig.subplots(1, 2, width_ratios=[2.2, 1])
    else:
        ax_perf, ax_stim = fig.subplots(1, 1), None
    _draw_performance(ax_perf, curve, data.labels)
    if ax_stim is not None:
        _draw_photostim_effect(ax_stim, effect)
    fig.suptitle(data.title, fontsize=12)
    return fig


def _draw_performance(ax: Axes, curve: PerformanceCurve, labels: SessionLabels) -> None:
    first, last = int(labels.trial.min()), int(labels.trial.max())
    ax.axhline(0.5, color="0.6", lw=0.8, ls=":", zorder=1)
    if len(curve.trial):
        ax.plot(
            curve.trial,
            curve.moving_average,
            color="black",
            lw=1.6,
            label=f"moving average ({curve.window} trials)",
            zorder=3,
        )
        ax.axhline(
            curve.performance,
            color="0.35",
            lw=1,
            ls="--",
            label=f"session: {curve.performance:.0%} of {len(curve.trial)}",
            zorder=2,
        )
    else:
        ax.text(
            0.5,
            0.55,
            "no hit or miss trials",
            transform=ax.transAxes,
            ha="center",
            va="center",
            color="0.4",
        )
    early = labels.trial[labels.early_lick]
    if len(early):
        ax.plot(
            early,
            np.full(len(early), -0.04),
            ls="none",
            marker="|",
            ms=9,
            mew=1.2,
            color=EARLY_COLOR,
            label=f"early lick ({len(early)} trials)",
            clip_on=False,
            zorder=4,
        )
    pad = max(1.0, 0.01 * (last - first))
    ax.set_xlim(first - pad, last + pad)
    ax.set_ylim(-0.08, 1.2)
    ax.set_yticks([0, 0.25, 0.5, 0.75, 1])
    ax.set_xlabel("Trial")
    ax.set_ylabel("Proportion correct: hit / (hit + miss)")
    ax.set_title("Performance (ignore and free-water trials left out)", fontsize=10)
    ax.grid(axis="y", color="0.92", lw=0.8)
    ax.spines[["top", "right"]].set_visible(False)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(
            loc="upper center",
            ncol=3,
            fontsize=8,
            frameon=False,
            handlelength=1.5,
            columnspacing=1.2,
            borderaxespad=0.3,
        )


def _draw_photostim_effect(ax: Axes, effect: list[EffectPoint]) -> None:
    groups = list(dict.fromkeys(p.group for p in effect))
    x = np.arange(len(groups))
    width = 0.38
    for k, instruction in enumerate(EFFECT_INSTRUCTIONS):
        points = {p.group: p for p in effect if p.instruction == instruction}
        fractions = [points[g].fraction for g in groups]
        offsets = x + (k - 0.5) * width
        ax.bar(
            offsets,
            [0 if f is None else f for f in fractions],
            width=width * 0.92,
            color=INSTRUCTION_COLORS[instruction],
            alpha=0.85,
            label=f"{instruction} trials",
        )
        for xi, f, g in zip(offsets, fractions, groups, strict=True):
            text = "–" if f is None else f"{points[g].hits}/{points[g].trials}"
            ax.text(xi, (f or 0) + 0.015, text, ha="center", va="bottom", fontsize=7, rotation=90)
    ax.set_xticks(x, [g.replace(" ", "\n") for g in groups], fontsize=8)
    ax.set_xlim(-0.6, len(groups) - 0.4)
    ax.set_ylim(0, 1.2)
    ax.set_yticks([0, 0.25, 0.5, 0.75, 1])
    ax.set_ylabel("Fraction hit (no early lick)")
    ax.set_title("Photostim effect", fontsize=10)
    ax.grid(axis="y", color="0.92", lw=0.8)
    ax.set_axisbelow(True)
    ax.spines[["top", "right"]].set_visible(False)
    ax.legend(loc="upper center", ncol=2, fontsize=8, frameon=False, handlelength=1.2)
    if len(groups) > 4:
        for tick in ax.get_xticklabels():
            tick.set_rotation(30)
            tick.set_ha("right")


def cached_performance_plot(data: PlotInput, fmt: str) -> bytes:
    """PNG or SVG bytes of the figure, rendered only when this version is not cached yet."""
    return core_plots.cached_figure(
        KIND, data.session_id, data.version(), fmt, lambda: render_performance_figure(data)
    )


def performance_plot(session: models.Session, fmt: str) -> bytes:
    """PNG or SVG bytes of the session's figure (cached); raises :class:`NoBehaviorTrials`."""
    return cached_performance_plot(plot_input(session), fmt)


def file_stem(session: models.Session) -> str:
    """``dl25_20180225_112328`` as the original named its report files (lab time)."""
    wr = getattr(session.subject, "water_restriction", None)
    who = wr.water_restriction_number if wr else str(session.subject.subject_id)
    return f"{who}_{timezone.localtime(session.start_time):%Y%m%d_%H%M%S}"


def plot_url(session_id: int, fmt: str) -> str:
    """``/api/sessions/{id}/performance-plot.{png|svg}``."""
    return reverse("experiment-session-performance-plot", kwargs={"pk": session_id, "format": fmt})


def performance_plot_html(session: models.Session) -> SafeString:
    """The admin's session page: the figure (served by the API, so it is cached and loads
    after the page) with links to PNG and SVG, or why there is none."""
    if session.pk is None:
        return mark_safe("")
    has_trials = models.BehaviorTrial.objects.filter(trial__session=session).exists()
    context = {
        "has_trials": has_trials,
        "png_url": plot_url(session.pk, "png"),
        "svg_url": plot_url(session.pk, "svg"),
        "width": int(WIDTH_IN * DPI),
        "height": int(HEIGHT_IN * DPI),
    }
    return mark_safe(  # noqa: S308 - rendered by an autoescaping template
        render_to_string("admin/experiment/session/performance_plot.html", context)
    )
