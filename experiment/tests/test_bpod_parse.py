"""Bpod .mat parsing: the real MAP file, the MATLAB loaders and every bad-input case.

The real-file expectations are computed here, trial by trial, from an independent reading of
the file (``loadmat(squeeze_me=True, struct_as_record=False)`` and plain loops), so a bug in
the parser's helpers cannot be mirrored by the test.
"""

from __future__ import annotations

import math
import shutil
from datetime import UTC, datetime
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io

from experiment.ingest.bpod import (
    PHOTOSTIM_PROTOCOLS,
    ParsedPhotostim,
    load_session_data,
    mtl_bitcode,
    parse_behavior_filename,
    parse_session,
)
from experiment.ingest.errors import (
    BadFileNameError,
    BehaviorFileError,
    DateMismatchError,
    LengthMismatchError,
    MissingFieldError,
    UnknownPhotostimError,
    UnknownTaskLayoutError,
    UnreadableFileError,
)
from experiment.ingest.synthetic import Cell, build_synthetic_session, write_mat
from mapsite.core.testing import real_data_dir

REAL_FILE = real_data_dir() / "dl25_tw2_20180225_102508.mat"
needs_real_file = pytest.mark.skipif(not REAL_FILE.is_file(), reason="real MAP file not present")

EVENT_STATES = [
    ("PreSamplePeriod", "presample"),
    ("SamplePeriod", "sample"),
    ("DelayPeriod", "delay"),
    ("ResponseCue", "go"),
    ("TrialEnd", "trialend"),
]


# ------------------------------------------------------------------------------------------
# The real file, against an independent reading
# ------------------------------------------------------------------------------------------


def independent_expectations(path: Path) -> list[dict]:
    """Per-trial labels computed with straightforward code straight from the file."""
    sd = scipy.io.loadmat(path, squeeze_me=True, struct_as_record=False)["SessionData"]
    starts = np.asarray(sd.TrialStartTimestamp, dtype=float)
    expected = []
    for i in range(len(sd.TrialTypes)):
        names = [str(n) for n in sd.RawData.OriginalStateNamesByNumber[i]]
        number_of = {name: position + 1 for position, name in enumerate(names)}
        state_data = [int(x) for x in np.atleast_1d(sd.RawData.OriginalStateData[i])]
        state_times = [float(x) for x in np.atleast_1d(sd.RawData.OriginalStateTimestamps[i])]
        settings = sd.TrialSettings[i]
        gui = settings.GUI
        trial_type = int(sd.TrialTypes[i])

        if gui.Reversal == 1:
            instruction = "left" if trial_type == 1 else "right"
        elif gui.Reversal == 2:
            instruction = "right" if trial_type == 1 else "left"
        else:
            instruction = "left"

        if number_of["Reward"] in state_data:
            outcome = "hit"
        elif number_of["TimeOut"] in state_data:
            outcome = "miss"
        else:
            outcome = "ignore"

        early = gui.ProtocolType >= 5 and (
            number_of["EarlyLickSample"] in state_data or number_of["EarlyLickDelay"] in state_data
        )

        events = []
        for state, label in EVENT_STATES:
            visits = np.atleast_2d(getattr(sd.RawEvents.Trial[i].States, state))
            for begin, end in visits:
                if not math.isnan(begin):
                    events.append((label, float(begin), float(end - begin)))

        codes = np.atleast_1d(sd.RawData.OriginalEventData[i])
        times = np.atleast_1d(sd.RawData.OriginalEventTimestamps[i])
        licks = []
        for code, moment in zip(codes, times, strict=True):
            if code == 69:
                licks.append(("left lick", float(moment)))
            elif code == 71:
                licks.append(("right lick", float(moment)))
        licks.sort(key=lambda lick: lick[1])

        start = float(starts[i] - starts[0])
        trial_end_position = state_data.index(number_of["TrialEnd"])
        expected.append(
            {
                "trial": i + 1,
                "instruction": instruction,
                "outcome": outcome,
                "early_lick": "early" if early else "no early",
                "auto_water": bool(
                    gui.Autowater == 1 or any(np.atleast_1d(settings.GaveFreeReward)[:2])
                ),
                "events": events,
                "licks": licks,
                "bitcode": str(gui.randomID),
                "protocol": str(int(gui.ProtocolType)),
                "autolearn": str(int(gui.Autolearn)),
                "start": start,
                "stop": start + state_times[trial_end_position],
                "stim": int(sd.StimTrials[i]),
            }
        )
    return expected


