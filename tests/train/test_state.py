"""A stage folder is resumed only with the same parameters and the same inputs; never reused."""

import dataclasses
import shutil

import pandas as pd
import pytest
import yaml
from transformers import TrainingArguments

from xlsr_helpers.core.errors import ConfigError, ManifestError
from xlsr_helpers.data.labels import PACKAGE_ORDER
from xlsr_helpers.runtime.kaggle_env import KAGGLE_ROOT_ENV
from xlsr_helpers.train.config import TrainConfig
from xlsr_helpers.train.stage import check_manifests
from xlsr_helpers.train.state import (
    RESUME_SAFE,
    RUN_RECORD,
    check_same_run,
    finish_stage_folder,
    finished_stage,
    stage_identity,
    stale_stage,
)
from xlsr_helpers.train.trainer import limit_to_one_gpu

TRAIN = pd.DataFrame({"utt_id": ["a", "b", "c"], "label": ["bonafide", "spoof", "spoof"], "path": ["x/a", "x/b", "x/c"]})
DEV = pd.DataFrame({"utt_id": ["d", "e"], "label": ["bonafide", "spoof"], "path": ["x/d", "x/e"]})


def write_audio(folder, names="abcde"):
    for n in names:
        (folder / n).parent.mkdir(parents=True, exist_ok=True)
        (folder / n).write_bytes(f"audio of {n}".encode())


@pytest.fixture(autouse=True)
def audio(tmp_path_factory, monkeypatch):
    """The manifests' audio: relative paths x/<id> under a working folder of the test's own."""
    work = tmp_path_factory.mktemp("work")
    write_audio(work / "x")
    monkeypatch.chdir(work)
    return work
# A valid different value for every field that decides what is trained.
OTHER = {"stage": 2, "top_layers": 2, "epochs": 4, "batch_size": 8, "learning_rate": 0.5, "weight_decay": 0.1,
         "warmup_ratio": 0.2, "lr_scheduler": "linear", "grad_accum": 2, "grad_checkpointing": True,
         "class_weights": "none", "early_stopping_patience": 1, "seed": 7, "segment_samples": 16000, "pad": "zero",
         "crop": "center", "augment": "ssi", "cache": "off", "cache_dtype": "float32", "precision": "fp32",
         "noise_dir": "/data/musan", "rir_dir": "/data/rirs", "encoder_learning_rate": 1e-05, "layer_decay": 0.8,
         "head": "aasist", "average_top_k": 3}


def identity(model, train=TRAIN, dev=DEV, **kw):
    return stage_identity(TrainConfig(model=str(model), **kw), train, dev)


def test_every_training_field_is_either_compared_or_declared_resume_safe():
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    assert set(OTHER) | RESUME_SAFE == fields


@pytest.mark.parametrize("name", sorted(OTHER))
def test_a_changed_training_field_is_refused(tmp_path, tiny_backbone, name):
    check_same_run(tmp_path, identity(tiny_backbone))
    with pytest.raises(ConfigError, match=rf"{name}: .* -> {OTHER[name]!r}"):
        check_same_run(tmp_path, identity(tiny_backbone, **{name: OTHER[name]}))


def test_resume_safe_fields_and_a_moved_model_folder_resume(tmp_path, tiny_backbone):
    check_same_run(tmp_path / "s", identity(tiny_backbone))
    moved = shutil.copytree(tiny_backbone, tmp_path / "elsewhere")  # a run folder copied to a new kernel
    check_same_run(tmp_path / "s", identity(moved, num_workers=7, eval_batch_size=3, device="cpu"))


