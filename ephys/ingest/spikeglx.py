"""SpikeGLX `.ap.meta` parsing, probe-model detection and electrode configuration
(spec §2.2, §14.7).

`read_spikeglx_meta(path)` returns a `SpikeGLXMeta`; its properties give everything the DB layer
needs for lab.Probe, lab.ElectrodeConfig(+Group, +Electrode), ephys.ProbeInsertion and
RecordingSystemSetup. Errors are ProbeInsertionError naming the `.meta` file.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from os import PathLike
from pathlib import Path

import numpy as np

from .errors import EphysIngestError, ProbeInsertionError, SpikeGLXMetaNotFoundError
from .geometry import NP1_3A, NP1_3B, NP2_MS, NP2_SS, electrode_numbers, probe_layout

#: µV per bit used to scale Kilosort template amplitudes (spec §14.4; non-QC results only).
NPX_UV_PER_BIT = {"neuropixels 1.0": 2.34375, "neuropixels 2.0": 0.763}
#: Imax (ADC full scale) per probe type (spec §14.7).
IMAX = {NP1_3A: 512, NP1_3B: 512, NP2_SS: 8192, NP2_MS: 8192}
NP2_AP_GAIN = 80
#: varchar length of lab.ElectrodeConfig.electrode_config_name.
CONFIG_NAME_MAX_LEN = 64
RECORDING_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S"

MetaValue = int | float | str


def _convert(value: str) -> MetaValue:
    """int, else float, else the stripped string (as the original `handle_string`)."""
    v = value.strip()
    try:
        return int(v)
    except ValueError:
        pass
    try:
        return float(v)
    except ValueError:
        return v


def parse_meta_text(text: str) -> dict[str, MetaValue]:
    """Parse SpikeGLX `key=value` lines; values are converted to int/float when possible.

    Only the first '=' splits (values such as file paths may contain '='); lines without '='
    are ignored. Keys keep their leading '~'.
    """
    out: dict[str, MetaValue] = {}
    for line in text.splitlines():
        line = line.strip()
        if "=" not in line:
            continue
        key, value = line.split("=", 1)
        out[key.strip()] = _convert(value)
    return out


def _groups(raw: str) -> list[str]:
    return [g for g in re.findall(r"\(([^()]*)\)", raw)]


def parse_shank_map(raw: str) -> tuple[tuple[int, ...], np.ndarray]:
    """`(nshank,ncol,nrow)(s:c:r:u)...` -> (header, int array (n, 4) of 0-based s, c, r, used)."""
    groups = _groups(raw)
    if not groups:
        raise ValueError("empty ~snsShankMap")
    header = tuple(int(v) for v in groups[0].split(","))
    rows = [[int(v) for v in g.split(":")] for g in groups[1:]]
    if any(len(r) != 4 for r in rows):
        raise ValueError("~snsShankMap entries must be shank:col:row:used")
    return header, np.array(rows, dtype=np.int64).reshape(-1, 4)


def parse_chan_map(raw: str) -> tuple[tuple[int, ...], list[tuple[str, int, int]]]:
    """`(ap,lf,sy)(AP0;0:0)...` -> (header counts, [(name, channel, order), ...])."""
    groups = _groups(raw)
    if not groups:
        raise ValueError("empty ~snsChanMap")
    header = tuple(int(v) for v in groups[0].split(","))
    entries = []
    for g in groups[1:]:
        name, rest = g.split(";")
        chan, order = rest.split(":")
        entries.append((name, int(chan), int(order)))
    return header, entries


def parse_imro_table(raw: str) -> tuple[tuple[int, ...], list[tuple[int, ...]]]:
    """`(type,nchan)(c b r apg lfg ...)...` -> (header, per-channel integer tuples)."""
    groups = _groups(raw)
    if not groups:
        raise ValueError("empty ~imroTbl")
    header = tuple(int(v) for v in groups[0].split(","))
    return header, [tuple(int(v) for v in g.split()) for g in groups[1:]]


def compact_ranges(electrodes: np.ndarray) -> str:
    """Electrode numbers -> '1-192; 385-576' (a lone electrode reads '5-5', as originally)."""
    el = np.unique(np.asarray(electrodes, dtype=np.int64))
    if el.size == 0:
        return ""
    breaks = np.flatnonzero(np.diff(el) > 1)
    starts = np.concatenate([[0], breaks + 1])
    ends = np.concatenate([breaks, [el.size - 1]])
    return "; ".join(f"{el[s]}-{el[e]}" for s, e in zip(starts, ends, strict=True))


@dataclass(frozen=True)
class ElectrodeConfig:
    """A recorded electrode configuration: everything lab.ElectrodeConfig(+parts) needs.

    `electrodes` are 1-based and sorted; `is_used[i]` belongs to `electrodes[i]`. All electrodes
    are in electrode_group 0 (spec §2.2).
    """

    probe_type: str
    name: str
    hash: str
    electrodes: np.ndarray
    is_used: np.ndarray
    electrode_group: int = 0

    def members(self) -> list[dict]:
        """ElectrodeConfig.Electrode rows (without the config name)."""
        return [
            {
                "probe_type": self.probe_type,
                "electrode": int(e),
                "is_used": bool(u),
                "electrode_group": self.electrode_group,
            }
            for e, u in zip(self.electrodes, self.is_used, strict=True)
        ]


def electrode_config_hash(probe_type: str, electrodes: np.ndarray, is_used: np.ndarray) -> str:
    """md5 over str() of the member dicts ordered by electrode (spec §2.2, §1.4).

    Mirrors the original `dict_value_to_hash({electrode: member})` with member dicts
    {'probe_type', 'electrode', 'is_used', 'electrode_group'} of plain Python ints, so the same
    recording gives the same hash as the original pipeline did.
    """
    h = hashlib.md5(usedforsecurity=False)
    order = np.argsort(np.asarray(electrodes), kind="stable")
    for i in order:
        member = {
            "probe_type": probe_type,
            "electrode": int(electrodes[i]),
            "is_used": int(is_used[i]),
            "electrode_group": 0,
        }
        h.update(str(member).encode())
    return h.hexdigest()


def make_electrode_config(
    probe_type: str, electrodes: np.ndarray, is_used: np.ndarray
) -> ElectrodeConfig:
    """Build name + hash for recorded electrodes (1-based). Duplicates are an error."""
    electrodes = np.asarray(electrodes, dtype=np.int64)
    is_used = np.asarray(is_used).astype(bool)
    uniq, counts = np.unique(electrodes, return_counts=True)
    if (counts > 1).any():
        raise ProbeInsertionError(
            None, f"electrode(s) {uniq[counts > 1][:5].tolist()} recorded more than once"
        )
    order = np.argsort(electrodes, kind="stable")
    electrodes, is_used = electrodes[order], is_used[order]
    digest = electrode_config_hash(probe_type, electrodes, is_used.astype(int))
    name = compact_ranges(electrodes)
    if len(name) > CONFIG_NAME_MAX_LEN:
        # Scattered (checkerboard) selections: keep the name unique and within varchar(64).
        n_ranges = name.count(";") + 1
        name = f"{n_ranges} ranges {electrodes[0]}-{electrodes[-1]} #{digest[:8]}"
    electrodes.flags.writeable = False
    is_used.flags.writeable = False
    return ElectrodeConfig(probe_type, name, digest, electrodes, is_used)


@dataclass
class SpikeGLXMeta:
    """A parsed `.ap.meta` file. Use `read_spikeglx_meta(path)` to build one."""

    path: Path
    raw: dict[str, MetaValue]
    shank_map_header: tuple[int, ...] | None = None
    shank_map: np.ndarray | None = None  # (n_sites, 4): shank, col, row, used (0-based)
    chan_map_header: tuple[int, ...] | None = None
    chan_map: list[tuple[str, int, int]] | None = None
    imro_header: tuple[int, ...] | None = None
    imro_table: list[tuple[int, ...]] | None = None
    _errors: dict[str, str] = field(default_factory=dict, repr=False)

    def _fail(self, problem: str) -> ProbeInsertionError:
        return ProbeInsertionError(self.path, problem)

    def get(self, key: str, default: MetaValue | None = None) -> MetaValue | None:
        return self.raw.get(key, default)

    # ---- probe model -------------------------------------------------------------------------
    @cached_property
    def probe_type(self) -> str:
        """Probe model per §2.2; unsupported models raise ProbeInsertionError."""
        prb = self.raw.get("imDatPrb_type", 0)
        if not isinstance(prb, int | float):
            raise self._fail(f"imDatPrb_type={prb!r} is not a number")
        if prb <= 1:
            if "typeEnabled" in self.raw:
                return NP1_3A
            if "typeImEnabled" in self.raw:
                return NP1_3B
            raise self._fail(
                "NP1.0 probe (imDatPrb_type absent or <= 1) but neither typeEnabled (3A) nor "
                "typeImEnabled (3B) is present"
            )
        if prb == 21:
            return NP2_SS
        if prb == 24:
            return NP2_MS
        raise self._fail(
            f"unsupported Neuropixels probe model imDatPrb_type={prb} "
            "(supported: absent/0/1 = NP1.0 3A/3B, 21 = NP2.0 SS, 24 = NP2.0 MS)"
        )

    @property
    def probe_generation(self) -> str:
        """'neuropixels 1.0' or 'neuropixels 2.0' (key of NPX_UV_PER_BIT)."""
        return self.probe_type.split(" - ")[0]

    @property
    def serial_number(self) -> str:
        """lab.Probe.probe: `imProbeSN` (3A) else `imDatPrb_sn` (3B, 2.0)."""
        sn = self.raw.get("imProbeSN", self.raw.get("imDatPrb_sn"))
        if sn is None or str(sn).strip() == "":
            raise self._fail("no probe serial number (neither imProbeSN nor imDatPrb_sn)")
        return str(sn).strip()

    @property
    def sampling_rate(self) -> float:
        """AP sampling rate `imSampRate` in Hz (must be present and > 0)."""
        rate = self.raw.get("imSampRate")
        if rate is None:
            raise self._fail("imSampRate (AP sampling rate) is missing")
        if not isinstance(rate, int | float) or not np.isfinite(rate) or rate <= 0:
            raise self._fail(f"imSampRate={rate!r} is not a positive sampling rate")
        return float(rate)

    @property
    def recording_time(self) -> datetime:
        """`fileCreateTime_original` else `fileCreateTime` (naive local time of the rig)."""
        value = self.raw.get("fileCreateTime_original", self.raw.get("fileCreateTime"))
        if value is None:
            raise self._fail("neither fileCreateTime_original nor fileCreateTime is present")
        try:
            return datetime.strptime(str(value), RECORDING_TIME_FORMAT)
        except ValueError:
            raise self._fail(f"fileCreateTime {value!r} is not {RECORDING_TIME_FORMAT}") from None

    @property
    def pretrigger_margin_samples(self) -> int:
        """SpikeGLX pre-trigger margin `round(trgTTLMarginS * imSampRate)` (0 when absent)."""
        margin = self.raw.get("trgTTLMarginS")
        if margin in (None, ""):
            return 0
        if not isinstance(margin, int | float):
            raise self._fail(f"trgTTLMarginS={margin!r} is not a number")
        return int(round(float(margin) * self.sampling_rate))

    @property
    def n_saved_channels(self) -> int:
        n = self.raw.get("nSavedChans")
        if not isinstance(n, int) or n <= 0:
            raise self._fail(f"nSavedChans={n!r} is not a positive integer")
        return n

    # ---- recorded sites ------------------------------------------------------------------------
    def _require_shank_map(self) -> np.ndarray:
        if self.shank_map is None:
            extra = (
                " (this file has ~snsGeomMap, written by SpikeGLX >= 2023; not supported yet)"
                if "~snsGeomMap" in self.raw
                else ""
            )
            raise self._fail(f"~snsShankMap is missing{extra}")
        if "~snsShankMap" in self._errors:
            raise self._fail(self._errors["~snsShankMap"])
        return self.shank_map

    @cached_property
    def site_electrodes(self) -> np.ndarray:
        """1-based electrode number of each recorded site (index = site - 1), from the shank map."""
        sm = self._require_shank_map()
        try:
            return electrode_numbers(self.probe_type, sm[:, 0] + 1, sm[:, 1] + 1, sm[:, 2] + 1)
        except ProbeInsertionError as exc:
            raise self._fail(f"~snsShankMap: {exc.problem}") from None

    @property
    def site_is_used(self) -> np.ndarray:
        """`used` flag of each recorded site (bool), from the shank map."""
        return self._require_shank_map()[:, 3].astype(bool)

    def sites_to_electrodes(self, sites: np.ndarray) -> np.ndarray:
        """Map 1-based recorded sites (spike/peak sites) to 1-based electrode numbers."""
        sites = np.asarray(sites, dtype=np.int64)
        table = self.site_electrodes
        bad = (sites < 1) | (sites > table.size)
        if bad.any():
            raise self._fail(
                f"site {int(sites[bad][0])} is outside the {table.size} recorded sites "
                "of ~snsShankMap"
            )
        return table[sites - 1]

    @cached_property
    def electrode_config(self) -> ElectrodeConfig:
        """The ElectrodeConfig of this recording (name, md5 hash, members)."""
        try:
            return make_electrode_config(self.probe_type, self.site_electrodes, self.site_is_used)
        except ProbeInsertionError as exc:
            raise self._fail(exc.problem) from None

    # ---- µV conversion -------------------------------------------------------------------------
    def uv_per_bit(self, band: str = "ap") -> np.ndarray:
        """µV per bit of each AP (or LF) channel: Vmax / Imax / gain × 1e6 (spec §14.7)."""
        if band not in ("ap", "lf"):
            raise ValueError(f"band must be 'ap' or 'lf', not {band!r}")
        vmax = self.raw.get("imAiRangeMax")
        if not isinstance(vmax, int | float) or vmax <= 0:
            raise self._fail(f"imAiRangeMax={vmax!r} is not a positive voltage")
        imax = IMAX[self.probe_type]
        n_sites = self._require_shank_map().shape[0]
        if "imDatPrb_dock" in self.raw or self.probe_type in (NP2_SS, NP2_MS):
            gains = np.full(n_sites, NP2_AP_GAIN, dtype=np.float64)
        else:
            if not self.imro_table:
                raise self._fail("~imroTbl is missing; NP1.0 gains come from it")
            col = 3 if band == "ap" else 4
            try:
                gains = np.array([row[col] for row in self.imro_table], dtype=np.float64)
            except IndexError:
                raise self._fail(f"~imroTbl entries have no column {col} (gain)") from None
            if gains.size != n_sites:
                raise self._fail(
                    f"~imroTbl has {gains.size} channels but ~snsShankMap has {n_sites}"
                )
            if (gains <= 0).any():
                raise self._fail("~imroTbl has a non-positive gain")
        return float(vmax) / imax / gains * 1e6

    @property
    def template_uv_per_bit(self) -> float:
        """Constant µV/bit used for Kilosort template amplitudes (2.34375 NP1.0, 0.763 NP2.0)."""
        return NPX_UV_PER_BIT[self.probe_generation]


def read_spikeglx_meta(path: str | PathLike[str]) -> SpikeGLXMeta:
    """Read and parse a SpikeGLX `.meta` file (structures parsed; derived values are lazy)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        raise SpikeGLXMetaNotFoundError(path, "SpikeGLX meta file does not exist") from None
    except OSError as exc:
        raise ProbeInsertionError(path, f"cannot read SpikeGLX meta file: {exc}") from None
    raw = parse_meta_text(text)
    if not raw:
        raise ProbeInsertionError(path, "no key=value lines: not a SpikeGLX meta file")
    meta = SpikeGLXMeta(path=path, raw=raw)
    for key, parser, attrs in (
        ("~snsShankMap", parse_shank_map, ("shank_map_header", "shank_map")),
        ("~snsChanMap", parse_chan_map, ("chan_map_header", "chan_map")),
        ("~imroTbl", parse_imro_table, ("imro_header", "imro_table")),
    ):
        if key in raw:
            try:
                header, body = parser(str(raw[key]))
            except (ValueError, IndexError) as exc:
                meta._errors[key] = f"cannot parse {key}: {exc}"
                if key == "~snsShankMap":
                    meta.shank_map = np.empty((0, 4), dtype=np.int64)
                continue
            setattr(meta, attrs[0], header)
            setattr(meta, attrs[1], body)
    return meta


