"""ASVspoof 2021 LA min t-DCF from the keys' ASV trials and scores, equal to the 2021 evaluation package."""

import numpy as np
import pytest

from xlsr_helpers.cli.main import main
from xlsr_helpers.evaluate.metrics import compute_det_curve, compute_eer
from xlsr_helpers.evaluate.results import asv_reference
from xlsr_helpers.evaluate.scorefile import ScoreFileError, read_asv_2021

COST = {"Pspoof": 0.05, "Ptar": 0.95 * 0.99, "Pnon": 0.95 * 0.01, "Cmiss": 1, "Cfa": 10, "Cfa_spoof": 10}


def official_2021(bona_cm, spoof_cm, tar, non, spoof_asv):
    """The 2021 package's eval_wrapper: load_asv_metrics, get_tDCF_C012, get_mintDCF_eer (same arithmetic)."""
    _, thr = compute_eer(tar, non)
    pfa, pmiss = np.sum(non >= thr) / non.size, np.sum(tar < thr) / tar.size
    pfa_spoof = np.sum(spoof_asv >= thr) / spoof_asv.size
    c0 = COST["Ptar"] * COST["Cmiss"] * pmiss + COST["Pnon"] * COST["Cfa"] * pfa
    c1 = COST["Ptar"] * COST["Cmiss"] - (COST["Ptar"] * COST["Cmiss"] * pmiss + COST["Pnon"] * COST["Cfa"] * pfa)
    c2 = COST["Pspoof"] * COST["Cfa_spoof"] * pfa_spoof
    pmiss_cm, pfa_cm, _ = compute_det_curve(bona_cm, spoof_cm)
    tdcf = (c0 + c1 * pmiss_cm + c2 * pfa_cm) / (c0 + np.minimum(c1, c2))
    return tdcf[tdcf.argmin()]


def lay_keys(tmp_path, seed=0):
    """2021 LA keys with CM and ASV trial metadata in two phases, and the ASV score file."""
    rng = np.random.default_rng(seed)
    keys = tmp_path / "LA-keys-full" / "keys" / "LA"
    (keys / "CM").mkdir(parents=True)
    (keys / "ASV" / "ASVTorch_Kaldi").mkdir(parents=True)
    asv_lines, asv_scores, truth = [], [], {}
    for i in range(900):
        phase = "eval" if i % 2 else "progress"
        label = ["target", "nontarget", "spoof"][i % 3 if i % 5 else 0]
        mean = {"target": 2.0, "nontarget": -2.0, "spoof": 0.5}[label]
        score = round(float(rng.normal(mean, 1.2)), 3)
        asv_lines.append(f"LA_00{i % 40:02d} LA_E_A{i:05d} alaw ita_tx {'A07' if label == 'spoof' else '-'} "
                         f"{label} notrim {phase}")
        asv_scores.append(f"LA_00{i % 40:02d} LA_E_A{i:05d} {score}")
        truth.setdefault(phase, {}).setdefault(label, []).append(score)
    (keys / "ASV" / "trial_metadata.txt").write_text("\n".join(asv_lines) + "\n")
    (keys / "ASV" / "ASVTorch_Kaldi" / "score.txt").write_text("\n".join(asv_scores) + "\n")
    cm_lines, cm_scores, cm = [], [], {"bonafide": [], "spoof": []}
    for i in range(600):
        phase = "eval" if i % 4 else "progress"
        label = "bonafide" if i % 5 == 0 else "spoof"
        score = round(float(rng.normal(1.0 if label == "bonafide" else -1.0, 1.0)), 2)  # tie-heavy
        cm_lines.append(f"LA_00{i % 40:02d} LA_E_{i:07d} alaw ita_tx {'-' if label == 'bonafide' else 'A08'} "
                        f"{label} notrim {phase}")
        cm_scores.append(f"LA_E_{i:07d} {score}")
        if phase == "eval":
            cm[label].append(score)
    (keys / "CM" / "trial_metadata.txt").write_text("\n".join(cm_lines) + "\n")
    (tmp_path / "scores.txt").write_text("\n".join(cm_scores) + "\n")
    return keys, truth, cm


def test_cli_2021_min_tdcf_equals_the_evaluation_package(tmp_path, capsys):
    keys, truth, cm = lay_keys(tmp_path)
    e = truth["eval"]
    expected = official_2021(np.array(cm["bonafide"]), np.array(cm["spoof"]), np.array(e["target"]),
                             np.array(e["nontarget"]), np.array(e["spoof"]))
    assert main(["eer", str(tmp_path / "scores.txt"), "--protocol", str(keys / "CM" / "trial_metadata.txt"),
                 "--asv-keys", str(keys / "ASV" / "trial_metadata.txt"),
                 "--asv-scores", str(keys / "ASV" / "ASVTorch_Kaldi" / "score.txt")]) == 0
    out = capsys.readouterr().out
    assert f"min t-DCF (2021 revised): {expected:.5f}" in out and "2019 legacy" not in out
    eer = compute_eer(np.array(cm["bonafide"]), np.array(cm["spoof"]))[0]
    assert f"EER: {100 * eer:.3f} %" in out
    assert 0 < expected < 1


def test_asv_rates_use_the_phase_only(tmp_path):
    keys, truth, _ = lay_keys(tmp_path)
    for phase in ("eval", "progress"):
        rates = read_asv_2021(keys / "ASV" / "trial_metadata.txt", keys / "ASV" / "ASVTorch_Kaldi" / "score.txt", phase)
        tar, non = np.array(truth[phase]["target"]), np.array(truth[phase]["nontarget"])
        thr = compute_eer(tar, non)[1]
        assert rates.threshold == thr and rates.p_miss == np.mean(tar < thr) and rates.p_fa == np.mean(non >= thr)
        assert rates.p_miss_spoof == np.mean(np.array(truth[phase]["spoof"]) < thr)


def test_misaligned_asv_scores_are_refused(tmp_path):
    keys, _, _ = lay_keys(tmp_path)
    scores = keys / "ASV" / "ASVTorch_Kaldi" / "score.txt"
    lines = scores.read_text().splitlines()
    lines[3], lines[4] = lines[4], lines[3]
    scores.write_text("\n".join(lines) + "\n")
    with pytest.raises(ScoreFileError, match=r"score.txt:4: expected 'speaker LA_E_A00003 score' \(line 4 of .*\), "
                                             r"found 'LA_0004 LA_E_A00004"):
        read_asv_2021(keys / "ASV" / "trial_metadata.txt", scores)
    assert main(["eer", str(tmp_path / "scores.txt"), "--protocol", str(keys / "CM" / "trial_metadata.txt"),
                 "--asv-keys", str(keys / "ASV" / "trial_metadata.txt")]) == 2


def test_the_2021_descriptor_finds_the_asv_files_of_the_kaggle_copy(tmp_path):
    keys, _, _ = lay_keys(tmp_path)
    ref = asv_reference("asvspoof2021-la", tmp_path, "eval")
    assert ref == {"keys": keys / "ASV" / "trial_metadata.txt", "scores": keys / "ASV" / "ASVTorch_Kaldi" / "score.txt"}
    assert asv_reference("asvspoof2021-la", tmp_path / "LA-keys-full", "eval") == ref  # keys/LA/ASV/... there too
    assert asv_reference("asvspoof2021-la", tmp_path / "LA-keys-full" / "keys", "eval") is None
