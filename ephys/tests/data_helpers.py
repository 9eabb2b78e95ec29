"""Builders for ephys ingest test inputs: SpikeGLX meta text, minimal phy folders and
JRClust v3/v4 HDF5 files in MATLAB v7.3 layout (matrices transposed, cells as references)."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np


def np1_meta_text(
    *,
    n_channels: int = 384,
    first_electrode_row: int = 0,
    typ: str = "3B",
    extra: dict[str, str] | None = None,
    drop: tuple[str, ...] = (),
) -> str:
    """A realistic NP1.0 `.ap.meta`: channel i at row first_row + i // 2, column i % 2."""
    keys = {
        "acqApLfSy": f"{n_channels},{n_channels},1",
        "fileCreateTime": "2019-03-03T10:00:05",
        "fileSizeBytes": str(1000 * (n_channels + 1) * 2),
        "imAiRangeMax": "0.6",
        "imAiRangeMin": "-0.6",
        "imSampRate": "30000.000000",
        "nSavedChans": str(n_channels + 1),
        "trgTTLMarginS": "0.1",
    }
    if typ == "3A":
        keys |= {"typeEnabled": "imec", "imProbeSN": "1234567"}
    else:
        keys |= {"typeImEnabled": "1", "imDatPrb_type": "0", "imDatPrb_sn": "18005117162"}
    keys["~imroTbl"] = f"(0,{n_channels})" + "".join(
        f"({i} 0 0 500 250 1)" for i in range(n_channels)
    )
    keys["~snsChanMap"] = (
        f"({n_channels},{n_channels},1)"
        + "".join(f"(AP{i};{i}:{i})" for i in range(n_channels))
        + f"(SY0;{n_channels}:{n_channels})"
    )
    keys["~snsShankMap"] = "(1,2,480)" + "".join(
        f"(0:{i % 2}:{first_electrode_row + i // 2}:{0 if i == 191 else 1})"
        for i in range(n_channels)
    )
    keys |= extra or {}
    return "".join(f"{k}={v}\n" for k, v in keys.items() if k not in drop)


