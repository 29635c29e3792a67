"""Audio loading exactly as the model sees it: mono, 16 kHz, float32, fixed-length segments.

Decoding uses ``soundfile`` (FLAC/WAV/OGG) because ``torchaudio.load`` now needs
torchcodec/FFmpeg; resampling uses ``torchaudio`` with one cached kernel per rate pair.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio

from xlsr_helpers.core.errors import ConfigError, XlsrError

SAMPLE_RATE = 16_000
SEGMENT_SAMPLES = 80_000  # 5 s at 16 kHz
MIN_SAMPLES = 400  # the wav2vec2 CNN's receptive field (25 ms): shorter input yields no frame at all
MAX_SEGMENT_SECONDS = 60  # longest training segment or scoring window: far beyond the reference systems' 4 s
PAD_MODES = ("repeat", "zero")
CROP_MODES = ("start", "center", "random")


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


def resample(wave: np.ndarray, orig_sr: int, new_sr: int = SAMPLE_RATE) -> np.ndarray:
    """Resample a 1-D float32 waveform (no-op when the rates match)."""
    if orig_sr == new_sr:
        return wave
    with torch.no_grad():
        out = _resampler(int(orig_sr), int(new_sr))(torch.from_numpy(np.ascontiguousarray(wave)))
    return out.numpy()


def load_audio(path: str | Path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Read a file, mix to mono, resample to ``sample_rate``; raise ``AudioError`` if unusable."""
    if not Path(path).is_file():
        raise AudioError(path, "file not found")
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise AudioError(path, f"cannot decode ({exc})") from None
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
    """Decode one file and say what is wrong with it ('' when nothing)."""
    try:
        stats = audio_stats(load_audio(path))
    except AudioError as exc:
        return {"path": str(path), "duration_s": float("nan"), "rms": float("nan"), "peak": float("nan"),
                "problem": f"unreadable: {exc.reason}"}
    problem = ("silent" if stats["silent"] else f"short (< {min_seconds:g} s)" if stats["duration_s"] < min_seconds
               else "clipped" if stats["clipped"] else "")
    return {"path": str(path), "duration_s": stats["duration_s"], "rms": stats["rms"], "peak": stats["peak"],
            "problem": problem}


def check_files(paths: list[str], min_seconds: float = 0.5, workers: int = 4):
    """``check_file`` over many files in threads (decoding releases the GIL); one row per file."""
    from concurrent.futures import ThreadPoolExecutor

    import pandas as pd
    with ThreadPoolExecutor(max_workers=workers) as pool:
        rows = list(pool.map(lambda p: check_file(p, min_seconds), paths))
    return pd.DataFrame(rows, columns=["path", "duration_s", "rms", "peak", "problem"])
