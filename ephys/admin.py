"""Admin of schema ``ephys``: probe insertions (where people enter location, regions, quality,
depth criteria and notes), units with their metrics (read-only), the archive and the ingest's
bookkeeping. Probes (schema ``lab``) are registered here, next to their insertions.

Insertions and units come from the ephys ingest: their own columns are never edited here. Every
changelist runs a fixed number of queries whatever the number of rows (joins and correlated
counts, no per-row queries); edits of the manual tables are recorded (History page).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import models
from django.db.models import Count, OuterRef, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.text import capfirst

from ephys.ingest.phy import CLUSTER_METRIC_COLUMNS, WAVEFORM_METRIC_COLUMNS
from experiment.models import SessionTrial
from lab.models import Probe
from mapsite.core.admin_base import (
    EMPTY,
    AutocompleteFilter,
    HistoryAdmin,
    LookupAdmin,
    ReadOnlyAdmin,
    ReadOnlyInline,
    StackedInline,
    TabularInline,
    admin_link,
)

from .models import (
    ArchivedClustering,
    ArchivedUnit,
    BrainAreaDepthCriteria,
    CellType,
    ClusteringLabel,
    ClusteringMethod,
    ClusterMetric,
    EphysRecording,
    GoodPeriod,
    GoodTrial,
    InsertionLocation,
    InsertionNote,
    ProbeInsertion,
    ProbeInsertionQuality,
    RecordableBrainRegion,
    SortedOutput,
    Unit,
    UnitComment,
    UnitNote,
    UnitQualityType,
    WaveformMetric,
)

INSERTION_PATH = "insertion__session__subject__water_restriction"  # what str(insertion) reads
SESSION_PATH = "session__subject__water_restriction"  # what str(session) reads
TICK = "✓"
ARRAY_COLUMNS = ("spike_times", "spike_sites", "spike_depths", "waveform")


def count_of(model: type[models.Model], fk: str) -> Coalesce:
    """A correlated ``COUNT(*)``: PostgreSQL evaluates it for the rows of the page only."""
    counted = (
        model.objects.filter(**{fk: OuterRef("pk")})
        .order_by()
        .values(fk)
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(counted, output_field=models.IntegerField()), Value(0))


def first_presence_ratio() -> Subquery:
    """Presence ratio of a unit's first ClusterMetric epoch (units have one, usually)."""
    return Subquery(
        ClusterMetric.objects.filter(unit=OuterRef("pk"))
        .order_by("epoch_name_quality_metrics")
        .values("presence_ratio")[:1],
        output_field=models.FloatField(),
    )


def _number(value: float | None, digits: int = 2) -> str:
    return EMPTY if value is None else f"{value:.{digits}f}"


# --- Lookups (contents from the data migrations; read-only) ------------------------------------

for _lookup in (UnitQualityType, CellType, ClusteringMethod):
    admin.site.register(_lookup, LookupAdmin)


# --- Probes (schema lab) -----------------------------------------------------------------------


class ProbeInsertionOfProbeInline(ReadOnlyInline):
    """Where the probe has been: its insertions, newest first."""

    model = ProbeInsertion
    fields = ["session", "insertion_number", "electrode_config", "sampling_rate"]
    show_change_link = True
    inline_select_related = [SESSION_PATH, "electrode_config__probe_type", "probe__probe_type"]
    ordering = ["-session__start_time"]
    verbose_name_plural = "insertions"


@admin.register(Probe)
class ProbeAdmin(HistoryAdmin):
    list_display = ["serial", "probe_type", "insertion_count", "comment"]
    list_select_related = ["probe_type"]
    list_filter = ["probe_type"]
    search_fields = ["serial", "comment"]
    fields = ["serial", "probe_type", "comment"]
    inlines = [ProbeInsertionOfProbeInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Probe]:
        return (
            super()
            .get_queryset(request)
            .select_related("probe_type")  # str() shows it
            .annotate(insertion_count=count_of(ProbeInsertion, "probe"))
        )

    @admin.display(description="insertions", ordering="insertion_count")
    def insertion_count(self, probe: Probe) -> int:
        return probe.insertion_count


