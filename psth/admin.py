"""Admin of the analyses: trial conditions, and per unit / per insertion pages with the figures.

The tables of units and insertions belong to the ephys app (and its admin); the analysis pages
are registered on proxies (``UnitAnalysis``, ``InsertionAnalysis``) so that they need nothing
from the ephys admin. :func:`unit_analysis_panel` and :func:`insertion_analysis_panel` return
the same HTML for any other change page that wants it (e.g. ``readonly_fields`` of the ephys
unit and insertion admins).
"""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Count, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

from ephys.models import ProbeInsertion, Unit
from mapsite.core.admin_base import EMPTY, LookupAdmin, ReadOnlyAdmin, admin_link
from mapsite.pipeline.models import Job, JobStatus

from . import plots
from . import steps as ps
from .models import (
    InsertionAnalysis,
    PeriodSelectivity,
    Selectivity,
    TrialCondition,
    UnitAnalysis,
)

admin.site.register(Selectivity, LookupAdmin)


@admin.register(TrialCondition)
class TrialConditionAdmin(LookupAdmin):
    list_display = ["name", "func", "args", "hash"]
    search_fields = ["name"]
    ordering = ["id"]


# --- panels ---------------------------------------------------------------------------------------
def unit_analysis_panel(unit: Unit) -> SafeString:
    """Results of a unit (cell type, selectivity by period, location, criteria) and its figure."""
    if unit.pk is None:
        return mark_safe("")
    periods = list(
        PeriodSelectivity.objects.filter(unit=unit)
        .select_related("period", "selectivity")
        .order_by("period_id")
    )

    def one(attr: str, field: str) -> object:
        row = getattr(unit, attr, None) if _has(unit, attr) else None
        if row is None:
            return None
        value = row
        for part in field.split("."):
            value = getattr(value, part, None)
        return value

    context = {
        "cell_type": one("cell_type", "cell_type.name"),
        "waveform_width": one("cell_type", "waveform_width"),
        "selectivity": one("selectivity", "selectivity.name"),
        "coarse_area": one("coarse_location", "brain_area.name"),
        "coarse_hemisphere": one("coarse_location", "hemisphere.name"),
        "drift": one("drift", "drift_metric"),
        "criteria_passed": one("passing_criteria", "criteria_passed"),
        "isi_violation": one("stat", "isi_violation"),
        "avg_firing_rate": one("stat", "avg_firing_rate"),
        "periods": periods,
        "figure": plots.plot_html("unit", unit),
        "empty": EMPTY,
    }
    return mark_safe(  # noqa: S308 - rendered by an autoescaping template
        render_to_string("admin/psth/unit_panel.html", context)
    )


def _has(obj: object, attr: str) -> bool:
    try:
        return getattr(obj, attr) is not None
    except Exception:  # noqa: BLE001 - a missing reverse one-to-one row
        return False


def insertion_jobs(insertion_ids: list[int]) -> dict[int, dict[str, str]]:
    out: dict[int, dict[str, str]] = {i: {} for i in insertion_ids}
    for key_id, step, status in Job.objects.filter(
        step__in=ps.STEPS, key_id__in=insertion_ids
    ).values_list("key_id", "step", "status"):
        out[key_id][step] = status
    return out


def insertion_analysis_panel(insertion: ProbeInsertion) -> SafeString:
    """Progress of the analysis steps of an insertion, links to its units, and its figure."""
    if insertion.pk is None:
        return mark_safe("")
    statuses = insertion_jobs([insertion.pk])[insertion.pk]
    missing = {s.name for s in _steps() if s.missing_keys().filter(pk=insertion.pk).exists()}
    rows = [
        {
            "step": name,
            "status": statuses.get(name) or ("not queued yet" if name in missing else "no key"),
            "url": reverse("admin:pipeline_job_changelist") + f"?step={name}",
        }
        for name in ps.STEPS
    ]
    context = {
        "steps": rows,
        "units_url": reverse("admin:psth_unitanalysis_changelist")
        + f"?insertion__id__exact={insertion.pk}",
        "figure": plots.plot_html("insertion", insertion),
    }
    return mark_safe(  # noqa: S308 - rendered by an autoescaping template
        render_to_string("admin/psth/insertion_panel.html", context)
    )


def _analysed(insertion_id: int) -> bool:
    return Job.objects.filter(step__in=ps.STEPS, key_id=insertion_id).exists()


def unit_analysis_panel_if_any(unit: Unit) -> str:
    """:func:`unit_analysis_panel`, or "" while no analysis step has a job for its insertion
    (the hook of the ephys unit page: no "Plots" section then)."""
    return unit_analysis_panel(unit) if unit.pk and _analysed(unit.insertion_id) else ""


def insertion_analysis_panel_if_any(insertion: ProbeInsertion) -> str:
    """:func:`insertion_analysis_panel`, or "" while no analysis step has a job for it."""
    return insertion_analysis_panel(insertion) if insertion.pk and _analysed(insertion.pk) else ""


def _steps() -> list:
    from mapsite.pipeline.steps import get_step

    return [get_step(name) for name in ps.STEPS]


