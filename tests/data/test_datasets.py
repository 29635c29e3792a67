import numpy as np
import pytest
import torch

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


def test_default_feature_extractor_matches_the_xls_r_preprocessor_config():
    """facebook/wav2vec2-xls-r-300m's preprocessor_config.json: feature_size 1, sampling_rate 16000,
    padding_value 0, do_normalize true, return_attention_mask true."""
    fe = default_feature_extractor()
    assert (fe.feature_size, fe.sampling_rate, fe.padding_value) == (1, 16000, 0.0)
    assert fe.do_normalize is True and fe.return_attention_mask is True


def test_collator_asks_for_the_mask_at_16k_and_labels_as_long():
    """The mask comes whatever the extractor's own default, an extractor for another rate is refused,
    a one-item batch keeps its label, numpy int32 labels become int64, label-less items give no labels."""
    from transformers import Wav2Vec2FeatureExtractor
    wave = np.linspace(-1, 1, 400, dtype=np.float32)
    batch = AudioCollator(Wav2Vec2FeatureExtractor(return_attention_mask=False))([{"input_values": wave, "labels": 1}])
    assert batch["attention_mask"].tolist() == [[1] * 400] and batch["labels"].tolist() == [1]
    with pytest.raises(ValueError, match="16000"):
        AudioCollator(Wav2Vec2FeatureExtractor(sampling_rate=8000))([{"input_values": wave}])
    batch = AudioCollator(default_feature_extractor())([{"input_values": wave, "labels": np.int32(i)} for i in (0, 1)])
    assert batch["labels"].dtype == torch.long and batch["labels"].tolist() == [0, 1]
    assert "labels" not in AudioCollator(default_feature_extractor())([{"input_values": wave}] * 2)


def test_segment_dataset_defaults_and_augmentation_folders(demo_manifests, tmp_path):
    """Default seed 0 (same crops as seed=0); noise_dir and rir_dir reach their own augmentations, and
    a folder-less augmentation names the empty default."""
    import shutil
    from pathlib import Path

    from xlsr_helpers.core.errors import ConfigError
    from xlsr_helpers.data.augment import make_augmenter
    df = read_manifest(demo_manifests / "train.csv")
    cfg = SegmentConfig(samples=4000, crop="random")
    np.testing.assert_array_equal(SegmentDataset(df, cfg)[1]["input_values"],
                                  SegmentDataset(df, cfg, seed=0)[1]["input_values"])
    for name, source in (("noise", df.path[0]), ("rir", df.path[1])):  # other audio in each folder
        (tmp_path / name).mkdir()
        shutil.copy(source, tmp_path / name / ("x" + Path(source).suffix))
    noise, rir = str(tmp_path / "noise"), str(tmp_path / "rir")
    ds = SegmentDataset(df, cfg, augment="noise+rir", noise_dir=noise, rir_dir=rir)
    x = np.random.default_rng(1).normal(0, 0.1, 4000)
    ours = ds.augment(x, np.random.default_rng(2))
    np.testing.assert_array_equal(ours, make_augmenter("noise+rir", noise_dir=noise, rir_dir=rir)(x, np.random.default_rng(2)))
    swapped = make_augmenter("noise+rir", noise_dir=rir, rir_dir=noise)(x, np.random.default_rng(2))
    assert not np.allclose(ours, swapped)  # each folder reaches its own augmentation
    for aug in ("noise", "rir"):
        with pytest.raises(ConfigError, match=f"needs {aug}_dir: a folder of audio files \\(got ''\\)"):
            SegmentDataset(df, cfg, augment=aug)


def test_corpus_weights_parse_names_and_refuse_the_rest():
    """The share follows the last ':' (a corpus name may hold one); a share with no name, and a spec
    neither a string nor a mapping, are refused with the message's full hint."""
    from pathlib import Path

    from xlsr_helpers.core.errors import ConfigError
    from xlsr_helpers.data.datasets import parse_corpus_weights
    assert parse_corpus_weights("lab:a:2,b:1") == {"lab:a": 2.0, "b": 1.0}
    hint = r"pairs joined with ',' \(each corpus once, shares > 0\), e\.g\. 'asvspoof2019-la:1,asvspoof5:2'$"
    for bad in ("2", "a:1,:2", Path("a:1")):
        with pytest.raises(ConfigError, match=hint):
            parse_corpus_weights(bad)


def test_trial_weights_exact_values_and_mismatch_messages():
    """Corpora a,a,a,b with a:1,b:3: a takes 1/4 (1/12 each), b 3/4; balanced: 1/6 each a, 1/2 b.
    A mismatch message names only what is wrong, the two parts joined by '; '."""
    from xlsr_helpers.core.errors import ConfigError
    from xlsr_helpers.data.datasets import trial_weights
    corpora = ["a", "a", "a", "b"]
    p = trial_weights(corpora, "a:1,b:3")
    assert p.dtype == np.float64
    np.testing.assert_allclose(p, [1 / 12, 1 / 12, 1 / 12, 3 / 4], rtol=1e-12)
    np.testing.assert_allclose(trial_weights(corpora, "balanced"), [1 / 6, 1 / 6, 1 / 6, 1 / 2], rtol=1e-12)
    holds = r" \(it holds \['a', 'b'\]\)$"
    for spec, msg in (("a:1", r": no share for \['b'\]"), ("a:1,b:1,c:1", r": \['c'\] not in the train manifest"),
                      ("a:1,c:1", r": \['c'\] not in the train manifest; no share for \['b'\]")):
        with pytest.raises(ConfigError, match=f"^corpus_weights={spec!r}{msg}{holds}"):
            trial_weights(corpora, spec)


def test_corpus_sampler_defaults_and_unnormalised_weights():
    """Default seed 0 and epoch 0 (the same draws as seed=0 after set_epoch(0)); weights [1, 3] are
    normalised: index 1 takes 3/4 of 4000 draws (binomial sd 0.007, bound 0.03)."""
    from xlsr_helpers.data.datasets import CorpusSampler
    p = np.full(50, 0.02)
    fresh, explicit = CorpusSampler(p), CorpusSampler(p, seed=0)
    explicit.set_epoch(0)
    assert list(fresh) == list(explicit)
    other = CorpusSampler(p, seed=1)
    assert list(other) != list(fresh)
    sampler = CorpusSampler([1, 3])
    draws = []
    for epoch in range(2000):
        sampler.set_epoch(epoch)
        draws += list(sampler)
    assert len(draws) == 4000 and abs(np.mean(np.array(draws) == 1) - 0.75) < 0.03