# --- Probe insertions: ingested, described by people ---------------------------------------------


class InsertionLocationInline(StackedInline):
    """The insertion location entry: coordinates from the skull reference (µm), angles (°)."""

    model = InsertionLocation
    max_num = 1
    extra = 1  # shown (empty) while the insertion has none; not saved if left empty
    fields = [
        "skull_reference",
        ("ap_location", "ml_location", "depth"),
        ("theta", "phi", "beta"),
    ]
    formfield_overrides = {
        models.DecimalField: {"widget": forms.NumberInput(attrs={"style": "width: 8em"})},
    }
    verbose_name = verbose_name_plural = "insertion location"


class RecordableBrainRegionInline(TabularInline):
    model = RecordableBrainRegion
    fields = ["brain_area", "hemisphere"]
    verbose_name = "recordable brain region"


class BrainAreaDepthCriteriaInline(TabularInline):
    model = BrainAreaDepthCriteria
    fields = ["brain_area", "depth_upper", "depth_lower"]
    verbose_name = "brain area depth criterion"
    verbose_name_plural = "brain area depth criteria (µm along the probe)"


class InsertionNoteInline(StackedInline):
    model = InsertionNote
    max_num = 1
    extra = 1
    fields = ["note"]
    verbose_name = verbose_name_plural = "note"


class ProbeInsertionQualityInline(StackedInline):
    model = ProbeInsertionQuality
    max_num = 1
    fields = [
        ("drift_presence", "alignment_confidence", "number_of_landmarks"),
        "comment",
        "good_periods_link",
    ]
    readonly_fields = ["good_periods_link"]
    verbose_name = verbose_name_plural = "quality"

    @admin.display(description="good periods and trials")
    def good_periods_link(self, quality: ProbeInsertionQuality) -> str:
        if quality.pk is None:
            return "Save the quality first; good periods and trials are entered on its page."
        url = reverse("admin:ephys_probeinsertionquality_change", args=[quality.pk])
        return format_html('<a href="{}">edit good periods and trials</a>', url)


class ClusteringLabelInline(ReadOnlyInline):
    model = ClusteringLabel
    fields = [
        "clustering_method",
        "clustering_time",
        "quality_control",
        "manual_curation",
        "clustering_note",
        "source_path",
    ]
    inline_select_related = [INSERTION_PATH, "clustering_method"]
    verbose_name = "clustering"


def unit_rows(insertion: ProbeInsertion) -> list[dict[str, Any]]:
    """Every unit of an insertion with its main metrics: one query (values, no model objects)."""
    change_url = reverse("admin:ephys_unit_change", args=["__pk__"])
    rows = []
    for pk, method, unit, quality, amp, snr, rate, isi, presence, posy, count in (
        Unit.objects.filter(insertion=insertion)
        .order_by("clustering_method__name", "unit")
        .annotate(presence=first_presence_ratio())
        .values_list(
            "pk",
            "clustering_method__name",
            "unit",
            "quality__name",
            "unit_amp",
            "unit_snr",
            "stat__avg_firing_rate",
            "stat__isi_violation",
            "presence",
            "unit_posy",
            "spike_count",
        )
    ):
        rows.append(
            {
                "url": change_url.replace("__pk__", str(pk)),
                "method": method,
                "unit": unit,
                "quality": quality,
                "amp": _number(amp, 1),
                "snr": _number(snr),
                "rate": _number(rate),
                "isi": _number(isi, 3),
                "presence": _number(presence),
                "posy": _number(posy, 0),
                "spikes": count,
            }
        )
    return rows


