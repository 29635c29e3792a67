"""The label vocabulary of every manifest, score file and detector this package makes, defined once,
and which of a given detector's two outputs is which class (``LabelOrder``).

A detector folder may order its classes otherwise (its ``config.id2label``); scores and training
targets are always read through that order (``model.forward.detector_label_order``), never through
``LABEL2ID`` alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from xlsr_helpers.core.errors import ConfigError

LABELS = ("bonafide", "spoof")  # the label vocabulary of every manifest and score file
LABEL2ID = {label: i for i, label in enumerate(LABELS)}  # bonafide 0, spoof 1: the detectors made here
ID2LABEL = {v: k for k, v in LABEL2ID.items()}
PHASES = ("eval", "progress", "hidden_track", "all")  # the ASVspoof 2021 keys' phases, and every trial


def decide(scores, threshold: float) -> np.ndarray:
    """The label decided for each score: above ``threshold`` is bonafide (the ASVspoof convention, higher
    = more bona fide), at or below it (or NaN) spoof. A scalar gives a 0-d array (``str()`` it)."""
    return np.where(np.asarray(scores, dtype=float) > threshold, LABELS[0], LABELS[1])


@dataclass(frozen=True)
class LabelOrder:
    """Which output (class id) of one detector is bonafide and which is spoof."""

    bonafide: int
    spoof: int

    @property
    def label2id(self) -> dict[str, int]:
        """Manifest label -> this detector's class id (its training targets)."""
        return {"bonafide": self.bonafide, "spoof": self.spoof}

    @property
    def id2label(self) -> dict[int, str]:
        return {self.bonafide: "bonafide", self.spoof: "spoof"}


PACKAGE_ORDER = LabelOrder(**LABEL2ID)  # the order of every detector this package creates


def label_order(id2label: Mapping | None, label2id: Mapping | None, where: str) -> LabelOrder:
    """The order a detector's config declares: exactly the classes bonafide and spoof (names compared
    case-insensitively) at ids 0 and 1, in either order, and a ``label2id`` (when given) that says
    the same. Anything else is a ``ConfigError`` naming ``where`` and the labels found."""
    found = dict(id2label or {})
    try:
        by_id = {int(k): str(v).strip().lower() for k, v in found.items()}
    except (TypeError, ValueError):
        by_id = {}
    if sorted(by_id) != [0, 1] or sorted(by_id.values()) != sorted(LABELS):
        raise ConfigError(
            f"{where}: the detector's classes are {found} (config.json id2label); xlsr-helpers scores detectors "
            f"with exactly two classes named {' and '.join(LABELS)} (in either order). If its classes mean bona fide "
            "and spoofed speech, name them so in config.json's id2label and label2id")
    order = LabelOrder(**{name: i for i, name in by_id.items()})
    if label2id is not None:
        try:
            said = {str(k).strip().lower(): int(v) for k, v in dict(label2id).items()}
        except (TypeError, ValueError):
            said = {}
        if said != order.label2id:
            raise ConfigError(f"{where}: config.json's id2label {found} and label2id {dict(label2id)} disagree on "
                              "which output is bonafide; make them say the same")
    return order
