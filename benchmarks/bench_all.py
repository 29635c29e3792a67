"""Benchmarks (not tests): measured figures and ratios from one run, printed as a Markdown table.

Runs on the real XLS-R 300M architecture with random weights (same compute as the pretrained
model) on CPU, or on GPU with ``--device cuda``. Usage::

    python benchmarks/bench_all.py                   # CPU defaults sized for a 2-core machine
    python benchmarks/bench_all.py --device cuda --utts 64 --seconds 4 --batch 16
"""

from __future__ import annotations

import argparse
import datetime
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
import torch

from xlsr_helpers.data.datasets import AudioCollator, SegmentConfig, SegmentDataset, default_feature_extractor
from xlsr_helpers.evaluate.metrics import compute_eer
from xlsr_helpers.evaluate.scoring import Scorer, ScoringConfig
from xlsr_helpers.model.cache import CacheRun, CacheSpec, build_cache, model_fingerprint
from xlsr_helpers.model.forward import encode_prefix, pooled_head_logits
from xlsr_helpers.model.freezing import freeze_for_stage
from xlsr_helpers.model.loading import xlsr_300m_config
from xlsr_helpers.train.trainer import StageModule, class_weight_tensor

SR = 16_000


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def make_model(device: torch.device):
    from transformers import Wav2Vec2ForSequenceClassification
    torch.manual_seed(0)
    cfg = xlsr_300m_config()
    cfg.num_labels = 2
    return Wav2Vec2ForSequenceClassification(cfg).to(device)


def make_files(folder: Path, durations: list[float]) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for i, d in enumerate(durations):
        p = folder / f"u{i:04d}.flac"
        sf.write(p, (0.1 * rng.standard_normal(int(d * SR))).astype(np.float32), SR)
        rows.append({"utt_id": p.stem, "path": str(p), "label": "bonafide" if i % 2 else "spoof"})
    return pd.DataFrame(rows)


def bench_stage1(model, df, seg, epochs, batch, device) -> dict:
    """10 epochs of stage 1: re-encode every epoch vs encode once into the cache."""
    fe = default_feature_extractor()
    freeze_for_stage(model, 1)
    labels = torch.tensor((df.label == "spoof").astype(int).to_numpy())
    module = StageModule(model, "waveform", len(model.wav2vec2.encoder.layers), class_weight_tensor(labels.numpy(), "balanced"))
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    ds = SegmentDataset(df, seg)
    collate = AudioCollator(fe)
    module.train()
    sync(device)
    t = time.perf_counter()
    for _ in range(epochs):
        for i in range(0, len(ds), batch):
            b = collate([ds[j] for j in range(i, min(i + batch, len(ds)))])
            out = module(**{k: v.to(device) for k, v in b.items()})
            out.loss.backward()
            opt.step()
            opt.zero_grad()
    sync(device)
    uncached = time.perf_counter() - t
    with tempfile.TemporaryDirectory() as tmp:
        sync(device)
        t = time.perf_counter()
        spec = CacheSpec("pooled", len(model.wav2vec2.encoder.layers), seg, model_fingerprint("bench", model.config))
        path = build_cache(model, fe, df, "train", spec, CacheRun(Path(tmp), batch_size=batch, device=device))
        sync(device)
        build = time.perf_counter() - t
        feats = torch.from_numpy(np.load(path).astype(np.float32)).to(device)
    t = time.perf_counter()
    for _ in range(epochs):
        for i in range(0, len(feats), batch):
            logits = pooled_head_logits(model, feats[i:i + batch])
            loss = torch.nn.functional.cross_entropy(logits, labels[i:i + batch].to(device))
            loss.backward()
            opt.step()
            opt.zero_grad()
    sync(device)
    head = time.perf_counter() - t
    return {"uncached_s": uncached, "cache_build_s": build, "cached_epochs_s": head,
            "ratio": uncached / (build + head)}