@admin.register(ProbeInsertion)
class ProbeInsertionAdmin(HistoryAdmin):
    """An insertion's recording is ingested; what people know about it is entered here."""

    list_display = [
        "session",
        "insertion_number",
        "probe",
        "electrode_config",
        "sampling_rate",
        "unit_count",
        "located",
    ]
    list_display_links = ["session", "insertion_number"]
    list_select_related = [
        SESSION_PATH,
        "probe__probe_type",
        "electrode_config__probe_type",
        "location",
    ]
    list_filter = [("session", AutocompleteFilter), "probe__probe_type"]
    search_fields = [
        "session__subject__water_restriction__water_restriction_number",
        "session__subject__subject_id",
        "probe__serial",
    ]
    search_help_text = "Water-restriction number (e.g. dl7), subject id or probe serial"
    ordering = ["-session_id", "insertion_number"]
    readonly_fields = [
        "session",
        "insertion_number",
        "probe",
        "electrode_config",
        "sampling_rate",
        "units_link",
        "created_at",
        "updated_at",
    ]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    ("session", "insertion_number"),
                    ("probe", "electrode_config", "sampling_rate"),
                    "units_link",
                ]
            },
        ),
        ("Record", {"classes": ["collapse"], "fields": [("created_at", "updated_at")]}),
    ]
    inlines = [
        InsertionLocationInline,
        RecordableBrainRegionInline,
        BrainAreaDepthCriteriaInline,
        ProbeInsertionQualityInline,
        InsertionNoteInline,
        ClusteringLabelInline,
    ]
    history_related = [
        (InsertionLocation, "insertion"),
        (RecordableBrainRegion, "insertion"),
        (BrainAreaDepthCriteria, "insertion"),
        (ProbeInsertionQuality, "insertion"),
        (InsertionNote, "insertion"),
    ]
    change_form_template = "admin/ephys/probeinsertion/change_form.html"

    def get_queryset(self, request: HttpRequest) -> QuerySet[ProbeInsertion]:
        return (
            super()
            .get_queryset(request)
            .select_related(SESSION_PATH, "probe__probe_type", "electrode_config__probe_type")
            .annotate(unit_count=count_of(Unit, "insertion"))
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # insertions come from the ephys ingest

    def has_delete_permission(
        self, request: HttpRequest, obj: ProbeInsertion | None = None
    ) -> bool:
        return request.user.is_active and request.user.is_superuser  # cleaning up a bad ingest

    @admin.display(description="units", ordering="unit_count")
    def unit_count(self, insertion: ProbeInsertion) -> int:
        return insertion.unit_count

    @admin.display(description="location")
    def located(self, insertion: ProbeInsertion) -> str:
        return TICK if getattr(insertion, "location", None) is not None else ""

    @admin.display(description="units")
    def units_link(self, insertion: ProbeInsertion) -> str:
        url = reverse("admin:ephys_unit_changelist") + f"?insertion__id__exact={insertion.pk}"
        return format_html('<a href="{}">{} unit(s)</a>', url, insertion.unit_count)

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict,
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: ProbeInsertion | None = None,
    ) -> HttpResponse:
        if obj is not None and obj.pk is not None:
            context["unit_rows"] = unit_rows(obj)
            context["insertion_plots"] = mark_safe(self.insertion_plots(obj))  # noqa: S308
        return super().render_change_form(request, context, add, change, form_url, obj)

    def insertion_plots(self, insertion: ProbeInsertion) -> str:
        """Hook for the insertion's plots (probe characteristics, unit maps): return safe HTML;
        it is shown in a "Plots" section under the fields. "" shows nothing. Filled by the
        analyses (``psth.admin``) once the insertion has any."""
        from psth.admin import insertion_analysis_panel_if_any

        return insertion_analysis_panel_if_any(insertion)

    def history_view(
        self, request: HttpRequest, object_id: str, extra_context: dict | None = None
    ) -> HttpResponse:
        """The insertion has no history of its own (ingested): its History page lists the
        changes people made to its location, regions, depth criteria, quality and note."""
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            raise Http404
        if not self.has_view_or_change_permission(request, obj):
            raise PermissionDenied
        opts = self.model._meta
        context = {
            **self.admin_site.each_context(request),
            "title": f"History: {obj}",
            "object": obj,
            "opts": opts,
            "app_label": opts.app_label,
            "module_name": capfirst(str(opts.verbose_name_plural)),
            "page_obj": Paginator([], 1).get_page(1),
            "object_history_list_template": self.object_history_list_template,
            "revert_disabled": True,
            "related_history": self.related_history(request, obj.pk),
            **(extra_context or {}),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, self.object_history_template, context)


