"""The torch back-end of ``Scorer``: a padded batch of windows and its attention mask in, logits out.

``Scorer`` cuts, pads and batches the windows and aggregates their scores; a back-end only runs the
model, so another runtime (``serve.onnx_backend``) scores with the same windows, aggregation, error
rows and outputs by offering the same two members: ``label_order`` and ``logits(values, mask)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from xlsr_helpers.data.labels import LabelOrder
from xlsr_helpers.model.forward import detector_label_order, detector_logits
from xlsr_helpers.model.loading import load_trained_detector
from xlsr_helpers.runtime.device import choose_precision


class Backend(Protocol):
    """What ``Scorer`` needs of a runtime."""

    label_order: LabelOrder  # which logit is bonafide and which spoof

    def logits(self, input_values: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        """(batch, samples) float32 values, zero past each window's end, and the (batch, samples)
        mask of real samples -> (batch, 2) logits."""
        ...


class TorchBackend:
    """A saved detector in torch (on CPU or a GPU; bf16/fp16 autocast for the encoder on a GPU)."""

    def __init__(self, model_dir: str | Path, device: str = "auto", precision: str = "auto"):
        dev = device if device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
        self.device = torch.device(dev)
        self.model = load_trained_detector(model_dir).eval().to(self.device)
        self.label_order = detector_label_order(self.model)  # its own id2label: {0: spoof, 1: bonafide} is fine
        if precision == "auto":
            precision = choose_precision(self.device.type, self.device.type == "cuda" and torch.cuda.is_bf16_supported())
        self.autocast_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)

    @torch.no_grad()
    def logits(self, input_values: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        values = torch.from_numpy(np.ascontiguousarray(input_values)).to(self.device)
        mask = torch.from_numpy(np.asarray(attention_mask, dtype=np.int64)).to(self.device)
        with torch.autocast(self.device.type, dtype=self.autocast_dtype, enabled=self.autocast_dtype is not None):
            out = detector_logits(self.model, values, mask)  # head in fp32
        return out.float().cpu().numpy()
