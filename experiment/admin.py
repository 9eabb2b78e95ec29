"""Admin of schema ``experiment``: sessions (edited by people) and their ingested trials.

Sessions are edited here (comments, weights, tasks, projects); trials, events and photostim
records come from ingest and are shown read-only. The session page carries a per-session summary
computed with two aggregate queries and the full trial table rendered from one query, however
many trials the session has.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin
from django.db import models
from django.db.models import Count, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.functional import lazy
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.text import format_lazy

from mapsite.core.admin_base import (
    EMPTY,
    AutocompleteFilter,
    HistoryAdmin,
    LookupAdmin,
    ReadOnlyAdmin,
    ReadOnlyInline,
    SessionScopedMixin,
    TabularInline,
    admin_link,
)

from . import lookups
from .analysis.plots import performance_plot_html
from .models import (
    ActionEvent,
    ActionEventType,
    BehaviorFile,
    BehaviorTrial,
    EarlyLick,
    MultiTargetLickingBlock,
    Outcome,
    Period,
    Photostim,
    PhotostimEvent,
    PhotostimLocation,
    Project,
    ProjectSession,
    Session,
    SessionComment,
    SessionDetails,
    SessionTask,
    SessionTraining,
    SessionTrial,
    Task,
    TaskProtocol,
    TrainingType,
    TrialEvent,
    TrialEventType,
    TrialInstruction,
    TrialNote,
    TrialNoteType,
    WaterPort,
)

NO_EARLY_LICK = "no early"
OUTCOME_ORDER = [row["name"] for row in lookups.OUTCOMES]
INSTRUCTION_ORDER = [row["name"] for row in lookups.TRIAL_INSTRUCTIONS]
SESSION_PATH = "session__subject__water_restriction"  # what str(session) reads
TICK = "✓"


def _lab_time_zone() -> str:
    return settings.TIME_ZONE


LAB_TZ = lazy(_lab_time_zone, str)()


def _ordered(names: set[str], order: list[str]) -> list[str]:
    return [n for n in order if n in names] + sorted(n for n in names if n not in order)


# --- Lookups (contents from the data migrations; read-only) ------------------------------------

for _lookup in (
    Task,
    TrainingType,
    TrialNoteType,
    TrialInstruction,
    Outcome,
    EarlyLick,
    WaterPort,
    TrialEventType,
    ActionEventType,
):
    admin.site.register(_lookup, LookupAdmin)


@admin.register(Project)
class ProjectAdmin(LookupAdmin):
    list_display = ["name", "description", "publication"]


@admin.register(TaskProtocol)
class TaskProtocolAdmin(LookupAdmin):
    list_display = ["task", "protocol", "description"]
    list_select_related = ["task"]
    list_filter = ["task"]
    search_fields = ["task__name", "description"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[TaskProtocol]:
        return super().get_queryset(request).select_related("task")  # str() reads the task


@admin.register(Period)
class PeriodAdmin(LookupAdmin):
    list_display = [
        "name",
        "start_event_type",
        "start_time_shift",
        "end_event_type",
        "end_time_shift",
    ]
    list_select_related = ["start_event_type", "end_event_type"]


# --- Session summary (also used by tests and, later, by the performance plot) -----------------


def session_summary(session: Session) -> dict[str, Any]:
    """Trial counts of one session: two aggregate queries, independent of the number of trials.

    Returns the totals (trials, with behavior, early lick, auto/free water, photostim) and an
    instruction × outcome table with row totals and the fraction of hits.
    """
    totals = SessionTrial.objects.filter(session=session).aggregate(
        trials=Count("pk"),
        with_behavior=Count("behavior"),
        early_lick=Count(
            "pk",
            filter=Q(behavior__isnull=False) & ~Q(behavior__early_lick__name=NO_EARLY_LICK),
        ),
        auto_water=Count("pk", filter=Q(behavior__auto_water=True)),
        free_water=Count("pk", filter=Q(behavior__free_water=True)),
        photostim=Count("photostim_trial"),
    )
    cells: dict[tuple[str, str], int] = {
        (instruction, outcome): n
        for instruction, outcome, n in BehaviorTrial.objects.filter(trial__session=session)
        .order_by()
        .values_list("instruction__name", "outcome__name")
        .annotate(n=Count("pk"))
    }
    outcomes = _ordered({o for _, o in cells} | {"hit", "miss", "ignore"}, OUTCOME_ORDER)
    instructions = _ordered({i for i, _ in cells}, INSTRUCTION_ORDER)
    by_outcome: dict[str, int] = defaultdict(int)
    rows = []
    for instruction in instructions:
        counts = [cells.get((instruction, o), 0) for o in outcomes]
        total = sum(counts)
        for o, n in zip(outcomes, counts, strict=True):
            by_outcome[o] += n
        hits = cells.get((instruction, "hit"), 0)
        rows.append(
            {
                "instruction": instruction,
                "counts": counts,
                "total": total,
                "hit_fraction": hits / total if total else None,
                "hit_percent": round(100 * hits / total) if total else None,
            }
        )
    all_total = sum(by_outcome.values())
    return {
        **totals,
        "outcomes": outcomes,
        "rows": rows,
        "outcome_totals": [by_outcome[o] for o in outcomes],
        "by_outcome": dict(by_outcome),
        "by_instruction": {r["instruction"]: r["total"] for r in rows},
        "behavior_total": all_total,
        "hit_fraction": by_outcome["hit"] / all_total if all_total else None,
        "hit_percent": round(100 * by_outcome["hit"] / all_total) if all_total else None,
    }


def trial_rows(session: Session) -> list[dict[str, Any]]:
    """Every trial of a session with its behavior labels: one query (values, no model objects)."""
    change_url = reverse("admin:experiment_sessiontrial_change", args=["__pk__"])
    rows = []
    for (
        pk,
        trial,
        start,
        stop,
        instruction,
        outcome,
        early,
        auto_water,
        free_water,
        photostim,
    ) in (
        SessionTrial.objects.filter(session=session)
        .order_by("trial")
        .values_list(
            "pk",
            "trial",
            "start_time",
            "stop_time",
            "behavior__instruction__name",
            "behavior__outcome__name",
            "behavior__early_lick__name",
            "behavior__auto_water",
            "behavior__free_water",
            "photostim_trial",
        )
    ):
        rows.append(
            {
                "url": change_url.replace("__pk__", str(pk)),
                "trial": trial,
                "start": start,
                "stop": stop,
                "instruction": instruction,
                "outcome": outcome,
                "early_lick": early if early and early != NO_EARLY_LICK else "",
                "auto_water": auto_water,
                "free_water": free_water,
                "photostim": photostim is not None,
            }
        )
    return rows


# --- Sessions ----------------------------------------------------------------------------------


class SessionCommentInline(TabularInline):
    model = SessionComment
    fields = ["comment"]
    extra = 1
    verbose_name = "comment"


class SessionDetailsInline(TabularInline):
    model = SessionDetails
    fields = ["session_weight", "session_water_earned", "session_water_extra"]
    max_num = 1
    extra = 1
    verbose_name = verbose_name_plural = "weight and water"


class SessionTaskInline(TabularInline):
    model = SessionTask
    fields = ["task_protocol"]
    verbose_name = "task protocol"

    def formfield_for_foreignkey(
        self, db_field: models.ForeignKey, request: HttpRequest | None, **kwargs: Any
    ) -> forms.Field | None:
        if db_field.name == "task_protocol":  # its str() reads the task: join it
            kwargs["queryset"] = TaskProtocol.objects.select_related("task")
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class SessionTrainingInline(TabularInline):
    model = SessionTraining
    fields = ["training_type"]
    verbose_name = "training"


class ProjectSessionInline(TabularInline):
    model = ProjectSession
    fields = ["project"]
    verbose_name = "project"


@admin.register(Session)
class SessionAdmin(HistoryAdmin):
    list_display = [
        "water_restriction_number",
        "session",
        "start_local",
        "rig",
        "username",
        "trial_count",
    ]
    list_display_links = ["water_restriction_number", "session"]
    list_select_related = ["subject__water_restriction", "rig", "username"]
    list_filter = [
        ("subject", AutocompleteFilter),
        "rig",
        "username",
        "projects",
        ("tasks__task_protocol__task", admin.RelatedFieldListFilter),
    ]
    date_hierarchy = "start_time"
    ordering = ["-start_time"]
    search_fields = [
        "subject__water_restriction__water_restriction_number",
        "subject__subject_id",
        "session__exact",
    ]
    search_help_text = "Water-restriction number (e.g. dl7), subject id or session number"
    autocomplete_fields = ["subject", "username", "rig"]
    readonly_fields = ["created_at", "updated_at"]
    inlines = [
        SessionDetailsInline,
        SessionCommentInline,
        SessionTaskInline,
        SessionTrainingInline,
        ProjectSessionInline,
    ]
    history_related = [
        (SessionDetails, "session"),
        (SessionComment, "session"),
        (SessionTask, "session"),
        (SessionTraining, "session"),
        (ProjectSession, "session"),
    ]
    change_form_template = "admin/experiment/session/change_form.html"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Session]:
        # A correlated count: PostgreSQL evaluates it for the 50 rows shown only, where a
        # JOIN + GROUP BY would aggregate the whole trial table first.
        n_trials = (
            SessionTrial.objects.filter(session=OuterRef("pk"))
            .order_by()
            .values("session")
            .annotate(n=Count("pk"))
            .values("n")
        )
        return (
            super()
            .get_queryset(request)
            .select_related("subject__water_restriction", "rig", "username")
            .annotate(trial_count=Coalesce(Subquery(n_trials), 0))
        )

    def get_fieldsets(self, request: HttpRequest, obj: Session | None = None) -> list:
        main = (None, {"fields": [("subject", "session"), "start_time", ("username", "rig")]})
        if obj is None:
            return [main]
        return [
            main,
            ("Record", {"classes": ["collapse"], "fields": [("created_at", "updated_at")]}),
        ]

    def formfield_for_dbfield(
        self, db_field: models.Field, request: HttpRequest | None, **kwargs: Any
    ) -> forms.Field | None:
        field = super().formfield_for_dbfield(db_field, request, **kwargs)
        if db_field.name == "start_time" and field is not None:
            field.help_text = f"Lab time ({settings.TIME_ZONE}); stored in UTC."
        return field

    @admin.display(
        description="water restriction",
        ordering="subject__water_restriction__water_restriction_number",
    )
    def water_restriction_number(self, session: Session) -> str:
        wr = getattr(session.subject, "water_restriction", None)
        return wr.water_restriction_number if wr else str(session.subject.subject_id)

    @admin.display(description=format_lazy("start ({})", LAB_TZ), ordering="start_time")
    def start_local(self, session: Session) -> str:
        return timezone.localtime(session.start_time).strftime("%Y-%m-%d %H:%M")

    @admin.display(description="trials", ordering="trial_count")
    def trial_count(self, session: Session) -> int:
        return session.trial_count

    def summary(self, session: Session) -> SafeString:
        """Trial counts by outcome and instruction, with links to the trial lists (shown full
        width under the session's fields)."""
        if session.pk is None:
            return mark_safe("")
        return mark_safe(  # noqa: S308 - rendered by an autoescaping template
            render_to_string(
                "admin/experiment/session/summary.html",
                {
                    "s": session_summary(session),
                    "trials_url": reverse("admin:experiment_sessiontrial_changelist")
                    + f"?session__id__exact={session.pk}",
                    "behavior_url": reverse("admin:experiment_behaviortrial_changelist")
                    + f"?trial__session__id__exact={session.pk}",
                    "performance_plot": self.performance_plot(session),
                },
            )
        )

    def performance_plot(self, session: Session) -> str:
        """Hook for the behavior performance plot (a later issue): return safe HTML, e.g. an
        <img>. Whatever it returns is shown under the summary table; "" shows nothing."""
        return performance_plot_html(session)

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict,
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Session | None = None,
    ) -> HttpResponse:
        if obj is not None and obj.pk is not None:
            context["summary"] = self.summary(obj)
            context["trial_rows"] = trial_rows(obj)
            context["trials_url"] = (
                reverse("admin:experiment_sessiontrial_changelist")
                + f"?session__id__exact={obj.pk}"
            )
        return super().render_change_form(request, context, add, change, form_url, obj)