def read_ap_bin(meta: SpikeGLXMeta, bin_path: str | PathLike[str] | None = None) -> np.memmap:
    """Memory-map the `.ap.bin` next to the meta as int16 (n_samples, nSavedChans).

    The file size must equal `fileSizeBytes` (else the file is "corrupted or in transfer").
    """
    bin_path = Path(bin_path) if bin_path else meta.path.with_suffix(".bin")
    if not bin_path.exists():
        raise EphysIngestError(bin_path, "raw SpikeGLX .bin file does not exist")
    size = bin_path.stat().st_size
    expected = meta.raw.get("fileSizeBytes")
    if expected is not None and size != expected:
        raise EphysIngestError(
            bin_path,
            f"file size {size} B differs from fileSizeBytes={expected} in {meta.path.name}: "
            "corrupted or in transfer?",
        )
    n_chan = meta.n_saved_channels
    if size % (2 * n_chan):
        raise EphysIngestError(bin_path, f"size {size} B is not a multiple of {n_chan} int16")
    return np.memmap(bin_path, dtype=np.int16, mode="r", shape=(size // (2 * n_chan), n_chan))


def probe_sites_count(probe_type: str) -> int:
    """Number of electrodes on a probe type (all shanks)."""
    lay = probe_layout(probe_type)
    return lay.site_count * lay.shank_count
