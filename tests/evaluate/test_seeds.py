"""Several seeds: the per-seed runs, the summary table (mean, sd) and the score-averaged fusion."""

import json
import os
import re

import numpy as np
import pandas as pd
import pytest

from xlsr_helpers.core.errors import ConfigError, RunFolderError
from xlsr_helpers.core.written import claim, written
from xlsr_helpers.evaluate.metrics import compute_eer, min_tdcf
from xlsr_helpers.evaluate.scorefile import read_asv_2021
from xlsr_helpers.evaluate.seeds import SHARED, clear_summary, fuse, parse_seeds, prepare_seed_dir, seed_dir, summarize
from xlsr_helpers.pipeline.runfolder import resolve_data_root


def test_seed_lists():
    assert parse_seeds("1,2,3") == [1, 2, 3] and parse_seeds(" 7, 0 ") == [7, 0]
    for bad in ("1", "1,1", "1,x", "-1,2"):
        with pytest.raises(ConfigError, match="--seeds"):
            parse_seeds(bad)


def _scores(rng, ids, labels, shift):
    """A scored table as 04 writes it, rows in a random order."""
    score = rng.normal(0, 1, len(ids)) + shift * (labels == "bonafide")
    df = pd.DataFrame({"utt_id": ids, "path": [f"/a/{u}.flac" for u in ids], "score": score, "llr": score,
                       "p_spoof": 0.5, "label_pred": "spoof", "n_windows": 1, "error": "", "label": labels,
                       "attack": np.where(labels == "bonafide", "-", "A07")})
    return df.sample(frac=1, random_state=int(rng.integers(1000))).reset_index(drop=True)


def _write_seed_runs(run_dir, seeds, n=60, phases=False):
    """Each seed's scores/dev|eval.csv; ``phases``: with the 2021 keys' phase column (even trials progress)."""
    rng = np.random.default_rng(0)
    ids = np.array([f"E{i:03d}" for i in range(n)])
    labels = np.where(np.arange(n) % 3 == 0, "bonafide", "spoof")
    phase_of = dict(zip(ids, np.where(np.arange(n) % 2, "eval", "progress"), strict=True))
    tables = {}
    for s in seeds:
        for split in ("dev", "eval"):
            df = _scores(rng, ids, labels, shift=1.0 + s / 4)
            if phases:
                df["phase"] = df.utt_id.map(phase_of)
            out = seed_dir(run_dir, s) / "scores"
            out.mkdir(parents=True, exist_ok=True)
            df.to_csv(out / f"{split}.csv", index=False)
            tables[(s, split)] = df
    return tables, ids, labels


def _eer(df):
    return compute_eer(df.score[df.label == "bonafide"].to_numpy(), df.score[df.label == "spoof"].to_numpy())[0]


def test_summary_rows_are_each_seed_their_mean_and_sd_and_the_fused_system(tmp_path):
    seeds = [1, 2, 3]
    tables, ids, labels = _write_seed_runs(tmp_path, seeds)
    table = summarize(tmp_path, seeds, lambda split: None)
    ev = table[table.split == "eval"].set_index("system")
    assert list(ev.index) == ["seed 1", "seed 2", "seed 3", "mean", "sd", "fused"]
    per_seed = [100 * _eer(tables[(s, "eval")]) for s in seeds]
    assert ev.loc[["seed 1", "seed 2", "seed 3"], "EER (%)"].tolist() == pytest.approx(per_seed)
    assert ev.loc["mean", "EER (%)"] == pytest.approx(np.mean(per_seed))
    assert ev.loc["sd", "EER (%)"] == pytest.approx(np.std(per_seed, ddof=1))
    # fusion: the mean of the three scores of each trial, whatever order each seed's file lists them in
    mean_score = np.mean([tables[(s, "eval")].set_index("utt_id").loc[ids, "score"] for s in seeds], axis=0)
    expected = compute_eer(mean_score[labels == "bonafide"], mean_score[labels == "spoof"])[0]
    assert ev.loc["fused", "EER (%)"] == pytest.approx(100 * expected)
    fused = pd.read_csv(tmp_path / "seeds" / "fused" / "eval.csv", keep_default_na=False)
    assert "p_spoof" not in fused and fused.set_index("utt_id").loc[ids, "score"].to_numpy() == pytest.approx(mean_score)
    assert (tmp_path / "seeds" / "fused" / "eval.txt").read_text().count("\n") == len(ids)
    record = json.loads((tmp_path / "seeds" / "summary.json").read_text())
    assert record["seeds"] == seeds and len(record["rows"]) == 12 and record["rows"][0]["min t-DCF"] is None