def write_phy_folder(
    folder: Path,
    *,
    spike_times: np.ndarray,
    spike_clusters: np.ndarray,
    spike_templates: np.ndarray | None = None,
    n_channels: int = 4,
    n_samples: int = 10,
    peak_channels: dict[int, int] | None = None,
    amplitudes: np.ndarray | None = None,
    labels: dict[str, dict[int, str]] | None = None,
    sample_rate: float = 30000.0,
) -> Path:
    """A tiny phy folder: template t peaks on `peak_channels[t]` (default t % n_channels) with
    a trough of -1 and a peak of +0.5 (peak-to-peak 1.5); channels 20 µm apart in y."""
    folder.mkdir(parents=True, exist_ok=True)
    spike_templates = spike_clusters if spike_templates is None else spike_templates
    n_t = int(np.max(spike_templates)) + 1
    peaks = peak_channels or {}
    tmpl = np.zeros((n_t, n_samples, n_channels), dtype=np.float32)
    for t in range(n_t):
        c = peaks.get(t, t % n_channels)
        tmpl[t, n_samples // 2, c] = -1.0
        tmpl[t, n_samples // 2 + 2, c] = 0.5
        tmpl[t, n_samples // 2, (c + 1) % n_channels] = -0.3
    np.save(folder / "spike_times.npy", np.asarray(spike_times))
    np.save(folder / "spike_clusters.npy", np.asarray(spike_clusters))
    np.save(folder / "spike_templates.npy", np.asarray(spike_templates))
    amps = np.ones(np.asarray(spike_times).size, np.float32) if amplitudes is None else amplitudes
    np.save(folder / "amplitudes.npy", amps)
    np.save(folder / "templates.npy", tmpl)
    np.save(folder / "channel_map.npy", np.arange(n_channels, dtype=np.int32))
    pos = np.stack([np.zeros(n_channels), np.arange(n_channels) * 20.0], axis=1)
    np.save(folder / "channel_positions.npy", pos.astype(np.float32))
    (folder / "params.py").write_text(f"dat_path = 'x.bin'\nsample_rate = {sample_rate}\n")
    if labels is None:
        ids = np.unique(spike_clusters)
        labels = {"cluster_KSLabel.tsv": {int(i): "good" for i in ids}}
    for name, table in labels.items():
        col = {"cluster_KSLabel.tsv": "KSLabel"}.get(name, "group")
        body = "".join(f"{k}\t{v}\n" for k, v in table.items())
        (folder / name).write_text(f"cluster_id\t{col}\n{body}")
    return folder


# ---- MATLAB v7.3 (HDF5) -------------------------------------------------------------------------
class MatWriter:
    """Write MATLAB-v7.3-like HDF5: arrays transposed, cellstr as references into '#refs#'."""

    def __init__(self, path: Path) -> None:
        self.fh = h5py.File(path, "w")
        self.refs = self.fh.create_group("#refs#")
        self._n = 0

    def __enter__(self) -> MatWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.fh.close()

    def array(self, name: str, matlab_value: np.ndarray) -> None:
        """Store a MATLAB matrix (rows × cols as MATLAB sees it)."""
        a = np.asarray(matlab_value, dtype=np.float64)
        if a.ndim == 1:  # a MATLAB column vector N×1 -> h5py (1, N)
            a = a[:, None]
        self.fh.create_dataset(name, data=a.T)

    def cellstr(self, name: str, strings: list[str], column: bool = False) -> None:
        refs = []
        for s in strings:
            key = f"r{self._n}"
            self._n += 1
            if s:
                ds = self.refs.create_dataset(
                    key, data=np.array([[ord(c)] for c in s], dtype=np.uint16)
                )
                ds.attrs["MATLAB_class"] = np.bytes_("char")
            else:
                ds = self.refs.create_dataset(key, data=np.zeros(2, dtype=np.uint64))
                ds.attrs["MATLAB_empty"] = np.uint8(1)
            refs.append(ds.ref)
        shape = (len(refs), 1) if column else (1, len(refs))
        self.fh.create_dataset(name, data=np.array(refs, dtype=h5py.ref_dtype).reshape(shape))


def jrclust_fixture() -> dict[str, np.ndarray | list[str]]:
    """Spikes of 3 clusters (+ noise id 0 and -1), per-cluster values with known numbers."""
    rng = np.random.default_rng(7)
    n = 200
    times = np.sort(rng.choice(np.arange(100, 300_000), n, replace=False)).astype(np.float64)
    clusters = rng.choice([-1, 0, 1, 2, 3], n, p=[0.05, 0.1, 0.4, 0.3, 0.15]).astype(np.float64)
    clusters[:5] = [1, 2, 3, 0, -1]
    sites = rng.integers(1, 33, n).astype(np.float64)
    pos = np.stack([rng.uniform(0, 48, n), rng.uniform(0, 3000, n)], axis=1)  # N×2 [x y]
    n_clu, n_sites, n_samp = 4, 5, 12  # cluster 4 has no spikes
    wav = rng.normal(size=(n_samp, n_sites, n_clu))  # MATLAB samples × sites × clusters
    return {
        "times": times,
        "clusters": clusters,
        "sites": sites,
        "pos": pos,
        "wav": wav,
        "notes": ["single", "", "multi?", "ok"],
        "posx": np.array([11.0, 27.0, 43.0, 59.0]),
        "posy": np.array([100.0, 220.0, 1400.0, 2000.0]),
        "vpp": np.array([120.0, 85.5, 60.25, 10.0]),
        "snr": np.array([9.0, 6.5, 4.25, 1.0]),
        "site_clu": np.array([3.0, 7.0, 30.0, 12.0]),
    }


def write_jrc3(path: Path, f: dict, fs: float = 25000.0) -> Path:
    with MatWriter(path) as w:
        w.array("P/sRateHz", np.array([[fs]]))
        w.array("viTime_spk", f["times"])
        w.array("viSite_spk", f["sites"])
        w.array("mrPos_spk", f["pos"])
        w.array("S_clu/viClu", f["clusters"])
        w.fh.create_dataset("S_clu/trWav_raw_clu", data=np.asarray(f["wav"]).T)
        w.cellstr("S_clu/csNote_clu", f["notes"])
        w.array("S_clu/vrPosX_clu", f["posx"])
        w.array("S_clu/vrPosY_clu", f["posy"])
        w.array("S_clu/vrVpp_uv_clu", f["vpp"])
        w.array("S_clu/vrSnr_clu", f["snr"])
        w.array("S_clu/viSite_clu", f["site_clu"])
    return path


def write_jrc4(path: Path, f: dict) -> Path:
    with MatWriter(path) as w:
        w.array("spikeTimes", f["times"])
        w.array("spikeSites", f["sites"])
        w.array("spikePositions", f["pos"])
        w.array("spikeClusters", f["clusters"])
        w.fh.create_dataset("meanWfLocalRaw", data=np.asarray(f["wav"]).T)
        w.cellstr("clusterNotes", f["notes"], column=True)
        w.array("clusterCentroids", np.stack([f["posx"], f["posy"]], axis=1))
        w.array("unitVppRaw", f["vpp"])
        w.array("unitSNR", f["snr"])
        w.array("clusterSites", f["site_clu"])
    return path
