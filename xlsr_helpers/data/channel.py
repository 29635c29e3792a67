"""Real-world channel augmentation: codecs, telephone band, packet loss, noise, rooms, gain.

Each function maps ``(wave, rng) -> wave`` at 16 kHz (float, same length), drawing every random
choice from the seeded ``rng`` that ``SegmentDataset`` builds per epoch and utterance, so an
epoch's augmentation is reproducible and replays on resume. They compose with RawBoost in
``augment.make_augmenter`` (``"lnl+mp3+noise"``). Codecs go through ``soundfile`` (libsndfile:
MP3, Ogg Vorbis, Ogg Opus, G.711 mu-law and A-law), so no FFmpeg is needed.
"""

from __future__ import annotations

import io
from functools import lru_cache
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy import signal

from xlsr_helpers.core.errors import ConfigError
from xlsr_helpers.data.audio import SAMPLE_RATE, load_audio, resample

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")
PACKET_MS = 20  # VoIP frame length


def _same_length(y: np.ndarray, n: int) -> np.ndarray:
    return y[:n] if y.size >= n else np.pad(y, (0, n - y.size))


def _roundtrip(x: np.ndarray, sr: int, fmt: str, subtype: str | None = None, **kw) -> np.ndarray:
    """Encode and decode in memory (float32; clipped to full scale as an encoder would)."""
    buf = io.BytesIO()
    sf.write(buf, np.clip(x, -1, 1).astype(np.float32), sr, format=fmt, subtype=subtype, **kw)
    buf.seek(0)
    y, _ = sf.read(buf, dtype="float32")
    return _same_length(y, x.size)


def mp3(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """MP3 at a random VBR quality (libsndfile compression level 0-1: about 320 down to 32 kbit/s)."""
    return _roundtrip(x, SAMPLE_RATE, "MP3", compression_level=float(rng.uniform(0, 1)))


def ogg(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Ogg Vorbis or Ogg Opus, either at a random compression level."""
    subtype = "VORBIS" if rng.random() < 0.5 else "OPUS"
    return _roundtrip(x, SAMPLE_RATE, "OGG", subtype, compression_level=float(rng.uniform(0, 1)))


def _narrowband(x: np.ndarray) -> np.ndarray:
    """300-3400 Hz at 8 kHz (the telephone band)."""
    sos = signal.butter(4, [300, 3400], btype="bandpass", fs=SAMPLE_RATE, output="sos")
    return resample(signal.sosfiltfilt(sos, x).astype(np.float32), SAMPLE_RATE, 8000)


def telephone(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Telephone channel: band-pass 300-3400 Hz, 8 kHz, back to 16 kHz."""
    return _same_length(resample(_narrowband(x), 8000, SAMPLE_RATE), x.size)


def g711(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Telephone band then G.711 mu-law or A-law (8-bit companding) at 8 kHz."""
    subtype = "ULAW" if rng.random() < 0.5 else "ALAW"
    y = _roundtrip(_narrowband(x), 8000, "WAV", subtype)
    return _same_length(resample(y, 8000, SAMPLE_RATE), x.size)


def packet_loss(x: np.ndarray, rng: np.random.Generator, max_rate: float = 0.1) -> np.ndarray:
    """Silence a random share (up to ``max_rate``) of 20 ms packets, as a lossy VoIP link does."""
    frame = SAMPLE_RATE * PACKET_MS // 1000
    n = -(-x.size // frame)
    lost = rng.random(n) < rng.uniform(0, max_rate)
    mask = np.repeat(~lost, frame)[: x.size]
    return x * mask


def gain(x: np.ndarray, rng: np.random.Generator, db: float = 6.0) -> np.ndarray:
    """A random gain in [-db, +db] dB; peaks are scaled back to full scale instead of clipping."""
    y = x * 10 ** (rng.uniform(-db, db) / 20)
    peak = np.abs(y).max()
    return y / peak if peak > 1 else y


@lru_cache(maxsize=8)
def audio_files(folder: str) -> tuple[str, ...]:
    """Audio files below a folder (sorted, so a seed picks the same file everywhere)."""
    files = tuple(sorted(str(p) for p in Path(folder).rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES))
    if not files:
        raise ConfigError(f"{folder}: no audio files ({', '.join(AUDIO_SUFFIXES)}) for augmentation")
    return files


@lru_cache(maxsize=256)
def _load(path: str) -> np.ndarray:
    return load_audio(path)


def add_noise(x: np.ndarray, rng: np.random.Generator, folder: str, snr_min: float = 5, snr_max: float = 20):
    """A random excerpt of a random noise file (e.g. MUSAN) at a random SNR in [snr_min, snr_max] dB."""
    files = audio_files(folder)
    noise = _load(files[int(rng.integers(len(files)))])
    if noise.size < x.size:
        noise = np.tile(noise, -(-x.size // noise.size))
    start = int(rng.integers(0, noise.size - x.size + 1))
    noise = noise[start:start + x.size].astype(np.float64)
    px, pn = np.sum(x.astype(np.float64) ** 2), np.sum(noise ** 2)
    if px == 0 or pn == 0:
        return x
    snr = rng.uniform(snr_min, snr_max)
    return x + noise * np.sqrt(px / (pn * 10 ** (snr / 10)))


def reverb(x: np.ndarray, rng: np.random.Generator, folder: str) -> np.ndarray:
    """Convolution with a random room impulse response (normalised to unit energy), aligned on its
    direct path so the speech does not shift in time."""
    files = audio_files(folder)
    rir = _load(files[int(rng.integers(len(files)))]).astype(np.float64)
    rir = rir / max(np.sqrt(np.sum(rir ** 2)), 1e-12)
    direct = int(np.argmax(np.abs(rir)))
    y = signal.fftconvolve(x, rir)[direct:direct + x.size]
    peak = np.abs(y).max()
    return y / peak if peak > 1 else y


CHANNEL = {"mp3": mp3, "ogg": ogg, "telephone": telephone, "g711": g711, "loss": packet_loss, "gain": gain}
NEEDS_FOLDER = {"noise": ("noise_dir", add_noise), "rir": ("rir_dir", reverb)}