@pytest.fixture(scope="module")
def real_session():
    return parse_session(
        REAL_FILE, rig_root_relative_path="dl25/tw2/Session Data/" + REAL_FILE.name
    )


@needs_real_file
def test_real_file_session_level(real_session):
    s = real_session
    assert s.h2o == "dl25"
    assert s.protocol_name == "tw2"
    assert s.behavior_file == REAL_FILE.name
    assert s.rig_relative_path == "dl25/tw2/Session Data/dl25_tw2_20180225_102508.mat"
    assert s.session_datetime_utc == datetime(2018, 2, 25, 11, 23, 28, tzinfo=UTC)
    assert s.file_name.datetime == datetime(2018, 2, 25, 10, 25, 8)
    assert (s.task_type, s.task, s.task_protocol) == ("delay-response", "audio delay", 1)
    assert s.photostim_period == "early-delay"
    assert s.n_trials_in_file == 11
    assert s.skipped == ()
    assert s.photostims == ()
    assert s.blocks == ()


@needs_real_file
def test_real_file_matches_readme_totals(real_session):
    trials = real_session.trials
    assert len(trials) == 11
    assert sum(t.outcome == "hit" for t in trials) == 9
    assert sum(t.outcome == "miss" for t in trials) == 2
    assert sum(t.early_lick == "early" for t in trials) == 2
    assert not any(t.is_photostim for t in trials)
    assert not any(t.auto_water for t in trials)
    assert not any(t.free_water for t in trials)  # FreeTrials is absent
    assert [t.instruction for t in trials] == ["right"] * 3 + ["left"] * 5 + ["right"] * 3


@needs_real_file
def test_real_file_every_trial_matches_independent_reading(real_session):
    expected = independent_expectations(REAL_FILE)
    assert len(real_session.trials) == len(expected)
    for trial, exp in zip(real_session.trials, expected, strict=True):
        label = f"trial {exp['trial']}"
        assert (trial.trial, trial.trial_uid, trial.file_trial) == (exp["trial"],) * 3, label
        assert trial.instruction == exp["instruction"], label
        assert trial.outcome == exp["outcome"], label
        assert trial.early_lick == exp["early_lick"], label
        assert trial.auto_water == exp["auto_water"], label
        assert trial.notes == {
            "protocol #": exp["protocol"],
            "autolearn": exp["autolearn"],
            "bitcode": exp["bitcode"],
        }, label
        assert trial.bitcode == exp["bitcode"] and len(trial.bitcode) == 16, label
        assert trial.start_time == pytest.approx(exp["start"], abs=1e-9), label
        assert trial.stop_time == pytest.approx(exp["stop"], abs=1e-9), label
        assert [e.event_type for e in trial.events] == [e[0] for e in exp["events"]], label
        assert [x for e in trial.events for x in (e.time, e.duration)] == pytest.approx(
            [x for e in exp["events"] for x in (e[1], e[2])], abs=1e-9
        ), label
        assert [(a.action_type, a.time) for a in trial.actions] == exp["licks"], label
        # StimTrials is non-zero on trials 2 and 9, but Autolearn 1 / ProtocolType 7 rule it out
        assert trial.photostim_events == (), label
        assert (trial.task, trial.task_protocol) == ("audio delay", 1), label


@needs_real_file
def test_real_file_known_details(real_session):
    """A few hand-checked facts, so the independent reading itself is anchored."""
    t4, t7 = real_session.trials[3], real_session.trials[6]
    assert [e.event_type for e in t4.events].count("sample") == 7  # six early licks in sample
    assert t4.early_lick == "early" and t4.outcome == "miss"
    # trial 7: three NoResponse cycles, then a rewarded fourth go cue -> hit (Reward first)
    assert [e.event_type for e in t7.events].count("go") == 4 and t7.outcome == "hit"
    assert t4.events[-1].time == pytest.approx(7.3659)
    assert t4.events[-1].duration == pytest.approx(0.25)
    assert real_session.trials[0].stop_time == pytest.approx(6.9076)
    assert [t.notes["bitcode"] for t in real_session.trials][9] == "1111000001001100"


