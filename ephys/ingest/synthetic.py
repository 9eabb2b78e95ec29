"""Seeded generator of a synthetic sorted ephys session that is consistent with a behavior
session, laid out so `discovery` finds it and the loaders read it back.

Default layout (CatGT):
    {root}/{h2o}/catgt_{YYYYMMDD}_g0/{YYYYMMDD}_{h2o}_g0_imec{k}/
        {YYYYMMDD}_{h2o}_g0_tcat.imec{k}.ap.meta
        {h2o}_{YYYYMMDD}_g0_imec{k}_bitcode.mat     (sTrig, goCue, bitCodeS[, trialNum])
        imec{k}_ks2/  spike_times.npy (uint64, (N, 1)), spike_clusters.npy, spike_templates.npy,
                      templates.npy, amplitudes.npy, channel_map.npy, channel_positions.npy,
                      whitening_mat(_inv).npy, params.py, cluster_KSLabel.tsv,
                      cluster_group.tsv [, metrics.csv, mean_waveforms.npy, pc_features.npy]
`layout='glob'` and `layout='date'` produce the other two §14.3 layouts.

The returned `SyntheticSession` carries the ground truth the DB layer should end up storing,
e.g. `unit_spike_times(u)` = Unit.spike_times (s from the first aligned trial start).
10 M spikes / 400 units generate in a few seconds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from os import PathLike
from pathlib import Path

import numpy as np
import scipy.io as sio

from .geometry import NP1_3A, NP1_3B, NP2_SS, neuropixels_electrodes, probe_layout
from .spikeglx import NPX_UV_PER_BIT

N_TEMPLATE_SAMPLES = 82
TEMPLATE_HALF = N_TEMPLATE_SAMPLES // 2


@dataclass
class BehaviorTrials:
    """What the behavior side provides: trial numbers, start times (s from session start),
    go-cue offsets (s from trial start; NaN = free-water trial, no go cue) and bitcodes."""

    trial_numbers: np.ndarray
    start_times: np.ndarray
    go_offsets: np.ndarray
    bitcodes: list[str]

    @classmethod
    def from_lists(
        cls,
        start_times: Sequence[float],
        go_offsets: Sequence[float | None],
        bitcodes: Sequence[str],
        trial_numbers: Sequence[int] | None = None,
    ) -> BehaviorTrials:
        n = len(start_times)
        if not (len(go_offsets) == len(bitcodes) == n):
            raise ValueError("start_times, go_offsets and bitcodes must have the same length")
        tn = np.arange(1, n + 1) if trial_numbers is None else np.asarray(trial_numbers)
        go = np.array([np.nan if g is None else float(g) for g in go_offsets])
        return cls(tn.astype(np.int64), np.asarray(start_times, float), go, list(bitcodes))

    @property
    def bitcode_map(self) -> dict[int, str]:
        return dict(zip(self.trial_numbers.tolist(), self.bitcodes, strict=True))

    @property
    def free_water_trials(self) -> list[int]:
        return self.trial_numbers[np.isnan(self.go_offsets)].tolist()


def random_bitcodes(n: int, rng: np.random.Generator, n_bits: int = 16) -> list[str]:
    """n distinct random bit strings (like Bpod's GUI.randomID)."""
    if n > 2**n_bits:
        raise ValueError("more trials than distinct codes")
    values = rng.choice(2**n_bits, size=n, replace=False)
    return [format(int(v), f"0{n_bits}b") for v in values]


def make_behavior_trials(
    n_trials: int, seed: int = 0, *, iti_s: float = 8.0, free_water: Sequence[int] = ()
) -> BehaviorTrials:
    """A stand-in for the behavior generator: jittered starts, go 2.5-3.5 s after start."""
    rng = np.random.default_rng(seed)
    starts = np.cumsum(rng.uniform(0.8 * iti_s, 1.2 * iti_s, n_trials)) + 1.0
    go = rng.uniform(2.5, 3.5, n_trials)
    tn = np.arange(1, n_trials + 1)
    go[np.isin(tn, list(free_water))] = np.nan
    return BehaviorTrials(tn, starts, go, random_bitcodes(n_trials, rng))


@dataclass
class SyntheticSession:
    """Paths written and the ground truth of one synthetic probe recording."""

    root: Path
    h2o: str
    session_datetime: datetime
    session_dir: Path
    probe_dir: Path
    probe_number: int
    meta_path: Path
    ks_dir: Path
    bitcode_path: Path
    probe_type: str
    sampling_rate: float
    uv_per_bit: float
    margin_samples: int
    # per spike, file order (time-sorted)
    spike_samples: np.ndarray
    spike_clusters: np.ndarray
    # per unit with spikes (ascending ids)
    unit_ids: np.ndarray
    unit_quality: np.ndarray  # normalised (good / multi)
    unit_label_raw: np.ndarray  # as in cluster_KSLabel.tsv (good / mua)
    unit_peak_channel: np.ndarray  # 0-based channel (channel_map value)
    unit_posx: np.ndarray
    unit_posy: np.ndarray
    unit_amp: np.ndarray  # µV, template rule (without metrics.csv)
    unit_waveform: np.ndarray  # µV, scaled unwhitened template at the peak channel
    noise_labels: dict[int, str]
    empty_label_ids: np.ndarray  # labelled clusters without spikes
    # trials
    ephys_trial_starts: np.ndarray  # sTrig as written (samples)
    ephys_go_cues: np.ndarray  # per ephys trial (samples), NaN for free water
    ephys_bitcodes: list[str]
    ephys_behavior_trials: np.ndarray  # behavior trial of each ephys trial (-1: no behavior)
    behavior: BehaviorTrials
    metrics_amp: np.ndarray | None = None  # metrics.csv amplitude per unit
    metrics_snr: np.ndarray | None = None  # metrics.csv snr per unit (as written)
    spike_depths: np.ndarray | None = None  # only when pc_features were written (file order)
    extra: dict = field(default_factory=dict)

    @property
    def first_trial_start(self) -> float:
        """First aligned trial start in samples, margin subtracted (Unit.spike_times zero)."""
        return float(self.ephys_trial_starts[0] - self.margin_samples)

    @property
    def spike_unit_sites(self) -> np.ndarray:
        """1-based peak site per unit."""
        return self.unit_peak_channel + 1

    def unit_spike_samples(self, unit_id: int) -> np.ndarray:
        return self.spike_samples[self.spike_clusters == unit_id]

    def unit_spike_times(self, unit_id: int) -> np.ndarray:
        """Unit.spike_times: s relative to the first trial start (spec §14.6 step 5)."""
        return (self.unit_spike_samples(unit_id) - self.first_trial_start) / self.sampling_rate


def _channel_geometry(probe_type: str, n_channels: int) -> np.ndarray:
    """(n_channels, 4) 0-based shank, col, row, used for a bank-0-like selection."""
    lay = probe_layout(probe_type)
    ch = np.arange(n_channels)
    if lay.shank_count > 1:
        per = math.ceil(n_channels / lay.shank_count)
        shank, within = ch // per, ch % per
    else:
        shank, within = np.zeros_like(ch), ch
    col, row = within % 2, within // 2
    used = np.ones_like(ch)
    if probe_type in (NP1_3A, NP1_3B) and n_channels > 191:
        used[191] = 0  # NP1.0 internal reference channel
    return np.stack([shank, col, row, used], axis=1)


def _meta_text(
    probe_type: str,
    geo: np.ndarray,
    fs: float,
    n_samples: int,
    created: datetime,
    serial: str,
    margin_s: float,
) -> str:
    n = geo.shape[0]
    lay = probe_layout(probe_type)
    lines = {
        "acqApLfSy": f"{n},0,1",
        "appVersion": "20190327",
        "fileCreateTime": created.strftime("%Y-%m-%dT%H:%M:%S"),
        "fileName": "synthetic.ap.bin",
        "fileSizeBytes": str(n_samples * (n + 1) * 2),
        "fileTimeSecs": f"{n_samples / fs:.6f}",
        "firstSample": "0",
        "imAiRangeMax": "0.6" if probe_type in (NP1_3A, NP1_3B) else "0.62",
        "imAiRangeMin": "-0.6" if probe_type in (NP1_3A, NP1_3B) else "-0.62",
        "imSampRate": f"{fs:g}",
        "nSavedChans": str(n + 1),
        "snsApLfSy": f"{n},0,1",
        "snsSaveChanSubset": "all",
        "typeThis": "imec",
    }
    if margin_s:
        lines["trgTTLMarginS"] = f"{margin_s:g}"
    if probe_type == NP1_3A:
        lines |= {"typeEnabled": "imec", "imProbeSN": serial}
        imro = f"(0,{n})" + "".join(f"({i} 0 0 500 250)" for i in range(n))
    elif probe_type == NP1_3B:
        lines |= {"typeImEnabled": "1", "imDatPrb_type": "0", "imDatPrb_sn": serial}
        imro = f"(0,{n})" + "".join(f"({i} 0 0 500 250 1)" for i in range(n))
    else:
        code = 21 if probe_type == NP2_SS else 24
        lines |= {"imDatPrb_type": str(code), "imDatPrb_sn": serial, "imDatPrb_dock": "1"}
        imro = f"({code},{n})" + "".join(
            f"({i} {g[0]} 0 0 {g[2] * 2 + g[1]})" for i, g in enumerate(geo)
        )
    lines["~imroTbl"] = imro
    lines["~snsChanMap"] = (
        f"({n},0,1)" + "".join(f"(AP{i};{i}:{i})" for i in range(n)) + f"(SY0;{n}:{n})"
    )
    lines["~snsShankMap"] = f"({lay.shank_count},2,{lay.row_count})" + "".join(
        f"({s}:{c}:{r}:{u})" for s, c, r, u in geo
    )
    return "".join(f"{k}={v}\n" for k, v in lines.items())


def _layout_paths(
    root: Path, h2o: str, when: datetime, layout: str, k: int
) -> tuple[Path, Path, str]:
    ymd = when.strftime("%Y%m%d")
    subject = root / h2o
    if layout == "catgt":
        session_dir = subject / f"catgt_{ymd}_g0"
        probe_dir = session_dir / f"{ymd}_{h2o}_g0_imec{k}"
        meta_name = f"{ymd}_{h2o}_g0_tcat.imec{k}.ap.meta"
    elif layout == "glob":
        session_dir = subject / f"{h2o}_{ymd}_g0"
        probe_dir = session_dir / f"{h2o}_{ymd}_g0_imec{k}"
        meta_name = f"{h2o}_{ymd}_g0_tcat.imec{k}.ap.meta"
    elif layout == "date":
        session_dir = subject / ymd
        probe_dir = session_dir / str(k + 1)
        meta_name = f"{h2o}_{ymd}_g0_tcat.imec{k}.ap.meta"
    else:
        raise ValueError(f"layout must be 'catgt', 'glob' or 'date', not {layout!r}")
    return session_dir, probe_dir, meta_name


def _write_tsv(path: Path, column: str, ids: np.ndarray, values: Sequence[str]) -> None:
    body = "".join(f"{i}\t{v}\n" for i, v in zip(ids.tolist(), values, strict=True))
    path.write_text(f"cluster_id\t{column}\n{body}")


def make_synthetic_session(
    root: str | PathLike[str],
    *,
    h2o: str = "SC022",
    session_datetime: datetime = datetime(2019, 3, 3, 10, 0, 0),
    trials: BehaviorTrials | None = None,
    n_units: int = 400,
    n_spikes: int = 10_000_000,
    n_channels: int = 384,
    probe_type: str = NP1_3B,
    sampling_rate: float = 30000.0,
    seed: int = 0,
    probe_index: int = 0,
    layout: str = "catgt",
    n_empty_labels: int = 5,
    ephys_first_trial: int = 0,
    extra_ephys_trials: int = 0,
    lead_s: float = 3.0,
    margin_s: float = 0.0,
    recording_offset_s: float = 5.0,
    with_metrics: bool = False,
    with_pc_features: bool = False,
    write_raw: bool = False,
    raw_noise_bits: float = 2.0,
    write_trial_num: bool = False,
    serial: str = "18005117162",
) -> SyntheticSession:
    """Write one probe's sorted session and return its ground truth (see module docstring).

    `trials` are the behavior trials (default: 50 from make_behavior_trials(seed)); ephys
    records behavior trials `ephys_first_trial:` plus `extra_ephys_trials` unknown trials at the
    end (ephys running longer). Trial starts are on the AP clock with the first recorded trial
    `lead_s` after the recording starts. `n_empty_labels` labelled templates get no spikes.
    `with_pc_features` / `write_raw` write large files: use them with small sessions only.
    """
    rng = np.random.default_rng(seed)
    root = Path(root)
    trials = trials if trials is not None else make_behavior_trials(50, seed)
    fs = float(sampling_rate)
    session_dir, probe_dir, meta_name = _layout_paths(
        root, h2o, session_datetime, layout, probe_index
    )
    ks_dir = probe_dir / f"imec{probe_index}_ks2"
    ks_dir.mkdir(parents=True, exist_ok=True)

    # ---- trials on the AP clock
    b_idx = np.arange(ephys_first_trial, trials.trial_numbers.size)
    rel_s = trials.start_times[b_idx] - trials.start_times[b_idx[0]] + lead_s
    go_rel = trials.go_offsets[b_idx]
    codes = [trials.bitcodes[i] for i in b_idx]
    ephys_trials = trials.trial_numbers[b_idx]
    if extra_ephys_trials:
        step = float(np.median(np.diff(trials.start_times))) if trials.start_times.size > 1 else 8.0
        extra_t = rel_s[-1] + step * np.arange(1, extra_ephys_trials + 1)
        rel_s = np.concatenate([rel_s, extra_t])
        go_rel = np.concatenate([go_rel, np.full(extra_ephys_trials, 3.0)])
        known = set(trials.bitcodes)
        extra_codes = [
            c for c in random_bitcodes(extra_ephys_trials + len(known), rng) if c not in known
        ]
        codes += extra_codes[:extra_ephys_trials]
        ephys_trials = np.concatenate([ephys_trials, np.full(extra_ephys_trials, -1)])
    starts = np.round(rel_s * fs)
    go = np.round((rel_s + go_rel) * fs)  # NaN stays NaN for free-water trials
    tail_s = max(10.0, float(np.nanmax(go_rel)) + 5.0 if np.isfinite(go_rel).any() else 10.0)
    n_samples = int(math.ceil((rel_s[-1] + tail_s) * fs))
    margin_samples = int(round(margin_s * fs))

    # ---- geometry, channels
    geo = _channel_geometry(probe_type, n_channels)
    elec = neuropixels_electrodes(probe_type)
    lay = probe_layout(probe_type)
    e_index = geo[:, 0] * lay.site_count + geo[:, 2] * 2 + geo[:, 1]
    positions = np.stack([elec["x_coord"][e_index], elec["y_coord"][e_index]], axis=1)

    # ---- units and spikes
    n_templates = n_units + n_empty_labels
    unit_ids = np.sort(rng.choice(n_templates, size=n_units, replace=False)).astype(np.int64)
    empty_ids = np.setdiff1d(np.arange(n_templates), unit_ids)
    weights = rng.lognormal(0.0, 1.0, n_units)
    counts = rng.multinomial(n_spikes - n_units, weights / weights.sum()) + 1
    gaps = rng.exponential(1.0, n_spikes)
    t = np.cumsum(gaps)
    t *= (n_samples - 2 * TEMPLATE_HALF - 1) / t[-1]
    spike_samples = t.astype(np.int64) + TEMPLATE_HALF
    del gaps, t
    dense = np.repeat(np.arange(n_units, dtype=np.uint16 if n_units < 65535 else np.int64), counts)
    rng.shuffle(dense)
    spike_clusters = unit_ids[dense].astype(np.int32)
    unit_mean_amp = rng.uniform(10.0, 40.0, n_units)
    amplitudes = (unit_mean_amp[dense] * rng.lognormal(0.0, 0.1, n_spikes)).astype(np.float32)

    # ---- templates (whitened space) and whitening
    peak_ch_t = rng.integers(0, n_channels, n_templates)
    s = np.arange(N_TEMPLATE_SAMPLES)
    shape = -np.exp(-(((s - TEMPLATE_HALF) / 3.0) ** 2)) + 0.35 * np.exp(
        -(((s - TEMPLATE_HALF - 10) / 6.0) ** 2)
    )
    dist = np.linalg.norm(positions[peak_ch_t][:, None, :] - positions[None, :, :], axis=2)
    spatial = np.exp(-dist / 40.0)  # 1 at the peak channel, < 1 elsewhere
    templates = (shape[None, :, None] * spatial[:, None, :]).astype(np.float32)
    wdiag = rng.uniform(0.8, 1.2, n_channels)
    whitening_mat_inv = np.diag(wdiag)
    uv = NPX_UV_PER_BIT[probe_type.split(" - ")[0]]

    # ---- labels
    all_ids = np.arange(n_templates)
    ks_label = np.where(rng.random(n_templates) < 0.4, "good", "mua")
    noise = np.where(rng.random(n_templates) < 0.1, "noise", "good")

    # ---- write the phy folder
    np.save(ks_dir / "spike_times.npy", spike_samples.astype(np.uint64).reshape(-1, 1))
    np.save(ks_dir / "spike_clusters.npy", spike_clusters)
    np.save(ks_dir / "spike_templates.npy", spike_clusters.astype(np.uint32))
    np.save(ks_dir / "amplitudes.npy", amplitudes.reshape(-1, 1))
    np.save(ks_dir / "templates.npy", templates)
    np.save(ks_dir / "channel_map.npy", np.arange(n_channels, dtype=np.int32).reshape(-1, 1))
    np.save(ks_dir / "channel_positions.npy", positions.astype(np.float32))
    np.save(ks_dir / "whitening_mat_inv.npy", whitening_mat_inv)
    np.save(ks_dir / "whitening_mat.npy", np.diag(1.0 / wdiag))
    np.save(ks_dir / "similar_templates.npy", np.eye(n_templates, dtype=np.float32))
    ap_name = meta_name.replace(".meta", ".bin")
    (ks_dir / "params.py").write_text(
        f"dat_path = r'../{ap_name}'\nn_channels_dat = {n_channels + 1}\ndtype = 'int16'\n"
        f"offset = 0\nsample_rate = {fs}\nhp_filtered = False\n"
    )
    _write_tsv(ks_dir / "cluster_KSLabel.tsv", "KSLabel", all_ids, ks_label.tolist())
    _write_tsv(ks_dir / "cluster_group.tsv", "group", all_ids, noise.tolist())
    _write_tsv(
        ks_dir / "cluster_ContamPct.tsv",
        "ContamPct",
        all_ids,
        [f"{v:.1f}" for v in rng.uniform(0, 50, n_templates)],
    )

    # ---- ground truth per unit (template rule)
    peak = peak_ch_t[unit_ids]
    unit_wf = (
        shape[None, :]
        * wdiag[peak][:, None]
        * (np.bincount(dense, weights=amplitudes.astype(np.float64), minlength=n_units) / counts)[
            :, None
        ]
        * uv
    )
    unit_amp = unit_wf.max(axis=1) - unit_wf.min(axis=1)

    session = SyntheticSession(
        root=root,
        h2o=h2o,
        session_datetime=session_datetime,
        session_dir=session_dir,
        probe_dir=probe_dir,
        probe_number=probe_index + 1,
        meta_path=probe_dir / meta_name,
        ks_dir=ks_dir,
        bitcode_path=probe_dir
        / f"{h2o}_{session_datetime:%Y%m%d}_g0_imec{probe_index}_bitcode.mat",
        probe_type=probe_type,
        sampling_rate=fs,
        uv_per_bit=uv,
        margin_samples=margin_samples,
        spike_samples=spike_samples,
        spike_clusters=spike_clusters.astype(np.int64),
        unit_ids=unit_ids,
        unit_quality=np.where(ks_label[unit_ids] == "mua", "multi", ks_label[unit_ids]),
        unit_label_raw=ks_label[unit_ids],
        unit_peak_channel=peak.astype(np.int64),
        unit_posx=positions[peak, 0],
        unit_posy=positions[peak, 1],
        unit_amp=unit_amp,
        unit_waveform=unit_wf,
        noise_labels={int(u): str(noise[u]) for u in unit_ids},
        empty_label_ids=empty_ids.astype(np.int64),
        ephys_trial_starts=starts,
        ephys_go_cues=go,
        ephys_bitcodes=codes,
        ephys_behavior_trials=ephys_trials,
        behavior=trials,
    )

    if with_metrics:
        _write_metrics(session, rng, ks_dir, n_channels, shape, peak)
    if with_pc_features:
        session.spike_depths = _write_pc_features(
            ks_dir, rng, spike_clusters, peak_ch_t, positions, n_templates
        )

    # ---- meta, bitcode, raw
    created = session_datetime + timedelta(seconds=recording_offset_s)
    session.meta_path.write_text(
        _meta_text(probe_type, geo, fs, n_samples, created, serial, margin_s)
    )
    mat = {
        "sTrig": starts.astype(np.float64),
        "goCue": go[np.isfinite(go)].astype(np.float64),
        "bitCodeS": np.array(codes),
    }
    if write_trial_num:
        mat["trialNum"] = ephys_trials.astype(np.float64)
    sio.savemat(session.bitcode_path, mat)
    if write_raw:
        _write_raw(
            session, n_samples, n_channels, templates, wdiag, amplitudes, dense, rng, raw_noise_bits
        )
    return session


def _write_metrics(
    session: SyntheticSession,
    rng: np.random.Generator,
    ks_dir: Path,
    n_channels: int,
    shape: np.ndarray,
    peak: np.ndarray,
) -> None:
    from .phy import CLUSTER_METRIC_COLUMNS, WAVEFORM_METRIC_COLUMNS

    n = session.unit_ids.size
    amp = rng.uniform(50, 300, n)
    snr = rng.uniform(1, 10, n)
    if n >= 3:
        snr[0], snr[1] = np.inf, np.nan
    cols = ["", "cluster_id", "firing_rate", "isi_viol", "peak_channel", "amplitude", "snr"]
    cols += list(CLUSTER_METRIC_COLUMNS) + ["epoch_name_quality_metrics"]
    cols += list(WAVEFORM_METRIC_COLUMNS) + ["epoch_name_waveform_metrics"]
    lines = [",".join(cols)]
    # rows in a shuffled order: the loader must match by cluster_id
    order = rng.permutation(n)
    extra = rng.uniform(0, 1, (n, len(CLUSTER_METRIC_COLUMNS) + len(WAVEFORM_METRIC_COLUMNS)))
    for row, i in enumerate(order):
        vals = [
            str(row),
            str(session.unit_ids[i]),
            f"{rng.uniform(0.5, 20):.6g}",
            f"{rng.uniform(0, 1):.6g}",
        ]
        vals += [str(peak[i]), repr(float(amp[i])), repr(float(snr[i]))]
        k = len(CLUSTER_METRIC_COLUMNS)
        vals += [f"{v:.6g}" for v in extra[i, :k]] + ["complete_session"]
        vals += [f"{v:.6g}" for v in extra[i, k:]] + ["complete_session"]
        lines.append(",".join(vals))
    (ks_dir / "metrics.csv").write_text("\n".join(lines) + "\n")
    # mean_waveforms.npy: one row per metrics.csv row, all saved channels (+ sync), µV
    mw = np.zeros((n, n_channels + 1, N_TEMPLATE_SAMPLES), dtype=np.float32)
    scale = rng.uniform(50, 150, n)
    mw[np.arange(n), peak[order], :] = shape[None, :] * scale[order][:, None]
    np.save(ks_dir / "mean_waveforms.npy", mw)
    session.metrics_amp = amp
    session.metrics_snr = snr
    session.extra["metrics_waveform"] = shape[None, :] * scale[:, None]
    session.extra["metrics_order"] = order


def _write_pc_features(
    ks_dir: Path,
    rng: np.random.Generator,
    spike_clusters: np.ndarray,
    peak_ch_t: np.ndarray,
    positions: np.ndarray,
    n_templates: int,
) -> np.ndarray:
    n_chan = positions.shape[0]
    k = min(8, n_chan)
    d = np.linalg.norm(positions[peak_ch_t][:, None, :] - positions[None, :, :], axis=2)
    ind = np.argsort(d, axis=1, kind="stable")[:, :k].astype(np.int64)
    n = spike_clusters.size
    pcs = rng.normal(0.0, 1.0, (n, 3, k)).astype(np.float32)
    pcs[:, 0, :] = np.abs(pcs[:, 0, :]) + 0.1  # positive first PC
    pcs[: min(5, n), 0, :3] *= -1  # some negative values (clipped to 0 by the rule)
    np.save(ks_dir / "pc_features.npy", pcs)
    np.save(ks_dir / "pc_feature_ind.npy", ind.astype(np.uint32))
    f = np.maximum(pcs[:, 0, :].astype(np.float64), 0) ** 2
    y = positions[ind[spike_clusters], 1]
    return (y * f).sum(axis=1) / f.sum(axis=1)


def _write_raw(
    session: SyntheticSession,
    n_samples: int,
    n_channels: int,
    templates: np.ndarray,
    wdiag: np.ndarray,
    amplitudes: np.ndarray,
    dense: np.ndarray,
    rng: np.random.Generator,
    noise_bits: float,
) -> None:
    """Raw int16 (n_samples, n_channels + 1): noise + each spike's unwhitened template × amp."""
    data = rng.normal(0.0, noise_bits, (n_samples, n_channels + 1))
    data[:, -1] = 0
    rel = np.arange(N_TEMPLATE_SAMPLES) - TEMPLATE_HALF
    unit_tmpl = templates[session.unit_ids] * wdiag[None, None, :]
    for j in range(session.spike_samples.size):
        s0 = session.spike_samples[j]
        data[s0 + rel, :n_channels] += unit_tmpl[dense[j]] * amplitudes[j]
    raw = np.round(data).astype(np.int16)
    raw.tofile(session.meta_path.with_suffix(".bin"))
    session.extra["raw_noise_bits"] = noise_bits


def write_ni_bitcode_files(
    folder: str | PathLike[str],
    trial_starts_s: Sequence[float],
    bitcodes: Sequence[str],
    *,
    stem: str = "synthetic_g0_tcat.nidq",
    adj: bool = True,
    first_bit_s: float = 0.05,
    bit_interval_s: float = 0.007,
    jitter_s: float = 0.0,
    seed: int = 0,
) -> tuple[Path, Path]:
    """Write SpikeGLX NI text files: trial starts (XA_0_0) and one pulse per 1-bit (XA_1_2)."""
    rng = np.random.default_rng(seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    suffix = ".adj.txt" if adj else ".txt"
    pulses = []
    for t0, code in zip(trial_starts_s, bitcodes, strict=True):
        for i, bit in enumerate(code):
            if bit == "1":
                pulses.append(
                    t0 + first_bit_s + i * bit_interval_s + rng.uniform(-jitter_s, jitter_s)
                )
    start_file = folder / f"{stem}.XA_0_0{suffix}"
    bit_file = folder / f"{stem}.XA_1_2{suffix}"
    start_file.write_text("".join(f"{t:.6f}\n" for t in trial_starts_s))
    bit_file.write_text("".join(f"{t:.6f}\n" for t in pulses))
    return start_file, bit_file
