from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from xlsr_helpers.data.audio import AudioError, audio_stats, fix_length, load_audio, window_starts


def tone(sr, seconds=0.5, f=440.0):
    t = np.arange(int(sr * seconds)) / sr
    return (0.5 * np.sin(2 * np.pi * f * t)).astype(np.float32)


@pytest.mark.parametrize("fmt,ext", [("FLAC", "flac"), ("WAV", "wav"), ("OGG", "ogg")])
def test_load_formats_at_16k(tmp_path, fmt, ext):
    p = tmp_path / f"a.{ext}"
    sf.write(p, tone(16000), 16000, format=fmt)
    w = load_audio(p)
    assert w.dtype == np.float32 and w.ndim == 1 and abs(w.size - 8000) <= 1
    if fmt != "OGG":  # lossless formats round-trip
        np.testing.assert_allclose(w, tone(16000), atol=1e-4)


@pytest.mark.parametrize("sr", [8000, 22050, 44100])
def test_resample_to_16k_keeps_duration_and_pitch(tmp_path, sr):
    p = tmp_path / "a.wav"
    sf.write(p, tone(sr, 1.0), sr)
    w = load_audio(p)
    assert w.size == 16000
    spectrum = np.abs(np.fft.rfft(w))
    assert abs(np.argmax(spectrum) - 440) <= 1  # 1 Hz bins for 1 s at 16 kHz


def test_stereo_is_mixed_to_mono(tmp_path):
    left, right = tone(16000), np.zeros(8000, np.float32)
    sf.write(tmp_path / "s.wav", np.stack([left, right], 1), 16000, subtype="FLOAT")
    np.testing.assert_allclose(load_audio(tmp_path / "s.wav"), left / 2, atol=1e-6)


def test_bad_files_raise_audio_error_naming_the_file(tmp_path):
    garbage = tmp_path / "garbage.flac"
    garbage.write_bytes(b"not audio at all")
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0, np.float32), 16000)
    nan = tmp_path / "nan.wav"
    sf.write(nan, np.full(100, np.nan, np.float32), 16000, subtype="FLOAT")
    part = tmp_path / "part.wav"
    x = tone(16000)
    x[10] = np.inf
    sf.write(part, x, 16000, subtype="FLOAT")
    for path, reason in [(tmp_path / "missing.wav", "not found"), (garbage, "cannot decode"),
                         (empty, "empty"), (nan, "all samples are NaN"), (part, "1 of 8000 samples")]:
        with pytest.raises(AudioError, match=reason) as info:
            load_audio(path)
        assert str(path) in str(info.value)


def test_silent_audio_loads_and_is_reported(tmp_path):
    sf.write(tmp_path / "quiet.wav", np.zeros(1600, np.float32), 16000)
    stats = audio_stats(load_audio(tmp_path / "quiet.wav"))
    assert stats["silent"] and stats["duration_s"] == pytest.approx(0.1)


def test_fix_length_pad_and_crop_modes():
    w = np.arange(10, dtype=np.float32)
    np.testing.assert_array_equal(fix_length(w, 25, pad="repeat")[:21], np.tile(w, 3)[:21])
    z = fix_length(w, 25, pad="zero")
    assert z.size == 25 and z[10:].sum() == 0
    np.testing.assert_array_equal(fix_length(w, 4, crop="start"), [0, 1, 2, 3])
    np.testing.assert_array_equal(fix_length(w, 4, crop="center"), [3, 4, 5, 6])
    a = fix_length(w, 4, crop="random", rng=np.random.default_rng(1))
    b = fix_length(w, 4, crop="random", rng=np.random.default_rng(1))
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.float32
    with pytest.raises(ValueError, match="rng"):
        fix_length(w, 4, crop="random")
    with pytest.raises(ValueError, match="pad"):
        fix_length(w, 40, pad="reflect")


