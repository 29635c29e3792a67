"""A detector's own label order is the truth: a detector that declares {0: spoof, 1: bonafide} (its
output rows swapped to match) scores, predicts, calibrates and trains exactly as the original does;
a detector whose classes are not exactly bonafide and spoof is refused, naming its folder and labels."""

import json
import math
import shutil

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from xlsr_helpers.core.errors import ConfigError
from xlsr_helpers.data.labels import PACKAGE_ORDER, LabelOrder, label_order

SWAPPED = {0: "spoof", 1: "bonafide"}
CALIBRATION = {"scale": 2.0, "offset": -0.5, "prior_spoof": 0.5, "fitted_on": "dev", "n_bonafide": 10, "n_spoof": 90}


def output_layer(model):
    """The layer that emits the two logits, named by hand per head (not found through the package)."""
    if not hasattr(model, "head"):  # the stock sequence classifier (the linear head)
        return model.classifier
    return getattr(model.head, {"aasist": "out_layer", "sls": "fc3"}[model.config.head])


def swapped_copy(src, dst):
    """``src`` with its outputs swapped: the output layer's rows reversed, id2label/label2id saying so,
    its feature extractor and settings copied. Built with transformers alone."""
    from transformers import AutoModelForAudioClassification
    model = AutoModelForAudioClassification.from_pretrained(src)
    layer = output_layer(model)
    with torch.no_grad():
        layer.weight.copy_(layer.weight.flip(0))
        layer.bias.copy_(layer.bias.flip(0))
    model.config.id2label, model.config.label2id = dict(SWAPPED), {v: k for k, v in SWAPPED.items()}
    model.save_pretrained(dst)
    for name in ("preprocessor_config.json", "xlsr_detector.json"):
        shutil.copy(src / name, dst / name)
    return dst


def calibrated(folder):
    settings = json.loads((folder / "xlsr_detector.json").read_text())
    (folder / "xlsr_detector.json").write_text(json.dumps({**settings, "calibration": CALIBRATION}))
    return folder


@pytest.fixture(scope="module")
def detectors(untrained_detector, tiny_backbone, tmp_path_factory):
    """Per head: an original detector folder (package order, calibrated) and its swapped twin."""
    from xlsr_helpers.model.card import write_settings
    from xlsr_helpers.model.loading import load_detector
    root, out = tmp_path_factory.mktemp("orders"), {}
    for head in ("linear", "aasist", "sls"):
        orig = root / head / "original"
        if head == "linear":
            shutil.copytree(untrained_detector, orig)
        else:
            torch.manual_seed(1)
            load_detector(tiny_backbone, head=head, segment_samples=16000).save_pretrained(orig)
            shutil.copy(untrained_detector / "preprocessor_config.json", orig)
            write_settings(orig, json.loads((untrained_detector / "xlsr_detector.json").read_text()))
        calibrated(orig)
        out[head] = (orig, swapped_copy(orig, root / head / "swapped"))
    return out


def noise_files(folder, lengths, seed=0):
    """Noise clips whose level and colour differ, so that a random head scores them apart."""
    rng, files = np.random.default_rng(seed), []
    for i, n in enumerate(lengths):
        wave = np.cumsum(rng.normal(0, 0.01 * (i + 1), n)) * (0.05 if i % 2 else 1.0)
        files.append(folder / f"clip{i}.wav")
        sf.write(files[-1], (wave / (np.abs(wave).max() + 1e-9) * 0.5).astype(np.float32), 16000)
    return files


@pytest.mark.trains  # trains a stage or runs the chain: left out of make mutate
@pytest.mark.parametrize("head", ["linear", "aasist", "sls"])
def test_a_swapped_detector_scores_as_the_original_and_as_transformers_reads_it(detectors, head, tmp_path):
    from transformers import pipeline

    from xlsr_helpers.evaluate.scoring import Scorer, ScoringConfig
    orig, swapped = detectors[head]
    files = noise_files(tmp_path, [16000, 12000, 16000, 9000, 30000, 14000])
    # one window a batch, as the pipeline sees a clip: the aasist and sls heads' scores also depend on
    # the padding that a shared batch adds, which is not what this test is about
    first = Scorer(orig, ScoringConfig(device="cpu", batch_size=1)).score_files(files, progress=False)
    cfg = ScoringConfig(device="cpu", batch_size=1, threshold=float(first.score.median()), prior_spoof=0.3)
    a = Scorer(orig, cfg).score_files(files, progress=False)
    b = Scorer(swapped, cfg).score_files(files, progress=False)
    assert set(a.label_pred) == {"bonafide", "spoof"}  # the threshold splits the clips: a flip would show
    assert b.label_pred.tolist() == a.label_pred.tolist()
    for col in ("score", "llr", "p_spoof"):
        np.testing.assert_allclose(b[col], a[col], rtol=1e-5, atol=1e-6)
    # independently: transformers' pipeline reads id2label; log(p_bonafide / p_spoof) is the score
    clf = pipeline("audio-classification", model=str(swapped), device="cpu")
    for f, score in zip(files, b.score, strict=True):
        wave, _ = sf.read(f, dtype="float32")
        if wave.size > 16000:  # the pipeline scores a clip whole; a longer one is windowed by the scorer
            continue
        probs = {r["label"]: r["score"] for r in clf({"raw": wave, "sampling_rate": 16000}, top_k=2)}
        assert math.log(probs["bonafide"] / probs["spoof"]) == pytest.approx(score, abs=1e-4)
    # the calibrated LLR and posterior follow the score the detector's own order gives
    assert b.llr.tolist() == pytest.approx((CALIBRATION["scale"] * b.score + CALIBRATION["offset"]).tolist())
    assert b.p_spoof.tolist() == pytest.approx((1 / (1 + np.exp(b.llr + math.log(0.7 / 0.3)))).tolist())


