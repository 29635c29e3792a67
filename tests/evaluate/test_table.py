"""Notebook 04's results table: every corpus on its official split, one row each, equal to ``xlsr eer``.

Small corpora are generated in the layouts Kaggle users attach (2021 LA with its ASV keys, 2021 DF
in four parts, In-the-Wild, ASVspoof 5) under a stand-in for /kaggle/input, with real audio, and
scored by the tiny detectors; the run's own corpus is the 2019 LA demo. Each row is checked against
the command line run on that corpus's score file, with the protocol the test itself knows.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import yaml

from xlsr_helpers.cli.main import main
from xlsr_helpers.core.errors import ConfigError
from xlsr_helpers.core.written import written
from xlsr_helpers.data.demo import bonafide, spoof
from xlsr_helpers.evaluate import corpora
from xlsr_helpers.evaluate import table as results_table
from xlsr_helpers.evaluate.calibration import Calibration
from xlsr_helpers.evaluate.results import score_splits
from xlsr_helpers.evaluate.scoring import Scorer, ScoringConfig
from xlsr_helpers.pipeline.params import check_value
from xlsr_helpers.pipeline.runfolder import clear_results
from xlsr_helpers.runtime.kaggle_env import KAGGLE_ROOT_ENV

SR = 16000
CALIBRATION = Calibration(scale=1.5, offset=-0.2, prior_spoof=0.5, fitted_on="test", n_bonafide=1, n_spoof=1)


def wave(path, label, i):
    """Half a second of the demo's speech-like bonafide or toy-vocoder spoof audio."""
    rng = np.random.default_rng(i)
    x = bonafide(rng, 0.5, 120 + 7 * i) if label == "bonafide" else spoof(rng, 0.5, 120 + 7 * i, "A07")
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, x, SR)


def trials(prefix, n=12):
    return [(f"{prefix}{i:04d}", "bonafide" if i % 2 == 0 else "spoof") for i in range(n)]


def lay_2021_la(ds):
    """LA-keys-full/keys/LA/{CM,ASV}: 12 eval-phase trials and 3 of the progress phase; audio in ASVspoof2021_LA_eval/flac."""
    keys = ds / "LA-keys-full" / "keys" / "LA"
    cm = trials("LA_E_1") + [(f"LA_E_2{i:04d}", "bonafide" if i == 0 else "spoof") for i in range(3)]
    lines = [f"LA_{i:04d} {u} {'alaw' if i % 3 else 'none'} ita_tx {'-' if lab == 'bonafide' else 'A07'} {lab} notrim "
             f"{'eval' if i < 12 else 'progress'}" for i, (u, lab) in enumerate(cm)]
    (keys / "CM").mkdir(parents=True)
    (keys / "CM" / "trial_metadata.txt").write_text("\n".join(lines) + "\n")
    for i, (u, lab) in enumerate(cm):
        wave(ds / "ASVspoof2021_LA_eval" / "flac" / f"{u}.flac", lab, i)
    rng = np.random.default_rng(1)
    asv = [(k, m, ph) for k, m in (("target", 3.0), ("nontarget", -3.0), ("spoof", 1.0)) for ph in ("eval", "progress")
           for _ in range(20)]
    (keys / "ASV" / "ASVTorch_Kaldi").mkdir(parents=True)
    (keys / "ASV" / "trial_metadata.txt").write_text("".join(
        f"LA_0001 LA_A_{j:05d} alaw ita_tx {'-' if k != 'spoof' else 'A07'} {k} notrim {ph}\n"
        for j, (k, _, ph) in enumerate(asv)))
    (keys / "ASV" / "ASVTorch_Kaldi" / "score.txt").write_text("".join(
        f"LA_0001 LA_A_{j:05d} {rng.normal(m, 1.0):.4f}\n" for j, (_, m, _) in enumerate(asv)))
    return keys / "CM" / "trial_metadata.txt", keys / "ASV" / "trial_metadata.txt", keys / "ASV" / "ASVTorch_Kaldi" / "score.txt"


