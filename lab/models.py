"""Schema ``lab`` (spec §2): people, rigs, animals, surgeries, viruses and lab-wide lookups.

Surrogate integer keys everywhere; each natural key of the original is a unique constraint.
Tables that people edit carry a per-object history (who, when, what changed).
"""

from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords

from mapsite.core.models import Lookup, Timestamped


class Person(Timestamped):
    username = models.CharField(max_length=24, unique=True)
    fullname = models.CharField(max_length=255, blank=True, default="")
    history = HistoricalRecords()

    class Meta:
        ordering = ["username"]
        verbose_name_plural = "people"

    def __str__(self) -> str:
        return self.username


class Rig(Timestamped):
    name = models.CharField(max_length=24, unique=True)
    room = models.CharField(max_length=20, blank=True, default="", help_text='e.g. "2w.342"')
    description = models.CharField(max_length=1024, blank=True, default="")
    history = HistoricalRecords()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class AnimalStrain(Lookup):
    pass


class AnimalSource(Lookup):
    pass


class ModifiedGene(Timestamped):
    name = models.CharField(max_length=60, unique=True)
    description = models.CharField(max_length=256, blank=True, default="")
    history = HistoricalRecords()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Sex(models.TextChoices):
    MALE = "M", "Male"
    FEMALE = "F", "Female"
    UNKNOWN = "U", "Unknown"


