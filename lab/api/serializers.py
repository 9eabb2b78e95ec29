"""Serializers of schema ``lab``: related rows by their natural keys, as analysts name them.

Subjects appear as their ``subject_id`` (with the water-restriction number beside it, read-only),
people by ``username``, rigs, lookups and genes by ``name``, viruses by ``virus_id``. Writes
accept the same forms.
"""

from rest_framework import serializers

from lab import models
from mapsite.core.api import ConstraintCheckedSerializer, LookupSerializer, ReadOnlyModelSerializer


def subject_field(**kwargs: object) -> serializers.SlugRelatedField:
    """A subject by its institutional ``subject_id``."""
    return serializers.SlugRelatedField(
        slug_field="subject_id", queryset=models.Subject.objects.all(), **kwargs
    )


def water_restriction_number_field(subject_path: str) -> serializers.CharField:
    """The subject's water-restriction number (read-only; null before water restriction)."""
    return serializers.CharField(
        source=f"{subject_path}.water_restriction.water_restriction_number",
        read_only=True,
        allow_null=True,
        help_text="Water-restriction number of the subject (e.g. dl7); null if none.",
    )


def name_field(model: type, *, null: bool = False, **kwargs: object) -> serializers.Field:
    """A lookup (or other named) row by its name."""
    return serializers.SlugRelatedField(
        slug_field="name",
        queryset=model.objects.all(),
        allow_null=null,
        required=kwargs.pop("required", not null),
        **kwargs,
    )


def person_field(**kwargs: object) -> serializers.SlugRelatedField:
    return serializers.SlugRelatedField(
        slug_field="username", queryset=models.Person.objects.all(), **kwargs
    )


# --- People, rigs, genes ---------------------------------------------------------------------


class PersonSerializer(ConstraintCheckedSerializer):
    class Meta:
        model = models.Person
        fields = ["username", "fullname"]


class RigSerializer(ConstraintCheckedSerializer):
    class Meta:
        model = models.Rig
        fields = ["name", "room", "description"]


class ModifiedGeneSerializer(ConstraintCheckedSerializer):
    class Meta:
        model = models.ModifiedGene
        fields = ["name", "description"]


class SerotypeSerializer(ConstraintCheckedSerializer):
    class Meta:
        model = models.Serotype
        fields = ["name"]


class PhotostimDeviceSerializer(LookupSerializer):
    class Meta:
        model = models.PhotostimDevice
        fields = ["name", "description", "excitation_wavelength"]


# --- Subjects ----------------------------------------------------------------------------------


class SubjectGeneModificationBriefSerializer(serializers.ModelSerializer):
    """A gene modification as listed inside its subject."""

    gene_modification = serializers.SlugRelatedField(slug_field="name", read_only=True)

    class Meta:
        model = models.SubjectGeneModification
        fields = ["gene_modification", "zygosity", "type"]


class SubjectSerializer(ConstraintCheckedSerializer):
    water_restriction_number = serializers.CharField(
        source="water_restriction.water_restriction_number",
        read_only=True,
        allow_null=True,
        help_text="Null until the subject is water-restricted.",
    )
    responsible = person_field(allow_null=True, required=False)
    source = name_field(models.AnimalSource, null=True)
    strains = serializers.SlugRelatedField(
        slug_field="name",
        many=True,
        read_only=True,
        help_text="Edit through /api/subject-strains/.",
    )
    gene_modifications = SubjectGeneModificationBriefSerializer(
        many=True, read_only=True, help_text="Edit through /api/subject-gene-modifications/."
    )
    complete_genotype = serializers.CharField(
        read_only=True, help_text="Strains and gene modifications, derived."
    )

    class Meta:
        model = models.Subject
        fields = [
            "subject_id",
            "water_restriction_number",
            "responsible",
            "cage_number",
            "date_of_birth",
            "sex",
            "source",
            "strains",
            "gene_modifications",
            "complete_genotype",
        ]


class WaterRestrictionSerializer(ConstraintCheckedSerializer):
    subject = subject_field()

    class Meta:
        model = models.WaterRestriction
        fields = [
            "water_restriction_number",
            "subject",
            "cage_number",
            "wr_start_date",
            "wr_start_weight",
        ]


class SubjectStrainSerializer(ConstraintCheckedSerializer):
    subject = subject_field()
    water_restriction_number = water_restriction_number_field("subject")
    strain = name_field(models.AnimalStrain)

    class Meta:
        model = models.SubjectStrain
        fields = ["id", "subject", "water_restriction_number", "strain"]


class SubjectGeneModificationSerializer(ConstraintCheckedSerializer):
    subject = subject_field()
    water_restriction_number = water_restriction_number_field("subject")
    gene_modification = name_field(models.ModifiedGene)

    class Meta:
        model = models.SubjectGeneModification
        fields = [
            "id",
            "subject",
            "water_restriction_number",
            "gene_modification",
            "zygosity",
            "type",
        ]


# --- Viruses -----------------------------------------------------------------------------------


class VirusNoteBriefSerializer(serializers.ModelSerializer):
    class Meta:
        model = models.VirusNote
        fields = ["note_id", "note"]