def test_fusion_needs_the_same_trials():
    a = pd.DataFrame({"utt_id": ["x", "y"], "score": [1.0, 2.0]})
    with pytest.raises(ConfigError, match="other trials"):
        fuse([a, a.assign(utt_id=["x", "z"])])


@pytest.mark.trains  # trains a stage or runs the chain: left out of make mutate
def test_run_with_seeds_runs_03_and_04_per_seed_on_the_shared_stage_1(tmp_path, monkeypatch):
    """The orchestration, with each notebook replaced by a stand-in that records its parameters and
    writes what 04 would (the notebooks themselves run in test_runner)."""
    from xlsr_helpers.pipeline import runner
    calls = []

    def fake_execute(src, out, parameters, *args, **kwargs):
        calls.append((src.stem, parameters["run_dir"], parameters.get("seed"), parameters.get("cache_dir")))
        run = runner.Path(parameters["run_dir"])
        if src.stem == "01_data_prep":  # 01 generates the demo corpus; the summary reads its ASV scores
            resolve_data_root(parameters["data_root"], "asvspoof2019-la", run)
        if src.stem == "02_stage1_head":
            (run / "stage1" / "detector").mkdir(parents=True)
        if src.stem == "04_eval_eer":
            assert (run / "stage1" / "detector").is_dir()  # the shared stage 1, seen through the link
            seed = parameters["seed"]
            rng = np.random.default_rng(seed)
            ids = [f"E{i}" for i in range(30)]
            labels = np.where(np.arange(30) % 3 == 0, "bonafide", "spoof")
            (run / "scores").mkdir()
            _scores(rng, np.array(ids), labels, 2.0).to_csv(run / "scores" / "eval.csv", index=False)
    monkeypatch.setattr(runner, "execute_notebook", fake_execute)
    monkeypatch.setattr(runner, "check_inputs_exist", lambda *a: None)
    assert runner.run_pipeline("demo", {}, run_dir=tmp_path / "run",
                               seeds=[5, 6], progress_bar=False) == 0
    run = tmp_path / "run"
    seeds_root = str(run / "seeds")
    assert [(c[0], c[1], c[2]) for c in calls] == [
        ("01_data_prep", str(run), None), ("02_stage1_head", str(run), None),  # the notebooks' own seed
        ("03_stage2_finetune", f"{seeds_root}/seed-5", 5), ("04_eval_eer", f"{seeds_root}/seed-5", 5),
        ("03_stage2_finetune", f"{seeds_root}/seed-6", 5 + 1), ("04_eval_eer", f"{seeds_root}/seed-6", 6)]
    assert calls[2][3] == f"{seeds_root}/cache"  # one stage-2 cache for every seed
    table = pd.read_csv(run / "seeds" / "summary.csv")
    assert table.system.tolist() == ["seed 5", "seed 6", "mean", "sd", "fused"]
    assert (run / "seeds" / "seeds.png").stat().st_size > 0


@pytest.mark.trains  # trains a stage or runs the chain: left out of make mutate
def test_seeds_from_04_scores_each_seeds_detector_without_training_again(tmp_path, monkeypatch):
    from xlsr_helpers.pipeline import runner
    calls = []

    def fake_04(src, out, parameters, *args, **kwargs):
        calls.append((src.stem, parameters["run_dir"]))
        scores = runner.Path(parameters["run_dir"]) / "scores"
        scores.mkdir()
        ids = np.array([f"E{i}" for i in range(30)])
        labels = np.where(np.arange(30) % 3 == 0, "bonafide", "spoof")
        _scores(np.random.default_rng(parameters["seed"]), ids, labels, 2.0).to_csv(scores / "eval.csv", index=False)
    monkeypatch.setattr(runner, "execute_notebook", fake_04)
    run = tmp_path / "run"
    (run / "manifests").mkdir(parents=True)
    resolve_data_root("demo:small", "asvspoof2019-la", run)  # what 01 left (the summary reads its ASV scores)
    (run / "params.yaml").write_text("{}\n")  # an earlier run's folder (a bare folder of files is refused)

    def train_seed(seed):
        (run / "seeds" / f"seed-{seed}" / "stage2" / "detector").mkdir(parents=True)
        (run / "seeds" / f"seed-{seed}" / "stage2" / "detector" / "config.json").write_text("{}")
    train_seed(1)
    with pytest.raises(runner.PipelineError, match=r"seed\(s\) \[2\] .*start from 03"):
        runner.run_pipeline("demo", {}, run_dir=run, start_from="04", seeds=[1, 2], progress_bar=False)
    assert calls == []  # refused before any notebook ran
    train_seed(2)
    assert runner.run_pipeline("demo", {}, run_dir=run, start_from="04", seeds=[1, 2], progress_bar=False) == 0
    assert calls == [("04_eval_eer", str(run / "seeds" / "seed-1")), ("04_eval_eer", str(run / "seeds" / "seed-2"))]
    assert pd.read_csv(run / "seeds" / "summary.csv").system.tolist() == ["seed 1", "seed 2", "mean", "sd", "fused"]