@needs_real_file
def test_real_bitcode_notes_match_the_ephys_side_file(real_session):
    """dl25_bitcode.mat (recorded by the ephys rig the same day) has trials 1-10's codes."""
    ephys = scipy.io.loadmat(REAL_FILE.with_name("dl25_bitcode.mat"), squeeze_me=True)
    codes = [str(c) for c in ephys["bitCodeS"]]
    assert [t.bitcode for t in real_session.trials[:10]] == codes
    assert ["".join(str(b) for b in row) for row in ephys["bitcode"]] == codes


@needs_real_file
def test_real_file_loader_shape():
    data = load_session_data(REAL_FILE)
    assert data["Info"]["SessionDate"] == "25-Feb-2018"
    assert isinstance(data["TrialSettings"], list) and len(data["TrialSettings"]) == 11
    assert data["TrialSettings"][0]["GUI"]["randomID"] == "1111100101111011"


# ------------------------------------------------------------------------------------------
# File names
# ------------------------------------------------------------------------------------------


def test_parse_filename_simple():
    name = parse_behavior_filename("dl25_tw2_20180225_102508.mat")
    assert (name.h2o, name.protocol, name.raw) == ("dl25", "tw2", "dl25_tw2_20180225_102508.mat")
    assert name.datetime == datetime(2018, 2, 25, 10, 25, 8)
    assert name.datetime.tzinfo is None
    assert name.date.isoformat() == "2018-02-25"


def test_parse_filename_protocol_with_underscores_and_path():
    name = parse_behavior_filename(
        "/rig/SC038/x/Session Data/SC038_SC_RecordingRig3_20191119_115037.mat"
    )
    assert (name.h2o, name.protocol) == ("SC038", "SC_RecordingRig3")
    assert name.datetime == datetime(2019, 11, 19, 11, 50, 37)


@pytest.mark.parametrize(
    "bad",
    [
        "dl25_20180225_102508.mat",  # no protocol token
        "1l25_tw2_20180225_102508.mat",  # h2o must start with two letters
        "dl25_tw2_20180225_102508.MAT",
        "dl25_tw2_20180225_102508.mat.bak",
        "dl25_tw2_2018022_102508.mat",
        "dl25_tw2_20180225_1025.mat",
        "notes.txt",
    ],
)
def test_parse_filename_rejects_bad_names(bad):
    with pytest.raises(BadFileNameError) as info:
        parse_behavior_filename(bad)
    assert bad.split("/")[-1] in str(info.value)
    assert "{h2o}_{protocol}_{YYYYMMDD}_{HHMMSS}.mat" in str(info.value)


def test_parse_filename_rejects_impossible_date():
    with pytest.raises(BadFileNameError, match="not a valid date"):
        parse_behavior_filename("dl25_tw2_20181345_102508.mat")


def test_parse_session_rejects_bad_file_name(tmp_path):
    path = tmp_path / "session.mat"
    shutil.copy(build_file(tmp_path, n_trials=2), path)
    with pytest.raises(BadFileNameError, match=r"session\.mat"):
        parse_session(path)


# ------------------------------------------------------------------------------------------
# MATLAB v7.3 (HDF5) loader on a file built by hand in MATLAB's layout
# ------------------------------------------------------------------------------------------


def _h5_class(obj, name: str) -> None:
    obj.attrs["MATLAB_class"] = np.bytes_(name)


def _h5_char(parent, name: str, text: str):
    ds = parent.create_dataset(name, data=np.array([[ord(c)] for c in text], dtype=np.uint16))
    _h5_class(ds, "char")
    return ds


def _h5_double(parent, name: str, matlab_value: np.ndarray):
    ds = parent.create_dataset(name, data=np.asarray(matlab_value, dtype=float).T)
    _h5_class(ds, "double")
    return ds