class VirusSerializer(ConstraintCheckedSerializer):
    source = name_field(models.VirusSource)
    serotype = name_field(models.Serotype)
    person = person_field()
    notes = VirusNoteBriefSerializer(
        many=True, read_only=True, help_text="Edit through /api/virus-notes/."
    )

    class Meta:
        model = models.Virus
        fields = [
            "virus_id",
            "name",
            "source",
            "serotype",
            "person",
            "titer",
            "order_date",
            "remarks",
            "notes",
        ]


class VirusNoteSerializer(ConstraintCheckedSerializer):
    virus = serializers.SlugRelatedField(slug_field="virus_id", queryset=models.Virus.objects.all())

    class Meta:
        model = models.VirusNote
        fields = ["id", "virus", "note_id", "note"]


# --- Surgeries ---------------------------------------------------------------------------------


class _SurgeryChildSerializer(ConstraintCheckedSerializer):
    """Injections and procedures: the surgery by id, with its subject and number beside it."""

    subject = serializers.IntegerField(source="surgery.subject.subject_id", read_only=True)
    surgery_number = serializers.IntegerField(
        source="surgery.surgery_id", read_only=True, help_text="surgery_id within the subject"
    )
    skull_reference = name_field(models.SkullReference)


class VirusInjectionSerializer(_SurgeryChildSerializer):
    virus = serializers.SlugRelatedField(slug_field="virus_id", queryset=models.Virus.objects.all())

    class Meta:
        model = models.VirusInjection
        fields = [
            "id",
            "surgery",
            "subject",
            "surgery_number",
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


class SurgeryProcedureSerializer(_SurgeryChildSerializer):
    hemisphere = name_field(models.Hemisphere, null=True)
    brain_area = name_field(models.BrainArea, null=True)

    class Meta:
        model = models.SurgeryProcedure
        fields = [
            "id",
            "surgery",
            "subject",
            "surgery_number",
            "procedure_id",
            "skull_reference",
            "ap_location",
            "ml_location",
            "dv_location",
            "description",
            "hemisphere",
            "brain_area",
        ]


class VirusInjectionBriefSerializer(serializers.ModelSerializer):
    virus = serializers.SlugRelatedField(slug_field="virus_id", read_only=True)
    skull_reference = serializers.SlugRelatedField(slug_field="name", read_only=True)

    class Meta:
        model = models.VirusInjection
        fields = [
            "id",
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


class SurgeryProcedureBriefSerializer(serializers.ModelSerializer):
    skull_reference = serializers.SlugRelatedField(slug_field="name", read_only=True)
    hemisphere = serializers.SlugRelatedField(slug_field="name", read_only=True, allow_null=True)
    brain_area = serializers.SlugRelatedField(slug_field="name", read_only=True, allow_null=True)

    class Meta:
        model = models.SurgeryProcedure
        fields = [
            "id",
            "procedure_id",
            "skull_reference",
            "ap_location",
            "ml_location",
            "dv_location",
            "description",
            "hemisphere",
            "brain_area",
        ]


class SurgerySerializer(ConstraintCheckedSerializer):
    subject = subject_field()
    water_restriction_number = water_restriction_number_field("subject")
    person = person_field()
    virus_injections = VirusInjectionBriefSerializer(
        many=True, read_only=True, help_text="Edit through /api/virus-injections/."
    )
    procedures = SurgeryProcedureBriefSerializer(
        many=True, read_only=True, help_text="Edit through /api/surgery-procedures/."
    )

    class Meta:
        model = models.Surgery
        fields = [
            "id",
            "subject",
            "water_restriction_number",
            "surgery_id",
            "person",
            "start_time",
            "end_time",
            "description",
            "virus_injections",
            "procedures",
        ]


# --- Probes ------------------------------------------------------------------------------------


class ProbeSerializer(ConstraintCheckedSerializer):
    probe_type = name_field(models.ProbeType)

    class Meta:
        model = models.Probe
        fields = ["serial", "probe_type", "comment"]


class ProbeTypeElectrodeSerializer(ReadOnlyModelSerializer):
    probe_type = serializers.SlugRelatedField(slug_field="name", read_only=True)

    class Meta:
        model = models.ProbeTypeElectrode
        fields = [
            "id",
            "probe_type",
            "electrode",
            "shank",
            "shank_col",
            "shank_row",
            "x_coord",
            "y_coord",
            "z_coord",
        ]


class ElectrodeConfigSerializer(ReadOnlyModelSerializer):
    probe_type = serializers.SlugRelatedField(slug_field="name", read_only=True)

    class Meta:
        model = models.ElectrodeConfig
        fields = ["id", "probe_type", "name", "config_hash"]


class ElectrodeConfigElectrodeSerializer(ReadOnlyModelSerializer):
    config_hash = serializers.CharField(source="config.config_hash", read_only=True)
    probe_type = serializers.CharField(source="config.probe_type.name", read_only=True)
    electrode = serializers.IntegerField(source="electrode.electrode", read_only=True)
    shank = serializers.IntegerField(source="electrode.shank", read_only=True)
    shank_col = serializers.IntegerField(source="electrode.shank_col", read_only=True)
    shank_row = serializers.IntegerField(source="electrode.shank_row", read_only=True)

    class Meta:
        model = models.ElectrodeConfigElectrode
        fields = [
            "id",
            "config",
            "config_hash",
            "probe_type",
            "electrode",
            "shank",
            "shank_col",
            "shank_row",
            "electrode_group",
            "is_used",
        ]
