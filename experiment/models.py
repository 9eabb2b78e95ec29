"""Schema ``experiment`` (spec §3): sessions, trials, labels, events, photostimulation, periods.

Ingested tables (trials, events, photostim records) are written in bulk by
``experiment.ingest.service``; they carry no per-row history. Session-level tables that people
edit (comments, details, projects, tasks, training) do.

Times: trial start/stop are seconds from session start; trial and action events are seconds
from their trial's start (Bpod clock), as in the original (§19.14 lists the time bases).
"""

from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from simple_history.models import HistoricalRecords

from lab.models import BrainArea, Person, PhotostimDevice, Rig, SkullReference, Subject
from mapsite.core.models import Lookup, Timestamped

# --- Task definitions --------------------------------------------------------------------------


class Task(Lookup):
    pass


class TaskProtocol(models.Model):
    task = models.ForeignKey(Task, on_delete=models.PROTECT, related_name="protocols")
    protocol = models.PositiveSmallIntegerField()
    description = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["task", "protocol"]
        constraints = [
            models.UniqueConstraint(fields=["task", "protocol"], name="taskprotocol_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.task.name} #{self.protocol}"


class TrainingType(Lookup):
    pass


class Project(Lookup):
    publication = models.CharField(max_length=256, blank=True, default="", help_text="DOI")


# --- Sessions ----------------------------------------------------------------------------------


class Session(Timestamped):
    subject = models.ForeignKey(Subject, on_delete=models.PROTECT, related_name="sessions")
    session = models.PositiveSmallIntegerField(help_text="Session number of this subject (1-based)")
    start_time = models.DateTimeField(help_text="Session start (stored in UTC)")
    username = models.ForeignKey(Person, on_delete=models.PROTECT, related_name="sessions")
    rig = models.ForeignKey(Rig, on_delete=models.PROTECT, related_name="sessions")
    projects = models.ManyToManyField(Project, through="ProjectSession", blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["subject__subject_id", "session"]
        constraints = [
            models.UniqueConstraint(fields=["subject", "session"], name="session_unique"),
            models.UniqueConstraint(fields=["subject", "start_time"], name="session_start_unique"),
            models.CheckConstraint(condition=Q(session__gte=1), name="session_number_positive"),
        ]
        indexes = [models.Index(fields=["start_time"])]

    def __str__(self) -> str:
        wr = getattr(self.subject, "water_restriction", None)
        who = wr.water_restriction_number if wr else self.subject.subject_id
        return f"{who} #{self.session} ({timezone.localtime(self.start_time):%Y-%m-%d %H:%M})"


class SessionTraining(models.Model):
    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="trainings")
    training_type = models.ForeignKey(TrainingType, on_delete=models.PROTECT)
    history = HistoricalRecords()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["session", "training_type"], name="sessiontraining_unique"
            ),
        ]

    def __str__(self) -> str:
        return str(self.training_type)


class SessionTask(models.Model):
    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="tasks")
    task_protocol = models.ForeignKey(TaskProtocol, on_delete=models.PROTECT)
    history = HistoricalRecords()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["session", "task_protocol"], name="sessiontask_unique"),
        ]

    def __str__(self) -> str:
        return str(self.task_protocol)


class SessionComment(models.Model):
    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="comments")
    comment = models.CharField(max_length=767)
    history = HistoricalRecords()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["session", "comment"], name="sessioncomment_unique"),
        ]

    def __str__(self) -> str:
        return self.comment


class SessionDetails(models.Model):
    session = models.OneToOneField(
        Session, on_delete=models.CASCADE, primary_key=True, related_name="details"
    )
    session_weight = models.DecimalField(max_digits=8, decimal_places=4, null=True, blank=True)
    session_water_earned = models.DecimalField(
        max_digits=8, decimal_places=4, null=True, blank=True
    )
    session_water_extra = models.DecimalField(max_digits=8, decimal_places=4, null=True, blank=True)
    history = HistoricalRecords()

    class Meta:
        verbose_name_plural = "session details"
        constraints = [
            models.CheckConstraint(
                condition=Q(session_weight__isnull=True) | Q(session_weight__gt=0),
                name="sessiondetails_weight_positive",
            ),
        ]

    def __str__(self) -> str:
        return f"details of {self.session}"