class Subject(Timestamped):
    subject_id = models.PositiveIntegerField(
        unique=True, help_text="Institutional animal ID (6 digits)."
    )
    responsible = models.ForeignKey(
        Person, null=True, blank=True, on_delete=models.PROTECT, related_name="subjects"
    )
    cage_number = models.PositiveIntegerField(null=True, blank=True)
    date_of_birth = models.DateField(null=True, blank=True)
    sex = models.CharField(max_length=1, choices=Sex.choices, default=Sex.UNKNOWN)
    source = models.ForeignKey(AnimalSource, null=True, blank=True, on_delete=models.PROTECT)
    strains = models.ManyToManyField(AnimalStrain, through="SubjectStrain", blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["subject_id"]
        constraints = [
            models.CheckConstraint(condition=Q(sex__in=Sex.values), name="subject_sex_valid"),
        ]

    @property
    def complete_genotype(self) -> str:
        """The original's CompleteGenotype table was never filled (§19.10): derive it instead."""
        parts = [s.name for s in self.strains.all()]
        parts += [
            f"{g.gene_modification.name} ({g.zygosity}, {g.type})"
            for g in self.gene_modifications.all()
        ]
        return "; ".join(parts)

    def __str__(self) -> str:
        wr = getattr(self, "water_restriction", None)
        return f"{self.subject_id} ({wr.water_restriction_number})" if wr else str(self.subject_id)


class SubjectStrain(models.Model):
    subject = models.ForeignKey(Subject, on_delete=models.CASCADE, related_name="subject_strains")
    strain = models.ForeignKey(AnimalStrain, on_delete=models.PROTECT)
    history = HistoricalRecords()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["subject", "strain"], name="subjectstrain_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.subject}: {self.strain}"


class Zygosity(models.TextChoices):
    HET = "Het"
    HOM = "Hom"
    UNKNOWN = "Unknown"


class GeneModificationType(models.TextChoices):
    KNOCK_IN = "Knock-in"
    TRANSGENE = "Transgene"
    UNKNOWN = "Unknown"


class SubjectGeneModification(models.Model):
    subject = models.ForeignKey(
        Subject, on_delete=models.CASCADE, related_name="gene_modifications"
    )
    gene_modification = models.ForeignKey(ModifiedGene, on_delete=models.PROTECT)
    zygosity = models.CharField(max_length=8, choices=Zygosity.choices, default=Zygosity.UNKNOWN)
    type = models.CharField(
        max_length=10, choices=GeneModificationType.choices, default=GeneModificationType.UNKNOWN
    )
    history = HistoricalRecords()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["subject", "gene_modification"], name="subjectgene_unique"
            ),
            models.CheckConstraint(
                condition=Q(zygosity__in=Zygosity.values), name="subjectgene_zygosity_valid"
            ),
            models.CheckConstraint(
                condition=Q(type__in=GeneModificationType.values), name="subjectgene_type_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.subject}: {self.gene_modification} ({self.zygosity})"


class WaterRestriction(Timestamped):
    """The "h2o" number is the human key of an animal in every file name, hence unique (§19.13)."""

    subject = models.OneToOneField(
        Subject, on_delete=models.CASCADE, related_name="water_restriction"
    )
    water_restriction_number = models.CharField(
        max_length=16, unique=True, help_text="e.g. dl7, SC022, HH09"
    )
    cage_number = models.PositiveIntegerField(null=True, blank=True)
    wr_start_date = models.DateField()
    wr_start_weight = models.DecimalField(max_digits=6, decimal_places=3, help_text="grams")
    history = HistoricalRecords()

    class Meta:
        ordering = ["water_restriction_number"]
        constraints = [
            models.CheckConstraint(
                condition=Q(wr_start_weight__gt=0), name="waterrestriction_weight_positive"
            ),
            models.CheckConstraint(
                condition=~Q(water_restriction_number=""), name="waterrestriction_number_not_empty"
            ),
        ]

    def __str__(self) -> str:
        return self.water_restriction_number


class VirusSource(Lookup):
    pass


class Serotype(models.Model):
    name = models.CharField(max_length=60, unique=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Virus(Timestamped):
    virus_id = models.PositiveIntegerField(unique=True)
    name = models.CharField(max_length=256)
    source = models.ForeignKey(VirusSource, on_delete=models.PROTECT)
    serotype = models.ForeignKey(Serotype, on_delete=models.PROTECT)
    person = models.ForeignKey(Person, on_delete=models.PROTECT)
    titer = models.DecimalField(max_digits=20, decimal_places=1)
    order_date = models.DateField()
    remarks = models.CharField(max_length=256, blank=True, default="")
    history = HistoricalRecords()

    class Meta:
        ordering = ["virus_id"]
        verbose_name_plural = "viruses"
        constraints = [
            models.CheckConstraint(condition=Q(titer__gt=0), name="virus_titer_positive")
        ]

    def __str__(self) -> str:
        return f"{self.virus_id}: {self.name}"


class VirusNote(models.Model):
    virus = models.ForeignKey(Virus, on_delete=models.CASCADE, related_name="notes")
    note_id = models.PositiveIntegerField()
    note = models.CharField(max_length=256)
    history = HistoricalRecords()

    class Meta:
        ordering = ["virus", "note_id"]
        constraints = [
            models.UniqueConstraint(fields=["virus", "note_id"], name="virusnote_unique"),
        ]

    def __str__(self) -> str:
        return self.note


class SkullReference(Lookup):
    pass


class BrainArea(Lookup):
    pass


class Hemisphere(Lookup):
    pass


class Surgery(Timestamped):
    subject = models.ForeignKey(Subject, on_delete=models.CASCADE, related_name="surgeries")
    surgery_id = models.PositiveIntegerField()
    person = models.ForeignKey(Person, on_delete=models.PROTECT)
    start_time = models.DateTimeField()
    end_time = models.DateTimeField()
    description = models.CharField(max_length=256, blank=True, default="")
    history = HistoricalRecords()

    class Meta:
        ordering = ["subject", "surgery_id"]
        verbose_name_plural = "surgeries"
        constraints = [
            models.UniqueConstraint(fields=["subject", "surgery_id"], name="surgery_unique"),
            models.CheckConstraint(
                condition=Q(end_time__gte=models.F("start_time")), name="surgery_ends_after_start"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.subject} surgery {self.surgery_id}"


class VirusInjection(models.Model):
    """Coordinates in µm: anterior, right and dorsal positive; dv measured from the dura."""

    surgery = models.ForeignKey(Surgery, on_delete=models.CASCADE, related_name="virus_injections")
    injection_id = models.PositiveIntegerField()
    virus = models.ForeignKey(Virus, on_delete=models.PROTECT)
    skull_reference = models.ForeignKey(SkullReference, on_delete=models.PROTECT)
    ap_location = models.DecimalField(max_digits=8, decimal_places=3)
    ml_location = models.DecimalField(max_digits=8, decimal_places=3)
    dv_location = models.DecimalField(max_digits=8, decimal_places=3)
    volume = models.DecimalField(max_digits=10, decimal_places=3, help_text="nl")
    dilution = models.DecimalField(max_digits=10, decimal_places=2, help_text='"1 to x"')
    description = models.CharField(max_length=256, blank=True, default="")
    history = HistoricalRecords()

    class Meta:
        ordering = ["surgery", "injection_id"]
        constraints = [
            models.UniqueConstraint(fields=["surgery", "injection_id"], name="injection_unique"),
            models.CheckConstraint(condition=Q(volume__gt=0), name="injection_volume_positive"),
            models.CheckConstraint(condition=Q(dilution__gt=0), name="injection_dilution_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.surgery} injection {self.injection_id}"


class SurgeryProcedure(models.Model):
    surgery = models.ForeignKey(Surgery, on_delete=models.CASCADE, related_name="procedures")
    procedure_id = models.PositiveIntegerField()
    skull_reference = models.ForeignKey(SkullReference, on_delete=models.PROTECT)
    ap_location = models.DecimalField(max_digits=8, decimal_places=3, null=True, blank=True)
    ml_location = models.DecimalField(max_digits=8, decimal_places=3, null=True, blank=True)
    dv_location = models.DecimalField(max_digits=8, decimal_places=3, null=True, blank=True)
    description = models.CharField(max_length=1000)
    # SurgeryLocation of the original (same key): where the procedure was aimed.
    hemisphere = models.ForeignKey(Hemisphere, null=True, blank=True, on_delete=models.PROTECT)
    brain_area = models.ForeignKey(BrainArea, null=True, blank=True, on_delete=models.PROTECT)
    history = HistoricalRecords()

    class Meta:
        ordering = ["surgery", "procedure_id"]
        constraints = [
            models.UniqueConstraint(fields=["surgery", "procedure_id"], name="procedure_unique"),
            models.CheckConstraint(
                condition=Q(hemisphere__isnull=True, brain_area__isnull=True)
                | Q(hemisphere__isnull=False, brain_area__isnull=False),
                name="procedure_location_complete",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.surgery} procedure {self.procedure_id}"


class PhotostimDevice(Lookup):
    excitation_wavelength = models.DecimalField(max_digits=5, decimal_places=1, help_text="nm")


class Whisker(Lookup):
    pass


# --- Probes and electrode geometry (§2, §2.1, §2.2) --------------------------------------------


class ProbeType(Lookup):
    pass


class ProbeTypeElectrode(models.Model):
    """One recording site of a probe type; (0, 0) µm is the bottom-left of the probe."""

    probe_type = models.ForeignKey(ProbeType, on_delete=models.CASCADE, related_name="electrodes")
    electrode = models.PositiveIntegerField(help_text="1-based, continuing across shanks")
    shank = models.PositiveSmallIntegerField(help_text="1-based, left to right")
    shank_col = models.PositiveSmallIntegerField(help_text="1-based")
    shank_row = models.PositiveSmallIntegerField(help_text="1-based, tip to tail")
    x_coord = models.FloatField(null=True, blank=True, help_text="µm")
    y_coord = models.FloatField(null=True, blank=True, help_text="µm")
    z_coord = models.FloatField(default=0.0, help_text="µm")

    class Meta:
        ordering = ["probe_type", "electrode"]
        constraints = [
            models.UniqueConstraint(
                fields=["probe_type", "electrode"], name="probetypeelectrode_unique"
            ),
            models.CheckConstraint(
                condition=Q(electrode__gte=1, shank__gte=1, shank_col__gte=1, shank_row__gte=1),
                name="probetypeelectrode_one_based",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.probe_type} #{self.electrode}"


class ElectrodeConfig(models.Model):
    """The set of electrodes a recording used, named by ranges (e.g. ``1-384``), unique by hash."""

    probe_type = models.ForeignKey(ProbeType, on_delete=models.PROTECT, related_name="configs")
    name = models.CharField(max_length=64)
    config_hash = models.CharField(max_length=36, unique=True)

    class Meta:
        ordering = ["probe_type", "name"]
        constraints = [
            models.UniqueConstraint(fields=["probe_type", "name"], name="electrodeconfig_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.probe_type}: {self.name}"


class ElectrodeConfigElectrode(models.Model):
    """ElectrodeConfig.ElectrodeGroup and .Electrode of the original, in one table."""

    config = models.ForeignKey(ElectrodeConfig, on_delete=models.CASCADE, related_name="electrodes")
    electrode = models.ForeignKey(ProbeTypeElectrode, on_delete=models.PROTECT)
    electrode_group = models.PositiveSmallIntegerField(default=0)
    is_used = models.BooleanField(
        default=True, help_text="used for spatial averaging (reference channels are not)"
    )

    class Meta:
        ordering = ["config", "electrode__electrode"]
        constraints = [
            models.UniqueConstraint(
                fields=["config", "electrode"], name="electrodeconfigelectrode_unique"
            ),
        ]


class Probe(Timestamped):
    serial = models.CharField(max_length=32, unique=True, help_text="serial number")
    probe_type = models.ForeignKey(ProbeType, on_delete=models.PROTECT, related_name="probes")
    comment = models.CharField(max_length=1000, blank=True, default="")
    history = HistoricalRecords()

    class Meta:
        ordering = ["serial"]

    def __str__(self) -> str:
        return f"{self.serial} ({self.probe_type})"
