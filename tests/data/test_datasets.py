import numpy as np
import pytest

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


def test_corpus_weights_set_each_corpus_share_of_the_draws():
    """90 trials of corpus a, 10 of b. 'a:1,b:1' (or balanced): each trial of b is 9x as likely as one of a,
    so b takes half the draws; 'a:3,b:1': b a quarter. Counted over 40 epochs of 100 draws: the binomial
    standard deviation of a share is 0.007 at 4000 draws, the bounds allow 0.04."""
    import numpy as np

    from xlsr_helpers.core.errors import ConfigError
    from xlsr_helpers.data.datasets import CorpusSampler, trial_weights
    corpora = ["a"] * 90 + ["b"] * 10
    assert trial_weights(corpora, "none") is None
    for spec, share_b in (("a:1,b:1", 0.5), ("balanced", 0.5), ("a:3,b:1", 0.25), ({"a": 9, "b": 1}, 0.1)):
        p = trial_weights(corpora, spec)
        assert p.sum() == pytest.approx(1.0) and p[-1] / p[0] == pytest.approx(share_b / (1 - share_b) * 9)
        sampler = CorpusSampler(p, seed=5)
        draws = []
        for epoch in range(40):
            sampler.set_epoch(epoch)
            drawn = list(sampler)
            assert len(drawn) == len(sampler) == 100 and all(0 <= i < 100 for i in drawn)
            draws += drawn
        assert abs(np.mean(np.array(draws) >= 90) - share_b) < 0.04
    sampler = CorpusSampler(trial_weights(corpora, "balanced"), seed=5)
    sampler.set_epoch(3)
    first = list(sampler)
    sampler.set_epoch(4)
    assert list(sampler) != first
    sampler.set_epoch(3)
    assert list(sampler) == first  # a resumed epoch draws what it drew
    for bad, words in (("a:1", r"no share for \['b'\]"), ("a:1,b:1,c:2", r"\['c'\] not in the train manifest"),
                       ("a:0,b:1", "shares > 0"), ("a:x,b:1", "shares > 0"), ("a:1,a:2,b:1", "each corpus once"),
                       ("", "expected 'none', 'balanced'")):
        with pytest.raises(ConfigError, match=words):
            trial_weights(corpora, bad)
