"""``xlsr export DETECTOR --format onnx --out DIR [--quantize int8]``: a detector as an ONNX graph for CPU scoring.

The graph takes what ``Scorer`` feeds the torch detector (a batch of windows zero-padded to its
longest, and the attention mask of real samples) and returns the logits, so batches of windows of
different lengths score as in torch. Both axes are dynamic. The folder carries the detector's settings
unchanged (``xlsr_detector.json``: window, hop, aggregation, dev threshold, calibration) and its
feature extractor; ``onnx_export.json`` says what was exported. ``--quantize int8`` quantises the
weights of the matrix products (onnxruntime's dynamic quantisation).
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import tempfile
import warnings
from pathlib import Path

import torch
from torch import nn

from xlsr_helpers import __version__
from xlsr_helpers.core.errors import ConfigError, XlsrError
from xlsr_helpers.core.outputs import check_output_folder
from xlsr_helpers.data.audio import MAX_SEGMENT_SECONDS, MIN_SAMPLES, SAMPLE_RATE, SEGMENT_SAMPLES
from xlsr_helpers.model.card import SETTINGS_FILE, read_settings
from xlsr_helpers.model.forward import detector_label_order, detector_logits, head_of
from xlsr_helpers.model.loading import check_model_ref, load_feature_extractor, load_trained_detector
from xlsr_helpers.serve.onnx_backend import EXPORT_FILE, INPUTS, MODEL_FILE, OUTPUT, PRECISIONS

FORMATS = ("onnx",)
QUANTIZE = ("int8",)
OPSET = 18
# int8 on the matrix products only (attention, feed-forward, projections, head): they are most of
# XLS-R's compute; the convolutional front end stays fp32 (ConvInteger is slow on CPU and the raw
# waveform's first layers are the most sensitive to rounding).
QUANTIZED_OPS = ["MatMul", "Gemm"]


class _Logits(nn.Module):
    """The detector as the graph sees it: exactly the torch scoring forward (``detector_logits``)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_values: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return detector_logits(self.model, input_values, attention_mask)


def check_export_args(detector_dir: str | Path, out_dir: str | Path, fmt: str, quantize: str | None) -> None:
    """Everything ``export_onnx`` needs, checked before the model loads."""
    if fmt not in FORMATS:
        raise ConfigError(f"--format {fmt!r}: the formats are {', '.join(FORMATS)}")
    if quantize is not None and quantize not in QUANTIZE:
        raise ConfigError(f"--quantize {quantize!r}: the choices are {', '.join(QUANTIZE)} (or leave it out for fp32)")
    missing = [m for m in ("onnx", "onnxscript", *(("onnxruntime",) if quantize else ())) if importlib.util.find_spec(m) is None]
    if missing:
        raise XlsrError(f"xlsr export needs {', '.join(missing)}: pip install 'xlsr-helpers[onnx]'")
    check_model_ref(detector_dir, detector=True)
    check_output_folder(out_dir, "--out")
    src, out = Path(detector_dir).expanduser().resolve(), Path(out_dir).expanduser().resolve()
    if out == src or out.is_relative_to(src) or src.is_relative_to(out):
        raise ConfigError(f"--out {out_dir} overlaps the detector folder {detector_dir}; give a folder outside it")
    if out.is_dir() and any(out.iterdir()) and not (out / EXPORT_FILE).is_file():
        raise ConfigError(f"--out {out_dir} is not empty and holds no earlier export ({EXPORT_FILE}); "
                          "give an empty or new folder")


def export_onnx(detector_dir: str | Path, out_dir: str | Path, quantize: str | None = None) -> Path:
    """Export a saved detector (any head) to ``out_dir``; returns the folder."""
    check_export_args(detector_dir, out_dir, "onnx", quantize)
    src = Path(detector_dir).expanduser()  # as the checks read it: ~ included
    settings = read_settings(src)
    model = load_trained_detector(src).eval()
    extractor = load_feature_extractor(src)
    out = Path(out_dir).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out) as tmp:
        fp32 = Path(tmp) / MODEL_FILE
        _export_graph(model, fp32, settings.get("segment_samples") or SEGMENT_SAMPLES)
        if quantize == "int8":
            from onnxruntime.quantization import QuantType, quantize_dynamic  # onnxruntime: only for an int8 export
            quantize_dynamic(fp32, out / MODEL_FILE, weight_type=QuantType.QInt8, op_types_to_quantize=QUANTIZED_OPS)
        else:
            shutil.move(fp32, out / MODEL_FILE)
    extractor.save_pretrained(out)  # preprocessor_config.json: normalisation and padding as in torch
    if (src / SETTINGS_FILE).is_file():
        shutil.copyfile(src / SETTINGS_FILE, out / SETTINGS_FILE)
    else:
        (out / SETTINGS_FILE).unlink(missing_ok=True)  # an earlier export's settings must not stay
    order = detector_label_order(model)
    info = {"format": "onnx", "precision": quantize or PRECISIONS[0], "head": head_of(model).name,
            "id2label": {str(i): n for i, n in order.id2label.items()}, "label2id": order.label2id,
            "inputs": list(INPUTS), "output": OUTPUT, "opset": OPSET, "source": str(detector_dir),
            "torch": torch.__version__, "xlsr_helpers": __version__}
    (out / EXPORT_FILE).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return out


def _export_graph(model: nn.Module, path: Path, samples: int) -> None:
    """``torch.onnx.export`` with dynamo=True (torch.export): batch and length stay symbolic through
    the length arithmetic (frame masks, AASIST's top-k node counts, SLS's frame fitting), where the
    TorchScript exporter (dynamo=False) turns every Python number computed from a shape into a constant
    of the traced length. Traced on a padded batch, so that the masking path is in the graph."""
    values = torch.randn(2, samples)
    mask = torch.ones(2, samples, dtype=torch.long)
    mask[1, samples // 2:] = 0
    values[1, samples // 2:] = 0
    batch = torch.export.Dim("batch", min=1, max=4096)
    length = torch.export.Dim("samples", min=MIN_SAMPLES, max=MAX_SEGMENT_SECONDS * SAMPLE_RATE)
    axes = {0: batch, 1: length}
    with torch.no_grad(), warnings.catch_warnings():
        # the two inputs share both axes: the exporter says it keeps one name per axis, as intended
        warnings.filterwarnings("ignore", message=".*axis name.*will not be used")
        torch.onnx.export(_Logits(model).eval(), (values, mask), str(path), dynamo=True, opset_version=OPSET,
                          input_names=list(INPUTS), output_names=[OUTPUT], verbose=False, optimize=True,
                          dynamic_shapes={"input_values": axes, "attention_mask": axes}, external_data=False)