def test_clearing_the_summary_removes_only_what_the_project_wrote(tmp_path):
    from xlsr_helpers.core.errors import RunFolderError
    from xlsr_helpers.evaluate.seeds import SEEDS_DIR, clear_summary
    seeds = [1, 2]
    _write_seed_runs(tmp_path, seeds)
    summarize(tmp_path, seeds, lambda split: None)
    ours = sorted(p.relative_to(tmp_path).as_posix() for p in (tmp_path / SEEDS_DIR).rglob("*")
                  if p.is_file() and "seed-" not in p.as_posix())
    assert ours == ["seeds/fused/dev.csv", "seeds/fused/dev.txt", "seeds/fused/eval.csv", "seeds/fused/eval.txt",
                    "seeds/summary.csv", "seeds/summary.json"]
    (tmp_path / SEEDS_DIR / "fused" / "my_fusion.csv").write_text("mine")
    removed = clear_summary(tmp_path)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in removed) == ours
    assert [p.name for p in (tmp_path / SEEDS_DIR / "fused").iterdir()] == ["my_fusion.csv"]
    assert all((seed_dir(tmp_path, s) / "scores" / "eval.csv").is_file() for s in seeds)  # the seeds' own scores stay
    (tmp_path / SEEDS_DIR / "summary.csv").write_text("mine")  # a file of the user's where the summary goes
    with pytest.raises(RunFolderError, match="summary.csv: not written by xlsr"):
        clear_summary(tmp_path)
    assert (tmp_path / SEEDS_DIR / "summary.csv").read_text() == "mine"


def test_fusion_drops_every_per_seed_calibration_column_and_names_the_seed_that_differs():
    a = pd.DataFrame({"utt_id": ["x", "y"], "score": [1.0, 3.0], "llr": [0.1, 0.2], "p_spoof": [0.4, 0.3],
                      "label_pred": ["spoof", "bonafide"], "label": ["spoof", "bonafide"]})
    fused = fuse([a, a.assign(score=[3.0, 5.0])])
    assert fused.columns.tolist() == ["utt_id", "score", "label"] and fused.score.tolist() == [2.0, 4.0]
    bare = a.drop(columns=["llr", "p_spoof", "label_pred"])  # a seed without calibration columns: the first's go
    assert fuse([a, bare]).columns.tolist() == ["utt_id", "score", "label"]
    with pytest.raises(ConfigError, match="^seed 3's scores cover other trials"):
        fuse([a, a, a.assign(utt_id=["x", "z"])])


def test_seed_scores_keep_ids_that_look_like_numbers_and_name_a_missing_seed(tmp_path):
    from xlsr_helpers.evaluate.seeds import seed_scores
    out = seed_dir(tmp_path, 1) / "scores"
    out.mkdir(parents=True)
    pd.DataFrame({"utt_id": ["0001", "0002"], "score": [1.0, 2.0]}).to_csv(out / "eval.csv", index=False)
    assert seed_scores(tmp_path, [1], "eval")[0].utt_id.tolist() == ["0001", "0002"]
    with pytest.raises(ConfigError, match=r"seed-2/scores/eval\.csv is missing: notebook 04 did not finish for seed 2"):
        seed_scores(tmp_path, [1, 2], "eval")


def _asv_2021(tmp_path):
    """2021-style ASV keys (8 columns, phase last) and scores, the two phases drawn apart so their rates differ."""
    rng = np.random.default_rng(1)
    keys, scores = [], []
    for i in range(120):
        phase, label = ("eval", "progress")[i % 2], ("target", "nontarget", "spoof")[i % 3]
        mean = {"target": 2.0, "nontarget": -2.0, "spoof": 0.5 if phase == "eval" else 1.8}[label]
        keys.append(f"LA_1 T{i:03d} - - - {label} notrim {phase}")
        scores.append(f"LA_1 T{i:03d} {rng.normal(mean, 1.0):.3f}")
    (tmp_path / "asv_keys.txt").write_text("\n".join(keys) + "\n")
    (tmp_path / "asv_scores.txt").write_text("\n".join(scores) + "\n")
    return {"keys": tmp_path / "asv_keys.txt", "scores": tmp_path / "asv_scores.txt"}


