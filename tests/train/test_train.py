import json
import os
import signal
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import yaml
from transformers import pipeline

from xlsr_helpers.data.manifest import read_manifest
from xlsr_helpers.evaluate.scoring import Scorer, ScoringConfig
from xlsr_helpers.runtime.kaggle_env import KAGGLE_ROOT_ENV
from xlsr_helpers.train.config import TrainConfig
from xlsr_helpers.train.stage import train_stage
from xlsr_helpers.train.state import COMPLETE_MARKER, stale_stage


def test_two_stages_train_and_dev_eer_drops_below_chance(trained):
    s1, s2 = trained
    assert s1.cached and s2.cached
    # Bound measured over backbone seeds 0-6 with ATEN_CPU_CAPABILITY=default (another CPU's kernels): stage-1
    # dev EER 0.10-0.22, stage 2 0.10-0.17; 0.3 leaves a margin on any machine. Chance is 0.5.
    assert s1.best_dev_eer < 0.3 and s2.best_dev_eer < 0.3
    assert s1.history.train_loss.iloc[1:].min() < s1.history.train_loss.iloc[0]  # the loss falls
    assert s2.parameter_counts["trainable"] > s1.parameter_counts["trainable"]
    h = s1.history
    assert list(h.columns) == ["epoch", "train_loss", "dev_loss", "dev_eer", "lr", "seconds"]
    assert h.epoch.tolist() == list(range(1, len(h) + 1)) and h.dev_eer.min() == pytest.approx(s1.best_dev_eer)
    assert h.train_loss.notna().all() and (h.seconds.diff().dropna() >= 0).all()
    for s in (s1, s2):
        files = {p.name for p in s.detector_dir.iterdir()}
        assert {"config.json", "model.safetensors", "preprocessor_config.json"} <= files
        assert not any(f.endswith((".bin", ".pt", ".pkl")) for f in files)
        assert (s.detector_dir.parent / "history.csv").exists()


def test_saved_detector_works_in_the_transformers_pipeline(trained, small_manifests):
    detector = trained[1].detector_dir
    df = read_manifest(small_manifests / "eval.csv").head(6)
    ours = Scorer(detector, ScoringConfig(window=80000, device="cpu")).score_manifest(df, progress=False)
    clf = pipeline("audio-classification", model=str(detector), device="cpu")
    from xlsr_helpers.data.audio import load_audio
    for (_, row), path in zip(ours.iterrows(), df.path, strict=True):
        out = {d["label"]: d["score"] for d in clf(load_audio(path), top_k=2)}
        assert set(out) == {"bonafide", "spoof"}
        assert np.log(out["bonafide"] / out["spoof"]) == pytest.approx(row.score, abs=1e-3)
        cal = json.loads((detector / "xlsr_detector.json").read_text())["calibration"]
        llr = cal["scale"] * row.score + cal["offset"]  # the calibrated LLR, not the softmax
        assert row.llr == pytest.approx(llr) and row.p_spoof == pytest.approx(1 / (1 + np.exp(llr)))


