"""Trainer callbacks: completion markers, per-epoch seeds, the top-k keeper and the average of its epochs."""


from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import numpy as np
import torch
from accelerate import PartialState
from safetensors.torch import load_file, save_file
from transformers import Trainer, TrainerCallback

from xlsr_helpers.data.labels import LabelOrder
from xlsr_helpers.runtime.kaggle_env import session_seconds_left
from xlsr_helpers.train.dev_eer import POOLED, dev_metrics, dev_scores, selection_key
from xlsr_helpers.train.state import (
    COMPLETE_MARKER,
)

log = logging.getLogger(__name__)


class CompleteMarker(TrainerCallback):
    """Mark a checkpoint folder complete once the Trainer has written all of it (atomic rename)."""

    def on_save(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            ckpt = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            if ckpt.is_dir():
                tmp = ckpt / (COMPLETE_MARKER + ".tmp")
                tmp.write_text(str(state.global_step))
                os.replace(tmp, ckpt / COMPLETE_MARKER)


class TopK(TrainerCallback):
    """Keep the trained weights of the ``k`` best epochs on dev EER in ``folder`` (index.json: file ->
    EER), for checkpoint averaging; survives a kill and a resume like the checkpoints do."""

    def __init__(self, folder: Path, k: int, keys: list[str], metric: str = "eer"):
        self.folder, self.k, self.keys, self.metric = folder, k, keys, f"eval_{metric}"  # the selection metric

    def index(self) -> dict[str, float]:
        path = self.folder / "index.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def on_evaluate(self, args, state, control, metrics=None, model=None, **kwargs):
        if not state.is_world_process_zero or metrics is None or self.metric not in metrics:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        index = self.index()
        name = f"epoch-{round(state.epoch or 0):03d}.safetensors"
        sd = model.state_dict()
        save_file({k: sd[k].detach().cpu().contiguous() for k in self.keys}, self.folder / name)
        index[name] = float(metrics[self.metric])
        keep = sorted(index, key=lambda n: (index[n], n))[:self.k]
        for n in set(index) - set(keep):
            (self.folder / n).unlink(missing_ok=True)
        tmp = self.folder / "index.json.tmp"
        tmp.write_text(json.dumps({n: index[n] for n in keep}, indent=1))
        os.replace(tmp, self.folder / "index.json")


def average_state_dicts(dicts: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Element-wise mean of the tensors (integer buffers such as BatchNorm's step count rounded back)."""
    out = {}
    for key in dicts[0]:
        mean = torch.stack([d[key].double() for d in dicts]).mean(0)
        out[key] = mean.round().to(dicts[0][key].dtype) if not dicts[0][key].is_floating_point() \
            else mean.to(dicts[0][key].dtype)
    return out


def average_top_k(trainer: Trainer, keeper: TopK, dev_ds, dev_targets: np.ndarray, order: LabelOrder,
                  best_eer: float, corpora=None, select_on: str = POOLED) -> dict:
    """Load the mean of the kept epochs' weights when its dev EER (the one ``select_on`` reads) is no
    worse than the best epoch's; otherwise keep the best epoch (said in a warning). ``dev_targets``
    are class ids in the detector's ``order``, ``corpora`` the dev trials' corpora. Returns what was
    chosen and both EERs."""
    PartialState().wait_for_everyone()
    index = keeper.index()
    names = sorted(index, key=lambda n: (index[n], n))
    dicts = [load_file(keeper.folder / n) for n in names]
    module = trainer.model
    module.load_state_dict(average_state_dicts(dicts), strict=False)
    avg_eer = dev_metrics(dev_scores(trainer, dev_ds, order), dev_targets, order, corpora,
                          select_on)[selection_key(select_on)]
    used = "averaged" if avg_eer <= best_eer else "best epoch"
    if used == "best epoch":
        log.warning("the average of the %d best epochs has dev EER %.4f, worse than the best epoch's %.4f: "
                    "the detector keeps the best epoch", len(dicts), avg_eer, best_eer)
        module.load_state_dict(dicts[0], strict=False)
    return {"k": len(dicts), "epochs": names, "dev_eers": [index[n] for n in names], "dev_eer_averaged": avg_eer,
            "dev_eer_best_epoch": best_eer, "used": used}


class EpochSeed(TrainerCallback):
    """Tell the dataset the epoch so that random crops differ per epoch yet replay on resume."""

    def __init__(self, dataset, sampler=None):
        self.dataset, self.sampler = dataset, sampler  # the sampler too: the Trainer's own call depends on its version

    def on_epoch_begin(self, args, state, control, **kwargs):
        for follower in (self.dataset, self.sampler):
            if hasattr(follower, "set_epoch"):
                follower.set_epoch(int(state.epoch or 0))


def hours_text(seconds: float) -> str:
    """A duration as people say it: 1.5 h, 12 min, 40 s."""
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.0f} min" if seconds >= 60 else f"{seconds:.0f} s"


class TimeEstimate(TrainerCallback):
    """After the first ``after_steps`` optimiser steps: the stage's remaining time per epoch and in all
    (measured step time, evaluation excluded), and on Kaggle a warning when it cannot finish in the
    session time left, with what to do."""

    def __init__(self, stage: int, after_steps: int = 10, seconds_left=None, clock=time.monotonic):
        self.stage, self.after_steps, self.clock = stage, after_steps, clock
        self.seconds_left = seconds_left or session_seconds_left
        self.started, self.said = None, None

    def on_train_begin(self, args, state, control, **kwargs):
        self.started, self.first_step = self.clock(), state.global_step  # a resumed run starts later

    def on_step_end(self, args, state, control, **kwargs):
        done = state.global_step - self.first_step
        if self.said is not None or self.started is None or done < min(self.after_steps, state.max_steps):
            return
        per_step = (self.clock() - self.started) / done
        per_epoch = per_step * state.max_steps / max(1, args.num_train_epochs)
        left = per_step * (state.max_steps - state.global_step)
        self.said = (f"stage {self.stage}: about {hours_text(per_epoch)} per epoch, {hours_text(left)} left for "
                     f"the stage's {state.max_steps - state.global_step} remaining steps (measured over {done} steps)")
        log.warning(self.said)
        session = self.seconds_left()
        if session is not None and left > session:
            log.warning("stage %d needs about %s but this Kaggle session has about %s left: it will stop before the "
                        "stage ends. Keep the output and continue in a new kernel with --resume-from auto (the last "
                        "complete checkpoint is kept), or train fewer epochs, or set a smaller max_trials_per_split.",
                        self.stage, hours_text(left), hours_text(max(session, 0)))
