"""Behavior ingest end to end: files on a data root → BehaviorIngest jobs → database rows.

Each test configures its own behavior root (``settings.BEHAVIOR_DATA_ROOTS``, read on every
call) under ``tmp_path`` and creates the rig and subject itself. Expectations come from outside
the code under test: for the real MAP file from an independent reading written here
(``scipy.io.loadmat`` and plain loops applying spec §14.1), for synthetic files from the
generator's designed ground truth, and for photostim locations from the spec's table.

Jobs are dispatched on commit; the tests run inside a transaction that never commits, so every
ingest is wrapped in ``django_capture_on_commit_callbacks(execute=True)``, which also runs the
callbacks those callbacks add (the downstream PhotostimBrainRegion step).
"""

from __future__ import annotations

import math
import os
import shutil
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal
from io import StringIO
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import scipy.io
from django.core.management import CommandError, call_command
from django.urls import reverse

from experiment import models as m
from experiment.ingest import discovery, service
from experiment.ingest.synthetic import (
    GroundTruth,
    build_synthetic_session,
    write_mat,
    write_synthetic_session,
)
from experiment.steps import BEHAVIOR_INGEST
from lab.models import Rig, Subject
from lab.tests.factories import RigFactory, WaterRestrictionFactory
from mapsite.core.testing import real_data_dir
from mapsite.pipeline import runner
from mapsite.pipeline.models import Job, JobStatus

pytestmark = pytest.mark.django_db

REAL_FILE = real_data_dir() / "dl25_tw2_20180225_102508.mat"
needs_real_file = pytest.mark.skipif(not REAL_FILE.is_file(), reason="real MAP file not present")
REAL_RELATIVE = Path("dl25/tw2/Session Data") / REAL_FILE.name
RIG = "RRig"

#: Tables an ingest writes; "nothing written" means none of these counts changed.
WRITTEN = (
    m.Session,
    m.SessionTask,
    m.SessionTrial,
    m.BehaviorTrial,
    m.TrialNote,
    m.TrialEvent,
    m.ActionEvent,
    m.Photostim,
    m.PhotostimLocation,
    m.PhotostimTrial,
    m.PhotostimEvent,
    m.PhotostimBrainRegion,
    m.MultiTargetLickingBlock,
    m.MultiTargetLickingBlockWaterPort,
    m.MultiTargetLickingBlockTrial,
)

# Spec §14.1: the hard-coded photostim protocols (OBIS470, 0.5 s, Bregma, AP +2500 µm, depth 0,
# theta 15, phi 15; ML −1500 µm for 4, +1500 µm for 5, both for 6) and, by §3.5, the region the
# PhotostimBrainRegion step must compute from them.
SPEC_PHOTOSTIM_ML = {
    4: [Decimal("-1500.00")],
    5: [Decimal("1500.00")],
    6: [Decimal("-1500.00"), Decimal("1500.00")],
}
SPEC_LATERALITY = {4: "left", 5: "right", 6: "both"}


# ------------------------------------------------------------------------------------------
# Fixtures and helpers
# ------------------------------------------------------------------------------------------


@pytest.fixture
def root(settings, tmp_path) -> Path:
    """A behavior data root of rig RRig (configured, and the rig entered)."""
    path = tmp_path / "RRig"
    path.mkdir()
    settings.BEHAVIOR_DATA_ROOTS = [f"{RIG}={path}"]
    RigFactory(name=RIG)
    return path


@pytest.fixture
def ingest(django_capture_on_commit_callbacks):
    """``ingest(*files)``: ``manage.py ingest_behavior [files]``; jobs run on (captured) commit.

    Returns the command's output. A CommandError raised before any job is queued propagates.
    """

    def run(*files: str | Path) -> str:
        out = StringIO()
        with django_capture_on_commit_callbacks(execute=True):
            call_command("ingest_behavior", *map(str, files), stdout=out, stderr=out)
        return out.getvalue()

    return run


@pytest.fixture
def sweep(django_capture_on_commit_callbacks):
    """What beat runs every minute: discoveries, then every missing key of every step."""

    def run() -> dict[str, int]:
        with django_capture_on_commit_callbacks(execute=True):
            return runner.sweep()

    return run


@pytest.fixture
def queue_ingest(django_capture_on_commit_callbacks):
    """Scan the roots and queue only BehaviorIngest: anything else must happen downstream."""

    def run() -> discovery.ScanReport:
        with django_capture_on_commit_callbacks(execute=True):
            report = discovery.scan_behavior_roots()
            runner.queue_missing([BEHAVIOR_INGEST])
        return report

    return run


def subject_with_h2o(h2o: str) -> Subject:
    return WaterRestrictionFactory(water_restriction_number=h2o).subject


def counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in WRITTEN}


def session_dir(root: Path, h2o: str, protocol: str = "tw2") -> Path:
    """The usual layout ``{root}/{h2o}/{protocol}/Session Data/`` (spec §14.1)."""
    path = root / h2o / protocol / "Session Data"
    path.mkdir(parents=True, exist_ok=True)
    return path


def copy_real_file(root: Path, relative: Path = REAL_RELATIVE) -> Path:
    target = root / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(REAL_FILE, target)
    return target


