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
