"""EER, min t-DCF (both versions) and per-attack EER of a case worked out by hand, as `xlsr eer` prints
them, and key files that repeat a trial."""


import pytest

from xlsr_helpers.cli.main import main
from xlsr_helpers.data.manifest import ManifestError
from xlsr_helpers.evaluate.scorefile import read_protocol

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
