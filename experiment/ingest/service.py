"""Writing a parsed Bpod session to the database (the BehaviorIngest step's make).

Everything for one file is written inside the caller's transaction (the pipeline step's), in
bulk: one INSERT per table, not one per row. Any problem raises before or during the writes and
the transaction leaves the database as it was.
"""

import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings
from django.db.models import Max
from django.utils import timezone

from experiment import models as m
from lab.models import BrainArea, Person, PhotostimDevice, Rig, SkullReference, Subject
from mapsite.core.paths import PathOutsideRootsError, resolve_in_roots
from mapsite.pipeline.steps import StepWaiting

from .bpod import ParsedSession, parse_behavior_filename, parse_session
from .discovery import behavior_roots, sha256_of
from .errors import BehaviorFileError

log = logging.getLogger(__name__)


class SessionExistsError(BehaviorFileError):
    """The session of this file is already in the database (e.g. the same file copied twice)."""


def _by_name(model: type, names: Iterable[str], what: str, path: Path) -> dict:
    """Lookup rows by name; a value the lookup does not know is an error naming the file."""
    wanted = set(names)
    rows = {row.name: row for row in model.objects.filter(name__in=wanted)}
    unknown = wanted - rows.keys()
    if unknown:
        raise BehaviorFileError(path, f"unknown {what}: {', '.join(sorted(unknown))}")
    return rows


def confined_path(behavior_file: m.BehaviorFile) -> Path:
    """The file's real path, re-checked against the configured roots before it is opened."""
    roots = [r for r in behavior_roots() if str(r.path) == behavior_file.root]
    if not roots:
        raise PathOutsideRootsError(
            f"{behavior_file.relative_path}: its data root {behavior_file.root} is no longer "
            "configured (MAP_BEHAVIOR_ROOTS)"
        )
    path = Path(behavior_file.root) / behavior_file.relative_path
    try:
        resolve_in_roots(path, behavior_roots())
    except PathOutsideRootsError as exc:
        raise PathOutsideRootsError(f"{behavior_file.file_name}: refused: {exc}") from None
    return path.resolve()


def ingest_behavior_file(behavior_file: m.BehaviorFile) -> m.Session:
    """Make one key of BehaviorIngest: parse the file and write its session."""
    name = parse_behavior_filename(behavior_file.file_name)
    path = confined_path(behavior_file)
    subject = (
        Subject.objects.select_for_update()  # serialises session numbering per subject
        .filter(water_restriction__water_restriction_number=name.h2o)
        .first()
    )
    if subject is None:
        raise StepWaiting(
            f"no subject with water-restriction number {name.h2o}: enter it in the admin and "
            "this file is ingested by the next sweep"
        )
    rig_name = next((r.rig for r in behavior_roots() if str(r.path) == behavior_file.root), None)
    rig = Rig.objects.filter(name=rig_name).first() if rig_name else behavior_file.rig
    if rig is None:
        raise StepWaiting(
            f"rig {rig_name!r} (of data root {behavior_file.root}) is not entered in the admin"
        )
    if behavior_file.sha256 and sha256_of(path) != behavior_file.sha256:
        # Waiting, not an error: the next sweep's scan records the new contents and then
        # retries waiting jobs, so the file is ingested once the rig has finished writing it.
        raise StepWaiting(
            f"{behavior_file.file_name}: contents changed since the file was found (still being "
            "written?); the next scan records the new contents and it is ingested then"
        )
    parsed = parse_session(path, rig_root_relative_path=behavior_file.relative_path)
    username, _ = Person.objects.get_or_create(username=settings.SESSION_DEFAULT_USER)
    session = write_session(parsed, subject=subject, rig=rig, username=username)
    behavior_file.session = session
    behavior_file.rig = rig
    behavior_file.ingested_at = timezone.now()
    behavior_file.save(update_fields=["session", "rig", "ingested_at", "updated_at"])
    return session


