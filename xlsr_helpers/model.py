"""The detector: ``Wav2Vec2ForSequenceClassification`` on XLS-R, with stage-wise freezing.

Score convention (ASVspoof): ``score = logit[bonafide] - logit[spoof]``; higher = more bonafide.

Besides loading/freezing, this module splits the forward pass so that the frozen part can be
cached: ``encode_prefix`` runs everything below the first trainable transformer layer and
``forward_top`` the rest (top layers, final layer norm, projector, masked mean, classifier).
Their composition equals ``model(input_values, attention_mask).logits``.
"""

from __future__ import annotations

import inspect
import logging
from pathlib import Path

import torch
from torch import nn
from transformers import (
    AutoFeatureExtractor,
    AutoModelForAudioClassification,
    Wav2Vec2Config,
    Wav2Vec2FeatureExtractor,
    Wav2Vec2Model,
)
from transformers.masking_utils import create_bidirectional_mask
from transformers.models.wav2vec2.modeling_wav2vec2 import Wav2Vec2EncoderStableLayerNorm

from .errors import ConfigError, XlsrError
from .features import ID2LABEL, LABEL2ID, default_feature_extractor

log = logging.getLogger(__name__)
XLSR_300M = "facebook/wav2vec2-xls-r-300m"

class ModelLoadError(XlsrError, OSError):
    """A model that cannot be loaded from the given folder or hub id."""


# Regularisers that make the frozen part non-deterministic; off by default so that caching is exact.
DETECTOR_DEFAULTS = {"mask_time_prob": 0.0, "mask_feature_prob": 0.0, "layerdrop": 0.0}


def check_model_ref(name_or_path: str | Path) -> None:
    """A folder must hold a model (config.json); a stage folder points at its detector/; a path that
    does not exist is said to be one, not mistaken for a hub id."""
    p = Path(name_or_path).expanduser()
    s = str(name_or_path)
    if p.is_dir():
        if (p / "config.json").is_file():
            return
        hint = f"; it is a stage folder: use {p / 'detector'}" if (p / "detector" / "config.json").is_file() else ""
        raise ModelLoadError(f"model folder {p} holds no config.json{hint}")
    if p.exists():
        raise ModelLoadError(f"model {p} is a file; give the folder that holds config.json and the weights")
    if p.is_absolute() or s.startswith((".", "~")) or s.count("/") > 1 or s.endswith("/"):
        raise ModelLoadError(f"model folder {p} does not exist")


def load_detector(name_or_path: str | Path = XLSR_300M, **config_overrides) -> nn.Module:
    """A 2-class audio classifier from any wav2vec2-family checkpoint or local folder.

    A bare encoder (e.g. the XLS-R pretraining checkpoint) gets a freshly initialised
    projector + classifier; a saved detector folder loads as it was trained.
    """
    overrides = {**DETECTOR_DEFAULTS, **config_overrides}
    check_model_ref(name_or_path)
    try:
        return AutoModelForAudioClassification.from_pretrained(
            str(name_or_path), num_labels=2, id2label=dict(ID2LABEL), label2id=dict(LABEL2ID), **overrides)
    except OSError as exc:  # no such folder, no network, gated/misspelled hub id
        raise ModelLoadError(
            f"cannot load the model {str(name_or_path)!r}: {exc}\n"
            "Give a local folder with config.json + model.safetensors, or a hub id with network access. On Kaggle: "
            "Settings > Internet on, or add the model as an input and set base_model to its folder.") from None


HEAD_PREFIXES = ("projector.", "classifier.")  # what training adds to a bare encoder


def load_trained_detector(name_or_path: str | Path) -> nn.Module:
    """A saved detector for scoring; a bare encoder (no trained head) is refused, since its scores
    would come from a randomly initialised classifier."""
    check_model_ref(name_or_path)
    try:
        model, info = AutoModelForAudioClassification.from_pretrained(
            str(name_or_path), num_labels=2, id2label=dict(ID2LABEL), label2id=dict(LABEL2ID),
            output_loading_info=True, **DETECTOR_DEFAULTS)
    except OSError as exc:
        raise ModelLoadError(f"cannot load the detector {str(name_or_path)!r}: {exc}") from None
    missing = sorted(k for k in info.get("missing_keys", []) if k.startswith(HEAD_PREFIXES))
    if missing:
        raise ModelLoadError(f"{name_or_path} is not a trained detector: these weights are missing: {missing} "
                             "(train it with notebooks 02/03 or `xlsr train`, and score the stage's detector/ folder)")
    return model


def load_feature_extractor(name_or_path: str | Path = XLSR_300M) -> Wav2Vec2FeatureExtractor:
    """The checkpoint's feature extractor, or the XLS-R defaults when the folder has none."""
    try:
        return AutoFeatureExtractor.from_pretrained(str(name_or_path))
    except OSError:
        log.warning("no preprocessor_config.json in %s; using the XLS-R feature-extractor defaults", name_or_path)
        return default_feature_extractor()


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

def count_parameters(model: nn.Module) -> dict[str, int]:
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"trainable": trainable, "frozen": total - trainable, "total": total}


def freeze_for_stage(model: nn.Module, stage: int, top_layers: int = 4) -> dict[str, int]:
    """Stage 1: only projector + classifier train. Stage 2: also the top ``top_layers`` transformer
    layers and the encoder's final layer norm. The CNN feature encoder is always frozen."""
    if stage not in (1, 2):
        raise ConfigError(f"stage must be 1 or 2, got {stage}")
    backbone = model.wav2vec2
    n_layers = len(backbone.encoder.layers)
    if stage == 2 and not 1 <= top_layers <= n_layers:
        raise ConfigError(f"top_layers must be in 1..{n_layers} for this model, got {top_layers}")
    for p in model.parameters():
        p.requires_grad = True
    for p in backbone.parameters():
        p.requires_grad = False
    if stage == 2:
        for layer in backbone.encoder.layers[n_layers - top_layers:]:
            layer.requires_grad_(True)
        if isinstance(backbone.encoder, Wav2Vec2EncoderStableLayerNorm):
            backbone.encoder.layer_norm.requires_grad_(True)
    if getattr(model, "layer_weights", None) is not None:
        model.layer_weights.requires_grad = True
    counts = count_parameters(model)
    log.info("stage %d: %s trainable of %s parameters", stage, f"{counts['trainable']:,}", f"{counts['total']:,}")
    return counts