def bench_stage2_step(model, batch_waves, top, device) -> dict:
    """One optimisation step of stage 2 (top layers): full forward vs cached prefix."""
    fe = default_feature_extractor()
    freeze_for_stage(model, 2, top)
    n_prefix = len(model.wav2vec2.encoder.layers) - top
    b = fe(batch_waves, sampling_rate=SR, return_attention_mask=True, return_tensors="pt", padding=True)
    x, m = b["input_values"].to(device), b["attention_mask"].to(device)
    y = torch.zeros(len(batch_waves), dtype=torch.long, device=device)
    with torch.no_grad():
        prefix, fmask = encode_prefix(model, x, m, n_prefix)

    # As in training: StageModule keeps the frozen prefix in eval mode, the top layers in train mode.
    full_module = StageModule(model, "waveform", n_prefix, None).train()
    cached_module = StageModule(model, "prefix", n_prefix, None).train()

    def full():
        full_module(input_values=x, attention_mask=m, labels=y).loss.backward()

    def cached():
        cached_module(features=prefix, labels=y).loss.backward()

    out = {}
    for name, fn in (("full", full), ("cached", cached)):
        fn()  # warm-up
        sync(device)
        t = time.perf_counter()
        reps = 3
        for _ in range(reps):
            fn()
            model.zero_grad(set_to_none=True)
        sync(device)
        out[f"{name}_step_s"] = (time.perf_counter() - t) / reps
    out["ratio"] = out["full_step_s"] / out["cached_step_s"]
    return out


def bench_scoring(model_dir: Path, df: pd.DataFrame, window: int, batch: int, device: str) -> dict:
    out = {}
    for name, sort in (("sorted", True), ("fixed", False)):
        scorer = Scorer(model_dir, ScoringConfig(window=window, hop=window // 2, batch_size=batch,
                                                 sort_by_length=sort, device=device))
        scorer.score_manifest(df.head(batch), progress=False)  # warm-up
        t = time.perf_counter()
        scorer.score_manifest(df, progress=False)
        out[f"{name}_files_per_s"] = len(df) / (time.perf_counter() - t)
    out["ratio"] = out["sorted_files_per_s"] / out["fixed_files_per_s"]
    return out


def peak_memory_stage2(batch: int, seconds: float, top: int, device: str) -> dict:
    """Peak memory of one stage-2 step, each variant in a fresh process (RSS on CPU, allocator on GPU)."""
    code = f"""
import resource, torch, numpy as np, sys
sys.path.insert(0, {str(Path(__file__).parent)!r})
from bench_all import make_model, default_feature_extractor, freeze_for_stage
from xlsr_helpers.model.forward import forward_top
dev = torch.device({device!r}); model = make_model(dev); freeze_for_stage(model, 2, {top})
n_prefix = len(model.wav2vec2.encoder.layers) - {top}
waves = [np.random.default_rng(i).standard_normal(int({seconds} * 16000)).astype(np.float32) for i in range({batch})]
b = default_feature_extractor()(waves, sampling_rate=16000, return_attention_mask=True, return_tensors="pt")
x, m = b["input_values"].to(dev), b["attention_mask"].to(dev)
if sys.argv[1] == "cached":  # what the cache hands over: hidden states of shape (batch, frames, 1024)
    frames = int(model._get_feat_extract_output_lengths(torch.tensor(x.shape[1])))
    prefix = torch.randn({batch}, frames, model.config.hidden_size, device=dev)
    fm = torch.ones({batch}, frames, dtype=torch.bool, device=dev)
    del x, m
    if dev.type == "cuda": torch.cuda.reset_peak_memory_stats()
    forward_top(model, prefix, fm, n_prefix).sum().backward()
else:
    if dev.type == "cuda": torch.cuda.reset_peak_memory_stats()
    model(x, attention_mask=m).logits.sum().backward()
if dev.type == "cuda":
    print(torch.cuda.max_memory_allocated() / 2**30)
else:
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20)
"""
    out = {}
    for variant in ("full", "cached"):
        r = subprocess.run([sys.executable, "-c", code, variant], capture_output=True, text=True, check=True)
        out[f"{variant}_peak_gib"] = float(r.stdout.strip().splitlines()[-1])
    return out