def write_hand_made_v73(path: Path) -> None:
    """SessionData as MATLAB ``save -v7.3`` lays it out, written without our writer."""
    with h5py.File(path, "w", userblock_size=512) as f:
        refs = f.create_group("#refs#")
        sd = f.create_group("SessionData")
        _h5_class(sd, "struct")
        _h5_double(sd, "TrialTypes", np.array([[1.0, 0.0, 1.0]]))  # 1x3 -> HDF5 3x1
        _h5_double(sd, "nTrials", np.array([[3.0]]))
        _h5_double(sd, "M", np.array([[1.0, 2.0], [3.0, 4.0]]))  # 2x2, stored transposed
        flag = sd.create_dataset("flag", data=np.array([[1]], dtype=np.uint8))
        _h5_class(flag, "logical")
        empty = sd.create_dataset("Empty", data=np.array([0, 0], dtype=np.uint64))
        _h5_class(empty, "double")
        empty.attrs["MATLAB_empty"] = np.uint8(1)
        info = sd.create_group("Info")
        _h5_class(info, "struct")
        _h5_char(info, "SessionDate", "25-Feb-2018")
        # a 1x2 cell of char
        cell_refs = np.empty((2, 1), dtype=h5py.ref_dtype)
        cell_refs[0, 0] = _h5_char(refs, "a", "Reward").ref
        cell_refs[1, 0] = _h5_char(refs, "b", "TimeOut").ref
        names = sd.create_dataset("Names", data=cell_refs)
        _h5_class(names, "cell")
        # a 1x2 struct array: fields are reference datasets *without* MATLAB_class
        ts = sd.create_group("TrialSettings")
        _h5_class(ts, "struct")
        x_refs = np.empty((2, 1), dtype=h5py.ref_dtype)
        s_refs = np.empty((2, 1), dtype=h5py.ref_dtype)
        x_refs[0, 0] = _h5_double(refs, "c", np.array([[1.5]])).ref
        x_refs[1, 0] = _h5_double(refs, "d", np.array([[2.5]])).ref
        gui = refs.create_group("e")
        _h5_class(gui, "struct")
        _h5_double(gui, "ProtocolType", np.array([[7.0]]))
        s_refs[0, 0] = gui.ref
        s_refs[1, 0] = _h5_char(refs, "f", "bc").ref
        ts.create_dataset("x", data=x_refs)
        ts.create_dataset("s", data=s_refs)
    header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: test HDF5 schema 1.00 ."
    with path.open("r+b") as fh:
        fh.write(header.ljust(116) + b"\x00" * 8 + b"\x00\x02IM")


def test_v73_loader_on_hand_made_file(tmp_path):
    path = tmp_path / "hand.mat"
    write_hand_made_v73(path)
    assert scipy.io.matlab.matfile_version(path) == (2, 0)  # scipy sees a v7.3 file
    data = load_session_data(path)
    np.testing.assert_array_equal(data["TrialTypes"], [1.0, 0.0, 1.0])
    assert data["nTrials"] == 3.0 and isinstance(data["nTrials"], float)
    np.testing.assert_array_equal(data["M"], [[1.0, 2.0], [3.0, 4.0]])
    assert data["flag"] is True
    assert data["Empty"].size == 0
    assert data["Info"] == {"SessionDate": "25-Feb-2018"}
    assert data["Names"] == ["Reward", "TimeOut"]
    assert data["TrialSettings"] == [{"x": 1.5, "s": {"ProtocolType": 7.0}}, {"x": 2.5, "s": "bc"}]