@pytest.mark.parametrize("id2label,label2id,expected", [
    ({0: "bonafide", 1: "spoof"}, {"bonafide": 0, "spoof": 1}, LabelOrder(bonafide=0, spoof=1)),
    ({0: "spoof", 1: "bonafide"}, {"spoof": 0, "bonafide": 1}, LabelOrder(bonafide=1, spoof=0)),
    ({"0": "Spoof", "1": "BONAFIDE"}, None, LabelOrder(bonafide=1, spoof=0)),  # names compared case-insensitively
    ({0: " Bonafide ", 1: "spoof\n"}, None, LabelOrder(bonafide=0, spoof=1)),  # and without surrounding blanks
    ({1: "bonafide", 0: "spoof"}, {"BonaFide": "1", "SPOOF": "0"}, LabelOrder(bonafide=1, spoof=0)),
])
def test_label_order_reads_the_declared_order(id2label, label2id, expected):
    order = label_order(id2label, label2id, "det")
    assert order == expected
    assert order.label2id == {"bonafide": expected.bonafide, "spoof": expected.spoof}
    assert order.id2label == {expected.bonafide: "bonafide", expected.spoof: "spoof"}


@pytest.mark.parametrize("id2label,label2id,words", [
    ({0: "LABEL_0", 1: "LABEL_1"}, {"LABEL_0": 0, "LABEL_1": 1}, "classes are {0: 'LABEL_0', 1: 'LABEL_1'}"),
    ({0: "real", 1: "fake"}, None, "classes are {0: 'real', 1: 'fake'}"),
    ({0: "bonafide", 1: "spoof", 2: "partial"}, None, "'partial'"),
    ({0: "bonafide"}, None, "classes are {0: 'bonafide'}"),
    ({0: "bonafide", 1: "bonafide"}, None, "classes are {0: 'bonafide', 1: 'bonafide'}"),
    ({1: "bonafide", 2: "spoof"}, None, "classes are {1: 'bonafide', 2: 'spoof'}"),  # ids must be 0 and 1
    ({"a": "bonafide", "b": "spoof"}, None, "classes are {'a': 'bonafide', 'b': 'spoof'}"),
    (None, None, "classes are {}"),
    ({0: "spoof", 1: "bonafide"}, {"bonafide": 0, "spoof": 1}, "disagree on which output is bonafide"),
    ({0: "spoof", 1: "bonafide"}, {"LABEL_0": 0, "LABEL_1": 1}, "disagree on which output is bonafide"),
    ({0: "spoof", 1: "bonafide"}, {"spoof": "x", "bonafide": 1}, "disagree on which output is bonafide"),
])
def test_a_detector_with_other_classes_is_refused_naming_where_and_what(id2label, label2id, words):
    with pytest.raises(ConfigError) as info:
        label_order(id2label, label2id, "/models/det")
    assert str(info.value).startswith("/models/det: ")
    assert words in str(info.value)


def test_the_package_order_is_bonafide_first():
    assert PACKAGE_ORDER == LabelOrder(bonafide=0, spoof=1)


def test_dev_eer_and_threshold_read_targets_in_the_detectors_order():
    """``eer_metrics`` on swapped logits and targets equals it on the original ones, worked out here."""
    from transformers import EvalPrediction

    from xlsr_helpers.evaluate.metrics import compute_eer
    from xlsr_helpers.train.dev_eer import eer_metrics
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(40, 2)).astype(np.float32)
    names = np.array(["bonafide"] * 12 + ["spoof"] * 28)
    logits[names == "bonafide", 0] += 2.0  # some separation, so EER < 0.5 and a flip would show
    score = logits[:, 0] - logits[:, 1]
    eer, thr = compute_eer(score[names == "bonafide"], score[names == "spoof"])
    swapped = LabelOrder(bonafide=1, spoof=0)
    for order, lg in ((PACKAGE_ORDER, logits), (swapped, logits[:, ::-1].copy())):
        targets = pd.Series(names).map(order.label2id).to_numpy()
        got = eer_metrics(EvalPrediction(predictions=lg, label_ids=targets), order=order)
        assert got["eer"] == pytest.approx(eer) and got["eer_threshold"] == pytest.approx(thr)
    assert eer < 0.3