# --- Trials and events (ingested: read-only) ---------------------------------------------------


@admin.register(SessionTrial)
class SessionTrialAdmin(SessionScopedMixin, ReadOnlyAdmin):
    list_display = [
        "session",
        "trial",
        "start_time",
        "stop_time",
        "instruction",
        "outcome",
        "early_lick",
        "auto_water",
        "free_water",
        "photostim",
    ]
    list_display_links = ["trial"]
    list_select_related = [
        SESSION_PATH,
        "behavior__instruction",
        "behavior__outcome",
        "behavior__early_lick",
        "photostim_trial",
    ]
    list_filter = [
        ("session", AutocompleteFilter),
        "behavior__outcome",
        "behavior__instruction",
        "behavior__early_lick",
        "behavior__auto_water",
        "behavior__free_water",
    ]
    # (session, trial) is unique and indexed: the newest session's trials come straight off it.
    ordering = ["-session_id", "trial"]
    session_ordering = ["trial"]
    fields = [
        "session",
        ("trial", "trial_uid"),
        ("start_time", "stop_time"),
        "behavior_labels",
        "events",
    ]
    readonly_fields = ["behavior_labels", "events"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[SessionTrial]:
        return super().get_queryset(request).select_related(SESSION_PATH)

    @staticmethod
    def _behavior(trial: SessionTrial) -> BehaviorTrial | None:
        return getattr(trial, "behavior", None)

    @admin.display(description="instruction", ordering="behavior__instruction__name")
    def instruction(self, trial: SessionTrial) -> str | None:
        b = self._behavior(trial)
        return b.instruction.name if b else None

    @admin.display(description="outcome", ordering="behavior__outcome__name")
    def outcome(self, trial: SessionTrial) -> str | None:
        b = self._behavior(trial)
        return b.outcome.name if b else None

    @admin.display(description="early lick", ordering="behavior__early_lick__name")
    def early_lick(self, trial: SessionTrial) -> str | None:
        b = self._behavior(trial)
        return b.early_lick.name if b and b.early_lick.name != NO_EARLY_LICK else None

    # Flags show as a tick when set and stay blank otherwise: a column of red crosses hides
    # the few trials that matter.
    @admin.display(description="auto water")
    def auto_water(self, trial: SessionTrial) -> str:
        b = self._behavior(trial)
        return TICK if b and b.auto_water else ""

    @admin.display(description="free water")
    def free_water(self, trial: SessionTrial) -> str:
        b = self._behavior(trial)
        return TICK if b and b.free_water else ""

    @admin.display(description="photostim")
    def photostim(self, trial: SessionTrial) -> str:
        return TICK if getattr(trial, "photostim_trial", None) is not None else ""  # joined

    @admin.display(description="behavior")
    def behavior_labels(self, trial: SessionTrial) -> str:
        b = (
            BehaviorTrial.objects.select_related(
                "task_protocol__task", "instruction", "outcome", "early_lick"
            )
            .filter(trial=trial)
            .first()
        )
        if b is None:
            return "–"
        flags = [
            name for name, on in (("auto water", b.auto_water), ("free water", b.free_water)) if on
        ]
        return format_html(
            "{} · instruction <b>{}</b> · outcome <b>{}</b> · {}{}",
            b.task_protocol,
            b.instruction,
            b.outcome,
            b.early_lick,
            f" · {', '.join(flags)}" if flags else "",
        )

    @admin.display(description="events")
    def events(self, trial: SessionTrial) -> SafeString:
        """The trial's events, licks, photostim events and notes: one query each."""
        events = [
            (e.trial_event_time, e.event_type.name, f"{e.duration:.3f} s" if e.duration else "")
            for e in TrialEvent.objects.filter(trial_id=trial.pk).select_related("event_type")
        ]
        events += [
            (a.action_event_time, a.action_type.name, "")
            for a in ActionEvent.objects.filter(trial_id=trial.pk).select_related("action_type")
        ]
        events += [
            (p.photostim_event_time, f"photostim {p.photostim.photo_stim}", f"{p.power} mW")
            for p in PhotostimEvent.objects.filter(photostim_trial_id=trial.pk)
            .select_related("photostim")
            .defer("photostim__waveform")
        ]
        notes = TrialNote.objects.filter(trial=trial).select_related("note_type")
        return mark_safe(  # noqa: S308 - rendered by an autoescaping template
            render_to_string(
                "admin/experiment/sessiontrial/events.html",
                {"events": sorted(events, key=lambda e: e[0]), "notes": notes},
            )
        )


@admin.register(BehaviorTrial)
class BehaviorTrialAdmin(SessionScopedMixin, ReadOnlyAdmin):
    list_display = [
        "session",
        "trial_number",
        "task_protocol",
        "instruction",
        "outcome",
        "early_lick",
        "auto_water_flag",
        "free_water_flag",
    ]
    list_display_links = ["trial_number"]
    list_select_related = [
        f"trial__{SESSION_PATH}",
        "task_protocol__task",
        "instruction",
        "outcome",
        "early_lick",
    ]
    list_filter = [
        ("trial__session", AutocompleteFilter),
        "outcome",
        "instruction",
        "early_lick",
        "auto_water",
        "free_water",
        ("task_protocol__task", admin.RelatedFieldListFilter),
    ]
    ordering = ["-pk"]  # the trial's id: ingested in session and trial order
    session_filter_param = "trial__session__id__exact"
    session_ordering = ["trial__trial"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[BehaviorTrial]:
        return (
            super()
            .get_queryset(request)
            .select_related(f"trial__{SESSION_PATH}", "task_protocol__task")
        )

    @admin.display(description="session", ordering="trial__session_id")
    def session(self, b: BehaviorTrial) -> Session:
        return b.trial.session

    @admin.display(description="trial", ordering="trial__trial")
    def trial_number(self, b: BehaviorTrial) -> int:
        return b.trial.trial

    @admin.display(description="auto water", ordering="auto_water")
    def auto_water_flag(self, b: BehaviorTrial) -> str:
        return TICK if b.auto_water else ""

    @admin.display(description="free water", ordering="free_water")
    def free_water_flag(self, b: BehaviorTrial) -> str:
        return TICK if b.free_water else ""


class _EventAdmin(SessionScopedMixin, ReadOnlyAdmin):
    """Trial/action events: filtered by session; the trial's session and number shown."""

    session_filter_param = "trial__trial__session__id__exact"

    @admin.display(description="session")
    def session(self, event: Any) -> Session:
        return event.trial.trial.session

    @admin.display(description="trial")
    def trial_number(self, event: Any) -> int:
        return event.trial.trial.trial


@admin.register(TrialEvent)
class TrialEventAdmin(_EventAdmin):
    list_display = [
        "session",
        "trial_number",
        "trial_event_id",
        "event_type",
        "trial_event_time",
        "duration",
    ]
    list_select_related = [f"trial__trial__{SESSION_PATH}", "event_type"]
    list_filter = [("trial__trial__session", AutocompleteFilter), "event_type"]
    ordering = ["-trial_id", "trial_event_id"]
    session_ordering = ["trial_id", "trial_event_id"]


@admin.register(ActionEvent)
class ActionEventAdmin(_EventAdmin):
    list_display = [
        "session",
        "trial_number",
        "action_event_id",
        "action_type",
        "action_event_time",
    ]
    list_select_related = [f"trial__trial__{SESSION_PATH}", "action_type"]
    list_filter = [("trial__trial__session", AutocompleteFilter), "action_type"]
    ordering = ["-trial_id", "action_event_id"]
    session_ordering = ["trial_id", "action_event_id"]


# --- Photostimulation (ingested: read-only) ----------------------------------------------------


class PhotostimLocationInline(ReadOnlyInline):
    model = PhotostimLocation
    fields = [
        "skull_reference",
        "ap_location",
        "ml_location",
        "depth",
        "theta",
        "phi",
        "brain_area",
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[PhotostimLocation]:
        return super().get_queryset(request).select_related("skull_reference", "brain_area")


@admin.register(Photostim)
class PhotostimAdmin(ReadOnlyAdmin):
    list_display = ["session", "photo_stim", "device", "duration", "stim_region"]
    list_display_links = ["photo_stim"]
    list_select_related = [SESSION_PATH, "device", "brain_region__stim_brain_area"]
    list_filter = [
        ("session", AutocompleteFilter),
        "device",
        "brain_region__stim_brain_area",
        "brain_region__stim_laterality",
    ]
    ordering = ["-session_id", "photo_stim"]
    fields = ["session", "photo_stim", "device", "duration", "waveform_info", "stim_region"]
    readonly_fields = ["waveform_info", "stim_region"]
    inlines = [PhotostimLocationInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Photostim]:
        return (
            super()
            .get_queryset(request)
            .select_related(SESSION_PATH, "device", "brain_region__stim_brain_area")
            .defer("waveform")  # up to megabytes a row; only the change page reads it
        )

    @admin.display(description="stimulated region (computed)")
    def stim_region(self, photostim: Photostim) -> str:
        region = getattr(photostim, "brain_region", None)
        if region is None:
            return EMPTY
        return f"{region.stim_brain_area.name}, {region.stim_laterality}"

    @admin.display(description="waveform")
    def waveform_info(self, photostim: Photostim) -> str:
        data = photostim.waveform
        if not data:
            return EMPTY
        return f"{len(bytes(data)):,} bytes (float64 .npy, normalised to max power)"


@admin.register(PhotostimEvent)
class PhotostimEventAdmin(SessionScopedMixin, ReadOnlyAdmin):
    list_display = [
        "session",
        "trial_number",
        "photostim_event_id",
        "photo_stim",
        "photostim_event_time",
        "power",
    ]
    list_select_related = [f"photostim_trial__trial__{SESSION_PATH}", "photostim"]
    list_filter = [("photostim_trial__trial__session", AutocompleteFilter)]
    ordering = ["-photostim_trial_id", "photostim_event_id"]
    session_filter_param = "photostim_trial__trial__session__id__exact"
    session_ordering = ["photostim_trial_id", "photostim_event_id"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[PhotostimEvent]:
        return super().get_queryset(request).defer("photostim__waveform")

    @admin.display(description="session")
    def session(self, event: PhotostimEvent) -> Session:
        return event.photostim_trial.trial.session

    @admin.display(description="trial")
    def trial_number(self, event: PhotostimEvent) -> int:
        return event.photostim_trial.trial.trial

    @admin.display(description="photostim protocol")
    def photo_stim(self, event: PhotostimEvent) -> int:
        return event.photostim.photo_stim


@admin.register(MultiTargetLickingBlock)
class MultiTargetLickingBlockAdmin(ReadOnlyAdmin):
    list_display = [
        "session",
        "block",
        "block_start_time",
        "trial_count",
        "num_licks_for_reward",
        "roll_deg",
        "water_port_name",
    ]
    list_select_related = [SESSION_PATH, "water_port__water_port"]
    list_filter = [("session", AutocompleteFilter)]
    ordering = ["-session_id", "block"]

    @admin.display(description="water port")
    def water_port_name(self, block: MultiTargetLickingBlock) -> str | None:
        port = getattr(block, "water_port", None)
        return port.water_port.name if port else None


# --- Ingest bookkeeping ------------------------------------------------------------------------


@admin.register(BehaviorFile)
class BehaviorFileAdmin(ReadOnlyAdmin):
    """Bpod files found on the data roots, with what their ingest job did.

    The job status and message come from the BehaviorIngest job of each file (one subquery);
    a file whose contents changed after its ingest is flagged here for a person.
    """

    list_display = [
        "file_name",
        "rig",
        "job_status",
        "job_message",
        "session_link",
        "size",
        "mtime",
        "changed_flag",
    ]
    list_filter = ["rig", ("session", admin.EmptyFieldListFilter), "changed_after_ingest"]
    search_fields = ["file_name", "relative_path"]
    list_select_related = ["rig", "session__subject__water_restriction"]
    actions = ["retry_ingest", "accept_new_contents"]
    readonly_fields = [f.name for f in BehaviorFile._meta.fields]

    def get_queryset(self, request: HttpRequest) -> QuerySet[BehaviorFile]:
        from mapsite.pipeline.models import Job

        jobs = Job.objects.filter(step="BehaviorIngest", key_id=OuterRef("pk"))
        return (
            super()
            .get_queryset(request)
            .annotate(
                job_status=Subquery(jobs.values("status")[:1]),
                job_message=Subquery(jobs.values("message")[:1]),
                job_id=Subquery(jobs.values("pk")[:1]),
            )
        )

    @admin.display(description="ingest job", ordering="job_status")
    def job_status(self, obj: BehaviorFile) -> str:
        if obj.job_id is None:
            return "not queued yet"
        url = reverse("admin:pipeline_job_change", args=[obj.job_id])
        return format_html('<a href="{}">{}</a>', url, obj.job_status)

    @admin.display(description="message")
    def job_message(self, obj: BehaviorFile) -> str:
        return (obj.job_message or "")[:160]

    @admin.display(description="session", ordering="session")
    def session_link(self, obj: BehaviorFile) -> str:
        return admin_link(obj.session) if obj.session_id else "-"

    @admin.display(description="changed after ingest", ordering="changed_after_ingest")
    def changed_flag(self, obj: BehaviorFile) -> str:
        if obj.changed_after_ingest is None:
            return ""
        return format_html('<b style="color:#c62828" title="{}">changed</b>', obj.change_note)

    @admin.action(description="Retry the ingest of the selected files", permissions=["view"])
    def retry_ingest(self, request: HttpRequest, queryset: QuerySet[BehaviorFile]) -> None:
        from mapsite.pipeline import runner
        from mapsite.pipeline.models import Job

        if not request.user.is_staff:
            self.message_user(request, "Only staff can retry ingests.", level="error")
            return
        ids = Job.objects.filter(
            step="BehaviorIngest", key_id__in=queryset.values("pk")
        ).values_list("pk", flat=True)
        n = runner.retry(ids)
        self.message_user(request, f"{n} ingest job(s) queued again.")

    @admin.action(
        description="Accept the new contents of changed files: delete their old session and "
        "ingest them again",
        permissions=["view"],
    )
    def accept_new_contents(self, request: HttpRequest, queryset: QuerySet[BehaviorFile]) -> None:
        from django.db import transaction

        from mapsite.pipeline import runner

        from .ingest.service import ReingestRefused, accept_changed_file
        from .steps import BEHAVIOR_INGEST

        if not request.user.is_staff:
            self.message_user(request, "Only staff can re-ingest files.", level="error")
            return
        accepted = []
        for behavior_file in queryset.filter(changed_after_ingest__isnull=False):
            try:
                with transaction.atomic():
                    accept_changed_file(behavior_file)
                accepted.append(behavior_file.pk)
            except (ReingestRefused, OSError) as exc:
                self.message_user(request, str(exc), level="error")
        if accepted:
            runner.queue_missing([BEHAVIOR_INGEST], key_ids=accepted)
            self.message_user(request, f"{len(accepted)} file(s) queued for a new ingest.")
