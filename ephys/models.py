"""Schema ``ephys`` (spec §4): probe insertions, units and their spike data, QC metrics.

Spike trains are stored once per unit as ``.npy`` bytes (float64 seconds relative to the first
ephys trial start, §14.6 step 5) in ``UnitSpikes``, a table of its own so that listing units
never drags the arrays along. Per-trial, go-cue-aligned spikes are computed on read
(``ephys.analysis.align``): there is no row per spike and no row per unit and trial.
"""

from django.db import models
from django.db.models import F, Q
from simple_history.models import HistoricalRecords

from experiment.models import Session, SessionTrial
from lab.models import (
    BrainArea,
    ElectrodeConfig,
    ElectrodeConfigElectrode,
    Hemisphere,
    Probe,
    SkullReference,
)
from mapsite.core.models import Lookup, Timestamped


class UnitQualityType(Lookup):
    pass


class CellType(Lookup):
    pass


class ClusteringMethod(Lookup):
    pass


# --- Probe insertions (§4.1) -------------------------------------------------------------------


class ProbeInsertion(Timestamped):
    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="insertions")
    insertion_number = models.PositiveSmallIntegerField(help_text="probe number, 1-based")
    probe = models.ForeignKey(Probe, on_delete=models.PROTECT, related_name="insertions")
    electrode_config = models.ForeignKey(ElectrodeConfig, on_delete=models.PROTECT)
    # RecordingSystemSetup of the original (same key).
    sampling_rate = models.FloatField(help_text="Hz, from the .ap.meta imSampRate")

    class Meta:
        ordering = ["session", "insertion_number"]
        constraints = [
            models.UniqueConstraint(
                fields=["session", "insertion_number"], name="probeinsertion_unique"
            ),
            models.CheckConstraint(
                condition=Q(insertion_number__gte=1), name="probeinsertion_number_positive"
            ),
            models.CheckConstraint(
                condition=Q(sampling_rate__gt=0), name="probeinsertion_sampling_rate_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.session} probe {self.insertion_number}"


class InsertionLocation(models.Model):
    """µm; depth from the brain surface (ventral negative); angles in degrees."""

    insertion = models.OneToOneField(
        ProbeInsertion, on_delete=models.CASCADE, primary_key=True, related_name="location"
    )
    skull_reference = models.ForeignKey(SkullReference, on_delete=models.PROTECT)
    ap_location = models.DecimalField(max_digits=6, decimal_places=2)
    ml_location = models.DecimalField(max_digits=6, decimal_places=2)
    depth = models.DecimalField(max_digits=6, decimal_places=2)
    theta = models.DecimalField(max_digits=5, decimal_places=2, null=True, blank=True)
    phi = models.DecimalField(max_digits=5, decimal_places=2, null=True, blank=True)
    beta = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="rotation about the shank, clockwise +, 0 = probe front facing anterior",
    )
    history = HistoricalRecords()

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(theta__isnull=True) | Q(theta__gte=0, theta__lte=180),
                name="insertionlocation_theta_range",
            ),
            models.CheckConstraint(
                condition=Q(phi__isnull=True) | Q(phi__gte=0, phi__lte=360),
                name="insertionlocation_phi_range",
            ),
            models.CheckConstraint(
                condition=Q(beta__isnull=True) | Q(beta__gte=-180, beta__lte=180),
                name="insertionlocation_beta_range",
            ),
        ]

    def __str__(self) -> str:
        return f"location of {self.insertion}"

    @property
    def hemisphere(self) -> str:
        """right for ML > 0, left for ML < 0 (used for ipsi/contra)."""
        return "right" if self.ml_location > 0 else "left"