def lay_2021_df(ds):
    """DF-keys-full keys; audio in the four parts of the official download; two codecs, two vocoders."""
    cm = trials("DF_E_3")
    keys = ds / "DF-keys-full" / "keys" / "DF" / "CM" / "trial_metadata.txt"
    keys.parent.mkdir(parents=True)
    keys.write_text("".join(
        f"LA_{i:04d} {u} {'mp3m4a' if i % 3 else 'nocodec'} asvspoof {'-' if lab == 'bonafide' else 'A09'} {lab} notrim "
        f"eval {'traditional_vocoder' if i % 4 < 2 else 'neural_vocoder_autoregressive'} - - - -\n"
        for i, (u, lab) in enumerate(cm)))
    for i, (u, lab) in enumerate(cm):
        wave(ds / f"ASVspoof2021_DF_eval_part0{i % 4}" / "ASVspoof2021_DF_eval" / "flac" / f"{u}.flac", lab, 50 + i)
    return keys


def lay_itw(ds):
    """meta.csv at the root, audio in release_in_the_wild/real and /fake; speakers with spaces."""
    rows = [(f"{i}.wav", "Barack Obama" if i % 3 else "Alec Guinness", "bona-fide" if lab == "bonafide" else "spoof")
            for i, (_, lab) in enumerate(trials("x"))]
    ds.mkdir(parents=True)
    (ds / "meta.csv").write_text("file,speaker,label\n" + "".join(f"{f},{s},{lab}\n" for f, s, lab in rows))
    for i, (f, _, lab) in enumerate(rows):
        wave(ds / "release_in_the_wild" / ("real" if lab == "bona-fide" else "fake") / f, "bonafide" if lab == "bona-fide"
             else "spoof", 100 + i)


def lay_asvspoof5(ds):
    cm = trials("E_000")
    proto = ds / "ASVspoof5_protocols" / "ASVspoof5.eval.track_1.tsv"
    proto.parent.mkdir(parents=True)
    proto.write_text("".join(f"E_{i:04d} {u} F - - - {'bonafide' if lab == 'bonafide' else 'A17'} "
                             f"{'bonafide' if lab == 'bonafide' else 'A17'} {lab} -\n" for i, (u, lab) in enumerate(cm)))
    for i, (u, lab) in enumerate(cm):
        wave(ds / "flac_E_eval" / f"{u}.flac", lab, 200 + i)
    return proto


@pytest.fixture
def corpora_world(tmp_path, monkeypatch, demo_root, demo_manifests):
    """A /kaggle stand-in holding the four corpora, and a run folder whose own corpus is the 2019 LA demo."""
    inp = tmp_path / "kaggle" / "input"
    monkeypatch.setenv(KAGGLE_ROOT_ENV, str(tmp_path / "kaggle"))
    la = lay_2021_la(inp / "avsspoof-2021")[0]
    df = lay_2021_df(inp / "asvspoof-2021-df")
    lay_itw(inp / "in-the-wild-audio-deepfake")
    a5 = lay_asvspoof5(inp / "asvspoof5")
    run = tmp_path / "run"
    shutil.copytree(demo_manifests, run / "manifests")
    return {"run": run, "inputs": inp, "la_keys": la, "df_keys": df, "a5": a5}


class CountingScorer:
    """A Scorer that remembers which files it scored."""

    def __init__(self, scorer):
        self.scorer, self.cfg, self.calibration, self.scored = scorer, scorer.cfg, scorer.calibration, []

    def score_files(self, paths, *args, **kwargs):
        self.scored += [p.name for p in paths]
        return self.scorer.score_files(paths, *args, **kwargs)


def evaluate_all(run, scorer, detector, spec, calibration=CALIBRATION, bootstrap=50):
    """What notebook 04 does, in its order: plans before scoring, stale corpora out, own corpus, table."""
    clear_results(run)
    plans = corpora.plan_corpora(corpora.parse_eval_datasets(spec), run, "asvspoof2019-la")
    corpora.remove_other_detectors(run, corpora.detector_identity(detector), corpora.scoring_identity(scorer.cfg))
    score_splits(scorer, run, "eval")
    own = results_table.own_corpus(run, "asvspoof2019-la", own_root(run), "eval")
    return results_table.corpora_table(scorer, run, detector, plans, own, calibration, "eval", "auto", bootstrap, 0)


def own_root(run):
    return Path(yaml.safe_load((run / "manifests" / "validation.yaml").read_text())["root"])


