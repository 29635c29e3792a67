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


class ScriptedRng:
    """Stands in for np.random.Generator: ``uniform(lo, hi)`` returns ``lo + f * (hi - lo)`` for the next
    scripted fraction ``f`` (0.5 once they run out), as RawBoost's randRange does; every call is recorded."""

    def __init__(self, fractions=(), normal=None, permutation=None, random=()):
        self.fractions, self._normal, self._perm, self._random = list(fractions), normal, permutation, list(random)
        self.calls = []

    def uniform(self, lo, hi):
        self.calls.append(("uniform", lo, hi))
        return lo + (self.fractions.pop(0) if self.fractions else 0.5) * (hi - lo)

    def normal(self, loc, scale, size):
        self.calls.append(("normal", loc, scale, size))
        return np.array(self._normal[:size], dtype=np.float64)

    def permutation(self, n):
        self.calls.append(("permutation", n))
        return np.array(self._perm)

    def random(self, size):
        self.calls.append(("random", size))
        return self._random.pop(0)


BAND = [("uniform", 20, 8000), ("uniform", 100, 1000), ("uniform", 10, 100)]  # fc, bw, taps: RawBoost's defaults


def band_stop(taps, f1, f2, fs=16000):
    """A Hamming-windowed sinc band-stop (an impulse minus a band-pass), unit gain at DC, written out."""
    m = np.arange(taps) - (taps - 1) / 2
    h = (np.sinc(m) - 2 * f2 / fs * np.sinc(2 * f2 / fs * m) + 2 * f1 / fs * np.sinc(2 * f1 / fs * m)) * np.hamming(taps)
    return h / h.sum()


def notch_taps(fractions, gain_db=0.0):
    """RawBoost's genNotchCoeffs by hand for scripted (fc, bw, taps) fractions of the default ranges."""
    b = np.ones(1)
    for f_c, f_bw, f_t in np.reshape(fractions, (-1, 3)):
        fc, bw, taps = 20 + f_c * 7980, 100 + f_bw * 900, int(10 + f_t * 90)
        taps += 1 - taps % 2
        b = np.convolve(b, band_stop(taps, max(fc - bw / 2, 1e-3), min(fc + bw / 2, 8000 - 1e-3)))
    peak = np.abs(np.fft.rfft(b, 1024)[:512]).max()  # freqz's default grid: 512 points on [0, fs/2)
    return 10 ** (gain_db / 20) * b / peak


def fir_by_hand(x, b):
    """RawBoost's filterFIR: the full convolution from sample (len(b) + 1) // 2 on, len(x) samples."""
    k = (len(b) + 1) // 2
    return np.concatenate([np.convolve(x, b), np.zeros(2)])[k:k + len(x)]


NOTCH = [0.0, 0.5, 0.2, 1.0, 0.3, 0.7, 0.4, 0.1, 0.3, 0.6, 0.9, 0.5, 0.25, 0.8, 0.45]  # band 1 floors f1, 2 caps f2


def test_notch_filter_is_rawboosts_band_stop_cascade_at_the_drawn_gain():
    """Five bands drawn in RawBoost's order and ranges, each a Hamming band-stop FIR of odd length, the
    cascade scaled to a peak of 0 dB then to the gain drawn from the (sorted) gain range."""
    from xlsr_helpers.data.augment import _notch_filter
    rng = ScriptedRng(NOTCH + [0.4])
    b = _notch_filter(rng, min_g=-5, max_g=-20)
    assert rng.calls == BAND * 5 + [("uniform", -20, -5)]
    np.testing.assert_allclose(b, notch_taps(NOTCH, gain_db=-20 + 0.4 * 15), rtol=1e-9, atol=1e-12)
    rng = ScriptedRng()
    _notch_filter(rng)
    assert rng.calls[-1] == ("uniform", 0, 0)  # default: no gain


def test_fir_is_rawboosts_filter_fir_for_odd_and_even_taps():
    x = np.random.default_rng(0).normal(size=50)
    from xlsr_helpers.data.augment import _fir
    for b in (np.array([0.5, -1.0, 2.0, 0.25]), np.array([1.0, 0.3, -0.2, 0.1, 0.7])):
        np.testing.assert_allclose(_fir(x, b), fir_by_hand(x, b), rtol=1e-12, atol=1e-12)


def test_norm_divides_by_the_peak_always_or_only_above_full_scale():
    from xlsr_helpers.data.augment import _norm
    x = np.array([0.25, -0.5, 0.125])
    np.testing.assert_array_equal(_norm(x, always=True), x / 0.5)
    np.testing.assert_array_equal(_norm(x, always=False), x)
    np.testing.assert_array_equal(_norm(3 * x, always=False), x / 0.5)  # peak 1.5: scaled back
    np.testing.assert_array_equal(_norm(np.zeros(3), always=True), np.zeros(3))  # silence: no 0/0


