"""Admin of schema ``lab``: animals, surgeries, viruses, people and rigs — daily data entry.

Every page lists in a constant number of queries (select_related on what each row shows, no full
counts); edits are recorded per object (History page: who, when, what changed).
"""

from __future__ import annotations

from decimal import Decimal

from django.contrib import admin
from django.db.models import Max, QuerySet, prefetch_related_objects
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html

from mapsite.core.admin_base import (
    HistoryAdmin,
    LookupAdmin,
    ReadOnlyInline,
    StackedInline,
    TabularInline,
)

from .models import (
    AnimalSource,
    AnimalStrain,
    BrainArea,
    Hemisphere,
    ModifiedGene,
    Person,
    PhotostimDevice,
    Rig,
    Serotype,
    SkullReference,
    Subject,
    SubjectGeneModification,
    SubjectStrain,
    Surgery,
    SurgeryProcedure,
    Virus,
    VirusInjection,
    VirusNote,
    VirusSource,
    WaterRestriction,
    Whisker,
)

# --- Lookups (contents from the data migrations; read-only) ------------------------------------

for _lookup in (AnimalStrain, AnimalSource, VirusSource, SkullReference, BrainArea, Hemisphere):
    admin.site.register(_lookup, LookupAdmin)


@admin.register(Whisker)
class WhiskerAdmin(LookupAdmin):
    pass


@admin.register(PhotostimDevice)
class PhotostimDeviceAdmin(LookupAdmin):
    list_display = ["name", "excitation_wavelength", "description"]


# --- Lab resources -----------------------------------------------------------------------------


@admin.register(Person)
class PersonAdmin(HistoryAdmin):
    list_display = ["username", "fullname"]
    search_fields = ["username", "fullname"]
    fields = ["username", "fullname"]


@admin.register(Rig)
class RigAdmin(HistoryAdmin):
    list_display = ["name", "room", "description"]
    search_fields = ["name", "room", "description"]
    fields = ["name", "room", "description"]


@admin.register(ModifiedGene)
class ModifiedGeneAdmin(HistoryAdmin):
    list_display = ["name", "description"]
    search_fields = ["name", "description"]
    fields = ["name", "description"]


@admin.register(Serotype)
class SerotypeAdmin(HistoryAdmin):
    list_display = ["name"]
    search_fields = ["name"]


class VirusNoteInline(TabularInline):
    model = VirusNote
    fields = ["note_id", "note"]


