"""Neuropixels electrode geometry (spec §2.1, `ProbeType.create_neuropixels_probe`).

Electrodes are numbered 1-based in pairs per row (two columns per shank), continuing across
shanks. Coordinates are µm with (0, 0) at the bottom-left of the probe (tip excluded).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

from .errors import ProbeInsertionError

NP1_3A = "neuropixels 1.0 - 3A"
NP1_3B = "neuropixels 1.0 - 3B"
NP2_SS = "neuropixels 2.0 - SS"
NP2_MS = "neuropixels 2.0 - MS"
NEUROPIXELS_PROBE_TYPES = (NP1_3A, NP1_3B, NP2_SS, NP2_MS)

ELECTRODE_DTYPE = np.dtype(
    [
        ("electrode", np.int32),
        ("shank", np.int16),
        ("shank_col", np.int16),
        ("shank_row", np.int16),
        ("x_coord", np.float64),
        ("y_coord", np.float64),
    ]
)


@dataclass(frozen=True)
class ProbeLayout:
    """Parameters of one probe type: sites per shank, pitches (µm), stagger, shank count."""

    site_count: int
    col_spacing: float
    row_spacing: float
    stagger: float
    shank_count: int = 1
    shank_spacing: float = 250.0
    col_count: int = 2

    @property
    def row_count(self) -> int:
        return self.site_count // self.col_count


PROBE_LAYOUTS: dict[str, ProbeLayout] = {
    NP1_3A: ProbeLayout(960, 32.0, 20.0, 16.0),
    NP1_3B: ProbeLayout(960, 32.0, 20.0, 16.0),
    NP2_SS: ProbeLayout(1280, 32.0, 15.0, 0.0),
    NP2_MS: ProbeLayout(1280, 32.0, 15.0, 0.0, shank_count=4, shank_spacing=250.0),
}


def probe_layout(probe_type: str) -> ProbeLayout:
    """Layout of a supported Neuropixels type; anything else is a ProbeInsertionError."""
    try:
        return PROBE_LAYOUTS[probe_type]
    except KeyError:
        raise ProbeInsertionError(
            None,
            f"unsupported probe type {probe_type!r}; supported: {', '.join(PROBE_LAYOUTS)}",
        ) from None


@cache
def _electrodes(probe_type: str) -> np.ndarray:
    lay = probe_layout(probe_type)
    n_shank_sites = lay.site_count
    idx = np.arange(n_shank_sites)
    row0 = idx // lay.col_count  # 0-based row, tip -> tail
    col0 = idx % lay.col_count  # 0-based column, left -> right
    # NP1.0 stagger: 0-based even rows are shifted right by `stagger` (x = 16, 48), odd rows not.
    x = col0 * lay.col_spacing + np.where(row0 % 2 == 0, lay.stagger, 0.0)
    y = row0 * lay.row_spacing
    out = np.empty(n_shank_sites * lay.shank_count, dtype=ELECTRODE_DTYPE)
    for s in range(lay.shank_count):
        part = out[s * n_shank_sites : (s + 1) * n_shank_sites]
        part["electrode"] = s * n_shank_sites + idx + 1
        part["shank"] = s + 1
        part["shank_col"] = col0 + 1
        part["shank_row"] = row0 + 1
        part["x_coord"] = x + s * lay.shank_spacing
        part["y_coord"] = y
    out.flags.writeable = False
    return out


def neuropixels_electrodes(probe_type: str) -> np.ndarray:
    """All electrodes of a Neuropixels probe type as a structured array (ELECTRODE_DTYPE).

    Row i is electrode i+1. The array is cached and read-only; copy it to modify.
    """
    return _electrodes(probe_type)


def electrode_number(probe_type: str, shank: int, shank_col: int, shank_row: int) -> int:
    """1-based electrode number from 1-based (shank, col, row); ProbeInsertionError if off-probe."""
    lay = probe_layout(probe_type)
    if not (
        1 <= shank <= lay.shank_count
        and 1 <= shank_col <= lay.col_count
        and 1 <= shank_row <= lay.row_count
    ):
        raise ProbeInsertionError(
            None,
            f"(shank {shank}, col {shank_col}, row {shank_row}) is not on a {probe_type}",
        )
    return (shank - 1) * lay.site_count + (shank_row - 1) * lay.col_count + shank_col


def electrode_numbers(
    probe_type: str, shank: np.ndarray, shank_col: np.ndarray, shank_row: np.ndarray
) -> np.ndarray:
    """Vectorised electrode_number over 1-based arrays (int64)."""
    lay = probe_layout(probe_type)
    shank, shank_col, shank_row = (
        np.asarray(a, dtype=np.int64) for a in (shank, shank_col, shank_row)
    )
    bad = (
        (shank < 1)
        | (shank > lay.shank_count)
        | (shank_col < 1)
        | (shank_col > lay.col_count)
        | (shank_row < 1)
        | (shank_row > lay.row_count)
    )
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ProbeInsertionError(
            None,
            f"{int(bad.sum())} shank-map entries are off the {probe_type} geometry, first: "
            f"(shank {shank[i]}, col {shank_col[i]}, row {shank_row[i]}) (1-based)",
        )
    return (shank - 1) * lay.site_count + (shank_row - 1) * lay.col_count + shank_col