def job_of(path: Path) -> Job:
    """The BehaviorIngest job of the file at ``path`` (named under the configured root)."""
    bf = m.BehaviorFile.objects.get(file_name=path.name, relative_path__endswith=path.name)
    return Job.objects.get(step=BEHAVIOR_INGEST, key_id=bf.pk)


def write_bad_synthetic(root: Path, mutate, *, name: str | None = None, **options) -> Path:
    """A synthetic session for h2o sy01 whose SessionData ``mutate`` breaks (or None)."""
    options.setdefault("n_trials", 6)
    session = build_synthetic_session(**options)
    if mutate is not None:
        mutate(session.session_data)
    return write_mat(
        session_dir(root, options.get("h2o", "sy01")) / (name or session.file_name),
        {"SessionData": session.session_data},
    )


# ------------------------------------------------------------------------------------------
# Independent reading of the real file (spec §14.1 in plain code)
# ------------------------------------------------------------------------------------------

EVENT_OF_STATE = {
    "PreSamplePeriod": "presample",
    "SamplePeriod": "sample",
    "DelayPeriod": "delay",
    "ResponseCue": "go",
    "TrialEnd": "trialend",
}


def read_real_file(path: Path) -> list[dict]:
    """What §14.1 says each trial of a delay-response file is, read without the parser."""
    sd = scipy.io.loadmat(path, squeeze_me=True, struct_as_record=False)["SessionData"]
    n = int(sd.nTrials)
    first_start = float(sd.TrialStartTimestamp[0])
    free = getattr(sd, "FreeTrials", np.zeros(n))
    trials = []
    for i in range(n):
        gui = sd.TrialSettings[i].GUI
        state_names = list(sd.RawData.OriginalStateNamesByNumber[i])
        visited_numbers = set(np.atleast_1d(sd.RawData.OriginalStateData[i]).tolist())
        visited = {name for k, name in enumerate(state_names) if k + 1 in visited_numbers}
        states = sd.RawEvents.Trial[i].States

        if gui.Reversal == 1:
            instruction = "left" if sd.TrialTypes[i] == 1 else "right"
        elif gui.Reversal == 2:
            instruction = "right" if sd.TrialTypes[i] == 1 else "left"
        else:
            instruction = "left"
        if "Reward" in visited:
            outcome = "hit"
        elif "TimeOut" in visited:
            outcome = "miss"
        else:
            outcome = "ignore"
        early = gui.ProtocolType >= 5 and bool({"EarlyLickDelay", "EarlyLickSample"} & visited)

        events = []
        for state, event_type in EVENT_OF_STATE.items():
            for begin, end in np.reshape(getattr(states, state), (-1, 2)):
                if not math.isnan(begin):
                    events.append((event_type, float(begin), float(end - begin)))
        licks = []
        codes = np.atleast_1d(sd.RawData.OriginalEventData[i])
        stamps = np.atleast_1d(sd.RawData.OriginalEventTimestamps[i])
        for code, stamp in zip(codes, stamps, strict=True):
            if code in (69, 71):
                licks.append(("left lick" if code == 69 else "right lick", float(stamp)))

        start = float(sd.TrialStartTimestamp[i]) - first_start
        trial_end_start = float(np.reshape(states.TrialEnd, (-1, 2))[0][0])
        free_reward = np.atleast_1d(sd.TrialSettings[i].GaveFreeReward)
        trials.append(
            {
                "trial": i + 1,
                "start": start,
                "stop": start + trial_end_start,
                "instruction": instruction,
                "outcome": outcome,
                "early_lick": "early" if early else "no early",
                "auto_water": bool(gui.Autowater == 1 or np.any(free_reward[:2] != 0)),
                "free_water": bool(np.atleast_1d(free)[i]),
                "notes": {
                    "protocol #": str(int(gui.ProtocolType)),
                    "autolearn": str(int(gui.Autolearn)),
                    "bitcode": str(gui.randomID),
                },
                "events": sorted(events, key=lambda e: (e[1], e[0])),
                "licks": sorted(licks, key=lambda a: (a[1], a[0])),
            }
        )
    return trials


def db_trials(session: m.Session) -> dict[int, dict]:
    """Per trial number: what the database holds about it (plain values, for comparing)."""
    out: dict[int, dict] = {}
    trials = m.SessionTrial.objects.filter(session=session).select_related(
        "behavior__instruction",
        "behavior__outcome",
        "behavior__early_lick",
        "behavior__task_protocol__task",
    )
    for st in trials:
        b = st.behavior
        out[st.trial] = {
            "trial_uid": st.trial_uid,
            "start": st.start_time,
            "stop": st.stop_time,
            "task": (b.task_protocol.task.name, b.task_protocol.protocol),
            "instruction": b.instruction.name,
            "outcome": b.outcome.name,
            "early_lick": b.early_lick.name,
            "auto_water": b.auto_water,
            "free_water": b.free_water,
            "notes": {},
            "events": [],
            "event_ids": [],
            "licks": [],
            "lick_ids": [],
            "photostim": [],
        }
    for note in m.TrialNote.objects.filter(trial__session=session).select_related(
        "note_type", "trial"
    ):
        out[note.trial.trial]["notes"][note.note_type.name] = note.note
    for e in (
        m.TrialEvent.objects.filter(trial__trial__session=session)
        .select_related("event_type", "trial__trial")
        .order_by("trial_event_id")
    ):
        row = out[e.trial.trial.trial]
        row["events"].append((e.event_type.name, e.trial_event_time, e.duration))
        row["event_ids"].append(e.trial_event_id)
    for a in (
        m.ActionEvent.objects.filter(trial__trial__session=session)
        .select_related("action_type", "trial__trial")
        .order_by("action_event_id")
    ):
        row = out[a.trial.trial.trial]
        row["licks"].append((a.action_type.name, a.action_event_time))
        row["lick_ids"].append(a.action_event_id)
    for pe in m.PhotostimEvent.objects.filter(
        photostim_trial__trial__session=session
    ).select_related("photostim", "photostim_trial__trial"):
        out[pe.photostim_trial.trial.trial]["photostim"].append(
            (pe.photostim.photo_stim, pe.photostim_event_time, pe.power)
        )
    return out