class ProjectSession(models.Model):
    project = models.ForeignKey(Project, on_delete=models.PROTECT)
    session = models.ForeignKey(Session, on_delete=models.CASCADE)
    history = HistoricalRecords()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "session"], name="projectsession_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.project} / {self.session}"


# --- Trials and trial labels -------------------------------------------------------------------


class SessionTrial(models.Model):
    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="trials")
    trial = models.PositiveIntegerField(help_text="1-based, counting skipped trials too")
    trial_uid = models.PositiveIntegerField()
    start_time = models.FloatField(help_text="s from session start")
    stop_time = models.FloatField(help_text="s from session start")

    class Meta:
        ordering = ["session", "trial"]
        constraints = [
            models.UniqueConstraint(fields=["session", "trial"], name="sessiontrial_unique"),
            models.CheckConstraint(condition=Q(trial__gte=1), name="sessiontrial_number_positive"),
            models.CheckConstraint(
                condition=Q(stop_time__gte=F("start_time")), name="sessiontrial_stop_after_start"
            ),
        ]

    def __str__(self) -> str:
        return f"trial {self.trial}"


class TrialNoteType(Lookup):
    pass


class TrialNote(models.Model):
    trial = models.ForeignKey(SessionTrial, on_delete=models.CASCADE, related_name="notes")
    note_type = models.ForeignKey(TrialNoteType, on_delete=models.PROTECT)
    note = models.CharField(max_length=255)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["trial", "note_type"], name="trialnote_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.note_type}: {self.note}"


class TrialInstruction(Lookup):
    pass


class Outcome(Lookup):
    pass


class EarlyLick(Lookup):
    pass


class BehaviorTrial(models.Model):
    trial = models.OneToOneField(
        SessionTrial, on_delete=models.CASCADE, primary_key=True, related_name="behavior"
    )
    task_protocol = models.ForeignKey(TaskProtocol, on_delete=models.PROTECT)
    instruction = models.ForeignKey(TrialInstruction, on_delete=models.PROTECT)
    early_lick = models.ForeignKey(EarlyLick, on_delete=models.PROTECT)
    outcome = models.ForeignKey(Outcome, on_delete=models.PROTECT)
    auto_water = models.BooleanField(
        default=False, help_text="water given after the response time regardless of correctness"
    )
    free_water = models.BooleanField(default=False, help_text='"empty" trial with water, no go cue')

    def __str__(self) -> str:
        return f"{self.trial}: {self.instruction} {self.outcome}"


class WaterPort(Lookup):
    pass


class WaterPortChoice(models.Model):
    trial = models.OneToOneField(
        BehaviorTrial, on_delete=models.CASCADE, primary_key=True, related_name="water_port_choice"
    )
    water_port = models.ForeignKey(
        WaterPort, null=True, blank=True, on_delete=models.PROTECT, help_text="null: no choice"
    )


class TrialEventType(Lookup):
    pass


