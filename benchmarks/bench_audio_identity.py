"""What identifying a stage's audio costs: the chosen fingerprint against the ids-and-labels one.

A stage's identity covers what its audio holds (``core.fingerprint.audio_fingerprint``: each file's
size and first and last 4 KiB). This writes a corpus of generated files laid out like ASVspoof 2019
LA (121,461 files in three folders, by default 58 kB each, the corpus' mean FLAC size) and times, on
the same files in the same run:

- ids + labels: ``manifest_fingerprint`` (the identity before audio was covered; the baseline),
- path + size + mtime: one ``stat`` per file (cheaper, but a copied corpus looks changed and a
  regenerated one with kept time stamps looks the same),
- size + both ends (the choice), first call and a memoised second call in the same process,
- full content: sha256 of every byte (what a full hash would cost).

The files were just written, so they are read from the page cache: on a cold network disk (Kaggle's
``/kaggle/input``) reading costs more, and the full hash most (it reads every byte). Usage::

    python benchmarks/bench_audio_identity.py                  # 121,461 files of 58 kB in a temp folder
    python benchmarks/bench_audio_identity.py --files 20000    # fewer files; figures scaled to 121k too
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from xlsr_helpers.core import fingerprint
from xlsr_helpers.core.fingerprint import audio_fingerprint, manifest_fingerprint

SPLITS = {"train": 25_380, "dev": 24_844, "eval": 71_237}  # ASVspoof 2019 LA: 121,461 files
FULL = sum(SPLITS.values())


def write_corpus(root: Path, n_files: int, size: int, seed: int = 0) -> pd.DataFrame:
    """``n_files`` files of about ``size`` bytes (+-25 %, distinct contents), split like 2019 LA."""
    rng = np.random.default_rng(seed)
    pool = rng.bytes(4 * size)
    rows = []
    for split, count in SPLITS.items():
        folder = root / f"ASVspoof2019_LA_{split}" / "flac"
        folder.mkdir(parents=True)
        for i in range(round(n_files * count / FULL)):
            n, start = int(size * rng.uniform(0.75, 1.25)), int(rng.integers(0, 2 * size))
            path = folder / f"LA_{split[0].upper()}_{i:07d}.flac"
            path.write_bytes(pool[start:start + n])
            rows.append({"utt_id": path.stem, "label": "spoof" if i % 10 else "bonafide", "path": str(path)})
    return pd.DataFrame(rows)


def stat_fingerprint(paths: list[str]) -> str:
    h = hashlib.sha256()
    for p in paths:
        st = os.stat(p)
        h.update(f"{p}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def full_hash(paths: list[str]) -> str:
    h = hashlib.sha256()
    for p in paths:
        with open(p, "rb") as fh:
            h.update(hashlib.sha256(fh.read()).digest())
    return h.hexdigest()[:16]


def timed(fn, *args) -> float:
    t = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=FULL)
    ap.add_argument("--bytes", type=int, default=58_000, help="mean file size")
    ap.add_argument("--dir", default=None, help="where to write the files (default: a temp folder, removed after)")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="audio-identity-", dir=args.dir))
    try:
        t = time.perf_counter()
        df = write_corpus(root, args.files, args.bytes)
        written = time.perf_counter() - t
        paths = df["path"].tolist()
        mb = sum(os.path.getsize(p) for p in paths) / 1e6
        base = min(timed(manifest_fingerprint, df) for _ in range(3))
        rows = [("ids + labels (baseline)", base)]
        rows.append(("path + size + mtime (stat)", timed(stat_fingerprint, paths)))
        fingerprint._audio_digest.cache_clear()
        ends = f"size + first/last {fingerprint.AUDIO_SAMPLE_BYTES // 1024} KiB (chosen)"
        rows.append((ends, timed(audio_fingerprint, paths)))
        rows.append(("  the same, again in the process", timed(audio_fingerprint, paths)))
        rows.append(("full content sha256", timed(full_hash, paths)))
        scale = FULL / len(paths)
        print(f"{len(paths):,} files, {mb:,.0f} MB (written in {written:.0f} s, read from the page cache); "
              f"{os.cpu_count()} CPUs, {fingerprint.AUDIO_THREADS} reader threads\n")
        print("| identity | seconds | per 121,461 files | x ids + labels |\n|---|---|---|---|")
        for name, s in rows:
            print(f"| {name} | {s:.2f} | {s * scale:.1f} | {s / base:.0f} |")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