# --- unit analyses --------------------------------------------------------------------------------
@admin.register(UnitAnalysis)
class UnitAnalysisAdmin(ReadOnlyAdmin):
    """One page per unit: its analysis results and raster/PSTH figure."""

    list_display = [
        "unit",
        "insertion_link",
        "quality",
        "cell_type_name",
        "selectivity_name",
        "coarse_area",
        "criteria",
    ]
    list_select_related = [
        "insertion__session__subject__water_restriction",
        "quality",
        "cell_type__cell_type",
        "selectivity__selectivity",
        "coarse_location__brain_area",
        "passing_criteria",
    ]
    list_filter = [
        "quality",
        ("cell_type__cell_type", admin.RelatedOnlyFieldListFilter),
        ("selectivity__selectivity", admin.RelatedOnlyFieldListFilter),
        ("coarse_location__brain_area", admin.RelatedOnlyFieldListFilter),
        "passing_criteria__criteria_passed",
    ]
    search_fields = ["insertion__session__subject__water_restriction__water_restriction_number"]
    search_help_text = "Water-restriction number (e.g. dl25)"
    ordering = ["insertion", "unit"]
    fields = [
        "insertion_link",
        "unit",
        "clustering_method",
        "quality",
        "unit_posx",
        "unit_posy",
        "unit_amp",
        "unit_snr",
        "spike_count",
        "analysis",
    ]
    readonly_fields = fields

    def has_delete_permission(self, request: HttpRequest, obj: Unit | None = None) -> bool:
        return False  # units are deleted by a re-sort or with their session, not here

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest | None = None) -> bool:
        # the insertion page links here with its units selected
        return lookup == "insertion__id__exact" or super().lookup_allowed(lookup, value, request)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).defer("waveform")

    @admin.display(description="insertion", ordering="insertion")
    def insertion_link(self, obj: Unit) -> str:
        return admin_link(InsertionAnalysis(pk=obj.insertion_id), str(obj.insertion))

    @admin.display(description="cell type", ordering="cell_type__cell_type__name")
    def cell_type_name(self, obj: Unit) -> str:
        return obj.cell_type.cell_type.name if _has(obj, "cell_type") else EMPTY

    @admin.display(description="selectivity", ordering="selectivity__selectivity__name")
    def selectivity_name(self, obj: Unit) -> str:
        return obj.selectivity.selectivity.name if _has(obj, "selectivity") else EMPTY

    @admin.display(description="coarse area")
    def coarse_area(self, obj: Unit) -> str:
        if _has(obj, "coarse_location") and obj.coarse_location.brain_area:
            return obj.coarse_location.brain_area.name
        return EMPTY

    @admin.display(description="passes criteria", boolean=True)
    def criteria(self, obj: Unit) -> bool | None:
        return obj.passing_criteria.criteria_passed if _has(obj, "passing_criteria") else None

    @admin.display(description="analyses")
    def analysis(self, obj: Unit) -> SafeString:
        return unit_analysis_panel(obj)


# --- insertion analyses ---------------------------------------------------------------------------
@admin.register(InsertionAnalysis)
class InsertionAnalysisAdmin(ReadOnlyAdmin):
    """One page per probe insertion: progress of its analyses and the unit characteristics."""

    list_display = ["insertion", "session_link", "insertion_number", "units", "analyses_done"]
    list_select_related = ["session__subject__water_restriction"]
    search_fields = ["session__subject__water_restriction__water_restriction_number"]
    search_help_text = "Water-restriction number (e.g. dl25)"
    ordering = ["-session__start_time", "insertion_number"]
    fields = ["session_link", "insertion_number", "probe", "sampling_rate", "analysis"]
    readonly_fields = fields

    def has_delete_permission(
        self, request: HttpRequest, obj: ProbeInsertion | None = None
    ) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        done = (
            Job.objects.filter(step__in=ps.STEPS, key_id=OuterRef("pk"), status=JobStatus.DONE)
            .order_by()
            .values("key_id")
            .annotate(n=Count("pk"))
            .values("n")
        )
        units = (
            Unit.objects.filter(insertion=OuterRef("pk"))
            .order_by()
            .values("insertion")
            .annotate(n=Count("pk"))
            .values("n")
        )
        return (
            super()
            .get_queryset(request)
            .annotate(n_units=Coalesce(Subquery(units), 0), n_done=Coalesce(Subquery(done), 0))
        )

    @admin.display(description="insertion")
    def insertion(self, obj: ProbeInsertion) -> str:
        return f"probe {obj.insertion_number}"

    @admin.display(description="session", ordering="session__start_time")
    def session_link(self, obj: ProbeInsertion) -> str:
        return admin_link(obj.session)

    @admin.display(description="units", ordering="n_units")
    def units(self, obj: ProbeInsertion) -> str:
        n = getattr(obj, "n_units", None)
        url = reverse("admin:psth_unitanalysis_changelist") + f"?insertion__id__exact={obj.pk}"
        return format_html('<a href="{}">{}</a>', url, n if n is not None else "units")

    @admin.display(description="analyses done", ordering="n_done")
    def analyses_done(self, obj: ProbeInsertion) -> str:
        return f"{getattr(obj, 'n_done', 0)} / {len(ps.STEPS)}"

    @admin.display(description="analyses")
    def analysis(self, obj: ProbeInsertion) -> SafeString:
        return insertion_analysis_panel(obj)