def test_changed_inputs_are_refused_with_what_changed(tmp_path, tiny_backbone, audio):
    out = tmp_path / "stage"
    out.mkdir()
    check_same_run(out, identity(tiny_backbone))
    with pytest.raises(ConfigError, match=r"inputs.train_manifest: '3:.*' -> '2:.*'.*on_change='restart'"):
        check_same_run(out, identity(tiny_backbone, train=TRAIN.head(2)))
    relabelled = TRAIN.assign(label=["bonafide", "bonafide", "spoof"])
    with pytest.raises(ConfigError, match="inputs.train_manifest"):
        check_same_run(out, identity(tiny_backbone, train=relabelled))
    with pytest.raises(ConfigError, match="inputs.dev_manifest"):
        check_same_run(out, identity(tiny_backbone, dev=DEV.iloc[::-1]))
    shutil.copytree(audio / "x", audio / "elsewhere")  # same trials and audio, another copy
    moved = TRAIN.assign(path=["elsewhere/a", "elsewhere/b", "elsewhere/c"])
    check_same_run(out, identity(tiny_backbone, train=moved))
    retrained = shutil.copytree(tiny_backbone, tmp_path / "retrained")
    (retrained / "model.safetensors").write_bytes((retrained / "model.safetensors").read_bytes()[:-1] + b"\x01")
    with pytest.raises(ConfigError, match=r"inputs.model: 'sha256:\w+' -> 'sha256:\w+'"):
        check_same_run(out, identity(retrained))


def test_restart_clears_the_stage_and_records_the_new_identity(tmp_path, tiny_backbone):
    out = tmp_path / "stage"
    (out / "checkpoints" / "checkpoint-3").mkdir(parents=True)
    (out / "detector").mkdir()
    (out / "history.csv").write_text("epoch\n1\n")
    (out / "cache").mkdir()  # caches are keyed by content: kept
    check_same_run(out, identity(tiny_backbone))
    new = identity(tiny_backbone, epochs=9)
    check_same_run(out, new, on_change="restart")
    assert not (out / "checkpoints").exists() and not (out / "detector").exists() and not (out / "history.csv").exists()
    assert (out / "cache").exists()
    check_same_run(out, new)  # recorded: the same call now resumes


def test_stale_stage_names_what_changed_since_training(tmp_path, tiny_backbone):
    check_same_run(tmp_path, identity(tiny_backbone))
    assert stale_stage(tmp_path, TRAIN, DEV, tiny_backbone) == []
    reasons = stale_stage(tmp_path, TRAIN.head(2), DEV, tiny_backbone)
    assert [r.split(":")[0] for r in reasons] == ["inputs.train_manifest", "inputs.train_audio"]
    assert stale_stage(tmp_path / "never", TRAIN, DEV, tiny_backbone) == [f"{tmp_path / 'never'} has no {RUN_RECORD}"]


def test_manifests_without_both_classes_are_refused_naming_the_file():
    with pytest.raises(ConfigError, match=r"train.csv: 0 trial\(s\)"):
        check_manifests(TRAIN.head(0), DEV, "train.csv", "dev.csv")
    with pytest.raises(ConfigError, match=r"train.csv: 2 trial\(s\).*'bonafide': 0"):
        check_manifests(TRAIN.tail(2), DEV, "train.csv", "dev.csv")
    with pytest.raises(ConfigError, match=r"dev.csv: 1 trial\(s\).*model selection"):
        check_manifests(TRAIN, DEV.head(1), "train.csv", "dev.csv")
    check_manifests(TRAIN, DEV, "train.csv", "dev.csv")


@pytest.mark.parametrize("bad,words", [
    ({"epochs": 0}, "epochs=0 (expected an integer in [1, 1000])"), ({"epochs": -2}, "epochs=-2"),
    ({"epochs": 1001}, "epochs=1001 (expected an integer in [1, 1000])"), ({"epochs": 5.0}, "epochs=5.0"),
    ({"segment_samples": 10**9}, "segment_samples=1000000000 (expected an integer in [400, 960000])"),
    ({"learning_rate": 5}, "learning_rate=5 (expected a number in (0, 1])"),
    ({"crop": "middle"}, "crop='middle' (expected one of ['start', 'center', 'random'])"),
    ({"pad": "mirror"}, "pad='mirror' (expected one of ['repeat', 'zero'])"),
    ({"class_weights": "auto"}, "class_weights='auto' (expected one of ['balanced', 'none'])"),
    ({"cache": "maybe"}, "cache='maybe' (expected one of ['auto', 'on', 'off'])"),
    ({"num_workers": 65}, "num_workers=65 (expected an integer in [0, 64])"),
    ({"warmup_ratio": 1.0}, "warmup_ratio=1.0 (expected a number in [0, 1))"),
    ({"epochs": "abc"}, "epochs='abc'"), ({"batch_size": 0}, "batch_size=0"),
    ({"segment_samples": 0}, "segment_samples=0 (expected an integer in [400, 960000])"),
    ({"lr_scheduler": "bogus"}, "lr_scheduler='bogus' (expected one of ['linear', 'cosine'"),
    ({"precision": "fp8"}, "precision='fp8'"), ({"device": "gpu"}, "device='gpu'"),
    ({"learning_rate": float("nan")}, "learning_rate=nan"), ({"learning_rate": 0}, "learning_rate=0"),
    ({"on_change": "ignore"}, "on_change='ignore'"), ({"warmup_ratio": 1.5}, "warmup_ratio=1.5"),
])
def test_invalid_training_parameters_are_named(bad, words):
    with pytest.raises(ConfigError, match="invalid training parameter") as info:
        TrainConfig(**bad)
    assert words in str(info.value)


