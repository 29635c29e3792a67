import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from xlsr_helpers.cli.main import main
from xlsr_helpers.data.demo import make_demo_corpus


def test_demo_corpus_is_deterministic(tmp_path):
    a = make_demo_corpus(tmp_path / "a", seed=7, size="tiny")
    b = make_demo_corpus(tmp_path / "b", seed=7, size="tiny")
    pa = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert pa == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert all((a / p).read_bytes() == (b / p).read_bytes() for p in pa)


def test_cli_manifest_prints_counts(demo_root, tmp_path, capsys):
    assert main(["manifest", "--dataset", "asvspoof2019-la", "--root", str(demo_root), "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "A07" in out and "bonafide" in out
    assert {"train.csv", "dev.csv", "eval.csv", "counts.csv", "validation.yaml"} <= {p.name for p in tmp_path.iterdir()}


def test_cli_manifest_error_exit_code(tmp_path, capsys):
    assert main(["manifest", "--dataset", "asvspoof2019-la", "--root", str(tmp_path), "--out", str(tmp_path)]) == 2
    assert "protocol" in capsys.readouterr().err


@pytest.fixture
def scored(demo_root, tmp_path):
    proto = demo_root / "ASVspoof2019_LA_cm_protocols" / "ASVspoof2019.LA.cm.eval.trl.txt"
    rows = [ln.split() for ln in proto.read_text().splitlines()]
    rng = np.random.default_rng(0)
    scores = [(r[1], rng.normal(2 if r[4] == "bonafide" else 0)) for r in rows]
    return proto, scores


def write_scores(path, scores):
    path.write_text("".join(f"{u} {s:.5f}\n" for u, s in scores))
    return path


def test_cli_eer_reports_eer_tdcf_and_attacks(scored, demo_root, tmp_path, capsys):
    proto, scores = scored
    asv = demo_root / "ASVspoof2019_LA_asv_scores" / "ASVspoof2019.LA.asv.eval.gi.trl.scores.txt"
    f = write_scores(tmp_path / "s.txt", scores)
    assert main(["eer", str(f), "--protocol", str(proto), "--asv-scores", str(asv)]) == 0
    out = capsys.readouterr().out
    assert "EER:" in out and "min t-DCF (2019 legacy)" in out and "A09" in out and "pooled" in out


@pytest.mark.parametrize("mutate,message", [
    (lambda s: s + [("LA_E_0000000", 1.0)], "are not in the"),
    (lambda s: s[1:], "have no score"),
    (lambda s: s + [s[0]], "duplicate id"),
    (lambda s: [(s[0][0], float("nan"))] + s[1:], "NaN"),
])
def test_cli_eer_never_ignores_mismatches(scored, tmp_path, capsys, mutate, message):
    proto, scores = scored
    f = write_scores(tmp_path / "s.txt", mutate(list(scores)))
    assert main(["eer", str(f), "--protocol", str(proto)]) == 2
    assert message in capsys.readouterr().err


def test_console_script_and_module_entry_point(tmp_path):
    out = subprocess.run([sys.executable, "-m", "xlsr_helpers", "demo-data", str(tmp_path), "--size", "tiny"],
                         capture_output=True, text=True, check=True).stdout
    assert "LA" in out
    df = pd.read_csv(tmp_path / "LA/ASVspoof2019_LA_cm_protocols/ASVspoof2019.LA.cm.dev.trl.txt", sep=" ", header=None)
    assert df.shape[1] == 5


def test_cli_manifest_check_audio_reports_problems(tmp_path, capsys):
    import soundfile as sf
    root = make_demo_corpus(tmp_path / "d", seed=1, size="tiny")
    proto = root / "ASVspoof2019_LA_cm_protocols" / "ASVspoof2019.LA.cm.dev.trl.txt"
    utts = [ln.split()[1] for ln in proto.read_text().splitlines()]
    flac = root / "ASVspoof2019_LA_dev" / "flac"
    sf.write(flac / f"{utts[0]}.flac", np.zeros(16000, np.float32), 16000)  # silent
    sf.write(flac / f"{utts[1]}.flac", np.full(1600, 0.1, np.float32), 16000)  # 0.1 s
    out = tmp_path / "m"
    assert main(["manifest", "--dataset", "asvspoof2019-la", "--root", str(root), "--out", str(out),
                 "--check-audio"]) == 0
    report = pd.read_csv(out / "audio_check_dev.csv")
    assert sorted(report.problem) == ["short (< 0.5 s)", "silent"]
    (flac / f"{utts[2]}.flac").write_bytes(b"broken")
    assert main(["manifest", "--dataset", "asvspoof2019-la", "--root", str(root), "--out", str(out),
                 "--check-audio"]) == 2
    assert "1 unreadable file" in capsys.readouterr().err
    flagged = pd.read_csv(out / "audio_check_dev.csv")
    assert flagged.problem.str.startswith("unreadable").sum() == 1 and len(flagged) == 3


def test_kaggle_kernel_folder(tmp_path, capsys):
    import json
    assert main(["kaggle-kernel", "02", "--id", "alice/xlsr-stage1", "--out", str(tmp_path / "k"),
                 "--code-dataset", "alice/xlsr-code", "--offline", "--model-source",
                 "alice/xls-r-300m/transformers/default/1", "--kernel-source", "alice/xlsr-stage1-old"]) == 0
    kernel = tmp_path / "k" / "kernel"
    meta = json.loads((kernel / "kernel-metadata.json").read_text())
    assert meta["code_file"] == "02_stage1_head.ipynb" and (kernel / meta["code_file"]).exists()
    assert meta["enable_gpu"] and not meta["enable_internet"]
    assert meta["dataset_sources"] == ["awsaf49/asvpoof-2019-dataset", "alice/xlsr-code"]
    assert meta["model_sources"] == ["alice/xls-r-300m/transformers/default/1"]
    assert meta["kernel_sources"] == ["alice/xlsr-stage1-old"]
    assert "kaggle kernels push -p" in capsys.readouterr().out
    assert main(["kaggle-kernel", "07", "--id", "alice/x", "--out", str(tmp_path / "k2"), "--repo-url",
                 "https://example.org/x.git"]) == 2
    assert "unknown notebook '07'" in capsys.readouterr().err
    assert main(["kaggle-kernel", "01", "--id", "no-slash", "--out", str(tmp_path / "k3"),
                 "--repo-url", "https://example.org/x.git"]) == 2
    assert "owner/slug" in capsys.readouterr().err


def test_cli_eer_uses_the_2021_eval_phase_by_default(tmp_path, capsys):
    proto = tmp_path / "trial_metadata.txt"
    proto.write_text("LA_0009 LA_E_1 alaw ita_tx - bonafide notrim eval\n"
                     "LA_0009 LA_E_2 alaw ita_tx A07 spoof notrim eval\n"
                     "LA_0013 LA_E_3 none - - bonafide notrim progress\n"
                     "LA_0013 LA_E_4 none - A08 spoof notrim progress\n")
    scores = write_scores(tmp_path / "s.txt", [("LA_E_1", 2.0), ("LA_E_2", -1.0), ("LA_E_3", -5.0), ("LA_E_4", 5.0)])
    assert main(["eer", str(scores), "--protocol", str(proto)]) == 0
    out = capsys.readouterr().out
    assert "EER: 0.000 %" in out and "phase 'eval': 2 of 4 trials" in out
    assert main(["eer", str(scores), "--protocol", str(proto), "--phase", "all"]) == 0
    assert "EER: 50.000 %" in capsys.readouterr().out
    assert main(["eer", str(scores), "--protocol", str(proto), "--phase", "hidden_track"]) == 2
    assert "phases present" in capsys.readouterr().err


def test_notebooks_are_copied_out_and_never_overwritten(tmp_path, capsys):
    from xlsr_helpers.core.resources import NOTEBOOK_DIR
    from xlsr_helpers.pipeline.notebooks import NOTEBOOKS
    out = tmp_path / "mine"
    assert main(["notebooks", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == [f"{nb}.ipynb" for nb in NOTEBOOKS]
    assert all((out / f"{nb}.ipynb").read_bytes() == (NOTEBOOK_DIR / f"{nb}.ipynb").read_bytes() for nb in NOTEBOOKS)
    edited = out / "02_stage1_head.ipynb"
    edited.write_text("my edits")
    capsys.readouterr()
    assert main(["notebooks", str(out)]) == 2
    err = capsys.readouterr().err
    assert "4 notebook(s) already exist and are kept" in err and str(edited) in err and edited.read_text() == "my edits"
    (tmp_path / "file").write_text("x")
    assert main(["notebooks", str(tmp_path / "file")]) == 2


def write_track2(tmp_path, seed=0, n=(60, 30, 90), cm_asv=True):
    """Tie-heavy track-2 trials as the evaluation package's files: a tab-separated score file and key;
    the score file's trials in another order than the key's, the key's columns in the full keys' names."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(["target", "nontarget", "spoof"], n)
    rng.shuffle(labels)
    cm = np.round(np.where(labels == "spoof", rng.normal(-1, 1.5, labels.size), rng.normal(1.5, 1.5, labels.size)), 1)
    asv = np.round(np.where(labels == "target", rng.normal(2, 1, labels.size), rng.normal(0, 1.5, labels.size)), 1)
    sasv = np.round(cm + asv, 1)
    spk = [f"E_{i % 7:04d}" for i in range(labels.size)]
    utt = [f"E_{i // 2:010d}" for i in range(labels.size)]  # an utterance against two speakers
    cm_label = np.where(labels == "spoof", "spoof", "bonafide")
    key = ["tar_spk_anon\ttrial_anon\tcm-label\tasv-label\tcodec"] + [
        f"{s}\t{u}\t{c}\t{a}\tC01" for s, u, c, a in zip(spk, utt, cm_label, labels, strict=True)]
    order = rng.permutation(labels.size)
    col = (lambda x: [f"{v}" for v in x]) if cm_asv else (lambda x: ["-"] * labels.size)
    cms, asvs = col(cm), col(asv)
    score = ["spk\tfilename\tcm-score\tasv-score\tsasv-score"] + [
        f"{spk[i]}\t{utt[i]}\t{cms[i]}\t{asvs[i]}\t{sasv[i]}" for i in order]
    (tmp_path / "key.tsv").write_text("\n".join(key) + "\n")
    (tmp_path / "sasv.tsv").write_text("\n".join(score) + "\n")
    return tmp_path / "sasv.tsv", tmp_path / "key.tsv", (cm, asv, sasv, cm_label, labels)


def test_cli_eer_reports_track2_as_the_evaluation_package(tmp_path, capsys):
    import json

    from reference_sasv import calculate_aDCF_tdcf_tEER
    score, key, arrays = write_track2(tmp_path)
    adcf, tdcf, teer = calculate_aDCF_tdcf_tEER(*arrays)
    assert main(["eer", str(score), "--protocol", str(key)]) == 0
    out = capsys.readouterr().out
    # evaluation.py's own formats: "-eval_adcf: {:.5f}", "-eval_tdcf: {:.5f}", "-eval_teer (%): {:.3f}"
    assert "trials: 60 target, 30 nontarget, 90 spoof" in out
    assert f"min a-DCF: {adcf:.5f}" in out and f"min t-DCF: {tdcf:.5f}" in out and f"t-EER: {teer:.3f} %" in out
    assert main(["eer", str(score), "--protocol", str(key), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)  # stdout holds the JSON object alone
    assert res["min_a_dcf"] == adcf and res["min_tdcf"] == tdcf and 100 * res["t_eer"] == teer
    assert (res["n_target"], res["n_nontarget"], res["n_spoof"]) == (60, 30, 90)


def test_cli_eer_track2_without_cm_and_asv_scores(tmp_path, capsys):
    from reference_sasv import calculate_aDCF_tdcf_tEER
    score, key, (cm, asv, sasv, cm_label, labels) = write_track2(tmp_path, seed=1, cm_asv=False)
    assert main(["eer", str(score), "--protocol", str(key)]) == 0
    out = capsys.readouterr().out
    assert f"min a-DCF: {calculate_aDCF_tdcf_tEER(None, None, sasv, None, labels):.5f}" in out
    assert "min t-DCF:" not in out and "not computed: min t-DCF and t-EER (cm-score and asv-score '-'" in out


def test_cli_eer_json_has_the_keys_of_metrics_json(scored, demo_root, tmp_path, capsys):
    import json

    from reference_metrics import official_eer

    from xlsr_helpers.evaluate.results import evaluate_scores, metrics_record
    proto, scores = scored
    asv = demo_root / "ASVspoof2019_LA_asv_scores" / "ASVspoof2019.LA.asv.eval.gi.trl.scores.txt"
    f = write_scores(tmp_path / "s.txt", scores)
    assert main(["eer", str(f), "--protocol", str(proto), "--asv-scores", str(asv), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    labels = {r.split()[1]: r.split()[4] for r in proto.read_text().splitlines()}
    values = np.array([float(f"{s:.5f}") for _, s in scores])
    is_bona = np.array([labels[u] == "bonafide" for u, _ in scores])
    assert res["eer"] == official_eer(values[is_bona], values[~is_bona])[0]
    # the same keys as a split of the metrics.json notebook 04 writes from these scores
    table = pd.DataFrame({"utt_id": [u for u, _ in scores], "score": values, "error": "",
                          "label": [labels[u] for u, _ in scores],
                          "attack": [r.split()[3] for r in proto.read_text().splitlines()]})
    split = metrics_record({"eval": evaluate_scores(table, {"scores": asv})}, 0.0, "eval", "d", "x", tmp_path, 0)["eval"]
    assert set(res) == set(split) and set(res["per_attack_eer"]) == set(split["per_attack_eer"])
    assert res["min_tdcf_2019"] == split["min_tdcf_2019"] and res["trials"] == split["trials"]


def test_cli_eer_keeps_torch_out(tmp_path):
    """`xlsr eer` runs where torch is not installed: nothing on its path imports it, track 2 included."""
    score, key, _ = write_track2(tmp_path, seed=2)
    code = ("import sys; from xlsr_helpers.cli.main import main; "
            f"rc = main(['eer', {str(score)!r}, '--protocol', {str(key)!r}, '--json']); "
            "print('torch' in sys.modules, rc)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().endswith("False 0")
