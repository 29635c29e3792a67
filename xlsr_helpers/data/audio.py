"""Audio loading exactly as the model sees it: mono, 16 kHz, float32, fixed-length segments.

Decoding uses ``soundfile`` (FLAC/WAV/OGG) because ``torchaudio.load`` now needs
torchcodec/FFmpeg. Resampling is torchaudio's windowed sinc (Hann window, 6 zero crossings,
rolloff 0.99): through ``torchaudio`` with one cached kernel per rate pair where that kernel is
small (every common rate), and otherwise the same filter evaluated tap by tap in bounded chunks
(coprime pairs such as 44,101 -> 16,000 Hz would need a multi-gigabyte torchaudio kernel).
"""

from __future__ import annotations

import math
import threading
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from numbers import Real
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
import torch
import torchaudio

from xlsr_helpers.core.errors import ConfigError, XlsrError, failure_reason

SAMPLE_RATE = 16_000
SEGMENT_SAMPLES = 80_000  # 5 s at 16 kHz
MIN_SAMPLES = 400  # the wav2vec2 CNN's receptive field (25 ms): shorter input yields no frame at all
MAX_SEGMENT_SECONDS = 60  # longest training segment or scoring window: far beyond the reference systems' 4 s
PAD_MODES = ("repeat", "zero")
CROP_MODES = ("start", "center", "random")
# Accepted file sample rates: below 4 kHz nothing of speech above 2 kHz is left (and every input
# sample becomes 4+ output samples); above 384 kHz no recording equipment writes audio.
MIN_RATE, MAX_RATE = 4_000, 384_000
LOWPASS_WIDTH, ROLLOFF = 6, 0.99  # torchaudio's resampling defaults, kept by both paths
KERNEL_LIMIT = 1 << 20  # torchaudio kernel elements above which the chunked path runs (about 40 MB while built)
CHUNK_ELEMENTS = 1 << 20  # output samples x filter taps per chunk of the chunked path (8 MB per float64 array)
# libsndfile keeps the reason a file failed to open in one process-wide slot, which another
# thread's open resets: soundfile < 0.14 then reports "(Garbled error message from libsndfile)".
# Opens (header reads only) take this lock so a file's error message never depends on its batch.
_OPEN_LOCK = threading.Lock()


class AudioError(XlsrError, RuntimeError):
    """An audio file that cannot be used, with the file and the reason."""

    def __init__(self, path: str | Path, reason: str | None = None):
        if reason is None:  # re-raised from a DataLoader worker with the worker's whole traceback as text
            last = [ln for ln in str(path).splitlines() if "AudioError: " in ln]
            path, _, reason = (last[-1].split("AudioError: ", 1)[1] if last else str(path)).partition(": ")
        self.path, self.reason = str(path), reason
        super().__init__(f"{path}: {reason}")


@lru_cache(maxsize=16)
def _resampler(orig_sr: int, new_sr: int) -> torchaudio.transforms.Resample:
    # The windowed-sinc kernel is built once per rate pair instead of on every file.
    return torchaudio.transforms.Resample(orig_sr, new_sr)


def torchaudio_kernel_size(orig_sr: int, new_sr: int) -> int:
    """Elements of the kernel ``torchaudio`` builds for this pair: (new/gcd) x (orig/gcd + 2 x width)."""
    g = math.gcd(orig_sr, new_sr)
    o, n = orig_sr // g, new_sr // g
    width = math.ceil(LOWPASS_WIDTH * o / (min(o, n) * ROLLOFF))
    return n * (o + 2 * width)


def resample(wave: np.ndarray, orig_sr: int, new_sr: int = SAMPLE_RATE) -> np.ndarray:
    """Resample a 1-D float32 waveform (no-op when the rates match), in bounded memory for any pair."""
    if not all(isinstance(r, Real) and r > 0 and float(r).is_integer() for r in (orig_sr, new_sr)):
        raise ConfigError(f"sample rates must be positive whole numbers, got {orig_sr!r} -> {new_sr!r}")
    orig_sr, new_sr = int(orig_sr), int(new_sr)
    if orig_sr == new_sr:
        return wave
    if torchaudio_kernel_size(orig_sr, new_sr) > KERNEL_LIMIT:
        return resample_chunked(wave, orig_sr, new_sr)
    with torch.no_grad():
        out = _resampler(orig_sr, new_sr)(torch.from_numpy(np.ascontiguousarray(wave)))
    return out.numpy()


