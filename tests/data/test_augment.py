import numpy as np
import pytest

from xlsr_helpers.core.errors import ConfigError
from xlsr_helpers.data.augment import isd, lnl, make_augmenter, ssi
from xlsr_helpers.data.datasets import SegmentConfig, SegmentDataset
from xlsr_helpers.data.labels import PACKAGE_ORDER
from xlsr_helpers.data.manifest import read_manifest


@pytest.fixture
def speech():
    t = np.arange(16000) / 16000
    return (0.4 * np.sin(2 * np.pi * 220 * t) * np.sin(2 * np.pi * 3 * t)).astype(np.float32)


@pytest.mark.parametrize("fn", [lnl, isd, ssi])
def test_each_algorithm_is_seeded_and_keeps_shape(speech, fn):
    a = fn(speech, np.random.default_rng(0))
    b = fn(speech, np.random.default_rng(0))
    c = fn(speech, np.random.default_rng(1))
    assert a.shape == speech.shape and np.isfinite(a).all()
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, speech) and not np.allclose(a, c)


def test_ssi_noise_is_within_the_snr_range(speech):
    for seed in range(10):
        noisy = ssi(speech, np.random.default_rng(seed))
        snr = 10 * np.log10(np.sum(speech.astype(np.float64) ** 2) / np.sum((noisy - speech) ** 2))
        assert 10 - 1e-6 <= snr <= 40 + 1e-6


def test_isd_touches_at_most_ten_percent_of_samples(speech):
    shares = []
    for seed in range(10):
        out = isd(speech, np.random.default_rng(seed))
        nz = np.abs(speech) > 1e-3
        ratio = out[nz] / speech[nz]  # untouched samples share one ratio (1, or 1/peak after normalising)
        shares.append(np.mean(~np.isclose(ratio, np.median(ratio), rtol=1e-6)))
    assert max(shares) <= 0.10 and max(shares) > 0.01


def test_lnl_output_is_bounded(speech):
    assert np.abs(lnl(speech, np.random.default_rng(3))).max() <= 1.0 + 1e-9


def test_augmenter_names():
    assert make_augmenter("none") is None
    out = make_augmenter("lnl+isd")(np.ones(4000, np.float32) * 0.1, np.random.default_rng(0))
    assert out.dtype == np.float32 and out.shape == (4000,)
    with pytest.raises(ConfigError, match="unknown augmentation"):
        make_augmenter("lnl+reverb")


def test_dataset_augmentation_replays_per_epoch(demo_manifests):
    df = read_manifest(demo_manifests / "train.csv")
    a = SegmentDataset(df, SegmentConfig(samples=8000), seed=1, augment="ssi")
    b = SegmentDataset(df, SegmentConfig(samples=8000), seed=1, augment="ssi")
    plain = SegmentDataset(df, SegmentConfig(samples=8000))
    np.testing.assert_array_equal(a[2]["input_values"], b[2]["input_values"])
    assert not np.allclose(a[2]["input_values"], plain[2]["input_values"])
    b.set_epoch(1)
    assert not np.allclose(a[2]["input_values"], b[2]["input_values"])


@pytest.mark.trains  # trains a stage or runs the chain: left out of make mutate
def test_augmentation_turns_the_cache_off(small_manifests, tiny_backbone, tmp_path):
    from xlsr_helpers.train.config import TrainConfig
    from xlsr_helpers.train.stage import train_stage
    with pytest.raises(ConfigError, match="augment"):
        TrainConfig(augment="bogus")
    res = train_stage(dict(stage=1, model=str(tiny_backbone), epochs=1, augment="lnl+isd", segment_samples=8000,
                           batch_size=16, num_workers=0, device="cpu"),
                      small_manifests / "train.csv", small_manifests / "dev.csv", tmp_path / "s1")
    assert not res.cached and len(res.history) == 1
    with pytest.raises(ConfigError, match="augment='none'"):
        train_stage(dict(stage=1, model=str(tiny_backbone), epochs=1, augment="ssi", cache="on", device="cpu"),
                    small_manifests / "train.csv", small_manifests / "dev.csv", tmp_path / "s1b")


