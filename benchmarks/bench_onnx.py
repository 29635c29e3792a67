"""CPU scoring speed (not a test): files per second of 4 s audio through ``Scorer`` with the torch
detector in fp32, its ONNX export in onnxruntime (fp32) and the int8 export, on the XLS-R 300M
architecture with random weights (same compute as the real model), in one run, as ratios to torch.

    python benchmarks/bench_onnx.py                      # linear head, 8 files, all cores (about 4 min on 2 quiet cores,
                                                         # 20 min on busy ones: mostly the two exports)
    python benchmarks/bench_onnx.py --heads linear,aasist,sls --files 16

Each back-end scores the same files with the same windows, batches and threads, after one warm-up
file; the files/s figure includes decoding, padding and writing nothing (``score_files``). The
machine (CPU model, cores, load average) is printed with the figures.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from xlsr_helpers.data.audio import SAMPLE_RATE
from xlsr_helpers.data.datasets import default_feature_extractor
from xlsr_helpers.evaluate.scoring import Scorer, ScoringConfig
from xlsr_helpers.model.card import write_settings
from xlsr_helpers.model.detector import XlsrDetector, XlsrDetectorConfig
from xlsr_helpers.model.heads import HEADS
from xlsr_helpers.model.loading import frames_for, xlsr_300m_config
from xlsr_helpers.serve.onnx_backend import OnnxBackend
from xlsr_helpers.serve.onnx_export import export_onnx

SECONDS = 4


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def save_detector(head: str, out: Path) -> Path:
    """A random XLS-R 300M detector folder with scoring settings of one 4 s window per file."""
    from transformers import Wav2Vec2ForSequenceClassification
    torch.manual_seed(0)
    cfg = xlsr_300m_config()
    samples = SECONDS * SAMPLE_RATE
    if head == "linear":
        cfg.num_labels = 2
        model = Wav2Vec2ForSequenceClassification(cfg)
    else:
        model = XlsrDetector(XlsrDetectorConfig(**cfg.to_dict(), head=head,
                                                head_config=HEADS[head].settings(cfg, frames_for(cfg, samples))))
    model.config.id2label, model.config.label2id = {0: "bonafide", 1: "spoof"}, {"bonafide": 0, "spoof": 1}
    model.eval().save_pretrained(out)
    default_feature_extractor().save_pretrained(out)
    write_settings(out, {"segment_samples": samples, "scoring": {"window": samples, "hop": samples // 2,
                                                                 "aggregation": "mean"}, "dev": {"threshold": 0.0}})
    return out


def files_per_second(scorer: Scorer, files: list[Path]) -> tuple[float, np.ndarray]:
    scorer.score_files(files[:1], progress=False)  # warm-up: first-call allocations and kernel choice
    t = time.perf_counter()
    scores = scorer.score_files(files, progress=False)["score"].to_numpy()
    return len(files) / (time.perf_counter() - t), scores


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--heads", default="linear", help="comma-separated: linear, aasist, sls")
    ap.add_argument("--files", type=int, default=8)
    ap.add_argument("--batch", type=int, default=1, help="windows per batch (1: one file at a time)")
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="torch and onnxruntime intra-op threads")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    print(f"machine: {cpu_name()}, {os.cpu_count()} logical cores, {a.threads} threads; "
          f"load average at start {os.getloadavg()[0]:.1f}; torch {torch.__version__}")
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        files = []
        for i in range(a.files):
            files.append(tmp / f"f{i}.flac")
            sf.write(files[-1], (0.1 * rng.standard_normal(SECONDS * SAMPLE_RATE)).astype("float32"), SAMPLE_RATE)
        cfg = ScoringConfig(batch_size=a.batch, device="cpu", precision="fp32", load_workers=1)
        print(f"{a.files} files of {SECONDS} s, batch {a.batch}, XLS-R 300M architecture, random weights")
        print(f"{'head':7} {'backend':16} {'files/s':>8} {'x torch':>8} {'max |score - torch|':>20}")
        for head in a.heads.split(","):
            det = save_detector(head, tmp / f"det_{head}")
            rate_t, s_t = files_per_second(Scorer(det, cfg), files)
            print(f"{head:7} {'torch fp32':16} {rate_t:8.2f} {1.0:8.2f} {0.0:20.2e}", flush=True)
            for quantize in (None, "int8"):
                t = time.perf_counter()
                out = export_onnx(det, tmp / f"onnx_{head}_{quantize or 'fp32'}", quantize)
                took = time.perf_counter() - t
                rate, s = files_per_second(Scorer(out, cfg, OnnxBackend(out, threads=a.threads)), files)
                name = f"onnxruntime {quantize or 'fp32'}"
                print(f"{head:7} {name:16} {rate:8.2f} {rate / rate_t:8.2f} {np.abs(s - s_t).max():20.2e}"
                      f"   (export {took:.0f} s)", flush=True)
    print(f"load average at end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
