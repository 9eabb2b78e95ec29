"""Pure-Python reading of Bpod ``SessionData`` .mat files (spec §14.1).

This module turns one Bpod behavior file into plain, immutable dataclasses. It touches no
Django model and no database, so that

* the rules of §14.1 can be tested on real and synthetic files without a database, and
* the DB layer (which numbers events, looks up subjects and writes §3.2–§3.5) has a single,
  complete description of the file and never needs to re-open it.

Time bases (spec §19 #14 — they differ, so every field says which one it uses):

* ``ParsedTrial.start_time`` / ``stop_time`` and ``ParsedBlock.block_start_time``: seconds on
  the Bpod clock relative to the start of the file's *first* trial (skipped or not).
* ``ParsedTrialEvent.time``, ``ParsedActionEvent.time``, ``ParsedPhotostimEvent.time``:
  seconds relative to the start of their own trial.

All times are plain floats; rounding to the DB's decimal places is the DB layer's job.

Deliberate differences from the original map-ephys code (see the docstrings for details):

* Delay-response files smaller than 1,000 KB are **not** skipped: the rule threw away short but
  valid sessions (the 200 KB real test file, 11 trials, must ingest).
* A state that was never visited (``[NaN NaN]`` in ``RawEvents``) yields no trial event (the
  original wrote an event with a NaN time).
* The photostim delay-duration test uses the current trial's delay; the original could reuse the
  previous trial's value. The late-delay onset uses the first go cue's start even when the go
  cue was visited several times (the original produced an array).
* Multi-target-licking position matrices are aligned by the same valid-trial rule as every
  other per-trial array (the original indexed them with the renumbered trial number).
* Missing GUI fields the rules need raise :class:`MissingFieldError` instead of crashing with
  an ``AttributeError``; unknown photostim ids raise :class:`UnknownPhotostimError` for any number
  of ids (the original's check failed on more than one).
* The photostim protocol table is a parameter (default: the hard-coded ALM table of the original,
  spec §19 #12) rather than being wired into the code.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from pathlib import Path
from types import MappingProxyType
from typing import Any, NamedTuple

import h5py
import numpy as np
import scipy.io
from h5py import h5a, h5d, h5g, h5o, h5r, h5s

from .errors import (
    BadFileNameError,
    DateMismatchError,
    LengthMismatchError,
    MissingFieldError,
    UnknownPhotostimError,
    UnknownTaskLayoutError,
    UnreadableFileError,
)

__all__ = [
    "ACTION_EVENT_CODES",
    "DELAY_RESPONSE",
    "MULTI_TARGET_LICKING",
    "PHOTOSTIM_PROTOCOLS",
    "BehaviorFileName",
    "ParsedActionEvent",
    "ParsedBlock",
    "ParsedPhotostim",
    "ParsedPhotostimEvent",
    "ParsedSession",
    "ParsedTrial",
    "ParsedTrialEvent",
    "PhotostimLocation",
    "SkippedTrial",
    "detect_task_type",
    "infer_photostim_period",
    "load_session_data",
    "mtl_bitcode",
    "parse_behavior_filename",
    "parse_session",
]

# --------------------------------------------------------------------------------------------
# Constants of the ingest rules (spec §14.1)
# --------------------------------------------------------------------------------------------

#: File names the rig software writes: ``{h2o}_{protocol}_{YYYYMMDD}_{HHMMSS}.mat``.
BEHAVIOR_FILE_RE = re.compile(r"^[a-zA-Z]{2}.*_.*_[0-9]{8}_[0-9]{6}\.mat$")

#: Task layouts (``task_type``) and the ``experiment.Task`` rows they are ingested as.
DELAY_RESPONSE = "delay-response"
MULTI_TARGET_LICKING = "multi-target-licking"
DELAY_RESPONSE_TASK = "audio delay"
DELAY_RESPONSE_TASK_PROTOCOL = 1

#: States a delay-response trial's state machine must define, else the trial is skipped.
DELAY_RESPONSE_REQUIRED_STATES = (
    "PreSamplePeriod",
    "SamplePeriod",
    "DelayPeriod",
    "ResponseCue",
    "StopLicking",
    "TrialEnd",
)
#: Bpod state -> ``TrialEventType``, in the order the events are listed for each trial.
DELAY_RESPONSE_EVENT_STATES = (
    ("PreSamplePeriod", "presample"),
    ("SamplePeriod", "sample"),
    ("DelayPeriod", "delay"),
    ("ResponseCue", "go"),
    ("TrialEnd", "trialend"),
)
#: ``OriginalEventData`` code -> ``ActionEventType`` (Bpod Port1In / Port2In).
ACTION_EVENT_CODES: Mapping[int, str] = MappingProxyType({69: "left lick", 71: "right lick"})

#: Protocol types below this are calibration/licking sessions and are not ingested.
MIN_PROTOCOL_TYPE = 3
_PROTOCOL_TYPE_LABELS = {1: "water-valve calibration", 2: "licking"}
#: Early licks are only labelled from "delay enforce" (5) upwards.
EARLY_LICK_MIN_PROTOCOL_TYPE = 5

EARLY_DELAY = "early-delay"
LATE_DELAY = "late-delay"
PHOTOSTIM_POWER_MW = 5.5
PHOTOSTIM_DURATION_S = 0.5
PHOTOSTIM_DEVICE = "OBIS470"
#: GUI.Autolearn value of photostimulation sessions ("antiBias" menu entry).
PHOTOSTIM_AUTOLEARN = 4
#: Photostim trials have a delay that rounds (to 10 ms) to this many seconds.
PHOTOSTIM_DELAY_S = 1.2
#: Late-delay stimulation starts this many seconds before the go cue.
LATE_DELAY_LEAD_S = 0.5

MTL_BITCODE_BITS = 10
MTL_POSITION_Y_BINS = 1

_MONTHS = {
    m: i
    for i, m in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"),
        start=1,
    )
}
_SESSION_DATE_RE = re.compile(r"^\s*(\d{1,2})-([A-Za-z]{3})-(\d{4})\s*$")
_SESSION_TIME_RE = re.compile(r"^\s*(\d{1,2}):(\d{2}):(\d{2})(?:\.\d*)?\s*$")
_RECORDING_RIG_RE = re.compile(r"Recording(Rig\d)_")


# --------------------------------------------------------------------------------------------
# Result dataclasses
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BehaviorFileName:
    """The parts of a behavior file name; ``datetime`` is the rig's naive local time."""

    h2o: str
    protocol: str
    datetime: datetime
    raw: str

    @property
    def date(self) -> date:
        return self.datetime.date()


class ParsedTrialEvent(NamedTuple):
    """One visit of a Bpod state (``experiment.TrialEvent``); times from trial start (s)."""

    event_type: str
    time: float
    duration: float


