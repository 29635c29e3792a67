"""Top-k checkpoint averaging: the k best epochs on dev EER are kept and their mean becomes the
detector (unless it is worse on dev than the best epoch)."""

import json

import pytest
import torch
import yaml
from safetensors.torch import load_file

from xlsr_helpers.train.callbacks import average_state_dicts
from xlsr_helpers.train.stage import train_stage


def test_average_is_the_elementwise_mean_and_integer_buffers_stay_integers():
    dicts = [{"w": torch.tensor([1.0, 2.0]), "n": torch.tensor(3)},
             {"w": torch.tensor([3.0, 6.0]), "n": torch.tensor(4)},
             {"w": torch.tensor([2.0, 1.0]), "n": torch.tensor(8)}]
    out = average_state_dicts(dicts)
    assert torch.equal(out["w"], torch.tensor([2.0, 3.0]))
    assert out["n"].dtype == torch.int64 and out["n"].item() == 5


def test_the_detector_is_the_mean_of_the_three_best_epochs(small_manifests, tiny_backbone, tmp_path):
    from xlsr_helpers.data.manifest import read_manifest
    from xlsr_helpers.evaluate.metrics import compute_eer
    res = train_stage(dict(stage=1, model=str(tiny_backbone), epochs=6, learning_rate=0.05, segment_samples=16000,
                           batch_size=16, eval_batch_size=32, num_workers=0, early_stopping_patience=0, device="cpu",
                           average_top_k=3), small_manifests / "train.csv", small_manifests / "dev.csv", tmp_path)
    hist = res.history
    best3 = sorted(zip(hist.dev_eer, hist.epoch, strict=True))[:3]  # ties: the earlier epoch
    index = json.loads((tmp_path / "top_k" / "index.json").read_text())
    assert index == {f"epoch-{e:03d}.safetensors": pytest.approx(eer) for eer, e in best3}
    record = yaml.safe_load((tmp_path / "summary.yaml").read_text())["average_top_k"]
    kept = [load_file(tmp_path / "top_k" / n) for n in record["epochs"]]
    saved = load_file(res.detector_dir / "model.safetensors")
    for name in ("classifier.weight", "projector.bias"):
        stacked = torch.stack([k[f"detector.{name}"] for k in kept])
        expected = stacked.mean(0) if record["used"] == "averaged" else stacked[0]
        torch.testing.assert_close(saved[name], expected)
    assert record["dev_eer_best_epoch"] == pytest.approx(best3[0][0])
    # the saved detector reproduces the dev EER the stage reports, on the training's dev segments
    from xlsr_helpers.data.datasets import AudioCollator, SegmentConfig, SegmentDataset
    from xlsr_helpers.model.forward import detector_label_order, detector_logits, scores_from_logits
    from xlsr_helpers.model.loading import load_feature_extractor, load_trained_detector
    dev = read_manifest(small_manifests / "dev.csv")
    model = load_trained_detector(res.detector_dir).eval()
    batch = AudioCollator(load_feature_extractor(res.detector_dir))(list(SegmentDataset(dev, SegmentConfig(16000))))
    with torch.no_grad():
        logits = detector_logits(model, batch["input_values"], batch["attention_mask"])
        scores = scores_from_logits(logits, detector_label_order(model)).numpy()
    eer, _ = compute_eer(scores[(dev.label == "bonafide").to_numpy()], scores[(dev.label == "spoof").to_numpy()])
    assert res.best_dev_eer == pytest.approx(
        record["dev_eer_averaged"] if record["used"] == "averaged" else record["dev_eer_best_epoch"])
    assert eer == pytest.approx(res.best_dev_eer, abs=1e-9)
    print("average_top_k:", record)
