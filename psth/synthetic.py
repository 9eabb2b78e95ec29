"""Ground truth for the analyses in synthetic sorted sessions: selective units, cell types.

``ephys.ingest.synthetic.make_synthetic_session`` writes a phy folder whose spikes ignore the
behavior (Poisson-like, no task modulation) and whose units all share one waveform. The
functions here rewrite that folder *before* it is discovered and ingested, so that the real
ingest path carries a known answer through to the analyses:

* :func:`add_selective_units` adds, for chosen units, extra spikes at ``extra_rate`` Hz during
  the delay period of the trials of the preferred side (contra or ipsi to the hemisphere given),
  and updates the session's ground truth (``spike_samples``/``spike_clusters``);
* :func:`set_waveform_widths` gives chosen units a narrow (fast-spiking) or wide (pyramidal)
  trough-to-peak waveform, in the templates and, when written, in ``mean_waveforms.npy``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ephys.ingest.synthetic import N_TEMPLATE_SAMPLES, TEMPLATE_HALF, SyntheticSession
from experiment.ingest.synthetic import GroundTruth

#: Trough-to-peak widths in samples (30 kHz): ~0.23 ms (FS) and ~0.67 ms (Pyr).
FS_WIDTH_SAMPLES = 7
PYR_WIDTH_SAMPLES = 20


def waveform_shape(width_samples: float, n: int = N_TEMPLATE_SAMPLES) -> np.ndarray:
    """A spike: trough at the template centre, smaller positive peak ``width`` samples later."""
    t = np.arange(n, dtype=np.float64)
    trough = -np.exp(-0.5 * ((t - TEMPLATE_HALF) / 2.0) ** 2)
    peak = 0.4 * np.exp(-0.5 * ((t - TEMPLATE_HALF - width_samples) / 3.0) ** 2)
    return trough + peak


def trial_windows(
    s: SyntheticSession, truth: GroundTruth, event: str = "delay"
) -> dict[int, tuple[float, float, str]]:
    """Per ephys trial with behavior: (start, stop) in samples of the last ``event`` period
    (start + duration) on the AP clock, and the trial's instruction."""
    by_number = {t.trial: t for t in truth.ingested}
    out = {}
    for k, number in enumerate(s.ephys_behavior_trials.tolist()):
        trial = by_number.get(int(number))
        if trial is None or trial.instruction is None:
            continue
        periods = [(t0, d) for name, t0, d in trial.events if name == event]
        if not periods:
            continue
        t0, dur = periods[-1]
        start = s.ephys_trial_starts[k] + t0 * s.sampling_rate
        out[k] = (start, start + dur * s.sampling_rate, trial.instruction)
    return out


def add_selective_units(
    s: SyntheticSession,
    truth: GroundTruth,
    preference: Mapping[int, int],
    *,
    hemisphere: str,
    extra_rate: float = 40.0,
    seed: int = 0,
) -> int:
    """Make units delay-selective: ``preference[unit_id]`` +1 contra, -1 ipsi to ``hemisphere``.

    Extra spikes are added at ``extra_rate`` Hz in the delay period of every trial of the
    preferred instruction; the phy files and ``s`` are rewritten in time order. Returns the
    number of spikes added.
    """
    if s.extra.get("pc_features") or (s.ks_dir / "pc_features.npy").exists():
        raise ValueError("sessions with pc_features.npy are not supported")
    rng = np.random.default_rng(seed)
    windows = trial_windows(s, truth)
    contra = "right" if hemisphere == "left" else "left"
    new_samples, new_units = [], []
    for unit_id, pref in sorted(preference.items()):
        if pref == 0:
            continue
        side = contra if pref > 0 else hemisphere
        for start, stop, instruction in windows.values():
            if instruction != side:
                continue
            n = rng.poisson(extra_rate * (stop - start) / s.sampling_rate)
            new_samples.append(np.floor(rng.uniform(start, stop, n)).astype(np.int64))
            new_units.append(np.full(n, unit_id, dtype=np.int64))
    if not new_samples:
        return 0
    added = np.concatenate(new_samples)
    clusters = np.concatenate(new_units)
    folder = s.ks_dir
    times = np.load(folder / "spike_times.npy").reshape(-1).astype(np.int64)
    spike_clusters = np.load(folder / "spike_clusters.npy").reshape(-1)
    templates = np.load(folder / "spike_templates.npy").reshape(-1)
    amps = np.load(folder / "amplitudes.npy").reshape(-1)
    mean_amp = {u: float(amps[spike_clusters == u].mean()) for u in np.unique(clusters)}
    all_times = np.concatenate([times, added])
    order = np.argsort(all_times, kind="stable")
    all_clusters = np.concatenate([spike_clusters, clusters.astype(spike_clusters.dtype)])[order]
    all_templates = np.concatenate([templates, clusters.astype(templates.dtype)])[order]
    new_amps = np.array([mean_amp[u] for u in clusters], dtype=amps.dtype)
    all_amps = np.concatenate([amps, new_amps])[order]
    all_times = all_times[order]
    np.save(folder / "spike_times.npy", all_times.astype(np.uint64).reshape(-1, 1))
    np.save(folder / "spike_clusters.npy", all_clusters)
    np.save(folder / "spike_templates.npy", all_templates)
    np.save(folder / "amplitudes.npy", all_amps.reshape(-1, 1))
    s.spike_samples = all_times
    s.spike_clusters = all_clusters.astype(np.int64)
    s.extra["selectivity"] = {int(u): int(p) for u, p in preference.items()}
    s.extra["selectivity_hemisphere"] = hemisphere
    return int(added.size)


def set_waveform_widths(s: SyntheticSession, widths: Mapping[int, float]) -> None:
    """Give units (by id) a waveform whose trough-to-peak width is ``widths[id]`` samples."""
    folder = s.ks_dir
    old = waveform_shape(10.0)  # only its value at the trough is used, as a scale
    path = folder / "templates.npy"
    templates = np.load(path)
    for unit_id, width in widths.items():
        spatial = templates[unit_id, TEMPLATE_HALF, :] / old[TEMPLATE_HALF]
        templates[unit_id] = (waveform_shape(width)[:, None] * spatial[None, :]).astype(
            templates.dtype
        )
    np.save(path, templates)
    mw_path = folder / "mean_waveforms.npy"
    if mw_path.exists():
        mw = np.load(mw_path)
        order = s.extra.get("metrics_order")
        for row in range(mw.shape[0]):
            unit_id = int(s.unit_ids[order[row]]) if order is not None else None
            if unit_id not in widths:
                continue
            channel = int(np.argmax(np.abs(mw[row]).max(axis=1)))
            scale = -float(mw[row, channel, TEMPLATE_HALF])
            mw[row, channel, :] = waveform_shape(widths[unit_id]) * scale
        np.save(mw_path, mw)
    s.extra["waveform_widths"] = {int(u): float(w) for u, w in widths.items()}
