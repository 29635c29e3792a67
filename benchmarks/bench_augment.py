"""Augmented utterances per second in one process (= one dataloader worker), per augmentation.

A Kaggle T4 step of stage 2 (batch 16 x 4 s, top 4 layers) takes roughly 0.3-0.5 s; with 2-4
workers, an augmentation must reach ~16 / 0.4 / workers utterances/s per worker not to starve it.
Usage: python benchmarks/bench_augment.py [--seconds 4] [--n 40]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from xlsr_helpers.data.augment import make_augmenter

SPECS = ["lnl", "isd", "ssi", "lnl+isd", "mp3", "ogg", "telephone", "g711", "loss", "gain", "noise", "rir",
         "ssi+mp3+noise+rir"]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--seconds", type=float, default=4.0)
    p.add_argument("--n", type=int, default=40)
    a = p.parse_args()
    rng = np.random.default_rng(0)
    waves = [rng.normal(0, 0.1, int(a.seconds * 16000)) for _ in range(8)]
    with tempfile.TemporaryDirectory() as tmp:
        noise, rir = Path(tmp, "noise"), Path(tmp, "rir")
        noise.mkdir()
        rir.mkdir()
        for i in range(4):
            sf.write(noise / f"n{i}.wav", rng.normal(0, 0.1, 16000 * 10).astype(np.float32), 16000)
            sf.write(rir / f"r{i}.wav", (rng.normal(0, 1, 8000) * np.exp(-np.arange(8000) / 1500)).astype(np.float32),
                     16000)
        print(f"{'augmentation':<20} {'utt/s per worker':>17}  ({a.seconds:g} s clips, {a.n} clips)")
        for spec in SPECS:
            aug = make_augmenter(spec, str(noise), str(rir))
            aug(waves[0], np.random.default_rng(0))  # warm caches (file lists, filters)
            t = time.perf_counter()
            for i in range(a.n):
                aug(waves[i % len(waves)], np.random.default_rng(i))
            print(f"{spec:<20} {a.n / (time.perf_counter() - t):>17.1f}")


if __name__ == "__main__":
    main()
