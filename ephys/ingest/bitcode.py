"""Ephys <-> behavior trial synchronisation (spec §14.5, §14.6).

- `read_bitcode_mat(path)`: the ephys-side `{h2o}_*bitcode.mat` (sTrig, goCue, bitCodeS,
  optional trialNum and foraging extras).
- `read_ni_bitcodes(folder)` / `decode_ni_bitcodes(...)`: SpikeGLX NI text files
  (`*.XA_0_0[.adj].txt` trial starts, `*.XA_1_2[.adj].txt` bit pulses; `.adj` preferred).
- `align_trials(...)`: map ephys trials to behavior trials (bitcode.mat path) and
  `align_ni_trials(...)` for the NI path; both return a TrialAlignment in *samples*.
- `spike_times_relative` / `trialize_spikes`: Unit.spike_times (s from the first trial start)
  and per-spike trial index + go-cue-relative time (Unit.TrialSpikes), fully vectorised.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import scipy.io as sio

from .errors import BitCodeError, BitCodeFileNotFoundError
from .spikeglx import SpikeGLXMeta

NI_TRIAL_START_GLOBS = ("*.XA_0_0.adj.txt", "*.XA_0_0.txt")
NI_BIT_GLOBS = ("*.XA_1_2.adj.txt", "*.XA_1_2.txt")
NI_N_BITS = 10
NI_FIRST_BIT_S = 0.05
NI_BIT_INTERVAL_S = 0.007
FORAGING_KEYS = (
    "digMarkerPerTrial",
    "headings",
    "zaberPerTrial",
    "lickLPerTrial",
    "lickRPerTrial",
    "lickMPerTrial",
    "cameraPerTrial",
    "chan",
)


# ---- bitcode.mat --------------------------------------------------------------------------------
@dataclass
class BitcodeFile:
    """Contents of a `*bitcode.mat` (times as stored: samples, or seconds if fractional)."""

    path: Path
    trial_starts: np.ndarray  # sTrig
    go_cues: np.ndarray  # goCue (may be shorter: free-water trials have none)
    bitcodes: list[str]  # bitCodeS, one per sTrig
    trial_num: np.ndarray | None = None  # trialNum: explicit behavior trial per ephys trial
    extra: dict[str, Any] = field(default_factory=dict)  # foraging fields, raw


def _strings(value: Any) -> list[str]:
    """bitCodeS as loadmat returns it (char matrix, cell array, numeric 0/1 matrix) -> list."""
    arr = np.asarray(value)
    if arr.dtype.kind in "iuf" and arr.ndim == 2:
        return ["".join(str(int(b)) for b in row) for row in arr]
    arr = np.atleast_1d(arr)
    out = []
    for v in arr.reshape(-1):
        if isinstance(v, np.ndarray):
            v = "".join(str(x) for x in v.reshape(-1)) if v.size else ""
        out.append(str(v).strip())
    return out


def read_bitcode_mat(path: str | PathLike[str]) -> BitcodeFile:
    """Read an ephys `*bitcode.mat`; missing sTrig/goCue/bitCodeS is a BitCodeError."""
    path = Path(path)
    if not path.exists():
        raise BitCodeFileNotFoundError(path, "bitcode file does not exist")
    try:
        m = sio.loadmat(path, squeeze_me=True, struct_as_record=False)
    except NotImplementedError:
        raise BitCodeError(path, "MATLAB v7.3 (HDF5) bitcode files are not supported") from None
    except (sio.matlab.MatReadError, ValueError, OSError, TypeError) as exc:
        raise BitCodeError(path, f"not a readable MATLAB file: {exc}") from None
    present = sorted(k for k in m if not k.startswith("__"))
    missing = [k for k in ("sTrig", "goCue") if k not in m]
    if "bitCodeS" not in m and "bitcode" not in m:
        missing.append("bitCodeS")
    if missing:
        raise BitCodeError(
            path,
            f"missing {', '.join(missing)} (trial start / go-cue times and bit strings are "
            f"required to align ephys to behavior); it has: {', '.join(present) or 'nothing'}",
        )
    try:
        starts = np.atleast_1d(np.asarray(m["sTrig"], dtype=np.float64)).reshape(-1)
        go = np.atleast_1d(np.asarray(m["goCue"], dtype=np.float64)).reshape(-1)
    except (TypeError, ValueError):
        raise BitCodeError(path, "sTrig/goCue are not numeric vectors") from None
    codes = _strings(m["bitCodeS"] if "bitCodeS" in m else m["bitcode"])
    if len(codes) != starts.size:
        raise BitCodeError(
            path, f"{len(codes)} bit strings (bitCodeS) but {starts.size} trial starts (sTrig)"
        )
    trial_num = None
    if "trialNum" in m:
        trial_num = np.atleast_1d(np.asarray(m["trialNum"], dtype=np.float64)).reshape(-1)
    extra = {k: m[k] for k in FORAGING_KEYS if k in m}
    return BitcodeFile(path, starts, go, codes, trial_num, extra)


# ---- SpikeGLX NI text files ---------------------------------------------------------------------
@dataclass
class NiBitcodes:
    """Trial starts (s, NI clock) and decoded bit strings (None: no/empty bit file)."""

    trial_starts: np.ndarray
    bitcodes: list[str] | None
    trial_start_file: Path
    bit_file: Path | None


def _read_times(path: Path) -> np.ndarray:
    try:
        return np.atleast_1d(np.loadtxt(path, dtype=np.float64, ndmin=1)).reshape(-1)
    except ValueError as exc:
        raise BitCodeError(path, f"expected one time (s) per line: {exc}") from None


def _find_one(folder: Path, patterns: Sequence[str]) -> Path | None:
    for pattern in patterns:
        hits = sorted(folder.glob(pattern))
        if len(hits) > 1:
            raise BitCodeError(folder, f"several {pattern} files: {[h.name for h in hits]}")
        if hits:
            return hits[0]
    return None


def decode_ni_bitcodes(
    trial_starts: np.ndarray,
    pulse_times: np.ndarray,
    *,
    n_bits: int = NI_N_BITS,
    first_bit_s: float = NI_FIRST_BIT_S,
    bit_interval_s: float = NI_BIT_INTERVAL_S,
    source: Path | None = None,
) -> list[str]:
    """Decode per-trial bit strings from pulse times (s).

    The first bit slot is `first_bit_s` after the trial start; each pulse marks a 1 at a slot
    found by accumulating round(Δt / bit_interval_s) from a virtual pulse one interval before
    the first slot (the original `build_bitcode` rule). Pulses between a trial's start and the
    next one belong to it. A pulse outside the `n_bits` slots is a BitCodeError.
    """
    starts = np.asarray(trial_starts, dtype=np.float64)
    pulses = np.sort(np.asarray(pulse_times, dtype=np.float64))
    ends = np.append(starts[1:], np.inf)
    codes = []
    for i, (t0, t1) in enumerate(zip(starts, ends, strict=True)):
        p = pulses[(pulses >= t0) & (pulses < t1)]
        ref = np.concatenate([[t0 + first_bit_s - bit_interval_s], p])
        slots = np.cumsum(np.round(np.diff(ref) / bit_interval_s)).astype(np.int64) - 1
        if slots.size and (slots.min() < 0 or slots.max() >= n_bits):
            raise BitCodeError(
                source,
                f"trial {i + 1} (start {t0:.4f} s): pulse at bit slot {int(slots.max())}, "
                f"outside the {n_bits}-bit code",
            )
        bits = np.zeros(n_bits, dtype=np.int8)
        bits[slots] = 1
        codes.append("".join(map(str, bits)))
    return codes


def read_ni_bitcodes(folder: str | PathLike[str], **decode_kwargs: Any) -> NiBitcodes:
    """Trial starts and bit strings from the NI text files in `folder` (.adj preferred).

    No trial-start file -> BitCodeFileNotFoundError. A missing or empty bit file gives
    `bitcodes=None` (RRig-MTL: the caller may then map trials one-to-one).
    """
    folder = Path(folder)
    start_file = _find_one(folder, NI_TRIAL_START_GLOBS)
    if start_file is None:
        raise BitCodeFileNotFoundError(folder, "no NI trial-start file (*.XA_0_0[.adj].txt)")
    starts = _read_times(start_file)
    bit_file = _find_one(folder, NI_BIT_GLOBS)
    if bit_file is None or bit_file.stat().st_size == 0:
        return NiBitcodes(starts, None, start_file, bit_file)
    codes = decode_ni_bitcodes(starts, _read_times(bit_file), source=bit_file, **decode_kwargs)
    return NiBitcodes(starts, codes, start_file, bit_file)


def find_bitcode_mat(probe_dir: str | PathLike[str], h2o: str) -> Path | None:
    """The `{h2o}_*bitcode.mat` of a probe folder (None if absent; several -> BitCodeError)."""
    return _find_one(Path(probe_dir), (f"{h2o}_*bitcode.mat",))


# ---- alignment ----------------------------------------------------------------------------------
@dataclass
class TrialAlignment:
    """Ephys trials mapped to behavior trials. Times are AP-clock *samples* (float64).

    `trial_starts` already has the pre-trigger margin subtracted; `go_cues` is NaN for
    free-water trials. Row k is ephys trial `ephys_indices[k]` = behavior trial
    `behavior_trials[k]`.
    """

    behavior_trials: np.ndarray
    ephys_indices: np.ndarray
    trial_starts: np.ndarray
    go_cues: np.ndarray
    margin_samples: int = 0
    used_trial_num: bool = False
    one_to_one: bool = False

    @property
    def n_trials(self) -> int:
        return int(self.behavior_trials.size)

    @property
    def first_trial_start(self) -> float:
        return float(self.trial_starts[0])


def to_samples(values: np.ndarray, sampling_rate: float) -> np.ndarray:
    """Times that have fractional parts are seconds -> samples; integral ones are samples.

    This is the original loader's heuristic (a seconds vector that is all integers would be
    mistaken for samples; that is very unlikely for trial times).
    """
    v = np.asarray(values, dtype=np.float64)
    finite = v[np.isfinite(v)]
    if finite.size and np.any(finite != np.round(finite)):
        return v * sampling_rate
    return v


def _behavior_arrays(behavior_bitcodes: Mapping[int, str]) -> tuple[np.ndarray, list[str]]:
    trials = np.array(sorted(int(t) for t in behavior_bitcodes), dtype=np.int64)
    return trials, [str(behavior_bitcodes[int(t)]).strip() for t in trials]


def align_trials(
    ephys_bitcodes: Sequence[str],
    ephys_trial_starts: np.ndarray,
    ephys_go_cues: np.ndarray,
    behavior_bitcodes: Mapping[int, str],
    trial_num: np.ndarray | None = None,
    *,
    free_water_trials: Iterable[int] = (),
    sampling_rate: float | None = None,
    margin_samples: int = 0,
    source: str | PathLike[str] | None = None,
) -> TrialAlignment:
    """Map ephys trials (bitcode.mat) to behavior trials (spec §14.5-§14.6).

    - Fewer go cues than trial starts (free-water trials): requires #starts = #behavior trials
      and #go cues = #non-free-water trials; free-water go cues become NaN.
    - The first ephys bitcode is located in the behavior list (ephys never starts first); the
      overlapping stretch must match code by code, and ephys trials beyond the behavior end are
      dropped. Any mismatch (or the first code not found) -> the explicit `trial_num` mapping
      if given, else BitCodeError("Bitcode mismatch ...").
    - `sampling_rate` given: fractional (seconds) times are converted to samples first.
    - `margin_samples` (SpikeGLX trgTTLMarginS × imSampRate) is subtracted from trial starts.
    `source` (the bitcode file) is named in errors.
    """
    starts = np.atleast_1d(np.asarray(ephys_trial_starts, dtype=np.float64)).copy()
    go = np.atleast_1d(np.asarray(ephys_go_cues, dtype=np.float64)).copy()
    if sampling_rate is not None:
        starts, go = to_samples(starts, sampling_rate), to_samples(go, sampling_rate)
    codes = [str(c).strip() for c in ephys_bitcodes]
    btrials, bcodes = _behavior_arrays(behavior_bitcodes)
    if not codes or starts.size == 0:
        raise BitCodeError(source, "no ephys trials (empty sTrig / bitCodeS)")
    if btrials.size == 0:
        raise BitCodeError(source, "the behavior session has no trials with a bitcode")
    if len(codes) != starts.size:
        raise BitCodeError(source, f"{len(codes)} bitcodes but {starts.size} trial starts")

    if go.size < starts.size:
        if starts.size != btrials.size:
            raise BitCodeError(
                source,
                f"Mismatch sTrig ({starts.size} elements) and total behavior trials "
                f"({btrials.size} trials) while goCue has fewer elements ({go.size})",
            )
        is_go = ~np.isin(btrials, np.fromiter((int(t) for t in free_water_trials), np.int64))
        if int(is_go.sum()) != go.size:
            raise BitCodeError(
                source,
                f"Mismatch goCue ({go.size} elements) and non-free-water trials "
                f"({int(is_go.sum())} trials)",
            )
        full = np.full(starts.size, np.nan)
        full[is_go] = go
        go = full
    elif go.size > starts.size:
        raise BitCodeError(source, f"{go.size} go cues but only {starts.size} trial starts")

    if np.any(np.diff(starts) <= 0) or not np.all(np.isfinite(starts)):
        raise BitCodeError(source, "trial starts are not finite and strictly increasing")
    starts = starts - margin_samples

    mismatch: str | None = None
    try:
        first = bcodes.index(codes[0])
    except ValueError:
        first = -1
        mismatch = f"first ephys bitcode {codes[0]} is not among the behavior bitcodes"
    if first >= 0:
        n = min(len(codes), len(bcodes) - first)
        for i in range(n):
            if codes[i] != bcodes[first + i]:
                mismatch = (
                    f"ephys trial {i + 1} has {codes[i]} but behavior trial "
                    f"{btrials[first + i]} has {bcodes[first + i]}"
                )
                break

    if mismatch is None:
        idx = np.arange(n, dtype=np.int64)
        return TrialAlignment(
            behavior_trials=btrials[first : first + n],
            ephys_indices=idx,
            trial_starts=starts[:n],
            go_cues=go[:n],
            margin_samples=margin_samples,
        )
    if trial_num is None:
        raise BitCodeError(source, f"Bitcode mismatch: {mismatch}; no trialNum to fix it")
    tn = np.atleast_1d(np.asarray(trial_num, dtype=np.float64)).reshape(-1)
    if tn.size != starts.size:
        raise BitCodeError(
            source, f"trialNum has {tn.size} entries but there are {starts.size} ephys trials"
        )
    if not np.all(np.isfinite(tn)) or np.any(tn != np.round(tn)):
        raise BitCodeError(source, "trialNum has non-integer entries")
    tn = tn.astype(np.int64)
    unknown = np.setdiff1d(tn, btrials)
    if unknown.size:
        raise BitCodeError(
            source, f"trialNum refers to behavior trials that do not exist: {unknown[:10].tolist()}"
        )
    return TrialAlignment(
        behavior_trials=tn,
        ephys_indices=np.arange(tn.size, dtype=np.int64),
        trial_starts=starts,
        go_cues=go,
        margin_samples=margin_samples,
        used_trial_num=True,
    )


def align_ni_trials(
    ni: NiBitcodes,
    behavior_bitcodes: Mapping[int, str],
    behavior_go_times: Mapping[int, float] | None,
    *,
    sampling_rate: float,
    margin_samples: int = 0,
    allow_one_to_one: bool = False,
) -> TrialAlignment:
    """Map NI-decoded ephys trials to behavior trials by equal bitcode (spec §14.5).

    Each ephys trial whose code equals a behavior trial's `bitcode` note is kept (first match);
    its reference time is trial start + that trial's behavior go time (s), or + 0 when
    `behavior_go_times` is None (multi-target licking: spikes relative to trial start).
    Without decodable bit pulses, `allow_one_to_one=True` (RRig-MTL) maps trials in order
    when the counts are equal; otherwise BitCodeFileNotFoundError.
    """
    btrials, bcodes = _behavior_arrays(behavior_bitcodes)
    starts_s = np.asarray(ni.trial_starts, dtype=np.float64)

    def go_of(trial: int) -> float:
        if behavior_go_times is None:
            return 0.0
        g = behavior_go_times.get(int(trial))
        return np.nan if g is None else float(g)

    if ni.bitcodes is None:
        if allow_one_to_one and starts_s.size == btrials.size:
            go_s = starts_s + np.array([go_of(t) for t in btrials])
            return TrialAlignment(
                behavior_trials=btrials,
                ephys_indices=np.arange(btrials.size, dtype=np.int64),
                trial_starts=starts_s * sampling_rate - margin_samples,
                go_cues=go_s * sampling_rate,
                margin_samples=margin_samples,
                one_to_one=True,
            )
        raise BitCodeFileNotFoundError(
            ni.bit_file or ni.trial_start_file.parent,
            f"no usable bit pulses (*.XA_1_2[.adj].txt) and {starts_s.size} ephys vs "
            f"{btrials.size} behavior trials (one-to-one mapping "
            f"{'impossible' if allow_one_to_one else 'not allowed'})",
        )
    first_of: dict[str, int] = {}
    for t, c in zip(btrials, bcodes, strict=True):
        first_of.setdefault(c, int(t))
    keep = [i for i, c in enumerate(ni.bitcodes) if c in first_of]
    if not keep:
        raise BitCodeError(ni.bit_file, "no decoded ephys bitcode matches a behavior trial")
    idx = np.array(keep, dtype=np.int64)
    trials = np.array([first_of[ni.bitcodes[i]] for i in keep], dtype=np.int64)
    go_s = starts_s[idx] + np.array([go_of(t) for t in trials])
    return TrialAlignment(
        behavior_trials=trials,
        ephys_indices=idx,
        trial_starts=starts_s[idx] * sampling_rate - margin_samples,
        go_cues=go_s * sampling_rate,
        margin_samples=margin_samples,
    )


def pretrigger_margin_samples(meta: SpikeGLXMeta) -> int:
    """SpikeGLX pre-trigger margin in samples: round(trgTTLMarginS × imSampRate), else 0."""
    return meta.pretrigger_margin_samples


# ---- spikes -> trials ---------------------------------------------------------------------------
def spike_times_relative(
    spike_samples: np.ndarray, alignment: TrialAlignment, sampling_rate: float
) -> np.ndarray:
    """Unit.spike_times: seconds relative to the first aligned trial start (spec §14.6 step 5)."""
    out = np.array(spike_samples, dtype=np.float64)  # one new array, then in place
    out -= alignment.first_trial_start
    out /= sampling_rate
    return out


def trialize_spikes(
    spike_samples: np.ndarray,
    alignment: TrialAlignment,
    sampling_rate: float,
    offsets: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Per spike: aligned-trial row (-1 before the first trial start) and time (s) relative to
    that trial's go cue (NaN for row -1 or a free-water trial) — Unit.TrialSpikes.

    A spike belongs to trial k when start[k] <= t < start[k+1]; the last trial takes all later
    spikes. (The original used strict inequalities, losing spikes exactly on a trial start.)
    Pass `offsets` (SortingResult.offsets: segments sorted in time) for the fast path, which
    searches trial starts in each unit's spikes instead of every spike in the trial starts.
    """
    s = np.asarray(spike_samples)
    starts = alignment.trial_starts
    if offsets is None:
        row = np.searchsorted(starts, s, side="right").astype(np.int32)
    else:
        row = np.empty(s.size, dtype=np.int32)
        labels = np.arange(starts.size + 1, dtype=np.int32)
        for a, b in zip(offsets[:-1], offsets[1:], strict=True):
            seg = s[a:b]
            cut = np.searchsorted(seg, starts, side="left")
            row[a:b] = np.repeat(labels, np.diff(cut, prepend=0, append=seg.size))
    go_ext = np.concatenate([[np.nan], np.asarray(alignment.go_cues, dtype=np.float64)])
    rel = s - go_ext[row]  # row 0 here = before the first trial -> NaN
    rel /= sampling_rate
    row -= 1
    return row, rel
