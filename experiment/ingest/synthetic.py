"""Seeded generator of synthetic Bpod ``SessionData`` files with their ground truth.

Only one real Bpod file is available (11 trials, no photostim, no skipped trials, no
multi-target licking), so the ingest rules of spec §14.1 are exercised on generated files
whose every label is known. The generator *designs* each trial (instruction, outcome, early
licks, photostim, skip reason...) and then writes the raw Bpod data that such a trial produces
(state visits, port events, GUI settings); the ground truth is the design, not a re-derivation
from the written arrays, so a parser bug cannot hide behind the same bug in the generator.

The layout copies the real file (``dl25_tw2_20180225_102508.mat``): RawEvents.Trial (cell of
structs with States/Events), RawData (OriginalStateNamesByNumber, OriginalStateData,
OriginalEventData, OriginalStateTimestamps, OriginalEventTimestamps), TrialSettings (struct
array with GUI and GaveFreeReward), TrialTypes, StimTrials, ProbeTrials, MATLABStartTimes,
TrialStartTimestamp, SettingsFile and Info. ``bitcode_states=True`` adds the 33 On/Off
bitcode states of the real state machine and ``realistic_settings=True`` the per-trial
GUIMeta/GUIPanels/ProtocolHistory; both make files larger and slower to write and read.

Files are written with ``scipy.io.savemat`` (MATLAB v5) or, with ``mat_format="7.3"``, with
h5py in the HDF5 layout MATLAB uses for ``save -v7.3``.
"""

from __future__ import annotations

import dataclasses
import io
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import scipy.io

__all__ = [
    "Cell",
    "GroundTruth",
    "StructArray",
    "SyntheticSession",
    "TrialTruth",
    "BlockTruth",
    "build_synthetic_session",
    "write_mat",
    "write_synthetic_session",
]

# --------------------------------------------------------------------------------------------
# A neutral model of MATLAB values, written by both writers
# --------------------------------------------------------------------------------------------


class StructArray(list):
    """A 1×N MATLAB struct array; every element is a dict with the same keys."""


class Cell(list):
    """A 1×N MATLAB cell array."""


def write_mat(
    path: str | os.PathLike[str], variables: Mapping[str, Any], *, mat_format: str = "5"
) -> Path:
    """Write MATLAB variables given as dict (struct), StructArray, Cell, str, numbers, arrays.

    1-D arrays become 1×N rows, like the vectors Bpod writes. ``mat_format`` is ``"5"``
    (``scipy.io.savemat``) or ``"7.3"`` (HDF5 via h5py, MATLAB's ``-v7.3`` layout).
    """
    path = Path(path)
    if mat_format == "5":
        buffer = io.BytesIO()  # savemat seeks a lot; a memory buffer is much faster than a file
        scipy.io.savemat(
            buffer,
            {name: _to_savemat(value) for name, value in variables.items()},
            oned_as="row",
            do_compression=False,
        )
        path.write_bytes(buffer.getvalue())
    elif mat_format == "7.3":
        _write_mat73(path, variables)
    else:
        raise ValueError(f"mat_format must be '5' or '7.3', not {mat_format!r}")
    return path


def _to_savemat(value: Any) -> Any:
    if isinstance(value, StructArray):
        fields = list(value[0]) if value else []
        out = np.empty((1, len(value)), dtype=[(f, object) for f in fields])
        for k, record in enumerate(value):
            if list(record) != fields:
                raise ValueError("all elements of a StructArray need the same fields")
            for f in fields:
                out[f][0, k] = _to_savemat(record[f])
        return out
    if isinstance(value, Cell):
        out = np.empty((1, len(value)), dtype=object)
        for k, item in enumerate(value):
            out[0, k] = _to_savemat(item)
        return out
    if isinstance(value, dict):
        return {key: _to_savemat(item) for key, item in value.items()}
    return value


_MATLAB_NUMERIC_CLASSES = {
    np.dtype(np.float64): "double",
    np.dtype(np.float32): "single",
    np.dtype(np.uint8): "uint8",
    np.dtype(np.int8): "int8",
    np.dtype(np.uint16): "uint16",
    np.dtype(np.int16): "int16",
    np.dtype(np.uint32): "uint32",
    np.dtype(np.int32): "int32",
    np.dtype(np.uint64): "uint64",
    np.dtype(np.int64): "int64",
}


def _mat73_header() -> bytes:
    text = (
        "MATLAB 7.3 MAT-file, Platform: GLNXA64, "
        f"Created on: {datetime.now(UTC):%a %b %d %H:%M:%S %Y} HDF5 schema 1.00 ."
    ).encode("ascii")
    return text.ljust(116, b" ") + b"\x00" * 8 + b"\x00\x02" + b"IM"


def _write_mat73(path: Path, variables: Mapping[str, Any]) -> None:
    with h5py.File(path, "w", userblock_size=512, libver="earliest") as h5:
        writer = _Mat73Writer(h5)
        for name, value in variables.items():
            writer.write(h5, name, value)
    with path.open("r+b") as fh:  # MATLAB's text header lives in the 512-byte user block
        fh.write(_mat73_header())