def xlsr_eer(capsys, *args) -> dict:
    """The figures ``xlsr eer`` prints (EER in %, min DCF, act DCF, Cllr, each min t-DCF)."""
    capsys.readouterr()
    assert main(["eer", *map(str, args)]) == 0
    out = capsys.readouterr().out
    counts = re.search(r"trials: (\d+) bonafide, (\d+) spoof", out)
    got = {"eer_pct": float(re.search(r"EER: ([\d.]+) %", out)[1]), "trials": int(counts[1]) + int(counts[2])}
    costs = re.search(r"min DCF: ([\d.]+)  act DCF: ([\d.]+)  Cllr: ([\d.]+)", out).groups()
    got |= {k: float(v) for k, v in zip(("min_dcf", "act_dcf", "cllr"), costs, strict=True)}
    got |= {f"tdcf_{v}": float(x) for v, x in re.findall(r"min t-DCF \((\d{4}) \w+\): ([\d.]+)", out)}
    return got


def test_every_corpus_is_one_row_equal_to_xlsr_eer_on_its_score_file(corpora_world, trained, demo_root, capsys):
    """The trained tiny detector on five corpora: each row's trials, EER, primary metric, act DCF and Cllr
    are what the command line computes from that corpus's score file (and LLR file), with the official
    protocol, ASV data and phase; the interval brackets the EER."""
    w, run = corpora_world, corpora_world["run"]
    detector = trained[1].detector_dir
    scorer = Scorer(detector, ScoringConfig(batch_size=8, device="cpu"))
    spec = "asvspoof2021-la, asvspoof2021-df, in-the-wild, asvspoof5"
    table, records = evaluate_all(run, scorer, detector, spec)
    assert table.corpus.tolist() == ["asvspoof2019-la", "asvspoof2021-la", "asvspoof2021-df", "in-the-wild", "asvspoof5"]
    res = run / "results"
    proto19 = demo_root / "ASVspoof2019_LA_cm_protocols" / "ASVspoof2019.LA.cm.eval.trl.txt"
    asv19 = demo_root / "ASVspoof2019_LA_asv_scores" / "ASVspoof2019.LA.asv.eval.gi.trl.scores.txt"
    asv21 = w["la_keys"].parents[1] / "ASV"
    la_asv = [asv21 / "ASVTorch_Kaldi" / "score.txt", asv21 / "trial_metadata.txt"]
    commands = {  # score file, protocol, ASV options: what a user would type for each corpus
        "asvspoof2019-la": (run / "scores" / "eval.txt", proto19, "--asv-scores", asv19),
        "asvspoof2021-la": (res / "asvspoof2021-la" / "scores.txt", w["la_keys"], "--asv-scores", la_asv[0],
                            "--asv-keys", la_asv[1], "--phase", "eval"),
        "asvspoof2021-df": (res / "asvspoof2021-df" / "scores.txt", w["df_keys"], "--phase", "eval"),
        "in-the-wild": (res / "in-the-wild" / "scores.txt", res / "in-the-wild" / "keys.txt"),  # meta.csv is no key file
        "asvspoof5": (res / "asvspoof5" / "scores.txt", w["a5"]),
    }
    expected_trials = {"asvspoof2019-la": 24, "asvspoof2021-la": 12, "asvspoof2021-df": 12, "in-the-wild": 12, "asvspoof5": 12}
    primary = {"asvspoof2019-la": ("min t-DCF 2019 legacy", "tdcf_2019"),
               "asvspoof2021-la": ("min t-DCF 2021 revised", "tdcf_2021"), "asvspoof2021-df": ("EER", "eer"),
               "in-the-wild": ("EER", "eer"), "asvspoof5": ("min DCF", "min_dcf")}
    for row in table.to_dict("records"):
        name = row["corpus"]
        score_file, protocol, *options = commands[name]
        assert records[name]["xlsr_eer"] == ["xlsr", "eer", str(score_file), "--protocol", *map(str, [protocol, *options])]
        cli = xlsr_eer(capsys, score_file, "--protocol", protocol, *options)
        assert row["trials"] == cli["trials"] == expected_trials[name]
        assert row["eer_pct"] == pytest.approx(cli["eer_pct"], abs=6e-4)  # printed with 3 decimals
        assert row["eer_ci_low_pct"] <= row["eer_pct"] + 1e-9 and row["eer_pct"] <= row["eer_ci_high_pct"] + 1e-9
        label, key = primary[name]
        assert row["primary_metric"] == label
        want = cli["eer_pct"] / 100 if key == "eer" else cli[key]
        assert row["primary_value"] == pytest.approx(want, abs=6e-6)
        llr = xlsr_eer(capsys, res / name / "llr.txt", "--protocol", protocol, *options)
        assert row["act_dcf"] == pytest.approx(llr["act_dcf"], abs=6e-6)
        assert row["cllr"] == pytest.approx(llr["cllr"], abs=6e-6)
    assert table.set_index("corpus").loc["asvspoof2021-la", "phase"] == "eval"
    assert set(records["asvspoof2021-df"]["per_condition_eer"]) == {"codec", "source", "vocoder"}
    assert all((res / c / "manifest" / "eval.csv").is_file() for c in commands if c != "asvspoof2019-la")
    for name in ("table.csv", "table.md", "table.json"):
        assert (res / name).is_file() and f"results/{name}" in written(run)
    md = (res / "table.md").read_text().splitlines()
    assert len(md) == 2 + 5 and md[0].startswith("| corpus | split | phase | trials | EER (%)")


