"""ASVspoof 5 track 1: the protocol TSVs and audio parts, and min DCF / act DCF / Cllr / EER equal to
the organisers' evaluation package (asvspoof-challenge/asvspoof5, evaluation-package/calculate_modules.py)."""

import numpy as np
import pytest

from xlsr_helpers.cli.main import main
from xlsr_helpers.data.manifest import build_manifest
from xlsr_helpers.evaluate.metrics import DcfCosts, act_dcf, cllr, compute_det_curve, compute_eer, min_dcf


def official_mindcf(bona, spoof, p_spoof=0.05, c_miss=1, c_fa=10):
    """compute_eer + compute_mindcf of the package, loop and all."""
    frr, far, thresholds = compute_det_curve(bona, spoof)
    min_c_det, min_thr = float("inf"), thresholds
    p_target = 1 - p_spoof
    for i in range(len(frr)):
        c_det = c_miss * frr[i] * p_target + c_fa * far[i] * (1 - p_target)
        if c_det < min_c_det:
            min_c_det, min_thr = c_det, thresholds[i]
    return min_c_det / min(c_miss * p_target, c_fa * (1 - p_target)), min_thr


def official_actdcf(bona, spoof, p_spoof=0.05, c_miss=1, c_fa=10):
    threshold = -np.log(c_miss * (1 - p_spoof) / (c_fa * p_spoof))
    rate_miss = np.sum(bona < threshold) / bona.size
    rate_fa = np.sum(spoof >= threshold) / spoof.size
    dcf = c_miss * (1 - p_spoof) * rate_miss + c_fa * p_spoof * rate_fa
    return dcf / np.min([c_fa * p_spoof, c_miss * (1 - p_spoof)])


def official_cllr(bona, spoof):
    return 0.5 * (np.mean(np.log1p(np.exp(-bona))) + np.mean(np.log1p(np.exp(spoof)))) / np.log(2)


@pytest.mark.parametrize("seed", range(4))
def test_track1_metrics_equal_the_evaluation_package(seed):
    rng = np.random.default_rng(seed)
    bona, spoof = rng.normal(2, 2, 400), rng.normal(-2, 2.5, 3000)
    if seed % 2:  # tie-heavy
        bona, spoof = np.round(bona, 1), np.round(spoof, 1)
    assert min_dcf(bona, spoof) == official_mindcf(bona, spoof)
    assert act_dcf(bona, spoof)[0] == official_actdcf(bona, spoof)
    assert cllr(bona, spoof) == official_cllr(bona, spoof)


def test_dcf_hand_computed():
    # p_target 0.95: normaliser min(0.95, 0.5) = 0.5; Bayes threshold -log(0.95 / 0.5) = -0.6419
    costs = DcfCosts()
    assert costs.bayes_threshold == pytest.approx(-0.641853886)
    bona, spoof = np.array([2.0, 1.0, -1.0, 3.0]), np.array([-3.0, -2.0, 0.0, -0.5])
    # act: bona < -0.64 -> 1 of 4 missed; spoof >= -0.64 -> 0.0 and -0.5: 2 of 4 accepted
    assert act_dcf(bona, spoof)[0] == pytest.approx((0.95 * 0.25 + 0.5 * 0.5) / 0.5)
    # min: rejecting up to 0.0 -> miss 1/4, fa 0 -> 0.95 * 0.25 / 0.5 = 0.475 (rejecting nothing: fa 1 -> 1.0)
    assert min_dcf(bona, spoof)[0] == pytest.approx(0.475)
    # Cllr of scores that say nothing (all zero) is exactly 1 bit
    assert cllr(np.zeros(3), np.zeros(5)) == pytest.approx(1.0)


def lay_asvspoof5(root):
    rows = {"train": [("T_4850", "T_0000000000", "spoof", "A05", "-"), ("T_4851", "T_0000000001", "bonafide", "bonafide", "-")],
            "dev": [("D_0062", "D_0000000000", "spoof", "A11", "-"), ("D_0063", "D_0000000001", "bonafide", "bonafide", "-")],
            "eval": [("E_0001", f"E_000000000{i}", "spoof" if i % 2 else "bonafide", "A20" if i % 2 else "bonafide",
                      f"C0{i % 3 + 1}") for i in range(6)]}
    names = {"train": "ASVspoof5.train.tsv", "dev": "ASVspoof5.dev.track_1.tsv", "eval": "ASVspoof5.eval.track_1.tsv"}
    (root / "ASVspoof5_protocols").mkdir(parents=True)
    for split, items in rows.items():
        lines = [f"{spk} {utt} F {codec} {'0' if codec != '-' else '-'} - {'AC1' if key == 'spoof' else '-'} "
                 f"{attack} {key} -" for spk, utt, key, attack, codec in items]
        (root / "ASVspoof5_protocols" / names[split]).write_text("\n".join(lines) + "\n")
        for k, (_, utt, *_rest) in enumerate(items):
            folder = {"train": "flac_T", "dev": "flac_D"}.get(split) or f"flac_E_a{'ab'[k % 2]}"
            (root / folder).mkdir(exist_ok=True)
            (root / folder / f"{utt}.flac").write_bytes(b"")
    return rows


def test_asvspoof5_layout_with_eval_in_parts(tmp_path):
    rows = lay_asvspoof5(tmp_path)
    res = build_manifest("asvspoof5", tmp_path)
    assert {s: len(df) for s, df in res.splits.items()} == {s: len(r) for s, r in rows.items()}
    ev = res.splits["eval"]
    assert {p.split("/")[-2] for p in ev.path} == {"flac_E_aa", "flac_E_ab"}
    assert ev.codec.tolist() == ["C01", "C02", "C03", "C01", "C02", "C03"]
    assert set(ev.attack[ev.label == "spoof"]) == {"A20"}


def test_xlsr_eer_reads_asvspoof5_keys(tmp_path, capsys):
    lay_asvspoof5(tmp_path)
    rng = np.random.default_rng(3)
    scores = {f"E_000000000{i}": round(float(rng.normal(1 if i % 2 == 0 else -1, 1)), 4) for i in range(6)}
    (tmp_path / "s.txt").write_text("".join(f"{u} {s}\n" for u, s in scores.items()))
    assert main(["eer", str(tmp_path / "s.txt"), "--protocol",
                 str(tmp_path / "ASVspoof5_protocols" / "ASVspoof5.eval.track_1.tsv")]) == 0
    out = capsys.readouterr().out
    bona = np.array([s for u, s in scores.items() if int(u[-1]) % 2 == 0])
    spoof = np.array([s for u, s in scores.items() if int(u[-1]) % 2])
    assert f"EER: {100 * compute_eer(bona, spoof)[0]:.3f} %" in out
    assert f"min DCF: {official_mindcf(bona, spoof)[0]:.5f}" in out
    assert f"Cllr: {official_cllr(bona, spoof):.5f} bits" in out
