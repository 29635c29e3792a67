"""Per-head figures (not tests): parameter count, stage-1 and stage-2 step time, cache size per
utterance, on the XLS-R 300M architecture with random weights (same compute as the real model).

    python benchmarks/bench_heads.py                 # CPU, small batch (2-core machine: ~2 min)
    python benchmarks/bench_heads.py --device cuda --batch 16 --top-layers 4

Stage 1 times one optimisation step of the head alone on what its cache holds (pooled vectors,
last-layer frames, or every layer); stage 2 one step of the top layers + head on the prefix cache.
The linear head is the baseline of each ratio.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from xlsr_helpers.data.datasets import SegmentConfig
from xlsr_helpers.model.cache import CacheSpec, feature_kind
from xlsr_helpers.model.detector import XlsrDetector, XlsrDetectorConfig
from xlsr_helpers.model.freezing import freeze_for_stage
from xlsr_helpers.model.heads import HEADS
from xlsr_helpers.model.loading import frames_for, xlsr_300m_config
from xlsr_helpers.train.trainer import StageModule


def build(head: str) -> torch.nn.Module:
    from transformers import Wav2Vec2ForSequenceClassification
    torch.manual_seed(0)
    cfg = xlsr_300m_config()
    if head == "linear":
        cfg.num_labels = 2
        return Wav2Vec2ForSequenceClassification(cfg)
    frames = frames_for(cfg, SEGMENT)
    return XlsrDetector(XlsrDetectorConfig(**cfg.to_dict(), head=head,
                                           head_config=HEADS[head].settings(cfg, frames)))


SEGMENT = 64_600  # the reference systems' 4.04 s


def step_time(module: StageModule, features: torch.Tensor, device: torch.device, reps: int) -> float:
    y = torch.zeros(len(features), dtype=torch.long, device=device)
    opt = torch.optim.AdamW([p for p in module.parameters() if p.requires_grad], lr=1e-4)

    def step():
        module(features=features, labels=y).loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    step()  # warm-up
    times = []
    for _ in range(reps):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    return float(np.median(times))  # the median: robust to a busy machine


def fake_features(kind: str, spec: CacheSpec, config, batch: int, device) -> torch.Tensor:
    return torch.randn(batch, *spec.row_shape(config), device=device)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--top-layers", type=int, default=1, help="stage-2 unfrozen layers (4 in the Kaggle presets)")
    ap.add_argument("--reps", type=int, default=5, help="timed steps per figure (median)")
    a = ap.parse_args()
    device = torch.device(a.device)
    seg = SegmentConfig(SEGMENT, "repeat", "start")
    rows = []
    for head in ["linear", *sorted(set(HEADS) - {"linear"})]:  # linear first: the baseline of the ratios
        model = build(head).to(device)
        n_layers = len(model.wav2vec2.encoder.layers)
        row = {"head": head, "head_params": sum(p.numel() for n, p in model.named_parameters()
                                                 if not n.startswith("wav2vec2."))}
        for stage, n_prefix in ((1, n_layers), (2, n_layers - a.top_layers)):
            freeze_for_stage(model, stage, a.top_layers)
            kind = feature_kind(HEADS[head].needs, n_prefix, n_layers)
            spec = CacheSpec(kind, n_prefix, seg, {})
            module = StageModule(model, kind, n_prefix, None).train()
            row[f"s{stage}_cache"] = kind
            row[f"s{stage}_cache_MB_per_utt"] = spec.nbytes(model.config, 1) / 1e6
            row[f"s{stage}_step_s"] = step_time(module, fake_features(kind, spec, model.config, a.batch, device),
                                                device, a.reps)
        rows.append(row)
        del model
    base = rows[0]
    print(f"device {device} ({torch.cuda.get_device_name(0) if device.type == 'cuda' else 'CPU'}), batch {a.batch}, "
          f"segment {SEGMENT} samples, stage 2 with {a.top_layers} unfrozen layer(s), fp16 caches")
    print("| head | head parameters | stage-1 cache | MB/utt | stage-1 step s (x linear) | stage-2 cache | MB/utt "
          "| stage-2 step s (x linear) |")
    print("|---|---:|---|---:|---:|---|---:|---:|")
    for r in rows:
        print(f"| {r['head']} | {r['head_params']:,} | {r['s1_cache']} | {r['s1_cache_MB_per_utt']:.3f} | "
              f"{r['s1_step_s']:.4f} ({r['s1_step_s'] / base['s1_step_s']:.1f}x) | {r['s2_cache']} | "
              f"{r['s2_cache_MB_per_utt']:.2f} | {r['s2_step_s']:.3f} ({r['s2_step_s'] / base['s2_step_s']:.1f}x) |")


if __name__ == "__main__":
    main()