class TrialEvent(models.Model):
    trial = models.ForeignKey(BehaviorTrial, on_delete=models.CASCADE, related_name="events")
    trial_event_id = models.PositiveIntegerField(help_text="running counter within the session")
    event_type = models.ForeignKey(TrialEventType, on_delete=models.PROTECT)
    trial_event_time = models.FloatField(help_text="s from trial start")
    duration = models.FloatField(default=0.0, help_text="s")

    class Meta:
        ordering = ["trial", "trial_event_id"]
        constraints = [
            models.UniqueConstraint(fields=["trial", "trial_event_id"], name="trialevent_unique"),
            models.CheckConstraint(condition=Q(duration__gte=0), name="trialevent_duration_ge0"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} at {self.trial_event_time:.4f} s"


class ActionEventType(Lookup):
    pass


class ActionEvent(models.Model):
    trial = models.ForeignKey(BehaviorTrial, on_delete=models.CASCADE, related_name="actions")
    action_event_id = models.PositiveIntegerField(help_text="running counter within the session")
    action_type = models.ForeignKey(ActionEventType, on_delete=models.PROTECT)
    action_event_time = models.FloatField(help_text="s from trial start")

    class Meta:
        ordering = ["trial", "action_event_id"]
        constraints = [
            models.UniqueConstraint(fields=["trial", "action_event_id"], name="actionevent_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.action_type} at {self.action_event_time:.4f} s"


# --- Multi-target licking (§3.4) ---------------------------------------------------------------


class MultiTargetLickingBlock(models.Model):
    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="mtl_blocks")
    block = models.PositiveSmallIntegerField()
    block_start_time = models.FloatField(help_text="s from session start")
    trial_count = models.PositiveIntegerField()
    num_licks_for_reward = models.PositiveSmallIntegerField()
    roll_deg = models.FloatField(help_text="positive = head toward right shoulder")
    position_x_bins = models.PositiveIntegerField(default=3)
    position_y_bins = models.PositiveIntegerField(default=1)
    position_z_bins = models.PositiveIntegerField(default=3)

    class Meta:
        ordering = ["session", "block"]
        constraints = [
            models.UniqueConstraint(fields=["session", "block"], name="mtlblock_unique"),
        ]


class MultiTargetLickingBlockWaterPort(models.Model):
    block = models.OneToOneField(
        MultiTargetLickingBlock, on_delete=models.CASCADE, related_name="water_port"
    )
    water_port = models.ForeignKey(WaterPort, on_delete=models.PROTECT)
    position_x = models.FloatField(help_text="lateral, motor units")
    position_y = models.FloatField(help_text="rostrocaudal, motor units")
    position_z = models.FloatField(help_text="dorsoventral, motor units")


class MultiTargetLickingBlockTrial(models.Model):
    block = models.ForeignKey(
        MultiTargetLickingBlock, on_delete=models.CASCADE, related_name="trials"
    )
    trial = models.OneToOneField(BehaviorTrial, on_delete=models.CASCADE, related_name="mtl_block")
    block_trial_number = models.PositiveIntegerField(help_text="order within the block")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["block", "block_trial_number"], name="mtlblocktrial_unique"
            ),
        ]


# --- Photostimulation (§3.5) -------------------------------------------------------------------


class Photostim(models.Model):
    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="photostims")
    photo_stim = models.PositiveSmallIntegerField(help_text="protocol number")
    device = models.ForeignKey(PhotostimDevice, on_delete=models.PROTECT)
    duration = models.FloatField(null=True, blank=True, help_text="s")
    waveform = models.BinaryField(
        null=True, blank=True, help_text="float64 .npy, normalised to max power"
    )

    class Meta:
        ordering = ["session", "photo_stim"]
        constraints = [
            models.UniqueConstraint(fields=["session", "photo_stim"], name="photostim_unique"),
            models.CheckConstraint(
                condition=Q(duration__isnull=True) | Q(duration__gt=0),
                name="photostim_duration_positive",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.session} photostim {self.photo_stim}"


class PhotostimLocation(models.Model):
    """Anterior +, right +, depth ventral negative (µm); theta in [0, 180], phi in [0, 360]."""

    photostim = models.ForeignKey(Photostim, on_delete=models.CASCADE, related_name="locations")
    skull_reference = models.ForeignKey(SkullReference, on_delete=models.PROTECT)
    ap_location = models.DecimalField(max_digits=6, decimal_places=2)
    ml_location = models.DecimalField(max_digits=6, decimal_places=2)
    depth = models.DecimalField(max_digits=6, decimal_places=2)
    theta = models.DecimalField(max_digits=5, decimal_places=2)
    phi = models.DecimalField(max_digits=5, decimal_places=2)
    brain_area = models.ForeignKey(BrainArea, on_delete=models.PROTECT)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=[
                    "photostim",
                    "skull_reference",
                    "ap_location",
                    "ml_location",
                    "depth",
                    "theta",
                    "phi",
                ],
                name="photostimlocation_unique",
            ),
            models.CheckConstraint(
                condition=Q(theta__gte=0, theta__lte=180), name="photostimlocation_theta_range"
            ),
            models.CheckConstraint(
                condition=Q(phi__gte=0, phi__lte=360), name="photostimlocation_phi_range"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.brain_area} (AP {self.ap_location}, ML {self.ml_location})"