class ParsedActionEvent(NamedTuple):
    """One lick (``experiment.ActionEvent``); time from trial start (s)."""

    action_type: str
    time: float


class ParsedPhotostimEvent(NamedTuple):
    """Onset of a stimulation (``experiment.PhotostimEvent``); time from trial start (s)."""

    photo_stim: int
    time: float
    power: float


class SkippedTrial(NamedTuple):
    """A trial present in the file but not ingested, and why (for the ingest log)."""

    trial: int
    reason: str


@dataclass(frozen=True)
class PhotostimLocation:
    """``Photostim.PhotostimLocation``: µm for ap/ml/depth, degrees for theta/phi."""

    skull_reference: str
    ap_location: float
    ml_location: float
    depth: float
    theta: float
    phi: float
    brain_area: str


@dataclass(frozen=True)
class ParsedPhotostim:
    """A stimulation protocol used in the session (``experiment.Photostim``, waveform null)."""

    photo_stim: int
    photostim_device: str
    duration: float
    locations: tuple[PhotostimLocation, ...]


_ALM_LEFT = PhotostimLocation("Bregma", 2500.0, -1500.0, 0.0, 15.0, 15.0, "ALM")
_ALM_RIGHT = PhotostimLocation("Bregma", 2500.0, 1500.0, 0.0, 15.0, 15.0, "ALM")

#: The stimulation protocols hard-coded in the original ingest (left, right, bilateral ALM).
PHOTOSTIM_PROTOCOLS: Mapping[int, ParsedPhotostim] = MappingProxyType(
    {
        4: ParsedPhotostim(4, PHOTOSTIM_DEVICE, PHOTOSTIM_DURATION_S, (_ALM_LEFT,)),
        5: ParsedPhotostim(5, PHOTOSTIM_DEVICE, PHOTOSTIM_DURATION_S, (_ALM_RIGHT,)),
        6: ParsedPhotostim(6, PHOTOSTIM_DEVICE, PHOTOSTIM_DURATION_S, (_ALM_LEFT, _ALM_RIGHT)),
    }
)


@dataclass(frozen=True)
class ParsedBlock:
    """A multi-target-licking block (``MultiTargetLickingSessionBlock`` + its ``WaterPort``).

    ``block_start_time`` is the start of the block's first ingested trial (session time base).
    ``trial_count`` counts the block's valid trials (``MATLABStartTimes`` != 0) as the original
    did; ``trials`` lists the ingested ones in order, so ``block_trial_number`` of
    ``trials[k]`` is ``k + 1``. The two differ only if a trial of the block was skipped.
    """

    block: int
    block_start_time: float
    trial_count: int
    num_licks_for_reward: int
    roll_deg: float
    position_x_bins: int
    position_y_bins: int
    position_z_bins: int
    water_port: str
    position_x: float
    position_y: float
    position_z: float
    trials: tuple[int, ...]


@dataclass(frozen=True)
class ParsedTrial:
    """Everything the DB layer writes for one ingested trial.

    Maps to SessionTrial (trial, trial_uid, start/stop), BehaviorTrial (task, task_protocol,
    instruction, early_lick, outcome, auto_water, free_water), TrialNote (notes), TrialEvent
    (events), ActionEvent (actions), PhotostimTrial/PhotostimEvent (photostim_events) and, for
    multi-target licking, the block's BlockTrial (block, block_trial_number). ``water_port`` is
    the port presented on an MTL trial (``mtl-{TrialType}``), not a choice: .mat ingest writes
    no WaterPortChoice. ``file_trial`` is the trial's 1-based position in the file's per-trial
    arrays before MTL renumbering (it equals ``trial`` for delay-response files).
    """

    trial: int
    trial_uid: int
    file_trial: int
    start_time: float
    stop_time: float
    task: str
    task_protocol: int
    instruction: str
    outcome: str
    early_lick: str
    auto_water: bool
    free_water: bool
    notes: dict[str, str]
    events: tuple[ParsedTrialEvent, ...]
    actions: tuple[ParsedActionEvent, ...] = ()
    photostim_events: tuple[ParsedPhotostimEvent, ...] = ()
    block: int | None = None
    block_trial_number: int | None = None
    water_port: str | None = None

    @property
    def bitcode(self) -> str | None:
        """The trial's bitcode note (used later to match ephys trials), if any."""
        return self.notes.get("bitcode")

    @property
    def is_photostim(self) -> bool:
        return bool(self.photostim_events)


@dataclass(frozen=True)
class ParsedSession:
    """One behavior file, parsed by the §14.1 rules.

    ``session_datetime_utc`` comes from ``Info.SessionDate`` + ``Info.SessionStartTime_UTC``
    (Session.session_date / session_time). ``task_protocol`` is the session's protocol (always 1
    for delay-response; for MTL the first ingested trial's ProtocolType, ``None`` when no trial
    was ingested) — per-trial values are on :class:`ParsedTrial`; ``task_protocols`` lists the
    distinct ones (for SessionTask). ``photostims`` holds only the protocols used by at least
    one photostim trial. ``photostim_period`` is ``None`` for MTL. ``n_trials_in_file`` counts
    the trials in RawEvents (ingested + skipped; MTL: valid trials only). ``file_name`` holds
    h2o, protocol name and the rig's local date-time from the name; ``behavior_file`` is the
    bare name and ``rig_relative_path`` the optional path below the rig's data root, both for
    BehaviorIngest bookkeeping.
    """

    path: Path
    behavior_file: str
    rig_relative_path: str | None
    file_name: BehaviorFileName
    session_datetime_utc: datetime
    task_type: str
    task: str
    task_protocol: int | None
    photostim_period: str | None
    n_trials_in_file: int
    trials: tuple[ParsedTrial, ...]
    skipped: tuple[SkippedTrial, ...]
    photostims: tuple[ParsedPhotostim, ...] = ()
    blocks: tuple[ParsedBlock, ...] = ()
    task_protocols: tuple[int, ...] = field(default=())

    @property
    def h2o(self) -> str:
        return self.file_name.h2o

    @property
    def protocol_name(self) -> str:
        return self.file_name.protocol

    @property
    def session_date(self) -> date:
        return self.session_datetime_utc.date()

    @property
    def session_time(self) -> time:
        return self.session_datetime_utc.time().replace(tzinfo=None)


# --------------------------------------------------------------------------------------------
# File names
# --------------------------------------------------------------------------------------------