class RecordableBrainRegion(models.Model):
    insertion = models.ForeignKey(
        ProbeInsertion, on_delete=models.CASCADE, related_name="recordable_regions"
    )
    brain_area = models.ForeignKey(BrainArea, on_delete=models.PROTECT)
    hemisphere = models.ForeignKey(Hemisphere, on_delete=models.PROTECT)
    history = HistoricalRecords()

    class Meta:
        ordering = ["insertion", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["insertion", "brain_area", "hemisphere"],
                name="recordablebrainregion_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.brain_area} ({self.hemisphere})"


class InsertionNote(models.Model):
    insertion = models.OneToOneField(
        ProbeInsertion, on_delete=models.CASCADE, primary_key=True, related_name="note"
    )
    note = models.CharField(max_length=1000)
    history = HistoricalRecords()

    def __str__(self) -> str:
        return self.note


class ProbeInsertionQuality(models.Model):
    insertion = models.OneToOneField(
        ProbeInsertion, on_delete=models.CASCADE, primary_key=True, related_name="quality"
    )
    drift_presence = models.BooleanField(default=False)
    number_of_landmarks = models.PositiveIntegerField(null=True, blank=True)
    alignment_confidence = models.BooleanField(default=True)
    comment = models.CharField(max_length=1000, blank=True, default="")
    history = HistoricalRecords()

    class Meta:
        verbose_name_plural = "probe insertion qualities"

    def __str__(self) -> str:
        return f"quality of {self.insertion}"


class GoodPeriod(models.Model):
    quality = models.ForeignKey(
        ProbeInsertionQuality, on_delete=models.CASCADE, related_name="good_periods"
    )
    start = models.FloatField(help_text="s from session start")
    end = models.FloatField(help_text="s from session start")
    history = HistoricalRecords()

    class Meta:
        ordering = ["quality", "start"]
        constraints = [
            models.UniqueConstraint(fields=["quality", "start"], name="goodperiod_unique"),
            models.CheckConstraint(condition=Q(end__gt=F("start")), name="goodperiod_end_after"),
        ]

    def __str__(self) -> str:
        return f"{self.start:g}-{self.end:g} s"


class GoodTrial(models.Model):
    quality = models.ForeignKey(
        ProbeInsertionQuality, on_delete=models.CASCADE, related_name="good_trials"
    )
    trial = models.ForeignKey(SessionTrial, on_delete=models.CASCADE)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["quality", "trial"], name="goodtrial_unique"),
        ]

    def __str__(self) -> str:
        return f"good {self.trial}"