def test_every_bad_training_field_is_named_at_once():
    with pytest.raises(ConfigError) as info:
        TrainConfig(epochs=0, crop="middle", weight_decay=-1)
    assert str(info.value) == ("invalid training parameter(s): epochs=0 (expected an integer in [1, 1000]); "
                               "weight_decay=-1 (expected a number in [0, 1]); "
                               "crop='middle' (expected one of ['start', 'center', 'random'])")


def test_two_visible_gpus_train_on_one_with_a_clear_line(tmp_path):
    args = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none")
    assert limit_to_one_gpu(args, visible=1) is None
    args._n_gpu = 2  # what TrainingArguments finds on a T4 x2
    note = limit_to_one_gpu(args, visible=2)
    assert args.n_gpu == 1 and "2 GPUs visible" in note and "torchrun --nproc_per_node 2" in note
    assert args.train_batch_size == args.per_device_train_batch_size  # no DataParallel-sized batches


def test_head_and_encoder_layers_get_their_own_learning_rates(tiny_backbone):
    from xlsr_helpers.model.freezing import freeze_for_stage
    from xlsr_helpers.model.loading import load_detector
    from xlsr_helpers.train.trainer import StageModule, parameter_groups
    detector = load_detector(tiny_backbone)
    freeze_for_stage(detector, 2, top_layers=2)  # layers 2 and 3 of 4 train
    module = StageModule(detector, "waveform", 2, None)
    groups = parameter_groups(module, head_lr=1e-3, encoder_lr=1e-4, decay=0.5, weight_decay=0.01)
    lr_of = {id(p): g["lr"] for g in groups for p in g["params"]}
    layers = detector.wav2vec2.encoder.layers
    assert {lr_of[id(p)] for p in layers[3].parameters()} == {1e-4}  # top layer
    assert {lr_of[id(p)] for p in layers[2].parameters()} == {5e-5}  # one below: decayed once
    assert {lr_of[id(p)] for p in detector.classifier.parameters()} == {1e-3}
    assert not any(id(p) in lr_of for p in layers[1].parameters())  # frozen: in no group
    assert sum(len(g["params"]) for g in groups) == sum(p.requires_grad for p in module.parameters())
    no_decay = {id(p) for g in groups if g["weight_decay"] == 0 for p in g["params"]}
    assert id(detector.classifier.bias) in no_decay and id(detector.classifier.weight) not in no_decay


def test_report_to_is_checked_before_training():
    with pytest.raises(ConfigError, match="report_to='bogus'"):
        TrainConfig(report_to="bogus")
    from transformers.integrations import get_available_reporting_integrations
    if "tensorboard" not in get_available_reporting_integrations():
        with pytest.raises(ConfigError, match=r"tensorboard is not installed \(pip install tensorboard\)"):
            TrainConfig(report_to="tensorboard")
    assert TrainConfig(report_to="none").report_to == "none"


