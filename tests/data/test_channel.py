"""Channel augmentation: codecs, telephone band, packet loss, gain, noise and rooms; seeded and composable."""

import numpy as np
import pytest
import soundfile as sf
from scipy import signal

from xlsr_helpers.core.errors import ConfigError
from xlsr_helpers.data import channel
from xlsr_helpers.data.augment import make_augmenter

SR = 16000


@pytest.fixture
def speech():
    t = np.arange(2 * SR) / SR
    tone = 0.3 * np.sin(2 * np.pi * 1000 * t) + 0.2 * np.sin(2 * np.pi * 5000 * t)  # one tone in band, one above it
    return (tone * (0.6 + 0.4 * np.sin(2 * np.pi * 2 * t))).astype(np.float64)


def band_energy(x, lo, hi):
    f, p = signal.welch(x, SR, nperseg=1024)
    return p[(f >= lo) & (f <= hi)].sum()


@pytest.mark.parametrize("name", sorted(channel.CHANNEL))
def test_each_channel_is_seeded_and_keeps_length(speech, name):
    fn = channel.CHANNEL[name]
    a, b = fn(speech, np.random.default_rng(0)), fn(speech, np.random.default_rng(0))
    assert a.shape == speech.shape and np.isfinite(a).all() and np.abs(a).max() <= 1.0 + 1e-6
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, speech, atol=1e-4)


def test_telephone_band_removes_what_lies_above_3400_hz(speech):
    out = channel.telephone(speech, np.random.default_rng(0))
    assert band_energy(out, 4500, 5500) < 1e-3 * band_energy(speech, 4500, 5500)
    assert band_energy(out, 900, 1100) > 0.3 * band_energy(speech, 900, 1100)


def test_g711_quantises_to_at_most_256_levels_at_8_khz(speech):
    rng = np.random.default_rng(1)
    narrow = channel._narrowband(speech)
    for subtype in ("ULAW", "ALAW"):
        coded = channel._roundtrip(narrow, 8000, "WAV", subtype)
        assert len(np.unique(coded)) <= 256 < len(np.unique(narrow))
    assert channel.g711(speech, rng).shape == speech.shape


def test_packet_loss_silences_whole_20_ms_packets(speech):
    out = channel.packet_loss(speech + 0.5, np.random.default_rng(3), max_rate=0.5)  # no natural zeros
    frames = (out == 0).reshape(-1, 320)
    assert frames.any() and (frames.all(axis=1) | ~frames.any(axis=1)).all()  # a packet is lost whole or kept


def test_gain_stays_within_6_db(speech):
    for seed in range(10):
        out = channel.gain(speech * 0.1, np.random.default_rng(seed))
        ratio_db = 20 * np.log10(np.abs(out).max() / np.abs(speech * 0.1).max())
        assert -6 - 1e-9 <= ratio_db <= 6 + 1e-9


def test_noise_from_a_folder_at_the_drawn_snr(speech, tmp_path):
    rng = np.random.default_rng(0)
    for i in range(3):
        sf.write(tmp_path / f"n{i}.wav", rng.normal(0, 0.1, SR // 2).astype(np.float32), SR)
    for seed in range(5):
        out = channel.add_noise(speech, np.random.default_rng(seed), str(tmp_path))
        snr = 10 * np.log10(np.sum(speech ** 2) / np.sum((out - speech) ** 2))
        assert 5 - 1e-6 <= snr <= 20 + 1e-6
    with pytest.raises(ConfigError, match="no audio files"):
        channel.audio_files(str(tmp_path / "empty"))


def test_reverb_is_the_convolution_with_the_normalised_rir(speech, tmp_path):
    rir = np.zeros(800, dtype=np.float32)
    rir[100], rir[400], rir[799] = 0.8, 0.3, 0.1
    sf.write(tmp_path / "room.wav", rir, SR, subtype="FLOAT")
    out = channel.reverb(speech * 0.5, np.random.default_rng(0), str(tmp_path))
    r = rir.astype(np.float64) / np.sqrt(np.sum(rir.astype(np.float64) ** 2))
    expected = np.convolve(speech * 0.5, r)[100:100 + speech.size]  # aligned on the direct path
    np.testing.assert_allclose(out, expected, atol=1e-6)


def test_chains_compose_with_rawboost_and_check_their_folders(speech, tmp_path):
    aug = make_augmenter("lnl+mp3+loss")
    a = aug(speech, np.random.default_rng(5))
    assert a.dtype == np.float32 and a.shape == speech.shape
    np.testing.assert_array_equal(a, aug(speech, np.random.default_rng(5)))
    with pytest.raises(ConfigError, match="needs noise_dir"):
        make_augmenter("noise")
    with pytest.raises(ConfigError, match="needs rir_dir"):
        make_augmenter("ssi+rir", rir_dir=str(tmp_path / "absent"))
    with pytest.raises(ConfigError, match="unknown augmentation"):
        make_augmenter("mp3+reverbb")


def test_same_length_cuts_or_pads_with_zeros_at_the_end():
    y = np.array([1.0, 2.0, 3.0])
    assert channel._same_length(y, 5).tolist() == [1.0, 2.0, 3.0, 0.0, 0.0]
    assert channel._same_length(y, 2).tolist() == [1.0, 2.0] and channel._same_length(y, 3).tolist() == [1.0, 2.0, 3.0]


def test_packet_loss_drops_a_share_drawn_up_to_max_rate(speech):
    """Over many seeds the silenced share averages max_rate / 2 (the rate is uniform in [0, max_rate])
    and never exceeds it by much: lost packets are the minority, and kept ones keep their samples."""
    x = speech + 0.5  # no natural zeros
    shares = []
    for seed in range(40):
        out = channel.packet_loss(x, np.random.default_rng(seed), max_rate=0.2)
        kept = out != 0
        np.testing.assert_array_equal(out[kept], x[kept])
        shares.append(1 - kept.mean())
    assert 0.05 < np.mean(shares) < 0.15 and max(shares) < 0.35


def test_gain_is_the_drawn_decibels_and_a_loud_result_is_brought_back_to_full_scale():
    x = np.array([0.1, -0.2, 0.05])
    for seed in range(5):
        g_db = np.random.default_rng(seed).uniform(-6, 6)  # the one draw gain makes
        np.testing.assert_allclose(channel.gain(x, np.random.default_rng(seed)), x * 10 ** (g_db / 20), rtol=1e-12)
    loud = np.array([0.75, -0.3])
    seed = next(s for s in range(100) if np.random.default_rng(s).uniform(-6, 6) > 3)  # > +3 dB: peak over 1.05
    out = channel.gain(loud, np.random.default_rng(seed))
    np.testing.assert_allclose(out, loud / 0.75, rtol=1e-12)  # scaled back so the peak is exactly full scale


def test_packet_loss_defaults_to_at_most_ten_percent(speech):
    shares = [np.mean(channel.packet_loss(speech + 0.5, np.random.default_rng(s)) == 0) for s in range(40)]
    assert 0.02 < np.mean(shares) < 0.08 and max(shares) < 0.2  # rate uniform in [0, 0.1]: mean 0.05