def test_window_starts_cover_the_whole_file():
    assert window_starts(100, 100, 50) == [0]
    assert window_starts(230, 100, 50) == [0, 50, 100, 130]


def test_clipping_means_many_samples_at_full_scale_not_a_normalised_peak():
    x = 0.3 * np.sin(np.linspace(0, 200, 16000)).astype(np.float32)
    x[100] = 1.0  # peak-normalised speech touches full scale once (every ASVspoof 2019 file does)
    assert not audio_stats(x)["clipped"]
    assert audio_stats(np.clip(5 * x, -1, 1))["clipped"]  # a 1.5x overdriven sine


# --- resampling any rate in bounded memory ---------------------------------------------------------

COMMON_RATES = [8000, 11025, 22050, 24000, 32000, 44100, 48000]


@pytest.mark.parametrize("sr", COMMON_RATES)
def test_common_rates_resample_exactly_as_torchaudio(sr):
    """The usual rates keep torchaudio's kernel: bit-identical to a fresh ``torchaudio.transforms.Resample``."""
    import torch
    import torchaudio

    from xlsr_helpers.data.audio import resample
    x = np.random.default_rng(sr).normal(0, 0.3, sr // 3 + 7).astype(np.float32)
    np.testing.assert_array_equal(resample(x, sr, 16000), torchaudio.transforms.Resample(sr, 16000)(torch.from_numpy(x)))


@pytest.mark.parametrize("orig,new", [(22050, 16000), (11025, 16000), (1601, 1600), (997, 1000), (16000, 44100),
                                      (8000, 16000), (48000, 16000)])
def test_chunked_resampler_is_torchaudios_filter(orig, new, monkeypatch):
    """The chunked path evaluates torchaudio's windowed sinc: torchaudio in float64 is the reference
    (pairs small enough for both; 2e-6 bounds the float32 rounding of the taps, 2.4e-7 measured),
    the lengths are equal, and chunks of one output change nothing."""
    import torch
    import torchaudio

    from xlsr_helpers.data import audio
    x = np.random.default_rng(orig + new).normal(0, 0.3, 5003).astype(np.float32)
    ref = torchaudio.functional.resample(torch.from_numpy(x).double(), orig, new).numpy()
    got = audio.resample_chunked(x, orig, new)
    assert got.dtype == np.float32 and got.shape == ref.shape
    np.testing.assert_allclose(got, ref, rtol=0, atol=2e-6)
    monkeypatch.setattr(audio, "CHUNK_ELEMENTS", 1)  # one output per step: chunk edges change nothing
    np.testing.assert_allclose(audio.resample_chunked(x, orig, new), got, rtol=0, atol=1e-7)


def test_only_rate_pairs_with_a_huge_kernel_leave_torchaudio(monkeypatch):
    """torchaudio's kernel is (new/gcd) x (orig/gcd + 2 width): 16000 x 44135 floats for 44,101 Hz."""
    from xlsr_helpers.data import audio
    assert audio.torchaudio_kernel_size(44101, 16000) == 16000 * (44101 + 2 * 17)  # width ceil(6 x 44101 / 15840)
    assert audio.torchaudio_kernel_size(44100, 16000) == 160 * (441 + 2 * 17)  # gcd 100
    assert audio.torchaudio_kernel_size(8001, 16000) == 16000 * (8001 + 2 * 7)
    built = []
    monkeypatch.setattr(audio, "_resampler", lambda o, n: built.append((o, n)) or (lambda t: t))
    x = tone(8001, 0.1)
    for odd in (8001, 44101, 11127, 383999):  # coprime with 16 kHz: multi-gigabyte kernels
        assert audio.resample(x, odd, 16000).size == -(-16000 * x.size // odd)
    assert built == []
    audio.resample(x, 44100, 16000)
    assert built == [(44100, 16000)]


def peak_hz(w, sr=16000):
    """The tone's frequency from the spectrum's peak, refined by a parabola through its bin and neighbours."""
    spec = np.abs(np.fft.rfft(w * np.hanning(w.size)))
    k = int(np.argmax(spec))
    a, b, c = np.log(spec[k - 1:k + 2])
    return (k + 0.5 * (a - c) / (a - 2 * b + c)) * sr / w.size


@pytest.mark.parametrize("sr", [4000, 8001, 11127, 44101, 96001, 384000])
def test_odd_and_extreme_rates_keep_pitch_amplitude_and_duration(tmp_path, sr):
    """A 0.5-amplitude sine written at the file's rate comes out at 16 kHz with its frequency,
    its RMS (0.5 / sqrt 2) and the file's duration, for the accepted extremes and rates 1 Hz off."""
    f = 1234.5  # below the 2 kHz Nyquist of the lowest accepted rate
    p = tmp_path / "a.wav"
    sf.write(p, tone(sr, 1.0, f), sr, subtype="FLOAT")
    w = load_audio(p)
    assert w.size == 16000  # 1 s
    assert peak_hz(w) == pytest.approx(f, abs=0.5)
    middle = w[800:-800]  # the edges taper where the file starts and ends
    assert np.sqrt(np.mean(middle.astype(np.float64) ** 2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.01)


@pytest.mark.parametrize("sr", [1, 100, 3000, 400_000, 1_000_000])  # cheap before the fix too: small gcd kernels
def test_absurd_sample_rates_are_refused_naming_the_file_and_the_range(tmp_path, sr):
    p = tmp_path / f"r{sr}.wav"
    sf.write(p, np.zeros(64, np.float32), sr)
    with pytest.raises(AudioError) as info:
        load_audio(p)
    assert info.value.path == str(p)
    assert info.value.reason == (f"sample rate {sr:,} Hz is outside the accepted 4,000-384,000 Hz "
                                 "(a damaged or mislabelled header?)")


def test_resample_refuses_rates_that_are_not_positive_whole_numbers():
    from xlsr_helpers.core.errors import ConfigError
    from xlsr_helpers.data.audio import resample
    x = tone(16000, 0.01)
    for orig, new in [(0, 16000), (-8000, 16000), (16000, 0), (22050.5, 16000), ("16000", 16000)]:
        with pytest.raises(ConfigError, match="sample rates must be positive whole numbers"):
            resample(x, orig, new)
    np.testing.assert_array_equal(resample(x, 16000.0, 16000), x)  # a whole float is a rate


def test_one_file_failing_unexpectedly_is_its_own_row_in_the_check(tmp_path, monkeypatch):
    """Not only AudioError: whatever one file raises becomes that file's 'unreadable' row."""
    from xlsr_helpers.data import audio
    good = [tmp_path / f"g{i}.wav" for i in range(3)]
    for g in good:
        sf.write(g, tone(16000, 1.0), 16000)
    real = audio.load_audio

    def flaky(path, *a, **k):
        if Path(path).name == "g1.wav":
            raise ValueError("a decoder bug\nover two lines")
        return real(path, *a, **k)
    monkeypatch.setattr(audio, "load_audio", flaky)
    report = audio.check_files([str(g) for g in good], workers=2)
    assert report.problem.tolist() == ["", "unreadable: unexpected ValueError: a decoder bug over two lines", ""]
    assert report.duration_s.tolist()[::2] == [1.0, 1.0] and np.isnan(report.duration_s[1])


def test_a_stopped_check_keeps_the_flagged_rows_it_finished(tmp_path, monkeypatch):
    """Flagged rows are appended every CHECK_CHUNK files: a check stopped in the third chunk has the first two's."""
    import pandas as pd

    from xlsr_helpers.data import audio
    from xlsr_helpers.data.manifest import check_audio
    paths = []
    for i in range(6):
        paths.append(tmp_path / f"s{i}.wav")
        sf.write(paths[-1], np.zeros(16000, np.float32), 16000)  # silent: every file is flagged
    monkeypatch.setattr(audio, "CHECK_CHUNK", 2)
    real = audio.check_file

    def stop_at_s4(path, min_seconds):
        if path.endswith("s4.wav"):
            raise KeyboardInterrupt  # not one file's error: the whole check stops here
        return real(path, min_seconds)
    monkeypatch.setattr(audio, "check_file", stop_at_s4)
    df = pd.DataFrame({"utt_id": [f"u{i}" for i in range(6)], "path": [str(p) for p in paths]})
    with pytest.raises(KeyboardInterrupt):
        check_audio({"dev": df}, tmp_path)
    kept = pd.read_csv(tmp_path / "audio_check_dev.csv")
    assert kept.utt_id.tolist() == ["u0", "u1", "u2", "u3"] and set(kept.problem) == {"silent"}
    assert kept.columns.tolist() == ["path", "duration_s", "rms", "peak", "problem", "utt_id"]


def test_a_random_crop_reaches_every_offset_and_only_those():
    """Ten samples cut to four: seven windows (offsets 0-6), each drawn about equally often; every
    crop is a contiguous window of the input, never past its end."""
    w = np.arange(10, dtype=np.float32)
    rng = np.random.default_rng(0)
    offsets = []
    for _ in range(3500):
        crop = fix_length(w, 4, crop="random", rng=rng)
        assert crop.size == 4 and np.array_equal(np.diff(crop), [1, 1, 1])
        offsets.append(int(crop[0]))
    counts = np.bincount(offsets, minlength=7)
    assert counts.size == 7 and counts.min() > 400  # 500 expected each; 400 is 4.8 sd below
    long = fix_length(np.arange(100, dtype=np.float32), 100, crop="random", rng=rng)  # nothing to choose
    np.testing.assert_array_equal(long, np.arange(100))


def test_center_crop_and_padding_arithmetic():
    w = np.arange(11, dtype=np.float32)
    np.testing.assert_array_equal(fix_length(w, 4, crop="center"), [3, 4, 5, 6])  # (11 - 4) // 2 = 3
    np.testing.assert_array_equal(fix_length(w, 11, crop="center"), w)
    np.testing.assert_array_equal(fix_length(w[:3], 8, pad="repeat"), [0, 1, 2, 0, 1, 2, 0, 1])
    np.testing.assert_array_equal(fix_length(w[:3], 5, pad="zero"), [0, 1, 2, 0, 0])
    assert fix_length(w.astype(np.float64), 4).dtype == np.float32
    with pytest.raises(ValueError, match="crop"):
        fix_length(w, 4, crop="middle")
    with pytest.raises(ValueError, match="empty"):
        fix_length(np.zeros(0, np.float32), 4)


def test_a_broken_file_reads_the_same_reason_when_opened_alongside_good_files(tmp_path, monkeypatch):
    """libsndfile keeps the last open error in one process-wide slot; with threads loading a batch,
    soundfile < 0.14 read it back as "(Garbled error message from libsndfile)". Opens are serialised."""
    from concurrent.futures import ThreadPoolExecutor

    import xlsr_helpers.data.audio as audio
    good, bad = tmp_path / "good.flac", tmp_path / "bad.flac"
    sf.write(good, tone(16000, 0.1), 16000)
    bad.write_bytes(b"junk")

    def reason(p):
        try:
            load_audio(p)
            return ""
        except AudioError as exc:
            return exc.reason

    alone = reason(bad)
    assert "Format not recognised" in alone
    with ThreadPoolExecutor(8) as pool:
        reasons = set(pool.map(reason, [good, bad] * 500))
    assert reasons == {"", alone}
    # the property itself, whatever soundfile version is installed: every open holds the lock
    real = sf.SoundFile
    held = []
    monkeypatch.setattr(audio.sf, "SoundFile", lambda *a, **k: (held.append(audio._OPEN_LOCK.locked()), real(*a, **k))[1])
    load_audio(good)
    assert reason(bad) == alone and held == [True, True]
