"""Viewsets of schema ``lab``.

Manual-entry tables (people, rigs, subjects, water restrictions, surgeries, viruses, genes,
probes, …) are writable by staff; lookups and probe geometry are read-only. Every queryset
loads its related rows up front so a page costs the same number of queries at any page size.
"""

from django.db.models import Prefetch

from lab import models
from mapsite.core.api import NAME_REGEX, MapModelViewSet, MapReadOnlyViewSet, lookup_viewset

from . import filters, serializers

TAGS = ("lab",)


class PersonViewSet(MapModelViewSet):
    """Lab members, by username (``/api/people/{username}/``)."""

    api_tags = TAGS
    queryset = models.Person.objects.all()
    serializer_class = serializers.PersonSerializer
    lookup_field = "username"
    lookup_value_regex = "[^/]+"
    ordering_fields = ("username", "fullname")
    ordering = ("username",)


class RigViewSet(MapModelViewSet):
    """Behavior and recording rigs, by name (``/api/rigs/{name}/``)."""

    api_tags = TAGS
    queryset = models.Rig.objects.all()
    serializer_class = serializers.RigSerializer
    lookup_field = "name"
    lookup_value_regex = "[^/]+"
    ordering_fields = ("name", "room")
    ordering = ("name",)


class SubjectViewSet(MapModelViewSet):
    """Animals, by institutional subject id (``/api/subjects/{subject_id}/``).

    Filter by ``?water_restriction_number=dl7`` to find a subject by its water-restriction
    number; strains and gene modifications are edited through their own endpoints.
    """

    api_tags = TAGS
    queryset = models.Subject.objects.select_related(
        "responsible", "source", "water_restriction"
    ).prefetch_related(
        "strains",
        Prefetch(
            "gene_modifications",
            queryset=models.SubjectGeneModification.objects.select_related(
                "gene_modification"
            ).order_by("gene_modification__name"),
        ),
    )
    serializer_class = serializers.SubjectSerializer
    filterset_class = filters.SubjectFilter
    lookup_field = "subject_id"
    lookup_value_regex = r"\d+"
    ordering_fields = ("subject_id", "date_of_birth", "water_restriction__water_restriction_number")
    ordering = ("subject_id",)


class WaterRestrictionViewSet(MapModelViewSet):
    """Water restrictions, by number (``/api/water-restrictions/{water_restriction_number}/``)."""

    api_tags = TAGS
    queryset = models.WaterRestriction.objects.select_related("subject")
    serializer_class = serializers.WaterRestrictionSerializer
    filterset_class = filters.WaterRestrictionFilter
    lookup_field = "water_restriction_number"
    lookup_value_regex = "[^/]+"
    ordering_fields = ("water_restriction_number", "wr_start_date", "subject__subject_id")
    ordering = ("water_restriction_number",)


class SubjectStrainViewSet(MapModelViewSet):
    """Strains of each subject."""

    api_tags = TAGS
    queryset = models.SubjectStrain.objects.select_related("subject__water_restriction", "strain")
    serializer_class = serializers.SubjectStrainSerializer
    filterset_class = filters.SubjectStrainFilter
    ordering_fields = ("id", "subject__subject_id")
    ordering = ("subject__subject_id", "id")


class SubjectGeneModificationViewSet(MapModelViewSet):
    """Gene modifications of each subject, with zygosity."""

    api_tags = TAGS
    queryset = models.SubjectGeneModification.objects.select_related(
        "subject__water_restriction", "gene_modification"
    )
    serializer_class = serializers.SubjectGeneModificationSerializer
    filterset_class = filters.SubjectGeneModificationFilter
    ordering_fields = ("id", "subject__subject_id")
    ordering = ("subject__subject_id", "id")


class ModifiedGeneViewSet(MapModelViewSet):
    """Modified genes, by name (``/api/modified-genes/{name}/``)."""

    api_tags = TAGS
    queryset = models.ModifiedGene.objects.all()
    serializer_class = serializers.ModifiedGeneSerializer
    lookup_field = "name"
    lookup_value_regex = NAME_REGEX
    ordering_fields = ("name",)
    ordering = ("name",)


class SerotypeViewSet(MapModelViewSet):
    """Virus serotypes, by name (``/api/serotypes/AAV2/1/``: names may contain a slash)."""

    api_tags = TAGS
    queryset = models.Serotype.objects.all()
    serializer_class = serializers.SerotypeSerializer
    lookup_field = "name"
    lookup_value_regex = NAME_REGEX
    ordering_fields = ("name",)
    ordering = ("name",)


class VirusViewSet(MapModelViewSet):
    """Viruses, by virus id (``/api/viruses/{virus_id}/``), with their notes."""

    api_tags = TAGS
    queryset = models.Virus.objects.select_related("source", "serotype", "person").prefetch_related(
        "notes"
    )
    serializer_class = serializers.VirusSerializer
    filterset_class = filters.VirusFilter
    lookup_field = "virus_id"
    lookup_value_regex = r"\d+"
    ordering_fields = ("virus_id", "name", "order_date")
    ordering = ("virus_id",)


