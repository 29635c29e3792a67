import numpy as np
import torch

from xlsr_helpers.features import AudioCollator, SegmentConfig, SegmentDataset, default_feature_extractor
from xlsr_helpers.manifest import read_manifest


def test_collator_equals_hf_feature_extractor():
    fe = default_feature_extractor()
    rng = np.random.default_rng(0)
    waves = [rng.normal(0.1, 0.3, n).astype(np.float32) for n in (1600, 2400, 800)]
    batch = AudioCollator(fe)([{"input_values": w, "labels": i % 2} for i, w in enumerate(waves)])
    direct = fe(waves, sampling_rate=16000, padding=True, return_attention_mask=True, return_tensors="pt")
    torch.testing.assert_close(batch["input_values"], direct["input_values"])
    torch.testing.assert_close(batch["attention_mask"], direct["attention_mask"])
    assert batch["labels"].tolist() == [0, 1, 0]
    assert batch["attention_mask"][2].sum() == 800
    # per-utterance normalisation: zero mean, unit variance over the real samples
    x = batch["input_values"][1]
    assert abs(float(x.mean())) < 1e-4 and abs(float(x.std()) - 1) < 1e-2


def test_segment_dataset_fixed_length_and_labels(demo_manifests):
    df = read_manifest(demo_manifests / "train.csv")
    ds = SegmentDataset(df, SegmentConfig(samples=16000))
    item = ds[0]
    assert item["input_values"].shape == (16000,)
    assert item["labels"] == (0 if df.label[0] == "bonafide" else 1)


def test_random_crops_are_seeded_per_epoch(demo_manifests):
    df = read_manifest(demo_manifests / "train.csv")
    cfg = SegmentConfig(samples=4000, crop="random")
    a, b = SegmentDataset(df, cfg, seed=3), SegmentDataset(df, cfg, seed=3)
    np.testing.assert_array_equal(a[1]["input_values"], b[1]["input_values"])
    b.set_epoch(1)
    assert not np.array_equal(a[1]["input_values"], b[1]["input_values"])
