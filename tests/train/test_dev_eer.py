"""Dev EER per corpus beside the pooled one, model selection on it, and the Trainer drawing through
the corpus sampler."""

import numpy as np
import pytest
import torch
from reference_metrics import official_eer
from transformers import EvalPrediction, TrainingArguments

from xlsr_helpers.data.datasets import CorpusSampler, trial_weights
from xlsr_helpers.data.labels import PACKAGE_ORDER
from xlsr_helpers.train.dev_eer import dev_metrics, eer_metrics
from xlsr_helpers.train.trainer import DetectorTrainer


def _trials(seed=0):
    rng = np.random.default_rng(seed)
    corpora = np.array(["a"] * 60 + ["b"] * 40 + ["c"] * 10)
    targets = rng.integers(0, 2, len(corpora))
    targets[:2], targets[60:62] = [0, 1], [0, 1]  # a and b hold both classes; c holds spoof alone below
    targets[100:] = PACKAGE_ORDER.spoof
    shift = np.where(corpora == "a", 1.0, 0.3)  # a separates better than b
    scores = rng.normal(0, 1, len(corpora)) + shift * (targets == PACKAGE_ORDER.bonafide)
    return scores, targets, corpora


def test_each_corpus_eer_equals_the_official_eer_of_its_trials():
    scores, targets, corpora = _trials()
    got = dev_metrics(scores, targets, PACKAGE_ORDER, corpora)
    bona = targets == PACKAGE_ORDER.bonafide
    assert got["eer"] == pytest.approx(official_eer(scores[bona], scores[~bona])[0])
    for c in ("a", "b"):
        m = corpora == c
        assert got[f"eer/{c}"] == pytest.approx(official_eer(scores[m & bona], scores[m & ~bona])[0])
    assert np.isnan(got["eer/c"])  # no bonafide trial: no EER, said as NaN rather than left out
    assert "selected_eer" not in got
    mean = dev_metrics(scores, targets, PACKAGE_ORDER, corpora, "mean")["selected_eer"]
    assert mean == pytest.approx((got["eer/a"] + got["eer/b"]) / 2)
    assert dev_metrics(scores, targets, PACKAGE_ORDER, corpora, "b")["selected_eer"] == got["eer/b"]
    one = dev_metrics(scores, targets, PACKAGE_ORDER, ["a"] * len(scores))
    assert set(one) == {"eer", "eer_threshold"}  # one corpus: the pooled EER alone, as before


def test_the_trainers_metrics_follow_the_dev_rows_corpora():
    scores, targets, corpora = _trials(1)
    logits = np.stack([np.zeros_like(scores), scores], 1) if PACKAGE_ORDER.bonafide == 1 else \
        np.stack([scores, np.zeros_like(scores)], 1)  # softmax margin monotone in the score
    got = eer_metrics(EvalPrediction(predictions=logits, label_ids=targets), order=PACKAGE_ORDER, corpora=corpora)
    bona = targets == PACKAGE_ORDER.bonafide
    m = corpora == "b"
    assert got["eer/b"] == pytest.approx(official_eer(scores[m & bona], scores[m & ~bona])[0])
    with pytest.raises(ValueError, match="110 dev predictions for 3 dev trials"):
        eer_metrics(EvalPrediction(predictions=logits, label_ids=targets), order=PACKAGE_ORDER, corpora=["a"] * 3)


class _Index(torch.utils.data.Dataset):
    def __len__(self):
        return 100

    def __getitem__(self, i):
        return {"i": i}


def test_the_trainer_draws_an_epoch_through_the_corpus_sampler(tmp_path):
    """The Trainer's own train dataloader (its sampler hook): b, 10 of 100 trials, takes half the draws
    under 'a:1,b:1' (bound as in the sampler's own test: 40 epochs)."""
    corpora = ["a"] * 90 + ["b"] * 10
    sampler = CorpusSampler(trial_weights(corpora, "a:1,b:1"), seed=0)
    args = TrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=10, use_cpu=True, report_to=[],
                             remove_unused_columns=False)
    trainer = DetectorTrainer(model=torch.nn.Linear(1, 1), args=args, train_dataset=_Index(), train_sampler=sampler,
                              data_collator=lambda items: {"i": torch.tensor([it["i"] for it in items])})
    loader = trainer.get_train_dataloader()
    drawn = []
    for epoch in range(40):
        sampler.set_epoch(epoch)
        drawn += [int(i) for batch in loader for i in batch["i"]]
    assert len(drawn) == 4000 and abs(np.mean(np.array(drawn) >= 90) - 0.5) < 0.04
    plain = DetectorTrainer(model=torch.nn.Linear(1, 1), args=args, train_dataset=_Index(),
                            data_collator=lambda items: {"i": torch.tensor([it["i"] for it in items])})
    once = sorted(int(i) for batch in plain.get_train_dataloader() for i in batch["i"])
    assert once == list(range(100))  # no weights: every trial once an epoch
