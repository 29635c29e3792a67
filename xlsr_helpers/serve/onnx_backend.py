"""Score an exported detector with onnxruntime: the ``Scorer`` back-end for ``xlsr score --backend onnx``.

An export folder (``serve.onnx_export``) holds ``model.onnx`` (padded windows + attention mask in,
logits out), ``onnx_export.json`` (what was exported: precision, label order), and the detector's own
``xlsr_detector.json`` and ``preprocessor_config.json``, so ``Scorer`` cuts, pads, aggregates and
writes exactly as it does for the torch detector. This module imports neither torch nor transformers.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from xlsr_helpers.core.errors import ConfigError, XlsrError, short_text
from xlsr_helpers.data.labels import label_order

MODEL_FILE = "model.onnx"
EXPORT_FILE = "onnx_export.json"
INPUTS = ("input_values", "attention_mask")
OUTPUT = "logits"
PRECISIONS = ("fp32", "int8")


def is_onnx_export(folder: str | Path) -> bool:
    return (Path(folder).expanduser() / EXPORT_FILE).is_file()


def read_export_info(folder: str | Path) -> dict:
    """``onnx_export.json`` of an export folder; a detector folder (or anything else) is refused, named."""
    folder = Path(folder).expanduser()
    path = folder / EXPORT_FILE
    if not folder.is_dir():
        raise ConfigError(f"--backend onnx: {folder} is not a folder; give the folder `xlsr export` wrote")
    if not path.is_file():
        hint = ("it is a detector folder: score it with --backend torch, or export it first with "
                f"`xlsr export {folder} --format onnx --out DIR`") if (folder / "config.json").is_file() \
            else "give the folder `xlsr export` wrote"
        raise ConfigError(f"--backend onnx: {folder} holds no {EXPORT_FILE}, so it is not an ONNX export; {hint}")
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc}); export the detector again") from None
    if not isinstance(info, dict) or info.get("precision") not in PRECISIONS or not isinstance(info.get("id2label"), dict):
        raise ConfigError(f"{path}: expected an object with precision ({' or '.join(PRECISIONS)}) and id2label; "
                          "export the detector again")
    if not (folder / MODEL_FILE).is_file():
        raise ConfigError(f"{folder}: {MODEL_FILE} is missing; export the detector again")
    return info


class OnnxBackend:
    """An exported detector in onnxruntime on the CPU (``threads``: intra-op threads, default all cores)."""

    def __init__(self, folder: str | Path, threads: int | None = None):
        folder = Path(folder).expanduser()
        self.info = read_export_info(folder)
        self.label_order = label_order(self.info["id2label"], self.info.get("label2id"), str(folder / EXPORT_FILE))
        try:
            import onnxruntime as ort  # the optional extra `onnx`: only this back-end needs it
        except ImportError:
            raise XlsrError("--backend onnx needs onnxruntime: pip install 'xlsr-helpers[onnx]'") from None
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or os.cpu_count() or 1
        try:
            self.session = ort.InferenceSession(str(folder / MODEL_FILE), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime's own errors (InvalidProtobuf, Fail, ...): a damaged or foreign graph
            raise XlsrError(f"{folder / MODEL_FILE}: onnxruntime cannot load it ({short_text(str(exc), 200)}); "
                            "export the detector again (xlsr export)") from None

    def logits(self, input_values: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        feeds = {"input_values": np.ascontiguousarray(input_values, dtype=np.float32),
                 "attention_mask": np.ascontiguousarray(attention_mask, dtype=np.int64)}
        return self.session.run([OUTPUT], feeds)[0]