def test_class_weights_follow_the_targets_order():
    from xlsr_helpers.train.trainer import class_weight_tensor
    swapped = LabelOrder(bonafide=1, spoof=0)
    names = pd.Series(["bonafide"] * 10 + ["spoof"] * 30)
    w = class_weight_tensor(names.map(swapped.label2id).to_numpy(), "balanced", swapped)
    torch.testing.assert_close(w, torch.tensor([40 / 60, 40 / 20]))  # id 0 is spoof (30), id 1 bonafide (10)
    with pytest.raises(ValueError, match=r"lacks a class: \{'spoof': 3, 'bonafide': 0\}"):
        class_weight_tensor(np.zeros(3, dtype=int), "balanced", swapped)


@pytest.mark.trains  # trains a stage or runs the chain: left out of make mutate
def test_a_stage_from_a_swapped_detector_trains_as_the_original(untrained_detector, demo_manifests, tmp_path):
    """Stage 2 (with top-k averaging) from the swapped twin: targets, class weights, dev EER, the saved
    threshold and calibration all follow its own order, so every number equals the original run's."""
    from xlsr_helpers.evaluate.scoring import Scorer, ScoringConfig
    from xlsr_helpers.model.card import read_settings
    from xlsr_helpers.train.stage import train_stage
    swapped = swapped_copy(untrained_detector, tmp_path / "swapped")
    common = dict(stage=2, top_layers=1, epochs=3, average_top_k=2, learning_rate=3e-3, segment_samples=16000,
                  batch_size=8, eval_batch_size=16, num_workers=0, device="cpu", early_stopping_patience=0)
    runs = [train_stage({**common, "model": str(m)}, demo_manifests / "train.csv", demo_manifests / "dev.csv",
                        tmp_path / name) for m, name in ((untrained_detector, "a"), (swapped, "b"))]
    a, b = runs
    np.testing.assert_allclose(b.history.train_loss, a.history.train_loss, rtol=1e-5)  # same targets, same loss
    np.testing.assert_allclose(b.history.dev_eer, a.history.dev_eer, atol=1e-9)
    assert b.best_dev_eer == pytest.approx(a.best_dev_eer, abs=1e-9)
    sa, sb = read_settings(a.detector_dir), read_settings(b.detector_dir)
    assert sb["dev"]["threshold"] == pytest.approx(sa["dev"]["threshold"], abs=1e-5)
    assert sb["dev"]["eer"] == pytest.approx(sa["dev"]["eer"], abs=1e-9)
    for key in ("scale", "offset"):
        assert sb["calibration"][key] == pytest.approx(sa["calibration"][key], rel=1e-4, abs=1e-6)
    config = json.loads((b.detector_dir / "config.json").read_text())
    assert config["id2label"] == {"0": "spoof", "1": "bonafide"}  # the detector keeps its own order
    files = noise_files(tmp_path, [16000, 8000, 24000])
    ya, yb = (Scorer(r.detector_dir, ScoringConfig(device="cpu")).score_files(files, progress=False) for r in runs)
    np.testing.assert_allclose(yb.score, ya.score, rtol=1e-5, atol=1e-6)
    assert yb.label_pred.tolist() == ya.label_pred.tolist()


@pytest.mark.trains  # trains a stage or runs the chain: left out of make mutate
def test_a_stage_from_a_detector_with_other_classes_is_refused_before_its_folder(untrained_detector,
                                                                                   demo_manifests, tmp_path):
    from xlsr_helpers.train.stage import train_stage
    folder = shutil.copytree(untrained_detector, tmp_path / "labelled")
    config = json.loads((folder / "config.json").read_text())
    config["id2label"], config["label2id"] = {"0": "real", "1": "fake"}, {"real": 0, "fake": 1}
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match=r"labelled: the detector's classes are \{0: 'real', 1: 'fake'\}"):
        train_stage(dict(stage=2, model=str(folder), device="cpu"), demo_manifests / "train.csv",
                    demo_manifests / "dev.csv", tmp_path / "s2")
    assert not (tmp_path / "s2").exists()


def test_the_refusal_says_which_names_it_needs_and_where_to_put_them():
    """The message a user acts on: the two class names the package scores, and the config fields to fix."""
    with pytest.raises(ConfigError) as info:
        label_order({0: "real", 1: "fake"}, None, "det")
    assert "exactly two classes named bonafide and spoof (in either order)" in str(info.value)
    assert str(info.value).endswith("If its classes mean bona fide and spoofed speech, name them so in "
                                    "config.json's id2label and label2id")


def test_decisions_put_a_score_above_the_threshold_on_the_bonafide_side_and_the_threshold_itself_on_spoof():
    """One rule for every decided label (score files, confusion tables, the demo page's verdict and windows)."""
    from xlsr_helpers.data.labels import decide
    assert decide([2.0, 1.0, 0.999, np.nan, -np.inf], 1.0).tolist() == ["bonafide", "spoof", "spoof", "spoof", "spoof"]
    assert str(decide(1.5, 1.0)) == "bonafide" and str(decide(0.5, 1.0)) == "spoof"  # a scalar: a 0-d array
    assert decide(pd.Series([0.0, 3.0]), -1.0).tolist() == ["bonafide", "bonafide"]