class GoodPeriodInline(TabularInline):
    model = GoodPeriod
    fields = ["start", "end"]
    verbose_name = "good period (s from the session start)"
    verbose_name_plural = "good periods (s from the session start)"


class GoodTrialInline(TabularInline):
    model = GoodTrial
    fields = ["trial"]
    verbose_name = "good trial"

    def get_formset(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        # Offer the trials of this insertion's session only.
        request._ephys_quality_session = obj.insertion.session_id if obj is not None else None
        return super().get_formset(request, obj, **kwargs)

    def formfield_for_foreignkey(
        self, db_field: models.ForeignKey, request: HttpRequest | None, **kwargs: Any
    ) -> forms.Field | None:
        if db_field.name == "trial" and request is not None:
            session = getattr(request, "_ephys_quality_session", None)
            kwargs["queryset"] = SessionTrial.objects.filter(session_id=session).order_by("trial")
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_queryset(self, request: HttpRequest) -> QuerySet[GoodTrial]:
        return super().get_queryset(request).select_related("trial").order_by("trial__trial")


@admin.register(ProbeInsertionQuality)
class ProbeInsertionQualityAdmin(HistoryAdmin):
    list_display = [
        "insertion",
        "drift_presence",
        "alignment_confidence",
        "number_of_landmarks",
        "good_period_count",
        "comment",
    ]
    list_select_related = [INSERTION_PATH]
    list_filter = ["drift_presence", "alignment_confidence"]
    search_fields = [
        "insertion__session__subject__water_restriction__water_restriction_number",
        "comment",
    ]
    autocomplete_fields = ["insertion"]
    fields = [
        "insertion",
        ("drift_presence", "alignment_confidence", "number_of_landmarks"),
        "comment",
    ]
    inlines = [GoodPeriodInline, GoodTrialInline]
    history_related = [(GoodPeriod, "quality")]

    def get_queryset(self, request: HttpRequest) -> QuerySet[ProbeInsertionQuality]:
        return (
            super()
            .get_queryset(request)
            .select_related(INSERTION_PATH)
            .annotate(good_period_count=count_of(GoodPeriod, "quality"))
        )

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return ["insertion"] if obj is not None else []  # the key of the row

    def get_inlines(self, request: HttpRequest, obj: Any) -> list:
        return self.inlines if obj is not None else []  # trials need the insertion first

    @admin.display(description="good periods", ordering="good_period_count")
    def good_period_count(self, quality: ProbeInsertionQuality) -> int:
        return quality.good_period_count


# --- Units (ingested: read-only) -----------------------------------------------------------------


class _UnitChildInline(ReadOnlyInline):
    inline_select_related: list[str] = []

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).defer("unit__waveform")


class ClusterMetricInline(_UnitChildInline):
    model = ClusterMetric
    fields = ["epoch_name_quality_metrics", *CLUSTER_METRIC_COLUMNS]
    verbose_name = "cluster metrics"
    verbose_name_plural = "cluster metrics"


class WaveformMetricInline(_UnitChildInline):
    model = WaveformMetric
    fields = ["epoch_name_waveform_metrics", *WAVEFORM_METRIC_COLUMNS]
    verbose_name = "waveform metrics"
    verbose_name_plural = "waveform metrics"


class UnitNoteInline(_UnitChildInline):
    model = UnitNote
    fields = ["note_source", "quality"]
    inline_select_related = ["quality"]
    verbose_name = "curation label"


class UnitCommentInline(_UnitChildInline):
    model = UnitComment
    fields = ["comment"]
    show_change_link = True
    verbose_name = "comment"


