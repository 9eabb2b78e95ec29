"""JRClust v3 (`*_jrc.mat`) and v4 (`*.ap_res.mat`) results, both MATLAB v7.3 / HDF5, loaded
into the same SortingResult as the phy loader (spec §14.4).

MATLAB stores matrices column-major, so an N×k MATLAB matrix reads as (k, N) through h5py; the
readers accept either orientation for vectors. Cluster ids <= 0 (noise / unassigned) are
dropped; per-cluster arrays are indexed by cluster id - 1; clusters without spikes are dropped.
Notes are decoded: 'single*' -> good, 'ok*' -> ok, 'multi*' -> multi, empty/other -> all.
The waveform is the first site of the cluster's local mean waveform (JRClust orders sites by
amplitude, so that is the peak site). Spike sites are JRClust's 1-based site numbers.

Deviation: for v4 the spec lists `spikePositions[0]` as spike depth; for an N×2 [x y] MATLAB
matrix that row is x, so the y row (`[1]`) is used, consistent with v3's `mrPos_spk[1]`.
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path

import h5py
import numpy as np

from .errors import ClusteringFileError, ClusteringFileNotFoundError
from .sorting import SortingResult, clustering_info, group_by_unit
from .spikeglx import SpikeGLXMeta


def decode_note(chars: np.ndarray) -> str:
    """MATLAB v7.3 char array (uint16 codes) -> str; empty arrays ([0, 0] uint64) -> ''."""
    codes = np.asarray(chars).reshape(-1)
    return "".join(chr(int(c)) for c in codes if int(c) != 0)


def note_to_quality(note: str) -> str:
    n = note.strip().lower()
    for prefix, quality in (("single", "good"), ("ok", "ok"), ("multi", "multi")):
        if n.startswith(prefix):
            return quality
    return "all"


class _H5:
    """Dataset access with errors that name the file and the missing variable."""

    def __init__(self, path: Path) -> None:
        self.path = path
        if not path.exists():
            raise ClusteringFileNotFoundError(path, "JRClust result file does not exist")
        try:
            self.fh = h5py.File(path, "r")
        except OSError as exc:
            raise ClusteringFileError(
                path, f"not an HDF5 (MATLAB v7.3) file or unreadable: {exc}"
            ) from None

    def __enter__(self) -> _H5:
        return self

    def __exit__(self, *exc: object) -> None:
        self.fh.close()

    def ds(self, name: str) -> h5py.Dataset:
        try:
            obj = self.fh[name]
        except KeyError:
            raise ClusteringFileError(self.path, f"variable {name!r} is missing") from None
        if not isinstance(obj, h5py.Dataset):
            raise ClusteringFileError(self.path, f"{name!r} is not a numeric array")
        return obj

    def vector(self, name: str, dtype: type = np.float64) -> np.ndarray:
        arr = self.ds(name)[()]
        if arr.dtype.kind not in "iuf":
            raise ClusteringFileError(self.path, f"{name!r} has dtype {arr.dtype}, not numeric")
        if arr.ndim == 2 and 1 in arr.shape:
            arr = arr.reshape(-1)
        if arr.ndim != 1:
            raise ClusteringFileError(
                self.path, f"{name!r} has shape {arr.shape}, expected a vector"
            )
        return arr.astype(dtype, copy=False)

    def row(self, name: str, index: int, n: int) -> np.ndarray:
        """Row `index` of an N×k MATLAB matrix (h5py (k, N)); also accepts (N, k)."""
        arr = self.ds(name)[()]
        if arr.ndim == 2 and arr.shape[1] == n and arr.shape[0] > index:
            return arr[index].astype(np.float64)
        if arr.ndim == 2 and arr.shape[0] == n and arr.shape[1] > index:
            return arr[:, index].astype(np.float64)
        raise ClusteringFileError(
            self.path, f"{name!r} has shape {arr.shape}; expected ({index + 1}+, {n})"
        )

    def notes(self, name: str) -> list[str]:
        refs = np.asarray(self.ds(name)[()]).reshape(-1)
        out = []
        for ref in refs:
            try:
                out.append(decode_note(self.fh[ref][()]))
            except (KeyError, ValueError, TypeError):
                raise ClusteringFileError(
                    self.path, f"{name!r} is not a cell array of strings"
                ) from None
        return out


def _build(
    *,
    method: str,
    path: Path,
    fs: float,
    spikes: np.ndarray,
    sites: np.ndarray,
    depths: np.ndarray,
    clusters: np.ndarray,
    waveforms: np.ndarray,
    notes: list[str],
    posx: np.ndarray,
    posy: np.ndarray,
    amp: np.ndarray,
    snr: np.ndarray,
    peak_site: np.ndarray,
) -> SortingResult:
    n = spikes.size
    for name, arr in (("sites", sites), ("depths", depths), ("clusters", clusters)):
        if arr.size != n:
            raise ClusteringFileError(
                path, f"per-spike {name} has {arr.size} entries but there are {n} spike times"
            )
    n_clu = len(notes)
    for name, arr in (("x", posx), ("y", posy), ("amplitude", amp), ("snr", snr)):
        if arr.size != n_clu:
            raise ClusteringFileError(
                path, f"per-cluster {name} has {arr.size} entries but there are {n_clu} notes"
            )
    if peak_site.size != n_clu or waveforms.shape[0] != n_clu:
        raise ClusteringFileError(
            path, f"cluster sites/waveforms do not have one entry per cluster ({n_clu})"
        )
    if np.any(clusters != np.round(clusters)):
        raise ClusteringFileError(path, "cluster ids are not integers")
    clusters = clusters.astype(np.int64)
    keep = clusters > 0
    if not keep.any():
        raise ClusteringFileError(path, "no spike belongs to a cluster (all ids <= 0)")
    if clusters.max() > n_clu:
        raise ClusteringFileError(
            path, f"cluster id {int(clusters.max())} but only {n_clu} clusters are described"
        )
    idx = np.flatnonzero(keep)
    unit_ids, order_kept, offsets = group_by_unit(clusters[idx])
    order = idx[order_kept]
    spike_samples = np.rint(spikes[order]).astype(np.int64)
    d = np.diff(spike_samples)
    d[offsets[1:-1] - 1] = 0
    if (d < 0).any():
        within = np.lexsort((spike_samples, np.repeat(np.arange(unit_ids.size), np.diff(offsets))))
        order, spike_samples = order[within], spike_samples[within]
    ci = unit_ids - 1
    raw_notes = np.array([notes[i] for i in ci], dtype=object)
    quality = np.array([note_to_quality(v) for v in raw_notes], dtype="<U5")
    return SortingResult(
        method=method,
        path=path,
        sampling_rate=fs,
        unit_ids=unit_ids,
        offsets=offsets,
        spike_samples=spike_samples,
        spike_sites=np.rint(sites[order]).astype(np.int32),
        spike_depths=depths[order].astype(np.float64),
        unit_quality=quality,
        unit_label_raw=raw_notes,
        unit_peak_site=np.rint(peak_site[ci]).astype(np.int64),
        unit_posx=posx[ci].astype(np.float64),
        unit_posy=posy[ci].astype(np.float64),
        unit_amp=amp[ci].astype(np.float64),
        unit_snr=snr[ci].astype(np.float64),
        unit_waveform=np.asarray(waveforms[ci, 0, :], dtype=np.float64),
        clustering=clustering_info(path.parent, path),
        order=order,
        amplitude_source="jrclust",
        waveform_source="jrclust",
        files={"result": path},
    )


def load_jrclust_v3(path: str | PathLike[str]) -> SortingResult:
    """Load a JRClust v3 `*_jrc.mat` (HDF5); the sampling rate is `P.sRateHz`."""
    path = Path(path)
    with _H5(path) as h:
        fs = float(h.vector("P/sRateHz")[0])
        if not np.isfinite(fs) or fs <= 0:
            raise ClusteringFileError(path, f"P.sRateHz={fs} is not a sampling rate")
        spikes = h.vector("viTime_spk")
        n = spikes.size
        return _build(
            method="jrclust_v3",
            path=path,
            fs=fs,
            spikes=spikes,
            sites=h.vector("viSite_spk"),
            depths=h.row("mrPos_spk", 1, n),
            clusters=h.vector("S_clu/viClu"),
            waveforms=_waveforms(h, "S_clu/trWav_raw_clu"),
            notes=h.notes("S_clu/csNote_clu"),
            posx=h.vector("S_clu/vrPosX_clu"),
            posy=h.vector("S_clu/vrPosY_clu"),
            amp=h.vector("S_clu/vrVpp_uv_clu"),
            snr=h.vector("S_clu/vrSnr_clu"),
            peak_site=h.vector("S_clu/viSite_clu"),
        )


def load_jrclust_v4(
    path: str | PathLike[str],
    *,
    meta: SpikeGLXMeta | None = None,
    sampling_rate: float | None = None,
) -> SortingResult:
    """Load a JRClust v4 `*.ap_res.mat` (HDF5); the sampling rate comes from the meta."""
    path = Path(path)
    fs = sampling_rate if sampling_rate is not None else (meta.sampling_rate if meta else None)
    if fs is None:
        raise ClusteringFileError(
            path, "JRClust v4 results carry no sampling rate: pass meta= or sampling_rate="
        )
    with _H5(path) as h:
        spikes = h.vector("spikeTimes")
        n = spikes.size
        clusters = h.vector("spikeClusters")
        notes = h.notes("clusterNotes")
        n_clu = len(notes)
        return _build(
            method="jrclust_v4",
            path=path,
            fs=float(fs),
            spikes=spikes,
            sites=h.vector("spikeSites"),
            depths=h.row("spikePositions", 1, n),
            clusters=clusters,
            waveforms=_waveforms(h, "meanWfLocalRaw"),
            notes=notes,
            posx=h.row("clusterCentroids", 0, n_clu),
            posy=h.row("clusterCentroids", 1, n_clu),
            amp=h.vector("unitVppRaw"),
            snr=h.vector("unitSNR"),
            peak_site=h.vector("clusterSites"),
        )


def _waveforms(h: _H5, name: str) -> np.ndarray:
    """(clusters, sites, samples) as h5py sees MATLAB's samples × sites × clusters."""
    arr = h.ds(name)[()]
    if arr.ndim == 2:  # a single site per cluster: MATLAB samples × clusters
        arr = arr[:, None, :]
    if arr.ndim != 3:
        raise ClusteringFileError(h.path, f"{name!r} has shape {arr.shape}, expected 3-D")
    return arr.astype(np.float64, copy=False)
