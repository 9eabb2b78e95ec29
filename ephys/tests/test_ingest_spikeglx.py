"""SpikeGLX .ap.meta parsing, probe detection, electrode configs (spec §2.2, §14.7)."""

import hashlib
from datetime import datetime

import numpy as np
import pytest

from ephys.ingest.errors import EphysIngestError, ProbeInsertionError, SpikeGLXMetaNotFoundError
from ephys.ingest.geometry import NP1_3A, NP1_3B, NP2_MS, NP2_SS
from ephys.ingest.spikeglx import (
    compact_ranges,
    make_electrode_config,
    parse_meta_text,
    read_ap_bin,
    read_spikeglx_meta,
)

from .data_helpers import np1_meta_text


@pytest.fixture
def meta_file(tmp_path):
    def write(text, name="run_g0_tcat.imec0.ap.meta"):
        p = tmp_path / name
        p.write_text(text)
        return p

    return write


def test_parse_values_and_structures(meta_file):
    m = read_spikeglx_meta(meta_file(np1_meta_text()))
    assert m.raw["imSampRate"] == 30000.0 and isinstance(m.raw["nSavedChans"], int)
    assert m.raw["fileCreateTime"] == "2019-03-03T10:00:05"
    assert m.shank_map_header == (1, 2, 480)
    assert m.shank_map.shape == (384, 4)
    assert m.shank_map[3].tolist() == [0, 1, 1, 1]
    assert m.chan_map_header == (384, 384, 1)
    assert m.chan_map[0] == ("AP0", 0, 0) and m.chan_map[-1] == ("SY0", 384, 384)
    assert m.imro_header == (0, 384) and m.imro_table[5] == (5, 0, 0, 500, 250, 1)


def test_parse_meta_text_edge_cases():
    d = parse_meta_text("a=1\nb=2.5\nc=x=y\nnot a pair\nd= text \n")
    assert d == {"a": 1, "b": 2.5, "c": "x=y", "d": "text"}


def test_np1_3b_properties(meta_file):
    m = read_spikeglx_meta(meta_file(np1_meta_text()))
    assert m.probe_type == NP1_3B
    assert m.serial_number == "18005117162"
    assert m.sampling_rate == 30000.0
    assert m.recording_time == datetime(2019, 3, 3, 10, 0, 5)
    assert m.pretrigger_margin_samples == 3000
    assert np.array_equal(m.site_electrodes, np.arange(1, 385))
    assert m.site_is_used.sum() == 383 and not m.site_is_used[191]
    assert np.array_equal(m.sites_to_electrodes([1, 384]), [1, 384])
    assert np.allclose(m.uv_per_bit("ap"), 2.34375)
    assert np.allclose(m.uv_per_bit("lf"), 0.6 / 512 / 250 * 1e6)
    assert m.template_uv_per_bit == 2.34375


def test_np1_3a_uses_improbesn(meta_file):
    m = read_spikeglx_meta(meta_file(np1_meta_text(typ="3A")))
    assert m.probe_type == NP1_3A
    assert m.serial_number == "1234567"


@pytest.mark.parametrize(("code", "expected"), [(21, NP2_SS), (24, NP2_MS)])
def test_np2_detection_and_gain(meta_file, code, expected):
    text = np1_meta_text(extra={"imDatPrb_type": str(code), "imDatPrb_dock": "1"})
    m = read_spikeglx_meta(meta_file(text))
    assert m.probe_type == expected
    assert np.allclose(m.uv_per_bit(), 0.6 / 8192 / 80 * 1e6)
    assert m.template_uv_per_bit == 0.763


@pytest.mark.parametrize("code", [1030, 2013, 3])
def test_unsupported_probe_model(meta_file, code):
    p = meta_file(np1_meta_text(extra={"imDatPrb_type": str(code)}))
    with pytest.raises(ProbeInsertionError, match=f"imDatPrb_type={code}") as exc:
        read_spikeglx_meta(p).probe_type
    assert str(p) in str(exc.value)


def test_np1_without_type_key(meta_file):
    p = meta_file(np1_meta_text(drop=("typeImEnabled",)))
    with pytest.raises(ProbeInsertionError, match="typeEnabled"):
        read_spikeglx_meta(p).probe_type