def test_without_calibration_act_dcf_and_cllr_are_left_empty(corpora_world, untrained_detector):
    run = corpora_world["run"]
    scorer = Scorer(untrained_detector, ScoringConfig(batch_size=8, device="cpu"))
    table, _ = evaluate_all(run, scorer, untrained_detector, "in-the-wild", calibration=None, bootstrap=0)
    assert table.act_dcf.isna().all() and table.cllr.isna().all() and table.eer_ci_low_pct.isna().all()
    assert not (run / "results" / "in-the-wild" / "llr.txt").exists()
    assert "| - |" in (run / "results" / "table.md").read_text()


def test_a_resumed_evaluation_scores_only_the_missing_corpus(corpora_world, untrained_detector):
    """Session 1 scores In-the-Wild; session 2 lists it with ASVspoof 5: only ASVspoof 5's files are
    scored, and In-the-Wild's row is the one session 1 computed."""
    run = corpora_world["run"]
    first = CountingScorer(Scorer(untrained_detector, ScoringConfig(batch_size=8, device="cpu")))
    t1, r1 = evaluate_all(run, first, untrained_detector, "in-the-wild")
    assert r1["in-the-wild"]["reused"] is False
    again = CountingScorer(Scorer(untrained_detector, ScoringConfig(batch_size=8, device="cpu")))
    t2, r2 = evaluate_all(run, again, untrained_detector, "in-the-wild, asvspoof5")
    own = {f"{u}.flac" for u in pd.read_csv(run / "manifests" / "eval.csv").utt_id}
    a5 = {f"E_000{i:04d}.flac" for i in range(12)}
    assert set(again.scored) == own | a5 and len(again.scored) == len(own) + 12  # the own corpus, then ASVspoof 5 only
    assert r2["in-the-wild"]["reused"] is True and r2["asvspoof5"]["reused"] is False
    assert t2.set_index("corpus").loc["in-the-wild"].to_dict() == t1.set_index("corpus").loc["in-the-wild"].to_dict()


def test_a_session_stopped_mid_corpus_scores_it_again(corpora_world, untrained_detector):
    run = corpora_world["run"]
    evaluate_all(run, Scorer(untrained_detector, ScoringConfig(batch_size=8, device="cpu")), untrained_detector, "in-the-wild")
    (run / "results" / "in-the-wild" / "inputs.json").unlink()  # as if the session ended while scoring
    again = CountingScorer(Scorer(untrained_detector, ScoringConfig(batch_size=8, device="cpu")))
    _, records = evaluate_all(run, again, untrained_detector, "in-the-wild")
    assert records["in-the-wild"]["reused"] is False and {f"{i}.wav" for i in range(12)} <= set(again.scored)