def test_resume_picks_the_newest_complete_checkpoint_and_removes_torn_ones(tmp_path, monkeypatch):
    from xlsr_helpers.train.state import COMPLETE_MARKER, last_complete_checkpoint
    assert last_complete_checkpoint(tmp_path / "none-yet") is None
    for step, complete in ((2, True), (10, True), (12, False), (9, True)):
        d = tmp_path / f"checkpoint-{step}"
        d.mkdir()
        (d / "model.safetensors").write_bytes(b"x")
        if complete:
            (d / COMPLETE_MARKER).write_text("")
    monkeypatch.setenv("LOCAL_RANK", "1")  # another process of a torchrun job: it leaves the removal to rank 0
    assert last_complete_checkpoint(tmp_path) == str(tmp_path / "checkpoint-10")  # by step, not by name
    assert (tmp_path / "checkpoint-12").is_dir()
    monkeypatch.delenv("LOCAL_RANK")
    assert last_complete_checkpoint(tmp_path) == str(tmp_path / "checkpoint-10")
    assert not (tmp_path / "checkpoint-12").exists()  # killed while writing it: removed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-10", "checkpoint-2", "checkpoint-9"]
    for step in (2, 9, 10):
        (tmp_path / f"checkpoint-{step}" / COMPLETE_MARKER).unlink()
    assert last_complete_checkpoint(tmp_path) is None and not any(tmp_path.iterdir())


def test_identity_changes_list_every_difference_once_in_name_order():
    from xlsr_helpers.train.state import identity_changes
    before = {"epochs": 3, "seed": 1, "inputs": {"model": "a", "train_manifest": "x"}}
    now = {"epochs": 4, "seed": 1, "lr": 0.1, "inputs": {"model": "b"}}
    assert identity_changes(before, now) == ["epochs: 3 -> 4", "inputs.model: 'a' -> 'b'",
                                             "inputs.train_manifest: 'x' -> None", "lr: None -> 0.1"]
    assert identity_changes({"epochs": 3}, {"epochs": 3, "inputs": {"model": "b"}}) == ["inputs.model: None -> 'b'"]
    assert identity_changes(now, now) == []


def test_the_record_is_sorted_and_the_refusal_and_restart_say_what_changed(logged, tmp_path):
    out = tmp_path / "runs" / "deep" / "stage"  # parents made as needed
    first = {"seed": 1, "epochs": 3, "inputs": {"model": "m"}}
    check_same_run(out, first)
    assert list(yaml.safe_load((out / RUN_RECORD).read_text())) == ["epochs", "inputs", "seed"]  # a stable file
    with pytest.raises(ConfigError) as err:
        check_same_run(out, {**first, "epochs": 4, "seed": 2})
    assert str(err.value) == (f"{out} holds a run with other parameters or inputs (epochs: 3 -> 4; seed: 1 -> 2); "
                              "use a new output folder, delete this one, or set on_change='restart' to retrain here")
    with logged("xlsr_helpers.train.state") as records:
        check_same_run(out, {**first, "epochs": 4, "seed": 2}, on_change="restart")
    assert [r.getMessage() for r in records] == [
        f"{out}: parameters or inputs changed (epochs: 3 -> 4; seed: 1 -> 2); training this stage again"]


def test_staleness_of_an_old_record_and_of_the_starting_model(tmp_path):
    from xlsr_helpers.core.fingerprint import audio_fingerprint, manifest_fingerprint
    (tmp_path / RUN_RECORD).write_text("epochs: 3\n")  # written before inputs were recorded
    fp = manifest_fingerprint(TRAIN)
    sounds = {s: audio_fingerprint(df.path) for s, df in (("train", TRAIN), ("dev", DEV))}
    assert stale_stage(tmp_path, TRAIN, DEV, None) == [f"inputs.train_manifest: None -> '{fp}'",
                                                        f"inputs.dev_manifest: None -> '{manifest_fingerprint(DEV)}'",
                                                        f"inputs.train_audio: None -> '{sounds['train']}'",
                                                        f"inputs.dev_audio: None -> '{sounds['dev']}'"]
    (tmp_path / RUN_RECORD).write_text(yaml.safe_dump({"inputs": {"train_manifest": fp, "model": "hub:old",
                                                                  "dev_manifest": manifest_fingerprint(DEV),
                                                                  "train_audio": sounds["train"],
                                                                  "dev_audio": sounds["dev"]}}))
    assert stale_stage(tmp_path, TRAIN, DEV, None) == []  # the starting model not known here: not compared
    assert stale_stage(tmp_path, TRAIN, DEV, "new") == ["inputs.model: 'hub:old' -> 'hub:new'"]