def write_session(
    parsed: ParsedSession, *, subject: Subject, rig: Rig, username: Person
) -> m.Session:
    """Insert the session and everything below it. Call inside a transaction."""
    path = parsed.path
    existing = m.Session.objects.filter(
        subject=subject, start_time=parsed.session_datetime_utc
    ).first()
    if existing is not None:
        raise SessionExistsError(
            path,
            f"session {existing} (started {parsed.session_datetime_utc:%Y-%m-%d %H:%M:%S} UTC) "
            "is already ingested",
        )
    trials = parsed.trials
    protocols = {
        (p.task.name, p.protocol): p
        for p in m.TaskProtocol.objects.select_related("task").filter(
            task__name__in={t.task for t in trials} | {parsed.task}
        )
    }
    missing = {(t.task, t.task_protocol) for t in trials} - protocols.keys()
    if missing:
        raise BehaviorFileError(path, f"unknown task protocol(s): {sorted(missing)}")
    instructions = _by_name(
        m.TrialInstruction, {t.instruction for t in trials}, "instruction", path
    )
    outcomes = _by_name(m.Outcome, {t.outcome for t in trials}, "outcome", path)
    early = _by_name(m.EarlyLick, {t.early_lick for t in trials}, "early-lick value", path)
    note_types = _by_name(
        m.TrialNoteType, {k for t in trials for k in t.notes}, "trial note type", path
    )
    event_types = _by_name(
        m.TrialEventType, {e.event_type for t in trials for e in t.events}, "event type", path
    )
    action_types = _by_name(
        m.ActionEventType, {a.action_type for t in trials for a in t.actions}, "action", path
    )

    number = (m.Session.objects.filter(subject=subject).aggregate(n=Max("session"))["n"] or 0) + 1
    session = m.Session.objects.create(
        subject=subject,
        session=number,
        start_time=parsed.session_datetime_utc,
        username=username,
        rig=rig,
    )
    used_protocols = {(t.task, t.task_protocol) for t in trials}
    m.SessionTask.objects.bulk_create(
        [m.SessionTask(session=session, task_protocol=protocols[k]) for k in sorted(used_protocols)]
    )

    # Rows are built with *_id attributes, not related objects: setting a related object on
    # ~15,000 instances (descriptor checks, then re-checked by bulk_create) costs about as much
    # as the INSERTs themselves. The rows written are the same.
    pk = {
        "protocol": {k: v.pk for k, v in protocols.items()},
        "instruction": {k: v.pk for k, v in instructions.items()},
        "outcome": {k: v.pk for k, v in outcomes.items()},
        "early": {k: v.pk for k, v in early.items()},
        "note": {k: v.pk for k, v in note_types.items()},
        "event": {k: v.pk for k, v in event_types.items()},
        "action": {k: v.pk for k, v in action_types.items()},
    }
    trial_rows = m.SessionTrial.objects.bulk_create(
        [
            m.SessionTrial(
                session_id=session.pk,
                trial=t.trial,
                trial_uid=t.trial_uid,
                start_time=round(t.start_time, 4),
                stop_time=round(t.stop_time, 4),
            )
            for t in trials
        ],
        batch_size=2000,
    )
    trial_ids = [row.pk for row in trial_rows]
    behavior_rows = m.BehaviorTrial.objects.bulk_create(
        [
            m.BehaviorTrial(
                trial_id=trial_id,
                task_protocol_id=pk["protocol"][(t.task, t.task_protocol)],
                instruction_id=pk["instruction"][t.instruction],
                early_lick_id=pk["early"][t.early_lick],
                outcome_id=pk["outcome"][t.outcome],
                auto_water=t.auto_water,
                free_water=t.free_water,
            )
            for trial_id, t in zip(trial_ids, trials, strict=True)
        ],
        batch_size=2000,
    )
    m.TrialNote.objects.bulk_create(
        [
            m.TrialNote(trial_id=trial_id, note_type_id=pk["note"][kind], note=str(value)[:255])
            for trial_id, t in zip(trial_ids, trials, strict=True)
            for kind, value in t.notes.items()
        ],
        batch_size=5000,
    )
    events, actions = [], []
    event_id = action_id = 0
    for trial_id, t in zip(trial_ids, trials, strict=True):  # BehaviorTrial's pk is its trial's
        for e in t.events:
            event_id += 1
            events.append(
                m.TrialEvent(
                    trial_id=trial_id,
                    trial_event_id=event_id,
                    event_type_id=pk["event"][e.event_type],
                    trial_event_time=round(e.time, 4),
                    duration=round(max(e.duration, 0.0), 4),
                )
            )
        for a in t.actions:
            action_id += 1
            actions.append(
                m.ActionEvent(
                    trial_id=trial_id,
                    action_event_id=action_id,
                    action_type_id=pk["action"][a.action_type],
                    action_event_time=round(a.time, 4),
                )
            )
    m.TrialEvent.objects.bulk_create(events, batch_size=5000)
    m.ActionEvent.objects.bulk_create(actions, batch_size=5000)
    _write_photostim(parsed, session, trial_rows)
    _write_mtl_blocks(parsed, session, behavior_rows)
    log.info(
        "ingested %s: session %s, %d trials (%d skipped), %d events, %d licks",
        parsed.behavior_file,
        session,
        len(trials),
        len(parsed.skipped),
        len(events),
        len(actions),
    )
    return session