@admin.register(Unit)
class UnitAdmin(ReadOnlyAdmin):
    """Sorted units and their QC metrics, as ingested. Comments are added on their own page
    (the "add a comment" link); plots of a unit appear through :meth:`unit_plots`."""

    list_display = [
        "insertion",
        "clustering_method",
        "unit",
        "quality",
        "amplitude",
        "snr",
        "firing_rate",
        "isi_violation",
        "presence_ratio",
    ]
    list_display_links = ["unit"]
    list_select_related = [INSERTION_PATH, "clustering_method", "quality", "stat"]
    list_filter = [
        "quality",
        "clustering_method",
        ("insertion__session", AutocompleteFilter),
        ("insertion", AutocompleteFilter),
        "noise_label__noise",
    ]
    search_fields = [
        "=unit",
        "insertion__session__subject__water_restriction__water_restriction_number",
    ]
    search_help_text = "Cluster id or water-restriction number"
    ordering = ["-pk"]  # newest ingest first, straight off the primary key
    insertion_ordering = ["clustering_method__name", "unit"]
    readonly_fields = [
        "insertion_link",
        "electrode_site",
        "metrics",
        "arrays",
        "plots",
        "comments_link",
    ]
    inlines = [ClusterMetricInline, WaveformMetricInline, UnitNoteInline, UnitCommentInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Unit]:
        # What the list and the change page show, joined (one-to-one rows: cheap joins).
        return (
            super()
            .get_queryset(request)
            .select_related(
                INSERTION_PATH,
                "clustering_method",
                "quality",
                "electrode__electrode",
                "stat",
                "noise_label",
            )
            .annotate(presence=first_presence_ratio())
            .defer("waveform")
        )

    def get_ordering(self, request: HttpRequest) -> list[str]:
        if "insertion__id__exact" in request.GET:  # one insertion: in cluster order
            return list(self.insertion_ordering)
        return super().get_ordering(request)

    def get_fieldsets(self, request: HttpRequest, obj: Unit | None = None) -> list:
        main = [
            "insertion_link",
            ("clustering_method", "unit", "unit_uid", "quality"),
            ("electrode_site", "unit_posx", "unit_posy"),
            ("unit_amp", "unit_snr", "spike_count"),
            "metrics",
            "arrays",
            "comments_link",
        ]
        fieldsets: list = [(None, {"fields": main})]
        if obj is not None and self.unit_plots(obj):
            fieldsets.append(("Plots", {"fields": ["plots"]}))
        return fieldsets

    def unit_plots(self, unit: Unit) -> str:
        """Hook for the unit's plots (raster, PSTH, waveform): return safe HTML, e.g. ``<img>``
        tags. Whatever it returns is shown in a "Plots" section of the unit's page; "" shows
        nothing. Filled by the analyses (``psth.admin``: results, raster and PSTH) once the
        unit's insertion has any."""
        from psth.admin import unit_analysis_panel_if_any

        return unit_analysis_panel_if_any(unit)

    @admin.display(description="plots")
    def plots(self, unit: Unit) -> SafeString:
        return mark_safe(self.unit_plots(unit))  # noqa: S308 - the hook returns safe HTML

    @admin.display(description="amp (µV)", ordering="unit_amp")
    def amplitude(self, unit: Unit) -> str:
        return _number(unit.unit_amp, 1)

    @admin.display(description="SNR", ordering="unit_snr")
    def snr(self, unit: Unit) -> str:
        return _number(unit.unit_snr)

    @admin.display(description="rate (Hz)", ordering="stat__avg_firing_rate")
    def firing_rate(self, unit: Unit) -> str:
        stat = getattr(unit, "stat", None)
        return _number(stat.avg_firing_rate if stat else None)

    @admin.display(description="ISI violation", ordering="stat__isi_violation")
    def isi_violation(self, unit: Unit) -> str:
        stat = getattr(unit, "stat", None)
        return _number(stat.isi_violation if stat else None, 3)

    @admin.display(description="presence ratio", ordering="presence")
    def presence_ratio(self, unit: Unit) -> str:
        return _number(unit.presence)

    @admin.display(description="insertion")
    def insertion_link(self, unit: Unit) -> str:
        return admin_link(unit.insertion)

    @admin.display(description="electrode")
    def electrode_site(self, unit: Unit) -> str:
        e = unit.electrode
        return (
            f"site {e.electrode.electrode} (shank {e.electrode.shank}, group {e.electrode_group})"
        )

    @admin.display(description="unit stats")
    def metrics(self, unit: Unit) -> str:
        stat = getattr(unit, "stat", None)
        noise = getattr(unit, "noise_label", None)
        return format_html(
            "firing rate <b>{}</b> Hz · ISI violation <b>{}</b> · noise label <b>{}</b>",
            _number(stat.avg_firing_rate if stat else None),
            _number(stat.isi_violation if stat else None, 3),
            noise.noise if noise else EMPTY,
        )

    @admin.display(description="arrays (API)")
    def arrays(self, unit: Unit) -> str:
        base = reverse("ephys-unit-detail", args=[unit.pk])
        return format_html(
            '{} spikes · spike times <a href="{}spike-times/?format=npy">.npy</a> / '
            '<a href="{}spike-times/">JSON</a> · <a href="{}raster/">go-cue raster</a>',
            f"{unit.spike_count:,}",
            base,
            base,
            base,
        )

    @admin.display(description="comments")
    def comments_link(self, unit: Unit) -> str:
        url = reverse("admin:ephys_unitcomment_add") + f"?unit={unit.pk}"
        return format_html('<a href="{}">add a comment</a>', url)