def test_removing_a_torn_checkpoint_is_said(logged, tmp_path):

    from xlsr_helpers.train.state import last_complete_checkpoint
    (tmp_path / "checkpoint-4").mkdir()
    with logged("xlsr_helpers.train.state") as records:
        assert last_complete_checkpoint(tmp_path) is None
    assert [r.getMessage() for r in records] == [
        f"removing incomplete checkpoint {tmp_path / 'checkpoint-4'} (the run was killed while writing it)"]


def test_other_audio_under_the_same_ids_and_paths_is_refused(tmp_path, tiny_backbone, audio):
    """The same manifests, the audio replaced where it lies (same sizes): another training."""
    out = tmp_path / "stage"
    check_same_run(out, identity(tiny_backbone))
    original = (audio / "x" / "b").read_bytes()
    (audio / "x" / "b").write_bytes(original[::-1])
    with pytest.raises(ConfigError, match=r"\(inputs.train_audio: '3:\w{16}' -> '3:\w{16}'\)"):
        check_same_run(out, identity(tiny_backbone))
    assert stale_stage(out, TRAIN, DEV, None)[0].startswith("inputs.train_audio: ")
    (audio / "x" / "b").write_bytes(original)
    (audio / "x" / "e").write_bytes(b"another voice")
    with pytest.raises(ConfigError, match=r"\(inputs.dev_audio: '2:\w{16}' -> '2:\w{16}'\)"):
        check_same_run(out, identity(tiny_backbone))
    (audio / "x" / "e").unlink()
    with pytest.raises(ManifestError, match=r"^dev manifest: 1 of 2 audio file\(s\) cannot be read: x/e"):
        identity(tiny_backbone)


def test_a_cache_key_follows_the_audio(tiny_backbone, tmp_path):
    """A cache built from other audio under the same paths is not reused: the audio is in its key."""
    from xlsr_helpers.model.cache import cache_key
    from xlsr_helpers.model.loading import load_detector
    from xlsr_helpers.train.cache_plan import plan_cache
    detector, cfg = load_detector(tiny_backbone), TrainConfig(model=str(tiny_backbone), segment_samples=16000)

    def keys(audio_fps):
        plan = plan_cache(cfg, detector, TRAIN, DEV, 4, tmp_path, audio_fps)
        return [cache_key(df, plan.specs[s].fingerprint, plan.specs[s].segment, plan.kind, 4, "float16")
                for s, df in (("train", TRAIN), ("dev", DEV))]
    first = keys(("3:aaaa", "2:bbbb"))
    again, other_train, other_dev = keys(("3:aaaa", "2:bbbb")), keys(("3:cccc", "2:bbbb")), keys(("3:aaaa", "2:cccc"))
    assert again == first
    assert other_train[0] != first[0] and other_train[1] == first[1]
    assert other_dev[0] == first[0] and other_dev[1] != first[1]


def test_training_on_other_audio_under_the_same_ids_is_refused_and_a_copy_resumes(demo_root, tiny_backbone, tmp_path,
                                                                                   capsys):
    """The whole class end to end: a stage trained on one corpus, then asked to train on another with
    the same trial ids and labels (another data_root) is refused; a plain copy of the corpus resumes."""
    from xlsr_helpers.cli.main import main
    from xlsr_helpers.data.manifest import build_manifest
    copy, other = (shutil.copytree(demo_root, tmp_path / name) for name in ("copy", "other"))
    flacs = sorted((other / "ASVspoof2019_LA_train" / "flac").glob("*.flac"))
    contents = [f.read_bytes() for f in flacs]
    for f, content in zip(flacs, contents[1:] + contents[:1], strict=True):  # each id gets another file's audio
        f.write_bytes(content)

    def train(root):
        manifests = tmp_path / f"m-{root.name}"
        build_manifest("asvspoof2019-la", root, splits=["train", "dev"]).write(manifests)
        return main(["train", "--stage", "1", "--model", str(tiny_backbone), "--train", str(manifests / "train.csv"),
                     "--dev", str(manifests / "dev.csv"), "--out", str(tmp_path / "s1"), "--set", "epochs=1",
                     "--set", "segment_samples=16000", "--set", "num_workers=0", "--set", "device=cpu"])
    assert train(demo_root) == 0
    weights = (tmp_path / "s1" / "detector" / "model.safetensors").read_bytes()
    capsys.readouterr()
    assert train(other) == 2
    err = capsys.readouterr().err
    assert "inputs.train_audio: '" in err and "inputs.train_manifest" not in err and "inputs.dev_audio" not in err
    assert (tmp_path / "s1" / "detector" / "model.safetensors").read_bytes() == weights  # refused: nothing touched
    assert train(copy) == 0  # the same audio elsewhere: the same data, the stage resumes