@pytest.mark.parametrize("change", ["audio", "label", "scoring", "detector", "score file"])
def test_a_changed_input_scores_the_corpus_again(corpora_world, untrained_detector, tmp_path, change):
    run, itw = corpora_world["run"], corpora_world["inputs"] / "in-the-wild-audio-deepfake"
    detector = untrained_detector
    evaluate_all(run, Scorer(detector, ScoringConfig(batch_size=8, device="cpu")), detector, "in-the-wild")
    cfg = ScoringConfig(batch_size=8, device="cpu")
    if change == "audio":  # other audio under the same name
        wave(itw / "release_in_the_wild" / "real" / "0.wav", "bonafide", 999)
    elif change == "label":
        meta = itw / "meta.csv"
        meta.write_text(meta.read_text().replace("0.wav,Alec Guinness,bona-fide", "0.wav,Alec Guinness,spoof"))
        (itw / "release_in_the_wild" / "real" / "0.wav").rename(itw / "release_in_the_wild" / "fake" / "0.wav")
    elif change == "scoring":
        cfg = ScoringConfig(batch_size=8, device="cpu", aggregation="max")
    elif change == "detector":
        detector = shutil.copytree(untrained_detector, tmp_path / "other")
        (detector / "xlsr_detector.json").write_text((detector / "xlsr_detector.json").read_text().replace("0.25", "0.5"))
    else:
        txt = run / "results" / "in-the-wild" / "scores.txt"
        txt.write_text(txt.read_text().replace(" ", "  ", 1))
    again = CountingScorer(Scorer(detector, cfg))
    _, records = evaluate_all(run, again, detector, "in-the-wild")
    assert records["in-the-wild"]["reused"] is False
    assert {f"{i}.wav" for i in range(12)} <= set(again.scored)


def test_another_detector_removes_the_scores_of_every_corpus_it_did_not_compute(corpora_world, untrained_detector, tmp_path):
    """Corpora scored by the old detector go when 04 starts with another, listed again or not."""
    run = corpora_world["run"]
    evaluate_all(run, Scorer(untrained_detector, ScoringConfig(batch_size=8, device="cpu")), untrained_detector,
                 "in-the-wild, asvspoof5")
    other = shutil.copytree(untrained_detector, tmp_path / "other")
    (other / "xlsr_detector.json").write_text((other / "xlsr_detector.json").read_text().replace("0.25", "0.5"))
    evaluate_all(run, Scorer(other, ScoringConfig(batch_size=8, device="cpu")), other, "in-the-wild")
    assert not (run / "results" / "asvspoof5").exists()
    assert (run / "results" / "in-the-wild" / "inputs.json").is_file()


def test_clearing_keeps_finished_scores_and_removes_what_is_derived(corpora_world, untrained_detector):
    run = corpora_world["run"]
    evaluate_all(run, Scorer(untrained_detector, ScoringConfig(batch_size=8, device="cpu")), untrained_detector, "in-the-wild")
    folder = run / "results" / "in-the-wild"
    clear_results(run)
    assert all((folder / n).is_file() for n in ("scores.csv", "scores.txt", "inputs.json"))
    assert not any((run / "results" / n).exists() for n in ("table.csv", "table.md", "table.json"))
    assert not (folder / "llr.txt").exists() and not (folder / "keys.txt").exists() and not (folder / "manifest").exists()
    assert not (run / "metrics.json").exists() and not (run / "scores").exists()


def test_a_users_file_where_the_table_goes_is_refused_before_scoring(corpora_world):
    run = corpora_world["run"]
    (run / "results").mkdir()
    (run / "results" / "table.csv").write_text("mine\n")
    with pytest.raises(Exception, match="not written by xlsr"):
        clear_results(run)
    assert (run / "results" / "table.csv").read_text() == "mine\n"


@pytest.mark.parametrize("spec,words", [
    ("asvspoof2077", "unknown dataset 'asvspoof2077'"),
    ("in-the-wild, in-the-wild", "in-the-wild is listed twice"),
    ("in-the-wild,", "is empty"),
    ("in-the-wild=", "is empty"),
    (3, "expected text"),
])
def test_bad_eval_datasets_name_the_parameter(spec, words):
    with pytest.raises(ConfigError, match=re.escape(words)) as err:
        check_value("eval_datasets", spec)
    assert "eval_datasets" in str(err.value)


def test_eval_datasets_entries_and_their_roots(tmp_path):
    assert corpora.parse_eval_datasets("none") == [] == corpora.parse_eval_datasets(" ")
    assert corpora.parse_eval_datasets(f"in-the-wild={tmp_path}, asvspoof5") == [
        corpora.EvalCorpus("in-the-wild", str(tmp_path)), corpora.EvalCorpus("asvspoof5", "auto")]


def test_the_runs_own_corpus_is_not_listed_again(corpora_world):
    with pytest.raises(ConfigError, match="run's own corpus"):
        corpora.plan_corpora(corpora.parse_eval_datasets("asvspoof2019-la"), corpora_world["run"], "asvspoof2019-la")