class _Mat73Writer:
    """Writes the neutral value model in the HDF5 layout of MATLAB ``save -v7.3``."""

    def __init__(self, h5: h5py.File) -> None:
        self.h5 = h5
        self.refs = h5.create_group("#refs#")
        self.counter = 0

    @staticmethod
    def _class(obj: h5py.HLObject, name: str) -> None:
        obj.attrs["MATLAB_class"] = np.bytes_(name)

    @staticmethod
    def _fields(obj: h5py.Group, names: Iterable[str]) -> None:
        vlen = h5py.vlen_dtype(np.dtype("S1"))
        arr = np.empty(len(list(names)), dtype=vlen)
        for k, name in enumerate(names):
            arr[k] = np.frombuffer(name.encode("ascii"), dtype="S1")
        obj.attrs.create("MATLAB_fields", arr, dtype=vlen)

    def _reference(self, value: Any) -> h5py.Reference:
        self.counter += 1
        name = f"r{self.counter}"
        self.write(self.refs, name, value)
        return self.refs[name].ref

    def _reference_dataset(self, parent: h5py.Group, name: str, values: list[Any]) -> h5py.Dataset:
        refs = np.empty((len(values), 1), dtype=h5py.ref_dtype)  # MATLAB 1×N -> HDF5 N×1
        for k, item in enumerate(values):
            refs[k, 0] = self._reference(item)
        return parent.create_dataset(name, data=refs)

    def write(self, parent: h5py.Group, name: str, value: Any) -> None:
        if isinstance(value, StructArray):
            group = parent.create_group(name)
            self._class(group, "struct")
            fields = list(value[0]) if value else []
            self._fields(group, fields)
            for f in fields:  # struct array: one reference per element, no MATLAB_class
                self._reference_dataset(group, f, [record[f] for record in value])
        elif isinstance(value, dict):
            group = parent.create_group(name)
            self._class(group, "struct")
            self._fields(group, list(value))
            for key, item in value.items():
                self.write(group, key, item)
        elif isinstance(value, Cell):
            dataset = self._reference_dataset(parent, name, list(value))
            self._class(dataset, "cell")
        elif isinstance(value, str):
            if not value:
                self._empty(parent, name, "char", (1, 0))
                return
            codes = np.frombuffer(value.encode("utf-16-le"), dtype="<u2").reshape(-1, 1)
            dataset = parent.create_dataset(name, data=codes)
            self._class(dataset, "char")
            dataset.attrs["MATLAB_int_decode"] = np.int32(2)
        else:
            self._numeric(parent, name, value)

    def _empty(self, parent: h5py.Group, name: str, cls: str, dims: tuple[int, ...]) -> None:
        dataset = parent.create_dataset(name, data=np.array(dims, dtype=np.uint64))
        self._class(dataset, cls)
        dataset.attrs["MATLAB_empty"] = np.uint8(1)

    def _numeric(self, parent: h5py.Group, name: str, value: Any) -> None:
        arr = np.asarray(value)
        cls = "logical" if arr.dtype == bool else None
        if arr.dtype == bool:
            arr = arr.astype(np.uint8)
        elif arr.dtype.kind in "iu" and not isinstance(value, np.ndarray | np.generic):
            arr = arr.astype(np.float64)  # a Python int is a MATLAB double
        cls = cls or _MATLAB_NUMERIC_CLASSES.get(arr.dtype)
        if cls is None:
            raise TypeError(f"cannot write {type(value).__name__} {arr.dtype} as MATLAB data")
        matlab = arr.reshape(1, -1) if arr.ndim <= 1 else arr
        if matlab.size == 0:
            self._empty(parent, name, cls, matlab.shape)
            return
        dataset = parent.create_dataset(name, data=np.ascontiguousarray(matlab.T))
        self._class(dataset, cls)


# --------------------------------------------------------------------------------------------
# Ground truth
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrialTruth:
    """What the generator designed for one trial (delay-response or MTL).

    ``trial`` is the number the parser must give (1-based; MTL: renumbered valid trial);
    ``file_trial`` the position in the preallocated arrays (MTL bitcode). Times are seconds:
    ``start_time``/``stop_time`` from the first trial's start, the rest from trial start.
    ``skip_kind`` is one of ``protocol`` (ProtocolType < 3), ``no_protocol`` (GUI lacks
    ProtocolType), ``missing_state`` (state machine lacks a required state) or
    ``not_visited`` (PreSamplePeriod/TrialEnd, or for MTL TrialEnd, never entered).
    ``stim_id`` is the StimTrials value written (non-zero on decoys too, where ``photostim``
    stays None); ``early_state_visited`` says an EarlyLick state was entered whatever the
    protocol, ``go_cue_count`` how often ResponseCue was entered.
    """

    trial: int
    file_trial: int
    trial_type: int
    start_time: float
    bitcode: str
    skipped: bool = False
    skip_kind: str | None = None
    stop_time: float | None = None
    protocol_type: int | None = None
    instruction: str | None = None
    outcome: str | None = None
    early_lick: str | None = None
    auto_water: bool | None = None
    free_water: bool | None = None
    photostim: int | None = None
    photostim_onset: float | None = None
    go_cue_time: float | None = None
    autolearn: int | None = None
    stim_id: int = 0
    early_state_visited: bool = False
    go_cue_count: int = 0
    events: tuple[tuple[str, float, float], ...] = ()
    left_licks: tuple[float, ...] = ()
    right_licks: tuple[float, ...] = ()
    block: int | None = None
    block_trial_number: int | None = None
    water_port: str | None = None


@dataclass(frozen=True)
class BlockTruth:
    """A designed multi-target-licking block (positions in motor units)."""

    block: int
    water_port: str
    position_x: float
    position_y: float
    position_z: float
    trial_count: int
    num_licks_for_reward: int
    roll_deg: float
    num_bins: int
    block_start_time: float | None
    trials: tuple[int, ...]


@dataclass(frozen=True)
class GroundTruth:
    """The designed session; ``trials`` includes skipped trials (``skipped=True``)."""

    file_name: str
    h2o: str
    protocol_name: str
    session_datetime_utc: datetime
    task_type: str
    photostim_period: str | None
    n_trials_in_file: int
    trials: tuple[TrialTruth, ...]
    blocks: tuple[BlockTruth, ...] = ()
    path: Path | None = None

    @property
    def ingested(self) -> tuple[TrialTruth, ...]:
        return tuple(t for t in self.trials if not t.skipped)

    @property
    def photostim_ids(self) -> tuple[int, ...]:
        return tuple(sorted({t.photostim for t in self.trials if t.photostim}))


@dataclass(frozen=True)
class SyntheticSession:
    """A designed session before writing: the SessionData value model and its truth."""

    file_name: str
    session_data: dict[str, Any]
    truth: GroundTruth


