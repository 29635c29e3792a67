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
    assert audio.audio_info(good).frames == 1600 and held == [True, True, True]  # headers read for the demo page, 01


# --- boundaries and exact figures (what mutation testing found unpinned) ----------------------------


def test_audio_error_rebuilt_from_a_worker_traceback_keeps_the_file_and_reason():
    """A DataLoader worker re-raises ``AudioError(text)``: path and reason come from the last
    'AudioError: ' line, split at its first ': ' (the reason may hold more, even 'AudioError: ')."""
    one = ("Caught AudioError in DataLoader worker process 0.\nOriginal Traceback (most recent call last):\n"
           '  File "/x/datasets.py", line 58, in __getitem__\n    raise AudioError(path, "cannot decode")\n'
           "xlsr_helpers.data.audio.AudioError: /d/a.flac: cannot decode (Error opening '/d/a.flac': Format not recognised.)\n")
    err = AudioError(one)
    assert (err.path, err.reason) == ("/d/a.flac", "cannot decode (Error opening '/d/a.flac': Format not recognised.)")
    assert str(err) == "/d/a.flac: cannot decode (Error opening '/d/a.flac': Format not recognised.)"
    chained = "\n".join(["xlsr_helpers.data.audio.AudioError: /d/a.flac: file not found",
                         "During handling of the above exception, another exception occurred:",
                         "xlsr_helpers.data.audio.AudioError: /d/b.flac: file not found",
                         "During handling of the above exception, another exception occurred:",
                         "xlsr_helpers.data.audio.AudioError: /d/c.flac: cannot decode (quoted AudioError: x: y)"])
    err = AudioError(chained)
    assert (err.path, err.reason) == ("/d/c.flac", "cannot decode (quoted AudioError: x: y)")
    err = AudioError("/d/a.flac: cannot decode (x: y)")  # the message alone (how pickle rebuilds it)
    assert (err.path, err.reason) == ("/d/a.flac", "cannot decode (x: y)")


def test_undecodable_and_all_nan_files_give_the_path_and_the_exact_reason(tmp_path):
    garbage = tmp_path / "garbage.flac"
    garbage.write_bytes(b"not audio at all")
    with pytest.raises(AudioError) as info:
        load_audio(garbage)
    assert info.value.path == str(garbage) and info.value.reason.startswith("cannot decode (")
    nan = tmp_path / "nan.wav"
    sf.write(nan, np.full(100, np.nan, np.float32), 16000, subtype="FLOAT")
    with pytest.raises(AudioError) as info:
        load_audio(nan)
    assert (info.value.path, info.value.reason) == (str(nan), "all samples are NaN/Inf")


def test_load_audio_resamples_to_the_rate_asked_for(tmp_path):
    sf.write(tmp_path / "a.wav", tone(16000, 1.0), 16000)
    assert load_audio(tmp_path / "a.wav", sample_rate=8000).size == 8000


def test_torchaudio_kernel_size_by_hand():
    """(new/g) x (orig/g + 2 ceil(6 orig/g / (min/g x 0.99))), as torchaudio's own kernel is shaped."""
    import torchaudio

    from xlsr_helpers.data.audio import torchaudio_kernel_size
    by_hand = {(48000, 16000): 1 * (3 + 2 * 19),  # g 16000; ceil(18 / 0.99) = 19
               (8000, 16000): 2 * (1 + 2 * 7),  # g 8000; ceil(6 / 0.99) = 7
               (22050, 16000): 320 * (441 + 2 * 9),  # g 50; ceil(2646 / 316.8) = 9
               (16000, 44100): 441 * (160 + 2 * 7)}  # g 100; ceil(960 / 158.4) = 7
    for (orig, new), size in by_hand.items():
        got = torchaudio_kernel_size(orig, new)
        assert type(got) is int and got == size == torchaudio.transforms.Resample(orig, new).kernel.numel()


