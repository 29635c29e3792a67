"""Tests written against planted bugs that the older suite let through (mutation testing, issue 11):
each pins a number worked out by hand or the exact field that must matter."""

import math

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from xlsr_helpers.cli.main import main
from xlsr_helpers.data.datasets import SegmentConfig
from xlsr_helpers.data.manifest import ManifestError, build_manifest, read_manifest
from xlsr_helpers.evaluate.scorefile import read_protocol
from xlsr_helpers.model.cache import cache_key

# CM scores of a hand-worked example: A07 below every bonafide (EER 0), A08 mixed in.
BONA = {"LA_E_b1": -2.0, "LA_E_b2": 3.0, "LA_E_b3": 4.0, "LA_E_b4": 5.0}
SPOOF = {"LA_E_s1": ("A07", -3.0), "LA_E_s2": ("A07", -2.5), "LA_E_s3": ("A07", -2.2),
         "LA_E_s4": ("A08", 2.0), "LA_E_s5": ("A08", 2.5), "LA_E_s6": ("A08", 3.5)}
# ASV: targets [0.5, 3, 4, 5], non-targets [-1, 0, 1, 2.5] -> ASV EER threshold 1.0 (the 4th sorted score),
# so Pmiss_asv = 1/4 (0.5 < 1), Pfa_asv = 2/4 (1.0 and 2.5 >= 1); spoofs all above: Pmiss_spoof_asv = 0.
ASV = [("target", 0.5), ("target", 3.0), ("target", 4.0), ("target", 5.0), ("nontarget", -1.0), ("nontarget", 0.0),
       ("nontarget", 1.0), ("nontarget", 2.5), ("spoof", 2.6), ("spoof", 3.5), ("spoof", 4.5), ("spoof", 6.0)]


def hand_tdcf():
    """The t-DCF values by hand. Sorted CM scores: -3s -2.5s -2.2s -2b 2s 2.5s 3b 3.5s 4b 5b; the
    point rejecting the 6 lowest has Pmiss_cm 1/4, Pfa_cm 1/6 and is the minimum of both curves:
    the ASV miss rate (C1) matters there."""
    ptar, pnon, pspoof = 0.95 * 0.99, 0.95 * 0.01, 0.05
    pmiss, pfa, pmiss_spoof = 0.25, 0.5, 0.0
    c1 = ptar * (1 - pmiss) - pnon * 10 * pfa  # 0.657875
    c2 = 10 * pspoof * (1 - pmiss_spoof)  # 0.5
    legacy = (c1 * 0.25 + c2 / 6) / min(c1, c2)  # 0.495604...
    c0 = ptar * pmiss + pnon * 10 * pfa  # 0.282625
    revised = (c0 + (ptar - c0) * 0.25 + c2 / 6) / (c0 + min(ptar - c0, c2))  # 0.677757...
    return legacy, revised


def write_case(tmp_path):
    proto = tmp_path / "ASVspoof2019.LA.cm.eval.trl.txt"
    proto.write_text("".join(f"LA_0001 {u} - - bonafide\n" for u in BONA)
                     + "".join(f"LA_0002 {u} - {a} spoof\n" for u, (a, _) in SPOOF.items()))
    scores = tmp_path / "scores.txt"
    scores.write_text("".join(f"{u} {s}\n" for u, s in BONA.items()) + "".join(f"{u} {s}\n" for u, (_, s) in SPOOF.items()))
    asv = tmp_path / "asv.txt"
    asv.write_text("".join(f"LA_0001 {'A08' if k == 'spoof' else 'bonafide'} {k} {s}\n" for k, s in ASV))
    return proto, scores, asv


def test_cli_prints_the_hand_computed_numbers(tmp_path, capsys):
    proto, scores, asv = write_case(tmp_path)
    assert main(["eer", str(scores), "--protocol", str(proto), "--asv-scores", str(asv)]) == 0
    out = capsys.readouterr().out
    legacy, revised = hand_tdcf()
    assert round(legacy, 5) == 0.4956 and round(revised, 4) == 0.6778  # the hand values themselves
    # EER: rejecting the 5 lowest gives Pmiss 1/4, Pfa 2/6 (|diff| 1/12, the first such point): (1/4 + 1/3) / 2
    assert "EER: 29.167 %  (threshold 2)" in out
    assert f"min t-DCF (2019 legacy): {legacy:.5f}" in out and f"min t-DCF (2021 revised): {revised:.5f}" in out
    table = {line.split()[0]: line.split() for line in out.splitlines() if line.split()[:1] in (["A07"], ["A08"], ["pooled"])}
    assert float(table["A07"][-1]) == 0.0 and table["A08"][-1] == "29.167"
    # the pooled row is all bonafide against all spoof (29.167), not the mean of the attacks (14.583)
    assert table["pooled"][-1] == "29.167"


def test_duplicate_trial_in_a_key_file_is_refused(tmp_path):
    proto, scores, _ = write_case(tmp_path)
    proto.write_text(proto.read_text() + "LA_0001 LA_E_b2 - - bonafide\n")
    with pytest.raises(ManifestError, match=r"1 duplicate id\(s\), e.g. \['LA_E_b2'\]"):
        read_protocol(proto)
    assert main(["eer", str(scores), "--protocol", str(proto)]) == 2