class BrainAreaDepthCriteria(models.Model):
    """A unit with depth_upper < unit_posy ≤ depth_lower lies in brain_area (§15)."""

    insertion = models.ForeignKey(
        ProbeInsertion, on_delete=models.CASCADE, related_name="depth_criteria"
    )
    brain_area = models.ForeignKey(BrainArea, on_delete=models.PROTECT)
    depth_upper = models.FloatField(help_text="µm")
    depth_lower = models.FloatField(help_text="µm")
    history = HistoricalRecords()

    class Meta:
        verbose_name_plural = "brain area depth criteria"
        constraints = [
            models.UniqueConstraint(
                fields=["insertion", "brain_area"], name="brainareadepthcriteria_unique"
            ),
            models.CheckConstraint(
                condition=Q(depth_lower__gt=F("depth_upper")),
                name="brainareadepthcriteria_lower_below_upper",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.brain_area}: {self.depth_upper:g}-{self.depth_lower:g} µm"


class InsertionTrialAlignment(models.Model):
    """One behavior trial on an insertion's ephys clock (spec §14.5-§14.6), for align-on-read.

    ``start_time`` is on the clock of ``Unit.spike_times`` (s from the first aligned ephys trial
    start, pre-trigger margin removed); ``go_cue_time`` is relative to this trial's start.
    Feed both to ``ephys.analysis.align.align_spikes_to_trials``: one row per trial, never one
    per (unit, trial).
    """

    insertion = models.ForeignKey(
        ProbeInsertion, on_delete=models.CASCADE, related_name="trial_alignment"
    )
    trial = models.ForeignKey(SessionTrial, on_delete=models.CASCADE, related_name="+")
    ephys_trial = models.PositiveIntegerField(help_text="1-based position among the ephys trials")
    start_time = models.FloatField(help_text="s from the first aligned ephys trial start")
    go_cue_time = models.FloatField(
        null=True, blank=True, help_text="s from this trial's start; null: no go cue (free water)"
    )

    class Meta:
        ordering = ["insertion", "start_time"]
        constraints = [
            models.UniqueConstraint(
                fields=["insertion", "trial"], name="insertiontrialalignment_unique"
            ),
            models.UniqueConstraint(
                fields=["insertion", "ephys_trial"], name="insertiontrialalignment_ephys_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.trial} on {self.insertion}"


# --- Clustering results (§4.3) -----------------------------------------------------------------


class ClusteringLabel(models.Model):
    """How a clustering was made (raw / qc / curated). The original repeated it on every unit
    of the insertion; here it is stored once per (insertion, method)."""

    insertion = models.ForeignKey(
        ProbeInsertion, on_delete=models.CASCADE, related_name="clustering_labels"
    )
    clustering_method = models.ForeignKey(ClusteringMethod, on_delete=models.PROTECT)
    clustering_time = models.DateTimeField()
    quality_control = models.BooleanField()
    manual_curation = models.BooleanField()
    clustering_note = models.CharField(max_length=2000, blank=True, default="")
    source_path = models.CharField(
        max_length=1024, blank=True, default="", help_text="sorted output, relative to its root"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["insertion", "clustering_method"], name="clusteringlabel_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.clustering_method} of {self.insertion}"


class Unit(models.Model):
    insertion = models.ForeignKey(ProbeInsertion, on_delete=models.CASCADE, related_name="units")
    clustering_method = models.ForeignKey(ClusteringMethod, on_delete=models.PROTECT)
    unit = models.PositiveIntegerField(help_text="cluster id of the sorter")
    unit_uid = models.PositiveIntegerField()
    quality = models.ForeignKey(UnitQualityType, on_delete=models.PROTECT)
    electrode = models.ForeignKey(
        ElectrodeConfigElectrode,
        on_delete=models.PROTECT,
        help_text="site of the peak amplitude",
    )
    unit_posx = models.FloatField(help_text="µm, relative to the probe tip")
    unit_posy = models.FloatField(help_text="µm, relative to the probe tip")
    unit_amp = models.FloatField(help_text="µV")
    unit_snr = models.FloatField(
        null=True, blank=True, help_text="null: not computable (no raw recording to measure it)"
    )
    spike_count = models.PositiveIntegerField()
    waveform = models.BinaryField(help_text="float32 .npy: mean waveform at the peak channel")

    class Meta:
        ordering = ["insertion", "clustering_method", "unit"]
        constraints = [
            models.UniqueConstraint(
                fields=["insertion", "clustering_method", "unit"], name="unit_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.insertion} unit {self.unit}"


class UnitSpikes(models.Model):
    """The spike arrays of one unit, as ``.npy`` bytes (served as they are by the API)."""

    unit = models.OneToOneField(
        Unit, on_delete=models.CASCADE, primary_key=True, related_name="spikes"
    )
    spike_times = models.BinaryField(help_text="float64 .npy, s from the first ephys trial start")
    spike_sites = models.BinaryField(help_text="int32 .npy, electrode per spike")
    spike_depths = models.BinaryField(help_text="float32 .npy, µm per spike")

    def __str__(self) -> str:
        return f"spikes of {self.unit_id}"


class UnitNote(models.Model):
    unit = models.ForeignKey(Unit, on_delete=models.CASCADE, related_name="notes")
    note_source = models.CharField(max_length=36, help_text='e.g. "sort", "Davesort"')
    quality = models.ForeignKey(UnitQualityType, on_delete=models.PROTECT)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["unit", "note_source"], name="unitnote_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.note_source}: {self.quality}"


class NoiseLabel(models.TextChoices):
    GOOD = "good"
    NOISE = "noise"


class UnitNoiseLabel(models.Model):
    unit = models.OneToOneField(
        Unit, on_delete=models.CASCADE, primary_key=True, related_name="noise_label"
    )
    noise = models.CharField(max_length=5, choices=NoiseLabel.choices)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(noise__in=NoiseLabel.values), name="unitnoiselabel_valid"
            ),
        ]

    def __str__(self) -> str:
        return self.noise


class UnitComment(models.Model):
    unit = models.ForeignKey(Unit, on_delete=models.CASCADE, related_name="comments")
    comment = models.CharField(max_length=767)
    history = HistoricalRecords()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["unit", "comment"], name="unitcomment_unique"),
        ]

    def __str__(self) -> str:
        return self.comment


# --- Unit QC metrics (§4.4) --------------------------------------------------------------------


class UnitStat(models.Model):
    """From metrics.csv when the sorting had QC, else computed (step UnitStat, §15)."""

    unit = models.OneToOneField(
        Unit, on_delete=models.CASCADE, primary_key=True, related_name="stat"
    )
    isi_violation = models.FloatField(null=True, blank=True)
    avg_firing_rate = models.FloatField(null=True, blank=True, help_text="Hz")

    def __str__(self) -> str:
        return f"stats of unit {self.unit_id}"


class ClusterMetric(models.Model):
    unit = models.ForeignKey(Unit, on_delete=models.CASCADE, related_name="cluster_metrics")
    epoch_name_quality_metrics = models.CharField(max_length=64)
    # Non-finite values of metrics.csv (NaN, inf) are stored as null.
    presence_ratio = models.FloatField(null=True, blank=True)
    amplitude_cutoff = models.FloatField(null=True, blank=True)
    isolation_distance = models.FloatField(null=True, blank=True)
    l_ratio = models.FloatField(null=True, blank=True)
    d_prime = models.FloatField(null=True, blank=True)
    nn_hit_rate = models.FloatField(null=True, blank=True)
    nn_miss_rate = models.FloatField(null=True, blank=True)
    silhouette_score = models.FloatField(null=True, blank=True)
    max_drift = models.FloatField(null=True, blank=True)
    cumulative_drift = models.FloatField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["unit", "epoch_name_quality_metrics"], name="clustermetric_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.epoch_name_quality_metrics} metrics of unit {self.unit_id}"


class WaveformMetric(models.Model):
    unit = models.ForeignKey(Unit, on_delete=models.CASCADE, related_name="waveform_metrics")
    epoch_name_waveform_metrics = models.CharField(max_length=64)
    duration = models.FloatField(null=True, blank=True)
    halfwidth = models.FloatField(null=True, blank=True)
    pt_ratio = models.FloatField(null=True, blank=True)
    repolarization_slope = models.FloatField(null=True, blank=True)
    recovery_slope = models.FloatField(null=True, blank=True)
    spread = models.FloatField(null=True, blank=True)
    velocity_above = models.FloatField(null=True, blank=True)
    velocity_below = models.FloatField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["unit", "epoch_name_waveform_metrics"], name="waveformmetric_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.epoch_name_waveform_metrics} waveform of unit {self.unit_id}"


# --- Archive of replaced clusterings (§4.5) ----------------------------------------------------


class ArchivedClustering(models.Model):
    """A clustering replaced by a re-sort, kept with its units' arrays and metrics (§14.6)."""

    insertion = models.ForeignKey(
        ProbeInsertion, on_delete=models.CASCADE, related_name="archived_clusterings"
    )
    clustering_method = models.ForeignKey(ClusteringMethod, on_delete=models.PROTECT)
    clustering_time = models.DateTimeField()
    archival_time = models.DateTimeField(auto_now_add=True)
    quality_control = models.BooleanField()
    manual_curation = models.BooleanField()
    clustering_note = models.CharField(max_length=2000, blank=True, default="")
    source_path = models.CharField(max_length=1024, blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["insertion", "clustering_method", "clustering_time"],
                name="archivedclustering_unique",
            ),
        ]

    def __str__(self) -> str:
        return (
            f"{self.clustering_method} of {self.insertion} ({self.clustering_time:%Y-%m-%d %H:%M})"
        )


class ArchivedUnit(models.Model):
    clustering = models.ForeignKey(
        ArchivedClustering, on_delete=models.CASCADE, related_name="units"
    )
    unit = models.PositiveIntegerField()
    quality = models.ForeignKey(UnitQualityType, on_delete=models.PROTECT)
    cell_type = models.ForeignKey(CellType, null=True, blank=True, on_delete=models.PROTECT)
    electrode = models.ForeignKey(ElectrodeConfigElectrode, on_delete=models.PROTECT)
    unit_posx = models.FloatField()
    unit_posy = models.FloatField()
    unit_amp = models.FloatField()
    unit_snr = models.FloatField(null=True, blank=True)
    spike_times = models.BinaryField()
    spike_sites = models.BinaryField()
    spike_depths = models.BinaryField()
    waveform = models.BinaryField()
    # UnitStat, ClusterMetric and WaveformMetric rows of the unit, as they were.
    metrics = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["clustering", "unit"], name="archivedunit_unique"),
        ]

    def __str__(self) -> str:
        return f"archived unit {self.unit}"