def test_resample_leaves_torchaudio_only_strictly_above_the_kernel_limit(monkeypatch):
    """44.1 -> 16 kHz builds 160 x 475 = 76,000 elements: at a limit of 76,000 torchaudio runs (bit-exact),
    at 75,999 the chunked filter does, within 2e-6 of torchaudio in float64; a rate of 1 Hz is a rate."""
    import torch
    import torchaudio

    from xlsr_helpers.data import audio
    x = np.random.default_rng(0).normal(0, 0.3, 4410).astype(np.float32)
    ref = torchaudio.transforms.Resample(44100, 16000)(torch.from_numpy(x)).numpy()
    chunked = []
    real = audio.resample_chunked
    monkeypatch.setattr(audio, "resample_chunked", lambda *a: chunked.append(a[1:]) or real(*a))
    monkeypatch.setattr(audio, "KERNEL_LIMIT", 76_000)
    np.testing.assert_array_equal(audio.resample(x, 44100, 16000), ref)
    assert chunked == []
    monkeypatch.setattr(audio, "KERNEL_LIMIT", 75_999)
    ref64 = torchaudio.functional.resample(torch.from_numpy(x).double(), 44100, 16000).numpy()
    np.testing.assert_allclose(audio.resample(x, 44100, 16000), ref64, rtol=0, atol=2e-6)
    assert chunked == [(44100, 16000)]
    assert audio.resample(x, 1, 1) is x


def test_chunked_resampler_reads_float64_as_float32_and_warns_nothing():
    """The chunked path works on float32 samples whatever the input; the sinc's 0/0 tap is set, not
    divided (no 'invalid value' warning on every file)."""
    import warnings

    from xlsr_helpers.data.audio import resample_chunked
    x = np.random.default_rng(1).normal(0, 0.3, 3001).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = resample_chunked(x, 22050, 16000)
    np.testing.assert_array_equal(resample_chunked(x.astype(np.float64), 22050, 16000), got)


def test_fix_length_exact_messages_dtypes_and_views():
    """Both pads give float32; a crop (or an exact length) of float32 audio is a view, not a copy."""
    w = np.arange(10, dtype=np.float32)
    with pytest.raises(ValueError, match=r"^cannot fix the length of an empty waveform$"):
        fix_length(np.zeros(0, np.float32), 4)
    with pytest.raises(ValueError, match=r"^crop='random' needs an rng \(np\.random\.default_rng\(seed\)\)$"):
        fix_length(w, 4, crop="random")
    assert fix_length(w, 25, pad="repeat").dtype == np.float32 and fix_length(w, 25, pad="zero").dtype == np.float32
    for n in (4, 10):
        out = fix_length(w, n)
        np.testing.assert_array_equal(out, w[:n])
        assert out.dtype == np.float32 and np.shares_memory(out, w)
    same = fix_length(w.astype(np.float64), 10, crop="random")  # nothing to draw: no rng needed
    assert same.dtype == np.float32 and np.array_equal(same, w)


def test_window_starts_boundaries():
    """Regular starts every hop while a window fits; one more flush with the end only if they stop short."""
    assert window_starts(200, 100, 50) == [0, 50, 100]  # n = window + 2 hops: the last is already flush
    assert window_starts(201, 100, 50) == [0, 50, 100, 101]
    assert window_starts(149, 100, 50) == [0, 49]  # 50 + 100 would pass the end
    assert window_starts(101, 100, 50) == [0, 1]
    assert window_starts(99, 100, 50) == [0]


def test_audio_stats_of_empty_input_and_exact_figures():
    """Empty: all zeros, no warning; peak is the largest magnitude; RMS accumulates in float64."""
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert audio_stats(np.zeros(0, np.float32)) == {"duration_s": 0.0, "peak": 0.0, "rms": 0.0,
                                                        "silent": True, "clipped": False}
    s = audio_stats(np.array([0.25, -0.5], np.float32), 8)
    assert (s["duration_s"], s["peak"]) == (0.25, 0.5) and s["rms"] == pytest.approx(np.sqrt(0.15625), rel=1e-12)
    assert audio_stats(np.full(4, 1e20, np.float32))["rms"] == pytest.approx(1e20, rel=1e-6)  # square overflows float32