def assert_events_equal(actual, expected, label: str, digits: int = 4) -> None:
    """Same events in the same (time, type) order; times within the DB's rounding."""
    tol = 0.6 * 10**-digits
    actual = sorted(actual, key=lambda e: (round(e[1], digits), e[0]))
    assert [e[0] for e in actual] == [e[0] for e in expected], label
    for got, want in zip(actual, expected, strict=True):
        assert got[1:] == pytest.approx(want[1:], abs=tol), (label, got, want)


def assert_running_ids(ids_per_trial: list[list[int]], label: str) -> None:
    """Event ids count up across the session (1, 2, 3, ... in trial order)."""
    flat = [i for ids in ids_per_trial for i in ids]
    assert flat == list(range(1, len(flat) + 1)), label


# ------------------------------------------------------------------------------------------
# The real file, through manage.py ingest_behavior
# ------------------------------------------------------------------------------------------


@needs_real_file
def test_real_file_ingests_with_the_labels_of_the_rules(root, ingest):
    subject = subject_with_h2o("dl25")
    path = copy_real_file(root)

    out = ingest()

    assert "scan: 1 new" in out, out
    session = m.Session.objects.get(subject=subject)
    assert session.session == 1
    assert session.start_time == datetime(2018, 2, 25, 11, 23, 28, tzinfo=UTC)
    assert session.rig.name == RIG
    assert session.username.username == "unknown"  # SESSION_DEFAULT_USER
    assert [(t.task_protocol.task.name, t.task_protocol.protocol) for t in session.tasks.all()] == [
        ("audio delay", 1)
    ]
    bf = m.BehaviorFile.objects.get()
    assert (bf.session, bf.rig.name, bf.root, bf.relative_path) == (
        session,
        RIG,
        str(root),
        str(REAL_RELATIVE),
    )
    assert bf.size == REAL_FILE.stat().st_size and bf.ingested_at is not None
    assert job_of(path).status == JobStatus.DONE

    expected = read_real_file(REAL_FILE)
    rows = db_trials(session)
    assert sorted(rows) == [t["trial"] for t in expected] == list(range(1, 12))
    for want in expected:
        label = f"trial {want['trial']}"
        got = rows[want["trial"]]
        assert got["trial_uid"] == want["trial"], label
        assert got["start"] == pytest.approx(want["start"], abs=6e-5), label
        assert got["stop"] == pytest.approx(want["stop"], abs=6e-5), label
        assert got["task"] == ("audio delay", 1), label
        for key in ("instruction", "outcome", "early_lick", "auto_water", "free_water", "notes"):
            assert got[key] == want[key], (label, key)
        assert_events_equal(got["events"], want["events"], label)
        assert_events_equal(got["licks"], want["licks"], label)
        assert got["photostim"] == [], label
    assert_running_ids([rows[n]["event_ids"] for n in sorted(rows)], "trial events")
    assert_running_ids([rows[n]["lick_ids"] for n in sorted(rows)], "licks")

    # The totals of the data's README, from the database.
    outcomes = Counter(m.BehaviorTrial.objects.values_list("outcome__name", flat=True))
    assert outcomes == {"hit": 9, "miss": 2}
    assert m.BehaviorTrial.objects.filter(early_lick__name="early").count() == 2
    assert not m.BehaviorTrial.objects.filter(auto_water=True).exists()
    assert set(m.BehaviorTrial.objects.values_list("instruction__name", flat=True)) == {
        "left",
        "right",
    }
    assert not m.PhotostimTrial.objects.exists() and not m.Photostim.objects.exists()
    assert m.ActionEvent.objects.count() == sum(len(t["licks"]) for t in expected) > 0


@needs_real_file
def test_real_file_session_numbers_follow_existing_sessions(root, ingest):
    """Session number = the subject's highest existing number + 1 (spec §14.1)."""
    from experiment.tests.factories import SessionFactory

    subject = subject_with_h2o("dl25")
    SessionFactory(subject=subject, session=4, start_time=datetime(2018, 1, 1, tzinfo=UTC))
    copy_real_file(root)
    ingest()
    assert (
        m.Session.objects.get(subject=subject, start_time__year=2018, start_time__month=2).session
        == 5
    )


# ------------------------------------------------------------------------------------------
# Synthetic sessions against the generator's ground truth
# ------------------------------------------------------------------------------------------