@admin.register(UnitComment)
class UnitCommentAdmin(HistoryAdmin):
    list_display = ["unit", "comment"]
    list_select_related = [f"unit__{INSERTION_PATH}"]
    search_fields = ["comment"]
    autocomplete_fields = ["unit"]
    fields = ["unit", "comment"]
    ordering = ["-pk"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[UnitComment]:
        return (
            super()
            .get_queryset(request)
            .select_related(f"unit__{INSERTION_PATH}")
            .defer("unit__waveform")
        )


# --- Archive and ingest bookkeeping (read-only) --------------------------------------------------


class ArchivedUnitInline(ReadOnlyInline):
    model = ArchivedUnit
    fields = ["unit", "quality", "cell_type", "unit_posy", "unit_amp", "unit_snr"]
    inline_select_related = ["quality", "cell_type"]
    ordering = ["unit"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[ArchivedUnit]:
        return super().get_queryset(request).defer(*ARRAY_COLUMNS)


@admin.register(ArchivedClustering)
class ArchivedClusteringAdmin(ReadOnlyAdmin):
    list_display = [
        "insertion",
        "clustering_method",
        "clustering_time",
        "archival_time",
        "quality_control",
        "manual_curation",
        "unit_count",
    ]
    list_select_related = [INSERTION_PATH, "clustering_method"]
    list_filter = ["clustering_method", ("insertion__session", AutocompleteFilter)]
    ordering = ["-archival_time"]
    inlines = [ArchivedUnitInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[ArchivedClustering]:
        return (
            super()
            .get_queryset(request)
            .select_related(INSERTION_PATH, "clustering_method")
            .annotate(unit_count=count_of(ArchivedUnit, "clustering"))
        )

    @admin.display(description="units", ordering="unit_count")
    def unit_count(self, clustering: ArchivedClustering) -> int:
        return clustering.unit_count


class SortedOutputInline(ReadOnlyInline):
    model = SortedOutput
    fields = ["version", "status", "ingested_at", "superseded_at", "note"]
    ordering = ["-version"]


@admin.register(EphysRecording)
class EphysRecordingAdmin(ReadOnlyAdmin):
    list_display = ["relative_path", "h2o", "layout", "recording_time", "session"]
    list_select_related = [SESSION_PATH]
    list_filter = ["layout"]
    search_fields = ["h2o", "relative_path"]
    ordering = ["-pk"]
    inlines = [SortedOutputInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[EphysRecording]:
        return super().get_queryset(request).select_related(SESSION_PATH)


@admin.register(SortedOutput)
class SortedOutputAdmin(ReadOnlyAdmin):
    list_display = ["recording", "version", "status", "ingested_at", "superseded_at"]
    list_select_related = ["recording"]
    list_filter = ["status"]
    search_fields = ["recording__h2o", "recording__relative_path"]
    ordering = ["-pk"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[SortedOutput]:
        return super().get_queryset(request).select_related("recording")
