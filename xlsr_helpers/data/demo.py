"""A small synthetic corpus in the exact ASVspoof 2019 LA layout, generated from a seed.

Bonafide trials are speech-like (glottal pulse train with jitter and a moving pitch contour,
time-varying formants, syllable envelopes, breath noise up to 8 kHz). Each spoof "attack" is a
different toy vocoder: band-limiting, a flattened pitch, frame-rate buzz or comb artefacts. As in
the real corpus, the eval attacks are systems never seen in train/dev, so the demo measures
generalisation, not memorisation. The files, protocols and ASV score files go through the same
manifest code as the real corpus.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy import signal

from xlsr_helpers.core.errors import ConfigError
from xlsr_helpers.data.audio import SAMPLE_RATE

SR = SAMPLE_RATE
ATTACKS = {  # attack id -> toy vocoder settings
    "A01": {"cutoff": 4000, "flatten": 0.9, "buzz": 0.00, "comb": 0.0, "frame_am": 0.0},
    "A02": {"cutoff": 5000, "flatten": 0.5, "buzz": 0.03, "comb": 0.0, "frame_am": 0.3},
    "A03": {"cutoff": 3500, "flatten": 0.7, "buzz": 0.00, "comb": 0.5, "frame_am": 0.0},
    "A07": {"cutoff": 4500, "flatten": 0.8, "buzz": 0.02, "comb": 0.3, "frame_am": 0.0},
    "A08": {"cutoff": 6000, "flatten": 0.6, "buzz": 0.00, "comb": 0.0, "frame_am": 0.5},
    "A09": {"cutoff": 3000, "flatten": 0.95, "buzz": 0.04, "comb": 0.4, "frame_am": 0.2},
}
SPLIT_ATTACKS = {"train": ["A01", "A02", "A03"], "dev": ["A01", "A02", "A03"], "eval": ["A07", "A08", "A09"]}
SPLIT_CODE = {"train": "T", "dev": "D", "eval": "E"}
PROTOCOL_NAME = {"train": "train.trn", "dev": "dev.trl", "eval": "eval.trl"}


@dataclass(frozen=True)
class DemoSize:
    """Trials per split: bonafide count and spoof count per attack; duration range in seconds."""

    bonafide: dict
    per_attack: dict
    duration: tuple[float, float]
    speakers: int


SIZES = {
    "tiny": DemoSize({"train": 18, "dev": 12, "eval": 12}, {"train": 6, "dev": 4, "eval": 4}, (0.8, 1.6), 6),
    "small": DemoSize({"train": 60, "dev": 40, "eval": 45}, {"train": 20, "dev": 14, "eval": 15}, (1.0, 3.0), 12),
}


def _speech(rng: np.random.Generator, n: int, f0_base: float, flatten: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Voiced source + formant filtering; returns (speech, breath noise). ``flatten`` removes prosody."""
    t = np.arange(n) / SR
    contour = 1 + 0.15 * np.sin(2 * np.pi * rng.uniform(0.5, 2.0) * t + rng.uniform(0, 6.3))
    contour = 1 + (contour - 1) * (1 - flatten)
    jitter = 1 + (1 - flatten) * 0.02 * rng.standard_normal(n).cumsum() / np.sqrt(np.arange(1, n + 1))
    f0 = f0_base * contour * jitter
    phase = 2 * np.pi * np.cumsum(f0) / SR
    source = signal.sawtooth(phase, width=0.1)
    out = np.zeros(n)
    # Syllables of 120-300 ms, each with its own formant pair.
    pos = 0
    env = np.zeros(n)
    while pos < n:
        seg = int(rng.uniform(0.12, 0.30) * SR)
        sl = slice(pos, min(pos + seg, n))
        m = sl.stop - sl.start
        y = source[sl]
        for fc, bw in ((rng.uniform(300, 900), 120), (rng.uniform(900, 2500), 180), (rng.uniform(2500, 3500), 250)):
            r = np.exp(-np.pi * bw / SR)
            b, a = [1 - r], [1, -2 * r * np.cos(2 * np.pi * fc / SR), r * r]
            out[sl] += signal.lfilter(b, a, y)
        env[sl] = np.sin(np.pi * np.linspace(0, 1, m)) ** 0.7 * rng.uniform(0.4, 1.0)
        pos += seg + int(rng.uniform(0.0, 0.06) * SR)
    breath = rng.standard_normal(n) * env * 0.05
    return out * env, breath


