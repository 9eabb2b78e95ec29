"""Bitcode files, NI decoding and trial alignment (spec §14.5-§14.6)."""

from pathlib import Path

import numpy as np
import pytest
import scipy.io as sio

from ephys.ingest.bitcode import (
    align_ni_trials,
    align_trials,
    decode_ni_bitcodes,
    find_bitcode_mat,
    read_bitcode_mat,
    read_ni_bitcodes,
    spike_times_relative,
    to_samples,
    trialize_spikes,
)
from ephys.ingest.errors import BitCodeError, BitCodeFileNotFoundError
from ephys.ingest.synthetic import write_ni_bitcode_files
from mapsite.core.testing import real_data_dir

REAL = real_data_dir()
REAL_CODES = [
    "1111100101111011",
    "1010100010000101",
    "0000111111100101",
    "0110110110111101",
    "1100000110100010",
    "1011110001110101",
    "1000101101101011",
    "0111001110010110",
    "0101110110011101",
    "1111000001001100",
]


def behavior_codes_from_real_bpod() -> dict[int, str]:
    sd = sio.loadmat(
        REAL / "dl25_tw2_20180225_102508.mat", squeeze_me=True, struct_as_record=False
    )["SessionData"]
    return {i + 1: str(t.GUI.randomID) for i, t in enumerate(sd.TrialSettings)}


# ---- bitcode.mat --------------------------------------------------------------------------
def test_real_bitcode_file_lacks_strig_and_gocue():
    path = REAL / "dl25_bitcode.mat"
    with pytest.raises(BitCodeError) as e:
        read_bitcode_mat(path)
    msg = str(e.value)
    assert str(path) in msg
    assert "missing sTrig, goCue" in msg
    assert "bitCodeS" in msg and "bitcode" in msg  # says what the file does have


def test_real_bitcodes_align_with_real_behavior_file():
    behavior = behavior_codes_from_real_bpod()
    assert len(behavior) == 11
    codes = sio.loadmat(REAL / "dl25_bitcode.mat", squeeze_me=True)["bitCodeS"].tolist()
    assert codes == REAL_CODES
    starts = np.arange(10) * 300_000 + 1000
    go = starts + 90_000
    al = align_trials(codes, starts, go, behavior)
    assert al.behavior_trials.tolist() == list(range(1, 11))  # trial 11 not recorded
    assert np.array_equal(al.trial_starts, starts) and np.array_equal(al.go_cues, go)


def write_mat(path, **variables):
    sio.savemat(path, variables)
    return path


def test_read_bitcode_mat_fields(tmp_path):
    p = write_mat(
        tmp_path / "dl25_x_bitcode.mat",
        sTrig=np.array([100.0, 2000.0, 5000.0]),
        goCue=np.array([900.0, 2800.0]),
        bitCodeS=np.array(["0101", "1100", "0011"]),
        trialNum=np.array([4, 5, 6]),
        headings=np.array(["a", "b"]),
    )
    bf = read_bitcode_mat(p)
    assert bf.trial_starts.tolist() == [100.0, 2000.0, 5000.0]
    assert bf.go_cues.tolist() == [900.0, 2800.0]
    assert bf.bitcodes == ["0101", "1100", "0011"]
    assert bf.trial_num.tolist() == [4, 5, 6]
    assert "headings" in bf.extra
    assert find_bitcode_mat(tmp_path, "dl25") == p
    assert find_bitcode_mat(tmp_path, "other") is None


def test_read_bitcode_mat_matrix_fallback_and_count_check(tmp_path):
    p = write_mat(
        tmp_path / "a.mat",
        sTrig=np.array([1.0, 2.0]),
        goCue=np.array([1.5, 2.5]),
        bitcode=np.array([[1, 0, 1], [0, 0, 1]], dtype=np.uint8),
    )
    assert read_bitcode_mat(p).bitcodes == ["101", "001"]
    p = write_mat(
        tmp_path / "b.mat",
        sTrig=np.array([1.0, 2.0, 3.0]),
        goCue=np.array([1.5, 2.5, 3.5]),
        bitCodeS=np.array(["01", "10"]),
    )
    with pytest.raises(BitCodeError, match="2 bit strings .* but 3 trial starts"):
        read_bitcode_mat(p)


def test_read_bitcode_mat_not_a_mat(tmp_path):
    p = tmp_path / "c_bitcode.mat"
    p.write_text("hello")
    with pytest.raises(BitCodeError, match="not a readable MATLAB file"):
        read_bitcode_mat(p)
    with pytest.raises(BitCodeFileNotFoundError):
        read_bitcode_mat(tmp_path / "missing.mat")


