"""Kilosort2 / pykilosort2.5 output in phy format (spec §14.4), loaded into a SortingResult.

Policies (also in docs of `load_phy`):

- Spike times: `spike_times_sec_adj.npy` > `spike_times_sec.npy` > `spike_times.npy`; seconds
  are converted to samples with the sampling rate (params.py `sample_rate`, else the meta's
  `imSampRate`). uint64 and (N, 1) arrays are accepted. A float `spike_times.npy` with
  fractional values is taken as seconds (the original's heuristic).
- Unit quality labels: `cluster_groups.csv` (phy 1) > `cluster_KSLabel.tsv` > `cluster_group.tsv`
  (phy 2 / spikeinterface exports), unless `label_file=` names one. 'mua' -> 'multi',
  'unsorted'/'noise'/empty/unknown -> 'all' (the raw label is kept in `unit_label_raw`).
  Labelled clusters with no spikes are dropped (`dropped_label_ids`); clusters with spikes but
  no label row get 'all' (`unlabelled_units`). No label file at all -> ClusteringFileError.
- Noise labels (ephys.UnitNoiseLabel): `cluster_group.tsv` when its columns are exactly
  cluster_id, group; only 'good'/'noise' values are kept.
- Curation notes (ephys.UnitNote): every other two-column `cluster_<source>.tsv`.
- With `metrics.csv` (ecephys QC): peak channel, amplitude (µV, unscaled) and SNR (inf/NaN -> 0)
  from it; x/y from channel_positions at the peak; waveform from `mean_waveforms.npy`.
- Without it: each unit's template is its most frequent spike template; peak channel =
  argmax |template|; amplitude = peak-to-peak of the unwhitened template (× whitening_mat_inv
  when present) at the peak channel × mean spike amplitude × µV/bit (2.34375 NP1.0 /
  0.763 NP2.0). Waveform and SNR from the raw `.ap.bin` next to the meta when available (500
  random spikes, seeded); otherwise the waveform is the scaled template (an estimate) and the
  SNR is NaN.
- Spike site = peak channel of the spike's template; spike depth = centre of mass of channel y
  weighted by squared non-negative 1st-PC features when `pc_features.npy` is present, else the
  y of the template's peak channel.
"""

from __future__ import annotations

import ast
import csv
from os import PathLike
from pathlib import Path

import numpy as np

from .errors import ClusteringFileError, ClusteringFileNotFoundError, ClusterMetricError
from .sorting import (
    SortingResult,
    clustering_info,
    group_by_unit,
    normalize_label,
)
from .spikeglx import SpikeGLXMeta, read_ap_bin

SPIKE_TIME_FILES = ("spike_times_sec_adj.npy", "spike_times_sec.npy", "spike_times.npy")
LABEL_FILES = ("cluster_groups.csv", "cluster_KSLabel.tsv", "cluster_group.tsv")
#: cluster_*.tsv files that are not curation notes.
NON_NOTE_CLUSTER_FILES = {
    "cluster_Amplitude.tsv",
    "cluster_ContamPct.tsv",
    "cluster_group.tsv",
    "cluster_KSLabel.tsv",
    "cluster_info.tsv",
    "cluster_channel_group.tsv",
    "cluster_si_unit_ids.tsv",
}

CLUSTER_METRIC_COLUMNS = (
    "presence_ratio",
    "amplitude_cutoff",
    "isolation_distance",
    "l_ratio",
    "d_prime",
    "nn_hit_rate",
    "nn_miss_rate",
    "silhouette_score",
    "max_drift",
    "cumulative_drift",
)
WAVEFORM_METRIC_COLUMNS = (
    "duration",
    "halfwidth",
    "pt_ratio",
    "repolarization_slope",
    "recovery_slope",
    "spread",
    "velocity_above",
    "velocity_below",
)
EPOCH_COLUMNS = ("epoch_name_quality_metrics", "epoch_name_waveform_metrics")
#: Columns the loader itself and UnitStat need.
LOADER_METRIC_COLUMNS = (
    "cluster_id",
    "peak_channel",
    "amplitude",
    "snr",
    "isi_viol",
    "firing_rate",
)
REQUIRED_METRIC_COLUMNS = (
    LOADER_METRIC_COLUMNS + CLUSTER_METRIC_COLUMNS + WAVEFORM_METRIC_COLUMNS + EPOCH_COLUMNS
)
STRING_METRIC_COLUMNS = set(EPOCH_COLUMNS)