def _same_shape(a, b, where="SessionData"):
    """Recursive equality that treats list and object arrays alike (both are MATLAB cells)."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b), where
        for key in a:
            _same_shape(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list) or (isinstance(a, np.ndarray) and a.dtype == object):
        assert isinstance(b, list) or (isinstance(b, np.ndarray) and b.dtype == object), where
        assert len(a) == len(b), where
        for k, (x, y) in enumerate(zip(a, b, strict=True)):
            _same_shape(x, y, f"{where}[{k}]")
    elif isinstance(a, str):
        assert a == b, where
    else:
        assert np.shape(a) == np.shape(b), where
        np.testing.assert_array_equal(a, b, err_msg=where)


def test_v5_and_v73_load_to_the_same_structure(tmp_path):
    session = build_synthetic_session(n_trials=6, seed=3, skip_rate=0.3, free_water_rate=0.3)
    v5 = write_mat(tmp_path / "v5.mat", {"SessionData": session.session_data})
    v73 = write_mat(tmp_path / "v73.mat", {"SessionData": session.session_data}, mat_format="7.3")
    assert scipy.io.matlab.matfile_version(v5)[0] == 1
    assert h5py.is_hdf5(v73)
    _same_shape(load_session_data(v5), load_session_data(v73))


# ------------------------------------------------------------------------------------------
# Bad input: one test per case
# ------------------------------------------------------------------------------------------

GOOD_NAME = "sy01_tw2_20180225_102528.mat"


def build_file(tmp_path: Path, *, name: str | None = None, mutate=None, **options) -> Path:
    options.setdefault("n_trials", 5)
    session = build_synthetic_session(**options)
    if mutate is not None:
        mutate(session.session_data)
    return write_mat(tmp_path / (name or session.file_name), {"SessionData": session.session_data})


@needs_real_file
def test_truncated_v5_file(tmp_path):
    path = tmp_path / "dl25_tw2_20180225_102508.mat"
    path.write_bytes(REAL_FILE.read_bytes()[:100_000])
    with pytest.raises(UnreadableFileError) as info:
        parse_session(path)
    assert "dl25_tw2_20180225_102508.mat" in str(info.value)
    assert "truncated" in str(info.value)


def test_truncated_v73_file(tmp_path):
    session = build_synthetic_session(n_trials=5)
    full = write_mat(tmp_path / "full.mat", {"SessionData": session.session_data}, mat_format="7.3")
    path = tmp_path / GOOD_NAME
    path.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    with pytest.raises(UnreadableFileError, match=r"sy01_tw2_20180225_102528\.mat: .*truncated"):
        parse_session(path)


def test_file_too_short(tmp_path):
    path = tmp_path / GOOD_NAME
    path.write_bytes(b"MATLAB")
    with pytest.raises(UnreadableFileError, match="too short"):
        parse_session(path)


def test_not_a_mat_file(tmp_path):
    path = tmp_path / GOOD_NAME
    path.write_text("trial,outcome\n" * 100)
    with pytest.raises(UnreadableFileError) as info:
        parse_session(path)
    assert GOOD_NAME in str(info.value) and "not a .mat file" in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(UnreadableFileError, match="does not exist"):
        parse_session(tmp_path / GOOD_NAME)


def test_no_session_data(tmp_path):
    path = tmp_path / GOOD_NAME
    scipy.io.savemat(path, {"Settings": {"a": 1.0}, "Other": np.arange(3.0)})
    with pytest.raises(MissingFieldError) as info:
        parse_session(path)
    message = str(info.value)
    assert GOOD_NAME in message and "no SessionData" in message and "Settings" in message


def test_no_session_data_v73(tmp_path):
    path = write_mat(tmp_path / GOOD_NAME, {"Foo": {"a": 1.0}}, mat_format="7.3")
    with pytest.raises(MissingFieldError, match="no SessionData.*Foo"):
        parse_session(path)


def test_per_trial_arrays_of_different_lengths(tmp_path):
    def add_trial_type(sd):
        sd["TrialTypes"] = np.append(sd["TrialTypes"], 1).astype(np.uint8)

    path = build_file(tmp_path, mutate=add_trial_type)
    with pytest.raises(LengthMismatchError) as info:
        parse_session(path)
    message = str(info.value)
    assert path.name in message
    assert "TrialTypes=6" in message and "RawEvents.Trial=5" in message
    assert "RawData.OriginalStateData=5" in message


def test_raw_data_cell_shorter_than_trials(tmp_path):
    def drop_raw_trial(sd):
        del sd["RawData"]["OriginalEventData"][-1]

    with pytest.raises(LengthMismatchError, match="RawData.OriginalEventData=4"):
        parse_session(build_file(tmp_path, mutate=drop_raw_trial))


def test_mtl_arrays_of_unexpected_length(tmp_path):
    def truncate(sd):
        sd["TrialBlockOrder"] = sd["TrialBlockOrder"][:-1]
        sd["TrialTypes"] = sd["TrialTypes"][:-1]

    path = build_file(tmp_path, mtl=True, n_trials=8, mutate=truncate)
    with pytest.raises(
        LengthMismatchError, match=r"MATLABStartTimes.*TrialTypes=11.*TrialBlockOrder=11"
    ):
        parse_session(path)


def test_date_mismatch(tmp_path):
    source = build_file(tmp_path)  # Info says 25-Feb-2018
    path = tmp_path / "sy01_tw2_20180226_102528.mat"
    source.rename(path)
    with pytest.raises(DateMismatchError) as info:
        parse_session(path)
    message = str(info.value)
    assert path.name in message and "2018-02-25" in message and "2018-02-26" in message


def test_unknown_task_layout(tmp_path):
    def foraging_like(sd):
        for key in ("SamplePeriod", "DelayPeriod"):
            del sd["SettingsFile"]["GUI"][key]

    with pytest.raises(UnknownTaskLayoutError) as info:
        parse_session(build_file(tmp_path, mutate=foraging_like))
    assert "unknown task layout" in str(info.value)
    assert "sy01_tw2_" in str(info.value)


def test_no_settings_at_all_is_unknown_layout(tmp_path):
    def strip(sd):
        del sd["SettingsFile"]
        for record in sd["TrialSettings"]:
            record["GUI"] = {"Foo": 1.0}

    with pytest.raises(UnknownTaskLayoutError):
        parse_session(build_file(tmp_path, mutate=strip))


def test_unknown_photostim_id(tmp_path):
    path = build_file(
        tmp_path, n_trials=30, seed=2, photostim=True, photostim_rate=0.5, photostim_ids=(7,)
    )
    with pytest.raises(UnknownPhotostimError, match=r"StimTrials id 7 is not a known"):
        parse_session(path)


def test_custom_photostim_table_accepts_other_ids(tmp_path):
    path = build_file(
        tmp_path, n_trials=30, seed=2, photostim=True, photostim_rate=0.5, photostim_ids=(7,)
    )
    protocol = ParsedPhotostim(7, "OBIS470", 0.5, PHOTOSTIM_PROTOCOLS[4].locations)
    parsed = parse_session(path, photostim_protocols={7: protocol})
    assert parsed.photostims == (protocol,)
    assert any(t.is_photostim for t in parsed.trials)


def test_missing_info(tmp_path):
    with pytest.raises(MissingFieldError, match=r"SessionData\.Info is missing"):
        parse_session(build_file(tmp_path, mutate=lambda sd: sd.pop("Info")))


def test_malformed_session_date(tmp_path):
    def bad_date(sd):
        sd["Info"]["SessionDate"] = "2018-02-25"

    with pytest.raises(MissingFieldError, match="not a date like 25-Feb-2018"):
        parse_session(build_file(tmp_path, mutate=bad_date))


def test_missing_gui_field_names_trial(tmp_path):
    def no_reversal(sd):
        del sd["TrialSettings"][2]["GUI"]["Reversal"]

    with pytest.raises(MissingFieldError, match=r"TrialSettings\(3\)\.GUI\.Reversal is missing"):
        parse_session(build_file(tmp_path, mutate=no_reversal, protocol_type=7))


def test_malformed_state_visits_name_trial_and_state(tmp_path):
    def odd_visits(sd):
        sd["RawEvents"]["Trial"][1]["States"]["DelayPeriod"] = np.array([1.0, 2.0, 3.0])

    with pytest.raises(MissingFieldError, match=r"trial 2: .*States\.DelayPeriod is not a list"):
        parse_session(build_file(tmp_path, mutate=odd_visits, protocol_type=7))


def test_state_defined_but_absent_from_raw_events(tmp_path):
    def drop_state(sd):
        del sd["RawEvents"]["Trial"][0]["States"]["ResponseCue"]

    with pytest.raises(MissingFieldError, match=r"trial 1: RawEvents.*has no ResponseCue"):
        parse_session(build_file(tmp_path, mutate=drop_state, protocol_type=7))


def test_non_numeric_trial_types(tmp_path):
    def text_types(sd):
        sd["TrialTypes"] = Cell(["left"] * 5)

    with pytest.raises(MissingFieldError, match=r"SessionData\.TrialTypes is not numeric"):
        parse_session(build_file(tmp_path, mutate=text_types))


def test_event_codes_and_timestamps_of_different_lengths(tmp_path):
    def drop_timestamp(sd):
        times = sd["RawData"]["OriginalEventTimestamps"]
        times[3] = times[3][:-1]

    with pytest.raises(LengthMismatchError, match=r"trial 4: RawData\.OriginalEventData has"):
        parse_session(build_file(tmp_path, mutate=drop_timestamp, protocol_type=7))


def test_mtl_position_matrix_of_unexpected_shape(tmp_path):
    def stacked(sd):
        sd["X_positions_mat"] = np.stack(list(sd["X_positions_mat"]), axis=0)

    with pytest.raises(MissingFieldError, match=r"X_positions_mat has shape \(6, 3, 3\)"):
        parse_session(
            build_file(tmp_path, mtl=True, n_trials=6, mtl_invalid_rate=0.0, mutate=stacked)
        )


def test_mtl_session_wide_position_matrices(tmp_path):
    """One matrix for the whole session is accepted as well as one per trial."""

    def session_wide(sd):
        for name in ("trial_type_mat", "X_positions_mat", "Z_positions_mat"):
            sd[name] = sd[name][0]

    session = build_synthetic_session(mtl=True, n_trials=12, seed=4)
    session_wide(session.session_data)
    path = write_mat(tmp_path / session.file_name, {"SessionData": session.session_data})
    parsed = parse_session(path)
    expected = [(b.water_port, b.position_x, b.position_z) for b in session.truth.blocks]
    assert [(b.water_port, b.position_x, b.position_z) for b in parsed.blocks] == expected


def test_bitcode_stored_as_numbers(tmp_path):
    def numeric_bitcodes(sd):
        for record in sd["TrialSettings"]:
            record["GUI"]["randomID"] = np.array(
                [int(c) for c in record["GUI"]["randomID"]], dtype=np.uint8
            )

    session = build_synthetic_session(n_trials=4, seed=8, protocol_type=7)
    numeric_bitcodes(session.session_data)
    path = write_mat(tmp_path / session.file_name, {"SessionData": session.session_data})
    parsed = parse_session(path)
    assert [t.bitcode for t in parsed.trials] == [t.bitcode for t in session.truth.trials]


def test_errors_are_value_errors():
    assert issubclass(BehaviorFileError, ValueError)
    for cls in (
        BadFileNameError,
        UnreadableFileError,
        MissingFieldError,
        LengthMismatchError,
        DateMismatchError,
        UnknownTaskLayoutError,
        UnknownPhotostimError,
    ):
        assert issubclass(cls, BehaviorFileError)
    error = DateMismatchError("/a/b/x_y_20200101_000000.mat", "dates differ")
    assert str(error) == "x_y_20200101_000000.mat: dates differ"
    assert error.path == "/a/b/x_y_20200101_000000.mat" and error.problem == "dates differ"


# ------------------------------------------------------------------------------------------
# Smaller rules
# ------------------------------------------------------------------------------------------


def test_mtl_bitcode_is_ten_bits_lsb_first():
    assert mtl_bitcode(1) == "1000000000"
    assert mtl_bitcode(6) == "0110000000"
    assert mtl_bitcode(1023) == "1" * 10
    assert mtl_bitcode(1024) == "0" * 10  # the rig sends 10 bits only


def test_parse_handles_1000_trials(tmp_path):
    """A long session parses completely (its speed is measured in bench/, not here)."""
    path = build_file(tmp_path, n_trials=1000, seed=11, skip_rate=0.05)
    parsed = parse_session(path)
    assert len(parsed.trials) + len(parsed.skipped) == 1000
    assert parsed.skipped, "skip_rate=0.05 over 1,000 trials must skip some"