def resample_chunked(wave: np.ndarray, orig_sr: int, new_sr: int) -> np.ndarray:
    """torchaudio's filter evaluated directly: output ``m`` sits at input position ``m * orig / new``
    and sums the input within ``LOWPASS_WIDTH`` zero crossings of it. Memory: ``CHUNK_ELEMENTS``
    per step; time: output samples x taps (taps about 12 x max(1, orig / new))."""
    base = min(orig_sr, new_sr) * ROLLOFF  # the lowpass cutoff x 2, in Hz
    reach = math.ceil(LOWPASS_WIDTH * orig_sr / base)  # input samples either side of an output
    offsets = np.arange(-reach, reach + 2)  # relative to floor(position); the filter is 0 beyond
    n_out = -(-new_sr * wave.size // orig_sr)  # ceil, as torchaudio cuts its output
    padded = np.pad(np.asarray(wave, dtype=np.float32), (reach + 1, reach + 2))
    out = np.empty(n_out, dtype=np.float32)
    step = max(1, CHUNK_ELEMENTS // offsets.size)
    for start in range(0, n_out, step):
        m = np.arange(start, min(start + step, n_out), dtype=np.int64)
        whole, part = np.divmod(m * orig_sr, new_sr)  # exact integers: no drift on long files
        # radians of the sinc at each tap, from the output's exact position (float64: the fraction matters)
        x = (offsets[None, :] - part[:, None] / new_sr) * (np.pi * base / orig_sr)
        taps = _hann_sinc(np.clip(x, -np.pi * LOWPASS_WIDTH, np.pi * LOWPASS_WIDTH).astype(np.float32))
        out[m] = np.einsum("ij,ij->i", padded[whole[:, None] + offsets[None, :] + reach + 1], taps) * (base / orig_sr)
    return out


def _hann_sinc(x: np.ndarray) -> np.ndarray:
    """sin(x)/x under a Hann window reaching zero at +-pi x LOWPASS_WIDTH (float32 trig: 7x faster)."""
    taps = np.sin(x)
    np.divide(taps, x, out=taps, where=x != 0)
    taps[x == 0] = 1.0
    window = np.cos(x * (1 / (2 * LOWPASS_WIDTH)))
    return taps * window * window


def audio_info(path: str | Path):
    """The file's header (``soundfile.info``: rate, frames, duration), opened under ``_OPEN_LOCK``."""
    with _OPEN_LOCK:
        return sf.info(str(path))


def _decode(path: str | Path) -> tuple[np.ndarray, int]:
    """Samples (frames x channels) and rate; a rate outside ``MIN_RATE``..``MAX_RATE`` is refused
    from the header, before any sample is read (a damaged header, not audio)."""
    try:
        with _OPEN_LOCK:
            opened = sf.SoundFile(str(path))
        with opened as f:
            sr = f.samplerate
            if MIN_RATE <= sr <= MAX_RATE:
                return f.read(dtype="float32", always_2d=True), sr
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise AudioError(path, f"cannot decode ({exc})") from None
    raise AudioError(path, f"sample rate {sr:,} Hz is outside the accepted {MIN_RATE:,}-{MAX_RATE:,} Hz "
                           "(a damaged or mislabelled header?)")


def load_audio(path: str | Path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Read a file, mix to mono, resample to ``sample_rate``; raise ``AudioError`` if unusable."""
    if not Path(path).is_file():
        raise AudioError(path, "file not found")
    data, sr = _decode(path)
    if data.size == 0:
        raise AudioError(path, "empty audio (0 samples)")
    wave = data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else data[:, 0]
    bad = ~np.isfinite(wave)
    if bad.all():
        raise AudioError(path, "all samples are NaN/Inf")
    if bad.any():
        raise AudioError(path, f"{int(bad.sum())} of {wave.size} samples are NaN/Inf")
    return np.ascontiguousarray(resample(wave, sr, sample_rate), dtype=np.float32)


def fix_length(wave: np.ndarray, n_samples: int = SEGMENT_SAMPLES, pad: str = "repeat",
               crop: str = "start", rng: np.random.Generator | None = None) -> np.ndarray:
    """Cut or pad a waveform to exactly ``n_samples``.

    ``pad='repeat'`` tiles short audio (the SSL_Anti-spoofing/AASIST convention),
    ``'zero'`` appends silence. ``crop`` picks the window of long audio; ``'random'``
    needs ``rng`` so that training crops are reproducible from a seed.
    """
    if pad not in PAD_MODES:
        raise ConfigError(f"pad must be one of {PAD_MODES}, got {pad!r}")
    if crop not in CROP_MODES:
        raise ConfigError(f"crop must be one of {CROP_MODES}, got {crop!r}")
    if wave.size == 0:
        raise ValueError("cannot fix the length of an empty waveform")
    n = wave.shape[0]
    if n >= n_samples:
        if crop == "start" or n == n_samples:
            start = 0
        elif crop == "center":
            start = (n - n_samples) // 2
        else:
            if rng is None:
                raise ValueError("crop='random' needs an rng (np.random.default_rng(seed))")
            start = int(rng.integers(0, n - n_samples + 1))
        return wave[start:start + n_samples].astype(np.float32, copy=False)
    if pad == "repeat":
        return np.tile(wave, -(-n_samples // n))[:n_samples].astype(np.float32, copy=False)
    return np.pad(wave, (0, n_samples - n)).astype(np.float32, copy=False)


def window_starts(n: int, window: int, hop: int) -> list[int]:
    """Start offsets of sliding windows that cover all ``n`` samples (last one flush with the end)."""
    if n <= window:
        return [0]
    starts = list(range(0, n - window + 1, hop))
    if starts[-1] + window < n:
        starts.append(n - window)
    return starts


CLIP_LEVEL = 0.999
CLIP_SHARE = 1e-3  # peak-normalised corpora (ASVspoof) touch full scale once; clipped audio sits there


def audio_stats(wave: np.ndarray, sample_rate: int = SAMPLE_RATE) -> dict:
    """Duration and loudness figures that validation reports (silence, clipping)."""
    mag = np.abs(wave)
    peak = float(mag.max()) if wave.size else 0.0
    rms = float(np.sqrt(np.mean(np.square(wave, dtype=np.float64)))) if wave.size else 0.0
    at_full_scale = float(np.mean(mag >= CLIP_LEVEL)) if wave.size else 0.0
    return {"duration_s": wave.size / sample_rate, "peak": peak, "rms": rms,
            "silent": rms < 1e-4, "clipped": at_full_scale > CLIP_SHARE}


def check_file(path: str | Path, min_seconds: float = 0.5) -> dict:
    """Decode one file and say what is wrong with it ('' when nothing); any failure is its own row."""
    try:
        stats = audio_stats(load_audio(path))
    except Exception as exc:  # noqa: BLE001 - one file's failure, whatever it is, must not end the check
        return {"path": str(path), "duration_s": float("nan"), "rms": float("nan"), "peak": float("nan"),
                "problem": f"unreadable: {failure_reason(exc)}"}
    problem = ("silent" if stats["silent"] else f"short (< {min_seconds:g} s)" if stats["duration_s"] < min_seconds
               else "clipped" if stats["clipped"] else "")
    return {"path": str(path), "duration_s": stats["duration_s"], "rms": stats["rms"], "peak": stats["peak"],
            "problem": problem}


CHECK_COLUMNS = ["path", "duration_s", "rms", "peak", "problem"]
CHECK_CHUNK = 256  # files per step of the check: what a killed process can lose at most


def check_files(paths: list[str], min_seconds: float = 0.5, workers: int = 4, flagged_csv: str | Path | None = None,
                ids: list[str] | None = None):
    """``check_file`` over many files in threads (decoding releases the GIL); one row per file.

    With ``flagged_csv``, the flagged rows (with their ``ids`` as ``utt_id``) are appended to it
    every ``CHECK_CHUNK`` files, so a check that is stopped keeps what it found."""
    ids = list(ids) if ids is not None else [Path(p).stem for p in paths]
    if flagged_csv is not None:
        pd.DataFrame(columns=[*CHECK_COLUMNS, "utt_id"]).to_csv(flagged_csv, index=False)
    parts = []
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for start in range(0, len(paths), CHECK_CHUNK):
            part = pd.DataFrame(list(pool.map(lambda p: check_file(p, min_seconds), paths[start:start + CHECK_CHUNK])),
                                columns=CHECK_COLUMNS)
            if flagged_csv is not None:
                flagged = part.assign(utt_id=ids[start:start + CHECK_CHUNK])[part.problem != ""]
                flagged.to_csv(flagged_csv, mode="a", header=False, index=False)
            parts.append(part)
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=CHECK_COLUMNS)