def test_silent_and_clipped_thresholds_are_strict():
    """silent: rms < 1e-4; at full scale: |x| >= CLIP_LEVEL; clipped: that share > CLIP_SHARE (1 in 1000 is not)."""
    from xlsr_helpers.data.audio import CLIP_LEVEL
    assert not audio_stats(np.full(4, 1e-4))["silent"]  # rms exactly 1e-4
    assert audio_stats(np.full(4, np.nextafter(1e-4, 0)))["silent"]
    x = np.zeros(1000)
    x[0] = CLIP_LEVEL
    assert not audio_stats(x)["clipped"]  # share exactly 1e-3
    x[1] = -CLIP_LEVEL
    assert audio_stats(x)["clipped"]
    x[:2] = np.nextafter(CLIP_LEVEL, 0)
    assert not audio_stats(x)["clipped"]


def test_check_file_rows_and_the_short_boundary(tmp_path):
    """Every row has the CHECK_COLUMNS keys; 0.5 s (the default) exactly is not short."""
    from xlsr_helpers.data.audio import CHECK_COLUMNS, check_file

    def write(name, x):
        sf.write(tmp_path / name, x, 16000, subtype="FLOAT")
        return str(tmp_path / name)
    row = check_file(write("ok.wav", tone(16000, 1.0)))  # 440 whole periods: rms 0.5 / sqrt 2
    assert list(row) == CHECK_COLUMNS and row["path"] == str(tmp_path / "ok.wav") and row["problem"] == ""
    assert (row["duration_s"], row["peak"]) == (1.0, pytest.approx(0.5)) and row["rms"] == pytest.approx(0.5 / np.sqrt(2))
    assert check_file(write("half.wav", tone(16000, 0.5)))["problem"] == ""
    assert check_file(write("quarter.wav", tone(16000, 0.25)))["problem"] == "short (< 0.5 s)"
    assert check_file(write("square.wav", np.sign(tone(16000, 1.0) + 1e-3)))["problem"] == "clipped"
    row = check_file(tmp_path / "missing.wav")
    assert list(row) == CHECK_COLUMNS and row["path"] == str(tmp_path / "missing.wav")
    assert row["problem"] == "unreadable: file not found" and all(np.isnan(row[k]) for k in ("duration_s", "rms", "peak"))


def test_check_files_frame_and_flagged_csv(tmp_path, monkeypatch):
    """The frame has CHECK_COLUMNS and a 0..n-1 index across chunks; the CSV has its header once, no
    index column, and only the flagged files with their utt_id; no files: a header-only CSV."""
    from xlsr_helpers.data import audio
    monkeypatch.setattr(audio, "CHECK_CHUNK", 2)
    sf.write(tmp_path / "ok.wav", tone(16000, 1.0), 16000)
    sf.write(tmp_path / "quiet.wav", np.zeros(16000, np.float32), 16000)
    paths = [str(tmp_path / n) for n in ("ok.wav", "quiet.wav", "missing.wav")]
    report = audio.check_files(paths, flagged_csv=tmp_path / "f.csv", ids=["u0", "u1", "u2"])
    assert report.columns.tolist() == audio.CHECK_COLUMNS and report.index.tolist() == [0, 1, 2]
    assert report.problem.tolist() == ["", "silent", "unreadable: file not found"]
    lines = (tmp_path / "f.csv").read_text().splitlines()
    assert lines[0] == "path,duration_s,rms,peak,problem,utt_id" and len(lines) == 3
    assert [ln.split(",") for ln in lines[1:]] == [[paths[1], "1.0", "0.0", "0.0", "silent", "u1"],
                                                   [paths[2], "", "", "", "unreadable: file not found", "u2"]]
    empty = audio.check_files([], flagged_csv=tmp_path / "e.csv")
    assert empty.empty and empty.columns.tolist() == audio.CHECK_COLUMNS
    assert (tmp_path / "e.csv").read_text().splitlines() == ["path,duration_s,rms,peak,problem,utt_id"]


def test_a_file_without_samples_is_refused_and_a_one_sample_file_is_read(tmp_path):
    """Zero frames (a header only): "empty audio"; one frame is audio (too short for the model is decided later)."""
    empty, one = tmp_path / "empty.wav", tmp_path / "one.wav"
    sf.write(empty, np.zeros(0, dtype=np.float32), 16000)
    sf.write(one, np.full(1, 0.25, dtype=np.float32), 16000, subtype="FLOAT")
    with pytest.raises(AudioError) as info:
        load_audio(empty)
    assert info.value.reason == "empty audio (0 samples)" and info.value.path == str(empty)
    assert load_audio(one).tolist() == [0.25]