def test_a_missing_root_stops_before_anything_is_scored(corpora_world, tmp_path):
    with pytest.raises(Exception, match="does not exist"):
        corpora.plan_corpora(corpora.parse_eval_datasets(f"in-the-wild, asvspoof5={tmp_path / 'absent'}"),
                             corpora_world["run"], "asvspoof2019-la")
    assert not (corpora_world["run"] / "results" / "in-the-wild" / "scores.csv").exists()


def test_seeds_give_mean_sd_per_corpus_and_the_fused_row(corpora_world, trained, capsys):
    """Two seed folders (the trained stage-1 and stage-2 detectors stand in for two seeds): per corpus the
    mean and sd of the seeds' EERs, and a fused row equal to ``xlsr eer`` on the per-trial mean score."""
    from xlsr_helpers.evaluate.seeds import results_summary, seed_dir
    run = corpora_world["run"]
    tables = {}
    for s, stage in ((1, trained[0]), (2, trained[1])):
        folder = seed_dir(run, s)
        shutil.copytree(run / "manifests", folder / "manifests")
        scorer = Scorer(stage.detector_dir, ScoringConfig(batch_size=8, device="cpu"))
        tables[s] = evaluate_all(folder, scorer, stage.detector_dir, "in-the-wild, asvspoof5")[0].set_index("corpus")
    summary = results_summary(run, [1, 2], "eval", 50, 0)
    for corpus in ("asvspoof2019-la", "in-the-wild", "asvspoof5"):
        t = summary[summary.corpus == corpus].set_index("system")
        a, b = tables[1].loc[corpus, "eer_pct"], tables[2].loc[corpus, "eer_pct"]
        assert t.loc["mean", "eer_pct"] == pytest.approx((a + b) / 2)
        assert t.loc["sd", "eer_pct"] == pytest.approx(abs(a - b) / np.sqrt(2))  # n - 1 = 1
        files = [seed_dir(run, s) / ("scores/eval.txt" if corpus == "asvspoof2019-la" else f"results/{corpus}/scores.txt")
                 for s in (1, 2)]
        one, two = (pd.read_csv(f, sep=" ", header=None, names=["utt_id", "score"], dtype={"utt_id": str}) for f in files)
        mean = one.set_index("utt_id").score.add(two.set_index("utt_id").score).div(2)
        fused = run / f"fused-{corpus}.txt"
        fused.write_text("".join(f"{u} {v:.6f}\n" for u, v in mean.items()))
        protocol = json.loads((seed_dir(run, 1) / "results" / "table.json").read_text())["rows"][corpus]["protocol"]
        asv19 = own_root(run) / "ASVspoof2019_LA_asv_scores" / "ASVspoof2019.LA.asv.eval.gi.trl.scores.txt"
        options = ["--asv-scores", str(asv19)] if corpus == "asvspoof2019-la" else []
        cli = xlsr_eer(capsys, fused, "--protocol", protocol, *options)
        assert t.loc["fused", "eer_pct"] == pytest.approx(cli["eer_pct"], abs=6e-4)
        want = {"asvspoof2019-la": cli.get("tdcf_2019"), "in-the-wild": cli["eer_pct"] / 100, "asvspoof5": cli["min_dcf"]}[corpus]
        assert t.loc["fused", "primary_value"] == pytest.approx(want, abs=6e-6)
    md = (run / "seeds" / "results_table.md").read_text().splitlines()
    assert len(md) == 2 + 2 * 3 and sum("mean +- sd of 2 seeds" in line for line in md) == 3