_PC_CHUNK = 1_000_000


# ---- small readers ------------------------------------------------------------------------------
def load_npy(path: Path, *, mmap: bool = True, kinds: str = "iuf") -> np.ndarray:
    """np.load with clear errors: missing, truncated, pickled or non-numeric files."""
    if not path.exists():
        raise ClusteringFileNotFoundError(path, "file does not exist")
    try:
        arr = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise ClusteringFileError(
            path, f"not a readable .npy array (truncated or corrupt?): {exc}"
        ) from None
    if arr.dtype.kind not in kinds:
        raise ClusteringFileError(
            path, f"has dtype {arr.dtype}, expected a numeric array ({kinds!r} kinds)"
        )
    return arr


def _vector(arr: np.ndarray, path: Path) -> np.ndarray:
    """(N,), (N, 1) or (1, N) -> (N,) view (phy writes (N, 1))."""
    if arr.ndim == 1:
        return arr
    if arr.ndim == 2 and 1 in arr.shape:
        return arr.reshape(-1)
    raise ClusteringFileError(path, f"expected a vector, got shape {arr.shape}")


def read_params_py(path: Path) -> dict[str, object]:
    """params.py as a dict, without executing it (literal values only)."""
    out: dict[str, object] = {}
    for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = (s.strip() for s in line.split("=", 1))
        try:
            out[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[key] = value.strip("'\"")
        if not key.isidentifier():
            raise ClusteringFileError(path, f"line {n}: {line!r} is not 'name = value'")
    return out


def read_cluster_table(path: Path) -> tuple[list[str], np.ndarray, list[list[str]]]:
    """A phy cluster table (.tsv, or cluster_groups.csv which is also tab-separated).

    Returns (lower-cased column names, cluster ids int64, remaining columns as string lists).
    """
    text = path.read_text(encoding="utf-8", errors="replace")
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        raise ClusteringFileError(path, "is empty (no header line)")
    delim = "\t" if "\t" in lines[0] or "," not in lines[0] else ","
    rows = list(csv.reader(lines, delimiter=delim))
    header = [h.strip().lower() for h in rows[0]]
    if "cluster_id" not in header:
        raise ClusteringFileError(path, f"has no cluster_id column (header: {rows[0]})")
    id_col = header.index("cluster_id")
    other = [i for i in range(len(header)) if i != id_col]
    ids = np.empty(len(rows) - 1, dtype=np.int64)
    cols: list[list[str]] = [[] for _ in other]
    for n, row in enumerate(rows[1:], 2):
        if len(row) != len(header):
            raise ClusteringFileError(
                path, f"line {n} has {len(row)} fields, header has {len(header)}"
            )
        try:
            ids[n - 2] = int(row[id_col])
        except ValueError:
            raise ClusteringFileError(
                path, f"line {n}: cluster_id {row[id_col]!r} is not an integer"
            ) from None
        for j, i in enumerate(other):
            cols[j].append(row[i].strip())
    return [header[id_col]] + [header[i] for i in other], ids, cols


def _label_column(path: Path) -> tuple[np.ndarray, list[str]]:
    names, ids, cols = read_cluster_table(path)
    wanted = {
        "cluster_groups.csv": "group",
        "cluster_group.tsv": "group",
        "cluster_KSLabel.tsv": "kslabel",
    }
    col = wanted.get(path.name)
    if col is not None and col in names[1:]:
        return ids, cols[names[1:].index(col)]
    if len(cols) == 1:
        return ids, cols[0]
    raise ClusteringFileError(path, f"cannot tell the label column among {names}")


def read_metrics_csv(path: Path) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """ecephys metrics.csv -> (cluster ids, {lower-case column: array}) with validation.

    Missing required columns (spec §14.4: every ClusterMetric/WaveformMetric attribute incl.
    epoch names, plus cluster_id, peak_channel, amplitude, snr, isi_viol, firing_rate) ->
    ClusterMetricError. Numeric columns become float64 (empty/'nan' -> NaN, 'inf' kept).
    """
    text = path.read_text(encoding="utf-8", errors="replace")
    rows = [r for r in csv.reader(text.splitlines()) if r]
    if not rows:
        raise ClusterMetricError(path, "is empty")
    header = [h.strip().lower() for h in rows[0]]
    missing = [c for c in REQUIRED_METRIC_COLUMNS if c not in header]
    if missing:
        raise ClusterMetricError(path, f"missing or misnamed column(s): {', '.join(missing)}")
    data: dict[str, np.ndarray] = {}
    body = rows[1:]
    for n, row in enumerate(body, 2):
        if len(row) != len(header):
            raise ClusterMetricError(
                path, f"line {n} has {len(row)} fields, header has {len(header)}"
            )
    for j, name in enumerate(header):
        if not name or name in data:  # pandas' unnamed index column, or a duplicate
            continue
        values = [row[j].strip() for row in body]
        if name in STRING_METRIC_COLUMNS:
            data[name] = np.array(values, dtype=object)
            continue
        out = np.empty(len(values), dtype=np.float64)
        for i, v in enumerate(values):
            try:
                out[i] = float(v) if v not in ("", "None") else np.nan
            except ValueError:
                if name in REQUIRED_METRIC_COLUMNS:
                    raise ClusterMetricError(
                        path, f"line {i + 2}, column {name}: {v!r} is not a number"
                    ) from None
                out = None  # an extra text column: keep as strings
                break
        data[name] = out if out is not None else np.array(values, dtype=object)
    ids = data["cluster_id"]
    if not np.all(np.isfinite(ids)) or not np.all(ids == np.round(ids)):
        raise ClusterMetricError(path, "cluster_id has non-integer values")
    ids = ids.astype(np.int64)
    if np.unique(ids).size != ids.size:
        raise ClusterMetricError(path, "cluster_id values are not unique")
    data["cluster_id"] = ids
    return ids, data


# ---- the loader ---------------------------------------------------------------------------------
def _pick_spike_times(folder: Path) -> Path:
    for name in SPIKE_TIME_FILES:
        if (folder / name).exists():
            return folder / name
    raise ClusteringFileNotFoundError(
        folder, f"no spike times ({' / '.join(SPIKE_TIME_FILES)}): not a Kilosort/phy folder"
    )


def _densify_templates(templates: np.ndarray, tind: np.ndarray | None, n_chan: int) -> np.ndarray:
    if tind is None or (tind.shape[1] == n_chan and np.array_equal(tind[0], np.arange(n_chan))):
        return templates
    dense = np.zeros(templates.shape[:2] + (n_chan,), dtype=templates.dtype)
    for t in range(templates.shape[0]):
        ok = tind[t] >= 0
        dense[t][:, tind[t][ok]] = templates[t][:, ok]
    return dense


def _template_peaks(templates: np.ndarray) -> np.ndarray:
    """Index (channel position) of max |template| for every template, in blocks."""
    peaks = np.empty(templates.shape[0], dtype=np.int64)
    for a in range(0, templates.shape[0], 64):
        blk = np.abs(np.asarray(templates[a : a + 64])).max(axis=1)
        peaks[a : a + 64] = blk.argmax(axis=1)
    return peaks


def _unit_templates(
    grouped_templates: np.ndarray, offsets: np.ndarray, n_templates: int
) -> np.ndarray:
    """Most frequent template of each unit (lowest id on ties)."""
    n_units = offsets.size - 1
    out = np.empty(n_units, dtype=np.int64)
    for i in range(n_units):
        seg = grouped_templates[offsets[i] : offsets[i + 1]]
        first = seg[0]
        # the usual case (no merges): every spike of the unit has the same template
        if seg[-1] == first and np.all(seg == first):
            out[i] = first
        else:
            out[i] = np.bincount(seg, minlength=n_templates).argmax()
    return out


def _spike_depths_from_pcs(
    pc_path: Path,
    ind_path: Path,
    spike_templates: np.ndarray,
    ycoords: np.ndarray,
    n_spikes: int,
) -> np.ndarray:
    """Per-spike depth (file order): centre of mass of y weighted by squared positive PC1."""
    pc = load_npy(pc_path)
    ind = np.asarray(load_npy(ind_path, kinds="iu"))
    if pc.ndim != 3 or pc.shape[0] != n_spikes:
        raise ClusteringFileError(
            pc_path, f"shape {pc.shape} does not match {n_spikes} spikes x n_pcs x n_channels"
        )
    if ind.ndim != 2 or ind.shape[1] != pc.shape[2]:
        raise ClusteringFileError(
            ind_path, f"shape {ind.shape} does not match {pc_path.name} {pc.shape}"
        )
    if ind.shape[0] <= int(spike_templates.max()) or ind.max() >= ycoords.size:
        raise ClusteringFileError(ind_path, "indexes templates or channels that do not exist")
    depths = np.empty(n_spikes, dtype=np.float64)
    for a in range(0, n_spikes, _PC_CHUNK):
        f = np.asarray(pc[a : a + _PC_CHUNK, 0, :], dtype=np.float64)
        np.maximum(f, 0, out=f)
        f *= f
        y = ycoords[ind[spike_templates[a : a + _PC_CHUNK]]]
        with np.errstate(invalid="ignore", divide="ignore"):
            depths[a : a + _PC_CHUNK] = (y * f).sum(axis=1) / f.sum(axis=1)
    return depths


def _raw_waveforms(
    raw: np.ndarray,
    spike_samples: np.ndarray,
    offsets: np.ndarray,
    raw_channels: np.ndarray,
    half_width: int,
    uv_per_bit: float,
    n_waveforms: int,
    seed: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Mean waveform (µV) at each unit's peak channel and its SNR from the raw recording.

    SNR = (max - min of the mean) / (2 * std of residuals) (Nordhausen 1996; spec §14.4).
    """
    rng = np.random.default_rng(seed)
    n_units = offsets.size - 1
    width = 2 * half_width
    wf = np.full((n_units, width), np.nan)
    snr = np.full(n_units, np.nan)
    rel = np.arange(-half_width, half_width)
    n_samples = raw.shape[0]
    for i in range(n_units):
        s = spike_samples[offsets[i] : offsets[i + 1]]
        s = s[(s >= half_width) & (s < n_samples - half_width)]
        if s.size == 0:
            continue
        if s.size > n_waveforms:
            s = rng.choice(s, n_waveforms, replace=False)
        w = raw[s[:, None] + rel[None, :], raw_channels[i]].astype(np.float64) * uv_per_bit
        mean = w.mean(axis=0)
        wf[i] = mean
        sd = np.std(w - mean)
        ptp = mean.max() - mean.min()
        snr[i] = 0.0 if sd == 0 else ptp / (2 * sd)
    return wf, snr


def _kilosort_method(folder: Path) -> str:
    return "pykilosort2.5" if "pyks25" in str(folder) else "kilosort2"


def load_phy(
    folder: str | PathLike[str],
    *,
    meta: SpikeGLXMeta | None = None,
    uv_per_bit: float | None = None,
    sampling_rate: float | None = None,
    label_file: str | None = None,
    use_raw: bool = True,
    n_raw_waveforms: int = 500,
    seed: int = 0,
    method: str | None = None,
    keep_order: bool = True,
) -> SortingResult:
    """Load a Kilosort2 / pykilosort2.5 phy folder (see the module docstring for policies).

    `meta` (the probe's `.ap.meta`) supplies the sampling rate when params.py lacks it, the
    µV/bit for template amplitudes and the raw `.ap.bin` location; `uv_per_bit` overrides the
    scale. Without metrics.csv one of them is required (amplitudes must be in µV).
    ``keep_order=False`` leaves ``order`` (the file-order permutation) out of the result and
    frees it as soon as it is used up, which lowers the peak memory (10 M spikes: 80 MB).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ClusteringFileNotFoundError(folder, "Kilosort/phy folder does not exist")
    files: dict[str, Path] = {}
    warnings: list[str] = []
    st_path = _pick_spike_times(folder)
    files["spike_times"] = st_path

    # -- sampling rate
    params: dict[str, object] = {}
    if (folder / "params.py").exists():
        params = read_params_py(folder / "params.py")
        files["params"] = folder / "params.py"
    fs = sampling_rate
    if fs is None:
        sr = params.get("sample_rate")
        if isinstance(sr, int | float) and sr > 0:
            fs = float(sr)
        elif meta is not None:
            fs = meta.sampling_rate
    if fs is None or not np.isfinite(fs) or fs <= 0:
        raise ClusteringFileError(
            folder / "params.py",
            f"no usable sample_rate (got {params.get('sample_rate')!r}) and no SpikeGLX meta given",
        )
    fs = float(fs)

    # -- spikes
    times = _vector(load_npy(st_path), st_path)
    n = times.size
    in_seconds = st_path.name != "spike_times.npy"
    if not in_seconds and times.dtype.kind == "f":
        in_seconds = bool(np.any(times != np.round(times)))
        if in_seconds:
            warnings.append(f"{st_path.name} has fractional values: taken as seconds")
    if times.dtype.kind == "f" and not np.all(np.isfinite(times)):
        raise ClusteringFileError(st_path, "contains NaN or infinite spike times")

    tmpl_path = folder / "spike_templates.npy"
    spike_templates = _vector(load_npy(tmpl_path, kinds="iu"), tmpl_path)
    files["spike_templates"] = tmpl_path
    if spike_templates.size != n:
        raise ClusteringFileError(
            tmpl_path, f"has {spike_templates.size} spikes but {st_path.name} has {n}"
        )
    cl_path = folder / "spike_clusters.npy"
    if cl_path.exists():
        clusters = _vector(load_npy(cl_path, kinds="iu"), cl_path)
        files["spike_clusters"] = cl_path
        if clusters.size != n:
            raise ClusteringFileError(
                cl_path, f"has {clusters.size} spikes but {st_path.name} has {n} (lengths differ)"
            )
    else:  # un-curated Kilosort output: clusters are the templates
        clusters = spike_templates
        warnings.append("no spike_clusters.npy: clusters taken from spike_templates.npy")
    if n == 0:
        raise ClusteringFileError(st_path, "has no spikes")
    if clusters.dtype.kind == "i" and clusters.min() < 0:
        raise ClusteringFileError(cl_path, "has negative cluster ids")

    unit_ids, order, offsets, dense = group_by_unit(clusters, return_dense=True)
    n_units = unit_ids.size
    if in_seconds:
        spike_samples = np.rint(np.asarray(times, dtype=np.float64)[order] * fs).astype(np.int64)
    else:
        spike_samples = np.asarray(times)[order]
        if spike_samples.dtype == np.uint64:
            if spike_samples.size and spike_samples.max() > np.iinfo(np.int64).max:
                raise ClusteringFileError(st_path, "spike times exceed the int64 range")
            spike_samples = spike_samples.view(np.int64)
        else:
            spike_samples = spike_samples.astype(np.int64, copy=False)
    if spike_samples.min() < 0:
        raise ClusteringFileError(st_path, "has negative spike times")
    # Kilosort writes spikes in time order, so the stable grouping keeps each unit sorted;
    # only if the file is not globally sorted check (and fix) the order within units.
    if not np.all(times[1:] >= times[:-1]):
        d = np.diff(spike_samples)
        d[offsets[1:-1] - 1] = 0
        if (d < 0).any():
            unit_of = np.repeat(np.arange(n_units), np.diff(offsets))
            within = np.lexsort((spike_samples, unit_of))
            order = order[within]
            spike_samples = spike_samples[within]
            warnings.append("spikes were not in time order: re-sorted within units")
        del d
    # Release the memory-mapped inputs as soon as they are consumed: their pages count in the
    # process's memory until unmapped (10 M spikes: 120 MB here).
    del times, clusters

    # -- labels
    unit_label_raw, unlabelled, dropped = _unit_labels(folder, unit_ids, label_file, files)
    unit_quality = np.array([normalize_label(v) for v in unit_label_raw], dtype="<U5")

    # -- templates & channels
    templates_path = folder / "templates.npy"
    templates = load_npy(templates_path)
    files["templates"] = templates_path
    if templates.ndim != 3:
        raise ClusteringFileError(
            templates_path, f"expected (templates, samples, channels), got {templates.shape}"
        )
    cmap_path = folder / "channel_map.npy"
    channel_map = _vector(np.asarray(load_npy(cmap_path, kinds="iu")), cmap_path).astype(np.int64)
    cpos_path = folder / "channel_positions.npy"
    channel_pos = np.asarray(load_npy(cpos_path), dtype=np.float64)
    if channel_pos.ndim != 2 or channel_pos.shape != (channel_map.size, 2):
        raise ClusteringFileError(
            cpos_path, f"shape {channel_pos.shape} does not match {channel_map.size} channels x 2"
        )
    n_chan = channel_map.size
    tind = None
    for name in ("templates_ind.npy", "template_ind.npy"):
        if (folder / name).exists():
            tind = np.asarray(load_npy(folder / name, kinds="iu")).astype(np.int64)
            if tind.ndim != 2 or tind.shape != templates.shape[::2]:
                raise ClusteringFileError(
                    folder / name, f"shape {tind.shape} does not match templates {templates.shape}"
                )
            break
    if tind is None and templates.shape[2] != n_chan:
        raise ClusteringFileError(
            templates_path, f"has {templates.shape[2]} channels but channel_map.npy has {n_chan}"
        )
    dense_templates = _densify_templates(templates, tind, n_chan)
    n_templates = dense_templates.shape[0]
    if int(spike_templates.max()) >= n_templates:
        raise ClusteringFileError(
            tmpl_path,
            f"refers to template {int(spike_templates.max())}, templates.npy has {n_templates}",
        )
    template_peak = _template_peaks(dense_templates)  # channel position per template
    template_site = channel_map[template_peak] + 1  # 1-based recorded site

    grouped_templates = np.asarray(spike_templates)[order]  # uint32/int32: no widening copy
    pc_path, pci_path = folder / "pc_features.npy", folder / "pc_feature_ind.npy"
    with_pcs = pc_path.exists() and pci_path.exists()
    if not with_pcs:
        del spike_templates  # used up: unmap it before the next per-spike arrays
        if not keep_order:
            order = None
    spike_sites = template_site.astype(np.int32)[grouped_templates]
    if with_pcs:
        depths_file = _spike_depths_from_pcs(
            pc_path, pci_path, np.asarray(spike_templates), channel_pos[:, 1], n
        )
        spike_depths = depths_file[order]
        del depths_file, spike_templates
        if not keep_order:
            order = None
        bad = ~np.isfinite(spike_depths)  # all-zero PC features: use the template peak
        if bad.any():
            spike_depths[bad] = channel_pos[template_peak[grouped_templates[bad]], 1]
        files["pc_features"] = pc_path
    else:
        spike_depths = channel_pos[template_peak, 1][grouped_templates]

    unit_template = _unit_templates(grouped_templates, offsets, n_templates)
    del grouped_templates

    # -- per-unit values
    metrics_path = folder / "metrics.csv"
    metrics: dict[str, np.ndarray] | None = None
    scale = uv_per_bit if uv_per_bit is not None else (meta.template_uv_per_bit if meta else None)
    half_width = dense_templates.shape[1] // 2

    if metrics_path.exists():
        files["metrics"] = metrics_path
        metrics = _metrics_for_units(metrics_path, unit_ids)
        peak_channel = metrics["peak_channel"]
        if not np.all(peak_channel == np.round(peak_channel)):
            raise ClusterMetricError(metrics_path, "peak_channel has non-integer values")
        peak_channel = peak_channel.astype(np.int64)
        pos_index = _positions_of(channel_map, peak_channel, metrics_path)
        unit_peak_site = peak_channel + 1
        unit_posx, unit_posy = channel_pos[pos_index, 0], channel_pos[pos_index, 1]
        unit_amp = metrics["amplitude"].astype(np.float64)
        snr = metrics["snr"].astype(np.float64)
        unit_snr = np.where(np.isfinite(snr), snr, 0.0)
        amplitude_source = "metrics.csv"
        mw_path = folder / "mean_waveforms.npy"
        if mw_path.exists():
            unit_waveform = _mean_waveforms(mw_path, metrics_path, unit_ids, peak_channel)
            files["mean_waveforms"] = mw_path
            waveform_source = "mean_waveforms.npy"
        else:
            waveform_source = "none"
            unit_waveform = np.full((n_units, dense_templates.shape[1]), np.nan)
            warnings.append("metrics.csv without mean_waveforms.npy: waveforms are NaN")
    else:
        if scale is None:
            raise ClusteringFileError(
                folder,
                "no metrics.csv: template amplitudes need a µV/bit scale; pass meta= (the "
                "probe's .ap.meta) or uv_per_bit=",
            )
        amp_path = folder / "amplitudes.npy"
        amps = _vector(load_npy(amp_path), amp_path)
        files["amplitudes"] = amp_path
        if amps.size != n:
            raise ClusteringFileError(
                amp_path, f"has {amps.size} spikes but {st_path.name} has {n}"
            )
        # in chunks: bincount converts its weights to float64 (10 M spikes: an 80 MB copy)
        amp_sum = np.zeros(n_units)
        for a in range(0, n, _PC_CHUNK):
            amp_sum += np.bincount(
                dense[a : a + _PC_CHUNK],
                weights=amps[a : a + _PC_CHUNK],
                minlength=n_units,
            )
        mean_amp = amp_sum / np.diff(offsets)
        del amps
        winv = None
        winv_path = folder / "whitening_mat_inv.npy"
        if winv_path.exists():
            winv = np.asarray(load_npy(winv_path), dtype=np.float64)
            if winv.shape != (n_chan, n_chan):
                raise ClusteringFileError(
                    winv_path, f"shape {winv.shape}, expected ({n_chan}, {n_chan})"
                )
            files["whitening_mat_inv"] = winv_path
        peak_pos = template_peak[unit_template]
        unit_peak_site = channel_map[peak_pos] + 1
        unit_posx, unit_posy = channel_pos[peak_pos, 0], channel_pos[peak_pos, 1]
        tw = np.empty((n_units, dense_templates.shape[1]))
        for i in range(n_units):
            t = np.asarray(dense_templates[unit_template[i]], dtype=np.float64)
            tw[i] = t @ winv[:, peak_pos[i]] if winv is not None else t[:, peak_pos[i]]
        tw *= (mean_amp * scale)[:, None]
        unit_amp = tw.max(axis=1) - tw.min(axis=1)
        amplitude_source = "templates"
        raw = None
        if use_raw and meta is not None and meta.path.with_suffix(".bin").exists():
            raw = read_ap_bin(meta)
            files["ap_bin"] = meta.path.with_suffix(".bin")
        if raw is not None:
            unit_waveform, unit_snr = _raw_waveforms(
                raw,
                spike_samples,
                offsets,
                channel_map[peak_pos],
                half_width,
                scale,
                n_raw_waveforms,
                seed,
            )
            waveform_source = "raw"
        else:
            unit_waveform = tw
            unit_snr = np.full(n_units, np.nan)
            waveform_source = "templates"

    noise = _noise_labels(folder, unit_ids)
    notes = _curation_notes(folder, unit_ids)
    info = clustering_info(folder, st_path)
    return SortingResult(
        method=method or _kilosort_method(folder),
        path=folder,
        sampling_rate=fs,
        unit_ids=unit_ids,
        offsets=offsets,
        spike_samples=spike_samples,
        spike_sites=spike_sites,
        spike_depths=np.asarray(spike_depths, dtype=np.float64),
        unit_quality=unit_quality,
        unit_label_raw=unit_label_raw,
        unit_peak_site=np.asarray(unit_peak_site, dtype=np.int64),
        unit_posx=np.asarray(unit_posx, dtype=np.float64),
        unit_posy=np.asarray(unit_posy, dtype=np.float64),
        unit_amp=np.asarray(unit_amp, dtype=np.float64),
        unit_snr=np.asarray(unit_snr, dtype=np.float64),
        unit_waveform=np.asarray(unit_waveform, dtype=np.float64),
        clustering=info,
        order=order,
        noise_labels=noise,
        unit_notes=notes,
        metrics=metrics,
        unlabelled_units=unlabelled,
        dropped_label_ids=dropped,
        amplitude_source=amplitude_source,
        waveform_source=waveform_source,
        files=files,
        warnings=warnings,
    )


def _unit_labels(
    folder: Path, unit_ids: np.ndarray, label_file: str | None, files: dict[str, Path]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    candidates = (label_file,) if label_file else LABEL_FILES
    path = next((folder / c for c in candidates if (folder / c).exists()), None)
    if path is None:
        raise ClusteringFileNotFoundError(
            folder, f"no cluster label file ({' / '.join(candidates)})"
        )
    files["labels"] = path
    ids, values = _label_column(path)
    labels = dict(zip(ids.tolist(), values, strict=True))
    raw = np.array([labels.get(int(u), "") for u in unit_ids], dtype=object)
    unlabelled = unit_ids[~np.isin(unit_ids, ids)]
    dropped = np.setdiff1d(ids, unit_ids)
    return raw, unlabelled, dropped


def _noise_labels(folder: Path, unit_ids: np.ndarray) -> dict[int, str]:
    path = folder / "cluster_group.tsv"
    if not path.exists():
        return {}
    names, ids, cols = read_cluster_table(path)
    if sorted(names) != ["cluster_id", "group"]:
        return {}
    keep = set(unit_ids.tolist())
    return {
        int(i): v.lower()
        for i, v in zip(ids, cols[0], strict=True)
        if int(i) in keep and v.lower() in ("good", "noise")
    }


def _curation_notes(folder: Path, unit_ids: np.ndarray) -> dict[str, dict[int, str]]:
    keep = set(unit_ids.tolist())
    out: dict[str, dict[int, str]] = {}
    for path in sorted(folder.glob("cluster_*.tsv")):
        if path.name in NON_NOTE_CLUSTER_FILES:
            continue
        names, ids, cols = read_cluster_table(path)
        if len(cols) != 1:
            continue
        source = path.stem[len("cluster_") :]
        out[source] = {
            int(i): (normalize_label(v) if v.lower() in _KNOWN else v)
            for i, v in zip(ids, cols[0], strict=True)
            if int(i) in keep and v != ""
        }
    return out


_KNOWN = {"good", "single", "ok", "mua", "multi", "unsorted", "all", "noise"}


def _metrics_for_units(path: Path, unit_ids: np.ndarray) -> dict[str, np.ndarray]:
    ids, data = read_metrics_csv(path)
    missing = np.setdiff1d(unit_ids, ids)
    if missing.size:
        raise ClusterMetricError(
            path, f"no row for {missing.size} unit(s) with spikes, e.g. {missing[:10].tolist()}"
        )
    pos = {int(c): i for i, c in enumerate(ids)}
    rows = np.array([pos[int(u)] for u in unit_ids], dtype=np.int64)
    return {k: v[rows] for k, v in data.items()}


def _positions_of(channel_map: np.ndarray, channels: np.ndarray, src: Path) -> np.ndarray:
    lut = {int(c): i for i, c in enumerate(channel_map)}
    try:
        return np.array([lut[int(c)] for c in channels], dtype=np.int64)
    except KeyError as exc:
        raise ClusterMetricError(
            src, f"peak_channel {exc.args[0]} is not in channel_map.npy"
        ) from None


def _mean_waveforms(
    mw_path: Path, metrics_path: Path, unit_ids: np.ndarray, peak_channel: np.ndarray
) -> np.ndarray:
    """Rows of mean_waveforms.npy (units x channels x samples) at each unit's peak channel.

    ecephys writes one row per metrics.csv row (same cluster order); older files have one row
    per cluster id (0..max). Both layouts are recognised.
    """
    mw = load_npy(mw_path)
    if mw.ndim != 3:
        raise ClusteringFileError(mw_path, f"expected (units, channels, samples), got {mw.shape}")
    ids, _ = read_metrics_csv(metrics_path)
    if mw.shape[0] == ids.size:
        pos = {int(c): i for i, c in enumerate(ids)}
        rows = np.array([pos[int(u)] for u in unit_ids])
    elif mw.shape[0] > int(unit_ids.max()):
        rows = unit_ids
    else:
        raise ClusteringFileError(
            mw_path,
            f"has {mw.shape[0]} rows: neither one per metrics.csv row ({ids.size}) nor one per "
            f"cluster id (max {int(unit_ids.max())})",
        )
    if int(peak_channel.max()) >= mw.shape[1]:
        raise ClusteringFileError(
            mw_path, f"has {mw.shape[1]} channels; peak_channel {int(peak_channel.max())}"
        )
    return np.asarray(mw[rows, peak_channel, :], dtype=np.float64)