def test_the_saved_detector_says_which_audio_it_was_trained_on(tiny_backbone):
    import numpy as np

    from xlsr_helpers.core.fingerprint import audio_fingerprint, manifest_fingerprint
    from xlsr_helpers.train.stage import detector_settings
    cfg = TrainConfig(model=str(tiny_backbone))
    inputs = stage_identity(cfg, TRAIN, DEV)["inputs"]
    scores, labels = np.array([0.9, 0.1]), np.array([0, 1])
    trained_on = detector_settings(cfg, "linear", scores, labels, PACKAGE_ORDER, TRAIN, DEV, inputs)["trained_on"]
    assert trained_on == {"train_manifest": manifest_fingerprint(TRAIN), "dev_manifest": manifest_fingerprint(DEV),
                          "train_audio": audio_fingerprint(TRAIN.path), "dev_audio": audio_fingerprint(DEV.path),
                          "datasets": []}


def test_a_finished_stage_in_kaggle_output_keeps_its_results_and_says_how_much(tmp_path, monkeypatch):
    """What only an unfinished stage needs goes; the summary states the bytes left, itself counted;
    leftovers found later go too, and the stage still reads as finished. Outside Kaggle nothing goes."""
    def stage(out):
        for name, size in {"detector/config.json": 40, "detector/model.safetensors": 1000, "history.csv": 30,
                           "train_config.yaml": 20, "checkpoints/checkpoint-4/x": 500, "top_k/epoch-001.safetensors": 300,
                           "cache/train-prefix-abc.npy": 700}.items():
            (out / name).parent.mkdir(parents=True, exist_ok=True)
            (out / name).write_bytes(b"x" * size)
        return out
    summary = {"stage": 2, "best_dev_eer": 0.25, "parameters": {"trainable": 3}, "cached": True}
    local = stage(tmp_path / "local" / "stage2")
    kept, _, near = finish_stage_folder(local, summary)
    assert kept["kept"]["removed"] == [] and (local / "checkpoints").is_dir() and not near
    assert finished_stage(local) is None  # its checkpoints are there: resumed as before, not reused
    monkeypatch.setenv(KAGGLE_ROOT_ENV, str(tmp_path / "kaggle"))
    out = stage(tmp_path / "kaggle" / "working" / "xlsr-run" / "stage2")
    kept, note, near = finish_stage_folder(out, summary)
    assert sorted(p.name for p in out.iterdir()) == ["detector", "history.csv", "summary.yaml", "train_config.yaml"]
    size = 40 + 1000 + 30 + 20 + (out / "summary.yaml").stat().st_size
    assert kept["kept"] == {"removed": ["checkpoints", "top_k", "cache"], "bytes": size}
    assert yaml.safe_load((out / "summary.yaml").read_text())["kept"]["bytes"] == size and not near
    assert note.startswith(f"{out} keeps {size:,} bytes")
    assert finished_stage(out)["best_dev_eer"] == 0.25
    (out / "cache").mkdir()  # a leftover (a kill while removing): it goes, and the stage stays finished
    (out / "cache" / "dev.npy").write_bytes(b"x" * 99)
    kept, _, _ = finish_stage_folder(out, finished_stage(out))
    assert kept["kept"]["removed"] == ["checkpoints", "top_k", "cache"] and not (out / "cache").exists()
    assert finished_stage(out) is not None