@pytest.mark.parametrize(
    ("extra", "drop", "match"),
    [({}, ("imSampRate",), "imSampRate .* missing"), ({"imSampRate": "0"}, (), "not a positive")],
)
def test_sampling_rate_errors(meta_file, extra, drop, match):
    p = meta_file(np1_meta_text(extra=extra, drop=drop))
    with pytest.raises(ProbeInsertionError, match=match) as exc:
        read_spikeglx_meta(p).sampling_rate
    assert p.name in str(exc.value)


def test_missing_file_and_missing_fields(tmp_path, meta_file):
    with pytest.raises(SpikeGLXMetaNotFoundError):
        read_spikeglx_meta(tmp_path / "none.ap.meta")
    with pytest.raises(FileNotFoundError):
        read_spikeglx_meta(tmp_path / "none.ap.meta")
    m = read_spikeglx_meta(meta_file(np1_meta_text(drop=("imDatPrb_sn", "fileCreateTime"))))
    with pytest.raises(ProbeInsertionError, match="serial number"):
        m.serial_number
    with pytest.raises(ProbeInsertionError, match="fileCreateTime"):
        m.recording_time
    m = read_spikeglx_meta(meta_file(np1_meta_text(drop=("~snsShankMap",))))
    with pytest.raises(ProbeInsertionError, match="~snsShankMap is missing"):
        m.electrode_config


def test_recording_time_prefers_original(meta_file):
    text = np1_meta_text(extra={"fileCreateTime_original": "2019-03-03T09:59:00"})
    assert read_spikeglx_meta(meta_file(text)).recording_time == datetime(2019, 3, 3, 9, 59)


def test_shank_map_off_probe(meta_file):
    m = read_spikeglx_meta(meta_file(np1_meta_text(first_electrode_row=400)))
    with pytest.raises(ProbeInsertionError, match="off the neuropixels 1.0 - 3B geometry"):
        m.site_electrodes


def test_config_names():
    assert compact_ranges(np.arange(1, 385)) == "1-384"
    assert compact_ranges(np.r_[385:577, 1:193]) == "1-192; 385-576"
    assert compact_ranges([7]) == "7-7"


def test_config_from_meta_bank1(meta_file):
    m = read_spikeglx_meta(meta_file(np1_meta_text(first_electrode_row=192)))
    cfg = m.electrode_config
    assert cfg.name == "385-768"
    assert cfg.electrodes[0] == 385 and cfg.electrodes.size == 384
    members = cfg.members()
    assert members[191] == {
        "probe_type": NP1_3B,
        "electrode": 576,
        "is_used": False,
        "electrode_group": 0,
    }


def test_config_hash_matches_original_recipe():
    el = np.array([3, 1, 2])
    used = np.array([1, 1, 0])
    cfg = make_electrode_config(NP1_3B, el, used)
    h = hashlib.md5(usedforsecurity=False)
    for e, u in [(1, 1), (2, 0), (3, 1)]:
        member = {"probe_type": NP1_3B, "electrode": e, "is_used": u, "electrode_group": 0}
        h.update(str(member).encode())
    assert cfg.hash == h.hexdigest()
    assert cfg.name == "1-3"
    # deterministic and order-independent, but sensitive to is_used and probe type
    assert make_electrode_config(NP1_3B, el[::-1], used[::-1]).hash == cfg.hash
    assert make_electrode_config(NP1_3B, el, [1, 1, 1]).hash != cfg.hash
    assert make_electrode_config(NP1_3A, el, used).hash != cfg.hash


def test_config_duplicates_and_long_names():
    with pytest.raises(ProbeInsertionError, match="more than once"):
        make_electrode_config(NP1_3B, [1, 1, 2], [1, 1, 1])
    checker = np.arange(1, 769, 2)  # every other electrode -> 384 ranges
    cfg = make_electrode_config(NP1_3B, checker, np.ones(384))
    assert len(cfg.name) <= 64 and cfg.name.startswith("384 ranges 1-767 #")


def test_read_ap_bin_size_check(meta_file):
    p = meta_file(np1_meta_text(n_channels=4, extra={"fileSizeBytes": str(10 * 5 * 2)}))
    m = read_spikeglx_meta(p)
    data = np.arange(50, dtype=np.int16)
    data.tofile(p.with_suffix(".bin"))
    raw = read_ap_bin(m)
    assert raw.shape == (10, 5) and raw[1, 0] == 5
    data[:40].tofile(p.with_suffix(".bin"))
    with pytest.raises(EphysIngestError, match="corrupted or in transfer"):
        read_ap_bin(m)