def assert_db_matches_truth(truth: GroundTruth, subject: Subject) -> m.Session:
    """Every designed trial, label by label, and the session's photostim and MTL records."""
    session = m.Session.objects.get(subject=subject, start_time=truth.session_datetime_utc)
    assert session.rig.name == RIG
    rows = db_trials(session)
    ingested = truth.ingested
    assert sorted(rows) == [t.trial for t in ingested]
    mtl = truth.task_type == "multi-target-licking"
    for t in ingested:
        label = f"{truth.file_name} trial {t.trial}"
        got = rows[t.trial]
        assert got["trial_uid"] == t.trial, label
        assert got["start"] == pytest.approx(t.start_time, abs=6e-5), label
        assert got["stop"] == pytest.approx(t.stop_time, abs=6e-5), label
        expected_task = ("multi-target-licking", t.protocol_type) if mtl else ("audio delay", 1)
        assert got["task"] == expected_task, label
        assert (got["instruction"], got["outcome"], got["early_lick"]) == (
            t.instruction,
            t.outcome,
            t.early_lick,
        ), label
        assert (got["auto_water"], got["free_water"]) == (t.auto_water, t.free_water), label
        events = sorted(t.events, key=lambda e: (round(e[1], 4), e[0]))
        assert_events_equal(got["events"], events, label)
        # Licks become ActionEvents in delay-response files only (MTL: "no ActionEvents").
        licks = [("left lick", x) for x in t.left_licks] + [
            ("right lick", x) for x in t.right_licks
        ]
        licks = [] if mtl else sorted(licks, key=lambda a: (round(a[1], 4), a[0]))
        assert_events_equal(got["licks"], licks, label)
        if mtl:
            assert got["notes"] == {"protocol #": str(t.protocol_type), "bitcode": t.bitcode}, label
            assert got["photostim"] == [], label
        else:
            assert got["notes"] == {
                "protocol #": str(t.protocol_type),
                "autolearn": str(t.autolearn),
                "bitcode": t.bitcode,
            }, label
            if t.photostim is None:
                assert got["photostim"] == [], label
            else:
                ((stim, onset, power),) = got["photostim"]
                assert stim == t.photostim, label
                assert onset == pytest.approx(t.photostim_onset, abs=6e-4), label
                assert power == 5.5, label
    assert_running_ids([rows[n]["event_ids"] for n in sorted(rows)], truth.file_name)
    assert_running_ids([rows[n]["lick_ids"] for n in sorted(rows)], truth.file_name)

    # Photostim protocols: exactly those used, with the spec's devices and locations.
    stims = {p.photo_stim: p for p in m.Photostim.objects.filter(session=session)}
    assert sorted(stims) == list(truth.photostim_ids)
    photostim_trials = m.PhotostimTrial.objects.filter(trial__session=session)
    assert sorted(photostim_trials.values_list("trial__trial", flat=True)) == [
        t.trial for t in ingested if t.photostim
    ]
    for number, stim in stims.items():
        assert (stim.device.name, stim.duration, stim.waveform) == ("OBIS470", 0.5, None)
        locations = list(stim.locations.select_related("skull_reference", "brain_area"))
        assert sorted(loc.ml_location for loc in locations) == SPEC_PHOTOSTIM_ML[number]
        for loc in locations:
            assert loc.skull_reference.name == "Bregma"
            assert loc.brain_area.name == "ALM"
            assert (loc.ap_location, loc.depth, loc.theta, loc.phi) == (
                Decimal("2500.00"),
                Decimal("0.00"),
                Decimal("15.00"),
                Decimal("15.00"),
            )

    # MTL blocks with their water port and trials.
    blocks = list(
        m.MultiTargetLickingBlock.objects.filter(session=session)
        .select_related("water_port__water_port")
        .order_by("block")
    )
    assert [b.block for b in blocks] == [b.block for b in truth.blocks]
    for got, want in zip(blocks, truth.blocks, strict=True):
        label = f"{truth.file_name} block {want.block}"
        assert got.block_start_time == pytest.approx(want.block_start_time, abs=6e-5), label
        assert (got.trial_count, got.num_licks_for_reward, got.roll_deg) == (
            want.trial_count,
            want.num_licks_for_reward,
            want.roll_deg,
        ), label
        assert (got.position_x_bins, got.position_y_bins, got.position_z_bins) == (
            want.num_bins,
            1,
            want.num_bins,
        ), label
        port = got.water_port
        assert port.water_port.name == want.water_port, label
        assert (port.position_x, port.position_y, port.position_z) == pytest.approx(
            (want.position_x, want.position_y, want.position_z)
        ), label
        members = list(
            got.trials.order_by("block_trial_number").values_list(
                "trial__trial__trial", "block_trial_number"
            )
        )
        assert members == [(n, k + 1) for k, n in enumerate(want.trials)], label
    if mtl:
        protocols = {t.protocol_type for t in ingested}
        assert sorted(session.tasks.values_list("task_protocol__protocol", flat=True)) == sorted(
            protocols
        )
    return session


