"""Datasets and batch collation: waveforms -> ``Wav2Vec2FeatureExtractor`` inputs.

The collator delegates normalisation (zero mean, unit variance per utterance), padding and the
attention mask to the Hugging Face feature extractor, so batches are exactly what the
pretrained XLS-R expects.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset, Sampler
from transformers import Wav2Vec2FeatureExtractor

from xlsr_helpers.core.errors import ConfigError
from xlsr_helpers.data.audio import SAMPLE_RATE, SEGMENT_SAMPLES, fix_length, load_audio
from xlsr_helpers.data.augment import make_augmenter
from xlsr_helpers.data.labels import LABEL2ID


@dataclass(frozen=True)
class SegmentConfig:
    """How each utterance becomes a fixed-length training segment."""

    samples: int = SEGMENT_SAMPLES
    pad: str = "repeat"
    crop: str = "start"  # 'random' for augmentation; 'start'/'center' are deterministic (cacheable)

    @property
    def deterministic(self) -> bool:
        return self.crop != "random"


class SegmentDataset(Dataset):
    """Manifest rows -> ``{"input_values": float32 segment, "labels": 0|1}``, the labels as ``label2id``
    says (training passes the detector's own order).

    Random crops draw from ``seed + epoch + index`` so a resumed run sees the same crops.
    """

    def __init__(self, manifest: pd.DataFrame, segment: SegmentConfig = SegmentConfig(), seed: int = 0,
                 augment: str = "none", noise_dir: str = "", rir_dir: str = "", label2id: dict = LABEL2ID):
        self.paths = manifest["path"].tolist()
        self.labels = manifest["label"].map(label2id).to_numpy()
        self.segment, self.seed, self.epoch = segment, seed, 0
        self.augment = make_augmenter(augment, noise_dir, rir_dir)

    def __len__(self) -> int:
        return len(self.paths)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __getitem__(self, i: int) -> dict:
        wave = load_audio(self.paths[i])
        rng = np.random.default_rng([self.seed, self.epoch, i])
        if self.augment is not None:  # RawBoost acts on the utterance, before cropping/padding
            wave = self.augment(wave, rng)
        seg = fix_length(wave, self.segment.samples, self.segment.pad, self.segment.crop, rng)
        return {"input_values": seg, "labels": int(self.labels[i])}


class AudioCollator:
    """Batch a list of ``{"input_values", "labels"}`` items with the HF feature extractor."""

    def __init__(self, feature_extractor: Wav2Vec2FeatureExtractor):
        self.feature_extractor = feature_extractor

    def __call__(self, items: list[dict]) -> dict[str, torch.Tensor]:
        batch = self.feature_extractor(
            [it["input_values"] for it in items], sampling_rate=SAMPLE_RATE, padding=True,
            return_attention_mask=True, return_tensors="pt")
        out = {"input_values": batch["input_values"], "attention_mask": batch["attention_mask"]}
        if "labels" in items[0]:
            out["labels"] = torch.tensor([it["labels"] for it in items], dtype=torch.long)
        return out


def default_feature_extractor() -> Wav2Vec2FeatureExtractor:
    """The XLS-R feature-extractor settings (16 kHz, normalised, attention mask)."""
    return Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=SAMPLE_RATE, padding_value=0.0,
                                    do_normalize=True, return_attention_mask=True)


NO_WEIGHTS, BALANCED = "none", "balanced"


def parse_corpus_weights(spec) -> dict[str, float] | str | None:
    """``corpus_weights``: ``none`` (None: every trial once per epoch), ``balanced`` (an equal share
    per corpus) or shares ``'asvspoof2019-la:1,asvspoof5:2'`` (a mapping too); ConfigError otherwise."""
    if spec in (None, NO_WEIGHTS, BALANCED):
        return None if spec in (None, NO_WEIGHTS) else BALANCED
    items = spec.items() if isinstance(spec, dict) else \
        [part.rpartition(":")[::2] for part in str(spec).split(",")] if isinstance(spec, str) else None
    shares, bad = {}, items is None
    for name, value in items or []:
        try:
            share = float(value)
        except (TypeError, ValueError):
            share = float("nan")
        bad |= not str(name).strip() or not share > 0 or share == float("inf") or str(name).strip() in shares
        shares[str(name).strip()] = share
    if bad or not shares:
        raise ConfigError(f"corpus_weights={spec!r}: expected 'none', 'balanced' or corpus:share pairs joined with ',' "
                          "(each corpus once, shares > 0), e.g. 'asvspoof2019-la:1,asvspoof5:2'")
    return shares


def trial_weights(corpora: Sequence[str], spec) -> np.ndarray | None:
    """Each training trial's probability of a draw: corpus c's trials share ``w_c / sum(w)`` of an
    epoch's draws, equally among them. None for ``none``. Every corpus of the manifest needs a share
    and every share a corpus (ConfigError naming them)."""
    shares = parse_corpus_weights(spec)
    if shares is None:
        return None
    counts = pd.Series(list(corpora), dtype=str).value_counts()
    if shares == BALANCED:
        shares = dict.fromkeys(counts.index, 1.0)
    unknown, unshared = sorted(set(shares) - set(counts.index)), sorted(set(counts.index) - set(shares))
    if unknown or unshared:
        raise ConfigError(f"corpus_weights={spec!r}: " + "; ".join(
            ([f"{unknown} not in the train manifest"] if unknown else [])
            + ([f"no share for {unshared}"] if unshared else [])) + f" (it holds {sorted(counts.index)})")
    total = sum(shares[c] for c in counts.index)
    return np.array([shares[c] / total / counts[c] for c in corpora], dtype=np.float64)


class CorpusSampler(Sampler[int]):
    """An epoch of ``len(p)`` draws with replacement, trial i drawn with probability ``p[i]``. The
    draws follow ``(seed, epoch)``: a resumed run replays its epoch, each epoch draws anew."""

    def __init__(self, p: np.ndarray, seed: int = 0):
        self.p, self.seed, self.epoch = np.asarray(p, dtype=np.float64), int(seed), 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.p)

    def __iter__(self):
        rng = np.random.default_rng([self.seed, self.epoch, len(self.p)])
        yield from rng.choice(len(self.p), size=len(self.p), replace=True, p=self.p / self.p.sum()).tolist()