# --- Ingest bookkeeping (§13 ingest_ephys.EphysIngest) -----------------------------------------


class RecordingLayout(models.TextChoices):
    DATE = "date", "{h2o}/{YYYYMMDD}/ with probe folders 1, 2, ..."
    CATGT = "catgt", "{h2o}/catgt_{YYYYMMDD}_g0/ with probe folders *_imecN"
    GLOB = "glob", "{h2o}/*{h2o}*{date}_*/ with probe folders *_imecN"


class EphysRecording(Timestamped):
    """A session folder of sorted ephys data found under an ephys data root (spec §14.3).

    ``recording_time`` is the SpikeGLX ``fileCreateTime`` of its first ``*tcat*.ap.meta``.
    SpikeGLX writes it naive; it is stored as if it were UTC because the original compared it,
    naive, with the behavior session start that Bpod writes as ``SessionStartTime_UTC`` (which
    is what ``Session.start_time`` holds); the ±120 s matching rule relies on that.
    """

    root = models.CharField(max_length=1024, help_text="ephys data root it was found under")
    relative_path = models.CharField(max_length=1024, help_text="session folder, below the root")
    h2o = models.CharField(max_length=16, db_index=True, help_text="water-restriction number")
    layout = models.CharField(max_length=8, choices=RecordingLayout.choices)
    probe_glob = models.CharField(max_length=255, help_text="probe folders, below the session")
    folder_date = models.DateField(null=True, blank=True, help_text="date in the folder name")
    recording_time = models.DateTimeField(null=True, blank=True)
    session = models.ForeignKey(
        Session,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="ephys_recordings",
        help_text="set when its sorted output is ingested",
    )

    class Meta:
        ordering = ["h2o", "relative_path"]
        constraints = [
            models.UniqueConstraint(fields=["root", "relative_path"], name="ephysrecording_unique"),
            models.CheckConstraint(
                condition=Q(layout__in=RecordingLayout.values), name="ephysrecording_layout_valid"
            ),
        ]

    def __str__(self) -> str:
        return self.relative_path