def bench_metrics(n: int = 1_000_000) -> dict:
    rng = np.random.default_rng(0)
    bona, spoof = rng.normal(1, 1, n // 10), rng.normal(-1, 1, n - n // 10)
    t = time.perf_counter()
    compute_eer(bona, spoof)
    return {"eer_1M_s": time.perf_counter() - t}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--utts", type=int, default=8, help="utterances in the stage-1 benchmark")
    ap.add_argument("--seconds", type=float, default=2.0, help="segment length")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--batch", type=int, default=4, help="stage-1/scoring batch size")
    ap.add_argument("--s2-batch", type=int, default=2, help="stage-2 step batch size (16 is the Kaggle default)")
    ap.add_argument("--s2-seconds", type=float, default=4.0, help="stage-2 segment length (the notebooks' default)")
    ap.add_argument("--top", type=int, default=4)
    ap.add_argument("--score-files", type=int, default=16)
    ap.add_argument("--mem-batch", type=int, default=16, help="stage-2 batch for the peak-memory figure (default 16)")
    ap.add_argument("--mem-seconds", type=float, default=4.0, help="segment length for the peak-memory figure")
    ap.add_argument("--skip-memory", action="store_true")
    a = ap.parse_args()
    device = torch.device(a.device)
    torch.set_num_threads(torch.get_num_threads())
    rows = []
    m = bench_metrics()
    rows.append(("EER of 1M scores", f"{m['eer_1M_s']:.3f} s", ""))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        seg = SegmentConfig(samples=int(a.seconds * SR))
        df = make_files(tmp, [a.seconds] * a.utts)
        model = make_model(device)
        s1 = bench_stage1(model, df, seg, a.epochs, a.batch, device)
        rows.append((f"stage 1, {a.epochs} epochs x {a.utts} utts of {a.seconds:g} s: re-encode every epoch",
                     f"{s1['uncached_s']:.1f} s", ""))
        rows.append(("stage 1, same with embedding cache (build + epochs)",
                     f"{s1['cache_build_s']:.1f} s + {s1['cached_epochs_s']:.2f} s", f"**{s1['ratio']:.1f}x**"))
        waves = [np.random.default_rng(i).standard_normal(int(a.s2_seconds * SR)).astype(np.float32)
                 for i in range(a.s2_batch)]
        s2 = bench_stage2_step(model, waves, a.top, device)
        rows.append((f"stage 2 step (top {a.top} of 24 layers, batch {a.s2_batch} x {a.s2_seconds:g} s): full forward",
                     f"{s2['full_step_s']:.2f} s", ""))
        rows.append(("stage 2 step: cached prefix", f"{s2['cached_step_s']:.2f} s", f"**{s2['ratio']:.1f}x**"))
        # A realistic ASVspoof-like duration mix (log-normal around 3 s, 1-10 s).
        rng = np.random.default_rng(1)
        durs = np.clip(rng.lognormal(np.log(3.0), 0.45, a.score_files), 1.0, 10.0)
        sdf = make_files(tmp, list(durs))
        model.save_pretrained(tmp / "det")
        default_feature_extractor().save_pretrained(tmp / "det")
        sc = bench_scoring(tmp / "det", sdf, int(4 * SR), a.batch, a.device)
        rows.append((f"scoring {a.score_files} files (1-10 s, 4 s windows): fixed padding",
                     f"{sc['fixed_files_per_s']:.2f} files/s", ""))
        rows.append(("scoring: length-sorted batches", f"{sc['sorted_files_per_s']:.2f} files/s",
                     f"**{sc['ratio']:.2f}x**"))
    if not a.skip_memory:
        mem = peak_memory_stage2(a.mem_batch, a.mem_seconds, a.top, a.device)
        unit = "GiB (GPU allocator)" if device.type == "cuda" else "GiB (process RSS)"
        rows.append((f"peak memory, stage 2 step batch {a.mem_batch} x {a.mem_seconds:g} s: full",
                     f"{mem['full_peak_gib']:.2f} {unit}", ""))
        rows.append(("peak memory, stage 2 step: cached prefix", f"{mem['cached_peak_gib']:.2f} {unit}", ""))
    cpu = f"{platform.processor() or 'CPU'}, {torch.get_num_threads()} threads"
    name = torch.cuda.get_device_name(0) if device.type == "cuda" else cpu
    print(f"\nXLS-R 300M architecture (random weights), {name}, torch {torch.__version__}, {datetime.date.today()}\n")
    print("| measurement | figure | speed-up |\n|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} |")


if __name__ == "__main__":
    main()
