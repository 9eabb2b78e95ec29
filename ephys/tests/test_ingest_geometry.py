"""Neuropixels geometry per spec §2.1."""

import numpy as np
import pytest

from ephys.ingest.errors import ProbeInsertionError
from ephys.ingest.geometry import (
    NP1_3A,
    NP1_3B,
    NP2_MS,
    NP2_SS,
    electrode_number,
    electrode_numbers,
    neuropixels_electrodes,
)


def row(probe_type, electrode):
    e = neuropixels_electrodes(probe_type)[electrode - 1]
    assert e["electrode"] == electrode
    return (
        int(e["shank"]),
        int(e["shank_col"]),
        int(e["shank_row"]),
        float(e["x_coord"]),
        float(e["y_coord"]),
    )


@pytest.mark.parametrize(
    ("probe_type", "count", "shanks"),
    [(NP1_3A, 960, 1), (NP1_3B, 960, 1), (NP2_SS, 1280, 1), (NP2_MS, 5120, 4)],
)
def test_counts_and_numbering(probe_type, count, shanks):
    el = neuropixels_electrodes(probe_type)
    assert el.size == count
    assert np.array_equal(el["electrode"], np.arange(1, count + 1))
    assert sorted(set(el["shank"].tolist())) == list(range(1, shanks + 1))
    assert set(el["shank_col"].tolist()) == {1, 2}
    # every (shank, col, row) is unique
    keys = set(zip(el["shank"].tolist(), el["shank_col"].tolist(), el["shank_row"].tolist()))
    assert len(keys) == count


def test_np1_stagger():
    # 0-based even rows: x = 16, 48; odd rows: x = 0, 32; y = row * 20
    assert row(NP1_3B, 1) == (1, 1, 1, 16.0, 0.0)
    assert row(NP1_3B, 2) == (1, 2, 1, 48.0, 0.0)
    assert row(NP1_3B, 3) == (1, 1, 2, 0.0, 20.0)
    assert row(NP1_3B, 4) == (1, 2, 2, 32.0, 20.0)
    assert row(NP1_3B, 384) == (1, 2, 192, 32.0, 3820.0)
    assert row(NP1_3A, 960) == (1, 2, 480, 32.0, 9580.0)
    assert row(NP1_3A, 959) == (1, 1, 480, 0.0, 9580.0)


def test_np2_single_shank_no_stagger():
    assert row(NP2_SS, 1) == (1, 1, 1, 0.0, 0.0)
    assert row(NP2_SS, 2) == (1, 2, 1, 32.0, 0.0)
    assert row(NP2_SS, 3) == (1, 1, 2, 0.0, 15.0)
    assert row(NP2_SS, 1280) == (1, 2, 640, 32.0, 9585.0)


def test_np2_multi_shank_offsets():
    assert row(NP2_MS, 1) == (1, 1, 1, 0.0, 0.0)
    assert row(NP2_MS, 1281) == (2, 1, 1, 250.0, 0.0)
    assert row(NP2_MS, 2562) == (3, 2, 1, 532.0, 0.0)
    assert row(NP2_MS, 5120) == (4, 2, 640, 782.0, 9585.0)
    el = neuropixels_electrodes(NP2_MS)
    assert el["x_coord"].min() == 0.0 and el["x_coord"].max() == 782.0


def test_electrode_number_inverse():
    for probe_type in (NP1_3B, NP2_MS):
        el = neuropixels_electrodes(probe_type)
        nums = electrode_numbers(probe_type, el["shank"], el["shank_col"], el["shank_row"])
        assert np.array_equal(nums, el["electrode"])
    assert electrode_number(NP2_MS, 2, 1, 1) == 1281


def test_off_probe_and_unsupported():
    with pytest.raises(ProbeInsertionError, match="not on a neuropixels 1.0 - 3B"):
        electrode_number(NP1_3B, 1, 1, 481)
    with pytest.raises(ProbeInsertionError, match="unsupported probe type 'neuropixels UHD'"):
        neuropixels_electrodes("neuropixels UHD")


def test_cached_array_is_read_only():
    el = neuropixels_electrodes(NP1_3B)
    with pytest.raises(ValueError):
        el["x_coord"][0] = 1.0