class SortedOutputStatus(models.TextChoices):
    FOUND = "found", "found, not ingested yet"
    INGESTED = "ingested", "ingested"
    IDENTICAL = "identical", "same clustering as the one ingested: nothing to do"
    SUPERSEDED = "superseded", "replaced on disk by a newer version before or after its ingest"


class SortedOutput(Timestamped):
    """One version of a recording's files: the key of the EphysIngest step.

    A scan that finds the files of a recording changed (a re-sort, a curation, metrics added)
    records a new version and marks the previous one superseded; ingesting the new version
    archives the replaced clustering (§14.6). ``files`` maps each file the ingest reads
    (metas, bitcode files, sorter outputs; not the raw ``.bin``) to [size, mtime_ns];
    ``fingerprint`` is the sha256 of that listing (empty when the folder was refused).
    """

    recording = models.ForeignKey(EphysRecording, on_delete=models.CASCADE, related_name="outputs")
    version = models.PositiveIntegerField()
    fingerprint = models.CharField(max_length=64, blank=True, default="")
    files = models.JSONField(default=dict, blank=True)
    status = models.CharField(
        max_length=10, choices=SortedOutputStatus.choices, default=SortedOutputStatus.FOUND
    )
    superseded_at = models.DateTimeField(null=True, blank=True)
    ingested_at = models.DateTimeField(null=True, blank=True)
    note = models.TextField(blank=True, default="", help_text="what the ingest did, or why not")

    class Meta:
        ordering = ["recording", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["recording", "version"], name="sortedoutput_unique"),
            models.CheckConstraint(
                condition=Q(status__in=SortedOutputStatus.values), name="sortedoutput_status_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.recording.relative_path} (v{self.version})"