def test_a_run_on_two_corpora_gives_one_row_per_corpus_equal_to_xlsr_eer(two_corpora, untrained_detector, tmp_path,
                                                                          capsys):
    """A run on two generated corpora in two layouts (the 2019 LA demo: whitespace keys, flac, train/dev/eval;
    an own CSV corpus of wav files, train and dev only, reusing the demo's ids): the joined dev and eval
    manifests are scored and calibrated on the pooled dev, then each corpus is one row on its own split
    (eval; dev for the corpus without eval) from its own trials only, under the organisers' ids, equal to
    ``xlsr eer`` on that corpus's score file with the key file the test writes itself."""
    from reference_metrics import official_eer

    from xlsr_helpers.data.corpora import build_corpora, parse_corpora
    from xlsr_helpers.data.prep import write_manifests
    from xlsr_helpers.evaluate.results import calibrate_splits, evaluate_splits
    la, mine, descriptor = two_corpora
    run, dataset = tmp_path / "run", f"asvspoof2019-la+{descriptor}"
    (run / "manifests").mkdir(parents=True)
    write_manifests(build_corpora(parse_corpora(dataset, f"{la}+{mine}"), [la, mine]), run / "manifests")
    scorer = Scorer(untrained_detector, ScoringConfig(batch_size=8, device="cpu"))
    clear_results(run)
    scored, calibration = calibrate_splits(scorer, score_splits(scorer, run), run)
    assert calibration is not None and calibration.n_bonafide == (scored["dev"].label == "bonafide").sum()  # pooled dev
    pooled = evaluate_splits(scored, dataset, la)
    assert pooled["eval"]["trials"] == f"all {len(scored['eval'])} trials" and "min_tdcf" not in pooled["eval"]
    own = results_table.own_corpora(run, dataset, [la, mine], scored)
    table, records = results_table.corpora_table(scorer, run, untrained_detector, [], own, calibration, "eval", "auto", 0)
    assert table.corpus.tolist() == ["asvspoof2019-la", "mine"] and table.split.tolist() == ["eval", "dev"]
    mine_keys = tmp_path / "mine_keys.txt"  # mine's dev.csv (id,file,real|fake) as a 5-column key file
    mine_keys.write_text("".join(f"- {i} - - {'bonafide' if lab == 'real' else 'spoof'}\n" for i, _, lab in
                                 (ln.split(",") for ln in (mine / "dev.csv").read_text().splitlines()[1:])))
    res = run / "results"
    commands = {"asvspoof2019-la": (res / "asvspoof2019-la" / "scores_eval.txt",
                                    la / "ASVspoof2019_LA_cm_protocols" / "ASVspoof2019.LA.cm.eval.trl.txt", "--asv-scores",
                                    la / "ASVspoof2019_LA_asv_scores" / "ASVspoof2019.LA.asv.eval.gi.trl.scores.txt"),
                "mine": (res / "mine" / "scores_dev.txt", mine_keys)}
    primary = {"asvspoof2019-la": ("min t-DCF 2019 legacy", "tdcf_2019"), "mine": ("EER", "eer")}
    for row in table.to_dict("records"):
        name, split = row["corpus"], row["split"]
        score_file, protocol, *options = commands[name]
        assert records[name]["scores"] == str(score_file)
        ids = [ln.split()[0] for ln in score_file.read_text().splitlines()]
        assert sorted(ids) == sorted(ln.split()[1] for ln in protocol.read_text().splitlines())  # the organisers' ids
        cli = xlsr_eer(capsys, score_file, "--protocol", protocol, *options)
        joined = scored[split][scored[split].corpus == name]  # that corpus's trials of the joined split only
        assert row["trials"] == cli["trials"] == len(joined) == len(ids)
        assert row["eer_pct"] == pytest.approx(cli["eer_pct"], abs=6e-4)  # printed with 3 decimals
        bona = joined.label == "bonafide"
        assert row["eer_pct"] == pytest.approx(100 * official_eer(joined.score[bona], joined.score[~bona])[0], abs=1e-3)
        label, key = primary[name]
        assert row["primary_metric"] == label
        assert row["primary_value"] == pytest.approx(cli["eer_pct"] / 100 if key == "eer" else cli[key], abs=6e-6)
        llr = xlsr_eer(capsys, res / name / "llr.txt", "--protocol", protocol, *options)
        assert row["act_dcf"] == pytest.approx(llr["act_dcf"], abs=6e-6) and row["cllr"] == pytest.approx(llr["cllr"], abs=6e-6)
    la_command = commands["asvspoof2019-la"]  # what a user would type
    assert records["asvspoof2019-la"]["xlsr_eer"] == ["xlsr", "eer", str(la_command[0]), "--protocol",
                                                      *map(str, la_command[1:])]
    assert "results/mine/scores_dev.txt" in written(run)
    clear_results(run)  # derived from this run's scores: none outlives them
    assert not (res / "mine" / "scores_dev.txt").exists() and not (res / "asvspoof2019-la" / "scores_eval.txt").exists()


def test_eval_datasets_may_not_list_a_corpus_the_run_trained_on(tmp_path):
    with pytest.raises(ConfigError, match="asvspoof5 is the run's own corpus"):
        corpora.plan_corpora(corpora.parse_eval_datasets("asvspoof5"), tmp_path, "asvspoof2019-la+asvspoof5")