SYNTHETIC_CASES = {
    "plain": dict(h2o="sy01", seed=1, n_trials=40),
    "skips-free-water": dict(
        h2o="sy02", seed=2, n_trials=60, skip_rate=0.2, free_water_rate=0.2, auto_water_rate=0.2
    ),
    "early-delay-photostim": dict(
        h2o="sy03", seed=3, n_trials=80, photostim=True, photostim_rate=0.4
    ),
    "late-delay-photostim": dict(
        h2o="SC038",
        seed=4,
        n_trials=80,
        photostim=True,
        photostim_period="late-delay",
        photostim_rate=0.4,
    ),
    "reversal-2-fixed-protocol": dict(h2o="sy05", seed=5, n_trials=30, reversal=2, protocol_type=5),
    "realistic-bitcode-states": dict(
        h2o="sy06", seed=6, n_trials=20, bitcode_states=True, realistic_settings=True
    ),
    "mtl": dict(h2o="sy07", seed=7, n_trials=40, mtl=True, skip_rate=0.1, free_water_rate=0.2),
    "mtl-protocol-2": dict(h2o="sy08", seed=8, n_trials=25, mtl=True, protocol_type=2),
    "v7.3-photostim": dict(
        h2o="sy09", seed=10, n_trials=40, photostim=True, skip_rate=0.1, mat_format="7.3"
    ),
    "v7.3-mtl": dict(h2o="sy10", seed=10, n_trials=20, mtl=True, mat_format="7.3"),
}


@pytest.mark.parametrize("case", list(SYNTHETIC_CASES))
def test_synthetic_session_matches_ground_truth(root, queue_ingest, case):
    options = dict(SYNTHETIC_CASES[case])
    subject = subject_with_h2o(options["h2o"])
    truth = write_synthetic_session(session_dir(root, options["h2o"]), **options)

    report = queue_ingest()

    assert [row.file_name for row in report.new] == [truth.file_name]
    job = job_of(truth.path)
    assert (job.status, job.message) == (JobStatus.DONE, "")
    session = assert_db_matches_truth(truth, subject)
    assert session.session == 1
    if options.get("photostim"):
        assert truth.photostim_ids, "the case should produce photostim trials"
    if options.get("skip_rate"):
        assert any(t.skipped for t in truth.trials), "the case should skip trials"


def test_photostim_brain_region_is_computed_downstream(root, queue_ingest):
    """Only BehaviorIngest is queued; PhotostimBrainRegion follows by itself (spec §3.5)."""
    subject = subject_with_h2o("SC022")
    truth = write_synthetic_session(
        session_dir(root, "SC022"),
        h2o="SC022",
        seed=21,
        n_trials=120,
        photostim=True,
        photostim_period="late-delay",
        photostim_rate=0.5,
    )
    assert truth.photostim_ids == (4, 5, 6)

    queue_ingest()

    session = assert_db_matches_truth(truth, subject)
    regions = {
        r.photostim.photo_stim: (r.stim_brain_area.name, r.stim_laterality)
        for r in m.PhotostimBrainRegion.objects.filter(photostim__session=session).select_related(
            "photostim", "stim_brain_area"
        )
    }
    assert regions == {n: ("ALM", SPEC_LATERALITY[n]) for n in (4, 5, 6)}
    done = Job.objects.filter(step="PhotostimBrainRegion", status=JobStatus.DONE)
    assert done.count() == 3


def test_several_sessions_of_one_subject_are_numbered_in_time_order_of_ingest(root, queue_ingest):
    subject = subject_with_h2o("sy11")
    truths = [
        write_synthetic_session(
            session_dir(root, "sy11"),
            h2o="sy11",
            seed=30 + k,
            n_trials=10,
            session_datetime=datetime(2019, 3, 1 + k, 14, 0, 0, tzinfo=UTC),
        )
        for k in range(3)
    ]
    queue_ingest()
    for truth in truths:
        assert_db_matches_truth(truth, subject)
    numbers = list(
        m.Session.objects.filter(subject=subject)
        .order_by("start_time")
        .values_list("session", flat=True)
    )
    assert sorted(numbers) == [1, 2, 3]


# ------------------------------------------------------------------------------------------
# Re-running is safe
# ------------------------------------------------------------------------------------------


@needs_real_file
def test_second_ingest_adds_nothing(root, ingest):
    subject_with_h2o("dl25")
    path = copy_real_file(root)
    ingest()
    before = counts()
    job = job_of(path)

    out = ingest()
    ingest(path)  # and once more, naming the file

    assert "0 new, 1 unchanged" in out
    assert counts() == before
    assert m.BehaviorFile.objects.count() == 1
    assert Job.objects.filter(step=BEHAVIOR_INGEST).count() == 1
    job.refresh_from_db()
    assert (job.status, job.attempts) == (JobStatus.DONE, 1)


@needs_real_file
def test_the_same_file_under_another_path_is_refused_as_already_ingested(root, ingest):
    subject_with_h2o("dl25")
    copy_real_file(root)
    ingest()
    before = counts()

    copy = copy_real_file(root, Path("backup/dl25") / REAL_FILE.name)
    ingest()

    job = Job.objects.get(
        step=BEHAVIOR_INGEST,
        key_id=m.BehaviorFile.objects.get(relative_path=f"backup/dl25/{REAL_FILE.name}").pk,
    )
    assert job.status == JobStatus.ERROR
    assert copy.name in job.message and "already ingested" in job.message
    assert counts() == before