def test_isd_perturbs_a_subset_by_at_most_g_sd_times_the_sample(speech):
    """RawBoost ISD: y[i] = x[i] + g_sd * x[i] * f_r with f_r the product of two uniforms in [-1, 1], on
    a random share (< p %) of the samples; the rest untouched. Quiet input: no normalisation."""
    x = (0.1 * speech / np.abs(speech).max()).astype(np.float64)  # peak 0.1: even 3x stays below 1
    for seed in range(5):
        y = isd(x, np.random.default_rng(seed), p=10, g_sd=2)
        changed = ~np.isclose(y, x, rtol=0, atol=0)
        assert changed.mean() <= 0.10
        f_r = (y[changed] - x[changed]) / (2 * x[changed])
        assert np.all(np.abs(f_r) <= 1 + 1e-12)
        np.testing.assert_array_equal(y[~changed], x[~changed])
    loud = isd(0.9 * x / 0.1, np.random.default_rng(0), p=10, g_sd=2)  # 0.9 * (1 + 2 f_r) can pass 1
    assert np.abs(loud).max() <= 1.0 + 1e-12


def test_lnl_linear_term_is_a_band_filter_with_unit_peak_gain():
    """With only the linear term, an impulse comes out as the notch-filter cascade, normalised to a
    0 dB peak: its magnitude response peaks at the impulse's amplitude."""
    impulse = np.zeros(8192)
    impulse[4096] = 0.5  # mid-signal: the whole impulse response fits
    for seed in range(5):
        y = lnl(impulse, np.random.default_rng(seed), n_f=1)
        spectrum = np.abs(np.fft.rfft(y))[1:]  # y had its mean removed: only DC differs
        assert spectrum.max() == pytest.approx(0.5, rel=0.02)  # normalised on freqz's 512-point grid


def test_lnl_then_isd_is_the_two_in_order_on_one_generator(speech):
    out = make_augmenter("lnl+isd")(speech, np.random.default_rng(7))
    rng = np.random.default_rng(7)
    expected = isd(lnl(speech.astype(np.float64), rng), rng).astype(np.float32)
    np.testing.assert_array_equal(out, expected)
    assert not np.array_equal(out, make_augmenter("isd+lnl")(speech, np.random.default_rng(7)))


@pytest.mark.parametrize("crop,dev_crop", [("random", "start"), ("center", "center")])
def test_augmentation_and_random_crops_reach_training_never_dev(demo_manifests, tmp_path, crop, dev_crop):
    """The uncached stage data: training segments are augmented (and randomly cropped when asked),
    the dev segments that select the model are the plain audio, cut the same way every epoch."""
    from xlsr_helpers.data.audio import fix_length, load_audio
    from xlsr_helpers.data.datasets import default_feature_extractor
    from xlsr_helpers.train.cache_plan import CachePlan, stage_data
    from xlsr_helpers.train.config import TrainConfig
    train_df, dev_df = read_manifest(demo_manifests / "train.csv"), read_manifest(demo_manifests / "dev.csv")
    cfg = TrainConfig(augment="ssi", crop=crop, segment_samples=4000, seed=3)
    data = stage_data(cfg, CachePlan("waveform", {}, tmp_path, cached=False), None, default_feature_extractor(),
                      train_df, dev_df, "cpu", None, PACKAGE_ORDER)
    assert not data.cached and data.kind == "waveform" and len(data.dev) == len(dev_df)
    for epoch in (0, 2):
        data.dev.set_epoch(epoch)
        for i in range(3):
            plain = fix_length(load_audio(dev_df.path[i]), 4000, "repeat", dev_crop)
            np.testing.assert_array_equal(data.dev[i]["input_values"], plain)
    plain_train = fix_length(load_audio(train_df.path[0]), 4000, "repeat", crop, np.random.default_rng([3, 0, 0]))
    assert data.train[0]["input_values"].shape == (4000,)
    assert not np.allclose(data.train[0]["input_values"], plain_train)  # noise added


def test_a_dataset_without_augmentation_is_the_plain_fixed_length_audio(demo_manifests):
    from xlsr_helpers.data.audio import fix_length, load_audio
    df = read_manifest(demo_manifests / "dev.csv")
    ds = SegmentDataset(df, SegmentConfig(samples=3000, pad="zero", crop="center"))
    assert ds.augment is None and len(ds) == len(df)
    for i in (0, len(df) - 1):
        np.testing.assert_array_equal(ds[i]["input_values"], fix_length(load_audio(df.path[i]), 3000, "zero", "center"))
        assert ds[i]["labels"] == {"bonafide": 0, "spoof": 1}[df.label[i]]
