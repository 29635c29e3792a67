"""The detector: XLS-R with a head (``heads``): the stock ``Wav2Vec2ForSequenceClassification`` for the
``linear`` head, ``XlsrDetector`` for the others; loading and stage-wise freezing.

Score convention (ASVspoof): ``score = logit[bonafide] - logit[spoof]``; higher = more bonafide. A saved
detector keeps its own label order (``config.id2label``: a detector may declare {0: spoof, 1: bonafide});
only a fresh head gets this package's order (``data.labels.LABEL2ID``).

Besides loading/freezing, this module splits the forward pass so that the frozen part can be
cached: ``encode_prefix`` runs everything below the first trainable transformer layer and
``forward_top`` the rest (top layers, then the head on what it reads: pooled or framewise final-normed
last layer, or every layer's output). Their composition equals ``model(input_values, attention_mask).logits``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch
from torch import nn
from transformers import (
    AutoConfig,
    AutoFeatureExtractor,
    AutoModelForAudioClassification,
    Wav2Vec2Config,
    Wav2Vec2FeatureExtractor,
    Wav2Vec2Model,
)

from xlsr_helpers.core.errors import ConfigError, short_text
from xlsr_helpers.core.textfile import read_text
from xlsr_helpers.data.audio import SEGMENT_SAMPLES
from xlsr_helpers.data.datasets import default_feature_extractor
from xlsr_helpers.data.labels import ID2LABEL, LABEL2ID, label_order
from xlsr_helpers.model.checks import (
    ModelLoadError,
    check_feature_extractor,
    check_loading_info,
    check_model_files,
    loading_named,
)
from xlsr_helpers.model.detector import MODEL_TYPE, XlsrDetector, XlsrDetectorConfig
from xlsr_helpers.model.heads import head_class

log = logging.getLogger(__name__)
XLSR_300M = "facebook/wav2vec2-xls-r-300m"

# Regularisers that make the frozen part non-deterministic; off by default so that caching is exact.
DETECTOR_DEFAULTS = {"mask_time_prob": 0.0, "mask_feature_prob": 0.0, "layerdrop": 0.0}


# Settings that make transformers import Python files shipped with a model (and run them).
CUSTOM_CODE_KEYS = ("auto_map", "custom_pipelines")
SETTINGS_FILES = ("config.json", "preprocessor_config.json")
NO_REMOTE_CODE = {"trust_remote_code": False}  # every from_pretrained here: never run, never ask


def refuse_custom_code(source: str, settings: dict) -> None:
    """A model whose settings ask for code of its own is refused: xlsr loads only the classes it
    ships, so a downloaded folder can never run code (nor prompt for it) when it is loaded."""
    asked = {k: settings[k] for k in CUSTOM_CODE_KEYS if settings.get(k)}
    if asked:
        raise _custom_code_error(source, f" ({asked})")


class CustomCodeError(ModelLoadError):
    """A model whose settings ask for code of its own (never run)."""


def _custom_code_error(source: str, asked: str = "") -> ModelLoadError:
    return CustomCodeError(f"{source} asks to run code shipped with the model{asked}; xlsr never runs a model's "
                           "own code: use a detector saved by xlsr or a stock wav2vec2 checkpoint")


def _raise_if_custom_code(exc: ValueError, source: str) -> None:
    """transformers' refusal (with ``trust_remote_code=False``) of a class only the model's code defines."""
    if "trust_remote_code" in str(exc):
        raise _custom_code_error(source) from None


def _check_settings_files(folder: Path) -> None:
    """config.json and preprocessor_config.json of a local folder: JSON objects, asking for no code."""
    for name in SETTINGS_FILES:
        f = folder / name
        if not f.is_file():
            continue
        try:
            settings = json.loads(read_text(f))
        except json.JSONDecodeError as exc:
            raise ModelLoadError(f"{f}:{exc.lineno}: not valid JSON ({exc.msg}, column {exc.colno})") from None
        if not isinstance(settings, dict):
            raise ModelLoadError(f"{f}: expected a JSON object of settings, found {type(settings).__name__}")
        refuse_custom_code(str(f), settings)


def check_model_ref(name_or_path: str | Path, detector: bool = False) -> None:
    """A folder must hold a model (config.json asking for no custom code, weights that are whole, a
    16 kHz feature extractor; ``detector``: safetensors weights); a stage folder points at its detector/;
    a path that does not exist is said to be one, not mistaken for a hub id."""
    s = str(name_or_path)
    p = Path(name_or_path).expanduser()
    try:
        is_dir, exists = p.is_dir(), p.exists()
    except (OSError, ValueError) as exc:  # a name too long for any file system, a NUL byte: nor is it a hub id
        raise ModelLoadError(f"model {short_text(s)} is neither a folder nor a hub id ({exc})") from None
    if is_dir:
        if (p / "config.json").is_file():
            _check_settings_files(p)  # custom code first: refused whatever else is wrong
            check_model_files(p, detector)
            return
        hint = f"; it is a stage folder: use {p / 'detector'}" if (p / "detector" / "config.json").is_file() else ""
        raise ModelLoadError(f"model folder {p} holds no config.json{hint}")
    if exists:
        raise ModelLoadError(f"model {p} is a file; give the folder that holds config.json and the weights")
    if p.is_absolute() or s.startswith((".", "~")) or s.count("/") > 1 or s.endswith("/"):
        raise ModelLoadError(f"model folder {short_text(p, 200)} does not exist")


def load_detector(name_or_path: str | Path = XLSR_300M, head: str = "auto", segment_samples: int = SEGMENT_SAMPLES,
                  **config_overrides) -> nn.Module:
    """A 2-class audio classifier from any wav2vec2-family checkpoint or local folder.

    A saved detector loads as it was trained (``head`` 'auto' or its own head). A bare encoder (e.g.
    the XLS-R pretraining checkpoint) gets a freshly initialised head: ``linear`` (the default) as
    the stock ``Wav2Vec2ForSequenceClassification``, any other registered head as ``XlsrDetector``
    (``segment_samples``: the training segment, which heads such as ``sls`` are sized for).
    """
    overrides = {**DETECTOR_DEFAULTS, **config_overrides}
    check_model_ref(name_or_path)
    config = _load_config(name_or_path)
    current = trained_head(config)
    head = (current or "linear") if head == "auto" else head
    head_class(head)  # a known head, or a ConfigError naming the known ones
    if current and current != head:
        raise ConfigError(f"{name_or_path} is a trained {current!r} detector; it cannot switch to the {head!r} head: "
                          f"set head='auto' (or {current!r}) to continue it, or start the {head!r} head from the "
                          "bare encoder (the base model)")
    if head != "linear" and current is None:
        return _new_head_detector(name_or_path, config, head, segment_samples, overrides)
    labels = label_settings(config, name_or_path)
    with loading_named(name_or_path):  # no network, a misspelled hub id, weights that do not fit config.json
        model, info = AutoModelForAudioClassification.from_pretrained(
            str(name_or_path), **labels, output_loading_info=True, ignore_mismatched_sizes=True, **overrides,
            **NO_REMOTE_CODE)
    check_loading_info(name_or_path, info, trained=False)
    return model


def _load_config(name_or_path, what: str = "model"):
    """The model's config, without its code: a hub model's settings are checked here (a local
    folder's already by ``check_model_ref``)."""
    with loading_named(name_or_path, what):
        try:
            config = AutoConfig.from_pretrained(str(name_or_path), **NO_REMOTE_CODE)
        except ValueError as exc:
            _raise_if_custom_code(exc, f"{name_or_path} (config.json)")
            raise
    refuse_custom_code(f"{name_or_path} (config.json)", config.to_dict())
    return config


def label_settings(config, name_or_path) -> dict:
    """``from_pretrained``'s label arguments: none for a trained detector, which keeps its own order
    (checked here: exactly bonafide and spoof, else a ``ConfigError`` naming the folder and its labels),
    this package's order for the fresh head of a bare encoder."""
    if trained_head(config) is None:
        return {"num_labels": 2, "id2label": dict(ID2LABEL), "label2id": dict(LABEL2ID)}
    label_order(config.id2label, config.label2id, f"{name_or_path}")
    return {}


def check_model_labels(name_or_path: str | Path) -> None:
    """A detector's labels checked from its config alone, before any weights load or a stage folder is written."""
    label_settings(_load_config(name_or_path), name_or_path)


def trained_head(config) -> str | None:
    """The head a saved model carries: its registered head, 'linear' for a stock sequence classifier,
    None for a bare encoder."""
    if getattr(config, "model_type", None) == MODEL_TYPE:
        return config.head
    return "linear" if any(a.endswith("ForSequenceClassification") for a in config.architectures or []) else None


def frames_for(config, samples: int) -> int:
    """Encoder frames for ``samples`` input samples (the CNN feature encoder's arithmetic)."""
    n = int(samples)
    for kernel, stride in zip(config.conv_kernel, config.conv_stride, strict=True):
        n = (n - kernel) // stride + 1
    return n


def _new_head_detector(name_or_path, config, head: str, segment_samples: int, overrides: dict) -> nn.Module:
    """A bare encoder's weights under a new ``XlsrDetector`` with a freshly initialised ``head``."""
    encoder_settings = {k: v for k, v in config.to_dict().items()
                        if k not in ("model_type", "architectures", "transformers_version")}
    det_config = XlsrDetectorConfig(**{
        **encoder_settings, **overrides, "id2label": dict(ID2LABEL), "label2id": dict(LABEL2ID), "head": head,
        "head_config": head_class(head).settings(config, frames_for(config, segment_samples))})
    with loading_named(name_or_path):
        model = XlsrDetector(det_config)
        encoder, info = Wav2Vec2Model.from_pretrained(str(name_or_path), output_loading_info=True,
                                                      ignore_mismatched_sizes=True, **overrides, **NO_REMOTE_CODE)
    check_loading_info(name_or_path, info, trained=False)
    model.wav2vec2.load_state_dict(encoder.state_dict())
    return model


def load_trained_detector(name_or_path: str | Path) -> nn.Module:
    """A saved detector for scoring; a bare encoder (no trained head) is refused, since its scores
    would come from a randomly initialised classifier."""
    check_model_ref(name_or_path, detector=True)
    config = _load_config(name_or_path, "detector")  # refuses a model that asks for its own code, before its weights
    labels = label_settings(config, name_or_path)
    with loading_named(name_or_path, "detector"):
        model, info = AutoModelForAudioClassification.from_pretrained(
            str(name_or_path), **labels, output_loading_info=True, ignore_mismatched_sizes=True, **DETECTOR_DEFAULTS,
            **NO_REMOTE_CODE)
    check_loading_info(name_or_path, info, trained=True)
    return model


def load_feature_extractor(name_or_path: str | Path = XLSR_300M) -> Wav2Vec2FeatureExtractor:
    """The checkpoint's feature extractor, or the XLS-R defaults when the folder has none; one that
    asks for its own code (never run), one at another sampling rate, or a file that is not JSON, is
    refused (``ModelLoadError``), not replaced."""
    folder = Path(name_or_path).expanduser()
    if folder.is_dir():
        _check_settings_files(folder)
        check_feature_extractor(folder)
    try:
        with loading_named(name_or_path, "feature extractor"):
            try:
                extractor = AutoFeatureExtractor.from_pretrained(str(name_or_path), **NO_REMOTE_CODE)
            except ValueError as exc:
                _raise_if_custom_code(exc, f"{name_or_path} (preprocessor_config.json)")
                raise
    except CustomCodeError:
        raise
    except ModelLoadError:
        if (folder / "preprocessor_config.json").is_file():
            raise
        log.warning("no preprocessor_config.json in %s; using the XLS-R feature-extractor defaults", name_or_path)
        return default_feature_extractor()
    refuse_custom_code(f"{name_or_path} (preprocessor_config.json)", extractor.to_dict())
    return extractor


def tiny_config(num_layers: int = 4, hidden: int = 64, conv_channels: int = 64) -> Wav2Vec2Config:
    """Same architecture family as XLS-R (stable layer norm, layer-norm conv encoder), tiny sizes."""
    return Wav2Vec2Config(
        hidden_size=hidden, num_hidden_layers=num_layers, num_attention_heads=2, intermediate_size=2 * hidden,
        conv_dim=(conv_channels,) * 7, conv_stride=(5, 2, 2, 2, 2, 2, 2), conv_kernel=(10, 3, 3, 3, 3, 2, 2),
        num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4, feat_extract_norm="layer",
        do_stable_layer_norm=True, classifier_proj_size=16, hidden_dropout=0.0, attention_dropout=0.0,
        activation_dropout=0.0, feat_proj_dropout=0.0, final_dropout=0.0, **DETECTOR_DEFAULTS)


def xlsr_300m_config() -> Wav2Vec2Config:
    """The XLS-R 300M architecture (for benchmarks with random weights: same compute)."""
    return Wav2Vec2Config(
        hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096,
        conv_dim=(512,) * 7, conv_stride=(5, 2, 2, 2, 2, 2, 2), conv_kernel=(10, 3, 3, 3, 3, 2, 2),
        feat_extract_norm="layer", do_stable_layer_norm=True, conv_bias=True, feat_extract_activation="gelu",
        num_conv_pos_embeddings=128, num_conv_pos_embedding_groups=16, classifier_proj_size=256,
        **DETECTOR_DEFAULTS)


def save_random_backbone(out_dir: str | Path, config: Wav2Vec2Config | None = None, seed: int = 0) -> Path:
    """Save a random-initialised wav2vec2 encoder + feature extractor, like a hub checkpoint."""
    torch.manual_seed(seed)
    out = Path(out_dir)
    Wav2Vec2Model(config or tiny_config()).save_pretrained(out)
    default_feature_extractor().save_pretrained(out)
    return out


# --------------------------------------------------------------------------- freezing


# --------------------------------------------------------------------------- split forward