@needs_real_file
def test_forcing_a_second_make_of_an_ingested_file_is_refused(root, ingest):
    """Even if the job is run again by hand, the session's natural key stops a duplicate."""
    subject_with_h2o("dl25")
    path = copy_real_file(root)
    ingest()
    before = counts()
    job = job_of(path)
    Job.objects.filter(pk=job.pk).update(status=JobStatus.PENDING)

    assert runner.run_job(job.pk) == JobStatus.ERROR

    job.refresh_from_db()
    assert "already ingested" in job.message and path.name in job.message
    assert counts() == before


# ------------------------------------------------------------------------------------------
# Bad input: a job error naming the file and the problem, and nothing written
# ------------------------------------------------------------------------------------------


def assert_failed_cleanly(path: Path, before: dict[str, int], *problem: str) -> Job:
    job = job_of(path)
    assert job.status == JobStatus.ERROR, (job.status, job.message)
    assert path.name in job.message, job.message
    for fragment in problem:
        assert fragment in job.message, job.message
    assert counts() == before
    assert m.BehaviorFile.objects.get(pk=job.key_id).session is None
    return job


@needs_real_file
def test_truncated_file(root, ingest):
    subject_with_h2o("dl25")
    path = root / REAL_RELATIVE
    path.parent.mkdir(parents=True)
    path.write_bytes(REAL_FILE.read_bytes()[:100_000])
    before = counts()
    ingest()
    assert_failed_cleanly(path, before, "truncated")


def test_not_a_mat_file(root, ingest):
    subject_with_h2o("sy01")
    path = session_dir(root, "sy01") / "sy01_tw2_20180225_102528.mat"
    path.write_text("Trial,Outcome\n1,hit\n" * 20)
    before = counts()
    ingest()
    assert_failed_cleanly(path, before, "cannot be read as a MATLAB file")


def test_file_without_session_data(root, ingest):
    subject_with_h2o("sy01")
    path = write_mat(
        session_dir(root, "sy01") / "sy01_tw2_20180225_102528.mat", {"Foo": np.arange(3.0)}
    )
    before = counts()
    ingest()
    assert_failed_cleanly(path, before, "SessionData", "Foo")


def test_per_trial_arrays_of_different_lengths(root, ingest):
    def one_trial_type_too_many(sd):
        sd["TrialTypes"] = np.append(sd["TrialTypes"], 1).astype(np.uint8)

    subject_with_h2o("sy01")
    path = write_bad_synthetic(root, one_trial_type_too_many)
    before = counts()
    ingest()
    assert_failed_cleanly(path, before, "different lengths", "TrialTypes=7")


def test_date_in_the_name_differs_from_session_date(root, ingest):
    subject_with_h2o("sy01")
    # Info.SessionDate says 25-Feb-2018; the name says the 26th.
    path = write_bad_synthetic(root, None, name="sy01_tw2_20180226_102528.mat")
    before = counts()
    ingest()
    assert_failed_cleanly(path, before, "2018-02-25", "2018-02-26")


def test_unknown_task_layout(root, ingest):
    def neither_delay_response_nor_mtl(sd):
        for key in ("SamplePeriod", "DelayPeriod"):
            del sd["SettingsFile"]["GUI"][key]

    subject_with_h2o("sy01")
    path = write_bad_synthetic(root, neither_delay_response_nor_mtl)
    before = counts()
    ingest()
    assert_failed_cleanly(path, before, "unknown task layout")


def test_a_failure_late_in_the_write_rolls_back_everything(root, ingest):
    """A problem found after rows were inserted (an unknown photostim id) leaves nothing."""
    subject_with_h2o("sy01")
    session = build_synthetic_session(
        h2o="sy01", n_trials=40, seed=12, photostim=True, photostim_rate=0.5
    )
    path = write_mat(
        session_dir(root, "sy01") / session.file_name, {"SessionData": session.session_data}
    )
    before = counts()
    with mock.patch.object(
        service, "_write_mtl_blocks", side_effect=service.BehaviorFileError(path, "boom")
    ):
        ingest()
    assert_failed_cleanly(path, before, "boom")


def test_path_outside_every_root_is_refused_by_the_command(root, ingest, tmp_path):
    subject_with_h2o("dl25")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    path = write_bad_synthetic(outside, None, h2o="dl25")
    before = counts()
    with pytest.raises(CommandError, match=r"refused .*outside every configured data root"):
        ingest(path)
    assert counts() == before
    assert not m.BehaviorFile.objects.exists() and not Job.objects.exists()


def test_dot_dot_leaving_the_root_is_refused_by_the_command(root, ingest, tmp_path):
    subject_with_h2o("dl25")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    path = write_bad_synthetic(outside, None, h2o="dl25")
    sneaky = root / "dl25" / ".." / ".." / "elsewhere" / path.relative_to(outside)
    assert sneaky.resolve() == path.resolve()
    with pytest.raises(CommandError, match="refused"):
        ingest(sneaky)
    assert not m.BehaviorFile.objects.exists() and not Job.objects.exists()


def never_opened():
    """Patch everything that reads a behavior file's contents; the test asserts none ran."""
    return (
        mock.patch.object(service, "parse_session", side_effect=AssertionError("parsed")),
        mock.patch.object(service, "sha256_of", side_effect=AssertionError("read")),
        mock.patch.object(discovery, "sha256_of", side_effect=AssertionError("read")),
    )