# --------------------------------------------------------------------------------------------
# Trial timelines (state visits and port events of one trial)
# --------------------------------------------------------------------------------------------

TUP, WAVE_PLAYER = 109, 3
LEFT_IN, LEFT_OUT, RIGHT_IN, RIGHT_OUT = 69, 70, 71, 72
_EVENT_NAMES = {
    LEFT_IN: "Port1In",
    LEFT_OUT: "Port1Out",
    RIGHT_IN: "Port2In",
    RIGHT_OUT: "Port2Out",
    TUP: "Tup",
    WAVE_PLAYER: "WavePlayer1_3",
}
LICK_LENGTH_S = 0.03


class _Timeline:
    """Accumulates the state visits and port events of one trial, in trial time."""

    def __init__(self, state_names: tuple[str, ...]) -> None:
        self.state_names = state_names
        self.numbers = {name: k + 1 for k, name in enumerate(state_names)}
        self.visits: list[tuple[str, float, float]] = []
        self.events: list[tuple[int, float]] = []
        self.t = 0.0
        self.left: list[float] = []
        self.right: list[float] = []

    def visit(self, name: str, duration: float, *, tup: bool = True) -> tuple[float, float]:
        if name not in self.numbers:
            raise KeyError(f"state {name} is not in this trial's state machine")
        start, self.t = self.t, self.t + duration
        self.visits.append((name, start, self.t))
        if tup:
            self.events.append((TUP, self.t))
        return start, self.t

    def lick(self, side: str, at: float) -> None:
        codes = (LEFT_IN, LEFT_OUT) if side == "left" else (RIGHT_IN, RIGHT_OUT)
        self.events.append((codes[0], at))
        self.events.append((codes[1], at + LICK_LENGTH_S))
        (self.left if side == "left" else self.right).append(at)

    def sound(self) -> None:
        self.events.append((WAVE_PLAYER, self.t))

    def visits_of(self, name: str) -> list[tuple[float, float]]:
        return [(s, e) for n, s, e in self.visits if n == name]

    def raw(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """RawEvents.Trial{i} and this trial's RawData entries."""
        states: dict[str, np.ndarray] = {}
        for name in self.state_names:
            rows = self.visits_of(name)
            if not rows:
                states[name] = np.array([np.nan, np.nan])
            elif len(rows) == 1:
                states[name] = np.array(rows[0])
            else:
                states[name] = np.array(rows)
        order = sorted(range(len(self.events)), key=lambda k: self.events[k][1])
        codes = np.array([self.events[k][0] for k in order], dtype=np.uint8)
        times = np.array([self.events[k][1] for k in order], dtype=float)
        events = {
            label: times[codes == code]
            for code, label in _EVENT_NAMES.items()
            if (codes == code).any()
        }
        raw_data = {
            "OriginalStateNamesByNumber": Cell(self.state_names),
            "OriginalStateData": np.array([self.numbers[n] for n, _, _ in self.visits], np.uint8),
            "OriginalEventData": codes,
            "OriginalStateTimestamps": np.array(
                [s for _, s, _ in self.visits] + ([self.visits[-1][2]] if self.visits else [])
            ),
            "OriginalEventTimestamps": times,
        }
        return {"States": states, "Events": events}, raw_data


# --------------------------------------------------------------------------------------------
# Delay response
# --------------------------------------------------------------------------------------------

_DR_STATES_BEFORE_BITCODE = ("TrigTrialStart", "PreSamplePeriod")
_BITCODE_STATES = tuple(name for k in range(1, 17) for name in (f"OffState{k}", f"OnState{k}")) + (
    "OffState17",
)
_DR_STATES_AFTER_BITCODE = (
    "SamplePeriod",
    "EarlyLickSample",
    "DelayPeriod",
    "EarlyLickDelay",
    "ResponseCue",
    "GiveLeftDrop",
    "GiveRightDrop",
    "GiveLeftDropShort",
    "GiveRightDropShort",
    "AnswerPeriod",
    "Reward",
    "RewardConsumption",
    "NoResponse",
    "TimeOut",
    "StopLicking",
    "StopLickingReturn",
    "TrialEnd",
)
#: Required states a "missing_state" trial's state machine may lack.
_DROPPABLE_STATES = ("StopLicking", "ResponseCue", "DelayPeriod")

SAMPLE_S = 1.2
DELAY_S = 1.2
DECOY_DELAY_S = 0.8
ANSWER_S = 1.5
CONSUMPTION_S = 1.5
STOP_LICKING_S = 1.5
TIMEOUT_S = 1.0
TRIAL_END_S = 0.25


def _dr_gui(rng: np.random.Generator, *, reversal: int, autolearn: int) -> dict[str, Any]:
    """A delay-response GUI with the real file's fields (values like the real file)."""
    return {
        "WaterValveTime": 0.03,
        "SamplePeriod": SAMPLE_S,
        "DelayPeriod": DELAY_S,
        "AnswerPeriod": ANSWER_S,
        "ConsumptionPeriod": CONSUMPTION_S,
        "StopLickingPeriod": STOP_LICKING_S,
        "TimeOut": TIMEOUT_S,
        "LickportMotorPosition": 127000.0,
        "LickportLeftPos": 0.0,
        "LickportRightPos": 0.0,
        "ProtocolType": 7.0,
        "Autolearn": float(autolearn),
        "Autowater": 2.0,
        "Reversal": float(reversal),
        "MaxSame": 3.0,
        "NoTrialProb": 0.5,
        "Min_correct_Right": 2.0,
        "Max_incorrect_Right": 2.0,
        "Min_correct_Left": 2.0,
        "Max_incorrect_Left": 2.0,
        "randomID": "".join(rng.choice(["0", "1"], size=16)),
    }


_GUI_PANELS = {
    "Behavior": Cell(
        [
            "WaterValveTime",
            "SamplePeriod",
            "DelayPeriod",
            "AnswerPeriod",
            "ConsumptionPeriod",
            "StopLickingPeriod",
            "TimeOut",
        ]
    ),
    "PolePositions": Cell(["LickportMotorPosition", "LickportLeftPos", "LickportRightPos"]),
    "Protocol": "ProtocolType",
    "TrialParameters": Cell(
        [
            "Autolearn",
            "Autowater",
            "Reversal",
            "MaxSame",
            "NoTrialProb",
            "Min_correct_Right",
            "Max_incorrect_Right",
            "Min_correct_Left",
            "Max_incorrect_Left",
        ]
    ),
}
_GUI_META = {
    "ProtocolType": {
        "Style": "popupmenu",
        "String": Cell(
            [
                "Water-Valve-Calibration",
                "Licking",
                "AutoAssist_step1",
                "NoAutoAssist_step2",
                "DelayEnforce_step3",
                "SampleDelayEnforce_step4",
                "Fixed_step5",
                "Prep_delay_step6",
            ]
        ),
    },
    "Autolearn": {"Style": "popupmenu", "String": Cell(["On", "Off", "fixed", "antiBias"])},
    "Autowater": {"Style": "popupmenu", "String": Cell(["On", "Off"])},
    "Reversal": {"Style": "popupmenu", "String": Cell(["Off", "On"])},
}


@dataclass
class _DrDesign:
    """The designed labels of one delay-response trial."""

    instruction: str
    outcome: str
    protocol_type: int
    autolearn: int
    autowater: int
    gave_free: bool
    free: bool
    stim: int
    photostim: bool
    delay_s: float
    early_sample_licks: int
    early_delay_licks: int
    retries: int
    skip_kind: str | None
    dropped_state: str | None


def _design_dr_trial(
    rng: np.random.Generator,
    *,
    session_autolearn: int,
    protocol_type: int | None,
    skip_rate: float,
    free_water_rate: float,
    auto_water_rate: float,
    photostim: bool,
    period: str,
    photostim_rate: float,
    decoy_rate: float,
    photostim_ids: tuple[int, ...],
) -> _DrDesign:
    skip_kind = None
    if rng.random() < skip_rate:
        skip_kind = str(rng.choice(["protocol", "no_protocol", "missing_state", "not_visited"]))
    ptype = int(protocol_type) if protocol_type is not None else int(rng.integers(3, 8))
    if skip_kind == "protocol":
        ptype = int(rng.integers(1, 3))
    free = skip_kind is None and rng.random() < free_water_rate
    design = _DrDesign(
        instruction=str(rng.choice(["left", "right"])),
        outcome=str(rng.choice(["hit", "hit", "hit", "miss", "ignore"])),
        protocol_type=ptype,
        autolearn=session_autolearn,
        autowater=2,
        gave_free=False,
        free=free,
        stim=0,
        photostim=False,
        delay_s=DELAY_S,
        early_sample_licks=0,
        early_delay_licks=0,
        retries=0,
        skip_kind=skip_kind,
        dropped_state=(
            str(rng.choice(_DROPPABLE_STATES)) if skip_kind == "missing_state" else None
        ),
    )
    if free:
        design.outcome = "ignore"
    if rng.random() < auto_water_rate:
        if rng.random() < 0.5:
            design.autowater = 1
        else:
            design.gave_free = True
    # early licks: real restarts of sample (sample enforce, >= 6) / delay (delay enforce, >= 5);
    # protocols 3-4 sometimes enter EarlyLickDelay anyway, which must not count as early.
    if rng.random() < 0.3:
        if ptype >= 6 and rng.random() < 0.5:
            design.early_sample_licks = int(rng.integers(1, 4))
        if ptype >= 5 or rng.random() < 0.5:
            design.early_delay_licks = int(rng.integers(1, 3))
    if design.outcome == "hit" and rng.random() < 0.15:
        design.retries = int(rng.integers(1, 3))
    if photostim and skip_kind is None and not free:
        roll = rng.random()
        if roll < photostim_rate:
            design.photostim = True
            design.stim = int(rng.choice(photostim_ids))
            design.autolearn = 4
            if period == "early-delay":
                design.protocol_type = 5
            elif design.protocol_type < 5:
                design.protocol_type = int(rng.integers(5, 8))
        elif roll < photostim_rate + decoy_rate:
            # StimTrials set but exactly one condition of the photostim rule broken
            design.stim = int(rng.choice(photostim_ids))
            design.autolearn = 4
            design.protocol_type = 5
            broken = rng.choice(["protocol", "delay", "autolearn"])
            if broken == "protocol":
                design.protocol_type = 6 if period == "early-delay" else 4
            elif broken == "delay":
                design.delay_s = DECOY_DELAY_S
            else:
                design.autolearn = 1
    return design


def _dr_state_names(bitcode_states: bool, dropped: str | None) -> tuple[str, ...]:
    names = _DR_STATES_BEFORE_BITCODE + (_BITCODE_STATES if bitcode_states else ())
    names += _DR_STATES_AFTER_BITCODE
    return tuple(n for n in names if n != dropped)


def _run_dr_trial(
    rng: np.random.Generator, design: _DrDesign, names: tuple[str, ...], bitcode_states: bool
) -> _Timeline:
    """Play the designed trial through a plausible Bpod state machine."""
    tl = _Timeline(names)
    tl.visit("TrigTrialStart", 0.5)
    if design.skip_kind == "not_visited" and rng.random() < 0.5:
        return tl  # aborted before the pre-sample period
    if bitcode_states:
        tl.visit("PreSamplePeriod", 0.01)
        for name in _BITCODE_STATES:
            tl.visit(name, 0.1 if name == "OffState17" else 0.01)
    else:
        tl.visit("PreSamplePeriod", 0.43)
    side = design.instruction
    other = "right" if side == "left" else "left"

    tl.sound()
    for _ in range(design.early_sample_licks):
        start = tl.t
        tl.t = start + float(rng.uniform(0.05, SAMPLE_S - 0.05))
        tl.visits.append(("SamplePeriod", start, tl.t))
        tl.lick(str(rng.choice(["left", "right"])), tl.t)
        tl.visit("EarlyLickSample", 0.01, tup=False)
    tl.visit("SamplePeriod", SAMPLE_S)
    if design.skip_kind == "not_visited":
        return tl  # aborted: TrialEnd never reached

    if "DelayPeriod" in tl.numbers:
        for _ in range(design.early_delay_licks):
            start = tl.t
            tl.t = start + float(rng.uniform(0.05, design.delay_s - 0.05))
            tl.visits.append(("DelayPeriod", start, tl.t))
            tl.lick(str(rng.choice(["left", "right"])), tl.t)
            tl.visit("EarlyLickDelay", 0.01, tup=False)
        tl.visit("DelayPeriod", design.delay_s)

    drop = "GiveLeftDrop" if side == "left" else "GiveRightDrop"
    if design.free:
        tl.visit(drop, 0.03)
        tl.visit("RewardConsumption", CONSUMPTION_S)
    elif "ResponseCue" in tl.numbers:
        for _ in range(design.retries):
            tl.sound()
            tl.visit("ResponseCue", 0.05)
            tl.visit("AnswerPeriod", ANSWER_S)
            tl.visit("NoResponse", TIMEOUT_S)
        tl.sound()
        tl.visit("ResponseCue", 0.05)
        if design.autowater == 1:
            tl.visit(drop, 0.03)
        if design.outcome == "ignore":
            tl.visit("AnswerPeriod", ANSWER_S)
            tl.visit("NoResponse", TIMEOUT_S)
        else:
            answer_start = tl.t
            tl.t = answer_start + float(rng.uniform(0.08, 0.6))
            tl.visits.append(("AnswerPeriod", answer_start, tl.t))
            tl.lick(side if design.outcome == "hit" else other, tl.t)
            if design.outcome == "hit":
                tl.visit("Reward", 0.03)
                consumption_start = tl.t
                for at in np.sort(rng.uniform(0.1, CONSUMPTION_S - 0.1, int(rng.integers(1, 5)))):
                    tl.lick(side, consumption_start + float(at))
                tl.visit("RewardConsumption", CONSUMPTION_S)
            else:
                tl.visit("TimeOut", TIMEOUT_S)
    if "StopLicking" in tl.numbers:
        for _ in range(int(rng.integers(0, 3))):
            start = tl.t
            tl.t = start + float(rng.uniform(0.05, 0.3))
            tl.visits.append(("StopLicking", start, tl.t))
            tl.lick(str(rng.choice(["left", "right"])), tl.t)
            tl.visit("StopLickingReturn", 0.01, tup=False)
        tl.visit("StopLicking", STOP_LICKING_S)
    tl.visit("TrialEnd", TRIAL_END_S)
    return tl


def _dr_truth(
    design: _DrDesign,
    tl: _Timeline,
    *,
    trial: int,
    trial_type: int,
    start: float,
    bitcode: str,
    period: str,
) -> TrialTruth:
    common = {
        "trial": trial,
        "file_trial": trial,
        "trial_type": trial_type,
        "start_time": start,
        "bitcode": bitcode,
    }
    if design.skip_kind is not None:
        return TrialTruth(**common, skipped=True, skip_kind=design.skip_kind)
    go = tl.visits_of("ResponseCue")
    delays = tl.visits_of("DelayPeriod")
    onset = None
    if design.photostim:
        onset = delays[-1][0] if period == "early-delay" else go[0][0] - 0.5
    event_types = (
        ("PreSamplePeriod", "presample"),
        ("SamplePeriod", "sample"),
        ("DelayPeriod", "delay"),
        ("ResponseCue", "go"),
        ("TrialEnd", "trialend"),
    )
    early_visited = bool(tl.visits_of("EarlyLickSample") or tl.visits_of("EarlyLickDelay"))
    return TrialTruth(
        **common,
        stop_time=start + tl.visits_of("TrialEnd")[0][0],
        protocol_type=design.protocol_type,
        instruction=design.instruction,
        outcome=design.outcome,
        early_lick="early" if design.protocol_type >= 5 and early_visited else "no early",
        auto_water=design.autowater == 1 or design.gave_free,
        free_water=design.free,
        photostim=design.stim if design.photostim else None,
        photostim_onset=onset,
        go_cue_time=go[0][0] if go else None,
        autolearn=design.autolearn,
        stim_id=design.stim,
        early_state_visited=early_visited,
        go_cue_count=len(go),
        events=tuple(
            (label, s, e - s) for state, label in event_types for s, e in tl.visits_of(state)
        ),
        left_licks=tuple(sorted(tl.left)),
        right_licks=tuple(sorted(tl.right)),
    )


def _build_delay_response(
    rng: np.random.Generator,
    *,
    n_trials: int,
    reversal: int,
    photostim: bool,
    period: str,
    photostim_rate: float,
    decoy_rate: float,
    photostim_ids: tuple[int, ...],
    free_water_rate: float,
    auto_water_rate: float,
    protocol_type: int | None,
    skip_rate: float,
    bitcode_states: bool,
    realistic_settings: bool,
    first_start: float,
    matlab_start: float,
) -> tuple[dict[str, Any], list[TrialTruth]]:
    session_autolearn = 4 if photostim else 1
    trial_types = np.zeros(n_trials, dtype=np.uint8)
    stim_trials = np.zeros(n_trials, dtype=np.uint8)
    free_trials = np.zeros(n_trials, dtype=np.uint8)
    starts = np.zeros(n_trials)
    settings: list[dict[str, Any]] = []
    raw_events: list[dict[str, Any]] = []
    raw_data: dict[str, list[Any]] = {}
    truths: list[TrialTruth] = []
    clock = first_start
    for i in range(n_trials):
        design = _design_dr_trial(
            rng,
            session_autolearn=session_autolearn,
            protocol_type=protocol_type,
            skip_rate=skip_rate,
            free_water_rate=free_water_rate,
            auto_water_rate=auto_water_rate,
            photostim=photostim,
            period=period,
            photostim_rate=photostim_rate,
            decoy_rate=decoy_rate,
            photostim_ids=photostim_ids,
        )
        names = _dr_state_names(bitcode_states, design.dropped_state)
        tl = _run_dr_trial(rng, design, names, bitcode_states)
        left_type = 1 if reversal == 1 else 0
        trial_types[i] = left_type if design.instruction == "left" else 1 - left_type
        stim_trials[i] = design.stim
        free_trials[i] = design.free
        starts[i] = clock
        gui = _dr_gui(rng, reversal=reversal, autolearn=design.autolearn)
        gui["ProtocolType"] = float(design.protocol_type)
        gui["Autowater"] = float(design.autowater)
        gui["DelayPeriod"] = design.delay_s
        if design.skip_kind == "no_protocol":
            del gui["ProtocolType"]
        trial_settings: dict[str, Any] = {"GUI": gui}
        if realistic_settings:
            trial_settings["GUIPanels"] = _GUI_PANELS
            trial_settings["GUIMeta"] = _GUI_META
            trial_settings["ProtocolHistory"] = np.array([[7.0, 2.0, 0.025], [7.0, 218.0, 0.775]])
        trial_settings["LickPortMove"] = 0.0
        trial_settings["GaveFreeReward"] = np.array(
            [int(design.gave_free), 0, (154 + i) % 256], dtype=np.uint8
        )
        settings.append(trial_settings)
        events, data = tl.raw()
        raw_events.append(events)
        for key, value in data.items():
            raw_data.setdefault(key, Cell()).append(value)
        truths.append(
            _dr_truth(
                design,
                tl,
                trial=i + 1,
                trial_type=int(trial_types[i]),
                start=float(starts[i] - first_start),
                bitcode=gui["randomID"],
                period=period,
            )
        )
        clock += tl.t + float(rng.uniform(0.2, 1.0))

    session_gui = (
        dict(settings[0]["GUI"]) if settings else _dr_gui(rng, reversal=reversal, autolearn=1)
    )
    session_gui.setdefault("ProtocolType", 7.0)
    session_data: dict[str, Any] = {
        "TrialTypes": trial_types,
        "LickPortMotorPosition": np.full(n_trials, 127000, dtype=np.int32),
        "ProbeTrials": np.zeros(n_trials),
        "StimTrials": stim_trials,
        "MATLABStartTimes": matlab_start + (starts - first_start) / 86400.0,
    }
    if free_water_rate > 0:
        session_data["FreeTrials"] = free_trials
    session_data["RawEvents"] = {"Trial": Cell(raw_events)}
    session_data["RawData"] = raw_data
    session_data["TrialStartTimestamp"] = starts
    session_data["SettingsFile"] = {
        "GUI": session_gui,
        "GUIPanels": _GUI_PANELS,
        "GUIMeta": _GUI_META,
        "LickPortMove": 0.0,
    }
    session_data["TrialSettings"] = StructArray(settings)
    return session_data, truths


# --------------------------------------------------------------------------------------------
# Multi-target licking
# --------------------------------------------------------------------------------------------

_MTL_STATES = (
    "TrigTrialStart",
    "MoveLickport",
    "AnswerPeriod",
    "Reward",
    "RewardConsumption",
    "NoResponse",
    "ITI",
    "TrialEnd",
)
MTL_NUM_BINS = 3


def _mtl_positions(gui: Mapping[str, float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """trial_type_mat, X_positions_mat, Z_positions_mat as the MTL protocol computes them.

    trial_type_mat numbers the cells 1..9 in MATLAB's column-major order; X varies along
    columns and Z along rows (``repmat(X, nb, 1)`` and ``repmat(Z, nb, 1)'``).
    """
    nb = int(gui["num_bins"])
    x = gui["X_center"] - gui["X_radius"] + np.arange(nb) * (2 * gui["X_radius"] / (nb - 1))
    z = gui["Z_center"] - gui["Z_radius"] + np.arange(nb) * (2 * gui["Z_radius"] / (nb - 1))
    types = np.arange(1, nb * nb + 1, dtype=float).reshape(nb, nb, order="F")
    return types, np.tile(x, (nb, 1)), np.tile(z, (nb, 1)).T


def _build_mtl(
    rng: np.random.Generator,
    *,
    n_trials: int,
    protocol_type: int | None,
    skip_rate: float,
    free_water_rate: float,
    auto_water_rate: float,
    invalid_rate: float,
    first_start: float,
    matlab_start: float,
) -> tuple[dict[str, Any], list[TrialTruth], list[BlockTruth]]:
    """An MTL session: preallocated full-length arrays plus valid-only raw data."""
    ptype = int(protocol_type) if protocol_type is not None else int(rng.integers(1, 3))
    gui_base = {
        "X_center": 100000.0,
        "Y_center": 50000.0,
        "Z_center": 200000.0,
        "X_radius": 2000.0,
        "Z_radius": 1500.0,
        "num_bins": float(MTL_NUM_BINS),
        "MaxSame": float(rng.integers(2, 6)),
        "NumLicksForReward": float(rng.integers(1, 4)),
        "RollDeg": float(rng.choice([-15.0, 0.0, 10.0])),
        "ProtocolType": float(ptype),
        "Autowater": 2.0,
        "WaterValveTime": 0.03,
        "AnswerPeriod": ANSWER_S,
    }
    types_mat, x_mat, z_mat = _mtl_positions(gui_base)
    max_same = int(gui_base["MaxSame"])

    # Lay out positions (file trials): blocks of MaxSame trials of one port; a few positions
    # are invalid (MATLABStartTimes 0) and the arrays are preallocated past the last trial.
    positions: list[tuple[int, int, int, bool]] = []  # (block, order in block, type, valid)
    n_valid = 0
    block = 0
    while n_valid < n_trials:
        block += 1
        trial_type = int(rng.integers(1, MTL_NUM_BINS**2 + 1))
        for order in range(1, max_same + 1):
            valid = n_valid < n_trials and not (positions and rng.random() < invalid_rate)
            positions.append((block, order, trial_type, valid))
            n_valid += valid
    extra = int(rng.integers(1, 4))
    for order in range(1, extra + 1):
        positions.append((block + 1, order, int(rng.integers(1, 10)), False))
    full_length = len(positions)

    matlab_start_times = np.zeros(full_length)
    trial_types = np.zeros(full_length, dtype=np.uint8)
    block_order = np.zeros(full_length, dtype=np.uint8)
    settings: list[dict[str, Any]] = []
    raw_events: list[dict[str, Any]] = []
    raw_data: dict[str, list[Any]] = {}
    starts: list[float] = []
    free: list[int] = []
    ttm, xm, zm = Cell(), Cell(), Cell()
    truths: list[TrialTruth] = []
    clock = first_start
    valid_number = 0
    blocks: dict[int, dict[str, Any]] = {}
    for k, (blk, order, trial_type, valid) in enumerate(positions):
        trial_types[k] = trial_type
        block_order[k] = order
        gui = dict(gui_base)
        if rng.random() < auto_water_rate:
            gui["Autowater"] = 1.0
        settings.append({"GUI": gui, "GaveFreeReward": np.zeros(3, dtype=np.uint8)})
        if not valid:
            continue
        valid_number += 1
        matlab_start_times[k] = matlab_start + (clock - first_start) / 86400.0
        skipped = rng.random() < skip_rate
        is_free = rng.random() < free_water_rate
        tl = _Timeline(_MTL_STATES)
        tl.visit("TrigTrialStart", 0.01)
        tl.visit("MoveLickport", 0.5)
        answer = tl.t
        tl.t += float(rng.uniform(0.2, 1.0))
        tl.visits.append(("AnswerPeriod", answer, tl.t))
        for lick in range(int(gui["NumLicksForReward"])):
            tl.lick("left", answer + 0.05 * (lick + 1))
        tl.visit("Reward", 0.03)
        tl.visit("RewardConsumption", 1.0)
        tl.visit("ITI", float(rng.uniform(0.5, 1.5)))
        if not skipped:
            tl.visit("TrialEnd", 0.05)
        events, data = tl.raw()
        raw_events.append(events)
        for key, value in data.items():
            raw_data.setdefault(key, Cell()).append(value)
        starts.append(clock)
        free.append(int(is_free))
        ttm.append(types_mat)
        xm.append(x_mat)
        zm.append(z_mat)
        start = clock - first_start
        common = {
            "trial": valid_number,
            "file_trial": k + 1,
            "trial_type": trial_type,
            "start_time": start,
            "bitcode": format((k + 1) % 1024, "010b")[::-1],
        }
        if skipped:
            truths.append(TrialTruth(**common, skipped=True, skip_kind="not_visited"))
        else:
            info = blocks.setdefault(blk, {"trials": [], "start": start})
            info["trials"].append(valid_number)
            first = len(info["trials"]) == 1
            truths.append(
                TrialTruth(
                    **common,
                    stop_time=start + tl.visits_of("TrialEnd")[0][0],
                    protocol_type=ptype,
                    instruction="none",
                    outcome="N/A",
                    early_lick="no early",
                    auto_water=gui["Autowater"] == 1 or first,
                    free_water=is_free,
                    events=tuple(("trialend", s, e - s) for s, e in tl.visits_of("TrialEnd")),
                    left_licks=tuple(tl.left),
                    block=blk,
                    block_trial_number=len(info["trials"]),
                    water_port=f"mtl-{trial_type}",
                )
            )
        clock += tl.t + float(rng.uniform(0.2, 1.0))

    nb = MTL_NUM_BINS
    block_truths = []
    for blk, info in sorted(blocks.items()):
        trial_type = next(t for b, _, t, _ in positions if b == blk)
        row, col = (trial_type - 1) % nb, (trial_type - 1) // nb  # column-major cell
        x_step = 2 * gui_base["X_radius"] / (nb - 1)
        z_step = 2 * gui_base["Z_radius"] / (nb - 1)
        block_truths.append(
            BlockTruth(
                block=blk,
                water_port=f"mtl-{trial_type}",
                position_x=gui_base["X_center"] - gui_base["X_radius"] + col * x_step,
                position_y=gui_base["Y_center"],
                position_z=gui_base["Z_center"] - gui_base["Z_radius"] + row * z_step,
                trial_count=sum(1 for b, _, _, v in positions if b == blk and v),
                num_licks_for_reward=int(gui_base["NumLicksForReward"]),
                roll_deg=gui_base["RollDeg"],
                num_bins=nb,
                block_start_time=info["start"],
                trials=tuple(info["trials"]),
            )
        )

    session_data: dict[str, Any] = {
        "TrialTypes": trial_types,
        "TrialBlockOrder": block_order,
        "MATLABStartTimes": matlab_start_times,
        "StimTrials": np.zeros(0),
    }
    if free_water_rate > 0:
        session_data["FreeTrials"] = np.array(free, dtype=np.uint8)
    session_data["RawEvents"] = {"Trial": Cell(raw_events)}
    session_data["RawData"] = raw_data
    session_data["TrialStartTimestamp"] = np.array(starts)
    session_data["trial_type_mat"] = ttm
    session_data["X_positions_mat"] = xm
    session_data["Z_positions_mat"] = zm
    session_data["SettingsFile"] = {"GUI": dict(gui_base)}
    session_data["TrialSettings"] = StructArray(settings)
    return session_data, truths, block_truths


# --------------------------------------------------------------------------------------------
# Public entry points
# --------------------------------------------------------------------------------------------

_MONTH_ABBREVIATIONS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun")
_MONTH_ABBREVIATIONS += ("Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
DEFAULT_SESSION_DATETIME = datetime(2018, 2, 25, 11, 23, 28, tzinfo=UTC)
#: The real file was created about an hour before its first trial started.
_FILE_NAME_LEAD = timedelta(minutes=58)


def _matlab_datenum(moment: datetime) -> float:
    day_start = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    seconds = (moment - day_start).total_seconds()
    return moment.toordinal() + 366 + seconds / 86400.0


def build_synthetic_session(
    *,
    h2o: str = "sy01",
    protocol: str | None = None,
    n_trials: int = 100,
    seed: int = 0,
    session_datetime: datetime | None = None,
    mtl: bool = False,
    photostim: bool = False,
    photostim_period: str = "early-delay",
    photostim_rate: float = 0.3,
    decoy_rate: float = 0.15,
    photostim_ids: tuple[int, ...] = (4, 5, 6),
    free_water_rate: float = 0.0,
    auto_water_rate: float = 0.1,
    protocol_type: int | None = None,
    skip_rate: float = 0.0,
    reversal: int | None = None,
    mtl_invalid_rate: float = 0.05,
    bitcode_states: bool = False,
    realistic_settings: bool = False,
) -> SyntheticSession:
    """Design a session and build its SessionData (see the module docstring).

    ``session_datetime`` is what Info.SessionDate/SessionStartTime_UTC say (a naive value is
    taken as UTC, not as the machine's local time); the file
    name's local time is 58 minutes earlier on the same day, like the real file. Late-delay
    photostim needs an "SC" h2o; the protocol name then defaults to ``SC_RecordingRig3``,
    which is how the ingest rules recognise late-delay sessions. ``protocol_type`` fixes
    GUI.ProtocolType (delay-response 3-7, MTL 1-2); ``None`` draws it per trial (per session
    for MTL). Photostim trials get ProtocolType 5 (early) or >= 5 (late) and Autolearn 4.
    """
    if n_trials < 1:
        raise ValueError("n_trials must be at least 1")
    if photostim_period not in ("early-delay", "late-delay"):
        raise ValueError("photostim_period must be 'early-delay' or 'late-delay'")
    if photostim and photostim_period == "late-delay" and not h2o.startswith("SC"):
        raise ValueError("late-delay photostim sessions need an h2o starting with 'SC'")
    rng = np.random.default_rng(seed)
    moment = session_datetime or DEFAULT_SESSION_DATETIME
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    local = moment.replace(tzinfo=None) - _FILE_NAME_LEAD
    if local.date() != moment.date():
        local = moment.replace(tzinfo=None)
    if protocol is None:
        if mtl:
            protocol = "af_2D"
        elif photostim and photostim_period == "late-delay":
            protocol = "SC_RecordingRig3"
        else:
            protocol = "tw2"
    file_name = f"{h2o}_{protocol}_{local:%Y%m%d}_{local:%H%M%S}.mat"
    first_start = float(rng.uniform(100.0, 4000.0))
    matlab_start = _matlab_datenum(moment)
    period = photostim_period
    blocks: list[BlockTruth] = []
    if mtl:
        session_data, truths, blocks = _build_mtl(
            rng,
            n_trials=n_trials,
            protocol_type=protocol_type,
            skip_rate=skip_rate,
            free_water_rate=free_water_rate,
            auto_water_rate=auto_water_rate,
            invalid_rate=mtl_invalid_rate,
            first_start=first_start,
            matlab_start=matlab_start,
        )
        n_in_file = len(session_data["RawEvents"]["Trial"])
    else:
        if not (photostim and photostim_period == "late-delay"):
            period = "early-delay"
        session_data, truths = _build_delay_response(
            rng,
            n_trials=n_trials,
            reversal=reversal if reversal is not None else int(rng.integers(1, 3)),
            photostim=photostim,
            period=period,
            photostim_rate=photostim_rate,
            decoy_rate=decoy_rate,
            photostim_ids=tuple(photostim_ids),
            free_water_rate=free_water_rate,
            auto_water_rate=auto_water_rate,
            protocol_type=protocol_type,
            skip_rate=skip_rate,
            bitcode_states=bitcode_states,
            realistic_settings=realistic_settings,
            first_start=first_start,
            matlab_start=matlab_start,
        )
        n_in_file = n_trials
    session_data["Info"] = {
        "BpodVersion": "Bpod 0.7-0.9",
        "SessionDate": f"{moment.day:02d}-{_MONTH_ABBREVIATIONS[moment.month - 1]}-{moment.year}",
        "SessionStartTime_UTC": f"{moment:%H:%M:%S}",
        "SessionStartTime_MATLAB": matlab_start,
    }
    session_data["nTrials"] = float(n_in_file)
    truth = GroundTruth(
        file_name=file_name,
        h2o=h2o,
        protocol_name=protocol,
        session_datetime_utc=moment.replace(microsecond=0),
        task_type="multi-target-licking" if mtl else "delay-response",
        photostim_period=None if mtl else period,
        n_trials_in_file=n_in_file,
        trials=tuple(truths),
        blocks=tuple(blocks),
    )
    return SyntheticSession(file_name=file_name, session_data=session_data, truth=truth)


def write_synthetic_session(
    path_dir: str | os.PathLike[str], *, mat_format: str = "5", **options: Any
) -> GroundTruth:
    """Build a session with :func:`build_synthetic_session` and write it into ``path_dir``.

    Returns the ground truth with ``path`` set to the written file.
    """
    session = build_synthetic_session(**options)
    Path(path_dir).mkdir(parents=True, exist_ok=True)
    path = write_mat(
        Path(path_dir) / session.file_name,
        {"SessionData": session.session_data},
        mat_format=mat_format,
    )
    return dataclasses.replace(session.truth, path=path)
