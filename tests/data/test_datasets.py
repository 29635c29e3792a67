import numpy as np

from xlsr_helpers.data.datasets import AudioCollator, SegmentConfig, SegmentDataset, default_feature_extractor
from xlsr_helpers.data.manifest import read_manifest


def test_collator_normalises_each_utterance_and_pads_after_it():
    """Checked against the arithmetic, not against the call the collator makes: each utterance
    (x - mean) / sqrt(var + 1e-7) over its own samples, zeros after it, mask 1 on real samples."""
    fe = default_feature_extractor()
    rng = np.random.default_rng(0)
    waves = [rng.normal(0.1, 0.3, n).astype(np.float32) for n in (1600, 2400, 800)]
    batch = AudioCollator(fe)([{"input_values": w, "labels": i % 2} for i, w in enumerate(waves)])
    assert batch["input_values"].shape == (3, 2400) and batch["labels"].tolist() == [0, 1, 0]
    for i, w in enumerate(waves):
        w64 = w.astype(np.float64)
        expected = (w64 - w64.mean()) / np.sqrt(w64.var() + 1e-7)
        np.testing.assert_allclose(batch["input_values"][i, :w.size].numpy(), expected, rtol=1e-4, atol=1e-5)
        assert batch["input_values"][i, w.size:].abs().sum() == 0
        assert batch["attention_mask"][i].tolist() == [1] * w.size + [0] * (2400 - w.size)


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