def test_dot_dot_in_a_recorded_path_gives_a_job_error_and_the_file_is_not_opened(
    root, tmp_path, django_capture_on_commit_callbacks
):
    """A key whose relative path climbs out of its root (e.g. entered through the API)."""
    subject_with_h2o("dl25")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    target = write_bad_synthetic(outside, None, h2o="dl25")
    bf = m.BehaviorFile.objects.create(
        rig=Rig.objects.get(name=RIG),
        root=str(root),
        relative_path=os.path.join("..", "elsewhere", str(target.relative_to(outside))),
        file_name=target.name,
        size=target.stat().st_size,
        mtime=datetime.now(tz=UTC),
        sha256="0" * 64,
    )
    before = counts()
    parse, sha_service, sha_discovery = never_opened()
    with (
        parse as p,
        sha_service as s1,
        sha_discovery as s2,
        django_capture_on_commit_callbacks(execute=True),
    ):
        runner.queue_missing([BEHAVIOR_INGEST])
    assert not p.called and not s1.called and not s2.called
    job = Job.objects.get(step=BEHAVIOR_INGEST, key_id=bf.pk)
    assert job.status == JobStatus.ERROR
    assert target.name in job.message
    assert "refused" in job.message and "outside every configured data root" in job.message
    assert counts() == before


def test_symlink_leaving_the_root_gives_a_job_error_and_the_file_is_not_opened(
    root, tmp_path, ingest
):
    subject_with_h2o("dl25")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    target = write_bad_synthetic(outside, None, h2o="dl25")
    link = session_dir(root, "dl25") / target.name
    link.symlink_to(target)
    before = counts()
    parse, sha_service, sha_discovery = never_opened()
    with parse as p, sha_service as s1, sha_discovery as s2:
        out = ingest()
    assert not p.called and not s1.called and not s2.called
    assert "1 new" in out
    job = assert_failed_cleanly(link, before, "refused", "outside every configured data root")
    bf = m.BehaviorFile.objects.get(pk=job.key_id)
    assert (bf.size, bf.sha256) == (0, "")


def test_file_name_not_matching_the_pattern(root, ingest):
    subject_with_h2o("sy01")
    path = write_bad_synthetic(root, None, name="session-of-monday.mat")
    before = counts()
    ingest(path)  # a scan would not even pick it up; named explicitly it becomes a job
    assert_failed_cleanly(path, before, "does not match {h2o}_{protocol}_{YYYYMMDD}_{HHMMSS}.mat")


def test_a_scan_ignores_files_not_matching_the_pattern(root, ingest):
    subject_with_h2o("sy01")
    write_bad_synthetic(root, None, name="session-of-monday.mat")
    write_bad_synthetic(root, None, name="sy01_tw2_20180225_102528.mat.bak")
    out = ingest()
    assert "0 new" in out
    assert not m.BehaviorFile.objects.exists()


# ------------------------------------------------------------------------------------------
# Waiting for the subject
# ------------------------------------------------------------------------------------------


def test_unknown_water_restriction_number_waits_until_the_subject_is_entered(root, ingest, sweep):
    truth = write_synthetic_session(session_dir(root, "dl99"), h2o="dl99", seed=40, n_trials=12)
    before = counts()

    ingest()

    job = job_of(truth.path)
    assert job.status == JobStatus.WAITING
    assert "no subject with water-restriction number dl99" in job.message
    assert counts() == before

    sweep()  # still nobody: still waiting, not an error, and no attempt counted
    job.refresh_from_db()
    assert (job.status, job.attempts) == (JobStatus.WAITING, 0)

    subject = subject_with_h2o("dl99")
    sweep()

    job.refresh_from_db()
    assert (job.status, job.message) == (JobStatus.DONE, "")
    assert_db_matches_truth(truth, subject)


def test_unentered_rig_waits(settings, tmp_path, sweep):
    root = tmp_path / "TRig9"
    settings.BEHAVIOR_DATA_ROOTS = [f"TRig9={root}"]
    subject = subject_with_h2o("sy01")
    truth = write_synthetic_session(session_dir(root, "sy01"), h2o="sy01", seed=41, n_trials=5)
    sweep()
    job = job_of(truth.path)
    assert job.status == JobStatus.WAITING and "TRig9" in job.message
    RigFactory(name="TRig9")
    sweep()
    job.refresh_from_db()
    assert job.status == JobStatus.DONE
    assert m.Session.objects.get(subject=subject).rig.name == "TRig9"


# ------------------------------------------------------------------------------------------
# Files changing
# ------------------------------------------------------------------------------------------


def test_file_changed_after_ingest_is_flagged_not_ingested_again(root, ingest):
    subject = subject_with_h2o("sy01")
    truth = write_synthetic_session(session_dir(root, "sy01"), h2o="sy01", seed=50, n_trials=8)
    ingest()
    before = counts()
    with truth.path.open("ab") as fh:
        fh.write(b"\0" * 64)

    out = ingest()

    bf = m.BehaviorFile.objects.get()
    assert bf.changed_after_ingest is not None
    assert "contents changed after ingest" in bf.change_note
    assert bf.change_note in out  # the command tells the person running it
    assert bf.session == m.Session.objects.get(subject=subject)
    assert counts() == before
    assert Job.objects.filter(step=BEHAVIOR_INGEST).count() == 1

    ingest()  # flagged once; later scans leave the flag alone
    bf2 = m.BehaviorFile.objects.get()
    assert bf2.changed_after_ingest == bf.changed_after_ingest
    assert counts() == before