# ---- NI text files ------------------------------------------------------------------------
def test_ni_round_trip_with_jitter(tmp_path):
    rng = np.random.default_rng(1)
    codes = ["".join(rng.choice(["0", "1"], 10)) for _ in range(30)] + ["0000000000", "1111111111"]
    starts = np.cumsum(rng.uniform(3, 6, len(codes)))
    write_ni_bitcode_files(tmp_path, starts, codes, jitter_s=0.0015)
    ni = read_ni_bitcodes(tmp_path)
    assert ni.bitcodes == codes
    assert np.allclose(ni.trial_starts, starts, atol=1e-6)
    assert ni.trial_start_file.name.endswith(".XA_0_0.adj.txt")


def test_ni_prefers_adj_files(tmp_path):
    write_ni_bitcode_files(tmp_path, [1.0, 5.0], ["1000000000", "0100000000"], adj=False)
    write_ni_bitcode_files(tmp_path, [1.1, 5.1], ["0000000001", "0000000011"], adj=True)
    ni = read_ni_bitcodes(tmp_path)
    assert ni.bitcodes == ["0000000001", "0000000011"]
    assert ni.bit_file.name.endswith(".XA_1_2.adj.txt")


def test_ni_first_bit_timing():
    # one pulse 0.05 s after the start is bit 0; 0.05 + 3 * 0.007 is bit 3
    assert decode_ni_bitcodes([10.0], [10.05, 10.071]) == ["1001000000"]
    with pytest.raises(BitCodeError, match="bit slot 12"):
        decode_ni_bitcodes([10.0], [10.05 + 12 * 0.007])


def test_ni_missing_or_empty_files(tmp_path):
    with pytest.raises(BitCodeFileNotFoundError, match="XA_0_0"):
        read_ni_bitcodes(tmp_path)
    (tmp_path / "r.nidq.XA_0_0.txt").write_text("1.0\n2.0\n")
    (tmp_path / "r.nidq.XA_1_2.txt").write_text("")
    ni = read_ni_bitcodes(tmp_path)
    assert ni.bitcodes is None and ni.trial_starts.tolist() == [1.0, 2.0]
    (tmp_path / "r.nidq.XA_0_0.txt").write_text("1.0\nabc\n")
    with pytest.raises(BitCodeError, match="one time"):
        read_ni_bitcodes(tmp_path)


def test_align_ni_trials(tmp_path):
    behavior = {1: "0000000001", 2: "0000000010", 3: "0000000011", 4: "0000000100"}
    go_s = {1: 2.0, 2: 2.5, 3: 3.0, 4: 2.2}
    # ephys misses behavior trial 1 and has an unknown trial at the end
    write_ni_bitcode_files(
        tmp_path, [10.0, 20.0, 30.0, 40.0], ["0000000010", "0000000011", "0000000100", "1111111111"]
    )
    ni = read_ni_bitcodes(tmp_path)
    al = align_ni_trials(ni, behavior, go_s, sampling_rate=1000.0, margin_samples=5)
    assert al.behavior_trials.tolist() == [2, 3, 4]
    assert al.ephys_indices.tolist() == [0, 1, 2]
    assert np.allclose(al.trial_starts, [9995, 19995, 29995])
    assert np.allclose(al.go_cues, [12500, 23000, 32200])
    mtl = align_ni_trials(ni, behavior, None, sampling_rate=1000.0)
    assert np.allclose(mtl.go_cues, [10000, 20000, 30000])


def test_align_ni_one_to_one_only_when_allowed():
    from ephys.ingest.bitcode import NiBitcodes

    ni = NiBitcodes(np.array([1.0, 2.0]), None, Path("x.XA_0_0.txt"), None)
    behavior = {1: "a", 2: "b"}
    al = align_ni_trials(ni, behavior, None, sampling_rate=100.0, allow_one_to_one=True)
    assert al.one_to_one and al.behavior_trials.tolist() == [1, 2]
    with pytest.raises(BitCodeFileNotFoundError, match="not allowed"):
        align_ni_trials(ni, behavior, None, sampling_rate=100.0)
    with pytest.raises(BitCodeFileNotFoundError, match="impossible"):
        align_ni_trials(ni, {1: "a"}, None, sampling_rate=100.0, allow_one_to_one=True)


# ---- align_trials (bitcode.mat) -----------------------------------------------------------
BEHAVIOR = {t: format(t * 37 % 65536, "016b") for t in range(1, 21)}


def ephys_for(trials, step=30000):
    codes = [BEHAVIOR[t] for t in trials]
    starts = np.arange(len(trials)) * step + 500
    return codes, starts, starts + 9000


def test_align_ephys_starts_late():
    codes, starts, go = ephys_for(range(5, 21))
    al = align_trials(codes, starts, go, BEHAVIOR, margin_samples=300)
    assert al.behavior_trials.tolist() == list(range(5, 21))
    assert np.array_equal(al.trial_starts, starts - 300)
    assert np.array_equal(al.go_cues, go)  # the margin applies to trial starts only
    assert al.first_trial_start == 200 and not al.used_trial_num


