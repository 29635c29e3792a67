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


class Scripted:
    """An rng stand-in that returns the given values in turn and records each draw as (name, low, high)."""

    def __init__(self, *values):
        self.values, self.calls = list(values), []

    def integers(self, low, high=None):
        self.calls.append(("integers", 0, low) if high is None else ("integers", low, high))  # numpy's one-argument form
        return self.values.pop(0)

    def uniform(self, low=0.0, high=1.0):
        self.calls.append(("uniform", low, high))
        return self.values.pop(0)

    def random(self):
        self.calls.append(("random", 0.0, 1.0))
        return self.values.pop(0)


def tone_amplitude(y, f, a, b):
    """Sine and cosine amplitude of an f Hz tone in y[a:b] (a whole number of cycles)."""
    t = np.arange(a, b) / SR
    return 2 * np.mean(y[a:b] * np.sin(2 * np.pi * f * t)), 2 * np.mean(y[a:b] * np.cos(2 * np.pi * f * t))


def record_roundtrips(monkeypatch):
    """Replace the encoder with a recorder of (sr, format, subtype, compression_level) that returns its input."""
    calls = []

    def fake(x, sr, fmt, subtype=None, **kw):
        calls.append((sr, fmt.upper(), subtype and subtype.upper(), kw.get("compression_level")))
        return np.asarray(x, dtype=np.float32)
    monkeypatch.setattr(channel, "_roundtrip", fake)
    return calls


@pytest.mark.parametrize("name, subtypes", [("mp3", {None}), ("ogg", {"VORBIS", "OPUS"})])
def test_lossy_codecs_draw_every_subtype_and_a_quality_spread_over_0_to_1(monkeypatch, name, subtypes):
    """mp3/ogg encode at 16 kHz with a compression level uniform in [0, 1] (what libsndfile accepts) and,
    for Ogg, Vorbis or Opus about half the time each; nothing else is ever asked of the encoder."""
    calls = record_roundtrips(monkeypatch)
    x = np.zeros(320)
    for seed in range(200):
        getattr(channel, name)(x, np.random.default_rng(seed))
    assert {c[:2] for c in calls} == {(SR, name.upper())} and {c[2] for c in calls} == subtypes
    levels = [c[3] for c in calls]
    assert all(isinstance(v, float) for v in levels) and 0 <= min(levels) < 0.05 and 0.95 < max(levels) <= 1
    if name == "ogg":
        assert 0.35 < np.mean([c[2] == "VORBIS" for c in calls]) < 0.65


def test_g711_draws_mu_law_and_a_law_at_8_khz(monkeypatch):
    """G.711 is an 8 kHz WAV in mu-law or A-law, each about half the time."""
    calls = record_roundtrips(monkeypatch)
    monkeypatch.setattr(channel, "_narrowband", lambda x: x[::2])  # the filter and the resampling are timed
    monkeypatch.setattr(channel, "resample", lambda w, orig, new=SR: np.repeat(w, 2))  # and checked elsewhere
    for seed in range(60):
        channel.g711(np.zeros(800), np.random.default_rng(seed))
    assert {c[:2] for c in calls} == {(8000, "WAV")} and {c[3] for c in calls} == {None}
    assert {c[2] for c in calls} == {"ULAW", "ALAW"} and 0.3 < np.mean([c[2] == "ULAW" for c in calls]) < 0.7


def butterworth_gain(f, lo=300, hi=3400, order=4):
    """|H(f)|^2 of a digital Butterworth band-pass (bilinear, edges prewarped): forward-backward amplitude gain."""
    t, t1, t2 = (np.tan(np.pi * v / SR) for v in (f, lo, hi))
    return 1 / (1 + ((t * t - t1 * t2) / (t * (t2 - t1))) ** (2 * order))