def test_lnl_draws_one_notch_filter_per_power_the_higher_ones_attenuated():
    """Defaults: N_f = 5 powers; the linear term at 0 dB, the others in [0 - 20, 0 - 5] dB."""
    rng = ScriptedRng()
    lnl(np.linspace(-0.5, 0.5, 64), rng)
    gains = rng.calls[15::16]
    assert len(rng.calls) == 5 * 16 and gains == [("uniform", 0, 0)] + [("uniform", -20, -5)] * 4
    assert lnl(np.linspace(-0.5, 0.5, 64, dtype=np.float32), ScriptedRng()).dtype == np.float64


def test_lnl_sums_the_filtered_powers_then_removes_the_mean():
    """n_f = 2: y = fir(x, b1) + fir(x^2, b2), minus its mean, scaled back under full scale."""
    x = 0.3 + 0.9 * np.sin(np.arange(400) / 7)  # a mean and a square that the filters keep
    out = lnl(x, ScriptedRng(NOTCH + [0.5] + NOTCH[::-1] + [0.25]), n_f=2)
    y = fir_by_hand(x, notch_taps(NOTCH)) + fir_by_hand(x ** 2, notch_taps(NOTCH[::-1], -20 + 0.25 * 15))
    y -= y.mean()
    np.testing.assert_allclose(out, y / max(1, np.abs(y).max()), rtol=1e-9, atol=1e-12)


def test_isd_perturbs_exactly_the_drawn_samples_by_the_drawn_amounts():
    """beta = 5 % of 1000 samples -> the first 50 of the permutation get x + 2 x (2 u - 1)(2 v - 1)."""
    x = 0.3 * np.sin(np.arange(1000) / 5)
    x0, u, v = x.copy(), np.linspace(0, 1, 50), np.linspace(1, 0.2, 50)
    rng = ScriptedRng([0.5], permutation=np.arange(1000)[::-1], random=[u, v])
    y = isd(x, rng)
    assert rng.calls == [("uniform", 0, 10), ("permutation", 1000), ("random", 50), ("random", 50)]
    expected = x0.copy()
    expected[950:][::-1] = x0[950:][::-1] * (1 + 2 * (2 * u - 1) * (2 * v - 1))
    np.testing.assert_allclose(y, expected, rtol=1e-12)
    np.testing.assert_array_equal(x, x0)  # the input is not written to


def test_ssi_adds_the_filtered_normal_noise_at_the_drawn_snr():
    x = 0.4 * np.sin(np.arange(600) / 9)
    z = np.random.default_rng(5).normal(size=600)
    rng = ScriptedRng(NOTCH + [0.5, 0.3], normal=z)
    y = ssi(x, rng)
    assert rng.calls == [("normal", 0, 1, 600)] + BAND * 5 + [("uniform", 0, 0), ("uniform", 10, 40)]
    noise = fir_by_hand(z, notch_taps(NOTCH))
    snr = 10 + 0.3 * 30
    np.testing.assert_allclose(y - x, noise / np.linalg.norm(noise) * np.linalg.norm(x) / 10 ** (snr / 20),
                               rtol=1e-9, atol=1e-15)


def test_ssi_leaves_the_signal_when_the_noise_is_silent_and_adds_it_at_unit_norm():
    x = np.zeros(300)
    x[10] = 1.0  # unit norm: still gets its noise
    np.testing.assert_array_equal(ssi(x, ScriptedRng(normal=np.zeros(300))), x)
    y = ssi(x, ScriptedRng([0.5] * 16 + [0.0], normal=np.random.default_rng(1).normal(size=300)))
    assert 10 * np.log10(1 / np.sum((y - x) ** 2)) == pytest.approx(10)


def test_folder_augmentations_need_their_folder_and_read_it(tmp_path):
    """'' is 'none'; noise/rir without a folder name the empty default; with one, the chain is the
    channel function on that folder, on the one generator."""
    import soundfile as sf

    from xlsr_helpers.data.channel import add_noise, reverb
    assert make_augmenter("") is None
    for name, arg in (("noise", "noise_dir"), ("rir", "rir_dir")):
        with pytest.raises(ConfigError, match=f"needs {arg}: .*got ''"):
            make_augmenter(name)
    sf.write(tmp_path / "n.wav", np.random.default_rng(0).normal(0, 0.1, 2000).astype(np.float32), 16000,
             subtype="FLOAT")
    x = 0.3 * np.sin(np.arange(4000) / 8)
    for name, fn, kw in (("noise", add_noise, {"noise_dir": tmp_path}), ("rir", reverb, {"rir_dir": tmp_path})):
        out = make_augmenter(name, **kw)(x, np.random.default_rng(2))
        expected = fn(x, np.random.default_rng(2), folder=str(tmp_path)).astype(np.float32)
        np.testing.assert_array_equal(out, expected)


def test_apply_hands_every_step_float64():
    from xlsr_helpers.data.augment import _apply
    seen = []
    out = _apply([lambda y, r: y.astype(np.float32), lambda y, r: seen.append(y.dtype) or y],
                 np.ones(4, np.float32), None)
    assert seen == [np.float64] and out.dtype == np.float32