def test_align_truncates_ephys_running_longer():
    codes, starts, go = ephys_for(range(15, 21))
    codes += ["1" * 16, "0" * 16]
    starts = np.append(starts, [starts[-1] + 30000, starts[-1] + 60000])
    go = np.append(go, [go[-1] + 30000, go[-1] + 60000])
    al = align_trials(codes, starts, go, BEHAVIOR)
    assert al.behavior_trials.tolist() == [15, 16, 17, 18, 19, 20]
    assert al.n_trials == 6 and al.trial_starts.size == 6 and al.go_cues.size == 6


def test_align_mismatch_without_and_with_trialnum():
    codes, starts, go = ephys_for(range(3, 9))
    codes[2] = "1" * 16
    with pytest.raises(BitCodeError, match="Bitcode mismatch: ephys trial 3") as e:
        align_trials(codes, starts, go, BEHAVIOR, source="/x/SC_bitcode.mat")
    assert "/x/SC_bitcode.mat" in str(e.value)
    al = align_trials(codes, starts, go, BEHAVIOR, trial_num=np.arange(3, 9))
    assert al.used_trial_num and al.behavior_trials.tolist() == [3, 4, 5, 6, 7, 8]
    with pytest.raises(BitCodeError, match="trialNum has 5 entries but there are 6"):
        align_trials(codes, starts, go, BEHAVIOR, trial_num=np.arange(3, 8))
    with pytest.raises(BitCodeError, match="do not exist: \\[99\\]"):
        align_trials(codes, starts, go, BEHAVIOR, trial_num=[3, 4, 5, 6, 7, 99])


def test_align_first_code_unknown():
    codes, starts, go = ephys_for(range(3, 6))
    codes[0] = "1" * 16
    with pytest.raises(BitCodeError, match="first ephys bitcode 1111111111111111 is not among"):
        align_trials(codes, starts, go, BEHAVIOR)


def test_align_free_water_trials():
    behavior = {t: BEHAVIOR[t] for t in range(1, 6)}
    codes, starts, go = ephys_for(range(1, 6))
    go_short = go[[0, 2, 4]]  # trials 2 and 4 were free water
    al = align_trials(codes, starts, go_short, behavior, free_water_trials=[2, 4])
    assert np.array_equal(np.isnan(al.go_cues), [False, True, False, True, False])
    assert al.go_cues[2] == go[2]
    with pytest.raises(BitCodeError, match="Mismatch goCue \\(3 elements\\) and non-free-water"):
        align_trials(codes, starts, go_short, behavior, free_water_trials=[2])
    with pytest.raises(BitCodeError, match="Mismatch sTrig \\(5 elements\\) and total behavior"):
        align_trials(codes, starts, go_short, BEHAVIOR, free_water_trials=[2, 4])
    with pytest.raises(BitCodeError, match="6 go cues but only 5"):
        align_trials(codes, starts, np.append(go, 1.0), behavior)


def test_align_count_and_order_checks():
    codes, starts, go = ephys_for(range(1, 4))
    with pytest.raises(BitCodeError, match="2 bitcodes but 3 trial starts"):
        align_trials(codes[:2], starts, go, BEHAVIOR)
    with pytest.raises(BitCodeError, match="strictly increasing"):
        align_trials(codes, starts[::-1], go, BEHAVIOR)


def test_seconds_are_converted_to_samples():
    codes, starts, go = ephys_for(range(1, 4))
    al = align_trials(
        codes, starts / 30000.0 + 0.00001, go / 30000.0, BEHAVIOR, sampling_rate=30000.0
    )
    assert np.allclose(al.trial_starts, starts + 0.3)
    assert np.allclose(al.go_cues, go)
    assert to_samples(np.array([1.0, 2.0]), 100.0).tolist() == [1.0, 2.0]


def test_trialize_and_relative_times():
    codes, starts, go = ephys_for(range(1, 4), step=1000)  # starts 500, 1500, 2500
    al = align_trials(codes, starts, go, BEHAVIOR, margin_samples=100)  # 400, 1400, 2400
    spikes = np.array([100, 400, 1399, 1400, 2399, 2400, 99999])
    row, rel = trialize_spikes(spikes, al, 1000.0)
    assert row.tolist() == [-1, 0, 0, 1, 1, 2, 2]
    assert np.isnan(rel[0])
    assert np.allclose(rel[1:], (spikes[1:] - go[[0, 0, 1, 1, 2, 2]]) / 1000.0)
    assert np.allclose(spike_times_relative(spikes, al, 1000.0), (spikes - 400) / 1000.0)
    # fast path over per-unit time-sorted segments gives the same answer
    grouped = np.array([1399, 1400, 99999, 100, 400, 2399, 2400])
    row2, rel2 = trialize_spikes(grouped, al, 1000.0, offsets=np.array([0, 3, 7]))
    row_ref, rel_ref = trialize_spikes(grouped, al, 1000.0)
    assert row2.tolist() == row_ref.tolist() == [0, 1, 2, -1, 0, 1, 2]
    assert np.array_equal(rel2, rel_ref, equal_nan=True)