class VirusNoteViewSet(MapModelViewSet):
    """Notes on viruses."""

    api_tags = TAGS
    queryset = models.VirusNote.objects.select_related("virus")
    serializer_class = serializers.VirusNoteSerializer
    filterset_class = filters.VirusNoteFilter
    ordering_fields = ("id", "note_id", "virus__virus_id")
    ordering = ("virus__virus_id", "note_id")


class SurgeryViewSet(MapModelViewSet):
    """Surgeries, with their virus injections and procedures (read-only here)."""

    api_tags = TAGS
    queryset = models.Surgery.objects.select_related(
        "subject__water_restriction", "person"
    ).prefetch_related(
        Prefetch(
            "virus_injections",
            queryset=models.VirusInjection.objects.select_related("virus", "skull_reference"),
        ),
        Prefetch(
            "procedures",
            queryset=models.SurgeryProcedure.objects.select_related(
                "skull_reference", "hemisphere", "brain_area"
            ),
        ),
    )
    serializer_class = serializers.SurgerySerializer
    filterset_class = filters.SurgeryFilter
    ordering_fields = ("id", "start_time", "surgery_id", "subject__subject_id")
    ordering = ("subject__subject_id", "surgery_id")


class VirusInjectionViewSet(MapModelViewSet):
    """Virus injections of surgeries (coordinates in µm from the skull reference)."""

    api_tags = TAGS
    queryset = models.VirusInjection.objects.select_related(
        "surgery__subject", "virus", "skull_reference"
    )
    serializer_class = serializers.VirusInjectionSerializer
    filterset_class = filters.VirusInjectionFilter
    ordering_fields = ("id", "injection_id", "surgery__start_time")
    ordering = ("surgery__subject__subject_id", "surgery__surgery_id", "injection_id")


class SurgeryProcedureViewSet(MapModelViewSet):
    """Procedures of surgeries (craniotomies, implants) and where they were aimed."""

    api_tags = TAGS
    queryset = models.SurgeryProcedure.objects.select_related(
        "surgery__subject", "skull_reference", "hemisphere", "brain_area"
    )
    serializer_class = serializers.SurgeryProcedureSerializer
    filterset_class = filters.SurgeryProcedureFilter
    ordering_fields = ("id", "procedure_id", "surgery__start_time")
    ordering = ("surgery__subject__subject_id", "surgery__surgery_id", "procedure_id")


class ProbeViewSet(MapModelViewSet):
    """Probes, by serial number (``/api/probes/{serial}/``)."""

    api_tags = TAGS
    queryset = models.Probe.objects.select_related("probe_type")
    serializer_class = serializers.ProbeSerializer
    filterset_class = filters.ProbeFilter
    lookup_field = "serial"
    lookup_value_regex = "[^/]+"
    ordering_fields = ("serial",)
    ordering = ("serial",)


class ProbeTypeElectrodeViewSet(MapReadOnlyViewSet):
    """Recording sites of each probe type (µm; (0, 0) is the bottom-left of the probe)."""

    api_tags = TAGS
    queryset = models.ProbeTypeElectrode.objects.select_related("probe_type")
    serializer_class = serializers.ProbeTypeElectrodeSerializer
    filterset_class = filters.ProbeTypeElectrodeFilter
    ordering_fields = ("electrode", "shank", "shank_row", "y_coord")
    ordering = ("probe_type__name", "electrode")


class ElectrodeConfigViewSet(MapReadOnlyViewSet):
    """Electrode configurations (the set of sites a recording used)."""

    api_tags = TAGS
    queryset = models.ElectrodeConfig.objects.select_related("probe_type")
    serializer_class = serializers.ElectrodeConfigSerializer
    filterset_class = filters.ElectrodeConfigFilter
    ordering_fields = ("name", "id")
    ordering = ("probe_type__name", "name")


class ElectrodeConfigElectrodeViewSet(MapReadOnlyViewSet):
    """The electrodes of each electrode configuration."""

    api_tags = TAGS
    queryset = models.ElectrodeConfigElectrode.objects.select_related(
        "config__probe_type", "electrode"
    )
    serializer_class = serializers.ElectrodeConfigElectrodeSerializer
    filterset_class = filters.ElectrodeConfigElectrodeFilter
    ordering_fields = ("id", "electrode__electrode", "electrode_group")
    ordering = ("config_id", "electrode__electrode")


AnimalStrainViewSet = lookup_viewset(models.AnimalStrain)
AnimalSourceViewSet = lookup_viewset(models.AnimalSource)
VirusSourceViewSet = lookup_viewset(models.VirusSource)
SkullReferenceViewSet = lookup_viewset(models.SkullReference)
BrainAreaViewSet = lookup_viewset(models.BrainArea)
HemisphereViewSet = lookup_viewset(models.Hemisphere)
PhotostimDeviceViewSet = lookup_viewset(
    models.PhotostimDevice, serializers.PhotostimDeviceSerializer
)
WhiskerViewSet = lookup_viewset(models.Whisker)
ProbeTypeViewSet = lookup_viewset(models.ProbeType)