def _write_photostim(parsed: ParsedSession, session: m.Session, trial_rows: list) -> None:
    if not parsed.photostims:
        return
    path = parsed.path
    devices = _by_name(
        PhotostimDevice, {p.photostim_device for p in parsed.photostims}, "device", path
    )
    locs = [loc for p in parsed.photostims for loc in p.locations]
    skulls = _by_name(
        SkullReference, {loc.skull_reference for loc in locs}, "skull reference", path
    )
    areas = _by_name(BrainArea, {loc.brain_area for loc in locs}, "brain area", path)
    stims = {
        p.photo_stim: m.Photostim.objects.create(
            session=session,
            photo_stim=p.photo_stim,
            device=devices[p.photostim_device],
            duration=p.duration,
        )
        for p in parsed.photostims
    }
    m.PhotostimLocation.objects.bulk_create(
        [
            m.PhotostimLocation(
                photostim=stims[p.photo_stim],
                skull_reference=skulls[loc.skull_reference],
                ap_location=round(loc.ap_location, 2),
                ml_location=round(loc.ml_location, 2),
                depth=round(loc.depth, 2),
                theta=round(loc.theta, 2),
                phi=round(loc.phi, 2),
                brain_area=areas[loc.brain_area],
            )
            for p in parsed.photostims
            for loc in p.locations
        ]
    )
    stim_trials = [
        (row, t) for row, t in zip(trial_rows, parsed.trials, strict=True) if t.photostim_events
    ]
    pt_rows = m.PhotostimTrial.objects.bulk_create(
        [m.PhotostimTrial(trial=row) for row, _ in stim_trials]
    )
    events, event_id = [], 0
    for pt, (_, t) in zip(pt_rows, stim_trials, strict=True):
        for e in t.photostim_events:
            if e.photo_stim not in stims:
                raise BehaviorFileError(path, f"photostim event of unknown protocol {e.photo_stim}")
            event_id += 1
            events.append(
                m.PhotostimEvent(
                    photostim_trial=pt,
                    photostim_event_id=event_id,
                    photostim=stims[e.photo_stim],
                    photostim_event_time=round(e.time, 3),
                    power=round(e.power, 3),
                )
            )
    m.PhotostimEvent.objects.bulk_create(events)


def _write_mtl_blocks(parsed: ParsedSession, session: m.Session, behavior_rows: list) -> None:
    if not parsed.blocks:
        return
    ports = _by_name(m.WaterPort, {b.water_port for b in parsed.blocks}, "water port", parsed.path)
    by_trial = {t.trial: row for t, row in zip(parsed.trials, behavior_rows, strict=True)}
    for b in parsed.blocks:
        block = m.MultiTargetLickingBlock.objects.create(
            session=session,
            block=b.block,
            block_start_time=round(b.block_start_time, 4),
            trial_count=b.trial_count,
            num_licks_for_reward=b.num_licks_for_reward,
            roll_deg=b.roll_deg,
            position_x_bins=b.position_x_bins,
            position_y_bins=b.position_y_bins,
            position_z_bins=b.position_z_bins,
        )
        m.MultiTargetLickingBlockWaterPort.objects.create(
            block=block,
            water_port=ports[b.water_port],
            position_x=b.position_x,
            position_y=b.position_y,
            position_z=b.position_z,
        )
        m.MultiTargetLickingBlockTrial.objects.bulk_create(
            [
                m.MultiTargetLickingBlockTrial(
                    block=block, trial=by_trial[n], block_trial_number=i + 1
                )
                for i, n in enumerate(b.trials)
                if n in by_trial
            ]
        )


class ReingestRefused(ValueError):  # noqa: N818 - a refusal with a reason for the person
    """A flagged file cannot be re-ingested automatically (the message says why)."""


def accept_changed_file(behavior_file: m.BehaviorFile) -> None:
    """A person checked a file flagged as changed after its ingest and accepts the new contents.

    Deletes the session made from the old contents (with its trials, events and photostim
    records), records the file's current size/mtime/checksum, clears the flag and forgets the
    ingest job (and what depends on it), so that the next queueing ingests the new contents.
    Refused when ephys data hangs off the session: that must be dealt with first, by a person.
    Call inside a transaction.
    """
    from experiment.steps import BEHAVIOR_INGEST  # steps imports this module
    from mapsite.pipeline import runner

    if behavior_file.changed_after_ingest is None:
        raise ReingestRefused(f"{behavior_file.file_name} is not flagged as changed")
    path = confined_path(behavior_file)
    session = behavior_file.session
    if session is not None:
        if session.insertions.exists():
            raise ReingestRefused(
                f"{behavior_file.file_name}: session {session} has probe insertions; re-ingesting "
                "its behavior would delete them. Archive or delete the ephys data first."
            )
        session.delete()
    stat = path.stat()
    behavior_file.size = stat.st_size
    behavior_file.mtime = datetime.fromtimestamp(stat.st_mtime, tz=UTC)
    behavior_file.sha256 = sha256_of(path)
    behavior_file.session = None
    behavior_file.ingested_at = None
    behavior_file.changed_after_ingest = None
    behavior_file.change_note = ""
    behavior_file.save()
    runner.invalidate(BEHAVIOR_INGEST, [behavior_file.pk])