def parse_behavior_filename(name: str | os.PathLike[str]) -> BehaviorFileName:
    """Split ``{h2o}_{protocol}_{YYYYMMDD}_{HHMMSS}.mat``; a path is reduced to its name.

    h2o is the first ``_`` token (spec §14.1); the protocol is everything between it and the
    date, so it may itself contain ``_`` (``SC038_SC_RecordingRig3_20191119_115037.mat``).
    """
    raw = Path(name).name
    if not BEHAVIOR_FILE_RE.match(raw):
        raise BadFileNameError(
            raw, "file name does not match {h2o}_{protocol}_{YYYYMMDD}_{HHMMSS}.mat"
        )
    tokens = raw[: -len(".mat")].split("_")
    h2o, protocol, ymd, hms = tokens[0], "_".join(tokens[1:-2]), tokens[-2], tokens[-1]
    try:
        stamp = datetime.strptime(ymd + hms, "%Y%m%d%H%M%S")  # noqa: DTZ007 - rig local time
    except ValueError:
        raise BadFileNameError(raw, f"{ymd}_{hms} in the file name is not a valid date and time")
    return BehaviorFileName(h2o=h2o, protocol=protocol, datetime=stamp, raw=raw)


# --------------------------------------------------------------------------------------------
# Loading (MATLAB v5 via scipy, v7.3 via h5py)
# --------------------------------------------------------------------------------------------