def bonafide(rng: np.random.Generator, seconds: float, f0: float) -> np.ndarray:
    n = int(seconds * SR)
    voiced, breath = _speech(rng, n, f0)
    x = voiced / (np.abs(voiced).max() + 1e-9) + breath + 0.003 * rng.standard_normal(n)
    return (0.5 * x / np.abs(x).max()).astype(np.float32)


def spoof(rng: np.random.Generator, seconds: float, f0: float, attack: str) -> np.ndarray:
    """A toy vocoder output: flattened prosody, band-limited, with the attack's artefacts."""
    cfg = ATTACKS[attack]
    n = int(seconds * SR)
    voiced, breath = _speech(rng, n, f0, flatten=cfg["flatten"])
    x = voiced / (np.abs(voiced).max() + 1e-9) + 0.3 * breath
    b, a = signal.butter(6, cfg["cutoff"] / (SR / 2))
    x = signal.lfilter(b, a, x)
    t = np.arange(n) / SR
    if cfg["buzz"]:
        x += cfg["buzz"] * np.sign(np.sin(2 * np.pi * 100 * t))
    if cfg["comb"]:
        d = int(SR / 200)
        x[d:] += cfg["comb"] * x[:-d]
    if cfg["frame_am"]:
        x *= 1 + cfg["frame_am"] * np.sin(2 * np.pi * 80 * t)  # 80 Hz vocoder frame rate
    x += 0.001 * rng.standard_normal(n)
    return (0.5 * x / np.abs(x).max()).astype(np.float32)


def make_demo_corpus(out_dir: str | Path, seed: int = 0, size: str = "small") -> Path:
    """Write ``out_dir/LA`` in the ASVspoof 2019 LA layout; return that root."""
    if size not in SIZES:
        raise ConfigError(f"size must be one of {sorted(SIZES)}, got {size!r}")
    cfg = SIZES[size]
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out} is a file; give a new or empty folder for the demo corpus")
    if out.is_dir() and any(out.iterdir()):
        raise ConfigError(f"{out} is not empty; give a new or empty folder for the demo corpus")
    root = out / "LA"
    rng = np.random.default_rng(seed)
    speakers = [(f"LA_9{i:03d}", rng.uniform(95, 230)) for i in range(cfg.speakers)]
    proto_dir = root / "ASVspoof2019_LA_cm_protocols"
    asv_dir = root / "ASVspoof2019_LA_asv_scores"
    proto_dir.mkdir(parents=True, exist_ok=True)
    asv_dir.mkdir(parents=True, exist_ok=True)
    uid = 1_000_000
    for split in ("train", "dev", "eval"):
        audio_dir = root / f"ASVspoof2019_LA_{split}" / "flac"
        audio_dir.mkdir(parents=True, exist_ok=True)
        trials = [("-", "bonafide")] * cfg.bonafide[split]
        trials += [(a, "spoof") for a in SPLIT_ATTACKS[split] for _ in range(cfg.per_attack[split])]
        lines = []
        for attack, key in trials:
            uid += int(rng.integers(1, 50))
            utt = f"LA_{SPLIT_CODE[split]}_{uid}"
            spk, f0 = speakers[int(rng.integers(len(speakers)))]
            secs = float(rng.uniform(*cfg.duration))
            wave = bonafide(rng, secs, f0) if key == "bonafide" else spoof(rng, secs, f0, attack)
            sf.write(audio_dir / f"{utt}.flac", wave, SR, subtype="PCM_16")
            lines.append(f"{spk} {utt} - {attack} {key}")
        order = rng.permutation(len(lines))  # real protocols interleave classes
        (proto_dir / f"ASVspoof2019.LA.cm.{PROTOCOL_NAME[split]}.txt").write_text(
            "\n".join(lines[i] for i in order) + "\n")
        if split != "train":
            _write_asv_scores(asv_dir / f"ASVspoof2019.LA.asv.{split}.gi.trl.scores.txt", rng, SPLIT_ATTACKS[split])
    return root


def _write_asv_scores(path: Path, rng: np.random.Generator, attacks: list[str]) -> None:
    """Organiser-style ASV scores (``source key score``) for the legacy t-DCF."""
    lines = [f"bonafide target {s:.4f}" for s in rng.normal(3.0, 1.0, 200)]
    lines += [f"bonafide nontarget {s:.4f}" for s in rng.normal(-3.0, 1.0, 400)]
    lines += [f"{a} spoof {s:.4f}" for a in attacks for s in rng.normal(1.0, 1.5, 100)]
    path.write_text("\n".join(lines) + "\n")