def test_xlsr_score_cli_lists_unreadable_files(trained, small_manifests, tmp_path):
    detector = trained[1].detector_dir
    df = read_manifest(small_manifests / "eval.csv").head(4)
    bad = tmp_path / "broken.flac"
    bad.write_bytes(b"\x00garbage")
    out = tmp_path / "scores.csv"
    asv = tmp_path / "scores.txt"
    r = subprocess.run([sys.executable, "-m", "xlsr_helpers", "score", str(detector), *df.path, str(bad),
                        "--out", str(out), "--asvspoof-out", str(asv), "--window", "16000"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    res = pd.read_csv(out, keep_default_na=False)
    assert len(res) == 5 and (res.error != "").sum() == 1 and "broken.flac" in r.stdout
    assert len(asv.read_text().splitlines()) == 4
    assert set(res.label_pred[res.error == ""]) <= {"bonafide", "spoof"}


def test_length_sorted_batches_score_like_fixed_padding(trained, small_manifests):
    df = read_manifest(small_manifests / "eval.csv").head(10)
    a = Scorer(trained[1].detector_dir, ScoringConfig(window=24000, hop=12000, batch_size=4)).score_manifest(
        df, progress=False)
    b = Scorer(trained[1].detector_dir, ScoringConfig(window=24000, hop=12000, batch_size=4,
                                                      sort_by_length=False)).score_manifest(df, progress=False)
    np.testing.assert_allclose(a.score, b.score, rtol=1e-4, atol=1e-4)
    assert (a.n_windows > 1).any()  # some files were long enough for sliding windows


def test_unknown_training_parameter_is_an_error():
    from xlsr_helpers.core.errors import ConfigError
    with pytest.raises(ConfigError, match="unknown training parameter"):
        TrainConfig.from_mapping({"epochs": 2, "learning_rat": 0.1})
    for bad in ({"crop": "middle"}, {"pad": "mirror"}, {"class_weights": "auto"}, {"stage": 3}):
        with pytest.raises(ConfigError):  # refused before any data is read
            TrainConfig.from_mapping(bad)


# --standalone: a free local port per run, so two suites on one machine never meet on torchrun's default 29500
TORCHRUN_TWO = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]

KILL_DRIVER = """
import os, signal, sys
from xlsr_helpers.train import trainer as train
save = train.DetectorTrainer._save
def _save(self, output_dir=None, state_dict=None):
    save(self, output_dir, state_dict)  # weights written, completion marker not yet: then SIGKILL
    if self.state.global_step == int(os.environ["KILL_AT_STEP"]):
        os.kill(os.getpid(), signal.SIGKILL)
train.DetectorTrainer._save = _save
from xlsr_helpers.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


def test_killed_run_resumes_and_finishes(small_manifests, tiny_backbone, tmp_path):
    """SIGKILL at a fixed point: in the middle of writing epoch 3's checkpoint (weights on disk, no
    completion marker). The same command then resumes from epoch 2's checkpoint and drops the torn one."""
    out = tmp_path / "run"
    args = ["train", "--stage", "1", "--model", str(tiny_backbone),
            "--train", str(small_manifests / "train.csv"), "--dev", str(small_manifests / "dev.csv"),
            "--out", str(out), "--set", "cache=off", "--set", "epochs=6", "--set", "segment_samples=16000",
            "--set", "batch_size=8", "--set", "num_workers=0", "--set", "early_stopping_patience=0",
            "--set", "device=cpu", "--set", "save_total_limit=3"]
    steps = -(-len(read_manifest(small_manifests / "train.csv")) // 8)  # optimizer steps per epoch
    killed = subprocess.run([sys.executable, "-c", KILL_DRIVER, *args], capture_output=True, text=True, timeout=600,
                            env={**os.environ, "KILL_AT_STEP": str(3 * steps)})
    assert killed.returncode == -signal.SIGKILL
    ckpts = out / "checkpoints"
    torn = ckpts / f"checkpoint-{3 * steps}"
    assert torn.is_dir() and not (torn / COMPLETE_MARKER).exists() and not (out / "detector").exists()
    assert (ckpts / f"checkpoint-{2 * steps}" / COMPLETE_MARKER).exists()
    r = subprocess.run([sys.executable, "-m", "xlsr_helpers", *args], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert f"resuming from {ckpts / f'checkpoint-{2 * steps}'}" in r.stderr
    history = pd.read_csv(out / "history.csv")
    assert history.epoch.tolist() == [1, 2, 3, 4, 5, 6]
    assert (out / "detector" / "model.safetensors").exists()
    assert (ckpts / f"checkpoint-{6 * steps}" / COMPLETE_MARKER).exists()


def test_data_parallel_training_with_two_cpu_processes(small_manifests, tiny_backbone, tmp_path):
    """DDP (gloo) through torchrun, as on Kaggle's two T4s; the cache is built once by rank 0."""
    import yaml
    out = tmp_path / "ddp"
    r = subprocess.run([*TORCHRUN_TWO, "-m", "xlsr_helpers", "train", "--stage", "1", "--model", str(tiny_backbone),
                        "--train", str(small_manifests / "train.csv"), "--dev", str(small_manifests / "dev.csv"),
                        "--out", str(out), "--set", "epochs=2", "--set", "segment_samples=16000",
                        "--set", "batch_size=8", "--set", "num_workers=0", "--set", "device=cpu"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    summary = yaml.safe_load((out / "summary.yaml").read_text())
    assert summary["world_size"] == 2 and summary["cached"]
    assert pd.read_csv(out / "history.csv").epoch.tolist() == [1, 2]
    assert len(list((out / "cache").glob("train-pooled-*.npy"))) == 1
    assert r.stdout.count("detector saved") == 1


def test_chunked_scoring_matches_one_chunk_and_keeps_order(trained, small_manifests, tmp_path):
    df = read_manifest(small_manifests / "eval.csv").head(9)
    bad = tmp_path / "empty.wav"
    bad.write_bytes(b"")
    files = [*df.path[:4], str(bad), *df.path[4:]]
    one = Scorer(trained[1].detector_dir, ScoringConfig(window=16000, hop=8000, chunk_files=100)).score_files(
        files, progress=False)
    chunked = Scorer(trained[1].detector_dir, ScoringConfig(window=16000, hop=8000, chunk_files=2,
                                                            load_workers=2)).score_files(files, progress=False)
    np.testing.assert_allclose(one.score, chunked.score, rtol=1e-5, equal_nan=True)
    assert chunked.path.tolist() == files and chunked.error[4] != "" and np.isnan(chunked.score[4])
    assert (chunked.error == "").sum() == 9
    mx = Scorer(trained[1].detector_dir, ScoringConfig(window=16000, hop=8000, aggregation="max")).score_files(
        files, progress=False)
    ok = one.error == ""
    assert (mx.score[ok] >= one.score[ok] - 1e-6).all() and (mx.score[ok] > one.score[ok] + 1e-6).any()


def test_the_saved_detector_carries_its_settings_and_card(trained, small_manifests):
    """Segment and scoring settings, the dev EER threshold of the saved weights, a calibration fitted
    on dev, and a model card: scoring reads them, so nothing is repeated by hand."""
    from xlsr_helpers.evaluate.calibration import fit_calibration
    from xlsr_helpers.evaluate.metrics import compute_eer
    s2 = trained[1]
    settings = json.loads((s2.detector_dir / "xlsr_detector.json").read_text())
    assert settings["segment_samples"] == 32000 and settings["scoring"] == {"window": 32000, "hop": 16000,
                                                                            "aggregation": "mean"}
    assert settings["base_model"].endswith("tiny-wav2vec2") and settings["stage"] == 2  # through stage 1's settings
    dev = read_manifest(small_manifests / "dev.csv")
    scorer = Scorer(s2.detector_dir, ScoringConfig(device="cpu"))
    assert (scorer.cfg.window, scorer.cfg.hop, scorer.cfg.threshold) == (32000, 16000, settings["dev"]["threshold"])
    # the saved weights reproduce the selected epoch's dev EER (the best, not the last epoch's)
    import torch

    from xlsr_helpers.data.datasets import AudioCollator, SegmentConfig, SegmentDataset
    from xlsr_helpers.model.forward import detector_label_order, detector_logits, scores_from_logits
    from xlsr_helpers.model.loading import load_feature_extractor, load_trained_detector
    model = load_trained_detector(s2.detector_dir).eval()
    batch = AudioCollator(load_feature_extractor(s2.detector_dir))(list(SegmentDataset(dev, SegmentConfig(32000))))
    with torch.no_grad():
        logits = detector_logits(model, batch["input_values"], batch["attention_mask"])
        scores = scores_from_logits(logits, detector_label_order(model)).numpy()
    labels = dev.label.to_numpy()
    bona, spoof = scores[labels == "bonafide"], scores[labels == "spoof"]
    eer, thr = compute_eer(bona, spoof)
    assert eer == pytest.approx(s2.best_dev_eer, abs=1e-9) == pytest.approx(settings["dev"]["eer"], abs=1e-9)
    assert s2.best_dev_eer == pytest.approx(s2.history.dev_eer.min())
    assert thr == pytest.approx(settings["dev"]["threshold"], abs=1e-3)  # ~3e-4 apart on torch 2.10
    cal = fit_calibration(bona, spoof)
    assert cal.scale == pytest.approx(settings["calibration"]["scale"], rel=1e-3)
    card = (s2.detector_dir / "README.md").read_text()
    assert "pipeline_tag: audio-classification" in card and f"{100 * settings['dev']['eer']:.3f} %" in card
    assert "`asvspoof2019-la`: ODC-By 1.0" in card and "Intended use and limits" in card


def test_xlsr_push_uploads_the_detector_folder(trained, tmp_path, monkeypatch, capsys):
    """The Hub client is replaced (no network here); what it would be asked to do is checked."""
    import huggingface_hub

    from xlsr_helpers.cli.main import main
    calls = []

    class FakeApi:
        def __init__(self, token=None):
            calls.append(("init", token))

        def create_repo(self, repo_id, private, exist_ok, repo_type):
            calls.append(("create", repo_id, private, repo_type))

        def upload_folder(self, folder_path, repo_id, repo_type, commit_message):
            from pathlib import Path
            calls.append(("upload", sorted(p.name for p in Path(folder_path).iterdir()), repo_id))
            return type("Info", (), {"commit_url": f"https://huggingface.co/{repo_id}/commit/abc"})()

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)  # push checks it before the network
    assert main(["push", str(trained[1].detector_dir), "me/xlsr-detector", "--token", "hf_test"]) == 0
    assert calls[0] == ("init", "hf_test") and calls[1] == ("create", "me/xlsr-detector", True, "model")
    assert {"README.md", "config.json", "model.safetensors", "preprocessor_config.json",
            "xlsr_detector.json"} <= set(calls[2][1])
    assert "me/xlsr-detector/commit/abc" in capsys.readouterr().out
    assert main(["push", str(trained[1].detector_dir.parent), "me/x", "--token", "hf_test"]) == 2  # the stage folder


def test_scoring_under_torchrun_shards_and_gathers(trained, small_manifests, tmp_path):
    """Two CPU processes each score half of the files; rank 0 writes one table equal to one process's."""
    df = read_manifest(small_manifests / "eval.csv").head(9)
    bad = tmp_path / "broken.flac"
    bad.write_bytes(b"junk")
    args = ["score", str(trained[1].detector_dir), *df.path, str(bad), "--window", "16000"]
    one = subprocess.run([sys.executable, "-m", "xlsr_helpers", *args, "--out", str(tmp_path / "one.csv")],
                         capture_output=True, text=True, timeout=300)
    assert one.returncode == 0, one.stderr
    two = subprocess.run([*TORCHRUN_TWO, "-m", "xlsr_helpers", *args, "--out", str(tmp_path / "two.csv")],
                         capture_output=True, text=True, timeout=300)
    assert two.returncode == 0, two.stderr
    a = pd.read_csv(tmp_path / "one.csv", keep_default_na=False)
    b = pd.read_csv(tmp_path / "two.csv", keep_default_na=False)
    assert len(b) == 10 and b.utt_id.tolist() == a.utt_id.tolist() and b.error.tolist() == a.error.tolist()
    ok = a.error == ""
    np.testing.assert_allclose(b.score[ok].astype(float), a.score[ok].astype(float), rtol=1e-4)  # 2.7e-5 apart on torch 2.10
    assert b.n_windows.tolist() == a.n_windows.tolist()


def _estimate_after(steps_done, seconds, max_steps=100, epochs=4, session=None, first=0):
    from types import SimpleNamespace

    from xlsr_helpers.train.callbacks import TimeEstimate
    clock = iter([1000.0, 1000.0 + seconds])
    cb = TimeEstimate(2, after_steps=10, seconds_left=lambda: session, clock=lambda: next(clock))
    args, state = SimpleNamespace(num_train_epochs=epochs), SimpleNamespace(global_step=first, max_steps=max_steps)
    cb.on_train_begin(args, state, None)
    for step in range(first + 1, first + steps_done + 1):
        state.global_step = step
        cb.on_step_end(args, state, None)
    return cb


def test_the_stage_says_its_remaining_time_from_measured_steps(monkeypatch):
    from xlsr_helpers.train import callbacks
    said = []
    monkeypatch.setattr(callbacks.log, "warning", lambda msg, *a: said.append(msg % a if a else msg))
    cb = _estimate_after(10, 60.0)  # 6 s a step: 25 steps an epoch -> 150 s; 90 steps left -> 540 s
    assert cb.said == "stage 2: about 2 min per epoch, 9 min left for the stage's 90 remaining steps (measured over 10 steps)"
    assert said == [cb.said]  # off Kaggle: no session warning
    assert _estimate_after(9, 60.0).said is None  # not before the tenth step
    resumed = _estimate_after(10, 30.0, first=50)  # a resumed run measures its own steps only: 3 s a step
    assert "40 remaining steps" in resumed.said and "2 min left" in resumed.said


def test_on_kaggle_a_stage_that_cannot_finish_says_what_to_do(monkeypatch):
    from xlsr_helpers.train import callbacks
    said = []
    monkeypatch.setattr(callbacks.log, "warning", lambda msg, *a: said.append(msg % a if a else msg))
    _estimate_after(10, 3600.0, session=2 * 3600)  # 360 s a step, 90 steps left: 9 h > 2 h
    assert len(said) == 2 and "needs about 9.0 h but this Kaggle session has about 2.0 h left" in said[1]
    assert "--resume-from auto" in said[1] and "max_trials_per_split" in said[1]
    said.clear()
    _estimate_after(10, 60.0, session=3600.0)  # 9 min left, 1 h of session: fits
    assert len(said) == 1


def test_session_time_left_is_none_off_kaggle_and_counts_down_on_it(tmp_path, monkeypatch):
    from pathlib import Path

    from xlsr_helpers.runtime import kaggle_env
    monkeypatch.setenv(kaggle_env.KAGGLE_ROOT_ENV, str(tmp_path / "nowhere"))
    assert kaggle_env.session_seconds_left() is None
    (tmp_path / "kaggle" / "working").mkdir(parents=True)
    monkeypatch.setenv(kaggle_env.KAGGLE_ROOT_ENV, str(tmp_path / "kaggle"))
    start = Path("/proc/1").stat().st_ctime
    monkeypatch.setenv(kaggle_env.SESSION_HOURS_ENV, "9")
    assert kaggle_env.session_seconds_left(now=start + 3600) == pytest.approx(8 * 3600)


def test_in_kaggle_output_a_finished_stage_keeps_its_results_only(demo_manifests, tiny_backbone, tmp_path, monkeypatch,
                                                                  logged):
    """Kaggle keeps 20 GB of /kaggle/working: the cache goes to /kaggle/temp, the checkpoints and top-k
    weights go once the detector is saved, and the summary states the bytes the stage folder keeps."""
    kaggle = tmp_path / "kaggle"
    (kaggle / "working").mkdir(parents=True)
    monkeypatch.setenv(KAGGLE_ROOT_ENV, str(kaggle))
    out = kaggle / "working" / "xlsr-run" / "stage1"
    train, dev = demo_manifests / "train.csv", demo_manifests / "dev.csv"
    cfg = dict(stage=1, model=str(tiny_backbone), epochs=2, segment_samples=16000, batch_size=8, eval_batch_size=16,
               num_workers=0, device="cpu", average_top_k=2, early_stopping_patience=0)
    with logged("xlsr_helpers.train.stage") as records:
        result = train_stage(cfg, train, dev, out)
    assert result.cached and list((kaggle / "temp" / "xlsr-cache" / "stage1").glob("train-*.npy"))
    assert sorted(p.name for p in out.iterdir()) == ["detector", "history.csv", "summary.yaml", "train_config.yaml"]
    on_disk = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())  # the working folder holds only the stage
    summary = yaml.safe_load((out / "summary.yaml").read_text())
    assert summary["kept"] == {"removed": ["checkpoints", "top_k"], "bytes": on_disk}
    notes = [r.getMessage() for r in records if " keeps " in r.getMessage()]
    assert notes == [f"{out} keeps {on_disk:,} bytes ({on_disk / 1e9:.2f} GB); {kaggle / 'working'} holds {on_disk:,} "
                     f"bytes, {100 * on_disk / 20e9:.1f} % of Kaggle's 20 GB output quota"]
    assert stale_stage(out, read_manifest(train), read_manifest(dev), tiny_backbone) == []  # what 04 checks is kept
    # the same call again (a notebook run twice): the finished stage is reused, not trained from scratch
    weights = (out / "detector" / "model.safetensors").read_bytes()
    again = train_stage(cfg, train, dev, out)
    assert again.best_dev_eer == result.best_dev_eer and again.history.epoch.tolist() == [1, 2]
    assert (out / "detector" / "model.safetensors").read_bytes() == weights and not (out / "checkpoints").exists()


def test_two_corpora_train_together_with_each_ones_dev_eer(two_corpora, tiny_backbone, tmp_path, monkeypatch):
    """Two generated corpora in two layouts train one stage together (shares balanced, the best epoch
    chosen on one corpus's dev EER): the history holds
    each corpus's dev EER beside the pooled one, each the official EER of that corpus's dev scores as the
    Trainer computed them; the detector records its corpora; one corpus's changed audio makes it stale."""
    import soundfile as sf
    import torch
    from reference_metrics import official_eer

    from xlsr_helpers.data.corpora import build_corpora, parse_corpora
    from xlsr_helpers.data.prep import write_manifests
    from xlsr_helpers.model.card import read_settings
    from xlsr_helpers.model.forward import scores_from_logits
    from xlsr_helpers.train import stage as stage_module
    from xlsr_helpers.train.dev_eer import prediction_logits
    from xlsr_helpers.train.state import stale_stage
    la, mine, descriptor = two_corpora
    man = tmp_path / "manifests"
    man.mkdir()
    write_manifests(build_corpora(parse_corpora(f"asvspoof2019-la+{descriptor}", f"{la}+{mine}"), [la, mine]), man)
    seen, real = [], stage_module.eer_metrics

    def recording(eval_pred, **kw):
        seen.append((prediction_logits(eval_pred.predictions), eval_pred.label_ids, kw["order"]))
        return real(eval_pred, **kw)

    monkeypatch.setattr(stage_module, "eer_metrics", recording)
    out = tmp_path / "stage1"
    result = stage_module.train_stage(
        dict(stage=1, model=str(tiny_backbone), epochs=2, learning_rate=0.01, segment_samples=16000, batch_size=16,
             eval_batch_size=32, num_workers=0, early_stopping_patience=0, device="cpu", corpus_weights="balanced",
             select_on="mine"),
        man / "train.csv", man / "dev.csv", out)
    h = result.history
    assert list(h.columns) == ["epoch", "train_loss", "dev_loss", "dev_eer", "dev_eer_asvspoof2019-la", "dev_eer_mine",
                               "dev_selected_eer", "lr", "seconds"]
    assert h.dev_selected_eer.tolist() == h.dev_eer_mine.tolist()  # select_on='mine': the best epoch is mine's
    assert result.best_dev_eer == h.dev_eer_mine.min()
    dev = read_manifest(man / "dev.csv")
    assert len(seen) >= len(h) == 2
    for i, (logits, labels, order) in enumerate(seen[:len(h)]):
        assert labels.tolist() == dev.label.map(order.label2id).tolist()  # the predictions follow the dev rows
        scores = scores_from_logits(torch.as_tensor(logits), order).numpy()
        bona = labels == order.bonafide
        assert h.dev_eer[i] == pytest.approx(official_eer(scores[bona], scores[~bona])[0])
        for corpus in ("asvspoof2019-la", "mine"):
            m = (dev.corpus == corpus).to_numpy()
            assert h[f"dev_eer_{corpus}"][i] == pytest.approx(official_eer(scores[m & bona], scores[m & ~bona])[0])
    assert read_settings(result.detector_dir)["trained_on"]["corpora"] == ["asvspoof2019-la", "mine"]
    train_df = read_manifest(man / "train.csv")
    assert stale_stage(out, train_df, dev, None) == []
    changed = dev[dev.corpus == "mine"].path.iloc[0]
    wave, sr = sf.read(changed)
    sf.write(changed, wave[::-1].copy(), sr)  # other audio under the same id and path
    reasons = stale_stage(out, train_df, dev, None)
    assert len(reasons) == 1 and reasons[0].startswith("inputs.dev_audio:")
