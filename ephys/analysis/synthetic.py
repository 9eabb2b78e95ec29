"""Synthetic delay-response sessions with known ground truth, for tests and the benchmark.

Trial structure (relative to each trial start): sample at 0.3–0.8 s, delay 1.3 s later, go after
the delay duration (1.2 s for most trials), trial end 2–3 s after the go cue, then 0.5–1.5 s
of inter-trial interval.  Spikes: a homogeneous Poisson background per unit over the whole
recording (including before the first trial start, to exercise the dropping rule) plus, for
"selective" units, extra delay-period spikes on the trials of the preferred instruction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .trial_conditions import TrialLabels

__all__ = ["SyntheticSession", "make_session"]


@dataclass
class SyntheticSession:
    spike_trains: list[np.ndarray]
    trial_starts: np.ndarray  # same clock as the spikes
    go_cues: np.ndarray  # relative to trial start; NaN = no go cue
    trial_durations: np.ndarray  # stop - start
    trialend: np.ndarray  # trialend event time relative to trial start
    events: dict[str, np.ndarray]  # sample / delay / go relative to trial start
    delay_duration: np.ndarray
    labels: TrialLabels
    hemisphere: np.ndarray  # per unit, 'left' / 'right'
    delay_preference: np.ndarray  # per unit: +1 contra, -1 ipsi, 0 none (ground truth)
    waveforms: np.ndarray  # (n_units, 82) mean waveforms
    sampling_rate: float


def _waveform(rng: np.random.Generator, width_samples: float, n: int = 82) -> np.ndarray:
    t = np.arange(n, dtype=np.float64)
    trough = 30 + rng.uniform(-2, 2)
    peak = trough + width_samples
    w = -np.exp(-0.5 * ((t - trough) / 2.0) ** 2) + 0.4 * np.exp(-0.5 * ((t - peak) / 4.0) ** 2)
    return w * rng.uniform(50, 200) + rng.normal(0, 0.5, n)


def make_session(
    seed: int = 0,
    n_units: int = 20,
    n_trials: int = 120,
    rate_range: tuple[float, float] = (2.0, 15.0),
    selective_fraction: float = 0.4,
    extra_rate: float = 25.0,
    hemisphere: str | None = "left",
    n_silent_units: int = 1,
    duplicate_units: int = 2,
    free_water_fraction: float = 0.03,
) -> SyntheticSession:
    """Random session; ``hemisphere=None`` draws a hemisphere per unit."""
    rng = np.random.default_rng(seed)
    sample = rng.uniform(0.3, 0.8, n_trials)
    delay_dur = rng.choice([1.2] * 8 + [0.6, 1.8], n_trials)
    delay = sample + 1.3
    go = delay + delay_dur
    trialend = go + rng.uniform(2.0, 3.0, n_trials)
    length = trialend + rng.uniform(0.5, 1.5, n_trials)
    first = 2.0
    starts = first + np.concatenate(([0.0], np.cumsum(length[:-1])))
    session_end = starts[-1] + length[-1] + 1.0

    instruction = rng.choice(np.array(["left", "right"], dtype=object), n_trials)
    outcome = rng.choice(
        np.array(["hit", "miss", "ignore"], dtype=object), n_trials, p=[0.7, 0.2, 0.1]
    )
    early = rng.choice(
        np.array(["no early", "early", "early, presample only"], dtype=object),
        n_trials,
        p=[0.85, 0.1, 0.05],
    )
    auto_water = rng.random(n_trials) < 0.05
    free_water = rng.random(n_trials) < free_water_fraction
    go_cues = np.where(free_water, np.nan, go)
    events = {"sample": sample, "delay": delay, "go": go_cues.copy()}

    # photostim events: ~25% of trials, some with two events, some without brain region
    stim_trials = np.flatnonzero(rng.random(n_trials) < 0.25)
    ev_trial = list(stim_trials)
    ev_area: list[object] = ["ALM"] * len(stim_trials)
    ev_lat = list(rng.choice(["left", "right", "both"], len(stim_trials)))
    extra = rng.choice(n_trials, size=max(1, n_trials // 50), replace=False)
    for t in extra:
        ev_trial.append(int(t))
        ev_area.append(None if rng.random() < 0.5 else "ALM")
        ev_lat.append(str(rng.choice(["left", "right", "both"])))
    labels = TrialLabels(
        task=np.array(["audio delay"] * n_trials, dtype=object),
        task_protocol=np.ones(n_trials, dtype=np.int64),
        trial_instruction=instruction,
        outcome=outcome,
        early_lick=early,
        auto_water=auto_water,
        free_water=free_water,
        stim_event_trial=np.array(ev_trial, dtype=np.int64),
        stim_event_brain_area=np.array(ev_area, dtype=object),
        stim_event_laterality=np.array(ev_lat, dtype=object),
    )

    if hemisphere is None:
        hemi = rng.choice(np.array(["left", "right"], dtype=object), n_units)
    else:
        hemi = np.array([hemisphere] * n_units, dtype=object)
    pref = np.zeros(n_units, dtype=np.int64)
    n_sel = int(round(selective_fraction * n_units))
    pref[:n_sel] = rng.choice([1, -1], n_sel)
    rates = rng.uniform(*rate_range, n_units)

    trains = []
    for u in range(n_units):
        if u >= n_units - n_silent_units:
            trains.append(np.zeros(0))
            continue
        n = rng.poisson(rates[u] * session_end)
        parts = [rng.uniform(0.0, session_end, n)]
        if pref[u]:
            contra_side = "right" if hemi[u] == "left" else "left"
            side = contra_side if pref[u] > 0 else hemi[u]
            tr = np.flatnonzero(instruction == side)
            k = rng.poisson(extra_rate * delay_dur[tr])
            lo = np.repeat(starts[tr] + delay[tr], k)
            width = np.repeat(delay_dur[tr], k)
            parts.append(lo + rng.random(k.sum()) * width)
        s = np.sort(np.concatenate(parts))
        if u < duplicate_units and len(s) > 10:
            dup = rng.choice(len(s), size=max(1, len(s) // 50), replace=False)
            s = np.sort(np.concatenate([s, s[dup]]))
        trains.append(s)

    widths = rng.choice([8.0, 20.0], n_units)  # samples: ~0.27 ms (FS) or ~0.67 ms (Pyr)
    waveforms = np.stack([_waveform(rng, w) for w in widths])
    return SyntheticSession(
        spike_trains=trains,
        trial_starts=starts,
        go_cues=go_cues,
        trial_durations=trialend.copy(),
        trialend=trialend,
        events=events,
        delay_duration=delay_dur,
        labels=labels,
        hemisphere=hemi,
        delay_preference=pref,
        waveforms=waveforms,
        sampling_rate=30000.0,
    )