@admin.register(Virus)
class VirusAdmin(HistoryAdmin):
    list_display = [
        "virus_id",
        "name",
        "serotype",
        "source",
        "titer_display",
        "person",
        "order_date",
    ]
    list_display_links = ["virus_id", "name"]
    list_select_related = ["serotype", "source", "person"]
    list_filter = ["source", "serotype", ("person", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["virus_id", "name", "remarks", "serotype__name"]
    autocomplete_fields = ["person", "serotype"]
    date_hierarchy = "order_date"
    fields = [
        ("virus_id", "name"),
        ("serotype", "source"),
        ("titer", "order_date"),
        "person",
        "remarks",
    ]
    inlines = [VirusNoteInline]
    history_related = [(VirusNote, "virus")]

    @admin.display(description="titer", ordering="titer")
    def titer_display(self, virus: Virus) -> str:
        """1e12 reads better than 1000000000000.0 in a column."""
        return f"{Decimal(virus.titer):.2e}"


# --- Animals -----------------------------------------------------------------------------------


class WaterRestrictionInline(StackedInline):
    model = WaterRestriction
    max_num = 1
    extra = 1  # shown (empty) while the subject has none; not saved if left empty
    fields = [("water_restriction_number", "cage_number"), ("wr_start_date", "wr_start_weight")]


class SubjectStrainInline(TabularInline):
    model = SubjectStrain
    fields = ["strain"]
    inline_select_related = ["subject__water_restriction", "strain"]
    verbose_name = "strain"


class SubjectGeneModificationInline(TabularInline):
    model = SubjectGeneModification
    fields = ["gene_modification", "zygosity", "type"]
    inline_select_related = ["subject__water_restriction", "gene_modification"]
    verbose_name = "gene modification"


class SurgeryInline(ReadOnlyInline):
    """A compact list of the subject's surgeries; injections are entered on the surgery page."""

    model = Surgery
    fields = ["surgery_id", "start_time", "end_time", "person", "description"]
    show_change_link = True
    template = "admin/lab/subject/surgery_inline.html"
    inline_select_related = ["subject__water_restriction", "person"]


@admin.register(Subject)
class SubjectAdmin(HistoryAdmin):
    list_display = [
        "subject_id",
        "water_restriction_number",
        "sex",
        "date_of_birth",
        "responsible",
        "source",
        "cage_number",
    ]
    list_select_related = ["water_restriction", "responsible", "source"]
    list_filter = ["sex", "source", ("responsible", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["subject_id", "water_restriction__water_restriction_number"]
    search_help_text = "Subject id or water-restriction number (e.g. dl7)"
    autocomplete_fields = ["responsible"]
    readonly_fields = ["complete_genotype", "sessions_link", "created_at", "updated_at"]
    inlines = [
        WaterRestrictionInline,
        SubjectStrainInline,
        SubjectGeneModificationInline,
        SurgeryInline,
    ]
    history_related = [
        (WaterRestriction, "subject"),
        (SubjectStrain, "subject"),
        (SubjectGeneModification, "subject"),
        (Surgery, "subject"),
    ]

    def get_inlines(self, request: HttpRequest, obj: Subject | None) -> list:
        if obj is None:  # a new subject has no surgeries yet; add them once it exists
            return [i for i in self.inlines if i is not SurgeryInline]
        return self.inlines

    def get_fieldsets(self, request: HttpRequest, obj: Subject | None = None) -> list:
        main = (
            None,
            {
                "fields": [
                    ("subject_id", "sex"),
                    ("date_of_birth", "cage_number"),
                    ("responsible", "source"),
                ]
            },
        )
        if obj is None:
            return [main]
        return [
            main,
            (None, {"fields": ["complete_genotype", "sessions_link"]}),
            ("Record", {"classes": ["collapse"], "fields": [("created_at", "updated_at")]}),
        ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Subject]:
        # str(subject) shows the water-restriction number (autocomplete, links): join it.
        return super().get_queryset(request).select_related("water_restriction")

    def get_object(
        self, request: HttpRequest, object_id: str, from_field: str | None = None
    ) -> Subject | None:
        obj = super().get_object(request, object_id, from_field)
        if obj is not None:  # complete_genotype reads these: 3 queries instead of 2 + N
            prefetch_related_objects([obj], "strains", "gene_modifications__gene_modification")
        return obj

    @admin.display(
        description="water restriction", ordering="water_restriction__water_restriction_number"
    )
    def water_restriction_number(self, subject: Subject) -> str | None:
        wr = getattr(subject, "water_restriction", None)
        return wr.water_restriction_number if wr else None

    @admin.display(description="sessions")
    def sessions_link(self, subject: Subject) -> str:
        n = subject.sessions.count()
        try:
            url = reverse("admin:experiment_session_changelist")
        except NoReverseMatch:
            return str(n)
        return format_html(
            '<a href="{}?subject__id__exact={}">{} session(s)</a>', url, subject.pk, n
        )


@admin.register(WaterRestriction)
class WaterRestrictionAdmin(HistoryAdmin):
    list_display = [
        "water_restriction_number",
        "subject_id_display",
        "cage_number",
        "wr_start_date",
        "wr_start_weight",
    ]
    list_select_related = ["subject"]
    search_fields = ["water_restriction_number", "subject__subject_id"]
    autocomplete_fields = ["subject"]
    date_hierarchy = "wr_start_date"
    fields = [
        "subject",
        ("water_restriction_number", "cage_number"),
        ("wr_start_date", "wr_start_weight"),
    ]

    @admin.display(description="subject", ordering="subject__subject_id")
    def subject_id_display(self, wr: WaterRestriction) -> int:
        return wr.subject.subject_id


class VirusInjectionInline(TabularInline):
    model = VirusInjection
    fields = [
        "injection_id",
        "virus",
        "skull_reference",
        "ap_location",
        "ml_location",
        "dv_location",
        "volume",
        "dilution",
        "description",
    ]
    autocomplete_fields = ["virus"]
    inline_select_related = ["surgery__subject__water_restriction", "virus"]


class SurgeryProcedureInline(TabularInline):
    model = SurgeryProcedure
    inline_select_related = ["surgery__subject__water_restriction"]
    fields = [
        "procedure_id",
        "skull_reference",
        "ap_location",
        "ml_location",
        "dv_location",
        "hemisphere",
        "brain_area",
        "description",
    ]


@admin.register(Surgery)
class SurgeryAdmin(HistoryAdmin):
    list_display = ["subject", "surgery_id", "start_time", "end_time", "person", "description"]
    list_display_links = ["subject", "surgery_id"]
    list_select_related = ["subject__water_restriction", "person"]
    list_filter = [("person", admin.RelatedOnlyFieldListFilter)]
    search_fields = [
        "subject__subject_id",
        "subject__water_restriction__water_restriction_number",
        "description",
        "person__username",
    ]
    search_help_text = "Subject id, water-restriction number, surgeon or description"
    date_hierarchy = "start_time"
    autocomplete_fields = ["subject", "person"]
    fields = [("subject", "surgery_id"), "person", ("start_time", "end_time"), "description"]
    inlines = [VirusInjectionInline, SurgeryProcedureInline]
    history_related = [(VirusInjection, "surgery"), (SurgeryProcedure, "surgery")]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Surgery]:
        return super().get_queryset(request).select_related("subject__water_restriction")

    def get_changeform_initial_data(self, request: HttpRequest) -> dict:
        """``?subject=<pk>`` (the link on the subject page) also proposes the next surgery id."""
        initial = super().get_changeform_initial_data(request)
        subject = initial.get("subject")
        if subject and str(subject).isdigit() and "surgery_id" not in initial:
            last = Surgery.objects.filter(subject_id=subject).aggregate(m=Max("surgery_id"))["m"]
            initial["surgery_id"] = (last or 0) + 1
        return initial
