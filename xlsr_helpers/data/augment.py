"""RawBoost data augmentation (Tak et al., ICASSP 2022), as used by SSL_Anti-spoofing.

Three signal-processing distortions of the raw waveform, each drawn from a seeded
``np.random.Generator`` so an epoch's augmentation is reproducible (and replays on resume):

- ``lnl``: linear and non-linear convolutive noise (random notch-filter banks over powers of x);
- ``isd``: impulsive signal-dependent additive noise (a random share of samples perturbed);
- ``ssi``: stationary signal-independent additive noise (coloured noise at 10-40 dB SNR).

``"lnl+isd"`` is SSL_Anti-spoofing's choice for ASVspoof 2021 LA (its algo 5), ``"ssi"`` for DF
(algo 3). Defaults are the paper's.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
from scipy import signal

from xlsr_helpers.core.errors import ConfigError
from xlsr_helpers.data.audio import SAMPLE_RATE
from xlsr_helpers.data.channel import CHANNEL, NEEDS_FOLDER, audio_files

SR = SAMPLE_RATE


def _notch_filter(rng: np.random.Generator, n_bands: int = 5, min_f: float = 20, max_f: float = 8000,
                  min_bw: float = 100, max_bw: float = 1000, min_coeff: int = 10, max_coeff: int = 100,
                  min_g: float = 0, max_g: float = 0, fs: int = SR) -> np.ndarray:
    """FIR taps of a cascade of random band-stop (notch) filters, normalised to a random gain (dB): RawBoost's
    genNotchCoeffs, whose ``firwin(c, [f1, f2])`` keeps scipy's default ``pass_zero=True``."""
    b = np.ones(1)
    for _ in range(n_bands):
        fc, bw = rng.uniform(min_f, max_f), rng.uniform(min_bw, max_bw)
        taps = int(rng.uniform(min_coeff, max_coeff)) | 1  # odd length: a band-stop FIR passes Nyquist
        f1, f2 = max(fc - bw / 2, 1e-3), min(fc + bw / 2, fs / 2 - 1e-3)
        b = np.convolve(signal.firwin(taps, [f1, f2], window="hamming", pass_zero=True, fs=fs), b)
    _, h = signal.freqz(b, 1, fs=fs)
    gain_db = rng.uniform(*sorted((min_g, max_g)))  # the reference passes (-5, -20): an inverted range
    return 10 ** (gain_db / 20) * b / np.abs(h).max()


def _fir(x: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Zero-phase-aligned FIR filtering that keeps the length of x."""
    n = b.shape[0] + 1
    y = signal.lfilter(b, 1, np.pad(x, (0, n)))
    return y[n // 2: n // 2 + x.shape[0]]


def _norm(x: np.ndarray, always: bool) -> np.ndarray:
    peak = np.abs(x).max()
    return x / peak if peak > 0 and (always or peak > 1) else x


def lnl(x: np.ndarray, rng: np.random.Generator, n_f: int = 5, min_bias: float = 5, max_bias: float = 20) -> np.ndarray:
    """Linear and non-linear convolutive noise."""
    y = np.zeros_like(x, dtype=np.float64)
    min_g = max_g = 0.0
    for i in range(n_f):
        if i == 1:  # higher-order terms are attenuated, as in the reference implementation
            min_g, max_g = min_g - min_bias, max_g - max_bias
        y += _fir(np.power(x, i + 1), _notch_filter(rng, min_g=min_g, max_g=max_g))
    return _norm(y - y.mean(), always=False)


def isd(x: np.ndarray, rng: np.random.Generator, p: float = 10, g_sd: float = 2) -> np.ndarray:
    """Impulsive signal-dependent noise on up to ``p`` % of the samples."""
    y = x.astype(np.float64, copy=True)
    n = int(x.shape[0] * rng.uniform(0, p) / 100)
    idx = rng.permutation(x.shape[0])[:n]
    f_r = (2 * rng.random(n) - 1) * (2 * rng.random(n) - 1)
    y[idx] = x[idx] + g_sd * x[idx] * f_r
    return _norm(y, always=False)


def ssi(x: np.ndarray, rng: np.random.Generator, snr_min: float = 10, snr_max: float = 40) -> np.ndarray:
    """Stationary coloured noise at a random SNR in [snr_min, snr_max] dB."""
    noise = _norm(_fir(rng.normal(0, 1, x.shape[0]), _notch_filter(rng)), always=True)
    snr = rng.uniform(snr_min, snr_max)
    norm_x, norm_n = np.linalg.norm(x), np.linalg.norm(noise)
    if norm_x == 0 or norm_n == 0:
        return x.astype(np.float64)
    return x + noise / norm_n * norm_x / 10 ** (0.05 * snr)


ALGORITHMS = {"lnl": lnl, "isd": isd, "ssi": ssi, **CHANNEL}


def make_augmenter(spec: str, noise_dir: str = "", rir_dir: str = ""):
    """``'none'`` -> None; ``'lnl+mp3+noise'`` -> a function ``(wave, rng) -> wave`` applying them in
    order (RawBoost, codecs and channels of ``channel.py``; ``noise``/``rir`` draw from the folders)."""
    if spec in (None, "", "none"):
        return None
    parts = spec.split("+")
    known = sorted([*ALGORITHMS, *NEEDS_FOLDER])
    unknown = [p for p in parts if p not in known]
    if unknown:
        raise ConfigError(f"unknown augmentation {unknown}: use 'none' or a '+'-joined subset of {known}")
    folders = {"noise_dir": noise_dir, "rir_dir": rir_dir}
    chain = []
    for p in parts:
        if p in NEEDS_FOLDER:
            name, fn = NEEDS_FOLDER[p]
            folder = folders[name]
            if not folder or not Path(folder).is_dir():
                raise ConfigError(f"augmentation '{p}' needs {name}: a folder of audio files (got {folder!r})")
            audio_files(str(folder))  # refuses an empty folder now, not an epoch into training
            chain.append(partial(fn, folder=str(folder)))
        else:
            chain.append(ALGORITHMS[p])
    return partial(_apply, chain)


def _apply(chain, wave: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    y = wave.astype(np.float64)
    for fn in chain:
        y = np.asarray(fn(y, rng), dtype=np.float64)
    return y.astype(np.float32)