def test_narrowband_is_a_zero_phase_4th_order_butterworth_300_3400_hz_then_8_khz(monkeypatch):
    """Before the 8 kHz resampling, a tone comes out scaled by |H|^2 of the 300-3400 Hz Butterworth band-pass,
    in phase: half amplitude at both band edges, whole in the band, the skirts falling as order 4."""
    rates = []
    monkeypatch.setattr(channel, "resample", lambda w, orig, new=SR: rates.append((orig, new)) or w)
    t = np.arange(SR) / SR
    for f in (150, 300, 1000, 3400, 3800, 5000):
        sin, cos = tone_amplitude(channel._narrowband(np.sin(2 * np.pi * f * t)), f, SR // 4, 3 * SR // 4)
        assert sin == pytest.approx(butterworth_gain(f), rel=1e-5, abs=1e-7) and abs(cos) < 1e-6
    assert butterworth_gain(300) == pytest.approx(0.5) == butterworth_gain(3400)  # the formula itself: -3 dB per pass
    assert set(rates) == {(SR, 8000)}
    monkeypatch.undo()
    assert channel._narrowband(np.zeros(SR)).shape == (8000,)


def test_telephone_and_g711_pass_an_in_band_tone_in_time():
    """Back at 16 kHz, a 1 kHz tone lines up with the input over the whole utterance (no stretch, no missing
    half): almost exactly through the telephone band, within G.711's 8-bit companding error."""
    x = 0.5 * np.sin(2 * np.pi * 1000 * np.arange(2 * SR) / SR)
    mid = slice(1000, -1000)  # away from the filter's edge transients
    assert np.abs(channel.telephone(x, np.random.default_rng(0)) - x)[mid].max() < 1e-3
    for draw in (0.25, 0.75):  # mu-law, then A-law
        err = channel.g711(x, Scripted(draw)) - x
        assert np.sqrt(np.mean(err[mid] ** 2)) < 0.05 * np.sqrt(np.mean(x ** 2))


def test_roundtrip_clips_to_full_scale_and_hands_the_encoder_float32_and_its_options(monkeypatch):
    """Samples beyond +-1 are clipped before encoding (a float WAV would otherwise keep them); the encoder gets
    float32 and the codec options; the decoded wave is float32 of the input's length."""
    x = np.array([-3.0, -1.5, -1.0, -0.25, 0.0, 0.5, 1.0, 1.5, 3.0])
    out = channel._roundtrip(x, SR, "WAV", "FLOAT")
    assert out.dtype == np.float32 and out.tolist() == [-1.0, -1.0, -1.0, -0.25, 0.0, 0.5, 1.0, 1.0, 1.0]
    seen, write = [], sf.write
    monkeypatch.setattr(sf, "write", lambda buf, data, sr, **kw: seen.append((data.dtype, kw)) or write(buf, data, sr, **kw))
    assert channel._roundtrip(np.zeros(SR // 10), SR, "MP3", compression_level=0.7).shape == (SR // 10,)
    assert seen == [(np.float32, {"format": "MP3", "subtype": None, "compression_level": 0.7})]


def write_noises(folder, *lengths, seed=0):
    """Float WAV noise files n0.wav, n1.wav, ... of the given lengths (read back bit for bit); their samples."""
    folder.mkdir(exist_ok=True)
    rng, waves = np.random.default_rng(seed), []
    for i, n in enumerate(lengths):
        waves.append(rng.normal(0, 0.1, n).astype(np.float32))
        sf.write(folder / f"n{i}.wav", waves[-1], SR, subtype="FLOAT")
    return waves


def snr_db(clean, noisy):
    clean = clean.astype(np.float64)
    return 10 * np.log10(np.sum(clean ** 2) / np.sum((noisy - clean) ** 2))


def test_noise_is_the_drawn_excerpt_of_the_drawn_file_added_at_exactly_the_drawn_snr(speech, tmp_path):
    """The file index is drawn among the folder's files (sorted), the excerpt start among every position that
    fits, then the SNR in [snr_min, snr_max]; the result is clean + a positive multiple of that excerpt,
    its SNR the drawn one to float64 precision (powers are summed in float64 even for float32 speech)."""
    noises = write_noises(tmp_path, 3000, 5000, 4000)
    x = speech[:1000].astype(np.float32)
    for start in (0, 3000):  # the first and the last excerpt that fit in n2.wav
        rng = Scripted(2, start, 7.25)
        out = channel.add_noise(x, rng, str(tmp_path), snr_min=3, snr_max=11)
        assert rng.calls == [("integers", 0, 3), ("integers", 0, 3001), ("uniform", 3, 11)] and out.shape == x.shape
        added = out - x
        scale = np.dot(added, noises[2][start:start + 1000]) / np.sum(noises[2][start:start + 1000].astype(np.float64) ** 2)
        assert scale > 0 and np.allclose(added, scale * noises[2][start:start + 1000], rtol=0, atol=1e-12)
        assert abs(snr_db(x, out) - 7.25) < 1e-9


def test_noise_shorter_than_the_speech_is_tiled(speech, tmp_path):
    """A 300-sample noise under 1000 samples of speech repeats four times (1200 samples) and the excerpt
    start is drawn among the 201 positions that fit."""
    (noise,) = write_noises(tmp_path, 300)
    x = speech[:1000]
    rng = Scripted(0, 200, 10.0)
    added = channel.add_noise(x, rng, str(tmp_path)) - x
    assert rng.calls[1] == ("integers", 0, 201) and rng.calls[2] == ("uniform", 5, 20)  # the default SNR range
    tiled = np.concatenate([noise] * 4)[200:1200]
    np.testing.assert_allclose(added, tiled * (added[0] / tiled[0]), rtol=1e-9, atol=1e-15)
    assert abs(snr_db(x, x + added) - 10.0) < 1e-9


def test_noise_snr_covers_the_default_5_to_20_db_range(tmp_path):
    """With real seeded draws every SNR lies in [5, 20] dB and both ends are approached."""
    write_noises(tmp_path, 2000, 3000)
    x = np.sin(np.arange(1000) / 5).astype(np.float32)
    snrs = [snr_db(x, channel.add_noise(x, np.random.default_rng(s), str(tmp_path))) for s in range(300)]
    assert 5 - 1e-9 <= min(snrs) < 5.3 and 19.7 < max(snrs) <= 20 + 1e-9


def test_silent_noise_or_speech_leaves_the_speech_as_it_is(tmp_path):
    """Nothing to scale (silent noise) or nothing to scale against (silent speech): the speech is returned
    unchanged, never NaN; a clean signal of exactly unit energy is no special case."""
    sf.write(tmp_path / "silence.wav", np.zeros(2000, np.float32), SR, subtype="FLOAT")
    x = np.full(1024, 1 / 32, dtype=np.float32)  # energy exactly 1
    np.testing.assert_array_equal(channel.add_noise(x, np.random.default_rng(0), str(tmp_path)), x)
    noisy = tmp_path / "noisy"
    write_noises(noisy, 2000)
    silent = np.zeros(1000, np.float32)
    np.testing.assert_array_equal(channel.add_noise(silent, np.random.default_rng(0), str(noisy)), silent)
    out = channel.add_noise(x, Scripted(0, 0, 12.0), str(noisy))
    assert abs(snr_db(x, out) - 12.0) < 1e-9


def test_reverb_draws_its_room_from_the_folder(speech, tmp_path):
    """Each seed convolves with one of the folder's two rooms (aligned on that room's direct path); both are used."""
    rooms = []
    for name, direct, echo in (("a.wav", 50, 250), ("b.wav", 300, 400)):
        rir = np.zeros(600, np.float32)
        rir[direct], rir[echo] = 1.0, -0.5
        sf.write(tmp_path / name, rir, SR, subtype="FLOAT")
        r = rir.astype(np.float64) / np.sqrt(1.25)
        rooms.append(np.convolve(speech[:4000] * 0.5, r)[direct:direct + 4000])
    used = set()
    for seed in range(12):
        out = channel.reverb(speech[:4000] * 0.5, np.random.default_rng(seed), str(tmp_path))
        match = [i for i, room in enumerate(rooms) if np.allclose(out, room, atol=1e-6)]
        assert len(match) == 1
        used.update(match)
    assert used == {0, 1}


def test_loud_reverb_is_scaled_back_to_full_scale(tmp_path):
    """Two taps of unit energy (0.8, 0.6) on a 0.9 plateau peak at 0.9 x 1.4 = 1.26: the whole result is
    divided by its peak (1.26), not clipped and not left above full scale."""
    rir = np.zeros(500, np.float32)
    rir[100], rir[400] = 0.8, 0.6
    sf.write(tmp_path / "room.wav", rir, SR, subtype="FLOAT")
    x = np.full(2000, 0.9)
    expected = np.convolve(x, rir.astype(np.float64))[100:2100]
    assert expected.max() == pytest.approx(1.26)
    np.testing.assert_allclose(channel.reverb(x, np.random.default_rng(0), str(tmp_path)), expected / 1.26, atol=1e-6)
