"""Peak memory and time of decoding + resampling one file to 16 kHz, per file sample rate.

Each case runs in a fresh subprocess, so its peak RSS (``resource.getrusage``) is its own; the
figures are printed with their ratio to 16 kHz (no resampling) and 44.1 kHz (the common case).
``--baseline`` also runs the bare ``torchaudio.transforms.Resample`` for the odd rates (what
``load_audio`` did before the chunked path), under an address-space limit so that it fails
instead of taking the machine.
Usage: python benchmarks/bench_resample.py [--seconds 10] [--baseline [--baseline-rates 8001,44101]]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

RATES = [16000, 44100, 48000, 22050, 8000, 8001, 44101, 11127, 96001, 384000, 1000]

CHILD = r"""
import json, resource, sys, time, tracemalloc
import numpy as np, soundfile as sf
path, sr, seconds, baseline = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4] == "1"
from xlsr_helpers.data import audio
if baseline:
    import torch, torchaudio
    run = lambda w: torchaudio.transforms.Resample(sr, 16000)(torch.from_numpy(w)).numpy()
else:
    run = lambda w: audio.resample(w, sr, 16000)  # load_audio would refuse 1,000 Hz; the resampler is timed alone
wave = np.sin(2 * np.pi * 440 * np.arange(int(sr * seconds)) / sr).astype(np.float32)
sf.write(path, wave, sr, subtype="FLOAT")
data, _ = sf.read(path, dtype="float32")
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
tracemalloc.start()
t = time.perf_counter()
out = run(data)
first = time.perf_counter() - t
peak = tracemalloc.get_traced_memory()[1]
tracemalloc.stop()
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
warm = []
for _ in range(3):  # torchaudio's kernel is cached per rate pair: later files of a corpus pay only this
    t = time.perf_counter()
    run(data)
    warm.append(time.perf_counter() - t)
print(json.dumps({"first_s": first, "s": sorted(warm)[1], "traced_mb": peak / 2**20,
                  "rss_growth_mb": max(0, rss - before) / 1024, "rss_mb": rss / 1024, "out": int(out.size)}))
"""


def measure(rate: int, seconds: float, baseline: bool, limit_gb: float) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-c", CHILD, str(Path(tmp) / "a.wav"), str(rate), str(seconds), "1" if baseline else "0"]
        pre = None
        if baseline:  # the old path builds multi-gigabyte kernels: bounded, it fails instead of swapping
            import resource
            cap = int(limit_gb * 2**30)
            pre = lambda: resource.setrlimit(resource.RLIMIT_AS, (cap, cap))  # noqa: E731
        res = subprocess.run(cmd, capture_output=True, text=True, preexec_fn=pre, timeout=600)
    if res.returncode != 0:
        last = (res.stderr.strip().splitlines() or ["?"])[-1]
        return {"failed": last[:70]}
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--baseline", action="store_true", help="also the bare torchaudio resampler, under a memory cap")
    p.add_argument("--limit-gb", type=float, default=12.0, help="address-space cap of a baseline case")
    p.add_argument("--baseline-rates", default="8001", help="comma-separated; 44101 needs about 13 GB")
    a = p.parse_args()
    rows = {r: measure(r, a.seconds, False, a.limit_gb) for r in RATES}
    ref44 = rows[44100]
    print(f"one {a.seconds:g} s file to 16 kHz; warm = median of 3 calls after the first; rss growth = peak RSS "
          f"of the first call above the RSS before it; kernel = torchaudio's for the pair (float32)\n")
    print("| rate (Hz) | path | first call (s) | warm (s) | warm x 44.1 kHz | traced peak (MB) | rss growth (MB) "
          "| torchaudio kernel (MB) |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|")
    for r, m in rows.items():
        path = "none" if r == 16000 else ("chunked" if _chunked(r) else "torchaudio")
        print(f"| {r:,} | {path} | {m['first_s']:.3f} | {m['s']:.3f} | {m['s'] / ref44['s']:.1f} | "
              f"{m['traced_mb']:.1f} | {m['rss_growth_mb']:.0f} | {_kernel_mb(r):,.1f} |")
    print(f"\npeak RSS of the process: {min(m['rss_mb'] for m in rows.values()):.0f}-"
          f"{max(m['rss_mb'] for m in rows.values()):.0f} MB (the interpreter, torch and the file)")
    if a.baseline:
        print(f"\nbare torchaudio.transforms.Resample (the path before the chunked one), address space capped at "
              f"{a.limit_gb:g} GB:\n")
        print("| rate (Hz) | first call (s) | rss growth (MB) | first call x chunked |")
        print("|---:|---:|---:|---:|")
        for r in map(int, a.baseline_rates.split(",")):
            m, ours = measure(r, a.seconds, True, a.limit_gb), rows.get(r) or measure(r, a.seconds, False, a.limit_gb)
            if "failed" in m:
                print(f"| {r:,} | failed: {m['failed']} | | |")
                continue
            print(f"| {r:,} | {m['first_s']:.2f} | {m['rss_growth_mb']:,.0f} | {m['first_s'] / ours['first_s']:.0f} |")


def _kernel_mb(rate: int) -> float:
    from xlsr_helpers.data.audio import torchaudio_kernel_size
    return 0.0 if rate == 16000 else torchaudio_kernel_size(rate, 16000) * 4 / 2**20


def _chunked(rate: int) -> bool:
    from xlsr_helpers.data.audio import KERNEL_LIMIT, torchaudio_kernel_size
    return torchaudio_kernel_size(rate, 16000) > KERNEL_LIMIT


if __name__ == "__main__":
    main()
