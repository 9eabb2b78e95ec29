"""Whitelisted filters of schema ``lab`` (no free-form ORM lookups reach the database)."""

from django_filters import rest_framework as filters

from lab import models
from mapsite.core.api import IdFilter, NameChoiceFilter


def subject_filter(path: str = "subject") -> IdFilter:
    return IdFilter(field_name=f"{path}__subject_id", help_text="Subject id (e.g. 432572).")


def wr_filter(path: str = "subject") -> filters.CharFilter:
    return filters.CharFilter(
        field_name=f"{path}__water_restriction__water_restriction_number",
        help_text="Water-restriction number of the subject (e.g. dl7).",
    )


def person_filter(field_name: str) -> NameChoiceFilter:
    return NameChoiceFilter(
        field_name=field_name,
        to_field_name="username",
        queryset=models.Person.objects.all(),
        help_text="Username.",
    )


class SubjectFilter(filters.FilterSet):
    water_restriction_number = filters.CharFilter(
        field_name="water_restriction__water_restriction_number",
        help_text="Water-restriction number (e.g. dl7).",
    )
    responsible = person_filter("responsible")
    source = NameChoiceFilter(queryset=models.AnimalSource.objects.all())
    strain = NameChoiceFilter(
        field_name="strains", queryset=models.AnimalStrain.objects.all(), distinct=True
    )
    gene_modification = NameChoiceFilter(
        field_name="gene_modifications__gene_modification",
        queryset=models.ModifiedGene.objects.all(),
        distinct=True,
    )

    class Meta:
        model = models.Subject
        fields = [
            "water_restriction_number",
            "sex",
            "responsible",
            "source",
            "strain",
            "gene_modification",
        ]


class WaterRestrictionFilter(filters.FilterSet):
    subject = subject_filter()

    class Meta:
        model = models.WaterRestriction
        fields = ["subject"]


class SubjectStrainFilter(filters.FilterSet):
    subject = subject_filter()
    water_restriction_number = wr_filter()
    strain = NameChoiceFilter(queryset=models.AnimalStrain.objects.all())

    class Meta:
        model = models.SubjectStrain
        fields = ["subject", "water_restriction_number", "strain"]


class SubjectGeneModificationFilter(filters.FilterSet):
    subject = subject_filter()
    water_restriction_number = wr_filter()
    gene_modification = NameChoiceFilter(queryset=models.ModifiedGene.objects.all())

    class Meta:
        model = models.SubjectGeneModification
        fields = ["subject", "water_restriction_number", "gene_modification", "zygosity", "type"]


class VirusFilter(filters.FilterSet):
    source = NameChoiceFilter(queryset=models.VirusSource.objects.all())
    serotype = NameChoiceFilter(queryset=models.Serotype.objects.all())
    person = person_filter("person")

    class Meta:
        model = models.Virus
        fields = ["source", "serotype", "person"]


class VirusNoteFilter(filters.FilterSet):
    virus = IdFilter(field_name="virus__virus_id", help_text="virus_id")

    class Meta:
        model = models.VirusNote
        fields = ["virus"]


class SurgeryFilter(filters.FilterSet):
    subject = subject_filter()
    water_restriction_number = wr_filter()
    person = person_filter("person")
    date_after = filters.DateFilter(
        field_name="start_time",
        lookup_expr="date__gte",
        help_text="Surgeries on or after this date (lab time zone).",
    )
    date_before = filters.DateFilter(
        field_name="start_time",
        lookup_expr="date__lte",
        help_text="Surgeries on or before this date (lab time zone).",
    )

    class Meta:
        model = models.Surgery
        fields = ["subject", "water_restriction_number", "person", "date_after", "date_before"]


class VirusInjectionFilter(filters.FilterSet):
    surgery = IdFilter(field_name="surgery", help_text="Surgery id.")
    subject = subject_filter("surgery__subject")
    water_restriction_number = wr_filter("surgery__subject")
    virus = IdFilter(field_name="virus__virus_id", help_text="virus_id")

    class Meta:
        model = models.VirusInjection
        fields = ["surgery", "subject", "water_restriction_number", "virus"]


class SurgeryProcedureFilter(filters.FilterSet):
    surgery = IdFilter(field_name="surgery", help_text="Surgery id.")
    subject = subject_filter("surgery__subject")
    water_restriction_number = wr_filter("surgery__subject")
    brain_area = NameChoiceFilter(queryset=models.BrainArea.objects.all())
    hemisphere = NameChoiceFilter(queryset=models.Hemisphere.objects.all())

    class Meta:
        model = models.SurgeryProcedure
        fields = ["surgery", "subject", "water_restriction_number", "brain_area", "hemisphere"]


class ProbeFilter(filters.FilterSet):
    probe_type = NameChoiceFilter(queryset=models.ProbeType.objects.all())

    class Meta:
        model = models.Probe
        fields = ["probe_type"]


class ProbeTypeElectrodeFilter(filters.FilterSet):
    probe_type = NameChoiceFilter(queryset=models.ProbeType.objects.all())

    class Meta:
        model = models.ProbeTypeElectrode
        fields = ["probe_type", "shank"]


class ElectrodeConfigFilter(filters.FilterSet):
    probe_type = NameChoiceFilter(queryset=models.ProbeType.objects.all())

    class Meta:
        model = models.ElectrodeConfig
        fields = ["probe_type", "config_hash"]


class ElectrodeConfigElectrodeFilter(filters.FilterSet):
    config = IdFilter(field_name="config", help_text="Electrode config id.")
    config_hash = filters.CharFilter(field_name="config__config_hash")

    class Meta:
        model = models.ElectrodeConfigElectrode
        fields = ["config", "config_hash", "is_used", "electrode_group"]