def frozen_prefix_layers(model: nn.Module, stage: int, top_layers: int) -> int:
    """How many transformer layers sit below the first trainable one."""
    n = len(model.wav2vec2.encoder.layers)
    return n if stage == 1 else n - top_layers


# --------------------------------------------------------------------------- split forward
# transformers 5.x changed these internals between minor versions (tested on 5.0 and 5.24):
# the mask helper's keyword (`input_embeds` -> `inputs_embeds`) and an encoder layer's return
# value (a tuple in 5.0, a tensor later). The two helpers below absorb both.
_MASK_EMBEDS_KW = "inputs_embeds" if "inputs_embeds" in inspect.signature(create_bidirectional_mask).parameters \
    else "input_embeds"


def layer_attention_mask(config, hidden: torch.Tensor, mask: torch.Tensor):
    """The attention mask the encoder layers expect, built as the installed transformers builds it."""
    return create_bidirectional_mask(config=config, attention_mask=mask, **{_MASK_EMBEDS_KW: hidden})


def run_layers(layers, hidden: torch.Tensor, attention_mask) -> torch.Tensor:
    """Apply encoder layers in order, whether a layer returns a tensor or a tuple."""
    for layer in layers:
        out = layer(hidden, attention_mask=attention_mask)
        hidden = out[0] if isinstance(out, tuple) else out
    return hidden


def _frame_mask(model: nn.Module, n_frames: int, attention_mask: torch.Tensor | None, batch: int,
                device: torch.device) -> torch.Tensor:
    if attention_mask is None:
        return torch.ones(batch, n_frames, dtype=torch.bool, device=device)
    return model._get_feature_vector_attention_mask(n_frames, attention_mask).bool()


def encode_prefix(model: nn.Module, input_values: torch.Tensor, attention_mask: torch.Tensor | None,
                  n_prefix_layers: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Hidden states entering layer ``n_prefix_layers`` and the frame mask (no SpecAugment)."""
    w = model.wav2vec2
    enc = w.encoder
    feats = w.feature_extractor(input_values).transpose(1, 2)
    mask = _frame_mask(model, feats.shape[1], attention_mask, feats.shape[0], feats.device)
    hidden, _ = w.feature_projection(feats)
    hidden = hidden.masked_fill(~mask.unsqueeze(-1), 0.0)
    bias = layer_attention_mask(enc.config, hidden, mask)
    hidden = hidden + enc.pos_conv_embed(hidden)
    if not isinstance(enc, Wav2Vec2EncoderStableLayerNorm):
        hidden = enc.layer_norm(hidden)  # post-LN encoders normalise before the layers
    hidden = enc.dropout(hidden)
    return run_layers(enc.layers[:n_prefix_layers], hidden, bias), mask


def forward_top(model: nn.Module, hidden: torch.Tensor, mask: torch.Tensor, n_prefix_layers: int) -> torch.Tensor:
    """Logits from hidden states entering layer ``n_prefix_layers`` (the rest of the forward)."""
    enc = model.wav2vec2.encoder
    if n_prefix_layers < len(enc.layers):
        hidden = run_layers(enc.layers[n_prefix_layers:], hidden, layer_attention_mask(enc.config, hidden, mask))
    return pooled_logits(model, hidden, mask, normed=False)


def pooled_logits(model: nn.Module, hidden: torch.Tensor, mask: torch.Tensor, normed: bool) -> torch.Tensor:
    """Final layer norm (unless ``normed``), masked mean, projector and classifier in fp32 with
    autocast off: under bf16/fp16 the logits would keep 8-11 bits and tie many scores."""
    with torch.autocast(hidden.device.type, enabled=False):
        h = hidden.float()
        return head_from_pooled(model, masked_mean(h if normed else final_norm(model, h), mask.bool()))


def detector_logits(model: nn.Module, input_values: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
    """``model(input_values, attention_mask).logits`` with the encoder under the caller's autocast and
    the head in fp32 (``pooled_logits``)."""
    hidden = model.wav2vec2(input_values, attention_mask=attention_mask).last_hidden_state
    mask = _frame_mask(model, hidden.shape[1], attention_mask, hidden.shape[0], hidden.device)
    return pooled_logits(model, hidden, mask, normed=True)


def final_norm(model: nn.Module, hidden: torch.Tensor) -> torch.Tensor:
    """The encoder's final layer norm (pre-LN encoders such as XLS-R only)."""
    enc = model.wav2vec2.encoder
    return enc.layer_norm(hidden) if isinstance(enc, Wav2Vec2EncoderStableLayerNorm) else hidden


def masked_mean(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1)


def head_from_pooled(model: nn.Module, pooled: torch.Tensor) -> torch.Tensor:
    """Projector + classifier on mean-pooled encoder output. The projector is linear, so
    ``projector(mean(h)) == mean(projector(h))``: the stage-1 cache stores only the pooled vector."""
    return model.classifier(model.projector(pooled))


def scores_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """ASVspoof score: logit[bonafide] - logit[spoof] (higher = more bonafide)."""
    return logits[..., LABEL2ID["bonafide"]] - logits[..., LABEL2ID["spoof"]]
