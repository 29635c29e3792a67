"""The chain runner: parameters checked before any work, results that never outlive their inputs,
and a run continued from an earlier (read-only) run folder, as a new Kaggle kernel version does."""

import json
import shutil

import pandas as pd
import pytest
import torch
import yaml

from xlsr_helpers.cli.main import main
from xlsr_helpers.core.errors import ConfigError, RunFolderError
from xlsr_helpers.pipeline.run_state import RUN_STATE
from xlsr_helpers.pipeline.runlock import LOCK_FILE
from xlsr_helpers.pipeline.runner import run_pipeline
from xlsr_helpers.runtime.kaggle_env import KAGGLE_ROOT_ENV


@pytest.mark.parametrize("override,words", [
    ({"s1_epochs": "abc"}, "s1_epochs='abc': expected an integer in [1, 1000]"),
    ({"device": "gpu"}, "device='gpu': expected one of ['auto', 'cuda', 'cpu']"),
    ({"precision": "fp8"}, "precision='fp8'"),
    ({"s2_batch_size": 0}, "s2_batch_size=0"),
    ({"segment_seconds": 0}, "segment_seconds=0"),
    ({"max_trials_per_split": -3}, "max_trials_per_split=-3"),
    ({"check_audio": "yes"}, "check_audio='yes': expected True or False"),
    ({"score_hop_seconds": float("nan")}, "score_hop_seconds=nan"),
    ({"segment_seconds": 1e9}, "segment_seconds=1000000000.0: expected a number in [0.025, 60]"),  # not 58 TiB later
    ({"s2_top_layers": 100}, "s2_top_layers=100: expected an integer in [1, 48]"),
    # what the values point at, found before 01 (tiny-random has 4 transformer layers)
    ({"s2_top_layers": 5}, "parameter s2_top_layers=5: the base model tiny-random has 4 transformer layers"),
    ({"base_model": "/no/such/model"}, "parameter base_model='/no/such/model': model folder /no/such/model does not exist"),
    ({"s2_augment": "lnl+reverb"}, "parameter s2_augment='lnl+reverb': unknown augmentation ['reverb']"),
    ({"s2_augment": "noise"}, "parameter s2_augment='noise': augmentation 'noise' needs noise_dir"),
    ({"score_splits": "eval,test"}, "parameter score_splits='eval,test': ['test'] not among asvspoof2019-la's splits"),
    ({"score_splits": ""}, "parameter score_splits='': expected 'auto' or split names joined with ','"),
    ({"asv_scores": "/no/asv.txt"}, "parameter asv_scores='/no/asv.txt': no such file"),
    ({"data_root": ["a", "b"]}, "parameter data_root=['a', 'b']: expected 'auto', 'demo:tiny', 'demo:small' or a folder"),
    ({"s2_noise_dir": ["a"]}, "parameter s2_noise_dir=['a']: expected a path or name (text)"),
    ({"report_to": "wandb"}, "report_to='wandb': wandb is not installed"),
    ({"report_to": "comet"}, "parameter report_to='comet' (expected 'none' or a comma-separated subset"),
    pytest.param({"device": "cuda"}, "parameter device='cuda': no CUDA device is visible",
                 marks=pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is visible")),
])
def test_bad_parameters_stop_before_any_notebook(tmp_path, override, words):
    with pytest.raises(ConfigError) as info:
        run_pipeline("cpu-smoke", override, run_dir=tmp_path / "run")
    assert words in str(info.value)
    assert not (tmp_path / "run").exists()  # nothing ran, nothing recorded


def test_bad_parameter_on_the_command_line_exits_2(tmp_path, capsys):
    assert main(["run", "--preset", "cpu-smoke", "--run-dir", str(tmp_path / "r"), "--set", "s1_epochs=abc"]) == 2
    assert "s1_epochs='abc'" in capsys.readouterr().err
    assert main(["run", "--preset", "cpu-smoke", "--run-dir", str(tmp_path / "r"), "--set", "oops"]) == 2


def test_numbers_written_as_strings_are_accepted(tmp_path):
    from xlsr_helpers.pipeline.params import check_parameters
    assert check_parameters({"s1_learning_rate": "1e-3", "s1_epochs": "4", "cache": False}) == \
        {"s1_learning_rate": 0.001, "s1_epochs": 4, "cache": "off"}


@pytest.fixture(scope="module")
def partial_run(tmp_path_factory):
    """01 and 02 of the smallest chain, as a kernel that ran out of time after stage 1 would leave it."""
    run = tmp_path_factory.mktemp("earlier") / "xlsr-run"
    assert run_pipeline("cpu-smoke", run_dir=run, only=["01", "02"], progress_bar=False) == 0
    return run


def test_set_run_dir_and_relative_data_root_follow_the_user(tmp_path, monkeypatch):
    from xlsr_helpers.data.demo import make_demo_corpus
    make_demo_corpus(tmp_path / "corpus", size="tiny")
    monkeypatch.chdir(tmp_path)
    assert run_pipeline("cpu-smoke", {"run_dir": "mine", "data_root": "corpus/LA", "check_audio": False},
                        only=["01"], progress_bar=False) == 0
    train = pd.read_csv(tmp_path / "mine" / "manifests" / "train.csv")
    assert train.path.str.startswith(str(tmp_path / "corpus" / "LA")).all()


def test_resume_from_an_earlier_read_only_run(partial_run, tmp_path, capfd):
    state = yaml.safe_load((partial_run / RUN_STATE).read_text())
    assert list(state) == ["01_data_prep", "02_stage1_head"]
    detector = (partial_run / "stage1" / "detector" / "model.safetensors").read_bytes()
    history = (partial_run / "stage1" / "history.csv").read_text()
    source = shutil.copytree(partial_run, tmp_path / "input" / "xlsr-run")
    lock = {"pid": 1, "host": "an-earlier-kernel", "started": "2026-01-01 00:00:00"}
    (source / LOCK_FILE).write_text(json.dumps(lock))  # that kernel was killed mid-run: its lock stayed
    for p in [source, *source.rglob("*")]:
        p.chmod(p.stat().st_mode & ~0o222)  # as read-only as /kaggle/input
    new = tmp_path / "working" / "xlsr-run"
    assert run_pipeline("cpu-smoke", run_dir=new, resume_from=source, progress_bar=False) == 0
    err = capfd.readouterr().err
    assert "02_stage1_head ..." not in err and "03_stage2_finetune ..." in err  # 01-02 were not run again
    assert "without encryption" not in err  # the kernels are quiet
    assert (new / "stage1" / "detector" / "model.safetensors").read_bytes() == detector
    assert (new / "stage1" / "history.csv").read_text() == history
    assert json.loads((new / "metrics.json").read_text())["split"] == "eval"
    assert list(yaml.safe_load((new / RUN_STATE).read_text())) == ["01_data_prep", "02_stage1_head",
                                                                   "03_stage2_finetune", "04_eval_eer"]
    assert not (new / LOCK_FILE).exists()  # neither the earlier kernel's lock nor this run's
    # the same command once more: nothing left to do
    assert run_pipeline("cpu-smoke", run_dir=new, resume_from=source, progress_bar=False) == 0
    assert "every notebook already finished" in capfd.readouterr().err


def test_resume_auto_finds_the_earlier_kernel_output_and_continues_a_stage(partial_run, tmp_path, monkeypatch, capfd):
    """A kernel killed during stage 2: its checkpoints are continued, not started over. Once it
    finishes, the kept output holds no cache or checkpoint of it, and the run says how much it keeps."""
    earlier = tmp_path / "earlier"
    shutil.copytree(partial_run, earlier)
    assert run_pipeline("cpu-smoke", run_dir=earlier, only=["03"], progress_bar=False) == 0
    shutil.rmtree(earlier / "stage2" / "detector")  # killed after its last checkpoint, before the final save
    state = yaml.safe_load((earlier / RUN_STATE).read_text())
    del state["03_stage2_finetune"]
    (earlier / RUN_STATE).write_text(yaml.safe_dump(state))
    kaggle = tmp_path / "kaggle"
    shutil.copytree(earlier, kaggle / "input" / "my-xlsr-kernel" / "xlsr-run")
    (kaggle / "working").mkdir()
    monkeypatch.setenv(KAGGLE_ROOT_ENV, str(kaggle))
    assert run_pipeline("cpu-smoke", {"run_dir": "auto"}, resume_from="auto", progress_bar=False) == 0
    new = kaggle / "working" / "xlsr-run"
    executed = (new / "notebooks" / "03_stage2_finetune.ipynb").read_text()
    assert "resuming from" in executed
    before = pd.read_csv(earlier / "stage2" / "history.csv")
    assert pd.read_csv(new / "stage2" / "history.csv").epoch.tolist() == before.epoch.tolist()
    assert (new / "metrics.json").exists()
    assert not {"checkpoints", "cache", "top_k"} & {p.name for p in (new / "stage2").iterdir()}
    assert (earlier / "stage1" / "cache").is_dir() and not (new / "stage1" / "cache").exists()  # never read there
    assert list((kaggle / "temp" / "xlsr-cache" / "stage2").glob("*.npy"))  # the cache was on the scratch disk
    kept = sum(p.stat().st_size for p in new.rglob("*") if p.is_file())  # after the run: its lock is gone
    assert f"  {new} keeps {kept:,} bytes ({kept / 1e9:.2f} GB); {kaggle / 'working'} holds {kept:,} bytes, " \
           f"{100 * kept / 20e9:.1f} % of Kaggle's 20 GB output quota" in capfd.readouterr().out.splitlines()


def test_results_never_outlive_their_inputs(partial_run, tmp_path):
    run = shutil.copytree(partial_run, tmp_path / "run")
    assert run_pipeline("cpu-smoke", run_dir=run, start_from="03", progress_bar=False) == 0
    assert (run / "metrics.json").exists() and (run / "scores").is_dir()
    (run / "scores" / "my_notes.txt").write_text("mine")  # a user's file among the results
    # new manifests: the old metrics go at once, and the stage trained on the old ones is not reused
    assert run_pipeline("cpu-smoke", {"max_trials_per_split": 12}, run_dir=run, only=["01"], progress_bar=False) == 0
    assert not (run / "metrics.json").exists()
    assert [p.name for p in (run / "scores").iterdir()] == ["my_notes.txt"]  # only what the project wrote went
    assert (run / "scores" / "my_notes.txt").read_text() == "mine"
    with pytest.raises(Exception, match=r"other parameters or inputs \(inputs.dev_audio: .*inputs.dev_manifest"):
        run_pipeline("cpu-smoke", run_dir=run, only=["02"], progress_bar=False)
    assert run_pipeline("cpu-smoke", {"on_change": "restart"}, run_dir=run, only=["02"], progress_bar=False) == 0
    assert yaml.safe_load((run / "stage1" / "summary.yaml").read_text())["best_dev_eer"] >= 0
    # stage 2 was trained from the old stage 1 and the old manifests: 04 refuses to score it
    with pytest.raises(Exception, match=r"stage2/detector is stale: inputs.train_manifest.*inputs.model"):
        run_pipeline("cpu-smoke", run_dir=run, only=["04"], progress_bar=False)
    assert not (run / "metrics.json").exists()


def test_04_writes_one_table_over_the_runs_corpus_and_another_and_takes_finished_scores_over(partial_run, tmp_path,
                                                                                              monkeypatch):
    """An In-the-Wild copy with a relative root (resolved against the user's folder): 04 in the chain scores
    it into results/, and 04 once more takes its scores over instead of scoring them again."""
    import numpy as np
    import soundfile as sf

    from xlsr_helpers.data.demo import bonafide, spoof
    itw = tmp_path / "itw"
    itw.mkdir()
    labels = ["bona-fide", "spoof"] * 3
    (itw / "meta.csv").write_text("file,speaker,label\n" + "".join(f"{i}.wav,A B,{lab}\n" for i, lab in enumerate(labels)))
    for i, lab in enumerate(labels):
        rng = np.random.default_rng(i)
        sf.write(itw / f"{i}.wav", bonafide(rng, 0.6, 130) if lab == "bona-fide" else spoof(rng, 0.6, 130, "A08"), 16000)
    run = shutil.copytree(partial_run, tmp_path / "run")
    monkeypatch.chdir(tmp_path)
    given = {"eval_datasets": "in-the-wild=itw"}
    assert run_pipeline("cpu-smoke", given, run_dir=run, start_from="03", progress_bar=False) == 0
    table = pd.read_csv(run / "results" / "table.csv")
    assert table.corpus.tolist() == ["asvspoof2019-la", "in-the-wild"] and table.trials.tolist()[1] == 6
    assert (run / "results" / "eer_per_corpus.png").is_file() and (run / "results" / "table.md").is_file()
    scores = run / "results" / "in-the-wild" / "scores.csv"
    written_at = scores.stat().st_mtime_ns
    assert run_pipeline("cpu-smoke", given, run_dir=run, only=["04"], progress_bar=False) == 0
    assert scores.stat().st_mtime_ns == written_at
    rows = json.loads((run / "results" / "table.json").read_text())["rows"]
    assert rows["in-the-wild"]["reused"] is True and rows["asvspoof2019-la"]["reused"] is False
    assert pd.read_csv(run / "results" / "table.csv").equals(table)


@pytest.fixture
def stand_in_notebooks(monkeypatch):
    """Every notebook replaced by a stand-in that records its name (the chain's bookkeeping without
    Jupyter kernels: what runs, what is marked finished, with which parameters)."""
    from xlsr_helpers.pipeline import runner
    calls = []

    def fake_execute(src, out, parameters, *args, **kwargs):
        calls.append(src.stem)
    monkeypatch.setattr(runner, "execute_notebook", fake_execute)
    monkeypatch.setattr(runner, "check_inputs_exist", lambda *a: None)
    return calls


@pytest.mark.parametrize("change,runs_again", [
    ({}, []),  # the same parameters: nothing to do
    ({"score_batch_size": 3}, ["04_eval_eer"]),  # 04's own parameter: only 04
    ({"s2_epochs": 3}, ["03_stage2_finetune", "04_eval_eer"]),  # 03's (the preset's 2): 03 and what follows
    ({"s1_learning_rate": 0.0123}, ["02_stage1_head", "03_stage2_finetune", "04_eval_eer"]),
    ({"max_trials_per_split": 7}, ["01_data_prep", "02_stage1_head", "03_stage2_finetune", "04_eval_eer"]),
])
def test_resume_runs_again_from_the_first_notebook_whose_parameters_changed(stand_in_notebooks, tmp_path,
                                                                            change, runs_again):
    """A notebook that finished with other parameters than the resumed run's is not finished: it and
    every notebook after it run again (and are recorded with the new parameters)."""
    earlier = tmp_path / "earlier"
    assert run_pipeline("cpu-smoke", run_dir=earlier, progress_bar=False) == 0
    assert stand_in_notebooks == ["01_data_prep", "02_stage1_head", "03_stage2_finetune", "04_eval_eer"]
    stand_in_notebooks.clear()
    new = tmp_path / "new"
    assert run_pipeline("cpu-smoke", change, run_dir=new, resume_from=earlier, progress_bar=False) == 0
    assert stand_in_notebooks == runs_again
    state = yaml.safe_load((new / RUN_STATE).read_text())
    assert list(state) == ["01_data_prep", "02_stage1_head", "03_stage2_finetune", "04_eval_eer"]
    for key, value in change.items():
        recorded = [nb for nb, entry in state.items() if key in entry["parameters"]]
        assert recorded and all(state[nb]["parameters"][key] == value for nb in recorded)


def test_unfinished_notebooks_compares_each_notebooks_own_parameters(tmp_path):
    from xlsr_helpers.pipeline.notebooks import NOTEBOOKS
    from xlsr_helpers.pipeline.run_state import forget_finished, mark_finished, unfinished_notebooks
    resolved = {nb: {"run_dir": "/somewhere", "seed": 1, f"p{i}": i} for i, nb in enumerate(NOTEBOOKS)}
    assert unfinished_notebooks(tmp_path, resolved) == NOTEBOOKS  # nothing finished yet
    for nb in NOTEBOOKS:
        mark_finished(tmp_path, nb, resolved[nb])
    assert unfinished_notebooks(tmp_path, resolved) == []
    moved = {**resolved, NOTEBOOKS[0]: {**resolved[NOTEBOOKS[0]], "run_dir": "/elsewhere"}}
    assert unfinished_notebooks(tmp_path, moved) == []  # the run folder itself is not a parameter
    changed = {**resolved, NOTEBOOKS[2]: {**resolved[NOTEBOOKS[2]], "p2": 99}}
    assert unfinished_notebooks(tmp_path, changed) == NOTEBOOKS[2:]
    added = {**resolved, NOTEBOOKS[1]: {**resolved[NOTEBOOKS[1]], "extra": 0}}
    assert unfinished_notebooks(tmp_path, added) == NOTEBOOKS[1:]
    forget_finished(tmp_path, NOTEBOOKS[3])
    assert unfinished_notebooks(tmp_path, resolved) == NOTEBOOKS[3:]


def test_an_estimate_sizes_each_cache_and_times_each_stage_without_running(tmp_path, capsys):
    """cpu-smoke: the tiny demo corpus (36 train and 24 dev trials) and the tiny model (64-dim hidden
    states, float16 caches); stage 1 caches one pooled vector per trial, stage 2 the frames entering
    its top layer; nothing is written to the run folder."""
    from xlsr_helpers.data.demo import SIZES, SPLIT_ATTACKS
    from xlsr_helpers.model.loading import frames_for, tiny_config
    from xlsr_helpers.pipeline.estimate import estimate_stages
    from xlsr_helpers.pipeline.runner import effective_parameters, prepare
    tiny = SIZES["tiny"]
    n = {s: tiny.bonafide[s] + tiny.per_attack[s] * len(SPLIT_ATTACKS[s]) for s in ("train", "dev")}
    assert n == {"train": 36, "dev": 24}
    run_dir, resolved, _ = prepare("cpu-smoke", {}, tmp_path / "run")
    table = estimate_stages(effective_parameters(resolved), run_dir)
    assert table.stage.tolist() == [1, 2] and table.train.tolist() == [36, 36] and table.dev.tolist() == [24, 24]
    assert table.cache.tolist() == ["pooled", "prefix"]
    frames = frames_for(tiny_config(), 16000)  # segment_seconds 1.0
    assert table.cache_GiB.tolist() == [round(60 * 64 * 2 / 2**30, 3), round(60 * frames * 64 * 2 / 2**30, 3)]
    assert table.cache_folder.tolist() == [str(run_dir / "stage1" / "cache"), str(run_dir / "stage2" / "cache")]
    assert (table.seconds > 0).all() and table.fits.all() and table.epochs.tolist() == [3, 2]
    assert not run_dir.exists()
    from xlsr_helpers.cli.main import main
    assert main(["run", "--preset", "cpu-smoke", "--estimate", "--run-dir", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    assert "cache_GiB" in out and "fits one 12-hour session" in out and not run_dir.exists()


def test_a_second_run_on_a_folder_in_use_is_refused_before_any_work(partial_run, tmp_path, lock_holder):
    """A run in another process holds the folder: the second is refused and changes nothing there."""
    run = shutil.copytree(partial_run, tmp_path / "run")
    holder = lock_holder(run)
    before = {p: p.stat().st_mtime_ns for p in run.rglob("*") if p.name != LOCK_FILE}
    with pytest.raises(RunFolderError, match=rf"in use by another xlsr run \(pid {holder.pid} on host"):
        run_pipeline("cpu-smoke", run_dir=run, start_from="03", progress_bar=False)
    assert {p: p.stat().st_mtime_ns for p in run.rglob("*") if p.name != LOCK_FILE} == before


def test_a_chain_trains_on_two_corpora_at_once(two_corpora, tmp_path, capsys):
    """01-04 on the demo corpus (generated in the run folder) and an own corpus in another layout, given
    by descriptor path: every manifest names each row's corpus, both stages train on both (shares
    balanced) and report each corpus's dev EER; 04 writes one results-table row per corpus, each equal
    to ``xlsr eer`` on that corpus's score file; the same command again has nothing left to do."""
    _, mine, descriptor = two_corpora
    run = tmp_path / "run"
    sets = {"dataset": f"asvspoof2019-la+{descriptor}", "data_root": f"demo:tiny+{mine}", "corpus_weights": "balanced",
            "check_audio": False}
    assert run_pipeline("cpu-smoke", sets, run_dir=run, progress_bar=False) == 0
    table = pd.read_csv(run / "results" / "table.csv")
    assert table.corpus.tolist() == ["asvspoof2019-la", "mine"] and table.split.tolist() == ["eval", "dev"]
    rows = json.loads((run / "results" / "table.json").read_text())["rows"]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["split"] == "eval" and metrics["eval"]["n_bonafide"] + metrics["eval"]["n_spoof"] == len(
        pd.read_csv(run / "manifests" / "eval.csv"))  # the pooled eval split
    for row in table.to_dict("records"):
        command = rows[row["corpus"]]["xlsr_eer"]
        assert command[2] == str(run / "results" / row["corpus"] / f"scores_{row['split']}.txt")
        capsys.readouterr()
        assert main([*command[1:], "--json"]) == 0
        cli = json.loads(capsys.readouterr().out)
        assert row["trials"] == cli["n_bonafide"] + cli["n_spoof"]
        assert row["eer_pct"] == pytest.approx(100 * cli["eer"], abs=1e-9)
        primary = cli["min_tdcf_2019"] if row["corpus"] == "asvspoof2019-la" else cli["eer"]  # 2019 LA: legacy t-DCF
        assert row["primary_value"] == pytest.approx(primary, abs=1e-9)
    for split, corpora in (("train", {"asvspoof2019-la", "mine"}), ("dev", {"asvspoof2019-la", "mine"}),
                           ("eval", {"asvspoof2019-la"})):
        df = pd.read_csv(run / "manifests" / f"{split}.csv", dtype=str, keep_default_na=False)
        assert set(df.corpus) == corpora and df.utt_id.is_unique
        assert (df.utt_id == df.corpus + "/" + df.source_id).all()
    for stage in ("stage1", "stage2"):
        history = pd.read_csv(run / stage / "history.csv")
        assert {"dev_eer_asvspoof2019-la", "dev_eer_mine"} <= set(history.columns)
        assert yaml.safe_load((run / stage / "train_config.yaml").read_text())["corpus_weights"] == "balanced"
        summary = yaml.safe_load((run / stage / "summary.yaml").read_text())
        assert summary["best_dev_eer"] == pytest.approx(history.dev_eer.min())  # selection on the pooled dev EER
    executed = run / "notebooks" / "01_data_prep.ipynb"  # 01 says which corpus lacks which split
    assert "mine has no eval split, so adds nothing to it" in executed.read_text()
    history = (run / "stage1" / "history.csv").read_text()
    # again: the manifests come out the same, so stage 1 is the same run (resumed, finished; on_change is
    # 'refuse', so other inputs would fail the run) and its history stays
    assert run_pipeline("cpu-smoke", sets, run_dir=run, only=["01", "02"], progress_bar=False) == 0
    assert (run / "stage1" / "history.csv").read_text() == history


def test_an_estimate_counts_the_trials_of_every_corpus(two_corpora, tmp_path):
    """Before 01: the demo corpus's known sizes plus the own corpus's lines, per split (the own corpus
    holds one trial per trial of the tiny demo corpus: twice the tiny sizes)."""
    from xlsr_helpers.data.demo import SIZES, SPLIT_ATTACKS
    from xlsr_helpers.pipeline.estimate import trial_counts
    _, mine, descriptor = two_corpora
    tiny = SIZES["tiny"]
    got = trial_counts({"dataset": f"asvspoof2019-la+{descriptor}", "data_root": f"demo:tiny+{mine}"}, tmp_path)
    assert got == {s: 2 * (tiny.bonafide[s] + tiny.per_attack[s] * len(SPLIT_ATTACKS[s])) for s in ("train", "dev")}