class Laterality(models.TextChoices):
    LEFT = "left"
    RIGHT = "right"
    BOTH = "both"


class PhotostimBrainRegion(models.Model):
    """Computed (pipeline step ``PhotostimBrainRegion``): the one area and the side stimulated."""

    photostim = models.OneToOneField(
        Photostim, on_delete=models.CASCADE, primary_key=True, related_name="brain_region"
    )
    stim_brain_area = models.ForeignKey(BrainArea, on_delete=models.PROTECT)
    stim_laterality = models.CharField(max_length=5, choices=Laterality.choices)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(stim_laterality__in=Laterality.values),
                name="photostimbrainregion_laterality_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.stim_brain_area} ({self.stim_laterality})"


class PhotostimTrial(models.Model):
    trial = models.OneToOneField(
        SessionTrial, on_delete=models.CASCADE, primary_key=True, related_name="photostim_trial"
    )

    def __str__(self) -> str:
        return f"photostim {self.trial}"


class PhotostimEvent(models.Model):
    photostim_trial = models.ForeignKey(
        PhotostimTrial, on_delete=models.CASCADE, related_name="events"
    )
    photostim_event_id = models.PositiveIntegerField()
    # RESTRICT, not PROTECT: deleting a session deletes these events through its trials too.
    photostim = models.ForeignKey(Photostim, on_delete=models.RESTRICT, related_name="events")
    photostim_event_time = models.FloatField(help_text="s from trial start")
    power = models.FloatField(help_text="mW (max power)")

    class Meta:
        ordering = ["photostim_trial", "photostim_event_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["photostim_trial", "photostim_event_id"], name="photostimevent_unique"
            ),
            models.CheckConstraint(condition=Q(power__gte=0), name="photostimevent_power_ge0"),
        ]

    def __str__(self) -> str:
        return f"photostim {self.photostim.photo_stim} at {self.photostim_event_time} s"


# --- Analysis windows (§3.6) -------------------------------------------------------------------


class Period(Lookup):
    start_event_type = models.ForeignKey(TrialEventType, on_delete=models.PROTECT, related_name="+")
    start_time_shift = models.FloatField(default=0.0)
    end_event_type = models.ForeignKey(TrialEventType, on_delete=models.PROTECT, related_name="+")
    end_time_shift = models.FloatField(default=0.0)


# --- Ingest bookkeeping (§13) ------------------------------------------------------------------


class BehaviorFile(Timestamped):
    """A Bpod ``.mat`` file found under a behavior data root: the key of the BehaviorIngest step.

    The file is identified by (root, relative path); size, mtime and checksum are recorded when
    it is found so that a file changing after its ingest is noticed and flagged for a person
    instead of being ingested a second time.
    """

    rig = models.ForeignKey(Rig, null=True, blank=True, on_delete=models.PROTECT)
    root = models.CharField(max_length=1024, help_text="data root it was found under")
    relative_path = models.CharField(max_length=1024)
    file_name = models.CharField(max_length=255, db_index=True)
    size = models.BigIntegerField()
    mtime = models.DateTimeField()
    sha256 = models.CharField(max_length=64)
    session = models.ForeignKey(
        Session, null=True, blank=True, on_delete=models.SET_NULL, related_name="behavior_files"
    )
    ingested_at = models.DateTimeField(null=True, blank=True)
    changed_after_ingest = models.DateTimeField(
        null=True, blank=True, help_text="when a later scan found different contents"
    )
    change_note = models.CharField(max_length=1024, blank=True, default="")

    class Meta:
        ordering = ["-mtime"]
        constraints = [
            models.UniqueConstraint(fields=["root", "relative_path"], name="behaviorfile_unique"),
            models.CheckConstraint(condition=Q(size__gte=0), name="behaviorfile_size_ge0"),
        ]

    def __str__(self) -> str:
        return self.file_name