def test_csv_rows_with_a_wrong_field_count_are_refused(tmp_path):
    (tmp_path / "meta.csv").write_text("file,speaker,label\n0.wav,A,spoof\n1.wav,B\n2.wav,C,bona-fide,extra\n")
    for f in ("0.wav", "1.wav", "2.wav"):
        (tmp_path / f).write_bytes(b"")
    with pytest.raises(ManifestError, match=r"(?s)2 malformed line\(s\).*meta.csv:3: wrong number of fields.*meta.csv:4"):
        build_manifest("in-the-wild", tmp_path)


def test_manifest_with_an_unknown_label_is_refused(tmp_path):
    path = tmp_path / "train.csv"
    pd.DataFrame({"utt_id": ["a", "b"], "path": ["/x/a", "/x/b"], "label": ["bonafide", "fake"], "attack": "-",
                  "speaker": "-", "split": "train", "dataset": "x"}).to_csv(path, index=False)
    with pytest.raises(ManifestError, match=r"train.csv:3: unknown label 'fake'"):
        read_manifest(path)


def test_validation_yaml_holds_the_counts(demo_root, tmp_path):
    import yaml
    res = build_manifest("asvspoof2019-la", demo_root)
    res.write(tmp_path)
    report = yaml.safe_load((tmp_path / "validation.yaml").read_text())
    for split, df in res.splits.items():
        r = report["splits"][split]
        assert r["kept"] == len(df) == len(read_manifest(tmp_path / f"{split}.csv"))
        assert r["lines"] == r["kept"] + r["missing_skipped"] and r["missing_skipped"] == 0


# ----------------------------------------------------------------------------- cache identity

BASE = dict(fingerprint={"model": "m", "weights": [["model.safetensors", 10, 1]]}, segment=SegmentConfig(16000),
            kind="prefix", n_prefix=2, dtype="float16")
MANIFEST = pd.DataFrame({"utt_id": ["a", "b"], "path": ["/x/a.flac", "/x/b.flac"], "label": ["bonafide", "spoof"]})


@pytest.mark.parametrize("change", [
    {"segment": SegmentConfig(8000)}, {"segment": SegmentConfig(16000, pad="zero")},
    {"segment": SegmentConfig(16000, crop="center")}, {"kind": "pooled"}, {"n_prefix": 3}, {"dtype": "float32"},
    {"fingerprint": {"model": "m", "weights": [["model.safetensors", 10, 2]]}},
    {"manifest": MANIFEST.assign(label=["spoof", "spoof"])}, {"manifest": MANIFEST.assign(path=["/y/a.flac", "/x/b.flac"])},
    {"manifest": MANIFEST.iloc[::-1]},
], ids=["segment", "pad", "crop", "stage-kind", "prefix-depth", "dtype", "weights", "labels", "paths", "order"])
def test_every_field_that_changes_cached_features_changes_the_key(change):
    args = {**BASE, "manifest": MANIFEST, **change}
    key = cache_key(args["manifest"], args["fingerprint"], args["segment"], args["kind"], args["n_prefix"], args["dtype"])
    assert key != cache_key(MANIFEST, **BASE)
    assert cache_key(MANIFEST.copy(), **BASE) == cache_key(MANIFEST, **BASE)  # and nothing else does


# ----------------------------------------------------------------------------- scoring windows and error rows

def expected_windows(n: int, window: int, hop: int) -> int:
    """Windows covering n samples: starts 0, hop, ... while a full window fits, plus one flush with the end."""
    if n <= window:
        return 1
    full = (n - window) // hop + 1
    return full + (1 if (n - window) % hop else 0)


@pytest.mark.parametrize("hop", [4000, 6000, 16000])
def test_n_windows_follows_the_hop(untrained_detector, tmp_path, hop):
    from xlsr_helpers.evaluate.scoring import Scorer, ScoringConfig
    lengths = [8000, 16000, 16001, 30000, 47000]
    files = []
    rng = np.random.default_rng(0)
    for n in lengths:
        files.append(tmp_path / f"{n}.wav")
        sf.write(files[-1], rng.normal(0, 0.1, n).astype(np.float32), 16000)
    out = Scorer(untrained_detector, ScoringConfig(window=16000, hop=hop)).score_files(files, progress=False)
    assert out.n_windows.tolist() == [expected_windows(n, 16000, hop) for n in lengths]
    assert expected_windows(47000, 16000, 6000) == 7 and expected_windows(30000, 16000, 16000) == 2  # by hand


def test_an_unreadable_file_gets_exactly_an_error_row(untrained_detector, tmp_path):
    from xlsr_helpers.evaluate.scoring import Scorer, ScoringConfig
    bad = tmp_path / "bad.flac"
    bad.write_bytes(b"junk")
    row = Scorer(untrained_detector, ScoringConfig()).score_files([bad], progress=False).iloc[0]
    assert row.utt_id == "bad" and row.path == str(bad) and row.n_windows == 0 and row.label_pred == ""
    assert math.isnan(row.score) and math.isnan(row.llr) and math.isnan(row.p_spoof)
    assert row.error.startswith("cannot decode")