def load_session_data(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Return the ``SessionData`` struct as nested dicts/lists/arrays.

    MATLAB v5/v6/v7 files are read with ``scipy.io.loadmat(simplify_cells=True)``; v7.3 files
    (HDF5, written by MATLAB for large sessions) are converted by :class:`_Mat73Reader` into
    the same shape: structs -> dict, struct arrays and cells -> list, char -> str, numeric ->
    squeezed ndarray or Python scalar. Both readers squeeze singleton dimensions, so a
    one-element cell or struct array comes back as its only element (see ``_cell_entries``).
    """
    path = Path(path)
    if not path.is_file():
        raise UnreadableFileError(path, "file does not exist")
    with path.open("rb") as fh:
        head = fh.read(128)
    if len(head) < 128:
        raise UnreadableFileError(
            path, f"only {len(head)} bytes long; too short to be a MATLAB file (truncated?)"
        )
    if h5py.is_hdf5(path):
        return _load_hdf5_session(path)
    if head[124:126] in (b"\x00\x02", b"\x02\x00"):
        raise UnreadableFileError(
            path, "header says MATLAB v7.3 (HDF5) but the HDF5 part cannot be opened (truncated?)"
        )
    try:
        mat = scipy.io.loadmat(path, simplify_cells=True, variable_names=["SessionData"])
    except Exception as exc:  # scipy raises ValueError, OSError, IndexError... on bad input
        raise UnreadableFileError(
            path,
            f"cannot be read as a MATLAB file ({type(exc).__name__}: {exc}); "
            "the file is truncated, corrupt or not a .mat file",
        ) from exc
    if "SessionData" not in mat:
        try:
            names = ", ".join(n for n, _, _ in scipy.io.whosmat(path)) or "none"
        except Exception:  # the listing is only for the message
            names = "unknown"
        raise MissingFieldError(path, f"has no SessionData variable (variables: {names})")
    return _check_struct(path, mat["SessionData"])


def _check_struct(path: Path, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise MissingFieldError(path, f"SessionData is a {type(value).__name__}, not a struct")
    return value


def _load_hdf5_session(path: Path) -> dict[str, Any]:
    try:
        with h5py.File(path, "r") as h5:
            if "SessionData" not in h5:
                names = ", ".join(k for k in h5 if not k.startswith("#")) or "none"
                raise MissingFieldError(path, f"has no SessionData variable (variables: {names})")
            value = _Mat73Reader(h5.id).value(h5o.open(h5.id, b"SessionData"))
    except MissingFieldError:
        raise
    except _UnsupportedMatlabClass as exc:
        raise UnreadableFileError(path, str(exc)) from exc
    except Exception as exc:  # h5py raises OSError/KeyError/RuntimeError on damaged files
        raise UnreadableFileError(
            path,
            f"cannot be read as a MATLAB v7.3 (HDF5) file ({type(exc).__name__}: {exc}); "
            "the file is truncated or corrupt",
        ) from exc
    return _check_struct(path, value)


class _UnsupportedMatlabClass(Exception):
    pass


def _squeeze_items(items: list[Any], matlab_shape: tuple[int, ...]) -> Any:
    """Squeeze like ``loadmat(squeeze_me=True)``: 1 item -> item, vector -> list."""
    if len(items) == 1:
        return items[0]
    if sum(1 for d in matlab_shape if d > 1) <= 1:
        return items
    out = np.empty(len(items), dtype=object)
    out[:] = items
    return out.reshape(matlab_shape, order="F")


def _is_reference(dtype: np.dtype) -> bool:
    return dtype.kind == "O" and h5py.check_dtype(ref=dtype) is not None


class _Mat73Reader:
    """Converts MATLAB v7.3 variables to Python with h5py's low-level API.

    MATLAB's HDF5 layout: a scalar struct is a group whose members are its fields; a struct
    array is a group whose fields are datasets of object references *without* a MATLAB_class
    attribute (one reference per element, into ``#refs#``); a cell is a reference dataset with
    MATLAB_class ``cell``; char is uint16 code units and logical uint8, told apart from the
    integer classes by MATLAB_class; an empty value stores its dimensions as a 1-D uint64
    dataset marked ``MATLAB_empty``. HDF5 dimensions are MATLAB's reversed, hence the
    transposes. The low-level API is used because the high-level one costs ~50 µs per object
    and attribute, and a 1,000-trial session has ~75,000 objects; attributes are only read
    where the dtype leaves the class open.
    """

    def __init__(self, fid: h5py.h5f.FileID) -> None:
        self.fid = fid

    @staticmethod
    def _attribute(oid: Any, name: bytes) -> np.ndarray | None:
        try:  # one HDF5 call instead of exists() + open()
            attr = h5a.open(oid, name)
        except KeyError:
            return None
        buffer = np.empty(attr.shape, dtype=attr.dtype)
        attr.read(buffer)
        return buffer

    def _class(self, oid: Any) -> str:
        value = self._attribute(oid, b"MATLAB_class")
        if value is None or value.size == 0:
            return ""
        item = value.ravel()[0]
        return item.decode() if isinstance(item, bytes) else str(item)

    @staticmethod
    def _read(did: h5d.DatasetID) -> np.ndarray:
        data = np.empty(did.shape, dtype=did.dtype)
        if data.size:
            did.read(h5s.ALL, h5s.ALL, data)
        return data

    def value(self, oid: Any) -> Any:
        if isinstance(oid, h5g.GroupID):
            return self._struct(oid)
        return self._dataset(oid)

    def _dereference(self, refs: np.ndarray) -> list[Any]:
        return [self.value(h5r.dereference(ref, self.fid)) for ref in refs]

    def _dataset(self, did: h5d.DatasetID) -> Any:
        dtype = did.dtype
        if (dtype == np.uint64 or len(did.shape) < 2) and np.any(
            self._attribute(did, b"MATLAB_empty")
        ):
            return {"char": "", "cell": [], "struct": {}}.get(self._class(did), np.empty(0))
        matlab = self._read(did).T
        if _is_reference(dtype):
            return _squeeze_items(self._dereference(matlab.ravel(order="F")), matlab.shape)
        cls = self._class(did) if dtype in (np.uint8, np.uint16) else ""
        if cls == "char":
            rows = np.atleast_2d(matlab).astype("<u2")
            strings = [row.tobytes().decode("utf-16-le") for row in rows]
            return strings[0] if len(strings) == 1 else np.array(strings, dtype=object)
        if cls == "logical":
            matlab = matlab.astype(bool)
        if matlab.size == 1:
            return matlab.item()
        return np.squeeze(matlab)

    def _struct(self, gid: h5g.GroupID) -> Any:
        cls = self._class(gid)
        if cls not in ("", "struct") or h5a.exists(gid, b"MATLAB_sparse"):
            kind = "sparse matrix" if h5a.exists(gid, b"MATLAB_sparse") else f"class {cls!r}"
            raise _UnsupportedMatlabClass(f"MATLAB {kind} in SessionData is not supported")
        present = [name.decode() for name in gid]
        order = self._attribute(gid, b"MATLAB_fields")
        if order is not None:
            ordered = [b"".join(np.asarray(n).tolist()).decode() for n in order.ravel()]
            names = [n for n in ordered if n in present] + [n for n in present if n not in ordered]
        else:
            names = present
        members = {name: h5o.open(gid, name.encode()) for name in names}
        array_fields = [
            name
            for name, oid in members.items()
            if isinstance(oid, h5d.DatasetID)
            and _is_reference(oid.dtype)
            and not h5a.exists(oid, b"MATLAB_class")
        ]
        if not array_fields:
            return {name: self.value(oid) for name, oid in members.items()}
        matlab = {name: self._read(oid).T for name, oid in members.items()}
        shape = matlab[array_fields[0]].shape
        columns = {name: self._dereference(v.ravel(order="F")) for name, v in matlab.items()}
        records = [{name: columns[name][k] for name in names} for k in range(int(np.prod(shape)))]
        return _squeeze_items(records, shape)


# --------------------------------------------------------------------------------------------
# Small readers that turn loadmat's squeezed values into predictable shapes
# --------------------------------------------------------------------------------------------


class _Reader:
    """Field access with errors that name the file and the MATLAB path of the field."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def get(self, struct: Any, key: str, where: str) -> Any:
        if not isinstance(struct, dict):
            raise MissingFieldError(self.path, f"{where} is not a struct")
        if key not in struct:
            raise MissingFieldError(self.path, f"{where}.{key} is missing")
        return struct[key]

    def struct(self, struct: Any, key: str, where: str) -> dict[str, Any]:
        value = self.get(struct, key, where)
        if not isinstance(value, dict):
            raise MissingFieldError(self.path, f"{where}.{key} is not a struct")
        return value

    def vector(self, value: Any, where: str, dtype: type = float) -> np.ndarray:
        """A numeric 1-D array, or an error naming the field when it is not numeric."""
        try:
            return _vector(value, dtype)
        except (TypeError, ValueError):
            raise MissingFieldError(self.path, f"{where} is not numeric")

    def number(self, struct: dict[str, Any], key: str, where: str) -> float:
        value = self.get(struct, key, where)
        try:
            return float(np.asarray(value, dtype=float).item())
        except (TypeError, ValueError):
            raise MissingFieldError(self.path, f"{where}.{key} is not a number: {value!r}")


def _vector(value: Any, dtype: type = float) -> np.ndarray:
    """A 1-D array from a squeezed MATLAB vector (a scalar when it had one element)."""
    return np.atleast_1d(np.asarray(value, dtype=dtype)).ravel()


def _is_container(value: Any) -> bool:
    return isinstance(value, (list, tuple, dict, np.ndarray))


def _cell_entries(value: Any, n_trials: int) -> list[Any]:
    """Per-trial entries of a 1×N cell of vectors (e.g. ``RawData.OriginalStateData``).

    loadmat's squeezing makes a one-trial cell come back as that trial's vector, which looks
    like a cell of scalars. A list/object array is therefore only taken as one trial when the
    session has one trial and its elements are scalars; its real length is kept otherwise, so
    the equal-length check still sees inconsistent files.
    """
    if isinstance(value, list) or (isinstance(value, np.ndarray) and value.dtype == object):
        items = value if isinstance(value, list) else list(value.ravel())
        if n_trials == 1 and not any(_is_container(v) for v in items):
            return [value]
        return items
    return [value]


def _struct_entries(value: Any) -> list[Any]:
    """Per-trial entries of a struct array or a cell of structs (``TrialSettings``...)."""
    if isinstance(value, dict):
        return [value]
    if isinstance(value, (list, np.ndarray)):
        return value if isinstance(value, list) else list(value.ravel())
    return [value]


def _state_names(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    return tuple(str(v) for v in np.asarray(value, dtype=object).ravel())


def _visits(value: Any) -> np.ndarray:
    """``RawEvents...States.X`` as a k×2 [start, end] array without never-visited NaN rows."""
    arr = np.asarray(value, dtype=float).reshape(-1, 2)
    return arr[~np.isnan(arr[:, 0])]


def _format_note(value: Any) -> str:
    """A GUI value as note text; integral numbers print without '.0' whatever their class."""
    if isinstance(value, str):
        return value
    arr = np.asarray(value)
    if arr.size == 1:
        item = arr.item()
        if isinstance(item, float) and item.is_integer():
            return str(int(item))
        return str(item)
    if arr.dtype.kind in "biuf" and np.isin(arr, (0, 1)).all():
        return "".join(str(int(b)) for b in arr.ravel())  # a bitcode stored as numbers
    return " ".join(_format_note(v) for v in arr.ravel())


def mtl_bitcode(original_trial: int) -> str:
    """10-bit binary of the trial number, least-significant bit first (MTL bitcode note).

    The rig sends only 10 bits, so numbers above 1023 wrap like the hardware code does.
    """
    return format(original_trial % (1 << MTL_BITCODE_BITS), f"0{MTL_BITCODE_BITS}b")[::-1]


def infer_photostim_period(h2o: str, file_name: str) -> str:
    """``late-delay`` for "SC" animals recorded on RecordingRig3, else ``early-delay``.

    The original inferred this from the file name (only Susu's "SC" sessions on rig 3 used
    late-delay stimulation); there is no field in the file that says it.
    """
    rig = _RECORDING_RIG_RE.search(file_name)
    if h2o.startswith("SC") and rig and rig.group(1) == "Rig3":
        return LATE_DELAY
    return EARLY_DELAY


def detect_task_type(session_data: dict[str, Any], path: str | os.PathLike[str] = "") -> str:
    """Delay-response or multi-target licking, from ``SettingsFile.GUI`` (spec §14.1).

    MTL protocols define X/Y/Z_center and lack SamplePeriod/DelayPeriod; delay-response ones
    define both periods. Anything else (e.g. a foraging or calibration protocol) is refused
    rather than guessed. Falls back to the first trial's GUI when SettingsFile is absent.
    """
    gui = None
    settings = session_data.get("SettingsFile")
    if isinstance(settings, dict) and isinstance(settings.get("GUI"), dict):
        gui = settings["GUI"]
    else:
        entries = _struct_entries(session_data.get("TrialSettings", []))
        if entries and isinstance(entries[0], dict) and isinstance(entries[0].get("GUI"), dict):
            gui = entries[0]["GUI"]
    if gui is None:
        raise UnknownTaskLayoutError(
            path or "SessionData", "no SettingsFile.GUI (or TrialSettings.GUI) to detect the task"
        )
    fields = set(gui)
    has_centers = {"X_center", "Y_center", "Z_center"} <= fields
    has_periods = {"SamplePeriod", "DelayPeriod"} <= fields
    if has_centers and not has_periods:
        return MULTI_TARGET_LICKING
    if has_periods:
        return DELAY_RESPONSE
    raise UnknownTaskLayoutError(
        path or "SessionData",
        "unknown task layout: SettingsFile.GUI has neither X/Y/Z_center (multi-target "
        "licking) nor SamplePeriod and DelayPeriod (delay response)",
    )


# --------------------------------------------------------------------------------------------
# Session-level parsing
# --------------------------------------------------------------------------------------------


def parse_session(
    path: str | os.PathLike[str],
    *,
    rig_root_relative_path: str | None = None,
    photostim_protocols: Mapping[int, ParsedPhotostim] = PHOTOSTIM_PROTOCOLS,
) -> ParsedSession:
    """Parse one Bpod behavior file by the rules of spec §14.1.

    ``rig_root_relative_path`` (the file's path below its rig's data root) is only carried
    into the result for the DB layer's bookkeeping. Unlike the original, delay-response
    files smaller than 1,000 KB are *not* skipped: size says nothing about validity (the real
    11-trial test file is 200 KB). Raises :class:`~experiment.ingest.errors.BehaviorFileError`
    subclasses for every problem that makes the whole file unusable; problems of single trials
    are reported in ``ParsedSession.skipped`` instead.
    """
    path = Path(path)
    file_name = parse_behavior_filename(path.name)
    session_data = load_session_data(path)
    reader = _Reader(path)
    session_dt = _session_datetime(reader, session_data)
    if session_dt.date() != file_name.date:
        raise DateMismatchError(
            path,
            f"Info.SessionDate {session_dt.date().isoformat()} differs from the date "
            f"{file_name.date.isoformat()} in the file name",
        )
    task_type = detect_task_type(session_data, path)
    common = {
        "path": path,
        "behavior_file": path.name,
        "rig_relative_path": (
            Path(rig_root_relative_path).as_posix() if rig_root_relative_path else None
        ),
        "file_name": file_name,
        "session_datetime_utc": session_dt,
    }
    if task_type == MULTI_TARGET_LICKING:
        return _parse_multi_target_licking(reader, session_data, common)
    period = infer_photostim_period(file_name.h2o, path.name)
    return _parse_delay_response(reader, session_data, common, period, photostim_protocols)


def _session_datetime(reader: _Reader, session_data: dict[str, Any]) -> datetime:
    """Info.SessionDate ("25-Feb-2018") + Info.SessionStartTime_UTC ("11:23:28"), tz=UTC.

    Parsed by hand because ``strptime('%b')`` depends on the process locale.
    """
    info = reader.struct(session_data, "Info", "SessionData")
    date_text = str(reader.get(info, "SessionDate", "SessionData.Info"))
    time_text = str(reader.get(info, "SessionStartTime_UTC", "SessionData.Info"))
    dm = _SESSION_DATE_RE.match(date_text)
    tm = _SESSION_TIME_RE.match(time_text)
    if not dm or dm.group(2).lower() not in _MONTHS:
        raise MissingFieldError(
            reader.path, f"Info.SessionDate {date_text!r} is not a date like 25-Feb-2018"
        )
    if not tm:
        raise MissingFieldError(
            reader.path, f"Info.SessionStartTime_UTC {time_text!r} is not a time like 11:23:28"
        )
    try:
        return datetime(
            int(dm.group(3)),
            _MONTHS[dm.group(2).lower()],
            int(dm.group(1)),
            int(tm.group(1)),
            int(tm.group(2)),
            int(tm.group(3)),
            tzinfo=UTC,
        )
    except ValueError as exc:
        raise MissingFieldError(
            reader.path, f"Info.SessionDate/SessionStartTime_UTC {date_text} {time_text}: {exc}"
        )


class _TrialArrays(NamedTuple):
    """The per-trial arrays of a session, aligned so index i is the same trial everywhere."""

    trial_types: np.ndarray
    settings: list[Any]
    starts: np.ndarray
    raw_events: list[Any]
    state_names: list[Any]
    state_data: list[Any]
    state_times: list[Any]
    event_data: list[Any]
    event_times: list[Any]
    stim: np.ndarray
    free: np.ndarray


def _collect_trial_arrays(
    reader: _Reader, sd: dict[str, Any], extra: dict[str, Sequence[Any]] | None = None
) -> tuple[dict[str, Sequence[Any]], int]:
    """All per-trial arrays of SessionData by display name, plus the RawEvents trial count."""
    raw_events = _struct_entries(
        reader.get(reader.struct(sd, "RawEvents", "SessionData"), "Trial", "SessionData.RawEvents")
    )
    n = len(raw_events)
    raw_data = reader.struct(sd, "RawData", "SessionData")
    arrays: dict[str, Sequence[Any]] = {
        "TrialTypes": reader.vector(
            reader.get(sd, "TrialTypes", "SessionData"), "SessionData.TrialTypes"
        ),
        "TrialSettings": _struct_entries(reader.get(sd, "TrialSettings", "SessionData")),
        "TrialStartTimestamp": reader.vector(
            reader.get(sd, "TrialStartTimestamp", "SessionData"), "SessionData.TrialStartTimestamp"
        ),
        "RawEvents.Trial": raw_events,
    }
    for name in (
        "OriginalStateNamesByNumber",
        "OriginalStateData",
        "OriginalStateTimestamps",
        "OriginalEventData",
        "OriginalEventTimestamps",
    ):
        arrays[f"RawData.{name}"] = _cell_entries(
            reader.get(raw_data, name, "SessionData.RawData"), n
        )
    for name in ("StimTrials", "FreeTrials"):
        if name in sd:
            arrays[name] = reader.vector(sd[name], f"SessionData.{name}")
    arrays.update(extra or {})
    return arrays, n


def _length_report(arrays: Mapping[str, Sequence[Any]]) -> str:
    return ", ".join(f"{name}={len(values)}" for name, values in arrays.items())


def _aligned(arrays: dict[str, Sequence[Any]], n: int) -> _TrialArrays:
    def opt(name: str) -> np.ndarray:
        return np.asarray(arrays[name], dtype=float) if name in arrays else np.zeros(n)

    return _TrialArrays(
        trial_types=np.asarray(arrays["TrialTypes"], dtype=float),
        settings=list(arrays["TrialSettings"]),
        starts=np.asarray(arrays["TrialStartTimestamp"], dtype=float),
        raw_events=list(arrays["RawEvents.Trial"]),
        state_names=list(arrays["RawData.OriginalStateNamesByNumber"]),
        state_data=list(arrays["RawData.OriginalStateData"]),
        state_times=list(arrays["RawData.OriginalStateTimestamps"]),
        event_data=list(arrays["RawData.OriginalEventData"]),
        event_times=list(arrays["RawData.OriginalEventTimestamps"]),
        stim=opt("StimTrials"),
        free=opt("FreeTrials"),
    )


class _TrialView:
    """The normalised raw data of one trial; errors name the trial."""

    __slots__ = (
        "_names_cache",
        "event_codes",
        "event_ts",
        "number",
        "reader",
        "state_data",
        "state_ts",
    )

    def __init__(self, reader: _Reader, number: int, arrays: _TrialArrays, i: int, cache: dict):
        self.reader = reader
        self.number = number
        self._names_cache = cache

        def where(field: str) -> str:
            return f"SessionData.RawData.{field}{{{number}}}"

        self.state_ts = reader.vector(arrays.state_times[i], where("OriginalStateTimestamps"))
        self.event_codes = reader.vector(arrays.event_data[i], where("OriginalEventData"))
        self.event_ts = reader.vector(arrays.event_times[i], where("OriginalEventTimestamps"))
        self.state_data = reader.vector(arrays.state_data[i], where("OriginalStateData"))
        if self.event_codes.size != self.event_ts.size:
            raise LengthMismatchError(
                reader.path,
                f"trial {number}: RawData.OriginalEventData has {self.event_codes.size} entries "
                f"but OriginalEventTimestamps has {self.event_ts.size}",
            )

    def state_numbers(self, names: Any) -> dict[str, int]:
        key = _state_names(names)
        found = self._names_cache.get(key)
        if found is None:
            found = {name: k + 1 for k, name in enumerate(key)}
            self._names_cache[key] = found
        return found

    def states(self, raw_event: Any) -> dict[str, Any]:
        where = f"SessionData.RawEvents.Trial{{{self.number}}}"
        return self.reader.struct(raw_event, "States", where)

    def visits(self, states: dict[str, Any], name: str) -> np.ndarray:
        if name not in states:
            raise MissingFieldError(
                self.reader.path,
                f"trial {self.number}: RawEvents.Trial.States has no {name} although the "
                "state machine defines it",
            )
        try:
            return _visits(states[name])
        except (TypeError, ValueError):
            raise MissingFieldError(
                self.reader.path,
                f"trial {self.number}: RawEvents.Trial.States.{name} is not a list of "
                "[start end] pairs",
            )

    def first_entry_time(self, state_data: np.ndarray, state_number: int) -> float:
        """Start of the first visit of a state, from OriginalStateTimestamps."""
        position = int(np.flatnonzero(state_data == state_number)[0])
        if position >= self.state_ts.size:
            raise LengthMismatchError(
                self.reader.path,
                f"trial {self.number}: RawData.OriginalStateTimestamps has {self.state_ts.size} "
                f"entries, fewer than the {state_data.size} visited states",
            )
        return float(self.state_ts[position])

    def licks(self) -> tuple[ParsedActionEvent, ...]:
        codes = self.event_codes
        mask = np.isin(codes, list(ACTION_EVENT_CODES))
        if not mask.any():
            return ()
        order = np.argsort(self.event_ts[mask], kind="stable")
        kinds = codes[mask][order].astype(int).tolist()
        times = self.event_ts[mask][order].tolist()
        return tuple(
            ParsedActionEvent(ACTION_EVENT_CODES[k], t) for k, t in zip(kinds, times, strict=True)
        )


def _gui(reader: _Reader, settings: Any, number: int) -> dict[str, Any]:
    return reader.struct(settings, "GUI", f"SessionData.TrialSettings({number})")


# --------------------------------------------------------------------------------------------
# Delay response
# --------------------------------------------------------------------------------------------


def _entered(state_numbers: Mapping[str, int], visited: set[int], state: str) -> bool:
    """Whether the trial's state machine defines ``state`` and entered it at least once."""
    return state in state_numbers and state_numbers[state] in visited


def _instruction(reversal: float, trial_type: float) -> str:
    """Reversal 1: TrialType 1 = left, 0 = right; Reversal 2: the opposite; default left."""
    if reversal == 1 and trial_type == 0:
        return "right"
    if reversal == 2 and trial_type == 1:
        return "right"
    return "left"


def _parse_delay_response(
    reader: _Reader,
    sd: dict[str, Any],
    common: dict[str, Any],
    period: str,
    photostim_protocols: Mapping[int, ParsedPhotostim],
) -> ParsedSession:
    arrays, n = _collect_trial_arrays(reader, sd)
    lengths = {len(v) for v in arrays.values()}
    if len(lengths) != 1:
        raise LengthMismatchError(
            reader.path, f"per-trial arrays have different lengths: {_length_report(arrays)}"
        )
    data = _aligned(arrays, n)
    first_start = float(data.starts[0]) if n else 0.0
    trials: list[ParsedTrial] = []
    skipped: list[SkippedTrial] = []
    used_stims: set[int] = set()
    names_cache: dict[tuple[str, ...], dict[str, int]] = {}

    for i in range(n):
        number = i + 1  # trial numbers count skipped trials too
        view = _TrialView(reader, number, data, i, names_cache)
        state_numbers = view.state_numbers(data.state_names[i])
        missing = [s for s in DELAY_RESPONSE_REQUIRED_STATES if s not in state_numbers]
        if missing:
            skipped.append(SkippedTrial(number, f"state machine lacks {', '.join(missing)}"))
            continue
        gui = _gui(reader, data.settings[i], number)
        if "ProtocolType" not in gui:
            skipped.append(SkippedTrial(number, "GUI.ProtocolType is missing"))
            continue
        where = f"SessionData.TrialSettings({number}).GUI"
        protocol_type = reader.number(gui, "ProtocolType", where)
        if protocol_type < MIN_PROTOCOL_TYPE:
            label = _PROTOCOL_TYPE_LABELS.get(int(protocol_type), "not a task protocol")
            skipped.append(
                SkippedTrial(
                    number,
                    f"GUI.ProtocolType is {_format_note(protocol_type)} ({label}; "
                    f"< {MIN_PROTOCOL_TYPE})",
                )
            )
            continue
        state_data = view.state_data
        visited = set(state_data.tolist())
        not_visited = [
            s for s in ("PreSamplePeriod", "TrialEnd") if state_numbers[s] not in visited
        ]
        if not_visited:
            skipped.append(SkippedTrial(number, f"{' and '.join(not_visited)} never visited"))
            continue

        start = float(data.starts[i]) - first_start
        stop = start + view.first_entry_time(state_data, state_numbers["TrialEnd"])

        reversal = reader.number(gui, "Reversal", where)
        autolearn_raw = reader.get(gui, "Autolearn", where)
        autolearn = reader.number(gui, "Autolearn", where)
        autowater = reader.number(gui, "Autowater", where)
        settings = data.settings[i]
        settings_where = f"SessionData.TrialSettings({number})"
        free_reward = reader.vector(
            reader.get(settings, "GaveFreeReward", settings_where),
            f"{settings_where}.GaveFreeReward",
        )

        early = protocol_type >= EARLY_LICK_MIN_PROTOCOL_TYPE and (
            _entered(state_numbers, visited, "EarlyLickDelay")
            or _entered(state_numbers, visited, "EarlyLickSample")
        )
        if _entered(state_numbers, visited, "Reward"):
            outcome = "hit"
        elif _entered(state_numbers, visited, "TimeOut"):
            outcome = "miss"
        else:
            outcome = "ignore"

        notes = {
            "protocol #": _format_note(protocol_type),
            "autolearn": _format_note(autolearn_raw),
        }
        if "randomID" in gui:
            notes["bitcode"] = _format_note(gui["randomID"])

        states = view.states(data.raw_events[i])
        events: list[ParsedTrialEvent] = []
        visits_by_state: dict[str, np.ndarray] = {}
        for state, event_type in DELAY_RESPONSE_EVENT_STATES:
            visits = view.visits(states, state)
            visits_by_state[state] = visits
            events.extend(ParsedTrialEvent(event_type, s, e - s) for s, e in visits.tolist())

        photostim_events: tuple[ParsedPhotostimEvent, ...] = ()
        stim = int(data.stim[i])
        delay_visits = visits_by_state["DelayPeriod"]
        if stim and autolearn == PHOTOSTIM_AUTOLEARN and len(delay_visits):
            valid_protocol = protocol_type == 5 if period == EARLY_DELAY else protocol_type > 4
            last_delay = delay_visits[-1]
            delay_duration = round(float(last_delay[1] - last_delay[0]), 2)
            if valid_protocol and delay_duration == PHOTOSTIM_DELAY_S:
                if stim not in photostim_protocols:
                    raise UnknownPhotostimError(
                        reader.path,
                        f"trial {number}: StimTrials id {stim} is not a known photostim protocol "
                        f"(known: {sorted(photostim_protocols)})",
                    )
                if period == EARLY_DELAY:
                    onset = float(last_delay[0])
                else:
                    go = visits_by_state["ResponseCue"]
                    if not len(go):
                        raise MissingFieldError(
                            reader.path, f"trial {number}: late-delay photostim without a go cue"
                        )
                    onset = float(go[0, 0]) - LATE_DELAY_LEAD_S
                used_stims.add(stim)
                photostim_events = (ParsedPhotostimEvent(stim, onset, PHOTOSTIM_POWER_MW),)

        trials.append(
            ParsedTrial(
                trial=number,
                trial_uid=number,
                file_trial=number,
                start_time=start,
                stop_time=stop,
                task=DELAY_RESPONSE_TASK,
                task_protocol=DELAY_RESPONSE_TASK_PROTOCOL,
                instruction=_instruction(reversal, float(data.trial_types[i])),
                outcome=outcome,
                early_lick="early" if early else "no early",
                auto_water=bool(autowater == 1 or np.any(free_reward[:2] != 0)),
                free_water=bool(data.free[i]),
                notes=notes,
                events=tuple(events),
                actions=view.licks(),
                photostim_events=photostim_events,
            )
        )

    return ParsedSession(
        **common,
        task_type=DELAY_RESPONSE,
        task=DELAY_RESPONSE_TASK,
        task_protocol=DELAY_RESPONSE_TASK_PROTOCOL,
        photostim_period=period,
        n_trials_in_file=n,
        trials=tuple(trials),
        skipped=tuple(skipped),
        photostims=tuple(photostim_protocols[s] for s in sorted(used_stims)),
        task_protocols=(DELAY_RESPONSE_TASK_PROTOCOL,) if trials else (),
    )


# --------------------------------------------------------------------------------------------
# Multi-target licking
# --------------------------------------------------------------------------------------------

_MTL_MATRICES = ("trial_type_mat", "X_positions_mat", "Z_positions_mat")


def _parse_multi_target_licking(
    reader: _Reader, sd: dict[str, Any], common: dict[str, Any]
) -> ParsedSession:
    """MTL rules: valid trials are those with MATLABStartTimes != 0, renumbered 1..N.

    Bpod MTL protocols preallocate some per-trial arrays (MATLABStartTimes, TrialTypes,
    TrialSettings, TrialBlockOrder) for more trials than are run, while RawEvents/RawData hold
    only the trials that ran. Every per-trial array must therefore have either the full length
    L of MATLABStartTimes (it is then indexed by the valid positions) or the number N of valid
    trials (it is used as is); any other length is a LengthMismatchError.
    """
    start_times_matlab = reader.vector(
        reader.get(sd, "MATLABStartTimes", "SessionData"), "SessionData.MATLABStartTimes"
    )
    valid = np.flatnonzero(start_times_matlab != 0)
    full_length, n_valid = start_times_matlab.size, valid.size
    block_order = reader.vector(
        reader.get(sd, "TrialBlockOrder", "SessionData"), "SessionData.TrialBlockOrder"
    )
    block_numbers = np.cumsum(block_order == 1)

    matrices: dict[str, Any] = {}
    per_trial_matrices: dict[str, Sequence[Any]] = {}
    for name in _MTL_MATRICES:
        value = reader.get(sd, name, "SessionData")
        if isinstance(value, np.ndarray) and value.dtype != object:
            if value.ndim != 2:
                raise MissingFieldError(
                    reader.path,
                    f"SessionData.{name} has shape {value.shape}; expected one matrix or a "
                    "cell with one matrix per trial",
                )
            matrices[name] = value  # one matrix for the whole session
        else:
            per_trial_matrices[name] = _struct_entries(value)

    arrays, n_raw = _collect_trial_arrays(
        reader,
        sd,
        {"MATLABStartTimes": start_times_matlab, "TrialBlockOrder": block_numbers}
        | per_trial_matrices,
    )
    arrays.pop("StimTrials", None)  # photostim is not part of the MTL rules
    bad = {name for name, values in arrays.items() if len(values) not in (full_length, n_valid)}
    if bad:
        raise LengthMismatchError(
            reader.path,
            "per-trial arrays have different lengths (expected "
            f"{full_length} = all entries of MATLABStartTimes or {n_valid} = its non-zero "
            f"entries): {_length_report(arrays)}",
        )
    aligned: dict[str, Sequence[Any]] = {}
    for name, values in arrays.items():
        if len(values) == full_length and full_length != n_valid:
            if isinstance(values, np.ndarray):
                aligned[name] = values[valid]
            else:
                aligned[name] = [values[k] for k in valid.tolist()]
        else:
            aligned[name] = values
    data = _aligned(aligned, n_valid)
    blocks_of_trials = np.asarray(aligned["TrialBlockOrder"], dtype=int)

    def matrix_of(name: str, k: int) -> np.ndarray:
        """The trial's position matrix: the session-wide one or the k-th valid trial's."""
        value = matrices[name] if name in matrices else aligned[name][k]
        return np.atleast_2d(np.asarray(value, dtype=float))

    original_numbers = (valid + 1).tolist()
    first_start = float(data.starts[0]) if n_valid else 0.0

    trials: list[ParsedTrial] = []
    skipped: list[SkippedTrial] = []
    blocks: list[dict[str, Any]] = []
    names_cache: dict[tuple[str, ...], dict[str, int]] = {}

    for i in range(n_valid):
        number = i + 1
        view = _TrialView(reader, number, data, i, names_cache)
        state_numbers = view.state_numbers(data.state_names[i])
        missing = [s for s in ("TrigTrialStart", "TrialEnd") if s not in state_numbers]
        if missing:
            skipped.append(SkippedTrial(number, f"state machine lacks {', '.join(missing)}"))
            continue
        state_data = view.state_data
        visited = set(state_data.tolist())
        not_visited = [s for s in ("TrigTrialStart", "TrialEnd") if state_numbers[s] not in visited]
        if not_visited:
            skipped.append(SkippedTrial(number, f"{' and '.join(not_visited)} never visited"))
            continue
        gui = _gui(reader, data.settings[i], original_numbers[i])
        if "ProtocolType" not in gui:
            skipped.append(SkippedTrial(number, "GUI.ProtocolType is missing"))
            continue
        where = f"SessionData.TrialSettings({original_numbers[i]}).GUI"
        protocol_type = int(reader.number(gui, "ProtocolType", where))
        start = float(data.starts[i]) - first_start
        stop = start + view.first_entry_time(state_data, state_numbers["TrialEnd"])
        trial_type = int(data.trial_types[i])
        block = int(blocks_of_trials[i])

        first_in_block = not blocks or blocks[-1]["block"] != block
        if first_in_block:
            blocks.append(
                _mtl_block(reader, gui, where, block, start, trial_type, matrix_of, i)
                | {"trial_count": int(np.count_nonzero(blocks_of_trials == block)), "trials": []}
            )
        blocks[-1]["trials"].append(number)

        states = view.states(data.raw_events[i])
        events = tuple(
            ParsedTrialEvent("trialend", s, e - s)
            for s, e in view.visits(states, "TrialEnd").tolist()
        )
        trials.append(
            ParsedTrial(
                trial=number,
                trial_uid=number,
                file_trial=original_numbers[i],
                start_time=start,
                stop_time=stop,
                task=MULTI_TARGET_LICKING,
                task_protocol=protocol_type,
                instruction="none",
                outcome="N/A",
                early_lick="no early",
                auto_water=bool(reader.number(gui, "Autowater", where) == 1 or first_in_block),
                free_water=bool(data.free[i]),
                notes={
                    "protocol #": _format_note(protocol_type),
                    "bitcode": mtl_bitcode(original_numbers[i]),
                },
                events=events,
                block=block,
                block_trial_number=len(blocks[-1]["trials"]),
                water_port=f"mtl-{trial_type}",
            )
        )

    protocols = tuple(sorted({t.task_protocol for t in trials}))
    return ParsedSession(
        **common,
        task_type=MULTI_TARGET_LICKING,
        task=MULTI_TARGET_LICKING,
        task_protocol=trials[0].task_protocol if trials else None,
        photostim_period=None,
        n_trials_in_file=n_raw,
        trials=tuple(trials),
        skipped=tuple(skipped),
        blocks=tuple(ParsedBlock(**{**b, "trials": tuple(b["trials"])}) for b in blocks),
        task_protocols=protocols,
    )


def _mtl_block(
    reader: _Reader,
    gui: dict[str, Any],
    where: str,
    block: int,
    start: float,
    trial_type: int,
    matrix_of: Any,
    i: int,
) -> dict[str, Any]:
    """Block settings and its water port from the block's first trial (spec §14.1)."""
    type_matrix = matrix_of("trial_type_mat", i)
    rows, cols = np.nonzero(type_matrix == trial_type)
    if not rows.size:
        raise MissingFieldError(
            reader.path,
            f"trial_type_mat of valid trial {i + 1} does not contain its TrialType {trial_type}",
        )
    r, c = int(rows[0]), int(cols[0])
    x_matrix = matrix_of("X_positions_mat", i)
    z_matrix = matrix_of("Z_positions_mat", i)
    if x_matrix.shape != type_matrix.shape or z_matrix.shape != type_matrix.shape:
        raise LengthMismatchError(
            reader.path,
            f"valid trial {i + 1}: trial_type_mat {type_matrix.shape}, X_positions_mat "
            f"{x_matrix.shape} and Z_positions_mat {z_matrix.shape} differ in shape",
        )
    num_bins = int(reader.number(gui, "num_bins", where))
    return {
        "block": block,
        "block_start_time": start,
        "num_licks_for_reward": int(reader.number(gui, "NumLicksForReward", where)),
        "roll_deg": reader.number(gui, "RollDeg", where),
        "position_x_bins": num_bins,
        "position_y_bins": MTL_POSITION_Y_BINS,
        "position_z_bins": num_bins,
        "water_port": f"mtl-{trial_type}",
        "position_x": float(x_matrix[r, c]),
        "position_y": reader.number(gui, "Y_center", where),
        "position_z": float(z_matrix[r, c]),
    }