def test_summary_with_an_asv_reference_and_a_phase_and_the_files_it_writes(tmp_path):
    """asv_for_split is asked for each split; min t-DCF of each seed (and of the fused scores) is the 2021
    t-DCF of its scores of the asked phase against that phase's ASV rates; summary.json records the phase
    and is indented; summary.csv holds just the table's columns (no index) and reads back equal to the table."""
    seeds = [1, 2]
    tables, _, _ = _write_seed_runs(tmp_path, seeds, phases=True)
    ref = _asv_2021(tmp_path)
    asked = []
    table = summarize(tmp_path, seeds, lambda split: asked.append(split) or ref, "progress")
    assert asked == ["dev", "eval"]
    rates = read_asv_2021(ref["keys"], ref["scores"], "progress")
    for split in ("dev", "eval"):
        rows = table[table.split == split].set_index("system")
        for s in seeds:
            sub = tables[(s, split)][tables[(s, split)].phase == "progress"]
            bona, spoof = sub.score[sub.label == "bonafide"].to_numpy(), sub.score[sub.label == "spoof"].to_numpy()
            assert rows.loc[f"seed {s}", "min t-DCF"] == pytest.approx(min_tdcf(bona, spoof, rates, "2021")[0])
            assert rows.loc[f"seed {s}", "EER (%)"] == pytest.approx(100 * _eer(sub))
        fused = pd.concat([tables[(s, split)].set_index("utt_id").score for s in seeds], axis=1).mean(axis=1)
        fused = fused[tables[(1, split)].set_index("utt_id").phase == "progress"]
        label = tables[(1, split)].set_index("utt_id").label[fused.index]
        expected = min_tdcf(fused[label == "bonafide"].to_numpy(), fused[label == "spoof"].to_numpy(), rates, "2021")[0]
        assert rows.loc["fused", "min t-DCF"] == pytest.approx(expected)
    text = (tmp_path / "seeds" / "summary.json").read_text()
    assert json.loads(text)["phase"] == "progress" and "\n  " in text
    back = pd.read_csv(tmp_path / "seeds" / "summary.csv")
    assert back.columns.tolist() == ["split", "system", "EER (%)", "min t-DCF", "min DCF"]
    pd.testing.assert_frame_equal(back, table)


@pytest.mark.parametrize("target", ["summary.json", "fused/train.csv", "fused/train.txt", "fused/results/itw.txt"])
def test_clearing_the_summary_removes_each_of_its_files_and_refuses_a_users_file_there(tmp_path, target):
    """Each place the summary writes (fused/<split> for every manifest of the run, though no seed scored it;
    fused/results/<corpus>.txt): the project's file there is removed and returned, a user's file is named
    in the refusal and stays."""
    (tmp_path / "manifests").mkdir()
    (tmp_path / "manifests" / "train.csv").write_text("utt_id\n")  # a split only the run's manifests name
    path = tmp_path / "seeds" / target
    claim(tmp_path, path).write_text("ours")
    assert path in clear_summary(tmp_path) and not path.exists()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("mine")
    with pytest.raises(RunFolderError, match=re.escape(f"{path}: not written by xlsr")):
        clear_summary(tmp_path)
    assert path.read_text() == "mine"


def test_a_seed_folder_links_the_shared_outputs_relatively_and_records_only_the_folders_it_made(tmp_path):
    """seeds/seed-<n> is made and recorded (with seeds/ when made too), a folder that was there is not;
    each shared name the run has is a relative link to it, one it lacks is not linked; a second call
    keeps what the seed folder holds."""
    (tmp_path / "manifests").mkdir()
    (tmp_path / "stage1").mkdir()
    out = prepare_seed_dir(tmp_path, 3)
    assert out == tmp_path / "seeds" / "seed-3" and out.is_dir()
    assert written(tmp_path) == {"seeds/", "seeds/seed-3/"}
    for name in ("manifests", "stage1"):
        rel = os.readlink(out / name)
        assert not os.path.isabs(rel) and (out / rel).resolve() == (tmp_path / name).resolve()
    assert not any((out / n).exists() or (out / n).is_symlink() for n in SHARED if n not in ("manifests", "stage1"))
    (out / "demo_data").mkdir()  # the seed's own folder where a shared name goes
    (tmp_path / "demo_data").mkdir()
    assert prepare_seed_dir(tmp_path, 3) == out
    assert not (out / "demo_data").is_symlink() and os.readlink(out / "stage1") == os.path.join("..", "..", "stage1")
    (tmp_path / "seeds" / "seed-7").mkdir()  # a folder of the user's
    prepare_seed_dir(tmp_path, 7)
    assert written(tmp_path) == {"seeds/", "seeds/seed-3/"}