def test_touched_but_unchanged_file_is_not_flagged(root, ingest):
    subject_with_h2o("sy01")
    truth = write_synthetic_session(session_dir(root, "sy01"), h2o="sy01", seed=51, n_trials=8)
    ingest()
    before = counts()
    os.utime(truth.path, (1_700_000_000, 1_700_000_000))
    ingest()
    bf = m.BehaviorFile.objects.get()
    assert bf.changed_after_ingest is None
    assert bf.mtime == datetime.fromtimestamp(1_700_000_000, tz=UTC)
    assert counts() == before


def test_file_still_being_written_is_ingested_once_complete(root, sweep):
    """Found half-written (truncated), the file fails; once complete, a later sweep ingests it."""
    subject = subject_with_h2o("sy01")
    truth = write_synthetic_session(session_dir(root, "sy01"), h2o="sy01", seed=52, n_trials=30)
    complete = truth.path.read_bytes()
    truth.path.write_bytes(complete[: len(complete) // 3])

    sweep()
    job = job_of(truth.path)
    assert job.status == JobStatus.ERROR and "truncated" in job.message
    assert not m.Session.objects.exists()
    sweep()  # unchanged: an error stays an error (a person looks at it)
    job.refresh_from_db()
    assert job.status == JobStatus.ERROR

    truth.path.write_bytes(complete)
    sweep()

    job.refresh_from_db()
    assert job.status == JobStatus.DONE, job.message
    assert_db_matches_truth(truth, subject)


def test_file_changing_between_scan_and_ingest_is_ingested_by_the_next_sweep(
    root, django_capture_on_commit_callbacks, sweep
):
    subject = subject_with_h2o("sy01")
    truth = write_synthetic_session(session_dir(root, "sy01"), h2o="sy01", seed=53, n_trials=10)
    complete = truth.path.read_bytes()
    truth.path.write_bytes(complete[:-100])
    discovery.scan_behavior_roots()  # found while the rig was still writing
    truth.path.write_bytes(complete)
    with django_capture_on_commit_callbacks(execute=True):
        runner.queue_missing([BEHAVIOR_INGEST])
    job = job_of(truth.path)
    assert job.status == JobStatus.WAITING
    assert truth.path.name in job.message
    assert "contents changed since the file was found" in job.message
    assert not m.Session.objects.exists()

    sweep()  # records the new contents, then retries

    job.refresh_from_db()
    assert job.status == JobStatus.DONE, job.message
    assert_db_matches_truth(truth, subject)


# ------------------------------------------------------------------------------------------
# The admin shows failing ingest jobs
# ------------------------------------------------------------------------------------------


def test_job_admin_lists_failing_behavior_ingests(root, ingest, admin_client):
    subject_with_h2o("sy01")
    path = session_dir(root, "sy01") / "sy01_tw2_20180225_102528.mat"
    path.write_text("not matlab\n" * 100)
    ingest()
    response = admin_client.get(
        reverse("admin:pipeline_job_changelist"), {"step": BEHAVIOR_INGEST, "status": "error"}
    )
    assert response.status_code == 200
    text = response.content.decode()
    assert path.name in text and "cannot be read as a MATLAB file" in text
    job = job_of(path)
    page = admin_client.get(reverse("admin:pipeline_job_change", args=[job.pk]))
    assert page.status_code == 200 and "UnreadableFileError" in page.content.decode()


def test_an_ingested_photostim_session_can_be_deleted_to_re_ingest_it(root, queue_ingest):
    subject = subject_with_h2o("sy03")
    write_synthetic_session(session_dir(root, "sy03"), **SYNTHETIC_CASES["early-delay-photostim"])
    queue_ingest()
    session = m.Session.objects.get(subject=subject)
    assert m.PhotostimEvent.objects.filter(photostim__session=session).exists()

    session.delete()

    assert not m.SessionTrial.objects.exists() and not m.PhotostimEvent.objects.exists()
    assert m.BehaviorFile.objects.get().session is None


def test_rescanning_an_unchanged_root_costs_one_query(root, django_assert_num_queries):
    """Beat sweeps every minute over years of files: unchanged files must not cost queries."""
    for k in range(40):
        folder = session_dir(root, f"sy{k % 4:02d}")
        (folder / f"sy{k % 4:02d}_tw2_201802{k % 28 + 1:02d}_1000{k:02d}.mat").write_bytes(
            os.urandom(300)
        )
    assert len(discovery.scan_behavior_roots().new) == 40

    with django_assert_num_queries(1):
        report = discovery.scan_behavior_roots()

    assert (len(report.new), report.unchanged, len(report.changed)) == (0, 40, 0)
    changed = next(root.rglob("*.mat"))
    changed.write_bytes(os.urandom(301))  # one file changes: only it costs queries
    with django_assert_num_queries(10, exact=False):  # at most
        discovery.scan_behavior_roots()
    assert m.BehaviorFile.objects.get(file_name=changed.name).size == 301
